// server.h: the HTTP endpoint of a worker process: GET /metrics (Prometheus
// text format 0.0.4, from a prometheus-cpp registry), /healthz (liveness) and
// /readyz (readiness), all on one address, served by one background thread
// (Boost.Beast over Boost.Asio).
//
//   prometheus::Registry registry;
//   triage::ops::health health;
//   auto server = triage::ops::metrics_server::start({.listen = "0.0.0.0:9464"}, registry, health);
//   if (!server) return fail(server.error().what());
//   ... run the worker; server.value()->stop() (or its destructor) at the end.
//
// Why not prometheus-cpp's Exposer: Debian 12's prometheus-cpp 1.0.1 pull
// library serves only registered collectables (always 200, metrics text) and
// offers no way to add a handler that answers 503, which /readyz and /healthz
// need; a second server on a second port would double what Kubernetes and
// the firewall have to know. So one small server serves all three.
//
// Besides the registry's families, /metrics reports triage_ready and
// triage_live (1 or 0) at each scrape, read from `health`, so alerts can use
// the same readiness as Kubernetes.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <prometheus/registry.h>

#include "base/result.h"
#include "ops/metrics/errc.h"
#include "ops/metrics/health.h"

namespace triage::ops {

struct metrics_server_options {
  // host:port or [ipv6]:port to listen on; port 0 picks a free port (see
  // metrics_server::port()). Loopback by default because the endpoint has no
  // authentication or TLS and names the model, adapter and categories: expose
  // it wider (0.0.0.0 in a pod, where the kubelet's probes and Prometheus
  // come from other addresses) only on purpose. 9464 is the port commonly
  // used by OpenTelemetry's Prometheus exporter, outside the ranges of
  // Kafka (9092/9093) and the Prometheus server and its exporters (9090-9100).
  // Default: "127.0.0.1:9464".
  std::string listen = "127.0.0.1:9464";
  // Deadline for reading a request and writing its response, in ms (a client
  // that stalls longer is dropped). Bounds: >= 1. Default: 5000.
  int io_timeout_ms = 5000;
};

class metrics_server {
 public:
  // Binds and starts serving; `registry` and `health` must outlive the server.
  // Errors: errc::bad_address (the address does not parse),
  // errc::bind_failed (in use, not a local address).
  static result<std::unique_ptr<metrics_server>> start(const metrics_server_options& options,
                                                       const prometheus::Registry& registry,
                                                       const health& health);
  ~metrics_server();
  metrics_server(const metrics_server&) = delete;
  metrics_server& operator=(const metrics_server&) = delete;

  // The bound port (the one picked when the options asked for port 0).
  uint16_t port() const;
  // "127.0.0.1:41234": the bound address, for logs and tests.
  std::string address() const;
  // Stops accepting, drops open connections and joins the thread; safe to
  // call twice.
  void stop();

  struct impl;

 private:
  explicit metrics_server(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

// Parses "host:port" / "[v6]:port" into its parts; errc::bad_address names
// the address and what is wrong with it.
struct listen_address {
  std::string host;
  uint16_t port = 0;
};
result<listen_address> parse_listen_address(const std::string& text);

// The text that GET /metrics returns (the registry plus triage_ready and
// triage_live), for tests and for a one-shot dump.
std::string render_metrics(const prometheus::Registry& registry, const health& health);

}  // namespace triage::ops
