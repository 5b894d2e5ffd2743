#include "ops/metrics/server.h"

#include <charconv>
#include <chrono>
#include <sstream>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

namespace triage::ops {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

prometheus::MetricFamily gauge_family(std::string name, std::string help, bool value) {
  prometheus::MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = prometheus::MetricType::Gauge;
  prometheus::ClientMetric m;
  m.gauge.value = value ? 1 : 0;
  f.metric.push_back(std::move(m));
  return f;
}

http::response<http::string_body> respond(const http::request<http::string_body>& req,
                                          const prometheus::Registry& registry, const health& h) {
  http::response<http::string_body> res;
  res.version(req.version());
  res.keep_alive(req.keep_alive());
  res.set(http::field::server, "triage");
  res.set(http::field::content_type, "text/plain; charset=utf-8");
  res.set(http::field::cache_control, "no-store");
  const std::string_view target(req.target().data(), req.target().size());
  const std::string_view path = target.substr(0, target.find('?'));
  if (req.method() != http::verb::get && req.method() != http::verb::head) {
    res.result(http::status::method_not_allowed);
    res.set(http::field::allow, "GET, HEAD");
    res.body() = "only GET and HEAD\n";
  } else if (path == "/metrics") {
    res.result(http::status::ok);
    res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
    res.body() = render_metrics(registry, h);
  } else if (path == "/healthz") {
    const bool live = h.live();
    res.result(live ? http::status::ok : http::status::service_unavailable);
    res.body() = live ? "ok\n" : "not live\n" + h.describe();
  } else if (path == "/readyz") {
    const bool ready = h.ready();
    res.result(ready ? http::status::ok : http::status::service_unavailable);
    res.body() = (ready ? "ready\n" : "not ready\n") + h.describe();
  } else {
    res.result(http::status::not_found);
    res.body() = "not found; try /metrics, /healthz or /readyz\n";
  }
  res.prepare_payload();
  if (req.method() == http::verb::head) {
    const auto length = res.body().size();
    res.body().clear();
    res.content_length(length);
  }
  return res;
}

class session : public std::enable_shared_from_this<session> {
 public:
  session(tcp::socket socket, const prometheus::Registry& registry, const health& h,
          std::chrono::milliseconds timeout)
      : stream_(std::move(socket)), registry_(registry), health_(h), timeout_(timeout) {}

  void read() {
    req_ = {};
    stream_.expires_after(timeout_);
    http::async_read(stream_, buffer_, req_,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
  }

 private:
  void on_read(beast::error_code ec) {
    if (ec) return close();
    res_ = respond(req_, registry_, health_);
    stream_.expires_after(timeout_);
    http::async_write(stream_, res_, [self = shared_from_this()](beast::error_code wec, std::size_t) {
      if (wec || !self->res_.keep_alive()) return self->close();
      self->read();
    });
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.socket().close(ignored);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> req_;
  http::response<http::string_body> res_;
  const prometheus::Registry& registry_;
  const health& health_;
  std::chrono::milliseconds timeout_;
};

}  // namespace

struct metrics_server::impl {
  impl(const prometheus::Registry& r, const health& h, std::chrono::milliseconds t)
      : registry(r), health_(h), timeout(t), acceptor(ioc) {}

  void accept() {
    acceptor.async_accept(asio::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
      if (!ec) std::make_shared<session>(std::move(socket), registry, health_, timeout)->read();
      accept();
    });
  }

  const prometheus::Registry& registry;
  const health& health_;
  std::chrono::milliseconds timeout;
  asio::io_context ioc{1};
  tcp::acceptor acceptor;
  tcp::endpoint bound;
  std::thread thread;
  bool stopped = false;
};

result<listen_address> parse_listen_address(const std::string& text) {
  auto bad = [&](std::string_view why) {
    return make_error(errc::bad_address, "listen address '" + text + "': " + std::string(why));
  };
  listen_address out;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return bad("expected [ipv6]:port");
    out.host = text.substr(1, close - 1);
    port_text = std::string_view(text).substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string::npos) return bad("expected host:port");
    out.host = text.substr(0, colon);
    port_text = std::string_view(text).substr(colon + 1);
    if (out.host.find(':') != std::string::npos) return bad("write an IPv6 host in brackets, [::1]:9464");
  }
  if (out.host.empty()) return bad("empty host (use 0.0.0.0 for all IPv4 addresses)");
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() || port > 65535)
    return bad("port must be a number from 0 to 65535");
  out.port = static_cast<uint16_t>(port);
  if (out.host == "localhost") out.host = "127.0.0.1";
  beast::error_code aec;
  asio::ip::make_address(out.host, aec);
  if (aec) return bad("host must be an IP address or localhost");
  return out;
}

std::string render_metrics(const prometheus::Registry& registry, const health& h) {
  std::vector<prometheus::MetricFamily> families = registry.Collect();
  families.push_back(gauge_family("triage_ready", "1 while /readyz answers 200", h.ready()));
  families.push_back(gauge_family("triage_live", "1 while /healthz answers 200", h.live()));
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, families);
  return out.str();
}

result<std::unique_ptr<metrics_server>> metrics_server::start(const metrics_server_options& options,
                                                              const prometheus::Registry& registry,
                                                              const health& h) {
  auto addr = parse_listen_address(options.listen);
  if (!addr) return addr.error();
  if (options.io_timeout_ms < 1)
    return make_error(errc::bad_address, "io_timeout_ms " + std::to_string(options.io_timeout_ms) +
                                             ": must be at least 1");
  auto p = std::make_unique<impl>(registry, h, std::chrono::milliseconds(options.io_timeout_ms));
  const tcp::endpoint ep(asio::ip::make_address(addr.value().host), addr.value().port);
  beast::error_code ec;
  p->acceptor.open(ep.protocol(), ec);
  if (!ec) p->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) p->acceptor.bind(ep, ec);
  if (!ec) p->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return make_error(errc::bind_failed, "listen address '" + options.listen + "': " + ec.message());
  p->bound = p->acceptor.local_endpoint();
  p->accept();
  p->thread = std::thread([raw = p.get()] { raw->ioc.run(); });
  return std::unique_ptr<metrics_server>(new metrics_server(std::move(p)));
}

metrics_server::metrics_server(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

metrics_server::~metrics_server() { stop(); }

uint16_t metrics_server::port() const { return impl_->bound.port(); }

std::string metrics_server::address() const {
  const auto a = impl_->bound.address();
  return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(port());
}

void metrics_server::stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  impl_->ioc.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
  // The loop has ended: nothing else touches the acceptor now.
  beast::error_code ignored;
  impl_->acceptor.close(ignored);
}

}  // namespace triage::ops
