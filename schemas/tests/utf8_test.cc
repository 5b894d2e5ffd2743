#include "schemas/utf8.h"

#include <string>

#include <gtest/gtest.h>

namespace triage::schemas {
namespace {

TEST(first_invalid_utf8, accepts_valid_text) {
  for (std::string_view s : {"", "plain ascii", "caf\xC3\xA9", "\xE2\x82\xAC 10",
                             "\xF0\x9F\x98\x80 emoji", "\xEF\xBF\xBF", "\xF4\x8F\xBF\xBF",
                             "\xE4\xBD\xA0\xE5\xA5\xBD \xD0\xBF\xD1\x80\xD0\xB8"}) {
    EXPECT_EQ(first_invalid_utf8(s), std::nullopt) << s;
  }
}

TEST(first_invalid_utf8, reports_first_bad_byte) {
  struct bad_case { std::string text; std::size_t at; };
  const bad_case cases[] = {
      {"ab\x80", 2},                      // stray continuation byte
      {"\xC0\xAF", 0},                    // overlong '/'
      {"x\xC1\xBF", 1},                   // overlong
      {"\xE0\x80\xAF", 0},                // overlong 3-byte
      {"ok\xED\xA0\x80", 2},              // surrogate U+D800
      {"\xF0\x80\x80\xAF", 0},            // overlong 4-byte
      {"\xF4\x90\x80\x80", 0},            // above U+10FFFF
      {"\xF5\x80\x80\x80", 0},            // invalid lead
      {"abc\xE2\x82", 3},                 // truncated at the end
      {"\xE2\x28\xA1", 0},                // bad continuation
      {"\xFF", 0},
  };
  for (const auto& c : cases) {
    auto bad = first_invalid_utf8(c.text);
    ASSERT_TRUE(bad.has_value()) << "accepted invalid sequence at " << c.at;
    EXPECT_EQ(*bad, c.at);
  }
}

}  // namespace
}  // namespace triage::schemas
