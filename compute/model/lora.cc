#include "compute/model/lora.h"

#include <cmath>
#include <map>
#include <memory>
#include <stdexcept>
#include <string_view>
#include <unordered_map>

#include "compute/cpu/dequantize.h"
#include "compute/cpu/half.h"
#include "compute/cpu/thread_pool.h"
#include "compute/model/config.h"
#include "compute/model/errc.h"
#include "compute/model/weights.h"

namespace triage::model {

namespace {

constexpr std::string_view suffix_a = ".lora_a";
constexpr std::string_view suffix_b = ".lora_b";

std::string shape_string(const gguf::tensor_info& t) {
  std::string s = "(";
  for (uint32_t i = 0; i < t.n_dims; ++i) {
    if (i > 0) s += ", ";
    s += std::to_string(t.ne[i]);
  }
  return s + ")";
}

std::string in_quotes(std::string_view s) {
  std::string out(1, '\'');
  out.append(s);
  out.push_back('\'');
  return out;
}

// A required string key with an expected value.
result<void> expect_string(const gguf::reader& g, std::string_view key, std::string_view want,
                           std::string_view what) {
  if (!g.contains(key)) {
    return make_error(errc::missing_key, g.name() + ": " + in_quotes(key) + " is missing, " +
                                             std::string(what));
  }
  auto v = g.get_string(key);
  if (!v) {
    return make_error(errc::bad_key, g.name() + ": " + in_quotes(key) + " is not a string, " +
                                         std::string(what));
  }
  if (v.value() != want) {
    return make_error(errc::bad_key, g.name() + ": " + in_quotes(key) + " is " +
                                         in_quotes(v.value()) + ", expected " + in_quotes(want) +
                                         " (" + std::string(what) + ")");
  }
  return success();
}

// The matrix of `w` that the base tensor `name` was loaded into, or null.
cpu::matrix_view* matrix_of(weights& w, const config& c, std::string_view name) {
  if (name == "output.weight") return w.tied_output ? nullptr : &w.output;
  if (!name.starts_with("blk.")) return nullptr;
  const std::string_view rest = name.substr(4);
  const size_t dot = rest.find('.');
  if (dot == std::string_view::npos || dot == 0) return nullptr;
  int layer = 0;
  for (char ch : rest.substr(0, dot)) {
    if (ch < '0' || ch > '9' || layer > c.n_layers) return nullptr;
    layer = layer * 10 + (ch - '0');
  }
  if (layer >= c.n_layers || layer >= static_cast<int>(w.layers.size())) return nullptr;
  layer_weights& l = w.layers[static_cast<size_t>(layer)];
  const std::string_view t = rest.substr(dot + 1);
  if (t == "attn_q.weight") return &l.wq;
  if (t == "attn_k.weight") return &l.wk;
  if (t == "attn_v.weight") return &l.wv;
  if (t == "attn_output.weight") return &l.wo;
  if (t == "ffn_gate.weight") return &l.w_gate;
  if (t == "ffn_up.weight") return &l.w_up;
  if (t == "ffn_down.weight") return &l.w_down;
  return nullptr;
}

// Rows of a 2-D tensor dequantized to floats, (ne1, ne0) row-major.
std::vector<float> to_floats(const gguf::tensor_info& t) {
  const int64_t cols = static_cast<int64_t>(t.ne[0]);
  const int64_t rows = static_cast<int64_t>(t.ne[1]);
  std::vector<float> out(static_cast<size_t>(rows * cols));
  const uint64_t rb = t.row_bytes();
  for (int64_t r = 0; r < rows; ++r) {
    cpu::dequantize_row(t.type, t.data.data() + static_cast<size_t>(r) * rb,
                        out.data() + r * cols, cols);
  }
  return out;
}

// Checks one adapter against the model; returns the target matrix of each pair.
result<std::vector<cpu::matrix_view*>> check_against(const lora_adapter& a,
                                                     const gguf::reader& base,
                                                     const config& c, weights& w) {
  const std::string& an = a.file.name();
  if (a.architecture != c.arch_name) {
    return make_error(errc::bad_key, an + ": 'general.architecture' is " +
                                         in_quotes(a.architecture) + " but the model " +
                                         base.name() + " is " + in_quotes(c.arch_name) +
                                         " (an adapter for another base model)");
  }
  std::vector<cpu::matrix_view*> targets;
  for (const auto& p : a.pairs) {
    if (!base.has_tensor(p.target)) {
      return make_error(errc::missing_tensor,
                        an + ": LoRA target " + in_quotes(p.target) + " does not exist in the model " +
                            base.name() + " (an adapter for another base model?)");
    }
    cpu::matrix_view* m = matrix_of(w, c, p.target);
    if (m == nullptr) {
      return make_error(errc::unsupported_type,
                        an + ": LoRA target " + in_quotes(p.target) +
                            " is not supported (only the matrices of the blocks and an untied "
                            "output.weight take an adapter)");
    }
    const auto t = base.find_tensor(p.target).value();
    if (p.a.ne[0] != t.ne[0]) {
      return make_error(errc::bad_shape,
                        an + ": tensor " + in_quotes(p.target + std::string(suffix_a)) +
                            " has shape " + shape_string(p.a) + ", expected (" +
                            std::to_string(t.ne[0]) + ", rank) [ne0, ne1] for " +
                            in_quotes(p.target) + " of shape " + shape_string(t) +
                            " (an adapter for another base model?)");
    }
    if (p.b.ne[1] != t.ne[1]) {
      return make_error(errc::bad_shape,
                        an + ": tensor " + in_quotes(p.target + std::string(suffix_b)) +
                            " has shape " + shape_string(p.b) + ", expected (rank, " +
                            std::to_string(t.ne[1]) + ") [ne0, ne1] for " + in_quotes(p.target) +
                            " of shape " + shape_string(t) +
                            " (an adapter for another base model?)");
    }
    targets.push_back(m);
  }
  return targets;
}

}  // namespace

result<lora_adapter> lora_adapter::open(const std::string& path) {
  auto r = gguf::reader::open(path);
  if (!r) return r.error();
  lora_adapter a{.file = std::move(r.value())};
  const gguf::reader& g = a.file;
  const std::string& n = g.name();

  auto ok = expect_string(g, "general.type", "adapter", "not a LoRA adapter");
  if (!ok) return ok.error();
  ok = expect_string(g, "adapter.type", "lora", "only LoRA adapters are supported");
  if (!ok) return ok.error();
  auto arch = g.architecture();
  if (!arch) {
    return make_error(g.contains("general.architecture") ? errc::bad_key : errc::missing_key,
                      n + ": 'general.architecture' is missing or not a string");
  }
  a.architecture = std::string(arch.value());
  if (g.contains("adapter.lora.alpha")) {
    auto alpha = g.get_f32("adapter.lora.alpha");
    if (!alpha || !std::isfinite(alpha.value())) {
      return make_error(errc::bad_key,
                        n + ": 'adapter.lora.alpha' must be a finite F32 (llama.cpp reads it so)");
    }
    a.alpha = alpha.value();
  }

  // Pair the halves by target name, keeping the file order of the first half.
  std::map<std::string, std::pair<const gguf::tensor_info*, const gguf::tensor_info*>> halves;
  std::vector<std::string> order;
  for (const auto& t : g.tensors()) {
    const std::string_view name = t.name;
    const bool is_a = name.ends_with(suffix_a);
    const bool is_b = name.ends_with(suffix_b);
    if (!is_a && !is_b) {
      if (name.ends_with("_norm.weight")) continue;  // llama.cpp ignores these too
      return make_error(errc::bad_key,
                        n + ": tensor " + in_quotes(name) +
                            " is not a LoRA tensor (names end in .lora_a or .lora_b)");
    }
    const std::string target(name.substr(0, name.size() - suffix_a.size()));
    if (t.n_dims != 2) {
      return make_error(errc::bad_shape, n + ": tensor " + in_quotes(name) + " has shape " +
                                             shape_string(t) + ", expected 2 dimensions");
    }
    if (!cpu::can_dequantize(t.type)) {
      return make_error(errc::unsupported_type,
                        n + ": tensor " + in_quotes(name) + " has type " +
                            std::string(gguf::type_name(t.type)) +
                            ", which the CPU kernels do not read");
    }
    auto [it, fresh] = halves.try_emplace(target, nullptr, nullptr);
    if (fresh) order.push_back(target);
    (is_a ? it->second.first : it->second.second) = &t;
  }
  for (const auto& target : order) {
    const auto [ta, tb] = halves.at(target);
    if (ta == nullptr || tb == nullptr) {
      return make_error(errc::missing_tensor,
                        n + ": tensor " + in_quotes(target + std::string(ta ? suffix_b : suffix_a)) +
                            " is missing (" +
                            in_quotes(target + std::string(ta ? suffix_a : suffix_b)) +
                            " has no other half)");
    }
    if (ta->ne[1] != tb->ne[0] || ta->ne[1] == 0) {
      return make_error(errc::bad_shape,
                        n + ": " + in_quotes(target + std::string(suffix_a)) + " of shape " +
                            shape_string(*ta) + " and " +
                            in_quotes(target + std::string(suffix_b)) + " of shape " +
                            shape_string(*tb) +
                            " disagree on the rank (lora_a ne1 must equal lora_b ne0, > 0)");
    }
    a.pairs.push_back({target, *ta, *tb, static_cast<int64_t>(tb->ne[0])});
  }
  return a;
}

result<void> merge_loras(const gguf::reader& base, const config& c, weights& w,
                         std::span<const lora_spec> loras, cpu::thread_pool* pool,
                         gguf::tensor_type merged_type) {
  if (merged_type != gguf::tensor_type::f32 && merged_type != gguf::tensor_type::f16) {
    throw std::invalid_argument("merge_loras: merged_type must be F32 or F16");
  }
  // Open and check every adapter before changing anything.
  std::vector<lora_adapter> adapters;
  std::vector<std::vector<cpu::matrix_view*>> targets;
  for (const auto& spec : loras) {
    if (!std::isfinite(spec.scale)) {
      return make_error(errc::bad_key, spec.path + ": the LoRA scale " +
                                           std::to_string(spec.scale) + " is not finite");
    }
    auto a = lora_adapter::open(spec.path);
    if (!a) return a.error();
    auto t = check_against(a.value(), base, c, w);
    if (!t) return t.error();
    adapters.push_back(std::move(a.value()));
    targets.push_back(std::move(t.value()));
  }

  // Each target once, with every (adapter, pair) that updates it, in order.
  struct update {
    const lora_adapter::pair* p;
    float s;  // llama.cpp: scale * alpha / rank, or scale alone when alpha is 0
  };
  std::vector<std::pair<cpu::matrix_view*, std::vector<update>>> plan;
  std::unordered_map<const cpu::matrix_view*, size_t> index;
  for (size_t k = 0; k < adapters.size(); ++k) {
    const float scale = loras[k].scale;
    if (scale == 0.0f) continue;  // checked above, changes nothing
    const lora_adapter& a = adapters[k];
    for (size_t i = 0; i < a.pairs.size(); ++i) {
      cpu::matrix_view* m = targets[k][i];
      auto [it, fresh] = index.try_emplace(m, plan.size());
      if (fresh) plan.push_back({m, {}});
      const float s = a.alpha != 0.0f ? scale * a.alpha / static_cast<float>(a.pairs[i].rank) : scale;
      plan[it->second].second.push_back({&a.pairs[i], s});
    }
  }

  const auto run = [&](int64_t n, auto&& fn) {
    if (pool != nullptr) pool->parallel_for(n, 16, fn);
    else fn(int64_t{0}, n);
  };
  for (auto& [m, updates] : plan) {
    const int64_t rows = m->rows, cols = m->cols;
    auto merged = std::make_unique<float[]>(static_cast<size_t>(rows * cols));
    float* dst = merged.get();
    const cpu::matrix_view src = *m;
    run(rows, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) cpu::dequantize_row(src.type, src.row(r), dst + r * cols, cols);
    });
    for (const auto& u : updates) {
      const int64_t rank = u.p->rank;
      const std::vector<float> fa = to_floats(u.p->a);  // (rank, cols)
      const std::vector<float> fb = to_floats(u.p->b);  // (rows, rank)
      run(rows, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
          float* row = dst + r * cols;
          for (int64_t j = 0; j < rank; ++j) {
            const float coef = u.s * fb[static_cast<size_t>(r * rank + j)];
            const float* arow = fa.data() + j * cols;
            for (int64_t x = 0; x < cols; ++x) row[x] += coef * arow[x];
          }
        }
      });
    }
    if (merged_type == gguf::tensor_type::f16) {
      auto half = std::make_unique<uint16_t[]>(static_cast<size_t>(rows * cols));
      uint16_t* h = half.get();
      run(rows, [&](int64_t r0, int64_t r1) {
        for (int64_t i = r0 * cols; i < r1 * cols; ++i) h[i] = cpu::fp32_to_fp16(dst[i]);
      });
      *m = cpu::matrix_view{gguf::tensor_type::f16, rows, cols,
                            static_cast<size_t>(cols) * sizeof(uint16_t),
                            reinterpret_cast<const std::byte*>(h)};
      w.converted_f16.push_back(std::move(half));
    } else {
      *m = cpu::matrix_view{gguf::tensor_type::f32, rows, cols,
                            static_cast<size_t>(cols) * sizeof(float),
                            reinterpret_cast<const std::byte*>(dst)};
      w.converted.push_back(std::move(merged));
    }
  }
  return success();
}

}  // namespace triage::model
