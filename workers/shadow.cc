#include "workers/shadow.h"

#include <filesystem>

namespace triage::workers {

result<void> check_shadow(const classifier::adapter& c, std::string_view path, const classifier::adapter& live,
                          std::string_view live_path) {
  const std::string where = "shadow adapter " + std::string(path) + ": ";
  const std::string live_name = std::string(live_path) + " ('" + live.name + "')";
  if (c.base_fingerprint != live.base_fingerprint) {
    return make_error(classifier::errc::adapter_mismatch,
                      where + "trained on base model '" + c.base_model_name + "' (fingerprint " +
                          c.base_fingerprint.substr(0, 12) + "), the live adapter " + live_name + " on '" +
                          live.base_model_name + "' (fingerprint " + live.base_fingerprint.substr(0, 12) + ")");
  }
  if (c.taxonomy_sha256 != live.taxonomy_sha256 || c.categories != live.categories) {
    return make_error(classifier::errc::adapter_mismatch,
                      where + "taxonomy " + c.taxonomy_sha256.substr(0, 12) + " (" +
                          std::to_string(c.categories.size()) + " categories) differs from the live adapter " +
                          live_name + "'s " + live.taxonomy_sha256.substr(0, 12) + " (" +
                          std::to_string(live.categories.size()) + " categories)");
  }
  if (c.intent_head.dim() != live.intent_head.dim()) {
    return make_error(classifier::errc::adapter_mismatch,
                      where + "head expects " + std::to_string(c.intent_head.dim()) + " features, the live adapter " +
                          live_name + "'s " + std::to_string(live.intent_head.dim()));
  }
  return success();
}

result<classifier::adapter> load_shadow_adapter(const std::string& path, const classifier::adapter& live,
                                                std::string_view live_path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return make_error(classifier::errc::bad_adapter, "shadow adapter " + path + ": no such file");
  }
  auto a = classifier::load_adapter(path);
  if (!a) {
    const auto& m = a.error().message;
    return make_error(classifier::errc::bad_adapter,
                      m.find(path) != std::string::npos ? m : "shadow adapter " + path + ": " + m);
  }
  if (auto ok = check_shadow(a.value(), path, live, live_path); !ok) return ok.error();
  return std::move(a.value());
}

bool same_features(const classifier::adapter& a, const classifier::adapter& b) {
  return a.prompt_template == b.prompt_template && a.max_tokens == b.max_tokens && a.layer == b.layer &&
         a.pooling == b.pooling;
}

}  // namespace triage::workers
