#include "workers/kafka_conf.h"

namespace triage::workers {
namespace {

class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "triage.workers"; }
  std::string message(int code) const override {
    switch (static_cast<errc>(code)) {
      case errc::bad_setting: return "invalid Kafka client setting";
      case errc::client_failed: return "Kafka client creation failed";
    }
    return "unknown workers error";
  }
};

}  // namespace

const std::error_category& workers_category() {
  static const category instance;
  return instance;
}

bool is_secret_key(const std::string& key) {
  // sasl.oauthbearer.config may hold a client secret; ssl.key.pem and
  // ssl.keystore.password a private key and its passphrase.
  for (const char* word : {"password", "secret", "key.pem", "token", "sasl.jaas", "oauthbearer.config",
                           "credential"}) {
    if (key.find(word) != std::string::npos) return true;
  }
  return false;
}

result<std::unique_ptr<RdKafka::Conf>> make_conf(const settings_map& settings,
                                                 const settings_map& overrides) {
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  for (const settings_map* m : {&settings, &overrides}) {
    for (const auto& [key, value] : *m) {
      std::string err;
      if (conf->set(key, value, err) != RdKafka::Conf::CONF_OK) {
        // A value is echoed only for a key librdkafka knows and that is not
        // secret: a misspelt "sasl.pasword" still carries a password.
        std::string current;
        const bool known = conf->get(key, current) == RdKafka::Conf::CONF_OK;
        const bool hidden = !known || is_secret_key(key);
        const std::string shown = hidden ? "(value not shown)" : "'" + value + "'";
        // librdkafka's own message may quote the value ("Invalid value ... for
        // configuration property"): cut it out there too.
        if (hidden && value.size() >= 6) {
          for (size_t at; (at = err.find(value)) != std::string::npos;) err.replace(at, value.size(), "***");
        }
        return make_error(errc::bad_setting,
                          "kafka.settings." + key + " = " + shown + ": " + err);
      }
    }
  }
  return conf;
}

}  // namespace triage::workers
