#include "state/drift.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <set>

namespace triage::state {
namespace {

double term(double e, double a) {
  e = std::max(e, psi_floor);
  a = std::max(a, psi_floor);
  return (a - e) * std::log(a / e);
}

std::chrono::year_month_day civil(int64_t unix_ms, int& hour) {
  using namespace std::chrono;
  const sys_time<milliseconds> t{milliseconds(unix_ms)};
  const auto day = floor<days>(t);
  hour = static_cast<int>(duration_cast<hours>(t - day).count());
  return year_month_day(day);
}

}  // namespace

int confidence_bin(float confidence) {
  if (!(confidence > 0)) return 0;  // also NaN
  return std::min(confidence_bins - 1, static_cast<int>(confidence * confidence_bins));
}

int length_bin(uint32_t tokens) {
  int bin = 0;
  for (uint32_t edge = 16; bin < length_bins - 1 && tokens >= edge; edge *= 2) ++bin;
  return bin;
}

int unknown_bin(uint32_t unknown, uint32_t tokens) {
  if (tokens == 0 || unknown == 0) return 0;
  // Upper edges in per mille, so the bins are exact in integers.
  constexpr uint64_t edges[] = {10, 20, 50, 100, 200, 500};
  const uint64_t per_mille_x = static_cast<uint64_t>(unknown) * 1000;
  int bin = 1;
  for (uint64_t e : edges) {
    if (per_mille_x < e * tokens) return bin;
    ++bin;
  }
  return unknown_bins - 1;
}

bool is_fragment_piece(std::string_view bytes) {
  if (bytes.empty()) return false;
  size_t i = 0;
  while (i < bytes.size()) {
    const auto c = static_cast<unsigned char>(bytes[i]);
    const size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (n == 0 || i + n > bytes.size()) return true;  // a continuation byte first, or a cut character
    for (size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(bytes[i + k]) & 0xC0) != 0x80) return true;
    }
    i += n;
  }
  return false;
}

double psi(std::span<const int64_t> baseline, std::span<const int64_t> current) {
  double nb = 0, nc = 0;
  for (auto v : baseline) nb += static_cast<double>(v);
  for (auto v : current) nc += static_cast<double>(v);
  if (nb <= 0 || nc <= 0) return 0;
  double sum = 0;
  const size_t n = std::max(baseline.size(), current.size());
  for (size_t i = 0; i < n; ++i) {
    const double e = i < baseline.size() ? static_cast<double>(baseline[i]) / nb : 0;
    const double a = i < current.size() ? static_cast<double>(current[i]) / nc : 0;
    sum += term(e, a);
  }
  return sum;
}

double psi(const std::map<std::string, int64_t>& baseline, const std::map<std::string, int64_t>& current) {
  std::set<std::string> keys;
  for (const auto& [k, v] : baseline) keys.insert(k);
  for (const auto& [k, v] : current) keys.insert(k);
  std::vector<int64_t> b, c;
  for (const auto& k : keys) {
    auto i = baseline.find(k);
    auto j = current.find(k);
    b.push_back(i == baseline.end() ? 0 : i->second);
    c.push_back(j == current.end() ? 0 : j->second);
  }
  return psi(std::span<const int64_t>(b), std::span<const int64_t>(c));
}

std::string quarter_of(int64_t unix_ms) {
  int hour = 0;
  const auto ymd = civil(unix_ms, hour);
  char buf[48];
  std::snprintf(buf, sizeof buf, "%04dQ%u", static_cast<int>(ymd.year()),
                (static_cast<unsigned>(ymd.month()) - 1) / 3 + 1);
  return buf;
}

std::string hour_of(int64_t unix_ms) {
  int hour = 0;
  const auto ymd = civil(unix_ms, hour);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()), hour);
  return buf;
}

bool is_quarter(std::string_view s) {
  return s.size() == 6 && std::all_of(s.begin(), s.begin() + 4, [](char c) { return c >= '0' && c <= '9'; }) &&
         s[4] == 'Q' && s[5] >= '1' && s[5] <= '4';
}

}  // namespace triage::state
