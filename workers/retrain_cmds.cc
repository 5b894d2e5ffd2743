#include "workers/retrain_cmds.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <numeric>
#include <set>
#include <sstream>

#include "base/csv.h"
#include "base/progress.h"
#include "compute/classifier/adapter.h"
#include "compute/classifier/dataset.h"
#include "compute/classifier/head.h"
#include "compute/classifier/taxonomy.h"
#include "state/drift.h"
#include "state/report.h"
#include "state/store.h"
#include "workers/commands.h"
#include "workers/training.h"

namespace triage::workers {
namespace {

namespace cl = triage::classifier;
using json = nlohmann::ordered_json;

// One corrected ticket that can be learned from.
struct corrected_example {
  std::string ticket_id;
  std::string text;
  int32_t intent = -1;    // -1: only the category is known (resolved later)
  int32_t category = -1;  // index into the adapter's categories
  size_t line = 0;        // in the examples source
};

struct example_counts {
  size_t lines = 0;          // JSON objects read
  size_t other_quarter = 0;  // of another quarter than --quarter
  size_t not_corrected = 0;  // escalated / low-confidence, no agent label
  size_t corrected = 0;
  size_t without_text = 0;   // corrected, but the worker kept no text
  size_t category_only = 0;  // usable; the intent chosen by the current adapter
  size_t usable = 0;
};

result<std::string> string_field(const json& j, const char* key, const std::string& at) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::string();
  if (!it->is_string()) return make_error(cl::errc::bad_dataset, at + "'" + key + "' must be a string");
  return it->get<std::string>();
}

// The retraining set (JSONL, as `triage state export` writes it).
result<std::vector<corrected_example>> parse_examples(std::istream& in, const std::string& source,
                                                      const cl::adapter& labels, const std::string& quarter,
                                                      example_counts& counts) {
  std::vector<corrected_example> out;
  size_t n = 0;
  for (std::string line; std::getline(in, line);) {
    ++n;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string at = source + ":" + std::to_string(n) + ": ";
    auto j = json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return make_error(cl::errc::bad_dataset, at + "not a JSON object");
    ++counts.lines;
    auto q = string_field(j, "quarter", at);
    auto src = string_field(j, "source", at);
    auto label = string_field(j, "label", at);
    auto label_intent = string_field(j, "label_intent", at);
    auto text = string_field(j, "text", at);
    auto id = string_field(j, "ticket_id", at);
    for (auto* r : {&q, &src, &label, &label_intent, &text, &id}) {
      if (!*r) return r->error();
    }
    if (src.value().empty()) return make_error(cl::errc::bad_dataset, at + "no 'source' field");
    if (!quarter.empty() && q.value() != quarter) {
      ++counts.other_quarter;
      continue;
    }
    if (src.value() != "corrected") {
      ++counts.not_corrected;
      continue;
    }
    ++counts.corrected;
    corrected_example e{.ticket_id = id.value(), .text = text.value(), .line = n};
    if (!label_intent.value().empty()) {
      auto it = std::find(labels.intents.begin(), labels.intents.end(), label_intent.value());
      if (it == labels.intents.end()) {
        return make_error(cl::errc::bad_dataset,
                          at + "label_intent '" + label_intent.value() + "' is not an intent of the taxonomy");
      }
      e.intent = static_cast<int32_t>(it - labels.intents.begin());
      e.category = labels.intent_category[static_cast<size_t>(e.intent)];
    }
    if (label.value().empty() && e.intent < 0) {
      return make_error(cl::errc::bad_dataset, at + "a corrected example without 'label' or 'label_intent'");
    }
    if (!label.value().empty()) {
      auto it = std::find(labels.categories.begin(), labels.categories.end(), label.value());
      if (it == labels.categories.end()) {
        return make_error(cl::errc::bad_dataset,
                          at + "label '" + label.value() + "' is not a category of the taxonomy");
      }
      const auto c = static_cast<int32_t>(it - labels.categories.begin());
      if (e.intent >= 0 && c != e.category) {
        return make_error(cl::errc::bad_dataset, at + "label '" + label.value() + "' disagrees with label_intent '" +
                                                     label_intent.value() + "' (category '" +
                                                     labels.categories[static_cast<size_t>(e.category)] + "')");
      }
      e.category = c;
    }
    if (e.text.find_first_not_of(" \t\r\n") == std::string::npos) {
      ++counts.without_text;
      continue;
    }
    if (e.intent < 0) {
      // A category with a single intent names it.
      int32_t only = -1, seen = 0;
      for (size_t i = 0; i < labels.intents.size(); ++i) {
        if (labels.intent_category[i] == e.category) {
          only = static_cast<int32_t>(i);
          ++seen;
        }
      }
      if (seen == 1) e.intent = only;
      else ++counts.category_only;
    }
    ++counts.usable;
    out.push_back(std::move(e));
  }
  if (in.bad()) return make_error(cl::errc::bad_dataset, source + ": read failed");
  return out;
}

// The adapter was trained for this taxonomy: same hash, and its intents are
// the taxonomy's (plus out_of_scope at the end).
result<void> check_taxonomy(const cl::adapter& a, const cl::taxonomy& tax, const std::string& adapter_path,
                            const std::string& taxonomy_path) {
  if (a.taxonomy_sha256 != tax.sha256) {
    return make_error(cl::errc::adapter_mismatch,
                      adapter_path + ": adapter '" + a.name + "' was trained for taxonomy " +
                          a.taxonomy_sha256.substr(0, 12) + ", not for " + taxonomy_path + " (" +
                          tax.sha256.substr(0, 12) + "): retrain against the adapter's taxonomy, or train anew");
  }
  const bool oos = a.intents.size() == tax.intents.size() + 1 && a.intents.back() == cl::out_of_scope_intent;
  if ((a.intents.size() != tax.intents.size() && !oos) ||
      !std::equal(tax.intents.begin(), tax.intents.end(), a.intents.begin())) {
    return make_error(cl::errc::adapter_mismatch, adapter_path + ": the adapter's intents are not those of " +
                                                      taxonomy_path + " in order");
  }
  return success();
}

void erase_rows(std::vector<size_t>& rows, const std::vector<uint8_t>& drop) {
  rows.erase(std::remove_if(rows.begin(), rows.end(), [&](size_t r) { return drop[r] != 0; }), rows.end());
}

json evaluation_json(const evaluation& e, const cl::adapter& a) {
  return {{"n", e.n},
          {"threshold", a.threshold},
          {"category_accuracy", e.accuracy},
          {"category_macro_f1", e.macro_f1},
          {"urgency_accuracy", e.urgency_accuracy},
          {"ece", e.ece},
          {"coverage", e.coverage},
          {"coverage_of_in_scope", e.coverage_in_scope},
          {"auto_routed_accuracy", e.routed_accuracy},
          {"reliability", reliability_json(e.reliability)},
          {"per_category", e.per_category_json()}};
}

std::string comparison_table(const json& r) {
  std::ostringstream o;
  char line[256];
  auto row = [&](const char* what, double cur, double cand, const char* fmt = "%-34s %10.4f %10.4f %+10.4f\n") {
    std::snprintf(line, sizeof line, fmt, what, cur, cand, cand - cur);
    o << line;
  };
  const auto& c = r["current"];
  const auto& k = r["candidate"];
  std::snprintf(line, sizeof line, "%-34s %10s %10s %10s\n", "", "current", "candidate", "change");
  o << line;
  row("threshold", c["threshold"].get<double>(), k["threshold"].get<double>());
  for (const char* part : {"test", "corrected_test"}) {
    const auto& ct = c[part];
    const auto& kt = k[part];
    std::snprintf(line, sizeof line, "%s (%zu tickets)\n",
                  std::string(part) == "test" ? "held-out base data" : "held-out corrected examples",
                  ct["n"].get<size_t>());
    o << line;
    if (ct["n"].get<size_t>() == 0) continue;
    row("  category accuracy", ct["category_accuracy"].get<double>(), kt["category_accuracy"].get<double>());
    row("  ECE", ct["ece"].get<double>(), kt["ece"].get<double>());
    row("  coverage at own threshold", ct["coverage"].get<double>(), kt["coverage"].get<double>());
    row("  accuracy of auto-routed", ct["auto_routed_accuracy"].get<double>(),
        kt["auto_routed_accuracy"].get<double>());
    if (std::string(part) == "test") {
      row("  macro-F1", ct["category_macro_f1"].get<double>(), kt["category_macro_f1"].get<double>());
    }
  }
  if (c.contains("out_of_scope_escalated")) {
    std::snprintf(line, sizeof line, "out-of-scope validation (%zu queries)\n",
                  r["examples"]["out_of_scope_validation"].get<size_t>());
    o << line;
    row("  escalated", c["out_of_scope_escalated"].get<double>(), k["out_of_scope_escalated"].get<double>());
  }
  return o.str();
}

}  // namespace

feature_factory model_features(const retrain_args& args) {
  return [args]() -> result<feature_source> {
    const std::string path = model_path_or_default(args.model);
    auto m = model::model::load(path, {.threads = args.threads});
    if (!m) return m.error();
    auto t = tokenizer::tokenizer::from_gguf(m.value().gguf());
    if (!t) return t.error();
    auto model = std::make_shared<model::model>(std::move(m.value()));
    auto tok = std::make_shared<tokenizer::tokenizer>(std::move(t.value()));
    feature_source fs;
    fs.fingerprint = cl::model_fingerprint(model->gguf());
    fs.model_name = std::filesystem::path(path).filename().string();
    fs.dim = static_cast<size_t>(model->cfg().dim);
    const std::string cache = args.cache.empty() ? cache_dir() + "/features" : args.cache;
    fs.features = [model, tok, cache, batch = args.batch](const std::vector<std::string>& texts,
                                                          const cl::feature_spec& spec, const std::string& label) {
      std::vector<uint8_t> truncated;
      return cached_features(*model, *tok, spec, texts, cache, batch, truncated, label);
    };
    return fs;
  };
}

result<retrain_outcome> retrain(const retrain_args& args, const feature_factory& make_features) {
  auto bad_arg = [](const std::string& m) { return make_error(cl::errc::bad_training, m); };
  if (args.state.empty() == args.examples.empty()) {
    return bad_arg("give the corrected examples with exactly one of --state DIR or --examples FILE");
  }
  if (!args.state.empty() && args.quarter.empty()) return bad_arg("--state needs --quarter (e.g. 2026Q4)");
  if (!args.quarter.empty() && !state::is_quarter(args.quarter)) {
    return bad_arg("--quarter '" + args.quarter + "': expected e.g. 2026Q4");
  }
  if (!(args.corrected_test >= 0 && args.corrected_test < 1)) return bad_arg("--corrected-test must be in [0, 1)");
  if (args.corrected_weight < 1) return bad_arg("--corrected-weight must be at least 1");
  if (args.out.empty()) return bad_arg("--out: the candidate adapter's path is required");

  auto tax = cl::load_taxonomy(args.taxonomy);
  if (!tax) return tax.error();
  auto cur = cl::load_adapter(args.current);
  if (!cur) return cur.error();
  const cl::adapter& current = cur.value();
  if (auto ok = check_taxonomy(current, tax.value(), args.current, args.taxonomy); !ok) return ok.error();
  const bool has_oos = current.intents.back() == cl::out_of_scope_intent;

  // The quarter's examples.
  example_counts counts;
  result<std::vector<corrected_example>> parsed = std::vector<corrected_example>{};
  if (!args.examples.empty()) {
    std::ifstream in(args.examples);
    if (!in) return make_error(cl::errc::bad_dataset, args.examples + ": cannot open");
    parsed = parse_examples(in, args.examples, current, args.quarter, counts);
  } else {
    auto s = state::store::open(args.state, {.read_only = true});
    if (!s) return s.error();
    std::stringstream jsonl;
    auto n = state::export_examples(*s.value(), args.quarter, jsonl);
    if (!n) return n.error();
    parsed = parse_examples(jsonl, args.state + " (examples of " + args.quarter + ")", current, args.quarter, counts);
  }
  if (!parsed) return parsed.error();
  auto corrected = std::move(parsed.value());
  if (corrected.empty()) {
    return make_error(cl::errc::bad_training,
                      "no usable corrected examples in " + (args.examples.empty() ? args.state : args.examples) +
                          (args.quarter.empty() ? "" : " for " + args.quarter) + ": " +
                          std::to_string(counts.corrected) + " corrected, " + std::to_string(counts.without_text) +
                          " of them without text (set state.keep_ticket_text to keep it), " +
                          std::to_string(counts.not_corrected) + " without an agent's label");
  }

  // Base data and out-of-scope queries, in `triage train`'s order.
  auto base = cl::load_examples(args.data, tax.value());
  if (!base) return base.error();
  std::vector<std::string> texts;
  std::vector<int32_t> labels;
  for (const auto& e : base.value()) {
    texts.push_back(e.text);
    labels.push_back(e.intent);
  }
  std::vector<std::string> oos_val;
  if (has_oos && !args.out_of_scope.empty()) {
    auto t = read_csv(args.out_of_scope);
    if (!t) return make_error(cl::errc::bad_dataset, t.error().message);
    auto ct = t.value().column("text"), cs = t.value().column("split");
    if (!ct) return make_error(cl::errc::bad_dataset, ct.error().message);
    if (!cs) return make_error(cl::errc::bad_dataset, cs.error().message);
    const auto oos = static_cast<int32_t>(current.intents.size() - 1);
    for (const auto& row : t.value().rows) {
      if (row[cs.value()] == "train") {
        texts.push_back(row[ct.value()]);
        labels.push_back(oos);
      } else {
        oos_val.push_back(row[ct.value()]);
      }
    }
  }
  const size_t n_base = texts.size();
  auto split = cl::stratified_split(labels, {.calibration = args.calibration, .test = args.test, .seed = args.seed});
  // A correction relabels a base row with the same text: the agent's word wins.
  std::set<std::string> corrected_texts;
  for (const auto& e : corrected) corrected_texts.insert(e.text);
  std::vector<uint8_t> superseded(n_base, 0);
  size_t n_superseded = 0;
  for (size_t i = 0; i < n_base; ++i) {
    if (corrected_texts.count(texts[i])) {
      superseded[i] = 1;
      ++n_superseded;
    }
  }
  erase_rows(split.train, superseded);
  erase_rows(split.calibration, superseded);
  erase_rows(split.test, superseded);

  // Features: the current adapter's recipe, for both adapters.
  auto fs = make_features();
  if (!fs) return fs.error();
  const auto& src = fs.value();
  if (src.fingerprint != current.base_fingerprint) {
    return make_error(cl::errc::adapter_mismatch,
                      args.current + ": adapter '" + current.name + "' was trained on base model '" +
                          current.base_model_name + "' (fingerprint " + current.base_fingerprint.substr(0, 12) +
                          "), not on " + src.model_name + " (fingerprint " + src.fingerprint.substr(0, 12) + ")");
  }
  if (src.dim != static_cast<size_t>(current.intent_head.dim())) {
    return make_error(cl::errc::adapter_mismatch, args.current + ": head expects " +
                                                      std::to_string(current.intent_head.dim()) +
                                                      " features, the model gives " + std::to_string(src.dim));
  }
  const cl::feature_spec spec{.prompt_template = current.prompt_template, .max_tokens = current.max_tokens,
                              .layer = current.layer, .pooling = current.pooling};
  const size_t dim = src.dim;
  std::vector<float> feats = src.features(texts, spec, "features");
  const auto oos_feats = oos_val.empty() ? std::vector<float>{} : src.features(oos_val, spec, "out-of-scope features");
  std::vector<std::string> ctexts;
  for (const auto& e : corrected) ctexts.push_back(e.text);
  const auto cfeats = src.features(ctexts, spec, "corrected features");
  if (feats.size() != n_base * dim || cfeats.size() != ctexts.size() * dim || oos_feats.size() != oos_val.size() * dim) {
    return make_error(cl::errc::bad_training, "features: wrong number of values for " + std::to_string(dim) + " per text");
  }
  feats.insert(feats.end(), cfeats.begin(), cfeats.end());

  // Category-only labels: the category's intent the current adapter finds most probable.
  {
    const auto& h = current.intent_head;
    std::vector<float> z(static_cast<size_t>(h.n_classes()));
    for (size_t i = 0; i < corrected.size(); ++i) {
      auto& e = corrected[i];
      if (e.intent >= 0) continue;
      h.logits(&cfeats[i * dim], z.data());
      cl::softmax(z, current.temperature);
      float best = -1;
      for (size_t k = 0; k < z.size(); ++k) {
        if (current.intent_category[k] == e.category && z[k] > best) {
          best = z[k];
          e.intent = static_cast<int32_t>(k);
        }
      }
    }
  }
  for (const auto& e : corrected) labels.push_back(e.intent);

  // Corrected examples: a seeded shuffle, a share held out.
  std::vector<size_t> order(corrected.size());
  std::iota(order.begin(), order.end(), n_base);
  cl::splitmix64 rng{args.seed ^ 0x636f7272656374ull};  // "correct"
  for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng.below(i)]);
  size_t n_ctest = static_cast<size_t>(std::floor(static_cast<double>(order.size()) * args.corrected_test + 0.5));
  if (args.corrected_test > 0 && order.size() >= 2) n_ctest = std::clamp<size_t>(n_ctest, 1, order.size() - 1);
  std::vector<size_t> ctest(order.begin(), order.begin() + static_cast<ptrdiff_t>(n_ctest));
  std::vector<size_t> ctrain(order.begin() + static_cast<ptrdiff_t>(n_ctest), order.end());
  std::sort(ctest.begin(), ctest.end());
  std::sort(ctrain.begin(), ctrain.end());
  std::vector<size_t> train_rows = split.train;
  for (int w = 0; w < args.corrected_weight; ++w) train_rows.insert(train_rows.end(), ctrain.begin(), ctrain.end());

  // The candidate: the current adapter's labels and recipe, a new head.
  cl::adapter cand;
  cand.intents = current.intents;
  cand.categories = current.categories;
  cand.intent_category = current.intent_category;
  cand.intent_urgency = current.intent_urgency;
  cand.layer = current.layer;
  cand.pooling = current.pooling;
  cand.prompt_template = current.prompt_template;
  cand.max_tokens = current.max_tokens;
  const double target = args.target_accuracy >= 0 ? args.target_accuracy : current.target_accuracy;
  progress_bar bar("training", static_cast<size_t>(args.epochs * current.intent_head.members()));
  const auto fit = fit_adapter(cand, feats, dim, labels, train_rows, split.calibration,
                               {.hidden = current.intent_head.hidden(), .l2 = args.l2, .epochs = args.epochs,
                                .seed = args.seed, .members = current.intent_head.members(),
                                .target_accuracy = target,
                                .always_escalate = args.always_escalate,
                                .on_epoch = [&](int e, double) { bar.update(static_cast<size_t>(e + 1)); }});
  bar.finish();
  cand.name = !args.name.empty() ? args.name
                                 : current.name + (args.quarter.empty() ? "-retrained" : "-" + args.quarter);
  cand.created_by = args.command_line;
  cand.base_model_name = src.model_name;
  cand.base_fingerprint = src.fingerprint;
  cand.taxonomy_sha256 = tax.value().sha256;

  // Both on the same held-out rows.
  json report = {
      {"candidate_adapter", args.out},
      {"current_adapter", args.current},
      {"command", args.command_line},
      {"quarter", args.quarter},
      {"examples",
       {{"source", args.examples.empty() ? args.state : args.examples},
        {"lines", counts.lines},
        {"other_quarter", counts.other_quarter},
        {"without_agent_label", counts.not_corrected},
        {"corrected", counts.corrected},
        {"corrected_without_text", counts.without_text},
        {"corrected_usable", counts.usable},
        {"category_only_labels", counts.category_only},
        {"corrected_train", ctrain.size()},
        {"corrected_test", ctest.size()},
        {"corrected_weight", args.corrected_weight},
        {"base_rows_superseded", n_superseded},
        {"out_of_scope_validation", oos_val.size()}}},
      {"split", {{"data", args.data}, {"train", split.train.size()}, {"calibration", split.calibration.size()},
                 {"test", split.test.size()}, {"seed", args.seed}}},
      {"head", {{"hidden", cand.intent_head.hidden()}, {"epochs", args.epochs}, {"l2", args.l2},
                {"final_training_loss", fit.final_loss}}},
      {"candidate_calibration", {{"temperature", cand.temperature}, {"target_accuracy", target},
                                 {"met_on_calibration", fit.choice.met},
                                 {"reliability", reliability_json(fit.calibration)}}},
  };
  for (const cl::adapter* a : std::array<const cl::adapter*, 2>{&current, &cand}) {
    json part = {{"threshold", a->threshold},
                 {"test", evaluation_json(evaluate(*a, feats, labels, split.test, args.always_escalate), *a)},
                 {"corrected_test", evaluation_json(evaluate(*a, feats, labels, ctest, args.always_escalate), *a)}};
    if (!oos_val.empty()) {
      std::vector<size_t> rows(oos_val.size());
      std::iota(rows.begin(), rows.end(), 0);
      size_t escalated = 0;
      for (const auto& p : predict(*a, oos_feats, rows)) {
        escalated += !(routable(*a, p, args.always_escalate) && p.confidence >= a->threshold);
      }
      part["out_of_scope_escalated"] = static_cast<double>(escalated) / static_cast<double>(oos_val.size());
    }
    report[a == &current ? "current" : "candidate"] = part;
  }

  if (auto ok = cl::save_adapter(cand, args.out); !ok) return ok.error();
  const std::string report_path = args.report.empty() ? args.out + ".report.json" : args.report;
  std::ofstream rf(report_path, std::ios::trunc);
  rf << report.dump(2) << "\n";
  rf.close();
  if (!rf) return make_error(cl::errc::bad_training, report_path + ": cannot write the report");
  report["report"] = report_path;
  retrain_outcome out{.report = report, .table = comparison_table(report)};
  return out;
}

int run_retrain(const retrain_args& args) {
  auto r = retrain(args, model_features(args));
  if (!r) {
    std::cerr << "triage retrain: " << r.error().message << "\n";
    return 2;
  }
  const auto& rep = r.value().report;
  const auto& ex = rep["examples"];
  std::printf("candidate %s (report %s)\n", args.out.c_str(), rep["report"].get<std::string>().c_str());
  std::printf("examples: %zu corrected, %zu used (%zu train x%d, %zu held out), %zu without text (not usable), "
              "%zu without an agent label, %zu of other quarters\n\n",
              ex["corrected"].get<size_t>(), ex["corrected_usable"].get<size_t>(), ex["corrected_train"].get<size_t>(),
              args.corrected_weight, ex["corrected_test"].get<size_t>(), ex["corrected_without_text"].get<size_t>(),
              ex["without_agent_label"].get<size_t>(), ex["other_quarter"].get<size_t>());
  std::fputs(r.value().table.c_str(), stdout);
  std::printf("\nto promote it, point the workers at it (a config change, e.g. k8s/base/statefulset.yaml):\n"
              "  --adapter=%s\n",
              args.out.c_str());
  return 0;
}

}  // namespace triage::workers
