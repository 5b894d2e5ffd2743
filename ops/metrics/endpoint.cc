#include "ops/metrics/endpoint.h"

namespace triage::ops {

endpoint::endpoint(const endpoint_options& options)
    : health_(health::options{.stall_limit_ms = options.stall_limit_ms}) {}

endpoint::~endpoint() {
  if (server_) server_->stop();
}

result<std::unique_ptr<endpoint>> endpoint::start(const endpoint_options& options) {
  std::unique_ptr<endpoint> e(new endpoint(options));
  if (!options.listen.empty()) {
    auto s = metrics_server::start({.listen = options.listen}, e->registry_, e->health_);
    if (!s) return s.error();
    e->server_ = std::move(s).value();
  }
  return e;
}

}  // namespace triage::ops
