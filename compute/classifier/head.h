// head.h: a small classifier over frozen SLM features: standardisation, an
// optional hidden layer (ReLU), and a softmax output, trained with Adam on
// cross-entropy plus L2.
//
//   head_options opts;                          // defaults below
//   opts.hidden = 256;                          // 0: linear (softmax regression)
//   head h = head::train(features, labels, n_classes, opts);   // features: (n, dim)
//   std::vector<float> z(n_classes);
//   h.logits(features.data() + i * dim, z.data());
//
// Deterministic for a given seed and input (single-threaded, fixed order).
//
// An ensemble is a head made of several trained members (same dim, classes
// and hidden width, different seeds) whose logits() is the mean of theirs:
//
//   std::vector<head> ms;
//   for (uint64_t s : {7, 8, 9}) ms.push_back(head::train(features, labels, n_classes, {.seed = s}));
//   head e = head::ensemble(std::move(ms));   // e.members() == 3
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

namespace triage::classifier {

struct head_options {
  // Hidden units; 0 trains a linear softmax layer. Default: 0. Bounds: 0..4096.
  int hidden = 0;
  // L2 penalty on weights (not biases). Default: 1e-4.
  float l2 = 1e-4f;
  // Adam step size. Default: 2e-3.
  float learning_rate = 2e-3f;
  // Passes over the training set. Default: 60.
  int epochs = 60;
  // Minibatch size. Default: 64.
  int batch = 64;
  // Weight initialisation and minibatch order. Default: 7.
  uint64_t seed = 7;
  // Called after each epoch with (epoch, mean training loss). Default: none.
  std::function<void(int, double)> on_epoch = {};
};

class head {
 public:
  // features: (n, dim) row-major; labels in [0, n_classes).
  static head train(std::span<const float> features, std::span<const int32_t> labels,
                    int n_classes, const head_options& options);

  // Rebuilds a trained head from its parameters (adapter loading); sizes are
  // checked by the caller.
  head(int dim, int hidden, int n_classes, std::vector<float> mean, std::vector<float> inv_std,
       std::vector<float> w1, std::vector<float> b1, std::vector<float> w2, std::vector<float> b2);

  int dim() const { return dim_; }
  int hidden() const { return hidden_; }
  int n_classes() const { return n_classes_; }

  // Raw (uncalibrated) logits for one feature row; out has n_classes(). An
  // ensemble's are the mean of its members' logits.
  void logits(const float* x, float* out) const;

  // Combines trained heads with equal dim, hidden and n_classes into one
  // whose logits are their mean (the members must agree; the caller checks).
  // One member gives that head back unchanged.
  static head ensemble(std::vector<head> members);

  // Number of members: 1 for a plain head.
  int members() const { return members_.empty() ? 1 : static_cast<int>(members_.size()); }
  // Member k (0 <= k < members()); a plain head is its own member 0.
  const head& member(int k) const { return members_.empty() ? *this : members_[static_cast<size_t>(k)]; }

  // Parameters, for saving: standardisation (dim), layer 1 (hidden, dim) and
  // (hidden) when hidden > 0, output (n_classes, hidden or dim) and (n_classes).
  // An ensemble gives its first member's here (so rebuilding a head from
  // these gives that member alone); member(k) has each member's.
  const std::vector<float>& mean() const { return member(0).mean_; }
  const std::vector<float>& inv_std() const { return member(0).inv_std_; }
  const std::vector<float>& w1() const { return member(0).w1_; }
  const std::vector<float>& b1() const { return member(0).b1_; }
  const std::vector<float>& w2() const { return member(0).w2_; }
  const std::vector<float>& b2() const { return member(0).b2_; }

  // An empty head (no classes); adapters fill theirs in on load.
  head() = default;

 private:
  int dim_ = 0, hidden_ = 0, n_classes_ = 0;
  std::vector<float> mean_, inv_std_;
  std::vector<float> w1_, b1_;  // (hidden, dim), (hidden)
  std::vector<float> w2_, b2_;  // (n_classes, hidden or dim), (n_classes)
  std::vector<head> members_;   // an ensemble's members (>= 2); empty for a plain head
};

// softmax(z / temperature) in place.
void softmax(std::span<float> z, float temperature = 1.0f);

}  // namespace triage::classifier
