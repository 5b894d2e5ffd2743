// The worker's state against a real Kafka broker: after a run with SIGKILLs,
// restarts and a lost state directory, the store's counters equal the
// outputs on the topics (read_committed) exactly; restoring the changelog
// into an empty directory reproduces the worker's store; corrections join
// the stored decisions. The classifier is the null backend.
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <stop_token>
#include <thread>
#include <tuple>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "schemas/triage.pb.h"
#include "state/changelog.h"
#include "state/drift.h"
#include "state/report.h"
#include "state/store.h"
#include "state/updater.h"
#include "tests/kafka_test_util.h"
#include "workers/topics.h"

namespace triage {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
const std::vector<std::string> categories{"cards", "payments", "disputes", "account"};
// Ticket i's record time: the first half in 2026Q3, the rest in 2026Q4, a
// minute apart, so quarters and hour buckets both vary.
constexpr int64_t q3_start_ms = 1782864000000LL;  // 2026-07-01T00:00:00Z
constexpr int64_t q4_start_ms = 1790812800000LL;  // 2026-10-01T00:00:00Z
int64_t ticket_time(int i, int n) {
  return (i < n / 2 ? q3_start_ms : q4_start_ms) + static_cast<int64_t>(i) * 60000;
}

// (quarter, category, urgency, outcome) -> tickets
using tally = std::map<std::tuple<std::string, std::string, int, std::string>, int64_t>;

std::map<std::string, std::string> dump(const state::store& s) {
  std::map<std::string, std::string> out;
  for (auto f : state::all_families) {
    EXPECT_TRUE(s.scan(f, "", [&](std::string_view k, std::string_view v) {
      out[std::string(state::family_name(f)) + "/" + std::string(k)] = std::string(v);
      return true;
    }));
  }
  return out;
}

tally counters_of(const state::store& s) {
  tally t;
  EXPECT_TRUE(s.scan(state::family::counters, "", [&](std::string_view k, std::string_view v) {
    std::vector<std::string> f;
    std::string cur;
    for (char c : k) {
      if (c == '|') {
        f.push_back(cur);
        cur.clear();
      } else {
        cur += c;
      }
    }
    f.push_back(cur);
    EXPECT_EQ(f.size(), 5u) << k;
    if (f.size() == 5) t[{f[1], f[2], std::stoi(f[3]), f[4]}] += state::decode_counts(v).value().at(0);
    return true;
  }));
  return t;
}

class state_e2e : public ::testing::Test {
 protected:
  void SetUp() override {
    servers_ = testing::bootstrap();
    ASSERT_FALSE(servers_.empty())
        << "no broker: run under ctest (kafka_broker fixture) or set TRIAGE_KAFKA_BOOTSTRAP";
    prefix_ = testing::unique_name("st");
    cfg_.kafka.settings = {{"bootstrap.servers", servers_}};
    cfg_.topics.tickets = prefix_ + ".tickets";
    cfg_.topics.escalations = prefix_ + ".escalations";
    cfg_.topics.dead_letter = prefix_ + ".dlq";
    cfg_.topics.corrections = prefix_ + ".corrections";
    cfg_.topics.routed_prefix = prefix_ + ".routed.";
    cfg_.topics.partitions = 4;
    cfg_.state.changelog_topic = prefix_ + ".changelog";
    auto ok = workers::create_topics(cfg_, workers::topic_names(cfg_, categories));
    ASSERT_TRUE(ok) << ok.error().message;
    dir_ = fs::temp_directory_path() / prefix_;
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // n tickets with record times from ticket_time(), every 50th malformed.
  int produce_tickets(int n) {
    auto p = testing::make_producer({{"bootstrap.servers", servers_}, {"enable.idempotence", "true"}});
    int bad = 0;
    for (int i = 0; i < n; ++i) {
      std::string value;
      if (i % 50 == 49) {
        value = R"({"id": "broken)";
        ++bad;
      } else {
        v1::TicketEvent t;
        t.set_id("T-" + std::to_string(i));
        t.set_body("ticket number " + std::to_string(i) + ": my card payment failed" +
                   std::string(static_cast<size_t>(i % 7) * 40, 'x'));
        value = t.SerializeAsString();
      }
      std::string key = "k";  // (not "k" + ...: GCC 12 warns falsely, -Wrestrict)
      key += std::to_string(i);
      RdKafka::ErrorCode rc;
      while ((rc = p->produce(cfg_.topics.tickets, RdKafka::Topic::PARTITION_UA, RdKafka::Producer::RK_MSG_COPY,
                              value.data(), value.size(), key.data(), key.size(), ticket_time(i, n),
                              nullptr)) == RdKafka::ERR__QUEUE_FULL) {
        p->poll(100);
      }
      EXPECT_EQ(rc, RdKafka::ERR_NO_ERROR);
    }
    EXPECT_EQ(p->flush(30000), RdKafka::ERR_NO_ERROR);
    return bad;
  }

  // What the output topics hold, tallied like the store's counters.
  tally outputs(int n) {
    auto names = workers::topic_names(cfg_, categories);
    names.erase(names.begin());  // the input
    const auto records = testing::consume_all(servers_, names, static_cast<size_t>(n), 120s);
    EXPECT_EQ(records.size(), static_cast<size_t>(n));
    auto index = [](const std::string& s, size_t skip) { return std::stoi(s.substr(skip)); };
    tally t;
    for (const auto& r : records) {
      if (r.topic == cfg_.topics.dead_letter) {
        v1::DeadLetter dl;
        EXPECT_TRUE(dl.ParseFromString(r.value));
        t[{state::quarter_of(ticket_time(index(dl.key(), 1), n)), "-", 0, "dead_lettered"}]++;
      } else if (r.topic == cfg_.topics.escalations) {
        v1::Escalation e;
        EXPECT_TRUE(e.ParseFromString(r.value));
        t[{state::quarter_of(ticket_time(index(e.ticket().id(), 2), n)), e.draft().category(),
           e.draft().urgency(), "escalated"}]++;
      } else {
        v1::RoutedTicket rt;
        EXPECT_TRUE(rt.ParseFromString(r.value));
        t[{state::quarter_of(ticket_time(index(rt.ticket().id(), 2), n)), rt.result().category(),
           rt.result().urgency(), "routed"}]++;
      }
    }
    return t;
  }

  std::string write_config(const std::string& group) {
    const auto config = dir_ / "topology.yaml";
    std::ofstream f(config);
    f << "kafka:\n  settings:\n    bootstrap.servers: " << servers_
      << "\n    session.timeout.ms: 6000\n    heartbeat.interval.ms: 1000\n"
      << "topics:\n  tickets: " << cfg_.topics.tickets << "\n  escalations: " << cfg_.topics.escalations
      << "\n  dead_letter: " << cfg_.topics.dead_letter << "\n  routed_prefix: " << cfg_.topics.routed_prefix
      << "\n  corrections: " << cfg_.topics.corrections << "\n  partitions: 4"
      << "\nworker:\n  group_id: " << group << "\n  transactional_id_prefix: " << group
      << "\n  batch_max_tickets: 6\n  batch_max_wait_ms: 5\n"
      << "state:\n  enabled: true\n  directory: " << (dir_ / "state").string()
      << "\n  changelog_topic: " << cfg_.state.changelog_topic << "\n  baseline_tickets: 100\n";
    return config.string();
  }

  std::string servers_, prefix_;
  topology::config cfg_;
  fs::path dir_;
};

TEST_F(state_e2e, counters_equal_outputs_after_kills_restarts_and_a_lost_disk_and_the_changelog_restores_them) {
  const std::string binary = TRIAGE_BINARY;
  const int n = 2400;
  produce_tickets(n);
  const std::string config = write_config(prefix_ + "-group");
  const auto taxonomy = dir_ / "taxonomy.csv";
  {
    std::ofstream t(taxonomy);
    t << "intent,category,urgency\n";
    for (const auto& c : categories) t << "i_" << c << "," << c << ",2\n";
  }
  auto spawn = [&](const std::vector<std::string>& extra) -> std::pair<pid_t, int> {
    std::vector<std::string> args{binary, "worker", "--config", config, "--worker-id", "w1",
                                  "--backend", "null", "--taxonomy", taxonomy.string(),
                                  "--metrics-listen", "127.0.0.1:0"};
    args.insert(args.end(), extra.begin(), extra.end());
    return testing::spawn_with_stderr(args);
  };
  // Waits until the worker has its partitions (and restored their state).
  std::string log;
  auto wait_for = [&log](int fd, const std::string& needle) {
    log.clear();
    char buf[4096];
    const auto deadline = std::chrono::steady_clock::now() + 90s;
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 200) <= 0) continue;
      const ssize_t got = read(fd, buf, sizeof buf);
      if (got <= 0) break;
      log.append(buf, static_cast<size_t>(got));
      if (log.find(needle) != std::string::npos) return true;
    }
    return false;
  };
  // Input offsets the group has committed so far, summed over partitions.
  auto committed_total = [&]() -> int64_t {
    auto conf = workers::make_conf({{"bootstrap.servers", servers_}}, {{"group.id", prefix_ + "-group"}});
    std::string err;
    std::unique_ptr<RdKafka::KafkaConsumer> c(RdKafka::KafkaConsumer::create(conf.value().get(), err));
    if (!c) return -1;
    std::vector<RdKafka::TopicPartition*> parts;
    for (int32_t p = 0; p < 4; ++p) parts.push_back(RdKafka::TopicPartition::create(cfg_.topics.tickets, p));
    int64_t total = 0;
    if (c->committed(parts, 10000) == RdKafka::ERR_NO_ERROR) {
      for (const auto* tp : parts) total += std::max<int64_t>(0, tp->offset());
    }
    RdKafka::TopicPartition::destroy(parts);
    c->close();
    return total;
  };
  const auto store_dir = dir_ / "state" / "w1-0";
  int64_t committed_before = 0;
  for (int kill = 0; kill < 3; ++kill) {
    if (kill == 2) {
      ASSERT_TRUE(fs::exists(store_dir / "CURRENT"));
      fs::remove_all(store_dir);  // the worker loses its disk
    }
    const auto [pid, fd] = spawn({});
    ASSERT_GT(pid, 0);
    // Whatever fails below, the worker does not outlive the test.
    std::unique_ptr<void, std::function<void(void*)>> reaper(reinterpret_cast<void*>(1), [pid = pid](void*) {
      if (::kill(pid, SIGKILL) == 0) waitpid(pid, nullptr, 0);
    });
    // After the lost disk, the worker must restore before it processes.
    const std::string needle = kill == 2 ? "restored the state of " : ": assigned ";
    ASSERT_TRUE(wait_for(fd, needle)) << "worker " << kill << " never logged '" << needle << "':\n" << log;
    // From here on its stderr is drained, so the worker never blocks on a
    // full pipe while the test waits for it to commit; the tail is kept for
    // the failure message.
    std::string tail;
    std::mutex tail_mutex;
    std::jthread drain([fd = fd, &tail, &tail_mutex](std::stop_token stop) {
      char chunk[4096];
      while (!stop.stop_requested()) {
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0) continue;
        const ssize_t got = read(fd, chunk, sizeof chunk);
        if (got <= 0) return;
        std::lock_guard lock(tail_mutex);
        tail.append(chunk, static_cast<size_t>(got));
        if (tail.size() > 16384) tail.erase(0, tail.size() - 16384);
      }
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(900 + 600 * kill));
    // Each run must commit something before it dies (on a loaded machine the
    // sleep alone may not be enough): the run after the lost disk then has
    // committed offsets that only the changelog can bring the state up to.
    const auto progress_deadline = std::chrono::steady_clock::now() + 60s;
    int64_t committed_now = committed_total();
    while (committed_now <= committed_before && std::chrono::steady_clock::now() < progress_deadline) {
      std::this_thread::sleep_for(100ms);
      committed_now = committed_total();
    }
    if (committed_now <= committed_before) {
      std::lock_guard lock(tail_mutex);
      FAIL() << "worker " << kill << " committed nothing in 60 s (group offsets at " << committed_before
             << " of " << n << "); its log ends:\n" << tail;
    }
    committed_before = committed_now;
    ASSERT_EQ(::kill(pid, SIGKILL), 0);
    int status = 0;
    waitpid(pid, &status, 0);
    reaper.release();
    drain.request_stop();
    drain.join();
    close(fd);
    EXPECT_TRUE(WIFSIGNALED(status)) << "the worker exited before it was killed";
  }
  {
    const auto [pid, fd] = spawn({"--idle-exit-ms", "8000"});
    log.clear();
    std::thread drain([fd = fd, &log] {
      char buf[4096];
      for (ssize_t got; (got = read(fd, buf, sizeof buf)) > 0;) log.append(buf, static_cast<size_t>(got));
    });
    int status = 0;
    waitpid(pid, &status, 0);
    drain.join();
    close(fd);
    ASSERT_TRUE(WIFEXITED(status));
    ASSERT_EQ(WEXITSTATUS(status), 0) << log;
  }

  const tally produced = outputs(n);
  auto s = state::store::open(store_dir.string(), {.read_only = true});
  ASSERT_TRUE(s) << s.error().message;
  const tally counted = counters_of(*s.value());
  EXPECT_EQ(counted, produced);
  int64_t total = 0;
  for (const auto& [k, v] : counted) total += v;
  EXPECT_EQ(total, n);
  for (int32_t p = 0; p < 4; ++p) EXPECT_TRUE(s.value()->applied_offset(p).value()) << "partition " << p;

  // The changelog alone, into an empty directory, gives the same store.
  auto fresh = state::store::open((dir_ / "restored").string());
  ASSERT_TRUE(fresh) << fresh.error().message;
  auto r = state::restore(*fresh.value(), cfg_.kafka.settings, cfg_.state.changelog_topic, {0, 1, 2, 3}, 60000);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_GT(r.value().records, 0);
  const auto want = dump(*s.value());
  const auto got = dump(*fresh.value());
  EXPECT_EQ(got.size(), want.size());
  EXPECT_TRUE(got == want) << "the restored store differs from the worker's";
  EXPECT_EQ(counters_of(*fresh.value()), produced);
  // Both quarters, with drift statistics beyond the 100-ticket baselines.
  auto d = state::drift_of(*fresh.value(), "2026Q4");
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_EQ(d.value().baseline_tickets, 4 * 100);
  EXPECT_GT(d.value().tickets, 0);
  fresh.value()->close();

  // Corrections: three agree, two do not, one names an unknown ticket.
  {
    auto p = testing::make_producer({{"bootstrap.servers", servers_}});
    auto correct = [&](const std::string& id, const std::string& category) {
      v1::Correction c;
      c.set_ticket_id(id);
      c.set_category(category);
      c.set_source("agent-1");
      testing::produce(*p, cfg_.topics.corrections, id, c.SerializeAsString());
    };
    // Each of these tickets' decisions, from the outputs' counters' view.
    std::map<std::string, std::string> decided;
    EXPECT_TRUE(s.value()->scan(state::family::decisions, "", [&](std::string_view k, std::string_view v) {
      decided[std::string(k.substr(6))] = state::decode_decision(v).value().category;
      return true;
    }));
    ASSERT_GE(decided.size(), 5u);
    auto it = decided.begin();
    std::vector<std::pair<std::string, std::string>> agree, disagree;
    for (int i = 0; i < 3; ++i, ++it) agree.push_back(*it);
    for (int i = 0; i < 2; ++i, ++it) disagree.push_back(*it);
    for (const auto& [id, cat] : agree) correct(id, cat);
    for (const auto& [id, cat] : disagree) correct(id, cat == "cards" ? "account" : "cards");
    correct("T-no-such-ticket", "cards");
    EXPECT_EQ(p->flush(30000), RdKafka::ERR_NO_ERROR);
  }
  s.value()->close();
  const std::string cmd = binary + " state corrections --config " + config + " --dir " +
                          (dir_ / "restored").string() + " 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  // Running it again applies nothing twice.
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  auto after = state::store::open((dir_ / "restored").string(), {.read_only = true});
  ASSERT_TRUE(after) << after.error().message;
  auto sum = state::summarize(*after.value());
  ASSERT_TRUE(sum) << sum.error().message;
  int64_t corrections = 0, agreed = 0;
  for (const auto& c : sum.value().categories) {
    corrections += c.corrections;
    agreed += c.agreed;
  }
  EXPECT_EQ(corrections, 5);
  EXPECT_EQ(agreed, 3);
  after.value()->close();

  // The CLI over the same store: the JSON summary and the quarter's export.
  auto run = [](const std::string& command) {
    std::string out;
    FILE* f = popen(command.c_str(), "r");
    if (!f) return out;
    char buf[4096];
    for (size_t bytes; (bytes = fread(buf, 1, sizeof buf, f)) > 0;) out.append(buf, bytes);
    EXPECT_EQ(pclose(f), 0) << command;
    return out;
  };
  const std::string restored = (dir_ / "restored").string();
  const auto summary = nlohmann::json::parse(run(binary + " state --json --dir " + restored), nullptr, false);
  ASSERT_FALSE(summary.is_discarded());
  int64_t cli_tickets = 0, cli_corrections = 0;
  for (const auto& row : summary["categories"]) {
    cli_tickets += row["routed"].get<int64_t>() + row["escalated"].get<int64_t>() +
                   row["dead_lettered"].get<int64_t>();
    cli_corrections += row["corrections"].get<int64_t>();
  }
  EXPECT_EQ(cli_tickets, n);
  EXPECT_EQ(cli_corrections, 5);
  EXPECT_EQ(summary["drift"].size(), 2u);  // 2026Q3 and 2026Q4
  int64_t escalated_q4 = 0;
  for (const auto& [k, v] : produced) {
    if (std::get<0>(k) == "2026Q4" && std::get<3>(k) == "escalated") escalated_q4 += v;
  }
  const std::string exported = run(binary + " state export --quarter 2026Q4 --dir " + restored + " 2>/dev/null");
  int64_t lines = 0, escalated_lines = 0;
  for (size_t at = 0, nl; (nl = exported.find('\n', at)) != std::string::npos; at = nl + 1) {
    const auto j = nlohmann::json::parse(exported.substr(at, nl - at), nullptr, false);
    ASSERT_FALSE(j.is_discarded());
    EXPECT_EQ(j["quarter"], "2026Q4");
    ++lines;
    escalated_lines += j["outcome"] == "escalated";
  }
  // Every escalated ticket of the quarter is an example (the null backend is
  // always confident, so no low-confidence ones), plus corrected ones.
  EXPECT_EQ(escalated_lines, escalated_q4);
  EXPECT_GE(lines, escalated_q4);
}

TEST_F(state_e2e, restore_of_an_empty_changelog_leaves_an_empty_store) {
  ASSERT_TRUE(state::ensure_changelog_topic(cfg_.kafka.settings, cfg_.state.changelog_topic, 4, 1));
  auto s = state::store::open((dir_ / "empty").string());
  ASSERT_TRUE(s) << s.error().message;
  auto r = state::restore(*s.value(), cfg_.kafka.settings, cfg_.state.changelog_topic, {0, 1, 2, 3}, 30000);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r.value().records, 0);
  EXPECT_TRUE(dump(*s.value()).empty());
  // A changelog with fewer partitions than the input is refused.
  auto few = state::ensure_changelog_topic(cfg_.kafka.settings, cfg_.state.changelog_topic, 8, 1);
  ASSERT_FALSE(few);
  EXPECT_NE(few.error().message.find(cfg_.state.changelog_topic), std::string::npos) << few.error().message;
}

}  // namespace
}  // namespace triage
