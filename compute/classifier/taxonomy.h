// taxonomy.h: a profile's label set: each intent maps to the routing fields a
// ticket gets, `category` (its queue) and `urgency` (1-3). Loaded from the
// profile's taxonomy.csv (intent,category,urgency).
//
//   auto tax = triage::classifier::load_taxonomy("data/banking77/taxonomy.csv");
//   if (!tax) return tax.error();
//   const auto& t = tax.value();
//   int intent = t.intent_index("card_arrival").value();
//   std::string_view queue = t.categories[t.intent_category[intent]];
//
// The hash (SHA-256 of the canonical rows, sorted) goes into adapters, so an
// adapter trained for another taxonomy is refused at load.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "base/result.h"

namespace triage::classifier {

enum class errc {
  bad_taxonomy = 1,  // taxonomy file unreadable or inconsistent
  bad_dataset,       // training data unreadable or labels not in the taxonomy
  bad_adapter,       // adapter file malformed
  adapter_mismatch,  // adapter built for another base model or taxonomy
  bad_training,      // training cannot proceed (too few examples, ...)
};
const std::error_category& classifier_category();
inline std::error_code make_error_code(errc e) { return {static_cast<int>(e), classifier_category()}; }

struct taxonomy {
  std::vector<std::string> intents;         // in file order
  std::vector<std::string> categories;      // in order of first appearance
  std::vector<int32_t> intent_category;     // (n_intents) index into categories
  std::vector<int32_t> intent_urgency;      // (n_intents) 1..3
  std::string sha256;                       // hex, of the sorted canonical rows

  std::optional<int32_t> intent_index(std::string_view intent) const;
  std::optional<int32_t> category_index(std::string_view category) const;
};

result<taxonomy> parse_taxonomy(std::string_view csv_text, std::string_view source);
result<taxonomy> load_taxonomy(const std::string& path);

// Lower-case hex SHA-256 of `bytes`.
std::string sha256_hex(std::string_view bytes);

}  // namespace triage::classifier

template <>
struct std::is_error_code_enum<triage::classifier::errc> : std::true_type {};
