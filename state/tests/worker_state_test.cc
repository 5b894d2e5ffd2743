// The worker refuses to run without its state: a damaged store stops
// kafka_worker::create before it joins the group, with the store's path in
// the error. No broker needed: the store is opened first.
#include <filesystem>
#include <fstream>
#include <random>

#include <gtest/gtest.h>

#include "state/store.h"
#include "workers/worker.h"

namespace triage {
namespace {

TEST(worker_state, a_corrupt_store_stops_the_worker_before_it_joins) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("triage-worker-state-" + std::to_string(std::random_device{}()));
  const auto store_dir = dir / "w9-0";
  {
    auto s = state::store::open(store_dir.string());
    ASSERT_TRUE(s) << s.error().message;
  }
  std::ofstream(store_dir / "CURRENT", std::ios::trunc) << "garbage";
  topology::config cfg;
  cfg.state.enabled = true;
  cfg.state.directory = dir.string();
  // Nothing listens here: the worker must fail on its store, not on Kafka.
  cfg.kafka.settings = {{"bootstrap.servers", "127.0.0.1:1"}};
  workers::null_backend model({"cards"});
  auto w = workers::kafka_worker::create(cfg, model, {.worker_id = "w9"});
  ASSERT_FALSE(w);
  EXPECT_NE(w.error().message.find(store_dir.string()), std::string::npos) << w.error().message;
  EXPECT_NE(w.error().message.find("state store"), std::string::npos) << w.error().message;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace triage
