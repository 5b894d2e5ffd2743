// Drives the worker's logic without a broker: decode, classify, route.
#include "workers/processor.h"

#include <map>

#include <gtest/gtest.h>

#include "schemas/codec.h"

namespace triage::workers {
namespace {

// Decides by the ticket body: "<category> <confidence> [oos] [trunc]".
class scripted_backend final : public backend {
 public:
  std::string name() const override { return "scripted"; }
  std::string model_version() const override { return "m1"; }
  std::string adapter_version() const override { return "a1"; }
  float threshold() const override { return 0.8f; }
  int estimate_tokens(const v1::TicketEvent&) const override { return 1; }
  std::vector<decision> classify(std::span<const v1::TicketEvent* const> tickets) override {
    ++calls;
    std::vector<decision> out;
    for (const auto* t : tickets) {
      decision d;
      char cat[64] = {};
      float conf = 0;
      std::sscanf(t->body().c_str(), "%63s %f", cat, &conf);
      d.category = cat;
      d.confidence = conf;
      d.urgency = 2;
      d.out_of_scope = t->body().find(" oos") != std::string::npos;
      d.truncated = t->body().find(" trunc") != std::string::npos;
      out.push_back(d);
    }
    return out;
  }
  int calls = 0;
};

input_record record(int64_t offset, const std::string& body, const std::string& id = "") {
  v1::TicketEvent t;
  t.set_id(id);
  t.set_body(body);
  return {"tickets", 2, offset, "", t.SerializeAsString(), 0};
}

TEST(processor, routes_escalates_and_dead_letters_one_output_per_record) {
  topology::config cfg;
  cfg.routing.queues["cards"] = "card-team";
  scripted_backend model;
  processor p(cfg, model);
  EXPECT_FLOAT_EQ(p.threshold(), 0.8f);  // min_confidence: adapter

  std::vector<input_record> in{
      record(10, "cards 0.95", "T-1"),
      record(11, "payments 0.50", "T-2"),
      {"tickets", 2, 12, "k", R"({"body": "broken)", 0},
      record(13, "disputes 0.99", "T-4"),
      record(14, "payments 0.90 oos"),
      record(15, "payments 0.90 trunc"),
  };
  const auto out = p.process(in);
  ASSERT_EQ(out.size(), in.size());
  EXPECT_EQ(model.calls, 1);  // one batch for all decodable tickets

  EXPECT_EQ(out[0].kind, outcome::routed);
  EXPECT_EQ(out[0].topic, "tickets.routed.card-team");
  EXPECT_EQ(out[0].key, "T-1");
  v1::RoutedTicket rt;
  ASSERT_TRUE(rt.ParseFromString(out[0].value));
  EXPECT_EQ(rt.queue(), "card-team");
  EXPECT_EQ(rt.result().category(), "cards");
  EXPECT_EQ(rt.result().adapter_version(), "a1");
  EXPECT_EQ(rt.source().offset(), 10);
  EXPECT_EQ(rt.source().partition(), 2);

  EXPECT_EQ(out[1].kind, outcome::escalated);
  EXPECT_EQ(out[1].topic, "tickets.escalations");
  EXPECT_EQ(out[1].reason, "low_confidence");
  v1::Escalation e;
  ASSERT_TRUE(e.ParseFromString(out[1].value));
  EXPECT_EQ(e.draft().category(), "payments");
  EXPECT_FLOAT_EQ(e.draft().confidence(), 0.5f);
  EXPECT_EQ(e.ticket().id(), "T-2");
  EXPECT_NE(e.detail().find("confidence 0.500 (threshold 0.800)"), std::string::npos) << e.detail();

  EXPECT_EQ(out[2].kind, outcome::dead_lettered);
  EXPECT_EQ(out[2].topic, "tickets.dlq");
  v1::DeadLetter dl;
  ASSERT_TRUE(dl.ParseFromString(out[2].value));
  EXPECT_EQ(dl.reason(), "bad_json");
  EXPECT_EQ(dl.raw(), R"({"body": "broken)");
  EXPECT_EQ(dl.key(), "k");
  EXPECT_EQ(dl.source().offset(), 12);
  EXPECT_FALSE(dl.detail().empty());

  EXPECT_EQ(out[3].kind, outcome::escalated);  // disputes: always, however confident
  EXPECT_EQ(out[3].reason, "always_escalate_category");

  EXPECT_EQ(out[4].reason, "out_of_scope");
  EXPECT_EQ(out[4].key, "tickets/2/14");  // no id: source coordinates identify it
  EXPECT_EQ(out[5].kind, outcome::routed);  // truncated is flagged, not escalated, by default
}

TEST(processor, policy_from_config) {
  topology::config cfg;
  cfg.routing.min_confidence = 0.3;
  cfg.routing.always_escalate = {};
  cfg.routing.escalate_truncated = true;
  scripted_backend model;
  processor p(cfg, model);
  const auto out = p.process(std::vector<input_record>{
      record(1, "payments 0.5"), record(2, "disputes 0.9"), record(3, "cards 0.9 trunc")});
  EXPECT_EQ(out[0].kind, outcome::routed);
  EXPECT_EQ(out[1].kind, outcome::routed);
  EXPECT_EQ(out[1].topic, "tickets.routed.disputes");
  EXPECT_EQ(out[2].kind, outcome::escalated);
  EXPECT_EQ(out[2].reason, "truncated");
}

TEST(processor, all_bad_records_need_no_model_call) {
  topology::config cfg;
  scripted_backend model;
  processor p(cfg, model);
  const auto out = p.process(std::vector<input_record>{{"t", 0, 0, "", "", 0}, {"t", 0, 1, "", "\xff\xff", 0}});
  EXPECT_EQ(model.calls, 0);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].reason, "empty_record");
  EXPECT_EQ(out[1].kind, outcome::dead_lettered);
}

TEST(processor, oversized_limit_comes_from_config) {
  topology::config cfg;
  cfg.worker.max_text_bytes = 16;
  scripted_backend model;
  processor p(cfg, model);
  const auto out = p.process(std::vector<input_record>{record(1, "cards 0.99 and a long tail of text")});
  EXPECT_EQ(out[0].reason, "oversized_text");
}

TEST(null_backend, spreads_over_categories_deterministically) {
  null_backend b({"a", "b", "c"});
  std::vector<v1::TicketEvent> t(300);
  std::vector<const v1::TicketEvent*> ptrs;
  for (size_t i = 0; i < t.size(); ++i) {
    t[i].set_body("ticket " + std::to_string(i));
    ptrs.push_back(&t[i]);
  }
  const auto d1 = b.classify(ptrs), d2 = b.classify(ptrs);
  std::map<std::string, int> counts;
  for (size_t i = 0; i < d1.size(); ++i) {
    EXPECT_EQ(d1[i].category, d2[i].category);
    counts[d1[i].category]++;
  }
  EXPECT_EQ(counts.size(), 3u);
  for (const auto& [c, n] : counts) EXPECT_GT(n, 50) << c;
}

}  // namespace
}  // namespace triage::workers
