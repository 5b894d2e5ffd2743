#include "replay/source.h"

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "base/csv.h"
#include "schemas/codec.h"

namespace triage::replay {
namespace {

std::string ext_of(const std::string& path) {
  const auto dot = path.rfind('.');
  if (dot == std::string::npos || path.find('/', dot) != std::string::npos) return "";
  std::string e = path.substr(dot + 1);
  for (auto& c : e) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return e;
}

// Fills in and checks a label against the taxonomy: an intent gives category
// and urgency; a category must exist (or be out_of_scope).
result<label> resolve(label l, const classifier::taxonomy* tax, std::string_view where) {
  if (l.urgency < 0 || l.urgency > 3) {
    return make_error(errc::malformed, std::string(where) + ": label urgency must be 1..3, got " +
                                           std::to_string(l.urgency));
  }
  if (l.intent == "oos" || l.intent == out_of_scope_label) {
    l.category = out_of_scope_label;
    l.intent.clear();
  }
  if (!tax) return l;
  if (!l.intent.empty()) {
    auto i = tax->intent_index(l.intent);
    if (!i) {
      return make_error(errc::malformed,
                        std::string(where) + ": label intent '" + l.intent + "' is not in the taxonomy");
    }
    const auto cat = tax->categories[static_cast<size_t>(tax->intent_category[static_cast<size_t>(*i)])];
    if (l.category.empty()) l.category = cat;
    if (l.urgency == 0) l.urgency = tax->intent_urgency[static_cast<size_t>(*i)];
  }
  if (l.has_category() && !l.out_of_scope() && !tax->category_index(l.category)) {
    return make_error(errc::malformed, std::string(where) + ": label category '" + l.category +
                                           "' is not in the taxonomy");
  }
  return l;
}

result<int> parse_urgency(std::string_view s, std::string_view where) {
  if (s.empty()) return 0;
  if (s.size() == 1 && s[0] >= '0' && s[0] <= '3') return s[0] - '0';
  return make_error(errc::malformed, std::string(where) + ": label urgency must be 1..3, got '" +
                                         std::string(s) + "'");
}

// The ticket's created_at, in ms since the epoch, for pacing; 0 if it has none
// or does not decode (it is dead-lettered anyway).
int64_t created_ms(std::string_view value) {
  auto t = schemas::decode_ticket(value);
  if (!t || !t.value().has_created_at()) return 0;
  return t.value().created_at().seconds() * 1000 + t.value().created_at().nanos() / 1000000;
}

}  // namespace

result<file_format> parse_file_format(std::string_view name) {
  if (name == "auto") return file_format::auto_detect;
  if (name == "csv") return file_format::csv;
  if (name == "jsonl") return file_format::jsonl;
  if (name == "pb" || name == "protobuf") return file_format::protobuf;
  return make_error(errc::bad_option,
                    "--format '" + std::string(name) + "': expected auto, csv, jsonl or pb");
}

result<label> label_from_attributes(const v1::TicketEvent& ticket,
                                    const classifier::taxonomy* taxonomy, std::string_view where) {
  label l;
  const auto& a = ticket.attributes();
  if (auto it = a.find("label_category"); it != a.end()) l.category = it->second;
  if (auto it = a.find("dataset_intent"); it != a.end()) l.intent = it->second;
  if (auto it = a.find("label_urgency"); it != a.end()) {
    auto u = parse_urgency(it->second, where);
    if (!u) return u.error();
    l.urgency = u.value();
  }
  return resolve(std::move(l), taxonomy, where);
}

result<std::vector<replay_record>> parse_csv_source(std::string_view text, std::string_view source,
                                                    const file_source_options& options) {
  auto table = parse_csv(text, source);
  if (!table) return make_error(errc::malformed, table.error().message);
  const auto& t = table.value();
  auto find = [&](std::string_view name) -> std::optional<size_t> {
    for (size_t i = 0; i < t.header.size(); ++i) {
      if (t.header[i] == name) return i;
    }
    return std::nullopt;
  };
  auto text_col = find("text");
  if (!text_col) text_col = find("body");
  if (!text_col) {
    return make_error(errc::malformed, std::string(source) + ": no 'text' or 'body' column");
  }
  const auto subject = find("subject"), id = find("id"), tenant = find("tenant"),
             category = find("category"), urgency = find("urgency"), intent = find("intent");
  std::vector<replay_record> out;
  out.reserve(t.rows.size());
  for (size_t i = 0; i < t.rows.size(); ++i) {
    const auto& row = t.rows[i];
    const std::string where = std::string(source) + ":" + std::to_string(t.lines[i]);
    v1::TicketEvent ticket;
    ticket.set_body(row[*text_col]);
    if (subject) ticket.set_subject(row[*subject]);
    if (id) ticket.set_id(row[*id]);
    if (tenant) ticket.set_tenant(row[*tenant]);
    label l;
    if (category) l.category = row[*category];
    if (intent) {
      l.intent = row[*intent];
      ticket.mutable_attributes()->insert({"dataset_intent", l.intent});
    }
    if (urgency) {
      auto u = parse_urgency(row[*urgency], where);
      if (!u) return u.error();
      l.urgency = u.value();
    }
    auto resolved = resolve(std::move(l), options.taxonomy, where);
    if (!resolved) return resolved.error();
    replay_record r;
    r.record.topic = std::string(source);
    r.record.offset = static_cast<int64_t>(t.lines[i]);
    r.record.value = ticket.SerializeAsString();
    r.truth = std::move(resolved.value());
    out.push_back(std::move(r));
  }
  return out;
}

result<std::vector<replay_record>> parse_jsonl_source(std::string_view text, std::string_view source,
                                                      const file_source_options& options) {
  std::vector<replay_record> out;
  size_t line_no = 0, pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
    const std::string where = std::string(source) + ":" + std::to_string(line_no);
    replay_record r;
    r.record.topic = std::string(source);
    r.record.offset = static_cast<int64_t>(line_no);
    r.record.value = std::string(line);
    r.record.timestamp_ms = created_ms(line);
    // Labels: the line may not be JSON at all; then it is dead-lettered.
    auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_object()) {
      label l;
      if (auto it = j.find("label"); it != j.end()) {
        if (it->is_string()) {
          l.category = it->get<std::string>();
        } else if (it->is_object()) {
          if (auto c = it->find("category"); c != it->end() && c->is_string()) l.category = *c;
          if (auto c = it->find("intent"); c != it->end() && c->is_string()) l.intent = *c;
          if (auto c = it->find("urgency"); c != it->end()) {
            if (!c->is_number_integer()) {
              return make_error(errc::malformed, where + ": label.urgency: expected an integer 1..3");
            }
            l.urgency = c->get<int>();
          }
        } else {
          return make_error(errc::malformed,
                            where + ": label: expected a category string or {category, urgency, intent}");
        }
      } else if (auto a = j.find("attributes"); a != j.end() && a->is_object()) {
        if (auto c = a->find("label_category"); c != a->end() && c->is_string()) l.category = *c;
        if (auto c = a->find("dataset_intent"); c != a->end() && c->is_string()) l.intent = *c;
        if (auto c = a->find("label_urgency"); c != a->end() && c->is_string()) {
          auto u = parse_urgency(c->get<std::string>(), where);
          if (!u) return u.error();
          l.urgency = u.value();
        }
      }
      auto resolved = resolve(std::move(l), options.taxonomy, where);
      if (!resolved) return resolved.error();
      r.truth = std::move(resolved.value());
    }
    out.push_back(std::move(r));
  }
  return out;
}

void append_delimited(std::string& out, std::string_view message) {
  uint64_t n = message.size();
  while (n >= 0x80) {
    out.push_back(static_cast<char>((n & 0x7F) | 0x80));
    n >>= 7;
  }
  out.push_back(static_cast<char>(n));
  out.append(message);
}

result<std::vector<replay_record>> parse_delimited_source(std::string_view bytes,
                                                          std::string_view source,
                                                          const file_source_options& options) {
  std::vector<replay_record> out;
  size_t pos = 0;
  while (pos < bytes.size()) {
    const size_t start = pos;
    const std::string where = std::string(source) + ": byte offset " + std::to_string(start);
    uint64_t len = 0;
    int shift = 0;
    bool done = false;
    while (pos < bytes.size() && shift < 64) {
      const auto b = static_cast<unsigned char>(bytes[pos++]);
      len |= static_cast<uint64_t>(b & 0x7F) << shift;
      shift += 7;
      if (!(b & 0x80)) {
        done = true;
        break;
      }
    }
    if (!done) {
      return make_error(errc::malformed, where + ": length prefix is not a complete varint");
    }
    if (len > bytes.size() - pos) {
      return make_error(errc::malformed, where + ": record length " + std::to_string(len) +
                                             " runs past the end of the file (" +
                                             std::to_string(bytes.size() - pos) + " bytes left)");
    }
    replay_record r;
    r.record.topic = std::string(source);
    r.record.offset = static_cast<int64_t>(start);
    r.record.value = std::string(bytes.substr(pos, len));
    pos += len;
    v1::TicketEvent t;
    if (t.ParseFromString(r.record.value)) {
      if (t.has_created_at()) {
        r.record.timestamp_ms = t.created_at().seconds() * 1000 + t.created_at().nanos() / 1000000;
      }
      auto l = label_from_attributes(t, options.taxonomy, where);
      if (!l) return l.error();
      r.truth = std::move(l.value());
    }
    out.push_back(std::move(r));
  }
  return out;
}

result<std::vector<replay_record>> read_file_source(const std::string& path,
                                                    const file_source_options& options) {
  file_format f = options.format;
  if (f == file_format::auto_detect) {
    const auto e = ext_of(path);
    if (e == "csv") f = file_format::csv;
    else if (e == "jsonl" || e == "json" || e == "ndjson") f = file_format::jsonl;
    else if (e == "pb" || e == "bin" || e == "protobuf") f = file_format::protobuf;
    else {
      return make_error(errc::bad_option, path + ": cannot tell the format from the extension '" + e +
                                              "'; pass --format csv, jsonl or pb");
    }
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(errc::unreadable, path + ": cannot open");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return make_error(errc::unreadable, path + ": read failed");
  const std::string text = ss.str();
  switch (f) {
    case file_format::csv: return parse_csv_source(text, path, options);
    case file_format::jsonl: return parse_jsonl_source(text, path, options);
    default: return parse_delimited_source(text, path, options);
  }
}

}  // namespace triage::replay
