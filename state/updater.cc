#include "state/updater.h"

#include <cctype>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "state/drift.h"

namespace triage::state {
namespace {

constexpr size_t shadow_width = 5;

std::string flatten(std::string_view s) {
  std::string out(s);
  for (auto& c : out) {
    if (c == '\t' || c == '\n' || c == '\r') c = ' ';
  }
  return out;
}

std::string example_json(const ticket_fact& f, const std::string& quarter, const std::string& why,
                         const std::string& text) {
  nlohmann::json j{{"ticket_id", f.ticket_id}, {"quarter", quarter},   {"partition", f.partition},
                   {"offset", f.offset},       {"category", f.category}, {"urgency", f.urgency},
                   {"confidence", f.confidence}, {"outcome", f.outcome}, {"reason", f.reason},
                   {"source", why},            {"label", ""}};
  if (!text.empty()) j["text"] = text;
  return j.dump();
}

}  // namespace

std::string redact_default(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (std::isdigit(c)) {
      size_t j = i;
      while (j < text.size() && (std::isdigit(static_cast<unsigned char>(text[j])) || text[j] == ' ' || text[j] == '-')) ++j;
      size_t digits = 0;
      for (size_t k = i; k < j; ++k) digits += std::isdigit(static_cast<unsigned char>(text[k])) != 0;
      if (digits >= 4) {
        out += '#';
        // Keep a trailing separator so words stay apart.
        if (j > i && (text[j - 1] == ' ')) out += ' ';
      } else {
        out.append(text.substr(i, j - i));
      }
      i = j;
      continue;
    }
    if (c == '@') {
      // Drop the e-mail address around the '@': back to the last space, on to the next.
      while (!out.empty() && out.back() != ' ') out.pop_back();
      out += "<email>";
      while (i < text.size() && !std::isspace(static_cast<unsigned char>(text[i]))) ++i;
      continue;
    }
    out += (c == '\t' || c == '\n' || c == '\r') ? ' ' : static_cast<char>(c);
    ++i;
  }
  return out;
}

std::string changelog_key(family f, std::string_view store_key) {
  std::string k(family_name(f));
  k += '/';
  k.append(store_key);
  return k;
}

result<std::pair<family, std::string>> parse_changelog_key(std::string_view key) {
  const auto slash = key.find('/');
  if (slash == std::string_view::npos) {
    return make_error(errc::invalid_argument, "changelog key '" + std::string(key) + "': no '/'");
  }
  auto f = family_by_name(key.substr(0, slash));
  if (!f) {
    return make_error(errc::invalid_argument, "changelog key '" + std::string(key) +
                                                  "': unknown column family '" +
                                                  std::string(key.substr(0, slash)) + "'");
  }
  return std::pair<family, std::string>(*f, std::string(key.substr(slash + 1)));
}

std::string encode_decision(const decision_record& d) {
  char conf[32];
  std::snprintf(conf, sizeof conf, "%.4f", static_cast<double>(d.confidence));
  std::string out = d.quarter + '\t' + flatten(d.category) + '\t' + std::to_string(d.urgency) + '\t' +
                    conf + '\t' + d.outcome;
  // Shadow category after the text field (written, maybe empty, when there
  // is one), so readers of 5 or 6 fields still read the rest.
  if (!d.text.empty() || !d.shadow_category.empty()) out += '\t' + flatten(d.text);
  if (!d.shadow_category.empty()) out += '\t' + flatten(d.shadow_category);
  return out;
}

result<decision_record> decode_decision(std::string_view value) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (;;) {
    const auto tab = value.find('\t', start);
    parts.push_back(value.substr(start, tab == std::string_view::npos ? tab : tab - start));
    if (tab == std::string_view::npos) break;
    start = tab + 1;
  }
  if (parts.size() < 5) {
    return make_error(errc::corrupt, "decision '" + std::string(value) + "': expected 5 to 7 fields");
  }
  decision_record d;
  d.quarter = parts[0];
  d.category = parts[1];
  try {
    d.urgency = std::stoi(std::string(parts[2]));
    d.confidence = std::stof(std::string(parts[3]));
  } catch (const std::exception&) {
    return make_error(errc::corrupt, "decision '" + std::string(value) + "': bad urgency or confidence");
  }
  d.outcome = parts[4];
  if (parts.size() > 5) d.text = parts[5];
  if (parts.size() > 6) d.shadow_category = parts[6];
  return d;
}

updater::updater(store& s, updater_options opts) : store_(s), opts_(std::move(opts)) {}

result<update> updater::prepare(std::span<const ticket_fact> facts,
                                const std::map<int32_t, int64_t>& next_offsets) {
  update up;
  // Additive deltas, merged per key so each key is read and logged once.
  std::map<std::pair<family, std::string>, counts> deltas;
  auto add = [&](family f, std::string key, size_t index, size_t width, int64_t amount = 1) {
    auto& d = deltas[{f, std::move(key)}];
    if (d.size() < width) d.resize(width);
    d[index] += amount;
  };
  // The baseline's size per partition: read once, then counted along.
  std::map<int32_t, int64_t> baseline_n;
  for (const auto& f : facts) {
    const std::string p = partition_prefix(f.partition);
    const std::string q = quarter_of(f.timestamp_ms);
    const bool dead = f.outcome == "dead_lettered";
    const bool escalated = f.outcome == "escalated";
    add(family::counters,
        p + q + '|' + (dead ? "-" : f.category) + '|' + std::to_string(f.urgency) + '|' + f.outcome, 0, 1);
    // [tickets, escalated, dead-lettered] of the hour.
    const std::string hour = p + hour_of(f.timestamp_ms);
    add(family::windows, hour, 0, 3);
    if (escalated) add(family::windows, hour, 1, 3);
    if (dead) add(family::windows, hour, 2, 3);
    if (dead) continue;
    add(family::histograms, p + q + '|' + f.category, static_cast<size_t>(confidence_bin(f.confidence)),
        confidence_bins);
    if (f.has_shadow) {
      // [shadow decisions, same category, same route, shadow escalated, live escalated].
      const std::string skey = p + q + '|' + f.category + "|shadow";
      add(family::accuracy, skey, 0, shadow_width);
      if (f.shadow_category == f.category) add(family::accuracy, skey, 1, shadow_width);
      if (f.shadow_escalated == escalated) add(family::accuracy, skey, 2, shadow_width);
      if (f.shadow_escalated) add(family::accuracy, skey, 3, shadow_width);
      if (escalated) add(family::accuracy, skey, 4, shadow_width);
    }

    auto [it, fresh] = baseline_n.try_emplace(f.partition, 0);
    if (fresh) {
      auto n = current(family::drift, p + "baseline|n");
      if (!n) return n.error();
      it->second = n.value().empty() ? 0 : n.value()[0];
    }
    const std::string period = it->second < opts_.baseline_tickets ? "baseline" : q;
    if (period == "baseline") ++it->second;
    add(family::drift, p + period + "|n", 0, 1);
    add(family::drift, p + period + "|cat|" + f.category, 0, 1);
    add(family::drift, p + period + "|conf", static_cast<size_t>(confidence_bin(f.confidence)), confidence_bins);
    add(family::drift, p + period + "|len", static_cast<size_t>(length_bin(f.tokens)), length_bins);
    // Unknown-token rate: its per-ticket bin, and [unknown tokens, tokens] summed.
    add(family::drift, p + period + "|unk", static_cast<size_t>(unknown_bin(f.unknown_tokens, f.tokens)),
        unknown_bins);
    add(family::drift, p + period + "|unks", 0, 2, f.unknown_tokens);
    add(family::drift, p + period + "|unks", 1, 2, f.tokens);

    if (f.ticket_id.empty()) continue;
    const std::string text = opts_.keep_ticket_text && !f.text.empty() ? opts_.redact(f.text) : "";
    std::string dkey = p + f.ticket_id;
    std::string dval = encode_decision(
        {q, f.category, f.urgency, f.confidence, f.outcome, text, f.has_shadow ? f.shadow_category : ""});
    up.changelog.push_back({f.partition, changelog_key(family::decisions, dkey), dval});
    up.local.put(family::decisions, std::move(dkey), std::move(dval));
    const bool low = f.confidence < opts_.example_max_confidence;
    if (escalated || low) {
      std::string ekey = p + q + '|' + f.ticket_id;
      std::string eval = example_json(f, q, escalated ? "escalated" : "low_confidence", text);
      up.changelog.push_back({f.partition, changelog_key(family::examples, ekey), eval});
      up.local.put(family::examples, std::move(ekey), std::move(eval));
    }
  }
  for (auto& [fk, delta] : deltas) {
    auto cur = current(fk.first, fk.second);
    if (!cur) return cur.error();
    counts total = std::move(cur.value());
    if (total.size() < delta.size()) total.resize(delta.size());
    for (size_t i = 0; i < delta.size(); ++i) total[i] += delta[i];
    const int32_t partition = std::stoi(fk.second.substr(0, 5));
    up.changelog.push_back({partition, changelog_key(fk.first, fk.second), encode_counts(total)});
    up.local.add(fk.first, fk.second, delta);
    up.totals.emplace_back(static_cast<char>(fk.first) + fk.second, std::move(total));
  }
  for (const auto& [partition, next] : next_offsets) {
    std::string v = encode_counts({next});
    up.changelog.push_back({partition, changelog_key(family::meta, applied_key(partition)), v});
    up.local.put(family::meta, applied_key(partition), std::move(v));
  }
  return up;
}

result<counts> updater::current(family f, const std::string& key) {
  auto it = cache_.find(static_cast<char>(f) + key);
  if (it != cache_.end()) return it->second;
  return store_.get_counts(f, key);
}

result<void> updater::apply(const update& u) {
  auto ok = store_.write(u.local);
  if (!ok) {
    cache_.clear();
    return ok;
  }
  // Bounded: hour buckets keep coming; what falls out is read again.
  if (cache_.size() > 200000) cache_.clear();
  for (const auto& [key, total] : u.totals) cache_[key] = total;
  return success();
}

void updater::forget() { cache_.clear(); }

result<bool> join_correction(const store& s, const v1::Correction& c, write_set& w) {
  auto parts = s.partitions();
  if (!parts) return parts.error();
  for (int32_t partition : parts.value()) {
    const std::string p = partition_prefix(partition);
    auto v = s.get(family::decisions, p + c.ticket_id());
    if (!v) return v.error();
    if (!v.value()) continue;
    auto d = decode_decision(*v.value());
    if (!d) return d.error();
    const auto& dec = d.value();
    const bool agreed = c.category().empty() || c.category() == dec.category;
    if (dec.shadow_category.empty()) {
      w.add(family::accuracy, p + dec.quarter + '|' + dec.category, {1, agreed ? 1 : 0});
    } else {
      // The candidate judged on the same corrections: paired with the live.
      const bool shadow_agreed = c.category().empty() || c.category() == dec.shadow_category;
      // [corrections, agreed, shadowed corrections, shadow agreed, live agreed on those].
      w.add(family::accuracy, p + dec.quarter + '|' + dec.category,
            {1, agreed ? 1 : 0, 1, shadow_agreed ? 1 : 0, agreed ? 1 : 0});
    }
    // The example keeps what the worker knew, with the label the agent gave.
    const std::string ekey = p + dec.quarter + '|' + c.ticket_id();
    nlohmann::json j;
    auto old = s.get(family::examples, ekey);
    if (!old) return old.error();
    if (old.value()) {
      j = nlohmann::json::parse(*old.value(), nullptr, false);
      if (j.is_discarded()) return make_error(errc::corrupt, s.path() + " [examples] '" + ekey + "': not JSON");
    } else {
      j = {{"ticket_id", c.ticket_id()}, {"quarter", dec.quarter}, {"partition", partition},
           {"category", dec.category},   {"urgency", dec.urgency},  {"confidence", dec.confidence},
           {"outcome", dec.outcome},     {"reason", ""}};
      if (!dec.text.empty()) j["text"] = dec.text;
    }
    j["source"] = "corrected";
    j["label"] = c.category().empty() ? dec.category : c.category();
    if (c.urgency() != 0) j["label_urgency"] = c.urgency();
    if (!c.intent().empty()) j["label_intent"] = c.intent();
    j["corrected_by"] = c.source();
    w.put(family::examples, ekey, j.dump());
    return true;
  }
  return false;
}

}  // namespace triage::state
