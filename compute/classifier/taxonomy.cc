#include "compute/classifier/taxonomy.h"

#include <openssl/evp.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <set>
#include <sstream>

#include "base/csv.h"

namespace triage::classifier {
namespace {

class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "triage.classifier"; }
  std::string message(int code) const override {
    switch (static_cast<errc>(code)) {
      case errc::bad_taxonomy: return "invalid taxonomy";
      case errc::bad_dataset: return "invalid training data";
      case errc::bad_adapter: return "invalid adapter file";
      case errc::adapter_mismatch: return "adapter does not fit this model or taxonomy";
      case errc::bad_training: return "training failed";
    }
    return "unknown classifier error";
  }
};

}  // namespace

const std::error_category& classifier_category() {
  static const category instance;
  return instance;
}

std::string sha256_hex(std::string_view bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest, &len, EVP_sha256(), nullptr);
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out += hex[digest[i] >> 4];
    out += hex[digest[i] & 15];
  }
  return out;
}

std::optional<int32_t> taxonomy::intent_index(std::string_view intent) const {
  auto it = std::find(intents.begin(), intents.end(), intent);
  if (it == intents.end()) return std::nullopt;
  return static_cast<int32_t>(it - intents.begin());
}

std::optional<int32_t> taxonomy::category_index(std::string_view cat) const {
  auto it = std::find(categories.begin(), categories.end(), cat);
  if (it == categories.end()) return std::nullopt;
  return static_cast<int32_t>(it - categories.begin());
}

result<taxonomy> parse_taxonomy(std::string_view csv_text, std::string_view source) {
  auto table = parse_csv(csv_text, source);
  if (!table) return make_error(errc::bad_taxonomy, table.error().message);
  const auto& t = table.value();
  auto ci = t.column("intent"), cc = t.column("category"), cu = t.column("urgency");
  for (auto* c : {&ci, &cc, &cu}) {
    if (!*c) return make_error(errc::bad_taxonomy, c->error().message);
  }
  taxonomy tax;
  std::vector<std::string> canonical;
  for (size_t r = 0; r < t.rows.size(); ++r) {
    const auto& row = t.rows[r];
    const std::string at = t.source + ":" + std::to_string(t.lines[r]) + ": ";
    const std::string& intent = row[ci.value()];
    const std::string& cat = row[cc.value()];
    const std::string& urg = row[cu.value()];
    if (intent.empty() || cat.empty()) {
      return make_error(errc::bad_taxonomy, at + "empty intent or category");
    }
    if (tax.intent_index(intent)) {
      return make_error(errc::bad_taxonomy, at + "intent '" + intent + "' listed twice");
    }
    int u = 0;
    auto [p, ec] = std::from_chars(urg.data(), urg.data() + urg.size(), u);
    if (ec != std::errc() || p != urg.data() + urg.size() || u < 1 || u > 3) {
      return make_error(errc::bad_taxonomy,
                        at + "urgency of '" + intent + "' must be 1, 2 or 3, got '" + urg + "'");
    }
    auto c = tax.category_index(cat);
    if (!c) {
      tax.categories.push_back(cat);
      c = static_cast<int32_t>(tax.categories.size() - 1);
    }
    tax.intents.push_back(intent);
    tax.intent_category.push_back(*c);
    tax.intent_urgency.push_back(u);
    canonical.push_back(intent + "," + cat + "," + urg);
  }
  if (tax.intents.size() < 2) {
    return make_error(errc::bad_taxonomy, t.source + ": needs at least two intents");
  }
  // Row order and line endings do not change what the taxonomy means, so they
  // do not change its hash either.
  std::sort(canonical.begin(), canonical.end());
  std::string joined;
  for (const auto& line : canonical) joined += line + "\n";
  tax.sha256 = sha256_hex(joined);
  return tax;
}

result<taxonomy> load_taxonomy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(errc::bad_taxonomy, path + ": cannot open");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_taxonomy(ss.str(), path);
}

}  // namespace triage::classifier
