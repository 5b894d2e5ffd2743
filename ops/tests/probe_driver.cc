// probe_driver.cc: a stand-in worker for the monitoring end-to-end test. It
// serves a worker_probe and drives it the way the worker loop does (consume,
// batch, classify, commit, lag, drift), with a chosen share of escalations,
// so a real Prometheus server can scrape it and evaluate the alert rules.
//
//   triage_probe_driver --listen 127.0.0.1:0 --address-file addr.txt
//                       --escalated 0.8 --psi 0.4 --seconds 60
//
// Prints nothing on success; writes the bound host:port to --address-file
// once serving; exits on SIGTERM/SIGINT or after --seconds.
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "ops/metrics/endpoint.h"
#include "ops/metrics/probe.h"

namespace {

std::atomic<bool> stop{false};
void on_signal(int) { stop.store(true); }

int usage(const char* why) {
  std::fprintf(stderr,
               "triage_probe_driver: %s\nusage: triage_probe_driver [--listen HOST:PORT] "
               "[--address-file FILE] [--escalated SHARE] [--dead-lettered SHARE] [--psi VALUE] "
               "[--seconds N]\n",
               why);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string listen = "127.0.0.1:0", address_file;
  double escalated = 0.1, dead = 0.002, psi = 0.05, seconds = 120;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) return usage(("missing value after " + a).c_str());
    const std::string v = argv[++i];
    if (a == "--listen") listen = v;
    else if (a == "--address-file") address_file = v;
    else if (a == "--escalated") escalated = std::atof(v.c_str());
    else if (a == "--dead-lettered") dead = std::atof(v.c_str());
    else if (a == "--psi") psi = std::atof(v.c_str());
    else if (a == "--seconds") seconds = std::atof(v.c_str());
    else return usage(("unknown option " + a).c_str());
  }
  std::signal(SIGTERM, on_signal);
  std::signal(SIGINT, on_signal);

  // The process's monitoring, as `triage worker` sets it up.
  auto mon = triage::ops::endpoint::start({.listen = listen});
  if (!mon) {
    std::fprintf(stderr, "triage_probe_driver: %s\n", mon.error().what().c_str());
    return 1;
  }
  triage::ops::health& health = mon.value()->health();
  health.declare({"model", "state"});
  triage::ops::worker_probe probe(mon.value()->registry());
  if (!address_file.empty()) {
    std::ofstream(address_file + ".part") << mon.value()->address() << "\n";
    std::rename((address_file + ".part").c_str(), address_file.c_str());
  }

  // Start-up as the worker does it: model, then assignment and restore.
  probe.set_model("smollm2-135m-instruct-q4_1", "driver", "null", "none");
  health.set("model", true);
  constexpr int partitions = 2;
  probe.rebalanced(partitions);
  probe.state_restored(partitions, 0);
  for (const char* s : {"psi_category", "psi_confidence", "psi_length"}) probe.drift_threshold(s, 0.25);
  probe.escalation_rate_threshold(0.5);
  health.set("state", true);
  if (psi > 0.25) probe.drift_alert("psi_category");  // the worker logs and counts a crossing once

  // 10 passes a second, 10 tickets a pass: 100 tickets/s over two partitions.
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  int64_t lag = 0;
  double owed_escalated = 0, owed_dead = 0;
  while (!stop.load() && std::chrono::steady_clock::now() < end) {
    health.heartbeat();
    for (int p = 0; p < partitions; ++p) {
      constexpr int n = 5;
      probe.consumed(p, n);
      probe.batch(n, n * 120, 0.004);
      std::vector<double> e2e;
      for (int t = 0; t < n; ++t) {
        owed_escalated += escalated;
        owed_dead += dead;
        if (owed_dead >= 1) {
          owed_dead -= 1;
          probe.ticket_out(triage::ops::outcome::dead_lettered, "", 0);
          probe.dead_lettered("bad_protobuf");
        } else if (owed_escalated >= 1) {
          owed_escalated -= 1;
          probe.ticket_out(triage::ops::outcome::escalated, "disputes", 0.55);
          probe.escalated("low_confidence");
        } else {
          probe.ticket_out(triage::ops::outcome::routed, t % 2 ? "payments" : "cards", 0.92);
        }
        // A shadow candidate that agrees on the category 4 times in 5.
        probe.shadow_decision(t % 5 != 0, t % 5 != 0);
        e2e.push_back(0.05);
      }
      probe.committed(e2e);
      probe.lag("tickets", p, lag);
      probe.drift("psi_category", p, psi);
      probe.escalation_rate(p, escalated);
    }
    // A worker's queue and state store as the worker samples them each second.
    probe.queue(static_cast<uint64_t>(20 * partitions), static_cast<uint64_t>(2400 * partitions), 0, 0);
    probe.state_memory(static_cast<uint64_t>(24) << 20);
    ++lag;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  health.set_stopping();
  return 0;
}
