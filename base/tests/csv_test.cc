#include "base/csv.h"

#include <gtest/gtest.h>

namespace triage {
namespace {

TEST(parse_csv, quotes_commas_newlines_and_crlf) {
  auto r = parse_csv("text,intent\r\nplain,a\r\n\"with, comma\",b\n\"say \"\"hi\"\"\",c\n"
                     "\"two\nlines\",d\n\n",
                     "t.csv");
  ASSERT_TRUE(r) << r.error().message;
  const auto& t = r.value();
  ASSERT_EQ(t.rows.size(), 4u);
  EXPECT_EQ(t.rows[0][0], "plain");
  EXPECT_EQ(t.rows[1][0], "with, comma");
  EXPECT_EQ(t.rows[2][0], "say \"hi\"");
  EXPECT_EQ(t.rows[3][0], "two\nlines");
  EXPECT_EQ(t.rows[3][1], "d");
  EXPECT_EQ(t.lines[3], 5u);
  EXPECT_EQ(t.column("intent").value(), 1u);
}

TEST(parse_csv, empty_fields_are_kept) {
  auto r = parse_csv("a,b,c\n,,\n\"\",x,\n", "e.csv");
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r.value().rows.size(), 2u);
  EXPECT_EQ(r.value().rows[1][1], "x");
  EXPECT_EQ(r.value().rows[1][2], "");
}

TEST(parse_csv, errors_name_file_and_line) {
  auto r = parse_csv("a,b\n1,2\n3\n", "short.csv");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, csv_errc::malformed);
  EXPECT_EQ(r.error().message, "short.csv:3: 1 fields, the header has 2");

  r = parse_csv("a,b\n\"open,2\n", "q.csv");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "q.csv:2: quoted field never closed");

  r = parse_csv("a,b\nx\"y,2\n", "q.csv");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "q.csv:2: a quote inside an unquoted field");

  r = parse_csv("", "empty.csv");
  ASSERT_FALSE(r);

  auto t = parse_csv("text,label\n", "h.csv");
  ASSERT_TRUE(t);
  auto c = t.value().column("intent");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, csv_errc::missing_column);
  EXPECT_EQ(c.error().message, "h.csv: no column 'intent' (columns: text, label)");

  auto f = read_csv("/nonexistent.csv");
  ASSERT_FALSE(f);
  EXPECT_EQ(f.error().code, csv_errc::unreadable);
}

}  // namespace
}  // namespace triage
