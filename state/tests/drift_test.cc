// Drift: bins, the population stability index on hand-computed cases, and
// time buckets.
#include <cmath>

#include <gtest/gtest.h>

#include "state/drift.h"

namespace triage::state {
namespace {

TEST(psi, identical_distributions_give_zero) {
  const counts a{10, 20, 30}, b{1, 2, 3};  // same shares, different totals
  EXPECT_NEAR(psi(a, b), 0.0, 1e-12);
}

TEST(psi, hand_computed_three_bins) {
  // shares 0.5/0.3/0.2 -> 0.3/0.3/0.4:
  // (0.3-0.5)ln(0.3/0.5) + 0 + (0.4-0.2)ln(0.4/0.2) = 0.2*ln(5/3) + 0.2*ln 2
  const counts base{500, 300, 200}, now{300, 300, 400};
  const double expected = 0.2 * std::log(5.0 / 3.0) + 0.2 * std::log(2.0);
  EXPECT_NEAR(psi(base, now), expected, 1e-12);
  EXPECT_NEAR(expected, 0.240794, 1e-6);
  // PSI is symmetric in its arguments.
  EXPECT_NEAR(psi(now, base), expected, 1e-12);
}

TEST(psi, an_empty_bin_is_floored_not_infinite) {
  // shares 1/0 -> 0.5/0.5: (0.5-1)ln(0.5) + (0.5-1e-4)ln(0.5/1e-4)
  const counts base{10, 0}, now{5, 5};
  const double expected = -0.5 * std::log(0.5) + (0.5 - 1e-4) * std::log(0.5 / 1e-4);
  EXPECT_NEAR(psi(base, now), expected, 1e-9);
}

TEST(psi, categories_over_the_union_of_names) {
  // {a: .5, b: .5} -> {a: .5, c: .5}: b 0.5 -> 1e-4, c 1e-4 -> 0.5
  const std::map<std::string, int64_t> base{{"a", 5}, {"b", 5}}, now{{"a", 1}, {"c", 1}};
  const double one = (0.5 - 1e-4) * std::log(0.5 / 1e-4);
  EXPECT_NEAR(psi(base, now), 2 * one, 1e-9);
}

TEST(psi, empty_side_gives_zero) {
  EXPECT_EQ(psi(counts{}, counts{1, 2}), 0.0);
  EXPECT_EQ(psi(counts{0, 0}, counts{1, 2}), 0.0);
}

TEST(bins, confidence_deciles_and_edges) {
  EXPECT_EQ(confidence_bin(0.0f), 0);
  EXPECT_EQ(confidence_bin(0.0999f), 0);
  EXPECT_EQ(confidence_bin(0.1f), 1);
  EXPECT_EQ(confidence_bin(0.95f), 9);
  EXPECT_EQ(confidence_bin(1.0f), 9);
  EXPECT_EQ(confidence_bin(-0.5f), 0);
  EXPECT_EQ(confidence_bin(std::nanf("")), 0);
}

TEST(bins, length_doubles_per_bin) {
  EXPECT_EQ(length_bin(0), 0);
  EXPECT_EQ(length_bin(15), 0);
  EXPECT_EQ(length_bin(16), 1);
  EXPECT_EQ(length_bin(31), 1);
  EXPECT_EQ(length_bin(32), 2);
  EXPECT_EQ(length_bin(1023), 6);
  EXPECT_EQ(length_bin(1024), 7);
  EXPECT_EQ(length_bin(1u << 30), 7);
}

TEST(buckets, quarters_and_hours_in_utc) {
  // 2026-11-24T03:36:40Z = 1795491400 s.
  EXPECT_EQ(quarter_of(1795491400000LL), "2026Q4");
  EXPECT_EQ(hour_of(1795491400000LL), "2026-11-24T03");
  // 2026-01-01T00:00:00Z = 1767225600 s, and the millisecond before it.
  EXPECT_EQ(quarter_of(1767225600000LL), "2026Q1");
  EXPECT_EQ(hour_of(1767225600000LL), "2026-01-01T00");
  EXPECT_EQ(quarter_of(1767225600000LL - 1), "2025Q4");
  EXPECT_EQ(hour_of(1767225600000LL - 1), "2025-12-31T23");
  // 2026-04-01T00:00:00Z = 1775001600 s starts Q2; 2026-06-30T23:59:59 is Q2.
  EXPECT_EQ(quarter_of(1775001600000LL), "2026Q2");
  EXPECT_EQ(quarter_of(1782863999000LL), "2026Q2");
  EXPECT_EQ(quarter_of(1782864000000LL), "2026Q3");
  EXPECT_TRUE(is_quarter("2026Q4"));
  EXPECT_FALSE(is_quarter("2026Q5"));
  EXPECT_FALSE(is_quarter("26Q4"));
}

TEST(unknown_bin, edges_are_shares_of_the_ticket) {
  EXPECT_EQ(unknown_bin(0, 0), 0);
  EXPECT_EQ(unknown_bin(0, 100), 0);
  EXPECT_EQ(unknown_bin(1, 101), 1);   // 0.99%
  EXPECT_EQ(unknown_bin(1, 100), 2);   // 1%
  EXPECT_EQ(unknown_bin(4, 100), 3);   // 4%
  EXPECT_EQ(unknown_bin(5, 100), 4);   // 5%
  EXPECT_EQ(unknown_bin(19, 100), 5);  // 19%
  EXPECT_EQ(unknown_bin(49, 100), 6);
  EXPECT_EQ(unknown_bin(50, 100), 7);
  EXPECT_EQ(unknown_bin(9, 9), unknown_bins - 1);
}

TEST(is_fragment_piece, complete_characters_are_known_cut_ones_are_not) {
  EXPECT_FALSE(is_fragment_piece("hello"));
  EXPECT_FALSE(is_fragment_piece(" caf\xc3\xa9"));        // "é" whole
  EXPECT_FALSE(is_fragment_piece("\xe2\x82\xac"));        // "€"
  EXPECT_FALSE(is_fragment_piece("\xf0\x9f\x98\x80"));    // an emoji, whole
  EXPECT_FALSE(is_fragment_piece(""));                     // control tokens render empty
  EXPECT_TRUE(is_fragment_piece("\xc3"));                  // a lead byte alone
  EXPECT_TRUE(is_fragment_piece("\xa9"));                  // a continuation byte alone
  EXPECT_TRUE(is_fragment_piece("\xe2\x82"));              // two bytes of three
  EXPECT_TRUE(is_fragment_piece("ab\xf0\x9f"));            // text, then a cut emoji
  EXPECT_TRUE(is_fragment_piece("\xff"));                  // never valid in UTF-8
}

}  // namespace
}  // namespace triage::state
