// csv.h: reading RFC 4180 CSV files with a header row (quoted fields,
// doubled quotes, newlines inside quotes, CRLF line ends).
//
//   auto table = triage::read_csv("data/banking77/train.csv");
//   if (!table) return table.error();            // names file and line
//   auto text = table.value().column("text");    // result<size_t>
//   for (const auto& row : table.value().rows) use(row[text.value()]);
//
// Every row must have as many fields as the header; a short or long row, an
// unterminated quote or a missing column is an error naming file and line.
#pragma once

#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "base/result.h"

namespace triage {

enum class csv_errc {
  unreadable = 1,   // the file cannot be opened
  malformed,        // broken quoting or a row with the wrong number of fields
  missing_column,   // a column the caller needs is not in the header
};
const std::error_category& csv_category();
inline std::error_code make_error_code(csv_errc e) { return {static_cast<int>(e), csv_category()}; }

struct csv_table {
  std::string source;                        // file name, for messages
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  std::vector<size_t> lines;                 // 1-based line each row starts on

  // Index of the column named `name`, or an error naming the file and the
  // columns it does have.
  result<size_t> column(std::string_view name) const;
};

result<csv_table> parse_csv(std::string_view text, std::string_view source);
result<csv_table> read_csv(const std::string& path);

}  // namespace triage

template <>
struct std::is_error_code_enum<triage::csv_errc> : std::true_type {};
