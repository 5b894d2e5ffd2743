#include "workers/state_cmds.h"

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>

#include <CLI/CLI.hpp>
#include <google/protobuf/util/json_util.h>
#include <librdkafka/rdkafkacpp.h>
#include <nlohmann/json.hpp>

#include "state/changelog.h"
#include "state/drift.h"
#include "state/report.h"
#include "state/store.h"
#include "state/updater.h"
#include "topology/config.h"
#include "workers/kafka_conf.h"

namespace triage::workers {
namespace {

struct state_args {
  std::string dir;
  std::string config = "topology/default.yaml";
  std::string quarter;
  int partition = -1;
  bool json = false;
  int hours = 24;
  std::string out = "-";
  std::vector<int> partitions;
};

int fail(const std::string& cmd, const std::string& message, int code = 1) {
  std::cerr << "triage " << cmd << ": " << message << "\n";
  return code;
}

result<std::unique_ptr<state::store>> open_read_only(const std::string& dir) {
  if (dir.empty()) return make_error(state::errc::invalid_argument, "--dir: the state store directory is required");
  return state::store::open(dir, {.read_only = true});
}

int run_summary(const state_args& a) {
  auto s = open_read_only(a.dir);
  if (!s) return fail("state", s.error().message, 2);
  if (!a.quarter.empty() && !state::is_quarter(a.quarter)) {
    return fail("state", "--quarter '" + a.quarter + "': expected e.g. 2026Q4", 2);
  }
  auto sum = state::summarize(*s.value(), a.quarter.empty() ? std::nullopt : std::optional<std::string>(a.quarter),
                              a.partition >= 0 ? std::optional<int32_t>(a.partition) : std::nullopt);
  if (!sum) return fail("state", sum.error().message);
  if (a.json) {
    std::cout << state::to_json(sum.value()).dump(2) << "\n";
  } else {
    std::cout << state::to_table(sum.value(), a.hours);
  }
  return 0;
}

int run_export(const state_args& a) {
  if (!state::is_quarter(a.quarter)) return fail("state export", "--quarter '" + a.quarter + "': expected e.g. 2026Q4", 2);
  auto s = open_read_only(a.dir);
  if (!s) return fail("state export", s.error().message, 2);
  std::ofstream file;
  if (a.out != "-") {
    file.open(a.out, std::ios::trunc);
    if (!file) return fail("state export", a.out + ": cannot write", 2);
  }
  std::ostream& out = a.out == "-" ? std::cout : file;
  auto n = state::export_examples(*s.value(), a.quarter, out);
  if (!n) return fail("state export", n.error().message);
  out.flush();
  if (!out) return fail("state export", a.out + ": write failed");
  std::cerr << "triage state export: " << n.value() << " examples of " << a.quarter << " from " << a.dir
            << (a.out == "-" ? std::string() : " to " + a.out) << "\n";
  return 0;
}

int run_dump(const state_args& a) {
  auto s = open_read_only(a.dir);
  if (!s) return fail("state dump", s.error().message, 2);
  for (auto f : state::all_families) {
    auto ok = s.value()->scan(f, "", [&](std::string_view k, std::string_view v) {
      nlohmann::json j{{"family", state::family_name(f)}, {"key", k}};
      if (state::is_additive(f) || (f == state::family::meta && v.size() == 8)) {
        auto c = state::decode_counts(v);
        if (c) j["counts"] = c.value();
        else j["value"] = v;
      } else {
        j["value"] = v;
      }
      std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
      return true;
    });
    if (!ok) return fail("state dump", ok.error().message);
  }
  return 0;
}

int run_restore(const state_args& a) {
  auto cfg = topology::load_config(a.config);
  if (!cfg) return fail("state restore", cfg.error().message, 2);
  if (a.dir.empty()) return fail("state restore", "--dir: the store directory to restore into is required", 2);
  const auto& topic = cfg.value().state.changelog_topic;
  std::vector<int32_t> parts(a.partitions.begin(), a.partitions.end());
  if (parts.empty()) {
    auto n = state::partition_count(cfg.value().kafka.settings, topic);
    if (!n) return fail("state restore", n.error().message);
    for (int p = 0; p < n.value(); ++p) parts.push_back(p);
  }
  auto s = state::store::open(a.dir);
  if (!s) return fail("state restore", s.error().message, 2);
  auto r = state::restore(*s.value(), cfg.value().kafka.settings, topic, parts, cfg.value().state.restore_timeout_ms);
  if (!r) return fail("state restore", r.error().message);
  std::cerr << "triage state restore: " << r.value().records << " records of " << parts.size()
            << " partition(s) from " << topic << " into " << a.dir << "\n";
  return 0;
}

// Corrections: protobuf, or the canonical JSON mapping.
result<v1::Correction> decode_correction(std::string_view bytes) {
  v1::Correction c;
  if (!bytes.empty() && bytes.front() == '{') {
    auto st = google::protobuf::util::JsonStringToMessage(std::string(bytes), &c);
    if (!st.ok()) return make_error(state::errc::invalid_argument, "correction JSON: " + st.ToString());
    return c;
  }
  if (!c.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return make_error(state::errc::invalid_argument, "correction: not a Correction protobuf");
  }
  return c;
}

int run_corrections(const state_args& a) {
  auto cfg = topology::load_config(a.config);
  if (!cfg) return fail("state corrections", cfg.error().message, 2);
  auto s = state::store::open(a.dir, {.create_if_missing = false});
  if (!s) return fail("state corrections", s.error().message, 2);
  auto& db = *s.value();
  const auto& topic = cfg.value().topics.corrections;
  auto n = state::partition_count(cfg.value().kafka.settings, topic);
  if (!n) return fail("state corrections", n.error().message);
  auto conf = make_conf(cfg.value().kafka.settings, {{"group.id", "triage-state-corrections"},
                                                     {"enable.auto.commit", "false"},
                                                     {"isolation.level", "read_committed"},
                                                     {"enable.partition.eof", "true"}});
  if (!conf) return fail("state corrections", conf.error().message, 2);
  std::string err;
  std::unique_ptr<RdKafka::KafkaConsumer> c(RdKafka::KafkaConsumer::create(conf.value().get(), err));
  if (!c) return fail("state corrections", "consumer: " + err);
  // Where each partition stands is kept in the store, written with the
  // corrections' effects: each correction is applied exactly once to it.
  std::map<int32_t, int64_t> end;
  std::vector<RdKafka::TopicPartition*> assign;
  for (int32_t p = 0; p < n.value(); ++p) {
    int64_t lo = 0, hi = 0;
    if (auto rc = c->query_watermark_offsets(topic, p, &lo, &hi, 30000); rc != RdKafka::ERR_NO_ERROR) {
      RdKafka::TopicPartition::destroy(assign);
      return fail("state corrections", topic + "/" + std::to_string(p) + ": " + RdKafka::err2str(rc));
    }
    auto from = db.get_counts(state::family::meta, "corrections|" + std::to_string(p));
    if (!from) return fail("state corrections", from.error().message);
    const int64_t start = from.value().empty() ? RdKafka::Topic::OFFSET_BEGINNING : from.value()[0];
    if (hi <= std::max<int64_t>(lo, from.value().empty() ? lo : start)) continue;
    end[p] = hi;
    assign.push_back(RdKafka::TopicPartition::create(topic, p, start));
  }
  c->assign(assign);
  RdKafka::TopicPartition::destroy(assign);
  int64_t joined = 0, unmatched = 0, bad = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(cfg.value().state.restore_timeout_ms);
  while (!end.empty() && std::chrono::steady_clock::now() < deadline) {
    std::unique_ptr<RdKafka::Message> m(c->consume(200));
    if (m->err() == RdKafka::ERR__PARTITION_EOF) {
      if (m->offset() >= end[m->partition()]) end.erase(m->partition());
      continue;
    }
    if (m->err() == RdKafka::ERR__TIMED_OUT) continue;
    if (m->err() != RdKafka::ERR_NO_ERROR) return fail("state corrections", topic + ": " + m->errstr());
    state::write_set w;
    auto corr = decode_correction(std::string_view(static_cast<const char*>(m->payload()), m->len()));
    if (!corr) {
      ++bad;
      std::cerr << "triage state corrections: " << topic << "/" << m->partition() << " offset " << m->offset()
                << ": " << corr.error().message << " (skipped)\n";
    } else {
      auto j = state::join_correction(db, corr.value(), w);
      if (!j) return fail("state corrections", j.error().message);
      (j.value() ? joined : unmatched) += 1;
    }
    w.put(state::family::meta, "corrections|" + std::to_string(m->partition()), state::encode_counts({m->offset() + 1}));
    if (auto ok = db.write(w); !ok) return fail("state corrections", ok.error().message);
    if (m->offset() + 1 >= end[m->partition()]) end.erase(m->partition());
  }
  c->close();
  std::cerr << "triage state corrections: " << joined << " joined, " << unmatched
            << " without a stored decision, " << bad << " undecodable, from " << topic << "\n";
  return end.empty() ? 0 : fail("state corrections", "did not reach the end of " + topic + " in time");
}

}  // namespace

void add_state_commands(CLI::App& app) {
  static state_args a;
  auto* st = app.add_subcommand(
      "state", "escalation rate, drift and accuracy per category and quarter, from a state store");
  st->add_option("--dir", a.dir, "state store directory (<state.directory>/<worker>-<instance>)");
  st->add_option("--quarter", a.quarter, "only this quarter, e.g. 2026Q4");
  st->add_option("--partition", a.partition, "only this input partition")->capture_default_str();
  st->add_option("--hours", a.hours, "hourly escalation-rate buckets shown")->capture_default_str();
  st->add_flag("--json", a.json, "JSON instead of tables");
  st->callback([st] {
    if (st->get_subcommands().empty()) std::exit(run_summary(a));
  });

  auto* ex = st->add_subcommand("export", "write a quarter's retraining examples as JSON lines");
  ex->add_option("--dir", a.dir, "state store directory");
  ex->add_option("--quarter", a.quarter, "quarter, e.g. 2026Q4")->required();
  ex->add_option("--out", a.out, "output file, - for stdout")->capture_default_str();
  ex->callback([] { std::exit(run_export(a)); });

  auto* re = st->add_subcommand("restore", "load the changelog into a store directory");
  re->add_option("--config", a.config, "topology config (YAML)")->capture_default_str();
  re->add_option("--dir", a.dir, "store directory to restore into")->required();
  re->add_option("--partitions", a.partitions, "input partitions (default: all)")->delimiter(',');
  re->callback([] { std::exit(run_restore(a)); });

  auto* co = st->add_subcommand("corrections", "join the corrections topic, to its end, to the stored decisions");
  co->add_option("--config", a.config, "topology config (YAML)")->capture_default_str();
  co->add_option("--dir", a.dir, "state store directory")->required();
  co->callback([] { std::exit(run_corrections(a)); });

  auto* du = st->add_subcommand("dump", "every key and value of a store, JSON lines");
  du->add_option("--dir", a.dir, "state store directory")->required();
  du->callback([] { std::exit(run_dump(a)); });
}

}  // namespace triage::workers
