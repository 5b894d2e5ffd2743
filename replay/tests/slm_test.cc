// `triage replay` with the real SLM (the installed SmolLM2 model and the
// banking adapter) on 50 labelled banking tickets. Label `model`: Release
// only, too slow for the Debug ASan pass.
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "base/csv.h"
#include "replay/tests/cli_util.h"

namespace {

using namespace triage::replay::testing;

// Writes `n` rows of data/banking77/train.csv, every `step`-th, to `path`
// (text,intent); false if the data cannot be read.
bool write_banking_sample(const fs::path& path, size_t n, size_t step) {
  auto table = triage::read_csv(TRIAGE_SOURCE_DIR "/data/banking77/train.csv");
  EXPECT_TRUE(table) << table.error().message;
  if (!table || table.value().rows.size() < (n - 1) * step + 1) return false;
  std::ofstream f(path);
  f << "text,intent\n";
  for (size_t i = 0; i < n; ++i) {
    const auto& row = table.value().rows[i * step];
    f << '"';
    for (char c : row[0]) (c == '"' ? f << "\"\"" : f << c);  // RFC 4180 quoting
    f << "\"," << row[1] << "\n";
  }
  return static_cast<bool>(f);
}

TEST_F(replay_cli, slm_on_fifty_labelled_banking_tickets) {
  // 50 rows spread over data/banking77/train.csv (every 200th).
  const auto sample = dir_ / "banking50.csv";
  ASSERT_TRUE(write_banking_sample(sample, 50, 200));
  const auto report = dir_ / "slm.json";
  const auto r = triage(q(sample) + " --backend cpu --no-progress --report " + q(report));
  ASSERT_EQ(r.rc, 0) << r.out << r.err;
  const auto ev = nlohmann::json::parse(read(report)).at("evaluation");
  EXPECT_EQ(ev.at("labelled"), 50);
  EXPECT_EQ(ev.at("urgency_labelled"), 50);
  // The banking adapter reaches well above chance (1/8 categories) on its own domain.
  EXPECT_GT(ev.at("category_accuracy").get<double>(), 0.6);
  EXPECT_GT(ev.at("latency").at("ticket").at("p50_ms").get<double>(), 0.0);
}

// A config with mode: generate is replayed as a worker with it would run
// it (the instruct model answering JSON), and --compare-config puts head and
// generate mode side by side on the same tickets.
TEST_F(replay_cli, compare_config_replays_generate_mode_beside_head_mode) {
  const auto sample = dir_ / "banking4.csv";
  ASSERT_TRUE(write_banking_sample(sample, 4, 2500));
  // topology/default.yaml with mode: generate (paths in it are relative to
  // the source tree, where the test runs the binary).
  std::string yaml = read(TRIAGE_SOURCE_DIR "/topology/default.yaml");
  const auto at = yaml.find("\nmode: head\n");
  ASSERT_NE(at, std::string::npos) << "topology/default.yaml no longer says 'mode: head'";
  yaml.replace(at, 12, "\nmode: generate\n");
  const auto generate_yaml = dir_ / "generate.yaml";
  std::ofstream(generate_yaml) << yaml;

  const auto report = dir_ / "compare.json";
  const auto r = triage(q(sample) + " --backend cpu --no-progress --compare-config " + q(generate_yaml) +
                        " --report " + q(report));
  ASSERT_EQ(r.rc, 0) << r.out << r.err;
  const auto j = nlohmann::json::parse(read(report));
  EXPECT_EQ(j.at("run").at("backend"), "cpu");
  EXPECT_EQ(j.at("run_b").at("backend"), "cpu-generate");
  EXPECT_EQ(j.at("evaluation").at("labelled"), 4);
  EXPECT_EQ(j.at("evaluation_b").at("labelled"), 4);
  EXPECT_NE(j.at("run_b").at("adapter_version").get<std::string>().find("generate@"), std::string::npos);

  // A generate config as the main run, too.
  const auto only = triage(q(sample) + " --backend cpu --no-progress --config " + q(generate_yaml) +
                           " --report " + q(report));
  ASSERT_EQ(only.rc, 0) << only.out << only.err;
  EXPECT_EQ(nlohmann::json::parse(read(report)).at("run").at("backend"), "cpu-generate");
}

}  // namespace
