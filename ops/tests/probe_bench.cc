// probe_bench.cc: what the probe costs the worker loop and what a scrape
// costs the process. Prints figures; asserts nothing.
//
//   build/ops/triage_probe_bench [categories=77] [tickets=2000000]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "ops/metrics/health.h"
#include "ops/metrics/probe.h"
#include "ops/metrics/server.h"

int main(int argc, char** argv) {
  const int categories = argc > 1 ? std::atoi(argv[1]) : 77;  // banking77's intents as categories
  const long tickets = argc > 2 ? std::atol(argv[2]) : 2000000;
  std::vector<std::string> names;
  for (int i = 0; i < categories; ++i) names.push_back("category_" + std::to_string(i));
  prometheus::Registry registry;
  triage::ops::health health;
  triage::ops::worker_probe probe(registry);
  probe.set_model("m", "a", "cpu", "cpu");
  using clock = std::chrono::steady_clock;

  auto t0 = clock::now();
  for (long i = 0; i < tickets; ++i) {
    const auto kind = i % 5 == 0 ? triage::ops::outcome::escalated : triage::ops::outcome::routed;
    probe.ticket_out(kind, names[static_cast<size_t>(i % categories)], 0.5 + (i % 50) / 100.0);
  }
  const double per_ticket = std::chrono::duration<double, std::nano>(clock::now() - t0).count() / tickets;

  const long batches = tickets / 32;
  std::vector<double> e2e(32, 0.2);
  t0 = clock::now();
  for (long i = 0; i < batches; ++i) {
    probe.consumed(static_cast<int32_t>(i % 6), 32);
    probe.batch(32, 4000, 0.1);
    probe.committed(e2e);
    probe.lag("tickets", static_cast<int32_t>(i % 6), i);
  }
  const double per_batch = std::chrono::duration<double, std::nano>(clock::now() - t0).count() / batches;

  const int scrapes = 200;
  size_t bytes = 0;
  t0 = clock::now();
  for (int i = 0; i < scrapes; ++i) bytes = triage::ops::render_metrics(registry, health).size();
  const double per_scrape = std::chrono::duration<double, std::milli>(clock::now() - t0).count() / scrapes;

  std::printf("categories %d: ticket_out %.0f ns/ticket; consumed+batch+committed(32)+lag %.0f ns/batch; "
              "scrape %.2f ms, %zu bytes\n",
              categories, per_ticket, per_batch, per_scrape, bytes);
  return 0;
}
