#include "topology/config.h"

#include <fstream>
#include <functional>
#include <sstream>

#include <yaml-cpp/yaml.h>

namespace triage::topology {
namespace {

class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "triage.topology"; }
  std::string message(int code) const override {
    switch (static_cast<errc>(code)) {
      case errc::unreadable: return "config file unreadable";
      case errc::bad_yaml: return "config is not valid YAML";
      case errc::unknown_key: return "unknown config key";
      case errc::bad_value: return "invalid config value";
    }
    return "unknown topology error";
  }
};

// Walks one YAML mapping, handing each key to its field and refusing the rest.
class section {
 public:
  section(const YAML::Node& node, std::string source, std::string path)
      : node_(node), source_(std::move(source)), path_(std::move(path)) {}

  std::string where(const YAML::Node& n, const std::string& key) const {
    return source_ + ":" + std::to_string(n.Mark().line + 1) + ": " + path_ + key;
  }

  result<void> check_is_map() const {
    if (node_ && !node_.IsNull() && !node_.IsMap()) {
      return make_error(errc::bad_value, where(node_, "") + ": expected a mapping");
    }
    return success();
  }

  // Calls handlers[key](value_node, full_key) for every key; unknown keys are errors.
  using handler = std::function<result<void>(const YAML::Node&, const std::string&)>;
  result<void> visit(const std::map<std::string, handler>& handlers) const {
    if (auto ok = check_is_map(); !ok) return ok;
    if (!node_ || node_.IsNull()) return success();
    for (const auto& kv : node_) {
      if (!kv.first.IsScalar()) {  // "? [a, b]: x": as<std::string>() would throw
        return make_error(errc::bad_value, where(kv.first, "") + ": a key must be a plain string");
      }
      const auto key = kv.first.as<std::string>();
      auto it = handlers.find(key);
      if (it == handlers.end()) {
        std::string known;
        for (const auto& h : handlers) known += (known.empty() ? "" : ", ") + h.first;
        return make_error(errc::unknown_key,
                          where(kv.first, key) + ": unknown key (known here: " + known + ")");
      }
      if (auto ok = it->second(kv.second, where(kv.second, key)); !ok) return ok;
    }
    return success();
  }

 private:
  YAML::Node node_;
  std::string source_;
  std::string path_;
};

section::handler string_field(std::string& out) {
  return [&out](const YAML::Node& n, const std::string& at) -> result<void> {
    if (!n.IsScalar() || n.as<std::string>().empty()) {
      return make_error(errc::bad_value, at + ": expected a non-empty string");
    }
    out = n.as<std::string>();
    return success();
  };
}

section::handler int_field(int& out, int lo, int hi) {
  return [&out, lo, hi](const YAML::Node& n, const std::string& at) -> result<void> {
    int v = 0;
    if (!n.IsScalar() || !YAML::convert<int>::decode(n, v)) {
      return make_error(errc::bad_value, at + ": expected an integer");
    }
    if (v < lo || v > hi) {
      return make_error(errc::bad_value, at + ": must be " + std::to_string(lo) + ".." +
                                             std::to_string(hi) + ", got " + std::to_string(v));
    }
    out = v;
    return success();
  };
}

section::handler double_field(double& out, double lo, double hi) {
  return [&out, lo, hi](const YAML::Node& n, const std::string& at) -> result<void> {
    double v = 0;
    if (!n.IsScalar() || !YAML::convert<double>::decode(n, v)) {
      return make_error(errc::bad_value, at + ": expected a number");
    }
    if (v < lo || v > hi) {
      return make_error(errc::bad_value, at + ": must be in [" + std::to_string(lo) + ", " +
                                             std::to_string(hi) + "], got " + n.as<std::string>());
    }
    out = v;
    return success();
  };
}

section::handler bool_field(bool& out) {
  return [&out](const YAML::Node& n, const std::string& at) -> result<void> {
    bool v = false;
    if (!n.IsScalar() || !YAML::convert<bool>::decode(n, v)) {
      return make_error(errc::bad_value, at + ": expected true or false");
    }
    out = v;
    return success();
  };
}

section::handler string_list_field(std::vector<std::string>& out) {
  return [&out](const YAML::Node& n, const std::string& at) -> result<void> {
    if (!n.IsSequence()) return make_error(errc::bad_value, at + ": expected a list of strings");
    out.clear();
    for (const auto& item : n) {
      if (!item.IsScalar()) return make_error(errc::bad_value, at + ": expected a list of strings");
      out.push_back(item.as<std::string>());
    }
    return success();
  };
}

section::handler string_map_field(std::map<std::string, std::string>& out) {
  return [&out](const YAML::Node& n, const std::string& at) -> result<void> {
    if (!n.IsMap()) return make_error(errc::bad_value, at + ": expected a mapping");
    out.clear();
    for (const auto& kv : n) {
      if (!kv.first.IsScalar()) return make_error(errc::bad_value, at + ": a key must be a plain string");
      if (!kv.second.IsScalar()) {
        return make_error(errc::bad_value, at + "." + kv.first.as<std::string>() + ": expected a scalar");
      }
      out[kv.first.as<std::string>()] = kv.second.as<std::string>();
    }
    return success();
  };
}

}  // namespace

const std::error_category& topology_category() {
  static const category instance;
  return instance;
}

result<config> parse_config(std::string_view yaml, std::string_view source_name) {
  const std::string source(source_name);
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    return make_error(errc::bad_yaml, source + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  config cfg;
  auto& t = cfg.topics;
  auto& r = cfg.routing;
  auto& w = cfg.worker;
  auto& st = cfg.state;
  section top(root, source, "");
  auto ok = top.visit({
      {"kafka",
       [&](const YAML::Node& n, const std::string&) {
         return section(n, source, "kafka.").visit({{"settings", [&](const YAML::Node& s, const std::string& at) -> result<void> {
           if (!s.IsMap()) return make_error(errc::bad_value, at + ": expected a mapping of librdkafka settings");
           for (const auto& kv : s) {
             if (!kv.first.IsScalar()) return make_error(errc::bad_value, at + ": a key must be a plain string");
             if (!kv.second.IsScalar()) {
               return make_error(errc::bad_value, at + "." + kv.first.as<std::string>() + ": expected a scalar");
             }
             cfg.kafka.settings[kv.first.as<std::string>()] = kv.second.as<std::string>();
           }
           return success();
         }}});
       }},
      {"topics",
       [&](const YAML::Node& n, const std::string&) {
         return section(n, source, "topics.").visit({
             {"tickets", string_field(t.tickets)},
             {"escalations", string_field(t.escalations)},
             {"dead_letter", string_field(t.dead_letter)},
             {"routed_prefix", string_field(t.routed_prefix)},
             {"corrections", string_field(t.corrections)},
             {"partitions", int_field(t.partitions, 1, 10000)},
             {"replication_factor", int_field(t.replication_factor, 1, 16)},
         });
       }},
      {"routing",
       [&](const YAML::Node& n, const std::string&) {
         return section(n, source, "routing.").visit({
             {"min_confidence",
              [&](const YAML::Node& v, const std::string& at) -> result<void> {
                if (v.IsScalar() && v.as<std::string>() == "adapter") {
                  r.min_confidence = -1;
                  return success();
                }
                return double_field(r.min_confidence, 0.0, 1.0)(v, at);
              }},
             {"always_escalate", string_list_field(r.always_escalate)},
             {"queues", string_map_field(r.queues)},
             {"escalate_truncated", bool_field(r.escalate_truncated)},
         });
       }},
      {"worker",
       [&](const YAML::Node& n, const std::string&) {
         return section(n, source, "worker.").visit({
             {"group_id", string_field(w.group_id)},
             {"delivery",
              [&](const YAML::Node& v, const std::string& at) -> result<void> {
                const std::string s = v.IsScalar() ? v.as<std::string>() : "";
                if (s == "exactly_once") w.delivery = delivery_mode::exactly_once;
                else if (s == "at_least_once") w.delivery = delivery_mode::at_least_once;
                else return make_error(errc::bad_value, at + ": expected exactly_once or at_least_once");
                return success();
              }},
             {"transactional_id_prefix", string_field(w.transactional_id_prefix)},
             {"batch_max_tickets", int_field(w.batch_max_tickets, 1, 4096)},
             {"batch_max_tokens", int_field(w.batch_max_tokens, 64, 1048576)},
             {"batch_max_wait_ms", int_field(w.batch_max_wait_ms, 0, 60000)},
             {"shutdown_timeout_ms", int_field(w.shutdown_timeout_ms, 100, 600000)},
             {"queue_max_tickets", int_field(w.queue_max_tickets, 1, 1048576)},
             {"queue_max_tokens", int_field(w.queue_max_tokens, 64, 64 * 1024 * 1024)},
             {"max_text_bytes", int_field(w.max_text_bytes, 1, 64 * 1024 * 1024)},
             {"instances", int_field(w.instances, 0, 64)},
             {"instance_capacity", double_field(w.instance_capacity, 1e-6, 1e9)},
             {"max_instances", int_field(w.max_instances, 1, 64)},
         });
       }},
      {"state",
       [&](const YAML::Node& n, const std::string&) {
         return section(n, source, "state.").visit({
             {"enabled", bool_field(st.enabled)},
             {"directory", string_field(st.directory)},
             {"changelog_topic", string_field(st.changelog_topic)},
             {"keep_ticket_text", bool_field(st.keep_ticket_text)},
             {"example_max_confidence", double_field(st.example_max_confidence, 0.0, 1.0)},
             {"baseline_tickets", int_field(st.baseline_tickets, 1, 100000000)},
             {"psi_category_alert", double_field(st.psi_category_alert, 0.0, 100.0)},
             {"psi_confidence_alert", double_field(st.psi_confidence_alert, 0.0, 100.0)},
             {"psi_length_alert", double_field(st.psi_length_alert, 0.0, 100.0)},
             {"psi_unknown_alert", double_field(st.psi_unknown_alert, 0.0, 100.0)},
             {"escalation_rate_alert", double_field(st.escalation_rate_alert, 0.0, 1.0)},
             {"drift_min_tickets", int_field(st.drift_min_tickets, 1, 100000000)},
             {"restore_timeout_ms", int_field(st.restore_timeout_ms, 1000, 3600000)},
             {"memory_budget_mb", int_field(st.memory_budget_mb, 8, 65536)},
             {"decisions_retention_days", int_field(st.decisions_retention_days, 0, 36500)},
         });
       }},
      {"mode",
       [&](const YAML::Node& v, const std::string& at) -> result<void> {
         const std::string s = v.IsScalar() ? v.as<std::string>() : "";
         if (s == "head") cfg.mode = classifier_mode::head;
         else if (s == "generate") cfg.mode = classifier_mode::generate;
         else return make_error(errc::bad_value, at + ": expected head or generate");
         return success();
       }},
      {"generate",
       [&](const YAML::Node& n, const std::string&) {
         auto& g = cfg.generate;
         return section(n, source, "generate.").visit({
             {"chat_template", string_field(g.chat_template)},
             {"system_prompt", string_field(g.system_prompt)},
             {"max_tokens", int_field(g.max_tokens, 16, 32768)},
             {"max_expansions", int_field(g.max_expansions, 0, 256)},
             {"calibration", string_field(g.calibration)},
             {"loras",
              [&](const YAML::Node& v, const std::string& at) -> result<void> {
                if (!v.IsSequence()) return make_error(errc::bad_value, at + ": expected a list of {path, scale}");
                g.loras.clear();
                for (size_t i = 0; i < v.size(); ++i) {
                  lora_options l;
                  auto item = section(v[i], source, "generate.loras[" + std::to_string(i) + "].").visit({
                      {"path", string_field(l.path)},
                      {"scale", double_field(l.scale, -100.0, 100.0)},
                  });
                  if (!item) return item;
                  if (l.path.empty()) return make_error(errc::bad_value, at + "[" + std::to_string(i) + "]: path missing");
                  g.loras.push_back(l);
                }
                return success();
              }},
         });
       }},
      {"shadow",
       [&](const YAML::Node& n, const std::string&) {
         return section(n, source, "shadow.").visit({{"adapter", string_field(cfg.shadow.adapter)}});
       }},
      {"cost",
       [&](const YAML::Node& n, const std::string&) {
         return section(n, source, "cost.").visit({
             {"frontier_per_call", double_field(cfg.cost.frontier_per_call, 0.0, 1e9)},
             {"slm_per_ticket", double_field(cfg.cost.slm_per_ticket, 0.0, 1e9)},
             {"weekly_tickets", double_field(cfg.cost.weekly_tickets, 0.0, 1e12)},
         });
       }},
  });
  if (!ok) return ok.error();
  return cfg;
}

result<config> load_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return make_error(errc::unreadable, path + ": cannot open (" + std::generic_category().message(errno) + ")");
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_config(ss.str(), path);
}

result<config> load_config(const std::string& path, const std::vector<std::string>& settings) {
  auto cfg = load_config(path);
  if (!cfg) return cfg;
  for (const auto& kv : settings) {
    const auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      const auto key_end =
          kv.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-");
      const std::string shown = key_end == std::string::npos ? kv : kv.substr(0, key_end) + "...";
      return make_error(errc::bad_value, "--set '" + shown + "': expected key=value");
    }
    cfg.value().kafka.settings[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return cfg;
}

}  // namespace triage::topology
