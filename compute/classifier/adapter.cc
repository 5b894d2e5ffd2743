#include "compute/classifier/adapter.h"

#include <cmath>
#include <cstring>

#include "compute/gguf/writer.h"

namespace triage::classifier {
namespace {

std::span<const std::byte> as_bytes(const std::vector<float>& v) {
  return std::as_bytes(std::span<const float>(v));
}

// Reads helpers that turn a gguf error into a bad_adapter error naming the file.
class fields {
 public:
  explicit fields(const gguf::reader& r) : r_(r) {}

  template <class T>
  result<T> scalar(const std::string& key) const {
    auto v = r_.get<T>(key);
    if (!v) return make_error(errc::bad_adapter, v.error().message);
    return v.value();
  }
  result<std::string> string(const std::string& key) const {
    auto v = r_.get_string(key);
    if (!v) return make_error(errc::bad_adapter, v.error().message);
    return std::string(v.value());
  }
  result<std::vector<std::string>> strings(const std::string& key) const {
    auto v = r_.get_string_array(key);
    if (!v) return make_error(errc::bad_adapter, v.error().message);
    return std::vector<std::string>(v.value().begin(), v.value().end());
  }
  template <class T>
  result<std::vector<T>> array(const std::string& key) const {
    auto v = r_.get_array<T>(key);
    if (!v) return make_error(errc::bad_adapter, v.error().message);
    return v.value();
  }
  // An F32 tensor with exactly `dims` (ne0 first).
  result<std::vector<float>> tensor(const std::string& name, std::vector<uint64_t> dims) const {
    auto t = r_.find_tensor(name);
    if (!t) return make_error(errc::bad_adapter, t.error().message);
    const auto& info = t.value();
    std::vector<uint64_t> have(info.dims().begin(), info.dims().end());
    if (info.type != gguf::tensor_type::f32 || have != dims) {
      std::string want, got;
      for (auto d : dims) want += (want.empty() ? "" : "x") + std::to_string(d);
      for (auto d : have) got += (got.empty() ? "" : "x") + std::to_string(d);
      return make_error(errc::bad_adapter, r_.name() + ": tensor '" + name + "' is " +
                                               std::string(gguf::type_name(info.type)) + " " +
                                               got + ", expected f32 " + want);
    }
    std::vector<float> out(info.n_elements);
    std::memcpy(out.data(), info.data.data(), info.n_bytes);
    return out;
  }

 private:
  const gguf::reader& r_;
};

// Tensor name prefix of ensemble member k: "head." for the first (the
// version-1 names), "head.<k>." for the others.
std::string member_prefix(int k) { return k == 0 ? "head." : "head." + std::to_string(k) + "."; }

#define TRIAGE_TRY_ASSIGN(lhs, expr)      \
  do {                                    \
    auto _r = (expr);                     \
    if (!_r) return _r.error();           \
    lhs = std::move(_r.value());          \
  } while (0)

}  // namespace

result<void> save_adapter(const adapter& a, const std::string& path) {
  using gguf::value;
  gguf::writer w;
  w.set("general.architecture", value::string("triage-adapter"));
  w.set("general.name", value::string(a.name));
  w.set("triage.format_version",
        value::u32(a.intent_head.members() > 1 ? adapter_format_version : 1u));
  w.set("triage.created_by", value::string(a.created_by));
  w.set("triage.base_model.name", value::string(a.base_model_name));
  w.set("triage.base_model.fingerprint", value::string(a.base_fingerprint));
  w.set("triage.taxonomy.sha256", value::string(a.taxonomy_sha256));
  w.set("triage.labels.intents", value::string_array(a.intents));
  w.set("triage.labels.categories", value::string_array(a.categories));
  w.set("triage.labels.intent_category", value::i32_array(a.intent_category));
  w.set("triage.labels.intent_urgency", value::i32_array(a.intent_urgency));
  w.set("triage.features.layer", value::i32(a.layer));
  w.set("triage.features.pooling", value::string(a.pooling));
  w.set("triage.features.prompt_template", value::string(a.prompt_template));
  w.set("triage.features.max_tokens", value::i32(a.max_tokens));
  w.set("triage.calibration.temperature", value::f32(a.temperature));
  w.set("triage.routing.threshold", value::f32(a.threshold));
  w.set("triage.routing.target_accuracy", value::f32(a.target_accuracy));
  w.set("triage.baseline.category_share", value::f32_array(a.baseline_category_share));
  w.set("triage.baseline.confidence_hist", value::f32_array(a.baseline_confidence_hist));
  const head& e = a.intent_head;
  w.set("triage.head.hidden", value::i32(e.hidden()));
  // Version 2 only where it matters (an ensemble), so single-head adapters
  // stay readable by version-1 builds, byte for byte as before.
  if (e.members() > 1) w.set("triage.head.members", value::i32(e.members()));
  const auto d = static_cast<uint64_t>(e.dim()), c = static_cast<uint64_t>(e.n_classes());
  for (int k = 0; k < e.members(); ++k) {
    const head& h = e.member(k);
    const std::string p = member_prefix(k);
    w.add_tensor(p + "norm.mean", gguf::tensor_type::f32, {d}, as_bytes(h.mean()));
    w.add_tensor(p + "norm.inv_std", gguf::tensor_type::f32, {d}, as_bytes(h.inv_std()));
    uint64_t width = d;
    if (h.hidden() > 0) {
      width = static_cast<uint64_t>(h.hidden());
      w.add_tensor(p + "hidden.weight", gguf::tensor_type::f32, {d, width}, as_bytes(h.w1()));
      w.add_tensor(p + "hidden.bias", gguf::tensor_type::f32, {width}, as_bytes(h.b1()));
    }
    w.add_tensor(p + "output.weight", gguf::tensor_type::f32, {width, c}, as_bytes(h.w2()));
    w.add_tensor(p + "output.bias", gguf::tensor_type::f32, {c}, as_bytes(h.b2()));
  }
  auto ok = w.write_file(path);
  if (!ok) return make_error(errc::bad_adapter, ok.error().message);
  return success();
}

result<adapter> parse_adapter(const gguf::reader& file) {
  const std::string src = file.name();
  fields f(file);
  std::string arch;
  TRIAGE_TRY_ASSIGN(arch, f.string("general.architecture"));
  if (arch != "triage-adapter") {
    return make_error(errc::bad_adapter, src + ": general.architecture is '" + arch +
                                             "', not 'triage-adapter': not a classifier adapter");
  }
  uint32_t version = 0;
  TRIAGE_TRY_ASSIGN(version, f.scalar<uint32_t>("triage.format_version"));
  if (version > adapter_format_version) {
    return make_error(errc::bad_adapter, src + ": triage.format_version " + std::to_string(version) +
                                             " is newer than this build reads (" +
                                             std::to_string(adapter_format_version) + ")");
  }
  adapter a;
  TRIAGE_TRY_ASSIGN(a.name, f.string("general.name"));
  TRIAGE_TRY_ASSIGN(a.created_by, f.string("triage.created_by"));
  TRIAGE_TRY_ASSIGN(a.base_model_name, f.string("triage.base_model.name"));
  TRIAGE_TRY_ASSIGN(a.base_fingerprint, f.string("triage.base_model.fingerprint"));
  TRIAGE_TRY_ASSIGN(a.taxonomy_sha256, f.string("triage.taxonomy.sha256"));
  TRIAGE_TRY_ASSIGN(a.intents, f.strings("triage.labels.intents"));
  TRIAGE_TRY_ASSIGN(a.categories, f.strings("triage.labels.categories"));
  TRIAGE_TRY_ASSIGN(a.intent_category, f.array<int32_t>("triage.labels.intent_category"));
  TRIAGE_TRY_ASSIGN(a.intent_urgency, f.array<int32_t>("triage.labels.intent_urgency"));
  TRIAGE_TRY_ASSIGN(a.layer, f.scalar<int32_t>("triage.features.layer"));
  TRIAGE_TRY_ASSIGN(a.pooling, f.string("triage.features.pooling"));
  TRIAGE_TRY_ASSIGN(a.prompt_template, f.string("triage.features.prompt_template"));
  TRIAGE_TRY_ASSIGN(a.max_tokens, f.scalar<int32_t>("triage.features.max_tokens"));
  TRIAGE_TRY_ASSIGN(a.temperature, f.scalar<float>("triage.calibration.temperature"));
  TRIAGE_TRY_ASSIGN(a.threshold, f.scalar<float>("triage.routing.threshold"));
  TRIAGE_TRY_ASSIGN(a.target_accuracy, f.scalar<float>("triage.routing.target_accuracy"));
  TRIAGE_TRY_ASSIGN(a.baseline_category_share, f.array<float>("triage.baseline.category_share"));
  TRIAGE_TRY_ASSIGN(a.baseline_confidence_hist, f.array<float>("triage.baseline.confidence_hist"));

  auto bad = [&](const std::string& what) { return make_error(errc::bad_adapter, src + ": " + what); };
  const size_t n = a.intents.size();
  if (n < 2) return bad("triage.labels.intents: needs at least two labels");
  if (a.intent_category.size() != n || a.intent_urgency.size() != n) {
    return bad("triage.labels.intent_category/intent_urgency: " +
               std::to_string(a.intent_category.size()) + "/" +
               std::to_string(a.intent_urgency.size()) + " entries for " + std::to_string(n) +
               " intents");
  }
  for (size_t i = 0; i < n; ++i) {
    if (a.intent_category[i] < 0 || static_cast<size_t>(a.intent_category[i]) >= a.categories.size()) {
      return bad("triage.labels.intent_category[" + std::to_string(i) + "] = " +
                 std::to_string(a.intent_category[i]) + " is not a category index");
    }
    if (a.intent_urgency[i] < 1 || a.intent_urgency[i] > 3) {
      return bad("triage.labels.intent_urgency[" + std::to_string(i) + "] must be 1..3");
    }
  }
  if (a.pooling != "mean" && a.pooling != "last") {
    return bad("triage.features.pooling is '" + a.pooling + "', expected 'mean' or 'last'");
  }
  if (!(a.temperature > 0.0f) || !std::isfinite(a.temperature)) {
    return bad("triage.calibration.temperature must be a positive number");
  }
  if (!(a.threshold >= 0.0f && a.threshold <= 1.0f)) {
    return bad("triage.routing.threshold must be in [0, 1]");
  }
  if (a.max_tokens < 8) return bad("triage.features.max_tokens must be at least 8");

  int32_t hidden = 0;
  TRIAGE_TRY_ASSIGN(hidden, f.scalar<int32_t>("triage.head.hidden"));
  int32_t n_members = 1;
  if (version >= 2) {
    // Absent: one member. Present with another type: an error naming the key.
    if (auto m = file.get<int32_t>("triage.head.members"); m) {
      n_members = m.value();
    } else if (m.error().code != gguf::errc::not_found) {
      return make_error(errc::bad_adapter, m.error().message);
    }
  }
  if (n_members < 1 || n_members > 64) return bad("triage.head.members must be 1..64");
  auto mean_t = file.find_tensor("head.norm.mean");
  if (!mean_t) return make_error(errc::bad_adapter, mean_t.error().message);
  const uint64_t d = mean_t.value().ne[0];
  if (hidden < 0 || hidden > 65536) return bad("triage.head.hidden out of range");
  const uint64_t width = hidden > 0 ? static_cast<uint64_t>(hidden) : d;
  std::vector<head> members;
  for (int k = 0; k < n_members; ++k) {
    const std::string p = member_prefix(k);
    std::vector<float> mean, inv_std, w1, b1, w2, b2;
    TRIAGE_TRY_ASSIGN(mean, f.tensor(p + "norm.mean", {d}));
    TRIAGE_TRY_ASSIGN(inv_std, f.tensor(p + "norm.inv_std", {d}));
    if (hidden > 0) {
      TRIAGE_TRY_ASSIGN(w1, f.tensor(p + "hidden.weight", {d, width}));
      TRIAGE_TRY_ASSIGN(b1, f.tensor(p + "hidden.bias", {width}));
    }
    TRIAGE_TRY_ASSIGN(w2, f.tensor(p + "output.weight", {width, n}));
    TRIAGE_TRY_ASSIGN(b2, f.tensor(p + "output.bias", {n}));
    members.emplace_back(static_cast<int>(d), hidden, static_cast<int>(n), std::move(mean),
                         std::move(inv_std), std::move(w1), std::move(b1), std::move(w2),
                         std::move(b2));
  }
  a.intent_head = head::ensemble(std::move(members));
  return a;
}

result<adapter> load_adapter(const std::string& path) {
  auto file = gguf::reader::open(path);
  if (!file) return make_error(errc::bad_adapter, file.error().message);
  return parse_adapter(file.value());
}

std::string model_fingerprint(const gguf::reader& model) {
  const auto bytes = model.bytes();
  std::string material(reinterpret_cast<const char*>(bytes.data()),
                       std::min<uint64_t>(model.data_offset(), bytes.size()));
  for (const auto& t : model.tensors()) {
    const auto n = std::min<size_t>(64, t.data.size());
    material.append(reinterpret_cast<const char*>(t.data.data()), n);
    material.append(reinterpret_cast<const char*>(t.data.data() + t.data.size() - n), n);
  }
  return sha256_hex(material);
}

result<void> check_compatible(const adapter& a, std::string_view base_fingerprint,
                              const taxonomy& tax) {
  if (a.base_fingerprint != base_fingerprint) {
    return make_error(errc::adapter_mismatch,
                      "adapter '" + a.name + "' was trained on base model '" + a.base_model_name +
                          "' (fingerprint " + a.base_fingerprint.substr(0, 12) +
                          "), not on this model (fingerprint " +
                          std::string(base_fingerprint.substr(0, 12)) + ")");
  }
  if (a.taxonomy_sha256 != tax.sha256) {
    return make_error(errc::adapter_mismatch,
                      "adapter '" + a.name + "' was trained for taxonomy " +
                          a.taxonomy_sha256.substr(0, 12) + ", not for this one (" +
                          tax.sha256.substr(0, 12) + ")");
  }
  return success();
}

}  // namespace triage::classifier
