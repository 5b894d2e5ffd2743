#include "schemas/codec.h"

#include <stdexcept>

#include <google/protobuf/unknown_field_set.h>
#include <google/protobuf/util/json_util.h>

#include "schemas/utf8.h"

namespace triage::schemas {
namespace {

class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "triage.schemas"; }
  std::string message(int code) const override {
    switch (static_cast<errc>(code)) {
      case errc::empty_record: return "empty record";
      case errc::bad_protobuf: return "malformed protobuf";
      case errc::bad_json: return "malformed JSON";
      case errc::missing_body: return "ticket has no text";
      case errc::invalid_utf8: return "invalid UTF-8";
      case errc::oversized_text: return "ticket text too long";
    }
    return "unknown schemas error";
  }
};

// TicketEvent's string fields by number, for pinpointing bad UTF-8 before the
// real parse (protobuf would only say "parse failed", and log to stderr).
std::string_view string_field_name(int number) {
  switch (number) {
    case 1: return "id";
    case 2: return "tenant";
    case 3: return "subject";
    case 4: return "body";
    case 8: return "locale";
    default: return {};
  }
}

result<void> check_protobuf_utf8(std::string_view bytes) {
  google::protobuf::UnknownFieldSet fields;
  if (!fields.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return make_error(errc::bad_protobuf,
                      "not a protobuf TicketEvent: the wire format is broken (" +
                          std::to_string(bytes.size()) + " bytes)");
  }
  for (int i = 0; i < fields.field_count(); ++i) {
    const auto& f = fields.field(i);
    if (f.type() != google::protobuf::UnknownField::TYPE_LENGTH_DELIMITED) continue;
    const std::string& value = f.length_delimited();
    if (auto name = string_field_name(f.number()); !name.empty()) {
      if (auto bad = first_invalid_utf8(value)) {
        return make_error(errc::invalid_utf8, "field '" + std::string(name) +
                                                  "': invalid UTF-8 at byte " +
                                                  std::to_string(*bad) + " of the field");
      }
    } else if (f.number() == 7) {  // attributes: map entries are {1: key, 2: value}
      google::protobuf::UnknownFieldSet entry;
      if (!entry.ParseFromString(value)) continue;  // the real parse reports it
      for (int k = 0; k < entry.field_count(); ++k) {
        const auto& e = entry.field(k);
        if (e.type() != google::protobuf::UnknownField::TYPE_LENGTH_DELIMITED) continue;
        if (auto bad = first_invalid_utf8(e.length_delimited())) {
          return make_error(errc::invalid_utf8,
                            std::string("field 'attributes': invalid UTF-8 in a map ") +
                                (e.number() == 1 ? "key" : "value") + " at byte " +
                                std::to_string(*bad));
        }
      }
    }
  }
  return success();
}

result<v1::TicketEvent> decode_protobuf(std::string_view bytes) {
  if (auto ok = check_protobuf_utf8(bytes); !ok) return ok.error();
  v1::TicketEvent ticket;
  if (!ticket.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return make_error(errc::bad_protobuf,
                      "not a protobuf TicketEvent: a field has the wrong wire type (" +
                          std::to_string(bytes.size()) + " bytes)");
  }
  // Protobuf keeps a known field number sent with the wrong wire type as an
  // unknown field; for us that is a broken producer, not a newer schema.
  const auto& unknown = ticket.GetReflection()->GetUnknownFields(ticket);
  for (int i = 0; i < unknown.field_count(); ++i) {
    const int number = unknown.field(i).number();
    if (const auto* field = ticket.GetDescriptor()->FindFieldByNumber(number)) {
      return make_error(errc::bad_protobuf, "not a protobuf TicketEvent: field '" +
                                                field->name() + "' (" + std::to_string(number) +
                                                ") has the wrong wire type");
    }
  }
  // google.protobuf.Timestamp's own range (0001-01-01 to 9999-12-31, nanos
  // under a second): JSON cannot print another, and consumers compute with
  // it (milliseconds since the epoch must not overflow).
  if (ticket.has_created_at()) {
    const auto& ts = ticket.created_at();
    if (ts.seconds() < -62135596800 || ts.seconds() > 253402300799 || ts.nanos() < 0 ||
        ts.nanos() > 999999999) {
      return make_error(errc::bad_protobuf,
                        "field 'created_at': not a valid timestamp (seconds " +
                            std::to_string(ts.seconds()) + ", nanos " + std::to_string(ts.nanos()) +
                            "; years 1 to 9999)");
    }
  }
  return ticket;
}

result<v1::TicketEvent> decode_json(std::string_view bytes) {
  if (auto bad = first_invalid_utf8(bytes)) {
    return make_error(errc::invalid_utf8,
                      "JSON record: invalid UTF-8 at byte " + std::to_string(*bad));
  }
  v1::TicketEvent ticket;
  google::protobuf::util::JsonParseOptions options;
  // Producers may add fields this version does not know yet.
  options.ignore_unknown_fields = true;
  auto status = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(bytes.data(), bytes.size()), &ticket, options);
  if (!status.ok()) {
    return make_error(errc::bad_json, "JSON record does not map onto TicketEvent: " +
                                          std::string(status.message()));
  }
  return ticket;
}

bool has_text(std::string_view s) {
  return s.find_first_not_of(" \t\r\n\f\v") != std::string_view::npos;
}

}  // namespace

const std::error_category& schemas_category() {
  static const category instance;
  return instance;
}

std::string_view errc_name(errc e) {
  switch (e) {
    case errc::empty_record: return "empty_record";
    case errc::bad_protobuf: return "bad_protobuf";
    case errc::bad_json: return "bad_json";
    case errc::missing_body: return "missing_body";
    case errc::invalid_utf8: return "invalid_utf8";
    case errc::oversized_text: return "oversized_text";
  }
  return "unknown";
}

result<v1::TicketEvent> decode_ticket(std::string_view bytes, const decode_options& options) {
  const auto first = bytes.find_first_not_of(" \t\r\n");
  if (bytes.empty() || (first == std::string_view::npos && options.format != wire_format::protobuf)) {
    return make_error(errc::empty_record, "record has no bytes");
  }
  bool json = options.format == wire_format::json ||
              (options.format == wire_format::auto_detect && (bytes[first] == '{' || bytes[first] == '['));
  auto decoded = json ? decode_json(bytes) : decode_protobuf(bytes);
  // The blanks skipped above are protobuf tags too ('\n' is field 1, id): a
  // ticket whose id is 123 bytes long starts "\n{". A record guessed to be
  // JSON after leading blanks that is not JSON is read as protobuf.
  if (!decoded && json && options.format == wire_format::auto_detect && first > 0) {
    if (auto proto = decode_protobuf(bytes)) decoded = std::move(proto);
  }
  if (!decoded) return decoded;
  v1::TicketEvent& ticket = decoded.value();

  if (!has_text(ticket.subject()) && !has_text(ticket.body())) {
    return make_error(errc::missing_body,
                      std::string(json ? "JSON" : "protobuf") +
                          " ticket" + (ticket.id().empty() ? "" : " '" + ticket.id() + "'") +
                          " has neither 'subject' nor 'body' text");
  }
  const std::size_t text_bytes = ticket.subject().size() + ticket.body().size();
  if (text_bytes > options.max_text_bytes) {
    return make_error(errc::oversized_text,
                      "ticket" + (ticket.id().empty() ? "" : " '" + ticket.id() + "'") +
                          ": subject + body is " + std::to_string(text_bytes) +
                          " bytes; the limit is " + std::to_string(options.max_text_bytes) +
                          " (decode_options.max_text_bytes)");
  }
  return decoded;
}

std::string to_json(const google::protobuf::Message& message) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  auto status = google::protobuf::util::MessageToJsonString(message, &out, options);
  if (!status.ok()) {
    throw std::runtime_error("cannot write " + message.GetTypeName() +
                             " as JSON: " + std::string(status.message()));
  }
  return out;
}

}  // namespace triage::schemas
