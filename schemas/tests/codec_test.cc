#include "schemas/codec.h"

#include <string>

#include <gtest/gtest.h>

namespace triage::schemas {
namespace {

v1::TicketEvent sample_ticket() {
  v1::TicketEvent t;
  t.set_id("T-1");
  t.set_tenant("acme");
  t.set_subject("Card not arrived");
  t.set_body("I ordered a card two weeks ago and it has not arrived.");
  t.set_channel(v1::CHANNEL_EMAIL);
  t.mutable_created_at()->set_seconds(1700000000);
  (*t.mutable_attributes())["plan"] = "premium";
  return t;
}

std::string bytes_of(const v1::TicketEvent& t) { return t.SerializeAsString(); }

TEST(decode_ticket, protobuf_round_trip) {
  auto r = decode_ticket(bytes_of(sample_ticket()));
  ASSERT_TRUE(r) << r.error().what();
  EXPECT_EQ(r.value().id(), "T-1");
  EXPECT_EQ(r.value().body(), sample_ticket().body());
  EXPECT_EQ(r.value().channel(), v1::CHANNEL_EMAIL);
  EXPECT_EQ(r.value().attributes().at("plan"), "premium");
}

TEST(decode_ticket, json_round_trip_through_to_json) {
  const std::string json = to_json(sample_ticket());
  EXPECT_NE(json.find("\"created_at\":\"2023-11-14T22:13:20Z\""), std::string::npos) << json;
  auto r = decode_ticket(json);
  ASSERT_TRUE(r) << r.error().what();
  EXPECT_EQ(r.value().SerializeAsString(), bytes_of(sample_ticket()));
}

TEST(decode_ticket, json_accepts_camel_case_and_unknown_fields) {
  auto r = decode_ticket(R"(  {"id":"x","body":"refund please","createdAt":"2026-01-02T03:04:05Z",
                              "channel":"CHANNEL_CHAT","futureField":{"a":1}})");
  ASSERT_TRUE(r) << r.error().what();
  EXPECT_EQ(r.value().body(), "refund please");
  EXPECT_EQ(r.value().channel(), v1::CHANNEL_CHAT);
  EXPECT_EQ(r.value().created_at().seconds(), 1767323045);
}

TEST(decode_ticket, subject_alone_is_enough) {
  v1::TicketEvent t;
  t.set_subject("lost my card");
  EXPECT_TRUE(decode_ticket(bytes_of(t)));
}

TEST(decode_ticket, empty_record) {
  for (std::string_view bytes : {std::string_view(""), std::string_view("  \n")}) {
    auto r = decode_ticket(bytes);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::empty_record);
  }
}

TEST(decode_ticket, bad_protobuf) {
  // Field 4 (body) claims 100 bytes but the record ends after 3.
  const std::string truncated("\x22\x64" "abc", 5);
  auto r = decode_ticket(truncated);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::bad_protobuf);
  EXPECT_NE(r.error().message.find("5 bytes"), std::string::npos) << r.error().message;

  // Field 4 sent as a varint: valid wire format, wrong type for the field.
  const std::string wrong_type("\x20\x05", 2);
  r = decode_ticket(wrong_type);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::bad_protobuf);
  EXPECT_NE(r.error().message.find("field 'body' (4) has the wrong wire type"), std::string::npos)
      << r.error().message;

  // Unknown field numbers are a newer schema, not an error.
  std::string newer = bytes_of(sample_ticket()) + std::string("\xA0\x06\x01", 3);  // field 100 = 1
  EXPECT_TRUE(decode_ticket(newer));
}

TEST(decode_ticket, protobuf_that_starts_like_blank_then_json_is_protobuf) {
  // Field 1 (id) has tag '\n'; an id of 123 bytes has length byte '{', so
  // the record starts "\n{" like a JSON object after a blank (found by the
  // ticket_json fuzz target).
  v1::TicketEvent t = sample_ticket();
  t.set_id(std::string(123, 'x'));
  const std::string bytes = bytes_of(t);
  ASSERT_EQ(bytes.substr(0, 2), "\n{");
  auto r = decode_ticket(bytes);
  ASSERT_TRUE(r) << r.error().what();
  EXPECT_EQ(r.value().id(), t.id());
  EXPECT_EQ(r.value().body(), t.body());
}

TEST(decode_ticket, protobuf_timestamp_outside_its_range_is_bad_protobuf) {
  v1::TicketEvent t = sample_ticket();
  t.mutable_created_at()->set_seconds(int64_t{1} << 62);
  auto r = decode_ticket(bytes_of(t));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::bad_protobuf);
  EXPECT_NE(r.error().message.find("created_at"), std::string::npos) << r.error().message;
}

TEST(decode_ticket, json_unknown_enum_value_is_unspecified) {
  // Forward compatibility: a producer on a newer schema may send a channel we
  // do not know yet; the ticket still gets classified.
  auto r = decode_ticket(R"({"channel": "CHANNEL_CARRIER_PIGEON", "body": "x"})");
  ASSERT_TRUE(r) << r.error().what();
  EXPECT_EQ(r.value().channel(), v1::CHANNEL_UNSPECIFIED);
}

TEST(decode_ticket, forced_protobuf_does_not_read_json) {
  auto r = decode_ticket(R"({"body":"x"})", {.format = wire_format::protobuf});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::bad_protobuf);
}

TEST(decode_ticket, bad_json) {
  for (std::string_view bytes : {R"({"body": "unterminated)", R"({"body": 42,})",
                                 R"({"body": ["a list"]})", R"(["not", "an", "object"])"}) {
    auto r = decode_ticket(bytes);
    ASSERT_FALSE(r) << bytes;
    EXPECT_EQ(r.error().code, errc::bad_json) << bytes;
    EXPECT_NE(r.error().message.find("JSON record"), std::string::npos);
  }
  auto r = decode_ticket("not json at all", {.format = wire_format::json});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::bad_json);
}

TEST(decode_ticket, missing_body) {
  v1::TicketEvent t = sample_ticket();
  t.clear_subject();
  t.set_body(" \n\t ");
  auto r = decode_ticket(bytes_of(t));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::missing_body);
  EXPECT_NE(r.error().message.find("'T-1'"), std::string::npos) << r.error().message;

  r = decode_ticket(R"({"id":"J-9","tenant":"acme"})");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::missing_body);
  EXPECT_NE(r.error().message.find("JSON ticket 'J-9'"), std::string::npos) << r.error().message;
}

TEST(decode_ticket, invalid_utf8_in_protobuf_names_the_field) {
  v1::TicketEvent t = sample_ticket();
  // Serialize a valid ticket, then corrupt one byte inside the body's bytes:
  // protobuf would reject it without saying where.
  std::string bytes = bytes_of(t);
  const auto at = bytes.find("two weeks");
  ASSERT_NE(at, std::string::npos);
  bytes[at] = '\xC3';  // a lead byte followed by 'w', not a continuation byte
  auto r = decode_ticket(bytes);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::invalid_utf8);
  EXPECT_NE(r.error().message.find("field 'body'"), std::string::npos) << r.error().message;
  const auto byte_in_body = t.body().find("two weeks");
  EXPECT_NE(r.error().message.find("at byte " + std::to_string(byte_in_body)), std::string::npos)
      << r.error().message;
}

TEST(decode_ticket, invalid_utf8_in_attributes) {
  v1::TicketEvent t = sample_ticket();
  std::string bytes = bytes_of(t);
  const auto at = bytes.find("premium");
  ASSERT_NE(at, std::string::npos);
  bytes[at] = '\xFF';
  auto r = decode_ticket(bytes);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::invalid_utf8);
  EXPECT_NE(r.error().message.find("'attributes'"), std::string::npos) << r.error().message;
}

TEST(decode_ticket, invalid_utf8_in_json_gives_offset) {
  const std::string json = "{\"body\":\"caf\xE9 au lait\"}";  // Latin-1 é
  auto r = decode_ticket(json);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::invalid_utf8);
  EXPECT_NE(r.error().message.find("at byte 12"), std::string::npos) << r.error().message;
}

TEST(decode_ticket, oversized_text) {
  v1::TicketEvent t = sample_ticket();
  t.set_body(std::string(5000, 'a'));
  auto r = decode_ticket(bytes_of(t), {.max_text_bytes = 4096});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::oversized_text);
  EXPECT_NE(r.error().message.find("is 5016 bytes; the limit is 4096"), std::string::npos)
      << r.error().message;
  // At the limit exactly it is accepted.
  t.set_body(std::string(4096 - t.subject().size(), 'a'));
  EXPECT_TRUE(decode_ticket(bytes_of(t), {.max_text_bytes = 4096}));
}

TEST(decode_ticket, error_codes_have_stable_names) {
  EXPECT_EQ(errc_name(errc::bad_json), "bad_json");
  EXPECT_EQ(errc_name(errc::oversized_text), "oversized_text");
  const std::error_code ec = errc::invalid_utf8;
  EXPECT_EQ(ec.category().name(), std::string("triage.schemas"));
  EXPECT_EQ(ec.message(), "invalid UTF-8");
}

TEST(to_json, escalation_uses_proto_field_names_and_enum_names) {
  v1::Escalation e;
  *e.mutable_ticket() = sample_ticket();
  e.mutable_draft()->set_category("disputes");
  e.mutable_draft()->set_confidence(0.5f);
  e.add_reasons(v1::ESCALATION_REASON_ALWAYS_ESCALATE_CATEGORY);
  e.mutable_source()->set_topic("tickets");
  e.mutable_source()->set_offset(42);
  const std::string json = to_json(e);
  EXPECT_NE(json.find("\"reasons\":[\"ESCALATION_REASON_ALWAYS_ESCALATE_CATEGORY\"]"),
            std::string::npos) << json;
  EXPECT_NE(json.find("\"offset\":\"42\""), std::string::npos) << json;  // int64 as string
}

}  // namespace
}  // namespace triage::schemas
