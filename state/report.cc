#include "state/report.h"

#include <cstdio>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "state/drift.h"

namespace triage::state {
namespace {

// Splits "a|b|c" into its fields.
std::vector<std::string> fields(std::string_view key) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    const auto bar = key.find('|', start);
    out.emplace_back(key.substr(start, bar == std::string_view::npos ? bar : bar - start));
    if (bar == std::string_view::npos) return out;
    start = bar + 1;
  }
}

void add_into(counts& into, const counts& c) {
  if (into.size() < c.size()) into.resize(c.size());
  for (size_t i = 0; i < c.size(); ++i) into[i] += c[i];
}

std::string prefix_of(const std::optional<int32_t>& partition) {
  return partition ? partition_prefix(*partition) : "";
}

}  // namespace

double category_stats::escalation_rate() const {
  return tickets() ? static_cast<double>(escalated) / static_cast<double>(tickets()) : 0;
}
double category_stats::accuracy() const {
  return corrections ? static_cast<double>(agreed) / static_cast<double>(corrections) : -1;
}
double category_stats::shadow_accuracy() const {
  return shadow_corrections ? static_cast<double>(shadow_agreed) / static_cast<double>(shadow_corrections) : -1;
}
double category_stats::shadow_live_accuracy() const {
  return shadow_corrections ? static_cast<double>(shadow_live_agreed) / static_cast<double>(shadow_corrections) : -1;
}

result<drift_stats> drift_of(const store& s, const std::string& quarter,
                             const std::optional<int32_t>& partition) {
  // period -> what the drift family holds for it, summed over partitions.
  struct period {
    int64_t n = 0;
    std::map<std::string, int64_t> cat;
    counts conf, len, unk, unks;
  };
  period base, cur;
  error bad{};
  bool failed = false;
  auto ok = s.scan(family::drift, prefix_of(partition), [&](std::string_view key, std::string_view value) {
    auto f = fields(key);  // p, period, what[, category]
    if (f.size() < 3 || (f[1] != "baseline" && f[1] != quarter)) return true;
    auto c = decode_counts(value);
    if (!c || c.value().empty()) {
      bad = make_error(errc::corrupt, s.path() + " [drift] '" + std::string(key) + "': bad value");
      failed = true;
      return false;
    }
    period& p = f[1] == "baseline" ? base : cur;
    if (f[2] == "n") p.n += c.value()[0];
    else if (f[2] == "cat" && f.size() >= 4) p.cat[f[3]] += c.value()[0];
    else if (f[2] == "conf") add_into(p.conf, c.value());
    else if (f[2] == "len") add_into(p.len, c.value());
    else if (f[2] == "unk") add_into(p.unk, c.value());
    else if (f[2] == "unks") add_into(p.unks, c.value());
    return true;
  });
  if (!ok) return ok.error();
  if (failed) return bad;
  drift_stats d;
  d.quarter = quarter;
  d.baseline_tickets = base.n;
  d.tickets = cur.n;
  d.psi_category = psi(base.cat, cur.cat);
  d.psi_confidence = psi(std::span<const int64_t>(base.conf), std::span<const int64_t>(cur.conf));
  d.psi_length = psi(std::span<const int64_t>(base.len), std::span<const int64_t>(cur.len));
  d.psi_unknown = psi(std::span<const int64_t>(base.unk), std::span<const int64_t>(cur.unk));
  auto rate = [](const counts& c) {
    return c.size() >= 2 && c[1] > 0 ? static_cast<double>(c[0]) / static_cast<double>(c[1]) : 0.0;
  };
  d.unknown_rate = rate(cur.unks);
  d.baseline_unknown_rate = rate(base.unks);
  return d;
}

result<summary> summarize(const store& s, const std::optional<std::string>& quarter,
                          const std::optional<int32_t>& partition) {
  std::map<std::pair<std::string, std::string>, category_stats> cats;
  auto stats_of = [&](const std::string& q, const std::string& c) -> category_stats& {
    auto& st = cats[{q, c}];
    st.quarter = q;
    st.category = c;
    return st;
  };
  const std::string prefix = prefix_of(partition);
  error bad{};
  bool failed = false;
  auto decode = [&](std::string_view key, std::string_view value, const char* fam) -> std::optional<counts> {
    auto c = decode_counts(value);
    if (!c) {
      bad = make_error(errc::corrupt, s.path() + " [" + fam + "] '" + std::string(key) + "': " + c.error().message);
      failed = true;
      return std::nullopt;
    }
    return c.value();
  };
  auto ok = s.scan(family::counters, prefix, [&](std::string_view key, std::string_view value) {
    auto f = fields(key);  // p, quarter, category, urgency, outcome
    if (f.size() != 5 || (quarter && f[1] != *quarter)) return true;
    auto c = decode(key, value, "counters");
    if (!c) return false;
    const int64_t n = c->empty() ? 0 : (*c)[0];
    auto& st = stats_of(f[1], f[2]);
    if (f[4] == "routed") st.routed += n;
    else if (f[4] == "escalated") st.escalated += n;
    else st.dead_lettered += n;
    return true;
  });
  if (!ok) return ok.error();
  if (failed) return bad;
  ok = s.scan(family::histograms, prefix, [&](std::string_view key, std::string_view value) {
    auto f = fields(key);  // p, quarter, category
    if (f.size() != 3 || (quarter && f[1] != *quarter)) return true;
    auto c = decode(key, value, "histograms");
    if (!c) return false;
    add_into(stats_of(f[1], f[2]).confidence, *c);
    return true;
  });
  if (!ok) return ok.error();
  if (failed) return bad;
  ok = s.scan(family::accuracy, prefix, [&](std::string_view key, std::string_view value) {
    auto f = fields(key);  // p, quarter, category [, "shadow"]
    const bool shadow = f.size() == 4 && f[3] == "shadow";
    if ((f.size() != 3 && !shadow) || (quarter && f[1] != *quarter)) return true;
    auto c = decode(key, value, "accuracy");
    if (!c) return false;
    auto& st = stats_of(f[1], f[2]);
    if (shadow) {
      c->resize(5);
      st.shadow_decisions += (*c)[0];
      st.shadow_same_category += (*c)[1];
      st.shadow_same_route += (*c)[2];
      st.shadow_escalated += (*c)[3];
      st.shadow_live_escalated += (*c)[4];
      return true;
    }
    if (c->size() >= 2) {
      st.corrections += (*c)[0];
      st.agreed += (*c)[1];
    }
    if (c->size() >= 5) {
      st.shadow_corrections += (*c)[2];
      st.shadow_agreed += (*c)[3];
      st.shadow_live_agreed += (*c)[4];
    }
    return true;
  });
  if (!ok) return ok.error();
  if (failed) return bad;
  std::map<std::string, hour_stats> hours;
  ok = s.scan(family::windows, prefix, [&](std::string_view key, std::string_view value) {
    auto f = fields(key);  // p, hour
    if (f.size() != 2) return true;
    auto c = decode(key, value, "windows");
    if (!c) return false;
    c->resize(3);
    auto& h = hours[f[1]];
    h.hour = f[1];
    h.tickets += (*c)[0];
    h.escalated += (*c)[1];
    h.dead_lettered += (*c)[2];
    return true;
  });
  if (!ok) return ok.error();
  if (failed) return bad;

  summary out;
  std::map<std::string, bool> quarters;
  for (auto& [k, st] : cats) {
    quarters[k.first] = true;
    out.categories.push_back(std::move(st));
  }
  for (const auto& [q, unused] : quarters) {
    auto d = drift_of(s, q, partition);
    if (!d) return d.error();
    out.drift.push_back(d.value());
  }
  for (auto& [h, st] : hours) out.hours.push_back(st);
  return out;
}

std::string to_table(const summary& s, int last_hours) {
  std::ostringstream o;
  char line[256];
  std::snprintf(line, sizeof line, "%-7s %-16s %9s %9s %9s %8s %8s %8s %9s\n", "quarter", "category",
                "routed", "escalated", "dead", "esc.rate", "mean.cf", "correct.", "accuracy");
  o << line;
  for (const auto& c : s.categories) {
    double sum = 0, n = 0;
    for (size_t i = 0; i < c.confidence.size(); ++i) {
      sum += (static_cast<double>(i) + 0.5) / confidence_bins * static_cast<double>(c.confidence[i]);
      n += static_cast<double>(c.confidence[i]);
    }
    char acc[16] = "-";
    if (c.corrections) std::snprintf(acc, sizeof acc, "%.3f", c.accuracy());
    char mean[16] = "-";
    if (n > 0) std::snprintf(mean, sizeof mean, "%.2f", sum / n);
    std::snprintf(line, sizeof line, "%-7s %-16s %9lld %9lld %9lld %8.3f %8s %8lld %9s\n", c.quarter.c_str(),
                  c.category.c_str(), static_cast<long long>(c.routed), static_cast<long long>(c.escalated),
                  static_cast<long long>(c.dead_lettered), c.escalation_rate(), mean,
                  static_cast<long long>(c.corrections), acc);
    o << line;
  }
  bool any_shadow = false;
  for (const auto& c : s.categories) any_shadow = any_shadow || c.shadow_decisions > 0 || c.shadow_corrections > 0;
  if (any_shadow) {
    o << "\nshadow adapter beside the live one, by live category (route: both routed or both escalated;\n"
         "accuracy over the corrections of shadowed tickets, the same tickets for both)\n";
    std::snprintf(line, sizeof line, "%-7s %-16s %9s %9s %9s %9s %9s %8s %9s %9s\n", "quarter", "category",
                  "shadowed", "same.cat", "same.rte", "esc.live", "esc.shdw", "correct.", "acc.live", "acc.shdw");
    o << line;
    for (const auto& c : s.categories) {
      if (c.shadow_decisions == 0 && c.shadow_corrections == 0) continue;
      const double n = static_cast<double>(c.shadow_decisions);
      char same_cat[16] = "-", same_route[16] = "-", esc_live[16] = "-", esc_shadow[16] = "-", live[16] = "-",
           cand[16] = "-";
      if (c.shadow_decisions) {
        std::snprintf(same_cat, sizeof same_cat, "%.3f", static_cast<double>(c.shadow_same_category) / n);
        std::snprintf(same_route, sizeof same_route, "%.3f", static_cast<double>(c.shadow_same_route) / n);
        std::snprintf(esc_live, sizeof esc_live, "%.3f", static_cast<double>(c.shadow_live_escalated) / n);
        std::snprintf(esc_shadow, sizeof esc_shadow, "%.3f", static_cast<double>(c.shadow_escalated) / n);
      }
      if (c.shadow_corrections) {
        std::snprintf(live, sizeof live, "%.3f", c.shadow_live_accuracy());
        std::snprintf(cand, sizeof cand, "%.3f", c.shadow_accuracy());
      }
      std::snprintf(line, sizeof line, "%-7s %-16s %9lld %9s %9s %9s %9s %8lld %9s %9s\n", c.quarter.c_str(),
                    c.category.c_str(), static_cast<long long>(c.shadow_decisions), same_cat, same_route,
                    esc_live, esc_shadow, static_cast<long long>(c.shadow_corrections), live, cand);
      o << line;
    }
  }
  o << "\ndrift against the baseline (first tickets of each partition); PSI > 0.25 is significant;\n"
       "unk: share of tokens that are byte fragments (characters the vocabulary lacks)\n";
  std::snprintf(line, sizeof line, "%-7s %9s %9s %10s %10s %10s %10s %9s %9s\n", "quarter", "baseline", "tickets",
                "psi.categ", "psi.conf", "psi.length", "psi.unkn", "unk.base", "unk.now");
  o << line;
  for (const auto& d : s.drift) {
    std::snprintf(line, sizeof line, "%-7s %9lld %9lld %10.4f %10.4f %10.4f %10.4f %9.4f %9.4f\n", d.quarter.c_str(),
                  static_cast<long long>(d.baseline_tickets), static_cast<long long>(d.tickets), d.psi_category,
                  d.psi_confidence, d.psi_length, d.psi_unknown, d.baseline_unknown_rate, d.unknown_rate);
    o << line;
  }
  o << "\nescalation rate per hour (last " << last_hours << " buckets with tickets)\n";
  const size_t from = s.hours.size() > static_cast<size_t>(last_hours) ? s.hours.size() - last_hours : 0;
  for (size_t i = from; i < s.hours.size(); ++i) {
    const auto& h = s.hours[i];
    std::snprintf(line, sizeof line, "%-14s %9lld tickets %9lld escalated %8.3f\n", h.hour.c_str(),
                  static_cast<long long>(h.tickets), static_cast<long long>(h.escalated),
                  h.tickets ? static_cast<double>(h.escalated) / static_cast<double>(h.tickets) : 0.0);
    o << line;
  }
  return o.str();
}

nlohmann::json to_json(const summary& s) {
  nlohmann::json j;
  j["categories"] = nlohmann::json::array();
  for (const auto& c : s.categories) {
    nlohmann::json row{{"quarter", c.quarter},
                       {"category", c.category},
                       {"routed", c.routed},
                       {"escalated", c.escalated},
                       {"dead_lettered", c.dead_lettered},
                       {"escalation_rate", c.escalation_rate()},
                       {"confidence_deciles", c.confidence},
                       {"corrections", c.corrections},
                       {"agreed", c.agreed}};
    if (c.corrections) {
      row["accuracy"] = c.accuracy();
      row["disagreement_rate"] = 1 - c.accuracy();
    }
    if (c.shadow_decisions || c.shadow_corrections) {
      nlohmann::json sh{{"decisions", c.shadow_decisions},
                        {"same_category", c.shadow_same_category},
                        {"same_route", c.shadow_same_route},
                        {"escalated", c.shadow_escalated},
                        {"live_escalated", c.shadow_live_escalated},
                        {"corrections", c.shadow_corrections},
                        {"agreed", c.shadow_agreed},
                        {"live_agreed", c.shadow_live_agreed}};
      if (c.shadow_decisions) {
        const double n = static_cast<double>(c.shadow_decisions);
        sh["category_agreement"] = static_cast<double>(c.shadow_same_category) / n;
        sh["route_agreement"] = static_cast<double>(c.shadow_same_route) / n;
        sh["escalation_rate"] = static_cast<double>(c.shadow_escalated) / n;
        sh["live_escalation_rate"] = static_cast<double>(c.shadow_live_escalated) / n;
      }
      if (c.shadow_corrections) {
        sh["accuracy"] = c.shadow_accuracy();
        sh["live_accuracy"] = c.shadow_live_accuracy();
      }
      row["shadow"] = sh;
    }
    j["categories"].push_back(row);
  }
  j["drift"] = nlohmann::json::array();
  for (const auto& d : s.drift) {
    j["drift"].push_back({{"quarter", d.quarter},
                          {"baseline_tickets", d.baseline_tickets},
                          {"tickets", d.tickets},
                          {"psi_category", d.psi_category},
                          {"psi_confidence", d.psi_confidence},
                          {"psi_length", d.psi_length},
                          {"psi_unknown", d.psi_unknown},
                          {"unknown_rate", d.unknown_rate},
                          {"baseline_unknown_rate", d.baseline_unknown_rate}});
  }
  j["hours"] = nlohmann::json::array();
  for (const auto& h : s.hours) {
    j["hours"].push_back({{"hour", h.hour},
                          {"tickets", h.tickets},
                          {"escalated", h.escalated},
                          {"dead_lettered", h.dead_lettered}});
  }
  return j;
}

result<size_t> export_examples(const store& s, const std::string& quarter, std::ostream& out) {
  size_t n = 0;
  auto ok = s.scan(family::examples, "", [&](std::string_view key, std::string_view value) {
    auto f = fields(key);  // p, quarter, ticket id (which may hold '|')
    if (f.size() < 3 || f[1] != quarter) return true;
    out << value << '\n';
    ++n;
    return true;
  });
  if (!ok) return ok.error();
  return n;
}

}  // namespace triage::state
