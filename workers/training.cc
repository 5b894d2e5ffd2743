#include "workers/training.h"

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "base/progress.h"
#include "compute/classifier/head.h"
#include "compute/classifier/taxonomy.h"

namespace triage::workers {

namespace cl = triage::classifier;
using json = nlohmann::ordered_json;

std::vector<float> cached_features(model::model& m, const tokenizer::tokenizer& tok,
                                   const cl::feature_spec& spec, const std::vector<std::string>& texts,
                                   const std::string& cache_dir, int batch,
                                   std::vector<uint8_t>& truncated, const std::string& label) {
  std::string key_material = cl::model_fingerprint(m.gguf()) + "\n" + spec.prompt_template + "\n" +
                             std::to_string(spec.max_tokens) + "\n" + std::to_string(spec.layer) +
                             "\n" + spec.pooling + "\n";
  for (const auto& t : texts) key_material += t + '\x1f';
  const std::string key = cl::sha256_hex(key_material);
  const auto path = std::filesystem::path(cache_dir) / (key + ".f32");
  const size_t dim = static_cast<size_t>(m.cfg().dim);
  if (std::ifstream in{path, std::ios::binary}) {
    std::vector<float> f(texts.size() * dim);
    truncated.assign(texts.size(), 0);
    in.read(reinterpret_cast<char*>(f.data()), static_cast<std::streamsize>(f.size() * sizeof(float)));
    in.read(reinterpret_cast<char*>(truncated.data()), static_cast<std::streamsize>(truncated.size()));
    if (in) {
      std::cerr << label << ": " << texts.size() << " feature rows from the cache (" << path.string() << ")\n";
      return f;
    }
  }
  progress_bar bar(label, texts.size());
  auto f = cl::extract_features(m, tok, spec, texts, batch,
                                [&](cl::feature_progress p) { bar.update(p.done); }, &truncated);
  bar.finish();
  std::filesystem::create_directories(cache_dir);
  std::ofstream out(path.string() + ".part", std::ios::binary);
  out.write(reinterpret_cast<const char*>(f.data()), static_cast<std::streamsize>(f.size() * sizeof(float)));
  out.write(reinterpret_cast<const char*>(truncated.data()), static_cast<std::streamsize>(truncated.size()));
  out.close();
  std::filesystem::rename(path.string() + ".part", path);
  return f;
}

std::vector<cl::prediction> predict(const cl::adapter& a, std::span<const float> features,
                                    const std::vector<size_t>& rows) {
  std::vector<cl::prediction> out;
  out.reserve(rows.size());
  const auto& h = a.intent_head;
  std::vector<float> z(static_cast<size_t>(h.n_classes()));
  for (size_t r : rows) {
    h.logits(&features[r * static_cast<size_t>(h.dim())], z.data());
    cl::softmax(z, a.temperature);
    out.push_back(cl::decide(a, z));
  }
  return out;
}

bool routable(const cl::adapter& a, const cl::prediction& p, const std::vector<std::string>& always_escalate) {
  const auto& cat = a.categories[static_cast<size_t>(p.category)];
  return !p.out_of_scope && cat != cl::out_of_scope_intent &&
         std::find(always_escalate.begin(), always_escalate.end(), cat) == always_escalate.end();
}

fit_result fit_adapter(cl::adapter& a, std::span<const float> features, size_t dim,
                       std::span<const int32_t> labels, const std::vector<size_t>& train_rows,
                       const std::vector<size_t>& calibration_rows, const fit_options& options) {
  const int n_classes = static_cast<int>(a.intents.size());
  auto gather = [&](const std::vector<size_t>& rows, std::vector<float>& x, std::vector<int32_t>& y) {
    x.reserve(rows.size() * dim);
    for (size_t r : rows) {
      x.insert(x.end(), features.begin() + static_cast<ptrdiff_t>(r * dim),
               features.begin() + static_cast<ptrdiff_t>((r + 1) * dim));
      y.push_back(labels[r]);
    }
  };
  std::vector<float> xtr, xcal;
  std::vector<int32_t> ytr, ycal;
  gather(train_rows, xtr, ytr);
  gather(calibration_rows, xcal, ycal);

  fit_result out;
  const int n_members = std::clamp(options.members, 1, 64);
  std::vector<cl::head> members(static_cast<size_t>(n_members));
  std::vector<double> last_loss(members.size(), 0.0);
  std::mutex progress_mutex;
  int epochs_done = 0;
  std::atomic<int> next{0};
  auto work = [&] {
    for (int k = next++; k < n_members; k = next++) {
      members[static_cast<size_t>(k)] = cl::head::train(
          xtr, ytr, n_classes,
          {.hidden = options.hidden, .l2 = options.l2, .epochs = options.epochs,
           .seed = options.seed + static_cast<uint64_t>(k), .on_epoch = [&, k](int, double loss) {
             std::lock_guard lock(progress_mutex);
             last_loss[static_cast<size_t>(k)] = loss;
             ++epochs_done;
             if (options.on_epoch) options.on_epoch(epochs_done - 1, loss);
           }});
    }
  };
  if (!options.keep_head) {
    const int hw = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    const int n_threads = std::min(n_members, options.threads > 0 ? options.threads : hw);
    {
      std::vector<std::jthread> pool;
      for (int t = 1; t < n_threads; ++t) pool.emplace_back(work);
      work();
    }
    for (double l : last_loss) out.final_loss += l / static_cast<double>(n_members);
    a.intent_head = cl::head::ensemble(std::move(members));
  }

  // Temperature on the calibration rows' intent logits.
  const auto nc = static_cast<size_t>(n_classes);
  std::vector<float> cal_logits(ycal.size() * nc);
  for (size_t i = 0; i < ycal.size(); ++i) a.intent_head.logits(&xcal[i * dim], &cal_logits[i * nc]);
  a.temperature = cl::fit_temperature(cal_logits, ycal, n_classes);

  // Threshold: among calibration tickets the policy would route, the lowest
  // confidence at which routed tickets reach the target accuracy.
  const auto cal = predict(a, features, calibration_rows);
  std::vector<float> rconf, conf;
  std::vector<uint8_t> rright, right;
  for (size_t i = 0; i < cal.size(); ++i) {
    const bool ok = cal[i].category == a.intent_category[static_cast<size_t>(labels[calibration_rows[i]])];
    conf.push_back(cal[i].confidence);
    right.push_back(ok);
    if (!routable(a, cal[i], options.always_escalate)) continue;
    rconf.push_back(cal[i].confidence);
    rright.push_back(ok);
  }
  out.choice = cl::choose_threshold(rconf, rright,
                                   {.target_accuracy = options.target_accuracy, .z = options.threshold_z});
  out.calibration = cl::reliability(conf, right);
  out.routable_confidence = rconf;
  out.routable_correct = rright;
  a.threshold = out.choice.threshold;
  a.target_accuracy = static_cast<float>(options.target_accuracy);

  // Drift baselines from the calibration predictions.
  a.baseline_category_share.assign(a.categories.size(), 0.0f);
  a.baseline_confidence_hist.assign(10, 0.0f);
  for (const auto& p : cal) {
    a.baseline_category_share[static_cast<size_t>(p.category)] += 1.0f / static_cast<float>(cal.size());
    a.baseline_confidence_hist[static_cast<size_t>(std::min(9, static_cast<int>(p.confidence * 10)))] +=
        1.0f / static_cast<float>(cal.size());
  }
  return out;
}

evaluation evaluate(const cl::adapter& a, std::span<const float> features, std::span<const int32_t> labels,
                    const std::vector<size_t>& rows, const std::vector<std::string>& always_escalate) {
  evaluation ev;
  ev.n = rows.size();
  ev.categories = a.categories;
  const size_t n_cat = a.categories.size();
  ev.tp.assign(n_cat, 0);
  ev.fp.assign(n_cat, 0);
  ev.fn.assign(n_cat, 0);
  if (rows.empty()) return ev;
  const auto preds = predict(a, features, rows);
  size_t right_n = 0, urgency_n = 0, routed = 0, routed_right = 0, in_scope = 0;
  std::vector<float> conf;
  std::vector<uint8_t> right;
  for (size_t i = 0; i < preds.size(); ++i) {
    const auto truth = static_cast<size_t>(labels[rows[i]]);
    const auto& p = preds[i];
    const auto true_cat = static_cast<size_t>(a.intent_category[truth]);
    const bool ok = static_cast<size_t>(p.category) == true_cat;
    conf.push_back(p.confidence);
    right.push_back(ok);
    right_n += ok;
    urgency_n += p.urgency == a.intent_urgency[truth];
    if (ok) {
      ++ev.tp[true_cat];
    } else {
      ++ev.fp[static_cast<size_t>(p.category)];
      ++ev.fn[true_cat];
    }
    if (a.intents[truth] != cl::out_of_scope_intent) ++in_scope;
    if (routable(a, p, always_escalate) && p.confidence >= a.threshold) {
      ++routed;
      routed_right += ok;
    }
  }
  const auto n = static_cast<double>(ev.n);
  ev.accuracy = static_cast<double>(right_n) / n;
  ev.urgency_accuracy = static_cast<double>(urgency_n) / n;
  ev.coverage = static_cast<double>(routed) / n;
  ev.coverage_in_scope = in_scope ? static_cast<double>(routed) / static_cast<double>(in_scope) : 0.0;
  ev.routed_accuracy = routed ? static_cast<double>(routed_right) / static_cast<double>(routed) : 0.0;
  ev.reliability = cl::reliability(conf, right);
  ev.ece = ev.reliability.ece;
  double f1_sum = 0;
  size_t f1_n = 0;
  for (size_t c = 0; c < n_cat; ++c) {
    if (ev.tp[c] + ev.fn[c] == 0) continue;
    const auto tp = static_cast<double>(ev.tp[c]);
    const double prec = ev.tp[c] + ev.fp[c] ? tp / static_cast<double>(ev.tp[c] + ev.fp[c]) : 0;
    const double rec = tp / static_cast<double>(ev.tp[c] + ev.fn[c]);
    f1_sum += prec + rec > 0 ? 2 * prec * rec / (prec + rec) : 0;
    ++f1_n;
  }
  ev.macro_f1 = f1_n ? f1_sum / static_cast<double>(f1_n) : 0.0;
  return ev;
}

json evaluation::per_category_json() const {
  json out = json::object();
  for (size_t c = 0; c < categories.size(); ++c) {
    if (tp[c] + fn[c] == 0) continue;
    const auto t = static_cast<double>(tp[c]);
    const double prec = tp[c] + fp[c] ? t / static_cast<double>(tp[c] + fp[c]) : 0;
    const double rec = t / static_cast<double>(tp[c] + fn[c]);
    const double f1 = prec + rec > 0 ? 2 * prec * rec / (prec + rec) : 0;
    out[categories[c]] = {{"precision", prec}, {"recall", rec}, {"f1", f1}, {"support", tp[c] + fn[c]}};
  }
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

}  // namespace triage::workers
