// The store: the add merge operator, partition wipes, reopening, and a
// damaged store reported with its path.
#include <filesystem>
#include <fstream>
#include <random>

#include <gtest/gtest.h>

#include "state/store.h"

namespace triage::state {
namespace {

std::filesystem::path fresh_dir(const std::string& name) {
  auto d = std::filesystem::temp_directory_path() /
           ("triage-state-" + name + "-" + std::to_string(std::random_device{}()));
  std::filesystem::remove_all(d);
  return d;
}

struct store_test : ::testing::Test {
  void SetUp() override { dir = fresh_dir(::testing::UnitTest::GetInstance()->current_test_info()->name()); }
  void TearDown() override { std::filesystem::remove_all(dir); }
  std::filesystem::path dir;
};

TEST_F(store_test, merge_operator_adds_element_wise_and_extends_the_shorter_vector) {
  auto s = store::open(dir.string());
  ASSERT_TRUE(s) << s.error().message;
  write_set w;
  w.add(family::counters, "00001|2026Q4|cards|2|routed", {1});
  w.add(family::counters, "00001|2026Q4|cards|2|routed", {1});
  w.add(family::histograms, "00001|2026Q4|cards", {0, 2, 5});
  ASSERT_TRUE(s.value()->write(w));
  write_set w2;
  w2.add(family::counters, "00001|2026Q4|cards|2|routed", {40});
  w2.add(family::histograms, "00001|2026Q4|cards", {1, 1, 1, 7});
  w2.add(family::windows, "00001|2026-11-24T03", {-2, 3});
  ASSERT_TRUE(s.value()->write(w2));
  EXPECT_EQ(s.value()->get_counts(family::counters, "00001|2026Q4|cards|2|routed").value(), counts{42});
  EXPECT_EQ(s.value()->get_counts(family::histograms, "00001|2026Q4|cards").value(), (counts{1, 3, 6, 7}));
  EXPECT_EQ(s.value()->get_counts(family::windows, "00001|2026-11-24T03").value(), (counts{-2, 3}));
  EXPECT_TRUE(s.value()->get_counts(family::counters, "00001|absent").value().empty());
}

TEST_F(store_test, a_put_over_merged_values_replaces_them_and_merges_continue_from_it) {
  // What a restore does: the changelog's absolute value replaces the key.
  auto s = store::open(dir.string());
  ASSERT_TRUE(s) << s.error().message;
  write_set w;
  w.add(family::counters, "00000|k", {5});
  w.put(family::counters, "00000|k", encode_counts({100}));
  w.add(family::counters, "00000|k", {1});
  ASSERT_TRUE(s.value()->write(w));
  EXPECT_EQ(s.value()->get_counts(family::counters, "00000|k").value(), counts{101});
}

TEST_F(store_test, values_survive_reopening) {
  {
    auto s = store::open(dir.string());
    ASSERT_TRUE(s) << s.error().message;
    write_set w;
    w.add(family::drift, "00002|baseline|n", {7});
    w.put(family::decisions, "00002|T-1", "2026Q4\tcards\t2\t0.9000\trouted");
    w.put(family::meta, applied_key(2), encode_counts({1234}));
    ASSERT_TRUE(s.value()->write(w));
    s.value()->close();
    s.value()->close();  // twice is fine
  }
  auto s = store::open(dir.string(), {.read_only = true});
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s.value()->get_counts(family::drift, "00002|baseline|n").value(), counts{7});
  EXPECT_EQ(*s.value()->get(family::decisions, "00002|T-1").value(), "2026Q4\tcards\t2\t0.9000\trouted");
  EXPECT_EQ(s.value()->applied_offset(2).value(), std::optional<int64_t>(1234));
  EXPECT_EQ(s.value()->applied_offset(3).value(), std::nullopt);
  EXPECT_EQ(s.value()->partitions().value(), std::vector<int32_t>{2});
}

TEST_F(store_test, wipe_partition_removes_that_partition_only) {
  auto s = store::open(dir.string());
  ASSERT_TRUE(s) << s.error().message;
  write_set w;
  for (int p : {1, 2, 10}) {
    for (auto f : all_families) {
      if (is_additive(f)) w.add(f, partition_prefix(p) + "x", {1});
      else w.put(f, partition_prefix(p) + "x", "v");
    }
  }
  ASSERT_TRUE(s.value()->write(w));
  ASSERT_TRUE(s.value()->wipe_partition(1));
  for (auto f : all_families) {
    EXPECT_FALSE(s.value()->get(f, "00001|x").value()) << family_name(f);
    EXPECT_TRUE(s.value()->get(f, "00002|x").value()) << family_name(f);
    EXPECT_TRUE(s.value()->get(f, "00010|x").value()) << family_name(f);
  }
}

TEST_F(store_test, add_on_a_plain_family_is_refused) {
  auto s = store::open(dir.string());
  ASSERT_TRUE(s) << s.error().message;
  write_set w;
  w.add(family::decisions, "00000|T-1", {1});
  auto ok = s.value()->write(w);
  ASSERT_FALSE(ok);
  EXPECT_EQ(ok.error().code, errc::invalid_argument);
  EXPECT_NE(ok.error().message.find("decisions"), std::string::npos) << ok.error().message;
}

TEST_F(store_test, a_damaged_current_file_is_a_clear_error_naming_the_path) {
  {
    auto s = store::open(dir.string());
    ASSERT_TRUE(s) << s.error().message;
    write_set w;
    w.add(family::counters, "00000|k", {1});
    ASSERT_TRUE(s.value()->write(w));
  }
  std::ofstream(dir / "CURRENT", std::ios::trunc) << "\x01\x02garbage-not-a-manifest-name";
  auto s = store::open(dir.string());
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, errc::corrupt) << s.error().message;
  EXPECT_NE(s.error().message.find(dir.string()), std::string::npos) << s.error().message;
}

TEST_F(store_test, a_damaged_manifest_is_a_clear_error_naming_the_path) {
  {
    auto s = store::open(dir.string());
    ASSERT_TRUE(s) << s.error().message;
    write_set w;
    w.add(family::counters, "00000|k", {1});
    ASSERT_TRUE(s.value()->write(w));
  }
  bool found = false;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().filename().string().rfind("MANIFEST-", 0) == 0) {
      std::ofstream(e.path(), std::ios::trunc | std::ios::binary) << std::string(300, '\x5a');
      found = true;
    }
  }
  ASSERT_TRUE(found);
  auto s = store::open(dir.string());
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, errc::corrupt) << s.error().message;
  EXPECT_NE(s.error().message.find(dir.string()), std::string::npos) << s.error().message;
}

TEST_F(store_test, read_only_open_of_a_missing_store_says_so) {
  auto s = store::open(dir.string(), {.read_only = true});
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find(dir.string()), std::string::npos);
}

TEST(counts_codec, round_trips_and_rejects_odd_sizes) {
  const counts c{0, -1, 1LL << 40};
  EXPECT_EQ(decode_counts(encode_counts(c)).value(), c);
  EXPECT_FALSE(decode_counts("abc"));
}

}  // namespace
}  // namespace triage::state
