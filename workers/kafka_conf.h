// kafka_conf.h: librdkafka configuration from the pass-through settings map.
//
//   auto conf = triage::workers::make_conf(cfg.kafka.settings, {{"group.id", "triage"}});
//   if (!conf) return fail(conf.error().message);   // names the key at fault
//   auto consumer = RdKafka::KafkaConsumer::create(conf.value().get(), err);
//
// Settings are passed to librdkafka untouched (security.protocol, sasl.*,
// ssl.*, ...); `overrides` are what the caller itself needs set, applied last.
// Values of keys that look secret are never repeated in error messages.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <system_error>

#include <librdkafka/rdkafkacpp.h>

#include "base/result.h"

namespace triage::workers {

enum class errc {
  bad_setting = 1,  // librdkafka refused a configuration key or value
  client_failed,    // a producer or consumer could not be created
};
const std::error_category& workers_category();
inline std::error_code make_error_code(errc e) { return {static_cast<int>(e), workers_category()}; }

using settings_map = std::map<std::string, std::string>;

result<std::unique_ptr<RdKafka::Conf>> make_conf(const settings_map& settings,
                                                 const settings_map& overrides = {});

// True for keys whose values must not reach logs (passwords, keys, tokens).
bool is_secret_key(const std::string& key);

}  // namespace triage::workers

template <>
struct std::is_error_code_enum<triage::workers::errc> : std::true_type {};
