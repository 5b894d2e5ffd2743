#include "workers/kafka_conf.h"

#include <gtest/gtest.h>

namespace triage::workers {
namespace {

TEST(make_conf, passes_settings_through_and_overrides_win) {
  auto r = make_conf({{"bootstrap.servers", "a:1"}, {"client.id", "mine"}},
                     {{"client.id", "worker-0"}});
  ASSERT_TRUE(r) << r.error().message;
  std::string v;
  ASSERT_EQ(r.value()->get("bootstrap.servers", v), RdKafka::Conf::CONF_OK);
  EXPECT_EQ(v, "a:1");
  ASSERT_EQ(r.value()->get("client.id", v), RdKafka::Conf::CONF_OK);
  EXPECT_EQ(v, "worker-0");
}

TEST(make_conf, unknown_key_is_named) {
  auto r = make_conf({{"bootstrap.servres", "a:1"}});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::bad_setting);
  EXPECT_NE(r.error().message.find("kafka.settings.bootstrap.servres"), std::string::npos)
      << r.error().message;
}

TEST(make_conf, bad_value_is_named_but_secrets_are_not_shown) {
  auto r = make_conf({{"acks", "sometimes"}});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("kafka.settings.acks = 'sometimes'"), std::string::npos)
      << r.error().message;

  // librdkafka refuses the (misspelt) key; its secret value stays out of the message.
  r = make_conf({{"sasl.pasword", "hunter2"}});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("kafka.settings.sasl.pasword"), std::string::npos);
  EXPECT_EQ(r.error().message.find("hunter2"), std::string::npos) << r.error().message;
}

TEST(is_secret_key, recognises_credentials) {
  EXPECT_TRUE(is_secret_key("sasl.password"));
  EXPECT_TRUE(is_secret_key("ssl.key.password"));
  EXPECT_TRUE(is_secret_key("sasl.oauthbearer.client.secret"));
  EXPECT_FALSE(is_secret_key("bootstrap.servers"));
}

}  // namespace
}  // namespace triage::workers
