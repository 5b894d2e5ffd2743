// File sources: CSV, JSONL and length-delimited protobuf, labels, and the
// malformed-input policy (framing errors name the line or byte offset;
// undecodable records are replayed and dead-lettered).
#include "replay/source.h"

#include <gtest/gtest.h>

#include "schemas/codec.h"

namespace triage::replay {
namespace {

classifier::taxonomy tax() {
  auto t = classifier::parse_taxonomy(
      "intent,category,urgency\ncard_arrival,cards,2\nlost_card,cards,3\ntop_up_failed,top_up,2\n", "tax.csv");
  EXPECT_TRUE(t) << t.error().message;
  return t.value();
}

TEST(source, csv_rows_become_protobuf_tickets_with_labels) {
  const auto tx = tax();
  const std::string csv =
      "id,text,intent,category,urgency\n"
      "T1,where is my card,card_arrival,,\n"
      "T2,\"top up failed,\nagain\",top_up_failed,,1\n"
      "T3,hello,,cards,3\n"
      "T4,what is the weather,oos,,\n";
  auto r = parse_csv_source(csv, "in.csv", {.taxonomy = &tx});
  ASSERT_TRUE(r) << r.error().message;
  const auto& v = r.value();
  ASSERT_EQ(v.size(), 4u);
  EXPECT_EQ(v[0].record.topic, "in.csv");
  EXPECT_EQ(v[0].record.offset, 2);
  EXPECT_EQ(v[1].record.offset, 3);
  EXPECT_EQ(v[2].record.offset, 5);  // the quoted newline moved it down a line
  auto t = schemas::decode_ticket(v[1].record.value);
  ASSERT_TRUE(t) << t.error().message;
  EXPECT_EQ(t.value().id(), "T2");
  EXPECT_EQ(t.value().body(), "top up failed,\nagain");
  EXPECT_EQ(v[0].truth.category, "cards");
  EXPECT_EQ(v[0].truth.urgency, 2);  // from the taxonomy
  EXPECT_EQ(v[1].truth.category, "top_up");
  EXPECT_EQ(v[1].truth.urgency, 1);  // the urgency column wins over the taxonomy
  EXPECT_EQ(v[2].truth.category, "cards");
  EXPECT_EQ(v[2].truth.urgency, 3);
  EXPECT_TRUE(v[3].truth.out_of_scope());
}

TEST(source, csv_errors_name_file_and_line) {
  const auto tx = tax();
  auto broken = parse_csv_source("text,intent\nok,card_arrival\n\"unterminated,card_arrival\n", "b.csv");
  ASSERT_FALSE(broken);
  EXPECT_EQ(broken.error().code, errc::malformed);
  EXPECT_NE(broken.error().message.find("b.csv"), std::string::npos) << broken.error().message;
  EXPECT_NE(broken.error().message.find("3"), std::string::npos) << broken.error().message;

  auto unknown = parse_csv_source("text,category\nok,cards\nhm,lasers\n", "c.csv", {.taxonomy = &tx});
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.error().message.find("c.csv:3"), std::string::npos) << unknown.error().message;
  EXPECT_NE(unknown.error().message.find("lasers"), std::string::npos);

  auto urgency = parse_csv_source("text,urgency\nok,7\n", "d.csv");
  ASSERT_FALSE(urgency);
  EXPECT_NE(urgency.error().message.find("d.csv:2"), std::string::npos) << urgency.error().message;

  auto no_text = parse_csv_source("subject,intent\nok,card_arrival\n", "e.csv");
  ASSERT_FALSE(no_text);
  EXPECT_NE(no_text.error().message.find("text"), std::string::npos);
}

TEST(source, jsonl_passes_lines_through_and_reads_labels) {
  const auto tx = tax();
  const std::string jsonl =
      R"({"id":"A","body":"card?","label":"cards"})" "\n"
      "\n"
      R"({"id":"B","body":"top up","label":{"intent":"top_up_failed"}})" "\n"
      R"({"id":"C","body":"x","attributes":{"dataset_intent":"lost_card"},"created_at":"2026-11-24T10:00:01Z"})" "\r\n"
      R"({"id":"D","body":"broken)" "\n"
      R"({"id":"E","body":"none"})";
  auto r = parse_jsonl_source(jsonl, "t.jsonl", {.taxonomy = &tx});
  ASSERT_TRUE(r) << r.error().message;
  const auto& v = r.value();
  ASSERT_EQ(v.size(), 5u);
  EXPECT_EQ(v[0].record.offset, 1);
  EXPECT_EQ(v[1].record.offset, 3);  // the blank line 2 is skipped
  EXPECT_EQ(v[0].truth.category, "cards");
  EXPECT_EQ(v[1].truth.category, "top_up");
  EXPECT_EQ(v[1].truth.urgency, 2);
  EXPECT_EQ(v[2].truth.category, "cards");
  EXPECT_EQ(v[2].truth.urgency, 3);
  EXPECT_EQ(v[2].record.timestamp_ms, 1795514401000);  // created_at
  EXPECT_EQ(v[2].record.value.back(), '}');           // CR stripped
  // The malformed line is kept, unlabelled, for the dead-letter output.
  EXPECT_EQ(v[3].record.offset, 5);
  EXPECT_EQ(v[3].record.value, R"({"id":"D","body":"broken)");
  EXPECT_FALSE(v[3].truth.has_category());
  EXPECT_FALSE(schemas::decode_ticket(v[3].record.value));
  EXPECT_FALSE(v[4].truth.has_category());

  auto bad = parse_jsonl_source("{\"body\":\"a\"}\n{\"body\":\"b\",\"label\":{\"category\":\"nope\"}}\n", "l.jsonl",
                                {.taxonomy = &tx});
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("l.jsonl:2"), std::string::npos) << bad.error().message;
}

TEST(source, delimited_protobuf_round_trip_and_framing_errors) {
  const auto tx = tax();
  std::string bytes;
  v1::TicketEvent t;
  t.set_id("P1");
  t.set_body("lost my card");
  (*t.mutable_attributes())["label_category"] = "cards";
  (*t.mutable_attributes())["label_urgency"] = "3";
  t.mutable_created_at()->set_seconds(1700000000);
  append_delimited(bytes, t.SerializeAsString());
  const size_t second = bytes.size();
  append_delimited(bytes, "\xff\xff garbage");  // framed fine, not a TicketEvent
  const size_t third = bytes.size();
  v1::TicketEvent big;
  big.set_body(std::string(300, 'a'));  // a two-byte varint length
  append_delimited(bytes, big.SerializeAsString());

  auto r = parse_delimited_source(bytes, "x.pb", {.taxonomy = &tx});
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r.value().size(), 3u);
  EXPECT_EQ(r.value()[0].record.offset, 0);
  EXPECT_EQ(r.value()[0].truth.category, "cards");
  EXPECT_EQ(r.value()[0].truth.urgency, 3);
  EXPECT_EQ(r.value()[0].record.timestamp_ms, 1700000000000);
  EXPECT_EQ(r.value()[1].record.offset, static_cast<int64_t>(second));
  EXPECT_FALSE(schemas::decode_ticket(r.value()[1].record.value));
  EXPECT_EQ(r.value()[2].record.offset, static_cast<int64_t>(third));
  EXPECT_EQ(schemas::decode_ticket(r.value()[2].record.value).value().body().size(), 300u);

  // Cut inside the last record: its length prefix promises more than is left.
  auto cut = parse_delimited_source(std::string_view(bytes).substr(0, bytes.size() - 5), "x.pb");
  ASSERT_FALSE(cut);
  EXPECT_EQ(cut.error().code, errc::malformed);
  EXPECT_NE(cut.error().message.find("byte offset " + std::to_string(third)), std::string::npos)
      << cut.error().message;
  // A varint that never ends.
  auto varint = parse_delimited_source(bytes + "\x80\x80", "x.pb");
  ASSERT_FALSE(varint);
  EXPECT_NE(varint.error().message.find("byte offset " + std::to_string(bytes.size())), std::string::npos)
      << varint.error().message;
}

TEST(source, files_by_extension) {
  EXPECT_FALSE(read_file_source("/nonexistent/t.jsonl"));
  EXPECT_EQ(read_file_source("/nonexistent/t.jsonl").error().code, errc::unreadable);
  EXPECT_EQ(read_file_source("t.txt").error().code, errc::bad_option);
  EXPECT_EQ(parse_file_format("pb").value(), file_format::protobuf);
  EXPECT_FALSE(parse_file_format("xml"));
}

}  // namespace
}  // namespace triage::replay
