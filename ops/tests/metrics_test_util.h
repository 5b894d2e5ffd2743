// metrics_test_util.h: reading sample values back out of Prometheus text.
//
//   EXPECT_EQ(sample(text, R"(triage_rebalances_total)"), 1);
#pragma once

#include <cmath>
#include <optional>
#include <sstream>
#include <string>

namespace triage::ops::testing {

// The value of the series written exactly as `series` (name plus labels in
// the serializer's sorted order), or nullopt when the text has no such line.
inline std::optional<double> sample(const std::string& text, const std::string& series) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() > series.size() && line.compare(0, series.size(), series) == 0 &&
        line[series.size()] == ' ')
      return std::stod(line.substr(series.size() + 1));
  }
  return std::nullopt;
}

}  // namespace triage::ops::testing
