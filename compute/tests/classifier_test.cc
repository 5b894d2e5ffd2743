#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <set>

#include <gtest/gtest.h>

#include "compute/classifier/adapter.h"
#include "compute/classifier/calibration.h"
#include "compute/classifier/dataset.h"
#include "compute/classifier/head.h"
#include "compute/classifier/taxonomy.h"
#include "compute/gguf/writer.h"

namespace triage::classifier {
namespace {

std::string source_dir() {
  const char* s = std::getenv("TRIAGE_SOURCE_DIR");
  return s ? s : ".";
}

std::filesystem::path temp_path(const std::string& name) {
  return std::filesystem::temp_directory_path() /
         (name + "-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "-" +
          std::to_string(reinterpret_cast<uintptr_t>(&name) & 0xffff));
}

constexpr const char* small_taxonomy =
    "intent,category,urgency\nlost_card,cards,3\ncard_arrival,cards,1\nrefund,disputes,2\n";

TEST(taxonomy, parses_and_hash_ignores_row_order) {
  auto a = parse_taxonomy(small_taxonomy, "a.csv");
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_EQ(a.value().intents.size(), 3u);
  EXPECT_EQ(a.value().categories, (std::vector<std::string>{"cards", "disputes"}));
  EXPECT_EQ(a.value().intent_urgency[0], 3);
  EXPECT_EQ(a.value().sha256.size(), 64u);
  auto b = parse_taxonomy(
      "intent,category,urgency\r\nrefund,disputes,2\r\nlost_card,cards,3\r\ncard_arrival,cards,1\r\n",
      "b.csv");
  ASSERT_TRUE(b) << b.error().message;
  EXPECT_EQ(a.value().sha256, b.value().sha256);
  auto c = parse_taxonomy("intent,category,urgency\nlost_card,cards,2\ncard_arrival,cards,1\n"
                          "refund,disputes,2\n", "c.csv");
  ASSERT_TRUE(c);
  EXPECT_NE(a.value().sha256, c.value().sha256);  // an urgency changed
}

TEST(taxonomy, errors_name_file_line_and_value) {
  auto r = parse_taxonomy("intent,category,urgency\na,x,1\na,y,2\n", "dup.csv");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::bad_taxonomy);
  EXPECT_EQ(r.error().message, "dup.csv:3: intent 'a' listed twice");
  r = parse_taxonomy("intent,category,urgency\na,x,1\nb,y,4\n", "u.csv");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "u.csv:3: urgency of 'b' must be 1, 2 or 3, got '4'");
  r = parse_taxonomy("intent,queue,urgency\na,x,1\n", "col.csv");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("no column 'category'"), std::string::npos);
}

TEST(taxonomy, shipped_profiles_load) {
  auto bank = load_taxonomy(source_dir() + "/data/banking77/taxonomy.csv");
  ASSERT_TRUE(bank) << bank.error().message;
  EXPECT_EQ(bank.value().intents.size(), 77u);
  EXPECT_EQ(bank.value().categories.size(), 8u);
  EXPECT_TRUE(bank.value().category_index("disputes"));
  auto retail = load_taxonomy(source_dir() + "/data/retail_bitext/taxonomy.csv");
  ASSERT_TRUE(retail) << retail.error().message;
  EXPECT_EQ(retail.value().intents.size(), 27u);
  EXPECT_EQ(retail.value().categories.size(), 7u);
}

TEST(dataset, examples_must_use_taxonomy_intents) {
  auto tax = parse_taxonomy(small_taxonomy, "t.csv").value();
  const auto path = temp_path("examples.csv");
  std::ofstream(path) << "text,intent\nwhere is my card,card_arrival\nI want money back,refnd\n";
  auto r = load_examples(path.string(), tax);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::bad_dataset);
  EXPECT_EQ(r.error().message, path.string() + ":3: intent 'refnd' is not in the taxonomy");
  std::filesystem::remove(path);
}

TEST(dataset, stratified_split_is_disjoint_proportional_and_reproducible) {
  std::vector<int32_t> labels;
  for (int c = 0; c < 5; ++c) labels.insert(labels.end(), 100 + c * 20, c);
  const auto s = stratified_split(labels, {.calibration = 0.2, .test = 0.1, .seed = 3});
  std::set<size_t> all;
  for (auto* part : {&s.train, &s.calibration, &s.test}) all.insert(part->begin(), part->end());
  EXPECT_EQ(all.size(), labels.size());
  EXPECT_EQ(s.train.size() + s.calibration.size() + s.test.size(), labels.size());
  for (int c = 0; c < 5; ++c) {
    const auto n = static_cast<size_t>(100 + c * 20);
    size_t in_test = 0, in_cal = 0;
    for (auto i : s.test) in_test += labels[i] == c;
    for (auto i : s.calibration) in_cal += labels[i] == c;
    EXPECT_EQ(in_test, static_cast<size_t>(static_cast<double>(n) * 0.1));
    EXPECT_EQ(in_cal, static_cast<size_t>(static_cast<double>(n) * 0.2));
  }
  const auto again = stratified_split(labels, {.calibration = 0.2, .test = 0.1, .seed = 3});
  EXPECT_EQ(again.test, s.test);
  const auto other = stratified_split(labels, {.calibration = 0.2, .test = 0.1, .seed = 4});
  EXPECT_NE(other.test, s.test);
}

// Gaussian blobs: class c centred at 3 * e_c in `dim` dimensions.
void blobs(int n_per_class, int n_classes, int dim, uint64_t seed, std::vector<float>& x,
           std::vector<int32_t>& y) {
  splitmix64 rng{seed};
  auto normal = [&] {
    double u1 = (static_cast<double>(rng.next() >> 11) + 1) / 9007199254740993.0;
    double u2 = static_cast<double>(rng.next() >> 11) / 9007199254740992.0;
    return static_cast<float>(std::sqrt(-2 * std::log(u1)) * std::cos(6.283185307 * u2));
  };
  for (int c = 0; c < n_classes; ++c) {
    for (int i = 0; i < n_per_class; ++i) {
      for (int d = 0; d < dim; ++d) x.push_back((d == c ? 3.0f : 0.0f) + normal() + 100.0f * (d == 0));
      y.push_back(c);
    }
  }
}

double accuracy(const head& h, const std::vector<float>& x, const std::vector<int32_t>& y) {
  std::vector<float> z(h.n_classes());
  size_t right = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    h.logits(&x[i * h.dim()], z.data());
    right += (std::max_element(z.begin(), z.end()) - z.begin()) == y[i];
  }
  return static_cast<double>(right) / static_cast<double>(y.size());
}

TEST(head, linear_head_learns_separable_blobs) {
  std::vector<float> x, xt;
  std::vector<int32_t> y, yt;
  blobs(200, 4, 8, 1, x, y);
  blobs(100, 4, 8, 2, xt, yt);
  int epochs_seen = 0;
  head h = head::train(x, y, 4, {.epochs = 30, .on_epoch = [&](int, double) { ++epochs_seen; }});
  EXPECT_EQ(epochs_seen, 30);
  // Bayes accuracy for these blobs is about 0.93.
  EXPECT_GT(accuracy(h, xt, yt), 0.88);
}

TEST(head, hidden_layer_learns_what_a_linear_head_cannot) {
  // XOR of the signs of two coordinates: not linearly separable.
  splitmix64 rng{9};
  std::vector<float> x;
  std::vector<int32_t> y;
  for (int i = 0; i < 2000; ++i) {
    const float a = static_cast<float>(rng.below(2001)) / 1000.0f - 1.0f;
    const float b = static_cast<float>(rng.below(2001)) / 1000.0f - 1.0f;
    x.insert(x.end(), {a, b});
    y.push_back((a > 0) != (b > 0));
  }
  head linear = head::train(x, y, 2, {.epochs = 20});
  head mlp = head::train(x, y, 2, {.hidden = 32, .learning_rate = 1e-2f, .epochs = 40});
  EXPECT_LT(accuracy(linear, x, y), 0.7);
  EXPECT_GT(accuracy(mlp, x, y), 0.95);
}

TEST(head, ensemble_logits_are_the_members_mean) {
  std::vector<float> x;
  std::vector<int32_t> y;
  blobs(40, 3, 6, 5, x, y);
  std::vector<head> ms;
  for (uint64_t seed : {1, 2, 3}) ms.push_back(head::train(x, y, 3, {.hidden = 8, .epochs = 3, .seed = seed}));
  std::vector<std::vector<float>> zs(3, std::vector<float>(3));
  for (size_t k = 0; k < 3; ++k) ms[k].logits(x.data(), zs[k].data());
  ASSERT_NE(zs[0], zs[1]);  // different seeds, different members
  const head e = head::ensemble(ms);
  EXPECT_EQ(e.members(), 3);
  EXPECT_EQ(e.dim(), 6);
  EXPECT_EQ(e.hidden(), 8);
  EXPECT_EQ(e.n_classes(), 3);
  std::vector<float> z(3);
  e.logits(x.data(), z.data());
  for (size_t c = 0; c < 3; ++c) EXPECT_NEAR(z[c], (zs[0][c] + zs[1][c] + zs[2][c]) / 3.0f, 1e-5f);
  // Its parameters are its first member's; member(k) gives each.
  EXPECT_EQ(e.b2(), ms[0].b2());
  EXPECT_EQ(e.w1(), ms[0].w1());
  EXPECT_EQ(e.member(2).w2(), ms[2].w2());
  // One member is that head itself.
  const head one = head::ensemble({ms[1]});
  EXPECT_EQ(one.members(), 1);
  one.logits(x.data(), z.data());
  EXPECT_EQ(z, zs[1]);
}

TEST(calibration, temperature_recovers_an_overconfident_scale) {
  // Labels drawn from softmax(z); the model reports 3 z: the fit should find T = 3.
  splitmix64 rng{5};
  const int n = 4000, k = 5;
  std::vector<float> logits;
  std::vector<int32_t> labels;
  for (int i = 0; i < n; ++i) {
    std::vector<float> z(k);
    for (auto& v : z) v = static_cast<float>(rng.below(4000)) / 1000.0f;
    std::vector<float> p = z;
    softmax(p);
    double u = static_cast<double>(rng.next() >> 11) / 9007199254740992.0, acc = 0;
    int label = k - 1;
    for (int c = 0; c < k; ++c) {
      acc += p[c];
      if (u < acc) { label = c; break; }
    }
    for (auto v : z) logits.push_back(3.0f * v);
    labels.push_back(label);
  }
  const float t = fit_temperature(logits, labels, k);
  EXPECT_NEAR(t, 3.0f, 0.25f);
  EXPECT_LT(mean_nll(logits, labels, k, t), mean_nll(logits, labels, k, 1.0f));
}

TEST(calibration, reliability_matches_a_hand_computed_case) {
  // Bin [0.8, 0.9): confidences 0.8, 0.8 (one right) -> |0.5 - 0.8| = 0.3, weight 2/4.
  // Bin [0.9, 1.0]: confidences 0.95, 1.0 (both right) -> |1 - 0.975| = 0.025, weight 2/4.
  const std::vector<float> conf{0.8f, 0.8f, 0.95f, 1.0f};
  const std::vector<uint8_t> right{1, 0, 1, 1};
  const auto r = reliability(conf, right, 10);
  EXPECT_NEAR(r.ece, 0.5 * 0.3 + 0.5 * 0.025, 1e-6);
  EXPECT_EQ(r.bins[8].count, 2u);
  EXPECT_EQ(r.bins[9].count, 2u);
  EXPECT_NEAR(r.bins[8].accuracy, 0.5, 1e-9);
}

TEST(calibration, threshold_is_the_lowest_meeting_the_target) {
  // Sorted by confidence: right, right, right, wrong, right, wrong.
  const std::vector<float> conf{0.99f, 0.95f, 0.9f, 0.85f, 0.8f, 0.5f};
  const std::vector<uint8_t> right{1, 1, 1, 0, 1, 0};
  auto c = choose_threshold(conf, right, {.target_accuracy = 0.8});
  ASSERT_TRUE(c.met);
  EXPECT_FLOAT_EQ(c.threshold, 0.8f);  // top 5: 4/5 = 0.8
  EXPECT_NEAR(c.coverage, 5.0 / 6.0, 1e-9);
  c = choose_threshold(conf, right, {.target_accuracy = 1.0});
  EXPECT_FLOAT_EQ(c.threshold, 0.9f);
  // With a Wilson bound, three right answers are not enough to promise 90%.
  c = choose_threshold(conf, right, {.target_accuracy = 0.9, .z = 1.64});
  EXPECT_FALSE(c.met);
  const auto e = evaluate_threshold(conf, right, 0.9f);
  EXPECT_NEAR(e.coverage, 0.5, 1e-9);
  EXPECT_NEAR(e.accuracy, 1.0, 1e-9);
}

TEST(calibration, ties_route_together) {
  const std::vector<float> conf{0.9f, 0.9f, 0.9f, 0.5f};
  const std::vector<uint8_t> right{1, 1, 0, 1};
  const auto c = choose_threshold(conf, right, {.target_accuracy = 0.9});
  EXPECT_FALSE(c.met);  // the 0.9 group is 2/3 right; no cut inside a tie
}

adapter sample_adapter(int hidden) {
  std::vector<float> x;
  std::vector<int32_t> y;
  blobs(50, 3, 6, 11, x, y);
  adapter a;
  a.name = "test";
  a.created_by = "classifier_test";
  a.base_model_name = "tiny";
  a.base_fingerprint = std::string(64, 'a');
  auto tax = parse_taxonomy(small_taxonomy, "t.csv").value();
  a.taxonomy_sha256 = tax.sha256;
  a.intents = tax.intents;
  a.categories = tax.categories;
  a.intent_category = tax.intent_category;
  a.intent_urgency = tax.intent_urgency;
  a.temperature = 1.7f;
  a.threshold = 0.83f;
  a.baseline_category_share = {0.6f, 0.4f};
  a.baseline_confidence_hist = std::vector<float>(10, 0.1f);
  a.intent_head = head::train(x, y, 3, {.hidden = hidden, .epochs = 5});
  return a;
}

TEST(adapter, round_trip_keeps_every_field_and_the_logits) {
  for (int hidden : {0, 16}) {
    const adapter a = sample_adapter(hidden);
    const auto path = temp_path("adapter.gguf");
    ASSERT_TRUE(save_adapter(a, path.string()));
    auto r = load_adapter(path.string());
    ASSERT_TRUE(r) << r.error().message;
    const adapter& b = r.value();
    EXPECT_EQ(b.intents, a.intents);
    EXPECT_EQ(b.intent_urgency, a.intent_urgency);
    EXPECT_EQ(b.taxonomy_sha256, a.taxonomy_sha256);
    EXPECT_FLOAT_EQ(b.temperature, 1.7f);
    EXPECT_FLOAT_EQ(b.threshold, 0.83f);
    EXPECT_EQ(b.pooling, "mean");
    EXPECT_EQ(b.intent_head.hidden(), hidden);
    const std::vector<float> x{1, 2, 3, 4, 5, 6};
    std::vector<float> za(3), zb(3);
    a.intent_head.logits(x.data(), za.data());
    b.intent_head.logits(x.data(), zb.data());
    EXPECT_EQ(za, zb);
    std::filesystem::remove(path);
  }
}

TEST(adapter, ensembles_round_trip_as_version_2_and_single_heads_stay_version_1) {
  const auto path = temp_path("ensemble.gguf");
  adapter a = sample_adapter(16);
  ASSERT_TRUE(save_adapter(a, path.string()));
  {
    auto f = gguf::reader::open(path.string());
    ASSERT_TRUE(f) << f.error().message;
    EXPECT_EQ(f.value().get<uint32_t>("triage.format_version").value(), 1u);
    EXPECT_FALSE(f.value().has_tensor("head.1.norm.mean"));
  }
  std::vector<float> x;
  std::vector<int32_t> y;
  blobs(50, 3, 6, 11, x, y);
  std::vector<head> ms{a.intent_head};
  for (uint64_t seed : {8, 9}) ms.push_back(head::train(x, y, 3, {.hidden = 16, .epochs = 5, .seed = seed}));
  a.intent_head = head::ensemble(std::move(ms));
  ASSERT_TRUE(save_adapter(a, path.string()));
  {
    auto f = gguf::reader::open(path.string());
    ASSERT_TRUE(f) << f.error().message;
    EXPECT_EQ(f.value().get<uint32_t>("triage.format_version").value(), adapter_format_version);
    EXPECT_EQ(f.value().get<int32_t>("triage.head.members").value(), 3);
    EXPECT_TRUE(f.value().has_tensor("head.2.output.bias"));
  }
  auto r = load_adapter(path.string());
  ASSERT_TRUE(r) << r.error().message;
  const head& b = r.value().intent_head;
  EXPECT_EQ(b.members(), 3);
  std::vector<float> za(3), zb(3);
  for (size_t i = 0; i < 5; ++i) {
    a.intent_head.logits(&x[i * 6], za.data());
    b.logits(&x[i * 6], zb.data());
    EXPECT_EQ(za, zb);
  }
  std::filesystem::remove(path);
}

TEST(adapter, refuses_another_model_or_taxonomy) {
  const adapter a = sample_adapter(0);
  auto tax = parse_taxonomy(small_taxonomy, "t.csv").value();
  EXPECT_TRUE(check_compatible(a, a.base_fingerprint, tax));
  auto r = check_compatible(a, std::string(64, 'b'), tax);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::adapter_mismatch);
  EXPECT_NE(r.error().message.find("trained on base model 'tiny'"), std::string::npos);
  auto other = parse_taxonomy("intent,category,urgency\na,x,1\nb,y,2\n", "o.csv").value();
  r = check_compatible(a, a.base_fingerprint, other);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("taxonomy"), std::string::npos);
}

TEST(adapter, malformed_files_name_the_key_or_tensor) {
  // A model file is not an adapter.
  gguf::writer w;
  w.set("general.architecture", gguf::value::string("llama"));
  auto path = temp_path("not-adapter.gguf");
  ASSERT_TRUE(w.write_file(path));
  auto r = load_adapter(path.string());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::bad_adapter);
  EXPECT_NE(r.error().message.find("'llama', not 'triage-adapter'"), std::string::npos);

  // A missing key is named.
  gguf::writer w2;
  w2.set("general.architecture", gguf::value::string("triage-adapter"));
  w2.set("triage.format_version", gguf::value::u32(1));
  ASSERT_TRUE(w2.write_file(path));
  r = load_adapter(path.string());
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("general.name"), std::string::npos) << r.error().message;

  // A newer format is refused, saying so.
  gguf::writer w3;
  w3.set("general.architecture", gguf::value::string("triage-adapter"));
  w3.set("triage.format_version", gguf::value::u32(99));
  ASSERT_TRUE(w3.write_file(path));
  r = load_adapter(path.string());
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("triage.format_version 99 is newer"), std::string::npos);

  // Truncated file.
  ASSERT_TRUE(save_adapter(sample_adapter(0), path.string()));
  std::filesystem::resize_file(path, std::filesystem::file_size(path) / 2);
  r = load_adapter(path.string());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::bad_adapter);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace triage::classifier
