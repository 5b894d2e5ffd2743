#include "compute/classifier/head.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "compute/classifier/dataset.h"

namespace triage::classifier {
namespace {

float dot(const float* a, const float* b, int n) {
  float s = 0.0f;
  for (int i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

// Adam state for one parameter vector.
struct adam {
  std::vector<float> m, v;
  explicit adam(size_t n) : m(n, 0.0f), v(n, 0.0f) {}
  void step(std::vector<float>& w, const std::vector<float>& g, float lr, int t, float l2) {
    constexpr float b1 = 0.9f, b2 = 0.999f, eps = 1e-8f;
    const float c1 = 1.0f - std::pow(b1, static_cast<float>(t));
    const float c2 = 1.0f - std::pow(b2, static_cast<float>(t));
    for (size_t i = 0; i < w.size(); ++i) {
      const float gi = g[i] + l2 * w[i];
      m[i] = b1 * m[i] + (1 - b1) * gi;
      v[i] = b2 * v[i] + (1 - b2) * gi * gi;
      w[i] -= lr * (m[i] / c1) / (std::sqrt(v[i] / c2) + eps);
    }
  }
};

float gaussian(splitmix64& rng) {
  // Box-Muller; two uniforms in (0, 1].
  const double u1 = (static_cast<double>(rng.next() >> 11) + 1.0) / 9007199254740993.0;
  const double u2 = static_cast<double>(rng.next() >> 11) / 9007199254740992.0;
  return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
}

}  // namespace

void softmax(std::span<float> z, float temperature) {
  float mx = -INFINITY;
  for (float v : z) mx = std::max(mx, v);
  double sum = 0.0;
  for (float& v : z) {
    v = std::exp((v - mx) / temperature);
    sum += v;
  }
  for (float& v : z) v = static_cast<float>(v / sum);
}

head::head(int dim, int hidden, int n_classes, std::vector<float> mean, std::vector<float> inv_std,
           std::vector<float> w1, std::vector<float> b1, std::vector<float> w2,
           std::vector<float> b2)
    : dim_(dim), hidden_(hidden), n_classes_(n_classes), mean_(std::move(mean)),
      inv_std_(std::move(inv_std)), w1_(std::move(w1)), b1_(std::move(b1)), w2_(std::move(w2)),
      b2_(std::move(b2)) {}

head head::ensemble(std::vector<head> members) {
  if (members.size() == 1) return std::move(members.front());
  head e;
  if (members.empty()) return e;
  e.dim_ = members.front().dim_;
  e.hidden_ = members.front().hidden_;
  e.n_classes_ = members.front().n_classes_;
  e.members_ = std::move(members);
  return e;
}

void head::logits(const float* x, float* out) const {
  if (!members_.empty()) {
    std::vector<float> z(static_cast<size_t>(n_classes_));
    std::fill(out, out + n_classes_, 0.0f);
    for (const auto& m : members_) {
      m.logits(x, z.data());
      for (int c = 0; c < n_classes_; ++c) out[c] += z[static_cast<size_t>(c)];
    }
    const float inv = 1.0f / static_cast<float>(members_.size());
    for (int c = 0; c < n_classes_; ++c) out[c] *= inv;
    return;
  }
  std::vector<float> xs(dim_);
  for (int i = 0; i < dim_; ++i) xs[i] = (x[i] - mean_[i]) * inv_std_[i];
  const float* in = xs.data();
  int width = dim_;
  std::vector<float> h;
  if (hidden_ > 0) {
    h.resize(hidden_);
    for (int j = 0; j < hidden_; ++j) {
      h[j] = std::max(0.0f, dot(&w1_[static_cast<size_t>(j) * dim_], in, dim_) + b1_[j]);
    }
    in = h.data();
    width = hidden_;
  }
  for (int c = 0; c < n_classes_; ++c) {
    out[c] = dot(&w2_[static_cast<size_t>(c) * width], in, width) + b2_[c];
  }
}

head head::train(std::span<const float> features, std::span<const int32_t> labels, int n_classes,
                 const head_options& options) {
  head h;
  const size_t n = labels.size();
  const int dim = static_cast<int>(features.size() / std::max<size_t>(n, 1));
  h.dim_ = dim;
  h.hidden_ = options.hidden;
  h.n_classes_ = n_classes;

  // Standardise each feature: hidden states have a few huge dimensions that
  // would otherwise dominate the step sizes.
  h.mean_.assign(dim, 0.0f);
  h.inv_std_.assign(dim, 1.0f);
  std::vector<double> sum(dim, 0.0), sq(dim, 0.0);
  for (size_t i = 0; i < n; ++i) {
    for (int d = 0; d < dim; ++d) {
      const double v = features[i * dim + d];
      sum[d] += v;
      sq[d] += v * v;
    }
  }
  for (int d = 0; d < dim; ++d) {
    const double mu = sum[d] / static_cast<double>(n);
    const double var = std::max(sq[d] / static_cast<double>(n) - mu * mu, 1e-12);
    h.mean_[d] = static_cast<float>(mu);
    h.inv_std_[d] = static_cast<float>(1.0 / std::sqrt(var));
  }
  std::vector<float> xs(features.size());
  for (size_t i = 0; i < n; ++i) {
    for (int d = 0; d < dim; ++d) {
      xs[i * dim + d] = (features[i * dim + d] - h.mean_[d]) * h.inv_std_[d];
    }
  }

  splitmix64 rng{options.seed};
  const int hid = options.hidden;
  const int width = hid > 0 ? hid : dim;
  if (hid > 0) {
    h.w1_.resize(static_cast<size_t>(hid) * dim);
    const float s1 = std::sqrt(2.0f / static_cast<float>(dim));  // He init for ReLU
    for (auto& w : h.w1_) w = s1 * gaussian(rng);
    h.b1_.assign(hid, 0.0f);
  }
  h.w2_.resize(static_cast<size_t>(n_classes) * width);
  const float s2 = std::sqrt(1.0f / static_cast<float>(width));
  for (auto& w : h.w2_) w = 0.1f * s2 * gaussian(rng);
  h.b2_.assign(n_classes, 0.0f);

  adam o_w1(h.w1_.size()), o_b1(h.b1_.size()), o_w2(h.w2_.size()), o_b2(h.b2_.size());
  std::vector<float> g_w1(h.w1_.size()), g_b1(h.b1_.size()), g_w2(h.w2_.size()),
      g_b2(h.b2_.size());
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::vector<float> act(hid), z(n_classes), dact(hid);
  int t = 0;
  for (int epoch = 0; epoch < options.epochs; ++epoch) {
    for (size_t i = n; i > 1; --i) std::swap(order[i - 1], order[rng.below(i)]);
    double loss = 0.0;
    for (size_t start = 0; start < n; start += options.batch) {
      const size_t end = std::min(n, start + static_cast<size_t>(options.batch));
      std::fill(g_w1.begin(), g_w1.end(), 0.0f);
      std::fill(g_b1.begin(), g_b1.end(), 0.0f);
      std::fill(g_w2.begin(), g_w2.end(), 0.0f);
      std::fill(g_b2.begin(), g_b2.end(), 0.0f);
      const float scale = 1.0f / static_cast<float>(end - start);
      for (size_t k = start; k < end; ++k) {
        const float* x = &xs[order[k] * dim];
        const int y = labels[order[k]];
        const float* in = x;
        if (hid > 0) {
          for (int j = 0; j < hid; ++j) {
            act[j] = std::max(0.0f, dot(&h.w1_[static_cast<size_t>(j) * dim], x, dim) + h.b1_[j]);
          }
          in = act.data();
        }
        for (int c = 0; c < n_classes; ++c) {
          z[c] = dot(&h.w2_[static_cast<size_t>(c) * width], in, width) + h.b2_[c];
        }
        softmax(z);
        loss -= std::log(std::max(z[y], 1e-30f));
        z[y] -= 1.0f;  // dL/dz = p - onehot(y)
        if (hid > 0) std::fill(dact.begin(), dact.end(), 0.0f);
        for (int c = 0; c < n_classes; ++c) {
          const float dz = z[c] * scale;
          float* gw = &g_w2[static_cast<size_t>(c) * width];
          const float* w = &h.w2_[static_cast<size_t>(c) * width];
          for (int j = 0; j < width; ++j) gw[j] += dz * in[j];
          if (hid > 0) {
            for (int j = 0; j < hid; ++j) dact[j] += dz * w[j];
          }
          g_b2[c] += dz;
        }
        if (hid > 0) {
          for (int j = 0; j < hid; ++j) {
            if (act[j] <= 0.0f) continue;
            float* gw = &g_w1[static_cast<size_t>(j) * dim];
            for (int d = 0; d < dim; ++d) gw[d] += dact[j] * x[d];
            g_b1[j] += dact[j];
          }
        }
      }
      ++t;
      if (hid > 0) {
        o_w1.step(h.w1_, g_w1, options.learning_rate, t, options.l2);
        o_b1.step(h.b1_, g_b1, options.learning_rate, t, 0.0f);
      }
      o_w2.step(h.w2_, g_w2, options.learning_rate, t, options.l2);
      o_b2.step(h.b2_, g_b2, options.learning_rate, t, 0.0f);
    }
    if (options.on_epoch) options.on_epoch(epoch, loss / static_cast<double>(n));
  }
  return h;
}

}  // namespace triage::classifier
