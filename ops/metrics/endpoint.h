// endpoint.h: a process's monitoring in one object: the metrics registry, the
// health state and the HTTP server that exposes both. What `triage worker`
// creates once, before its workers, and hands to each of them.
//
//   auto mon = triage::ops::endpoint::start({.listen = "0.0.0.0:9464"});
//   if (!mon) return fail(mon.error().what());
//   mon.value()->health().declare({"model", "state"});
//   triage::ops::worker_probe probe(mon.value()->registry());
//   spdlog::info("metrics on http://{}/metrics", mon.value()->address());
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <prometheus/registry.h>

#include "base/result.h"
#include "ops/metrics/health.h"
#include "ops/metrics/server.h"

namespace triage::ops {

struct endpoint_options {
  // Address of /metrics, /healthz and /readyz (metrics_server_options::listen);
  // empty: no server (metrics are still counted, nobody reads them).
  // Default: "127.0.0.1:9464".
  std::string listen = "127.0.0.1:9464";
  // health::options::stall_limit_ms. Default: 300000.
  int64_t stall_limit_ms = 300000;
};

class endpoint {
 public:
  // Errors: those of metrics_server::start (errc::bad_address, errc::bind_failed).
  static result<std::unique_ptr<endpoint>> start(const endpoint_options& options);
  ~endpoint();
  endpoint(const endpoint&) = delete;
  endpoint& operator=(const endpoint&) = delete;

  prometheus::Registry& registry() { return registry_; }
  ops::health& health() { return health_; }
  // "0.0.0.0:9464", or "" when not serving.
  std::string address() const { return server_ ? server_->address() : std::string(); }
  // The bound port; 0 when not serving.
  uint16_t port() const { return server_ ? server_->port() : 0; }

 private:
  explicit endpoint(const endpoint_options& options);
  prometheus::Registry registry_;
  ops::health health_;
  std::unique_ptr<metrics_server> server_;  // declared last: stops before the others go
};

}  // namespace triage::ops
