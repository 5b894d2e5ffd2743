#include "workers/classify_cmds.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <numeric>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "base/csv.h"
#include "base/progress.h"
#include "compute/classifier/adapter.h"
#include "compute/classifier/calibration.h"
#include "compute/classifier/dataset.h"
#include "compute/classifier/engine.h"
#include "compute/classifier/head.h"
#include "compute/classifier/taxonomy.h"
#include "topology/config.h"
#include "workers/commands.h"
#include "workers/generate_cmds.h"
#include "workers/training.h"

namespace triage::workers {
namespace {

using json = nlohmann::ordered_json;
namespace cl = triage::classifier;

}  // namespace

int run_train(const train_args& args) {
  auto tax = cl::load_taxonomy(args.taxonomy);
  if (!tax) {
    std::cerr << "triage train: " << tax.error().message << "\n";
    return 2;
  }
  auto data = cl::load_examples(args.data, tax.value());
  if (!data) {
    std::cerr << "triage train: " << data.error().message << "\n";
    return 2;
  }
  std::vector<std::string> texts;
  std::vector<int32_t> labels;
  for (auto& e : data.value()) {
    texts.push_back(e.text);
    labels.push_back(e.intent);
  }
  // Labels: the taxonomy's intents, plus out_of_scope when such data is given.
  cl::adapter a;
  a.intents = tax.value().intents;
  a.categories = tax.value().categories;
  a.intent_category = tax.value().intent_category;
  a.intent_urgency = tax.value().intent_urgency;
  std::vector<std::string> oos_val;
  if (!args.out_of_scope.empty()) {
    auto t = read_csv(args.out_of_scope);
    if (!t) {
      std::cerr << "triage train: " << t.error().message << "\n";
      return 2;
    }
    auto ct = t.value().column("text"), cs = t.value().column("split");
    if (!ct || !cs) {
      std::cerr << "triage train: " << (!ct ? ct.error().message : cs.error().message) << "\n";
      return 2;
    }
    const int32_t oos = static_cast<int32_t>(a.intents.size());
    a.intents.emplace_back(cl::out_of_scope_intent);
    a.categories.emplace_back(cl::out_of_scope_intent);
    a.intent_category.push_back(static_cast<int32_t>(a.categories.size() - 1));
    a.intent_urgency.push_back(1);
    for (const auto& row : t.value().rows) {
      if (row[cs.value()] == "train") {
        texts.push_back(row[ct.value()]);
        labels.push_back(oos);
      } else {
        oos_val.push_back(row[ct.value()]);
      }
    }
  }
  const auto split = cl::stratified_split(
      labels, {.calibration = args.calibration, .test = args.test, .seed = args.seed});

  const std::string model_path = model_path_or_default(args.model);
  auto m = model::model::load(model_path, {.threads = args.threads});
  if (!m) {
    std::cerr << "triage train: " << m.error().message << "\n";
    return 2;
  }
  auto tok = tokenizer::tokenizer::from_gguf(m.value().gguf());
  if (!tok) {
    std::cerr << "triage train: " << tok.error().message << "\n";
    return 2;
  }
  const cl::feature_spec spec{.prompt_template = args.prompt, .max_tokens = args.max_tokens,
                              .layer = args.layer, .pooling = args.pooling};
  const std::string cache = args.cache.empty() ? cache_dir() + "/features" : args.cache;
  std::vector<uint8_t> truncated, oos_truncated;
  const auto feats = cached_features(m.value(), tok.value(), spec, texts, cache, args.batch,
                                     truncated, "features");
  const auto oos_feats = cached_features(m.value(), tok.value(), spec, oos_val, cache, args.batch,
                                         oos_truncated, "out-of-scope features");
  const size_t dim = static_cast<size_t>(m.value().cfg().dim);

  if (!args.recalibrate.empty()) {
    auto prev = cl::load_adapter(args.recalibrate);
    if (!prev) {
      std::cerr << "triage train: " << prev.error().message << "\n";
      return 2;
    }
    if (prev.value().intents != a.intents || static_cast<size_t>(prev.value().intent_head.dim()) != dim) {
      std::cerr << "triage train: --recalibrate " << args.recalibrate
                << ": its labels or feature size differ from this run's\n";
      return 2;
    }
    a.intent_head = prev.value().intent_head;
  }
  progress_bar bar("training", static_cast<size_t>(args.epochs) * static_cast<size_t>(std::max(1, args.members)));
  const auto fit = fit_adapter(a, feats, dim, labels, split.train, split.calibration,
                               {.hidden = args.hidden, .l2 = args.l2, .epochs = args.epochs,
                                .seed = args.seed, .members = args.members, .threads = args.threads,
                                .keep_head = !args.recalibrate.empty(), .target_accuracy = args.target_accuracy,
                                .threshold_z = args.threshold_z,
                                .always_escalate = args.always_escalate,
                                .on_epoch = [&](int e, double) { bar.update(static_cast<size_t>(e + 1)); }});
  bar.finish();
  const auto& choice = fit.choice;
  if (!args.dump_calibration.empty()) {
    std::ofstream dump(args.dump_calibration);
    dump.precision(9);
    dump << "confidence,correct\n";
    for (size_t i = 0; i < fit.routable_confidence.size(); ++i) {
      dump << fit.routable_confidence[i] << "," << int{fit.routable_correct[i]} << "\n";
    }
  }
  a.name = args.name;
  a.created_by = args.command_line;
  a.base_model_name = std::filesystem::path(model_path).filename().string();
  a.base_fingerprint = cl::model_fingerprint(m.value().gguf());
  a.taxonomy_sha256 = tax.value().sha256;
  a.layer = args.layer;
  a.pooling = args.pooling;
  a.prompt_template = args.prompt;
  a.max_tokens = args.max_tokens;

  // Held-out evaluation: the test split was used for nothing above.
  const auto ev = evaluate(a, feats, labels, split.test, args.always_escalate);
  size_t oos_escalated = 0;
  if (!oos_val.empty()) {
    std::vector<size_t> rows(oos_val.size());
    std::iota(rows.begin(), rows.end(), 0);
    for (const auto& p : predict(a, oos_feats, rows)) {
      oos_escalated += !(routable(a, p, args.always_escalate) && p.confidence >= a.threshold);
    }
  }

  if (auto ok = cl::save_adapter(a, args.out); !ok) {
    std::cerr << "triage train: " << ok.error().message << "\n";
    return 1;
  }
  json report = {
      {"adapter", args.out},
      {"command", args.command_line},
      {"model", model_path},
      {"data", args.data},
      {"split", {{"train", split.train.size()}, {"calibration", split.calibration.size()},
                 {"test", split.test.size()}, {"seed", args.seed}}},
      {"features", {{"prompt", args.prompt}, {"layer", args.layer}, {"pooling", args.pooling},
                    {"max_tokens", args.max_tokens}, {"truncated", std::count(truncated.begin(), truncated.end(), 1)}}},
      {"head", {{"hidden", args.hidden}, {"members", a.intent_head.members()}, {"epochs", args.epochs}, {"l2", args.l2},
                {"final_training_loss", fit.final_loss}}},
      {"calibration", {{"temperature", a.temperature}, {"reliability", reliability_json(fit.calibration)}}},
      {"threshold", {{"target_accuracy", args.target_accuracy}, {"wilson_z", args.threshold_z}, {"threshold", a.threshold},
                     {"met_on_calibration", choice.met}, {"calibration_coverage_of_routable", choice.coverage},
                     {"calibration_accuracy", choice.accuracy}}},
      {"test", {{"category_accuracy", ev.accuracy},
                {"category_macro_f1", ev.macro_f1},
                {"urgency_accuracy", ev.urgency_accuracy},
                {"ece", ev.ece},
                {"auto_routed_share", ev.coverage},
                {"auto_routed_share_of_in_scope", ev.coverage_in_scope},
                {"auto_routed_accuracy", ev.routed_accuracy},
                {"reliability", reliability_json(ev.reliability)},
                {"per_category", ev.per_category_json()}}},
      {"out_of_scope_validation", {{"count", oos_val.size()},
                                   {"escalated_share", oos_val.empty() ? 0.0 : static_cast<double>(oos_escalated) / static_cast<double>(oos_val.size())}}},
  };
  const std::string report_path = args.report.empty() ? args.out + ".report.json" : args.report;
  std::ofstream(report_path) << report.dump(2) << "\n";
  const auto& t = report["test"];
  std::printf("adapter %s (report %s)\n", args.out.c_str(), report_path.c_str());
  std::printf("  temperature %.3f, threshold %.4f for target %.3f (met on calibration: %s)\n",
              static_cast<double>(a.temperature), static_cast<double>(a.threshold), args.target_accuracy,
              choice.met ? "yes" : "no");
  std::printf("  held-out test (%zu tickets): category accuracy %.4f, macro-F1 %.4f, urgency accuracy %.4f, ECE %.4f\n",
              ev.n, t["category_accuracy"].get<double>(), t["category_macro_f1"].get<double>(),
              t["urgency_accuracy"].get<double>(), t["ece"].get<double>());
  std::printf("  auto-routed %.4f of tickets, accuracy among them %.4f; out-of-scope escalated %.4f (%zu)\n",
              t["auto_routed_share"].get<double>(), t["auto_routed_accuracy"].get<double>(),
              report["out_of_scope_validation"]["escalated_share"].get<double>(), oos_val.size());
  return 0;
}

int run_classify(const classify_args& args) {
  auto cfg = topology::load_config(args.config);
  if (!cfg) {
    std::cerr << "triage classify: " << cfg.error().message << "\n";
    return 2;
  }
  if (!args.mode.empty() && args.mode != "head" && args.mode != "generate") {
    std::cerr << "triage classify: --mode '" << args.mode << "': expected head or generate\n";
    return 2;
  }
  const bool generate = args.mode.empty() ? cfg.value().mode == topology::classifier_mode::generate
                                          : args.mode == "generate";
  // Input: plain lines, CSV with a text column, or JSONL with text or subject/body.
  std::string raw;
  if (args.input == "-") {
    raw.assign(std::istreambuf_iterator<char>(std::cin), {});
  } else {
    std::ifstream in(args.input, std::ios::binary);
    if (!in) {
      std::cerr << "triage classify: " << args.input << ": cannot open\n";
      return 2;
    }
    raw.assign(std::istreambuf_iterator<char>(in), {});
  }
  std::string format = args.format;
  if (format == "auto") {
    const auto ext = std::filesystem::path(args.input).extension().string();
    format = ext == ".csv" ? "csv" : ext == ".jsonl" || ext == ".json" ? "jsonl" : "text";
    if (format == "text" && !raw.empty() && raw[raw.find_first_not_of(" \t\r\n") == std::string::npos ? 0 : raw.find_first_not_of(" \t\r\n")] == '{') format = "jsonl";
  }
  std::vector<std::string> ids, texts;
  if (format == "csv") {
    auto t = parse_csv(raw, args.input);
    if (!t) {
      std::cerr << "triage classify: " << t.error().message << "\n";
      return 2;
    }
    auto ct = t.value().column("text");
    if (!ct) {
      std::cerr << "triage classify: " << ct.error().message << "\n";
      return 2;
    }
    auto cid = t.value().column("id");
    for (size_t r = 0; r < t.value().rows.size(); ++r) {
      texts.push_back(t.value().rows[r][ct.value()]);
      ids.push_back(cid ? t.value().rows[r][cid.value()] : std::to_string(r + 1));
    }
  } else {
    std::istringstream lines(raw);
    size_t n = 0;
    for (std::string line; std::getline(lines, line);) {
      ++n;
      if (format == "jsonl") {
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        auto j = json::parse(line, nullptr, false);
        if (j.is_discarded() || !j.is_object()) {
          std::cerr << "triage classify: " << args.input << ":" << n << ": not a JSON object\n";
          return 2;
        }
        std::string text = j.value("text", "");
        if (text.empty()) {
          text = j.value("subject", "");
          const std::string body = j.value("body", "");
          text += (text.empty() || body.empty() ? "" : "\n") + body;
        }
        if (text.empty()) {
          std::cerr << "triage classify: " << args.input << ":" << n
                    << ": no 'text', 'subject' or 'body' field\n";
          return 2;
        }
        ids.push_back(j.contains("id") ? (j["id"].is_string() ? j["id"].get<std::string>() : j["id"].dump())
                                       : std::to_string(n));
        texts.push_back(text);
      } else {
        ids.push_back(std::to_string(n));
        texts.push_back(line);
      }
    }
  }
  if (generate) return run_classify_generate(args, cfg.value(), ids, texts);
  auto e = cl::engine::load({.model = model_path_or_default(args.model),
                             .adapter = args.adapter, .threads = args.threads, .batch = args.batch});
  if (!e) {
    std::cerr << "triage classify: " << e.error().message << "\n";
    return 2;
  }
  const auto& a = e.value().adapter_info();
  const auto& routing = cfg.value().routing;
  const float threshold = routing.min_confidence >= 0 ? static_cast<float>(routing.min_confidence) : a.threshold;
  const size_t chunk = 256;
  for (size_t start = 0; start < texts.size(); start += chunk) {
    const size_t end = std::min(texts.size(), start + chunk);
    const auto preds = e.value().classify(std::span(texts).subspan(start, end - start));
    for (size_t k = 0; k < preds.size(); ++k) {
      const auto& p = preds[k];
      const std::string& cat = a.categories[p.category];
      std::string reason;
      if (p.out_of_scope || cat == cl::out_of_scope_intent) reason = "out_of_scope";
      else if (std::find(routing.always_escalate.begin(), routing.always_escalate.end(), cat) != routing.always_escalate.end())
        reason = "always_escalate_category";
      else if (p.confidence < threshold) reason = "low_confidence";
      else if (p.truncated && routing.escalate_truncated) reason = "truncated";
      auto q = routing.queues.find(cat);
      const std::string queue = q == routing.queues.end() ? cat : q->second;
      json out = {{"id", ids[start + k]}, {"category", cat}, {"urgency", p.urgency},
                  {"confidence", p.confidence}, {"intent", a.intents[p.intent]},
                  {"route", reason.empty() ? queue : "escalate"},
                  {"reason", reason.empty() ? "confidence " + std::to_string(p.confidence) + " >= threshold " + std::to_string(threshold) : reason},
                  {"truncated", p.truncated}};
      std::cout << out.dump() << "\n";
    }
  }
  return 0;
}

}  // namespace triage::workers
