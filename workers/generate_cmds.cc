#include "workers/generate_cmds.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>

#include <nlohmann/json.hpp>

#include "base/progress.h"
#include "compute/classifier/adapter.h"
#include "compute/classifier/calibration.h"
#include "compute/classifier/dataset.h"
#include "compute/classifier/engine.h"
#include "workers/commands.h"
#include "workers/generate_backend.h"

namespace triage::workers {
namespace {

using json = nlohmann::ordered_json;
namespace cl = triage::classifier;

// At most `limit` of `rows`, evenly spaced (rows are sorted, so every intent keeps a share).
std::vector<size_t> spread(const std::vector<size_t>& rows, size_t limit) {
  if (limit == 0 || rows.size() <= limit) return rows;
  std::vector<size_t> out;
  for (size_t k = 0; k < limit; ++k) out.push_back(rows[k * rows.size() / limit]);
  return out;
}

json reliability_json(const cl::reliability_report& r) {
  json bins = json::array();
  for (const auto& b : r.bins) {
    if (b.count == 0) continue;
    bins.push_back({{"lo", b.lo}, {"hi", b.hi}, {"count", b.count},
                    {"mean_confidence", b.mean_confidence}, {"accuracy", b.accuracy}});
  }
  return {{"ece", r.ece}, {"bins", bins}};
}

struct run_result {
  std::vector<generate_backend::scored> scored;
  double seconds = 0;
};

run_result run_all(generate_backend& b, const std::vector<std::string>& texts, const std::string& label) {
  run_result r;
  progress_bar bar(label, texts.size());
  const auto t0 = std::chrono::steady_clock::now();
  for (size_t i = 0; i < texts.size(); ++i) {
    auto s = b.generate(std::span(texts).subspan(i, 1));
    r.scored.push_back(std::move(s[0]));
    bar.update(i + 1);
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  bar.finish();
  return r;
}

bool escalated_category(const topology::config& cfg, const std::string& cat) {
  const auto& a = cfg.routing.always_escalate;
  return std::find(a.begin(), a.end(), cat) != a.end();
}

}  // namespace

int run_calibrate_generate(const calibrate_generate_args& args) {
  auto cfg = topology::load_config(args.config);
  if (!cfg) {
    std::cerr << "triage calibrate-generate: " << cfg.error().message << "\n";
    return 2;
  }
  auto tax = cl::load_taxonomy(args.taxonomy);
  if (!tax) {
    std::cerr << "triage calibrate-generate: " << tax.error().message << "\n";
    return 2;
  }
  auto data = cl::load_examples(args.data, tax.value());
  if (!data) {
    std::cerr << "triage calibrate-generate: " << data.error().message << "\n";
    return 2;
  }
  const auto& examples = data.value();
  // The split `triage train` makes with the same shares and seed: the
  // out-of-scope class it may add sorts last, so the in-scope parts match.
  const auto split = cl::stratified_split(cl::labels_of(examples),
                                          {.calibration = args.calibration, .test = args.test, .seed = args.seed});
  const auto cal_rows = spread(split.calibration, args.limit);
  const auto test_rows = spread(split.test, args.limit);
  const auto texts_of = [&](const std::vector<size_t>& rows) {
    std::vector<std::string> t;
    for (size_t r : rows) t.push_back(examples[r].text);
    return t;
  };
  const auto cat_of = [&](size_t row) { return tax.value().intent_category[static_cast<size_t>(examples[row].intent)]; };

  const std::string model_path = model_path_or_default(args.model);
  generate_backend_options bo;
  bo.model = model_path;
  bo.taxonomy = args.taxonomy;
  bo.threads = args.threads;
  bo.generate = cfg.value().generate;
  bo.generate.calibration.clear();  // being fitted now
  bo.backend = args.backend;
  bo.device.device.pipeline_cache_dir = vulkan::default_pipeline_cache_dir();
  auto b = generate_backend::load(bo);
  if (!b) {
    std::cerr << "triage calibrate-generate: " << b.error().message << "\n";
    return 2;
  }
  const int n_cat = static_cast<int>(tax.value().categories.size());

  // Temperature on the calibration split's log-probabilities.
  const auto cal = run_all(*b.value(), texts_of(cal_rows), "calibration split");
  std::vector<float> cal_logits;
  std::vector<int32_t> cal_labels;
  for (size_t i = 0; i < cal_rows.size(); ++i) {
    const auto z = cl::log_probs(cal.scored[i].out.category_probs);
    cal_logits.insert(cal_logits.end(), z.begin(), z.end());
    cal_labels.push_back(cat_of(cal_rows[i]));
  }
  cl::generate_calibration c;
  c.temperature = cl::fit_temperature(cal_logits, cal_labels, n_cat);
  // Threshold among the tickets the policy would route on confidence.
  std::vector<float> rconf, cal_conf;
  std::vector<uint8_t> rright, cal_right;
  for (size_t i = 0; i < cal_rows.size(); ++i) {
    const auto& g = cal.scored[i].out;
    const float conf = cl::calibrate_probs(g.category_probs, c.temperature)[static_cast<size_t>(g.category)];
    const bool right = g.category == cal_labels[i];
    cal_conf.push_back(conf);
    cal_right.push_back(right);
    if (escalated_category(cfg.value(), tax.value().categories[static_cast<size_t>(g.category)])) continue;
    rconf.push_back(conf);
    rright.push_back(right);
  }
  const auto choice = cl::choose_threshold(rconf, rright, {.target_accuracy = args.target_accuracy});
  c.threshold = choice.threshold;
  c.target_accuracy = args.target_accuracy;
  c.target_met = choice.met;
  c.base_fingerprint = b.value()->fingerprint();
  c.taxonomy_sha256 = tax.value().sha256;
  c.prompt_sha256 = cl::prompt_fingerprint(generate_spec_of(cfg.value().generate));
  c.created_by = args.command_line;

  // Held-out test split: used for nothing above.
  const auto test = run_all(*b.value(), texts_of(test_rows), "test split");
  std::vector<float> conf, raw_conf;
  std::vector<uint8_t> right;
  size_t cat_right = 0, urg_right = 0, routed = 0, routed_right = 0, passes = 0, out_tokens = 0;
  for (size_t i = 0; i < test_rows.size(); ++i) {
    const auto& g = test.scored[i].out;
    const auto truth = cat_of(test_rows[i]);
    const bool ok = g.category == truth;
    const float p = cl::calibrate_probs(g.category_probs, c.temperature)[static_cast<size_t>(g.category)];
    conf.push_back(p);
    raw_conf.push_back(g.category_probs[static_cast<size_t>(g.category)]);
    right.push_back(ok);
    cat_right += ok;
    urg_right += g.urgency == tax.value().intent_urgency[static_cast<size_t>(examples[test_rows[i]].intent)];
    passes += g.forward_passes;
    out_tokens += g.output_tokens;
    if (!escalated_category(cfg.value(), tax.value().categories[static_cast<size_t>(g.category)]) &&
        p >= c.threshold) {
      ++routed;
      routed_right += ok;
    }
  }
  const double n_test = static_cast<double>(test_rows.size());
  const auto test_rel = cl::reliability(conf, right);
  const auto raw_rel = cl::reliability(raw_conf, right);
  json report = {
      {"calibration_file", ""},
      {"command", args.command_line},
      {"model", model_path},
      {"backend", b.value()->name()},
      {"device", b.value()->device_model() ? b.value()->device_model()->device().name : "cpu"},
      {"data", args.data},
      {"split", {{"calibration_used", cal_rows.size()}, {"calibration_total", split.calibration.size()},
                 {"test_used", test_rows.size()}, {"test_total", split.test.size()}, {"seed", args.seed}}},
      {"generate", {{"max_tokens", bo.generate.max_tokens}, {"max_expansions", bo.generate.max_expansions},
                    {"prompt_sha256", c.prompt_sha256}}},
      {"calibration", {{"temperature", c.temperature},
                       {"reliability", reliability_json(cl::reliability(cal_conf, cal_right))}}},
      {"threshold", {{"target_accuracy", args.target_accuracy}, {"threshold", c.threshold},
                     {"met_on_calibration", choice.met}, {"calibration_coverage_of_routable", choice.coverage},
                     {"calibration_accuracy", choice.accuracy}}},
      {"test", {{"category_accuracy", cat_right / n_test},
                {"urgency_accuracy", urg_right / n_test},
                {"ece", test_rel.ece},
                {"ece_uncalibrated", raw_rel.ece},
                {"auto_routed_share", routed / n_test},
                {"auto_routed_accuracy", routed ? static_cast<double>(routed_right) / static_cast<double>(routed) : 0.0},
                {"tickets_per_s", n_test / test.seconds},
                {"forward_passes_per_ticket", static_cast<double>(passes) / n_test},
                {"output_tokens_per_ticket", static_cast<double>(out_tokens) / n_test},
                {"reliability", reliability_json(test_rel)}}},
  };

  if (!args.compare_adapter.empty()) {
    auto e = cl::engine::load({.model = model_path, .adapter = args.compare_adapter, .threads = args.threads,
                               .batch = 32});
    if (!e) {
      std::cerr << "triage calibrate-generate: " << e.error().message << "\n";
      return 2;
    }
    const auto texts = texts_of(test_rows);
    const auto t0 = std::chrono::steady_clock::now();
    const auto preds = e.value().classify(texts);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const auto& a = e.value().adapter_info();
    std::vector<float> hconf;
    std::vector<uint8_t> hright;
    size_t hr = 0, hu = 0, hrouted = 0, hrouted_right = 0;
    for (size_t i = 0; i < preds.size(); ++i) {
      const auto& p = preds[i];
      const auto& truth = tax.value().categories[static_cast<size_t>(cat_of(test_rows[i]))];
      const bool ok = a.categories[static_cast<size_t>(p.category)] == truth;
      hconf.push_back(p.confidence);
      hright.push_back(ok);
      hr += ok;
      hu += p.urgency == tax.value().intent_urgency[static_cast<size_t>(examples[test_rows[i]].intent)];
      const auto& cat = a.categories[static_cast<size_t>(p.category)];
      if (!p.out_of_scope && cat != cl::out_of_scope_intent && !escalated_category(cfg.value(), cat) &&
          p.confidence >= a.threshold) {
        ++hrouted;
        hrouted_right += ok;
      }
    }
    report["head_mode_same_tickets"] = {
        {"adapter", args.compare_adapter},
        {"category_accuracy", hr / n_test},
        {"urgency_accuracy", hu / n_test},
        {"ece", cl::reliability(hconf, hright).ece},
        {"threshold", a.threshold},
        {"auto_routed_share", hrouted / n_test},
        {"auto_routed_accuracy", hrouted ? static_cast<double>(hrouted_right) / static_cast<double>(hrouted) : 0.0},
        {"tickets_per_s", n_test / secs},
    };
  }

  const std::string out = !args.out.empty() ? args.out
                          : !cfg.value().generate.calibration.empty() ? cfg.value().generate.calibration
                                                                       : "generate-calibration.json";
  if (auto ok = cl::save_generate_calibration(c, out); !ok) {
    std::cerr << "triage calibrate-generate: " << ok.error().message << "\n";
    return 1;
  }
  report["calibration_file"] = out;
  const std::string report_path = args.report.empty() ? out + ".report.json" : args.report;
  std::ofstream(report_path) << report.dump(2) << "\n";
  const auto& t = report["test"];
  std::printf("generate calibration %s (report %s)\n", out.c_str(), report_path.c_str());
  std::printf("  temperature %.3f, threshold %.4f for target %.3f (met on calibration: %s)\n",
              static_cast<double>(c.temperature), static_cast<double>(c.threshold), args.target_accuracy,
              choice.met ? "yes" : "no");
  std::printf("  generate, held-out test (%zu of %zu tickets): category accuracy %.4f, urgency accuracy %.4f, "
              "ECE %.4f (uncalibrated %.4f), %.2f tickets/s, auto-routed %.4f at accuracy %.4f\n",
              test_rows.size(), split.test.size(), t["category_accuracy"].get<double>(),
              t["urgency_accuracy"].get<double>(), t["ece"].get<double>(), t["ece_uncalibrated"].get<double>(),
              t["tickets_per_s"].get<double>(), t["auto_routed_share"].get<double>(),
              t["auto_routed_accuracy"].get<double>());
  if (report.contains("head_mode_same_tickets")) {
    const auto& h = report["head_mode_same_tickets"];
    std::printf("  head (%s), same tickets: category accuracy %.4f, urgency accuracy %.4f, ECE %.4f, "
                "%.2f tickets/s, auto-routed %.4f at accuracy %.4f\n",
                args.compare_adapter.c_str(), h["category_accuracy"].get<double>(),
                h["urgency_accuracy"].get<double>(), h["ece"].get<double>(), h["tickets_per_s"].get<double>(),
                h["auto_routed_share"].get<double>(), h["auto_routed_accuracy"].get<double>());
  }
  return 0;
}

int run_classify_generate(const classify_args& args, const topology::config& cfg,
                          const std::vector<std::string>& ids, const std::vector<std::string>& texts) {
  generate_backend_options bo;
  bo.model = model_path_or_default(args.model);
  bo.taxonomy = args.taxonomy;
  bo.threads = args.threads;
  bo.generate = cfg.generate;
  bo.backend = args.backend;
  bo.device.device.pipeline_cache_dir = vulkan::default_pipeline_cache_dir();
  auto b = generate_backend::load(bo);
  if (!b) {
    std::cerr << "triage classify: " << b.error().message << "\n";
    return 2;
  }
  const auto& routing = cfg.routing;
  const float threshold =
      routing.min_confidence >= 0 ? static_cast<float>(routing.min_confidence) : b.value()->threshold();
  const auto& cats = b.value()->tax().categories;
  for (size_t i = 0; i < texts.size(); ++i) {
    const auto s = b.value()->generate(std::span(texts).subspan(i, 1));
    const auto& g = s[0].out;
    const std::string& cat = cats[static_cast<size_t>(g.category)];
    const float conf = s[0].calibrated[static_cast<size_t>(g.category)];
    std::string reason;
    if (escalated_category(cfg, cat)) reason = "always_escalate_category";
    else if (conf < threshold) reason = "low_confidence";
    else if (g.truncated && routing.escalate_truncated) reason = "truncated";
    auto q = routing.queues.find(cat);
    const std::string queue = q == routing.queues.end() ? cat : q->second;
    json out = {{"id", ids[i]}, {"category", cat}, {"urgency", g.urgency},
                {"confidence", conf}, {"intent", ""},
                {"route", reason.empty() ? queue : "escalate"},
                {"reason", reason.empty() ? "confidence " + std::to_string(conf) + " >= threshold " + std::to_string(threshold) : reason},
                {"truncated", g.truncated}};
    std::cout << out.dump() << "\n" << std::flush;
  }
  return 0;
}

}  // namespace triage::workers
