#include "compute/classifier/calibration.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace triage::classifier {

double mean_nll(std::span<const float> logits, std::span<const int32_t> labels, int n_classes,
                float temperature) {
  double total = 0.0;
  for (size_t i = 0; i < labels.size(); ++i) {
    const float* z = &logits[i * n_classes];
    float mx = *std::max_element(z, z + n_classes);
    double sum = 0.0;
    for (int c = 0; c < n_classes; ++c) sum += std::exp((z[c] - mx) / temperature);
    total += std::log(sum) - (z[labels[i]] - mx) / temperature;
  }
  return total / static_cast<double>(std::max<size_t>(labels.size(), 1));
}

float fit_temperature(std::span<const float> logits, std::span<const int32_t> labels,
                      int n_classes) {
  double lo = std::log(0.05), hi = std::log(20.0);
  const double phi = (std::sqrt(5.0) - 1.0) / 2.0;
  auto f = [&](double log_t) {
    return mean_nll(logits, labels, n_classes, static_cast<float>(std::exp(log_t)));
  };
  double a = hi - phi * (hi - lo), b = lo + phi * (hi - lo);
  double fa = f(a), fb = f(b);
  for (int i = 0; i < 60; ++i) {
    if (fa < fb) {
      hi = b; b = a; fb = fa;
      a = hi - phi * (hi - lo); fa = f(a);
    } else {
      lo = a; a = b; fa = fb;
      b = lo + phi * (hi - lo); fb = f(b);
    }
  }
  return static_cast<float>(std::exp((lo + hi) / 2.0));
}

reliability_report reliability(std::span<const float> confidence, std::span<const uint8_t> correct,
                               int n_bins) {
  reliability_report r;
  r.bins.resize(n_bins);
  std::vector<double> conf_sum(n_bins, 0.0), right(n_bins, 0.0);
  for (int b = 0; b < n_bins; ++b) {
    r.bins[b].lo = static_cast<double>(b) / n_bins;
    r.bins[b].hi = static_cast<double>(b + 1) / n_bins;
  }
  for (size_t i = 0; i < confidence.size(); ++i) {
    int b = static_cast<int>(confidence[i] * n_bins);
    b = std::clamp(b, 0, n_bins - 1);
    r.bins[b].count++;
    conf_sum[b] += confidence[i];
    right[b] += correct[i] ? 1.0 : 0.0;
  }
  const double n = static_cast<double>(std::max<size_t>(confidence.size(), 1));
  for (int b = 0; b < n_bins; ++b) {
    auto& bin = r.bins[b];
    if (bin.count == 0) continue;
    bin.mean_confidence = conf_sum[b] / static_cast<double>(bin.count);
    bin.accuracy = right[b] / static_cast<double>(bin.count);
    r.ece += static_cast<double>(bin.count) / n * std::abs(bin.accuracy - bin.mean_confidence);
  }
  return r;
}

threshold_choice evaluate_threshold(std::span<const float> confidence,
                                    std::span<const uint8_t> correct, float threshold) {
  threshold_choice c;
  c.threshold = threshold;
  size_t n = 0, right = 0;
  for (size_t i = 0; i < confidence.size(); ++i) {
    if (confidence[i] < threshold) continue;
    ++n;
    right += correct[i] ? 1 : 0;
  }
  c.coverage = confidence.empty() ? 0.0 : static_cast<double>(n) / static_cast<double>(confidence.size());
  c.accuracy = n ? static_cast<double>(right) / static_cast<double>(n) : 0.0;
  return c;
}

threshold_choice choose_threshold(std::span<const float> confidence,
                                  std::span<const uint8_t> correct,
                                  const threshold_options& options) {
  std::vector<size_t> order(confidence.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return confidence[a] > confidence[b]; });
  auto wilson_lower = [&](double right, double n) {
    if (options.z <= 0) return right / n;
    const double z2 = options.z * options.z, p = right / n;
    return (p + z2 / (2 * n) - options.z * std::sqrt(p * (1 - p) / n + z2 / (4 * n * n))) /
           (1 + z2 / n);
  };
  threshold_choice best;  // default: nothing routes
  size_t right = 0;
  for (size_t k = 0; k < order.size(); ++k) {
    right += correct[order[k]] ? 1 : 0;
    // A threshold can only sit between distinct confidences: all tickets
    // tied with the k-th route together.
    if (k + 1 < order.size() && confidence[order[k + 1]] == confidence[order[k]]) continue;
    const double n = static_cast<double>(k + 1);
    if (wilson_lower(static_cast<double>(right), n) >= options.target_accuracy) {
      best.threshold = confidence[order[k]];
      best.coverage = n / static_cast<double>(order.size());
      best.accuracy = static_cast<double>(right) / n;
      best.met = true;
    }
  }
  return best;
}

}  // namespace triage::classifier
