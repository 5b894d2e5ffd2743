#include "base/csv.h"

#include <fstream>
#include <sstream>

namespace triage {
namespace {

class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "triage.csv"; }
  std::string message(int code) const override {
    switch (static_cast<csv_errc>(code)) {
      case csv_errc::unreadable: return "CSV file unreadable";
      case csv_errc::malformed: return "malformed CSV";
      case csv_errc::missing_column: return "CSV column missing";
    }
    return "unknown CSV error";
  }
};

}  // namespace

const std::error_category& csv_category() {
  static const category instance;
  return instance;
}

result<size_t> csv_table::column(std::string_view name) const {
  for (size_t i = 0; i < header.size(); ++i) {
    if (header[i] == name) return i;
  }
  std::string have;
  for (const auto& h : header) have += (have.empty() ? "" : ", ") + h;
  return make_error(csv_errc::missing_column,
                    source + ": no column '" + std::string(name) + "' (columns: " + have + ")");
}

result<csv_table> parse_csv(std::string_view text, std::string_view source) {
  csv_table table;
  table.source = source;
  std::vector<std::string> row;
  std::string field;
  size_t line = 1, row_line = 1;
  bool in_quotes = false, field_was_quoted = false, row_has_content = false;

  auto end_row = [&]() -> result<void> {
    row.push_back(std::move(field));
    field.clear();
    field_was_quoted = false;
    if (table.header.empty()) {
      table.header = std::move(row);
    } else if (row.size() != table.header.size()) {
      return make_error(csv_errc::malformed,
                        table.source + ":" + std::to_string(row_line) + ": " +
                            std::to_string(row.size()) + " fields, the header has " +
                            std::to_string(table.header.size()));
    } else {
      table.rows.push_back(std::move(row));
      table.lines.push_back(row_line);
    }
    row.clear();
    row_has_content = false;
    return success();
  };

  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_quotes) {
      if (c == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') {
          field += '"';
          ++i;
        } else {
          in_quotes = false;
        }
      } else {
        if (c == '\n') ++line;
        field += c;
      }
      continue;
    }
    switch (c) {
      case '"':
        if (!field.empty() || field_was_quoted) {
          return make_error(csv_errc::malformed, table.source + ":" + std::to_string(line) +
                                                     ": a quote inside an unquoted field");
        }
        in_quotes = field_was_quoted = row_has_content = true;
        break;
      case ',':
        row.push_back(std::move(field));
        field.clear();
        field_was_quoted = false;
        row_has_content = true;
        break;
      case '\r':
        if (i + 1 < text.size() && text[i + 1] == '\n') break;  // CRLF: the \n ends the row
        [[fallthrough]];
      case '\n':
        if (row_has_content || !field.empty()) {
          if (auto ok = end_row(); !ok) return ok.error();
        }
        ++line;
        row_line = line;
        break;
      default:
        if (field_was_quoted) {
          return make_error(csv_errc::malformed, table.source + ":" + std::to_string(line) +
                                                     ": text after a closing quote");
        }
        field += c;
        row_has_content = true;
    }
  }
  if (in_quotes) {
    return make_error(csv_errc::malformed, table.source + ":" + std::to_string(row_line) +
                                               ": quoted field never closed");
  }
  if (row_has_content || !field.empty()) {
    if (auto ok = end_row(); !ok) return ok.error();
  }
  if (table.header.empty()) {
    return make_error(csv_errc::malformed, table.source + ": empty file, no header row");
  }
  return table;
}

result<csv_table> read_csv(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(csv_errc::unreadable, path + ": cannot open");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_csv(ss.str(), path);
}

}  // namespace triage
