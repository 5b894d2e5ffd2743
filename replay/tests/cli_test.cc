// `triage replay` end to end through the binary: the demo tickets with the
// null backend, a policy comparison, a malformed file, the live-topic guard.
// The real SLM's run is slm_test.cc.
#include "replay/tests/cli_util.h"

namespace {

using namespace triage::replay::testing;

TEST_F(replay_cli, null_backend_over_the_demo_tickets) {
  const auto report = dir_ / "r.json", html = dir_ / "r.html", outputs = dir_ / "o.jsonl";
  const auto r = triage(std::string("data/demo/tickets.jsonl --backend null --no-progress --report ") + q(report) +
                        " --html " + q(html) + " --output " + q(outputs));
  ASSERT_EQ(r.rc, 0) << r.out << r.err;
  const auto j = nlohmann::json::parse(read(report));
  const auto& ev = j.at("evaluation");
  // data/demo/tickets.jsonl: 56 tickets, every one labelled through attributes.dataset_intent.
  EXPECT_EQ(ev.at("records"), 56);
  EXPECT_EQ(ev.at("dead_lettered"), 0);
  EXPECT_EQ(ev.at("labelled"), 56);
  EXPECT_EQ(ev.at("routed").get<int>() + ev.at("escalated").get<int>(), 56);
  EXPECT_EQ(j.at("run").at("backend"), "null");
  // One output line per record, each naming its topic and message.
  std::ifstream in(outputs);
  size_t lines = 0;
  for (std::string line; std::getline(in, line); ++lines) {
    const auto o = nlohmann::json::parse(line);
    EXPECT_TRUE(o.at("topic").get<std::string>().rfind("tickets.", 0) == 0);
    EXPECT_TRUE(o.at("message").contains("ticket"));
  }
  EXPECT_EQ(lines, 56u);
  const auto page = read(html);
  EXPECT_NE(page.find("id=\"confusion-matrix\""), std::string::npos);
  EXPECT_NE(r.out.find("records 56"), std::string::npos) << r.out;
}

// The cascade cost model comes from the config's cost section; flags override it.
TEST_F(replay_cli, cost_model_from_config_and_flags) {
  const auto cfg = dir_ / "cost.yaml";
  {
    std::ofstream y(cfg);
    y << "cost:\n  frontier_per_call: 0.5\n  slm_per_ticket: 0.001\n  weekly_tickets: 1000\n";
  }
  const auto report = dir_ / "cost.json";
  auto r = triage(std::string("data/demo/tickets.jsonl --backend null --no-progress --config ") + q(cfg) +
                  " --report " + q(report));
  ASSERT_EQ(r.rc, 0) << r.out << r.err;
  auto cost = nlohmann::json::parse(read(report)).at("evaluation").at("cost");
  EXPECT_DOUBLE_EQ(cost.at("frontier_cost_per_call").get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(cost.at("slm_cost_per_ticket").get<double>(), 0.001);
  EXPECT_DOUBLE_EQ(cost.at("weekly_volume").get<double>(), 1000);
  EXPECT_DOUBLE_EQ(cost.at("all_frontier_weekly").get<double>(), 500);

  r = triage(std::string("data/demo/tickets.jsonl --backend null --no-progress --config ") + q(cfg) +
             " --frontier-cost 0.02 --report " + q(report));
  ASSERT_EQ(r.rc, 0) << r.out << r.err;
  cost = nlohmann::json::parse(read(report)).at("evaluation").at("cost");
  EXPECT_DOUBLE_EQ(cost.at("frontier_cost_per_call").get<double>(), 0.02);
  EXPECT_DOUBLE_EQ(cost.at("weekly_volume").get<double>(), 1000);

  r = triage(std::string("data/demo/tickets.jsonl --backend null --no-progress --slm-cost -1"));
  EXPECT_NE(r.rc, 0);
}

TEST_F(replay_cli, policy_comparison_and_errors) {
  // Run b: a policy that routes nothing below confidence 1.0 ... the null backend
  // gives 1.0, so instead escalate everything of one category.
  const auto cfg = dir_ / "strict.yaml";
  {
    std::ofstream y(cfg);
    y << "routing:\n  min_confidence: 0.5\n  always_escalate: [disputes, cards]\n";
  }
  const auto report = dir_ / "c.json";
  auto r = triage(std::string("data/demo/tickets.jsonl --backend null --no-progress --compare-config ") +
                  q(cfg) + " --report " + q(report));
  ASSERT_EQ(r.rc, 0) << r.out << r.err;
  const auto j = nlohmann::json::parse(read(report));
  const auto& c = j.at("comparison");
  EXPECT_EQ(c.at("records"), 56);
  EXPECT_EQ(c.at("category_changed"), 0);  // same model: only outcomes change
  EXPECT_GT(c.at("outcome_changed").get<int>(), 0);
  EXPECT_EQ(c.at("difference"), 0.0);
  EXPECT_GT(j.at("evaluation_b").at("escalation_rate").get<double>(),
            j.at("evaluation").at("escalation_rate").get<double>());

  // A malformed protobuf file: the error names the byte offset, exit 2.
  const auto pb = dir_ / "bad.pb";
  {
    std::ofstream f(pb, std::ios::binary);
    f << '\x05' << "ab";  // promises 5 bytes, has 2
  }
  r = triage(q(pb) + " --backend null --no-progress");
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("byte offset 0"), std::string::npos) << r.err;

  // Writing to live topics needs --allow-live-topics.
  r = triage("data/demo/tickets.jsonl --backend null --no-progress --output-kafka --output-prefix ''");
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("--allow-live-topics"), std::string::npos) << r.err;

  r = triage("data/demo/tickets.jsonl --backend null --pace sideways");
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("--pace"), std::string::npos) << r.err;

  // A Kafka setting typed without '=' is refused without echoing its value.
  r = triage("data/demo/tickets.jsonl --backend null --set 'sasl.password:hunter2'");
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("--set 'sasl.password...'"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("hunter2"), std::string::npos) << r.err;
}

}  // namespace
