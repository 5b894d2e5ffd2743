// fit_adapter (workers/training.h) on synthetic features: an ensemble of
// heads is what it says (members trained with seeds seed, seed + 1, ...),
// does not depend on how many threads trained it, and its first member is
// the single head the same options give.
#include "workers/training.h"

#include <vector>

#include <gtest/gtest.h>

#include "compute/classifier/adapter.h"
#include "compute/classifier/dataset.h"
#include "compute/classifier/head.h"

namespace triage::workers {
namespace {

namespace cl = triage::classifier;

constexpr size_t dim = 8;

// Three classes around three points, noisy enough that heads disagree a little.
void blobs(std::vector<float>& x, std::vector<int32_t>& y) {
  cl::splitmix64 rng{42};
  for (int32_t c = 0; c < 3; ++c) {
    for (int i = 0; i < 80; ++i) {
      for (size_t d = 0; d < dim; ++d) {
        const double noise = static_cast<double>(rng.below(2001)) / 1000.0 - 1.0;
        x.push_back(static_cast<float>((d % 3 == static_cast<size_t>(c) ? 1.0 : 0.0) + 0.9 * noise));
      }
      y.push_back(c);
    }
  }
}

cl::adapter labelled() {
  cl::adapter a;
  a.intents = {"a", "b", "c"};
  a.categories = {"x", "y", "z"};
  a.intent_category = {0, 1, 2};
  a.intent_urgency = {1, 2, 3};
  return a;
}

TEST(training, ensemble_members_are_seeded_heads_and_threads_do_not_matter) {
  std::vector<float> x;
  std::vector<int32_t> y;
  blobs(x, y);
  const auto split = cl::stratified_split(y, {.calibration = 0.25, .test = 0.0, .seed = 3});
  const fit_options base{.hidden = 8, .epochs = 4, .seed = 11, .target_accuracy = 0.9};

  cl::adapter single = labelled();
  fit_adapter(single, x, dim, y, split.train, split.calibration, base);
  EXPECT_EQ(single.intent_head.members(), 1);

  std::vector<cl::adapter> ens;
  for (int threads : {1, 3}) {
    cl::adapter a = labelled();
    auto opts = base;
    opts.members = 3;
    opts.threads = threads;
    int epochs_seen = 0;
    opts.on_epoch = [&](int, double) { ++epochs_seen; };
    const auto fit = fit_adapter(a, x, dim, y, split.train, split.calibration, opts);
    EXPECT_EQ(epochs_seen, 3 * base.epochs);
    EXPECT_EQ(a.intent_head.members(), 3);
    EXPECT_EQ(fit.routable_confidence.size(), split.calibration.size());
    ens.push_back(std::move(a));
  }
  std::vector<float> z1(3), z3(3), zs(3), zm(3);
  for (size_t i = 0; i < 10; ++i) {
    const float* row = &x[split.calibration[i] * dim];
    ens[0].intent_head.logits(row, z1.data());
    ens[1].intent_head.logits(row, z3.data());
    EXPECT_EQ(z1, z3);
    single.intent_head.logits(row, zs.data());
    ens[0].intent_head.member(0).logits(row, zm.data());
    EXPECT_EQ(zs, zm);
  }
  EXPECT_EQ(ens[0].temperature, ens[1].temperature);
  EXPECT_EQ(ens[0].threshold, ens[1].threshold);

  // Member k is the head of seed + k.
  const auto h2 = cl::head::train(
      [&] {
        std::vector<float> xt;
        for (size_t r : split.train) xt.insert(xt.end(), x.begin() + static_cast<long>(r * dim),
                                               x.begin() + static_cast<long>((r + 1) * dim));
        return xt;
      }(),
      [&] {
        std::vector<int32_t> yt;
        for (size_t r : split.train) yt.push_back(y[r]);
        return yt;
      }(),
      3, {.hidden = 8, .epochs = 4, .seed = 13});
  h2.logits(x.data(), zs.data());
  ens[0].intent_head.member(2).logits(x.data(), zm.data());
  EXPECT_EQ(zs, zm);
}

TEST(training, wilson_bound_routes_no_more_than_the_observed_accuracy) {
  std::vector<float> x;
  std::vector<int32_t> y;
  blobs(x, y);
  const auto split = cl::stratified_split(y, {.calibration = 0.3, .test = 0.0, .seed = 3});
  cl::adapter plain = labelled(), bounded = labelled();
  const auto a = fit_adapter(plain, x, dim, y, split.train, split.calibration,
                             {.hidden = 8, .epochs = 4, .target_accuracy = 0.9});
  const auto b = fit_adapter(bounded, x, dim, y, split.train, split.calibration,
                             {.hidden = 8, .epochs = 4, .target_accuracy = 0.9, .threshold_z = 1.64});
  EXPECT_GE(bounded.threshold, plain.threshold);
  EXPECT_LE(b.choice.coverage, a.choice.coverage);
  // A perfect record meets a target of 1 as observed, never by a lower bound.
  const auto c = fit_adapter(plain, x, dim, y, split.train, split.calibration,
                             {.hidden = 8, .epochs = 4, .target_accuracy = 1.0});
  const auto d = fit_adapter(bounded, x, dim, y, split.train, split.calibration,
                             {.hidden = 8, .epochs = 4, .target_accuracy = 1.0, .threshold_z = 1.0});
  EXPECT_TRUE(c.choice.met);
  EXPECT_GT(c.choice.coverage, 0.0);
  EXPECT_FALSE(d.choice.met);
  EXPECT_EQ(d.choice.coverage, 0.0);
}

}  // namespace
}  // namespace triage::workers
