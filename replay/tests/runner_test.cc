// Replaying through the worker's processor: one output per record, the same
// outputs the processor gives directly, dead letters for bad records, scoring.
#include "replay/runner.h"

#include <gtest/gtest.h>

namespace triage::replay {
namespace {

// Decides by the body: "<category> <confidence> <urgency>".
class scripted_backend final : public workers::backend {
 public:
  std::string name() const override { return "scripted"; }
  std::string model_version() const override { return "m"; }
  std::string adapter_version() const override { return "a"; }
  float threshold() const override { return 0.8f; }
  int estimate_tokens(const v1::TicketEvent&) const override { return 1; }
  std::vector<workers::decision> classify(std::span<const v1::TicketEvent* const> tickets) override {
    sizes.push_back(tickets.size());
    std::vector<workers::decision> out;
    for (const auto* t : tickets) {
      workers::decision d;
      char cat[64] = {};
      std::sscanf(t->body().c_str(), "%63s %f %d", cat, &d.confidence, &d.urgency);
      d.category = cat;
      out.push_back(d);
    }
    return out;
  }
  std::vector<size_t> sizes;
};

std::vector<replay_record> stream() {
  const std::string jsonl =
      R"({"id":"1","body":"cards 0.9 3","label":{"category":"cards","urgency":3}})" "\n"
      R"({"id":"2","body":"payments 0.5 1","label":"cards"})" "\n"
      R"(not json at all)" "\n"
      R"({"id":"4","body":"disputes 0.99 2","label":"disputes"})" "\n"
      R"({"id":"5","body":"cash 0.95 1"})" "\n";
  return parse_jsonl_source(jsonl, "s.jsonl").value();
}

TEST(runner, same_outputs_as_the_processor_one_per_record) {
  const auto recs = stream();
  topology::config cfg;
  scripted_backend b1, b2;
  workers::processor p1(cfg, b1), p2(cfg, b2);
  const auto res = run(recs, p1, {.batch_max_tickets = 2});
  std::vector<workers::input_record> in;
  for (const auto& r : recs) in.push_back(r.record);
  const auto direct = p2.process(in);
  ASSERT_EQ(res.outputs.size(), recs.size());
  for (size_t i = 0; i < recs.size(); ++i) {
    EXPECT_EQ(res.outputs[i].topic, direct[i].topic) << i;
    EXPECT_EQ(res.outputs[i].kind, direct[i].kind) << i;
    EXPECT_EQ(res.outputs[i].category, direct[i].category) << i;
  }
  // Batches of at most two records: [1,2] [bad,4] [5] -> classify calls of 2, 1, 1.
  EXPECT_EQ(b1.sizes, (std::vector<size_t>{2, 1, 1}));
  EXPECT_EQ(res.batch_ms.size(), 3u);

  EXPECT_EQ(res.outputs[0].topic, "tickets.routed.cards");
  EXPECT_EQ(res.outputs[1].kind, workers::outcome::escalated);
  EXPECT_EQ(res.outputs[2].kind, workers::outcome::dead_lettered);
  EXPECT_EQ(res.outputs[2].topic, "tickets.dlq");
  v1::DeadLetter dl;
  ASSERT_TRUE(dl.ParseFromString(res.outputs[2].value));
  EXPECT_EQ(dl.source().topic(), "s.jsonl");
  EXPECT_EQ(dl.source().offset(), 3);  // the line number
  EXPECT_EQ(dl.reason(), "bad_protobuf");  // not JSON-looking, so decoded as protobuf
  EXPECT_EQ(res.outputs[3].reason, "always_escalate_category");
}

TEST(runner, scores_each_record) {
  topology::config cfg;
  scripted_backend b;
  workers::processor p(cfg, b);
  const auto res = run(stream(), p);
  ASSERT_EQ(res.scored.size(), 5u);
  EXPECT_EQ(res.scored[0].id, "1");
  EXPECT_EQ(res.scored[0].urgency, 3);
  EXPECT_EQ(res.scored[0].truth.urgency, 3);
  EXPECT_FLOAT_EQ(res.scored[0].confidence, 0.9f);
  EXPECT_EQ(res.scored[2].kind, workers::outcome::dead_lettered);
  EXPECT_EQ(res.scored[2].id, "s.jsonl/0/3");
  const auto ev = evaluate(res.scored, res.batch_ms);
  EXPECT_EQ(ev.in_scope, 3u);
  EXPECT_EQ(ev.category_correct, 2u);  // 1 and 4
  EXPECT_EQ(ev.urgency_correct, 1u);
  EXPECT_EQ(ev.escalated, 2u);
  EXPECT_EQ(ev.dead_lettered, 1u);
}

TEST(runner, pace_schedule) {
  // As fast as possible: never wait.
  EXPECT_EQ(pace_offset_ms(1000, 5000, 0), 0.0);
  // As recorded: 4 s after the first record.
  EXPECT_EQ(pace_offset_ms(1000, 5000, 1), 4000.0);
  // Ten times faster.
  EXPECT_EQ(pace_offset_ms(1000, 5000, 10), 400.0);
  // No timestamp, or earlier than the first: not delayed.
  EXPECT_EQ(pace_offset_ms(1000, 0, 1), 0.0);
  EXPECT_EQ(pace_offset_ms(1000, 500, 1), 0.0);
}

TEST(runner, paced_batches_split_at_records_not_yet_due) {
  auto recs = stream();
  // Records 1-2 at t=0, the rest 1 ms later at speed 1000x: two paced groups.
  for (size_t i = 0; i < recs.size(); ++i) recs[i].record.timestamp_ms = 1'000'000 + (i < 2 ? 0 : 1000);
  topology::config cfg;
  scripted_backend b;
  workers::processor p(cfg, b);
  const auto res = run(recs, p, {.batch_max_tickets = 32, .speed = 1000});
  EXPECT_EQ(b.sizes, (std::vector<size_t>{2, 2}));
  EXPECT_EQ(res.outputs.size(), 5u);
}

}  // namespace
}  // namespace triage::replay
