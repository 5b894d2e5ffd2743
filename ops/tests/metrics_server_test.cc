#include "ops/metrics/server.h"

#include <string>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <gtest/gtest.h>

#include "ops/metrics/endpoint.h"
#include "ops/metrics/probe.h"
#include "ops/tests/metrics_test_util.h"

namespace triage::ops {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using testing::sample;

struct reply {
  int status = 0;
  std::string content_type;
  std::string body;
};

// One request on a fresh connection (or on `stream` when given, keep-alive).
reply send(beast::tcp_stream& stream, http::verb method, const std::string& target, bool keep_alive) {
  http::request<http::string_body> req{method, target, 11};
  req.set(http::field::host, "127.0.0.1");
  req.keep_alive(keep_alive);
  http::write(stream, req);
  beast::flat_buffer buf;
  http::response_parser<http::string_body> parser;
  parser.skip(method == http::verb::head);  // a HEAD answer has Content-Length but no body
  http::read(stream, buf, parser);
  const auto& res = parser.get();
  return {static_cast<int>(res.result_int()), std::string(res[http::field::content_type]), res.body()};
}

reply get(uint16_t port, const std::string& target, http::verb method = http::verb::get) {
  asio::io_context ioc;
  beast::tcp_stream stream(ioc);
  stream.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  return send(stream, method, target, false);
}

class server_test : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = metrics_server::start({.listen = "127.0.0.1:0"}, registry, h);
    ASSERT_TRUE(s) << s.error().what();
    server = std::move(s).value();
    ASSERT_NE(server->port(), 0);
  }
  prometheus::Registry registry;
  health h;
  worker_probe probe{registry};
  std::unique_ptr<metrics_server> server;
};

TEST_F(server_test, metrics_over_a_real_socket) {
  probe.ticket_out(outcome::escalated, "disputes", 0.97);
  probe.lag("tickets", 0, 12);
  const reply r = get(server->port(), "/metrics");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(sample(r.body, R"(triage_tickets_out_total{category="disputes",outcome="escalated"})"), 1)
      << r.body;
  EXPECT_EQ(sample(r.body, R"(triage_consumer_lag{partition="0",topic="tickets"})"), 12);
  EXPECT_NE(r.body.find("# TYPE triage_confidence histogram"), std::string::npos);
  EXPECT_EQ(sample(r.body, "triage_ready"), 1);
  EXPECT_EQ(sample(r.body, "triage_live"), 1);
  // A later scrape sees later counts.
  probe.ticket_out(outcome::escalated, "disputes", 0.5);
  EXPECT_EQ(sample(get(server->port(), "/metrics?x=1").body,
                   R"(triage_tickets_out_total{category="disputes",outcome="escalated"})"),
            2);
}

TEST_F(server_test, readyz_follows_model_and_state) {
  h.declare({"model", "state"});
  reply r = get(server->port(), "/readyz");
  EXPECT_EQ(r.status, 503);
  EXPECT_NE(r.body.find("model failing"), std::string::npos) << r.body;
  EXPECT_EQ(sample(get(server->port(), "/metrics").body, "triage_ready"), 0);
  h.set("model", true);
  h.set("state", true);
  r = get(server->port(), "/readyz");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body.substr(0, 6), "ready\n");
  h.set_stopping();
  EXPECT_EQ(get(server->port(), "/readyz").status, 503);
  EXPECT_EQ(get(server->port(), "/healthz").status, 200) << "stopping is not dead";
}

TEST_F(server_test, healthz_fails_when_dead) {
  EXPECT_EQ(get(server->port(), "/healthz").status, 200);
  h.set_alive(false);
  const reply r = get(server->port(), "/healthz");
  EXPECT_EQ(r.status, 503);
  EXPECT_NE(r.body.find("dead"), std::string::npos) << r.body;
  EXPECT_EQ(sample(get(server->port(), "/metrics").body, "triage_live"), 0);
}

TEST_F(server_test, unknown_paths_and_methods) {
  EXPECT_EQ(get(server->port(), "/").status, 404);
  EXPECT_EQ(get(server->port(), "/metricsx").status, 404);
  EXPECT_EQ(get(server->port(), "/metrics", http::verb::post).status, 405);
  const reply head = get(server->port(), "/healthz", http::verb::head);
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.body, "");
}

TEST_F(server_test, keep_alive_serves_several_requests_on_one_connection) {
  asio::io_context ioc;
  beast::tcp_stream stream(ioc);
  stream.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), server->port()));
  EXPECT_EQ(send(stream, http::verb::get, "/healthz", true).status, 200);
  EXPECT_EQ(send(stream, http::verb::get, "/readyz", true).status, 200);
  EXPECT_EQ(send(stream, http::verb::get, "/metrics", false).status, 200);
}

TEST_F(server_test, a_taken_port_is_bind_failed_and_stop_is_idempotent) {
  const std::string addr = "127.0.0.1:" + std::to_string(server->port());
  EXPECT_EQ(server->address(), addr);
  auto second = metrics_server::start({.listen = addr}, registry, h);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code, errc::bind_failed);
  EXPECT_NE(second.error().message.find(addr), std::string::npos) << second.error().message;
  server->stop();
  server->stop();
  asio::io_context ioc;
  tcp::socket s(ioc);
  beast::error_code ec;
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), server->port()), ec);
  EXPECT_TRUE(ec) << "still accepting after stop";
}

TEST(parse_listen_address, accepts_and_rejects) {
  auto a = parse_listen_address("0.0.0.0:9464");
  ASSERT_TRUE(a) << a.error().what();
  EXPECT_EQ(a.value().host, "0.0.0.0");
  EXPECT_EQ(a.value().port, 9464);
  auto v6 = parse_listen_address("[::1]:0");
  ASSERT_TRUE(v6) << v6.error().what();
  EXPECT_EQ(v6.value().host, "::1");
  EXPECT_EQ(parse_listen_address("localhost:80").value().host, "127.0.0.1");
  for (const char* bad : {"", "9464", ":9464", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:9x",
                          "::1:9464", "[::1]9464", "example.invalid:9464"}) {
    auto r = parse_listen_address(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, errc::bad_address) << bad;
    EXPECT_NE(r.error().message.find(std::string("'") + bad + "'"), std::string::npos)
        << r.error().message;
  }
  auto s = metrics_server::start({.listen = "127.0.0.1:0", .io_timeout_ms = 0}, prometheus::Registry{},
                                 health{});
  EXPECT_FALSE(s);
}

TEST(endpoint, serves_its_registry_and_health) {
  auto e = endpoint::start({.listen = "127.0.0.1:0"});
  ASSERT_TRUE(e) << e.error().what();
  auto& mon = *e.value();
  ASSERT_NE(mon.port(), 0);
  EXPECT_EQ(mon.address(), "127.0.0.1:" + std::to_string(mon.port()));
  mon.health().declare({"model"});
  worker_probe probe(mon.registry());
  probe.rebalanced(3);
  EXPECT_EQ(get(mon.port(), "/readyz").status, 503);
  mon.health().set("model", true);
  EXPECT_EQ(get(mon.port(), "/readyz").status, 200);
  EXPECT_EQ(sample(get(mon.port(), "/metrics").body, "triage_assigned_partitions"), 3);
}

TEST(endpoint, empty_listen_counts_without_serving) {
  auto e = endpoint::start({.listen = ""});
  ASSERT_TRUE(e) << e.error().what();
  EXPECT_EQ(e.value()->port(), 0);
  EXPECT_EQ(e.value()->address(), "");
  worker_probe probe(e.value()->registry());
  probe.rebalanced(1);
  EXPECT_EQ(sample(render_metrics(e.value()->registry(), e.value()->health()), "triage_rebalances_total"), 1);
}

TEST(endpoint, bad_address_is_an_error) {
  auto e = endpoint::start({.listen = "nowhere"});
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().code, errc::bad_address);
}

}  // namespace
}  // namespace triage::ops
