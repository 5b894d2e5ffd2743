#include "compute/vulkan/ops.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>

#include "compute/cpu/ops.h"
#include "compute/shaders/spirv.h"

namespace triage::vulkan {

namespace {

constexpr uint32_t group_size = 64;  // 1-D workgroups of every op

// Checks that `b` holds at least `bytes`.
result<void> check_size(const buffer& b, uint64_t bytes, const char* op, const char* what) {
  if (b.size() < bytes) {
    return make_error(errc::invalid_argument, std::string(op) + ": buffer '" + what + "' has " +
                                                  std::to_string(b.size()) + " bytes, needs " +
                                                  std::to_string(bytes));
  }
  return success();
}

template <class T>
std::span<const std::byte> bytes_of(const T& push) {
  return std::as_bytes(std::span(&push, 1));
}

std::string type_suffix(gguf::tensor_type t) {
  std::string name(gguf::type_name(t));
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return name;
}

}  // namespace

bool can_upload(gguf::tensor_type type) {
  using gguf::tensor_type;
  switch (type) {
    case tensor_type::f32:
    case tensor_type::f16:
    case tensor_type::bf16:
    case tensor_type::q8_0:
    case tensor_type::q4_0:
    case tensor_type::q4_1:
    case tensor_type::q4_k:
    case tensor_type::q6_k:
      return true;
    default:
      return false;
  }
}

result<weight_matrix> upload_matrix(context& ctx, const cpu::matrix_view& w,
                                    uint64_t max_slice_bytes) {
  const std::string what = "weight matrix (" + std::to_string(w.rows) + ", " +
                           std::to_string(w.cols) + ") of type " +
                           std::string(gguf::type_name(w.type));
  if (!can_upload(w.type)) {
    return make_error(errc::invalid_argument, what + ": no shader reads this type");
  }
  const uint64_t limit = max_slice_bytes == 0
                             ? ctx.device().max_storage_buffer_range
                             : std::min<uint64_t>(max_slice_bytes,
                                                  ctx.device().max_storage_buffer_range);
  if (w.rows <= 0 || w.cols <= 0 || w.row_bytes == 0 || w.row_bytes > limit ||
      w.rows > UINT32_MAX || w.row_bytes % 2 != 0) {
    return make_error(errc::invalid_argument,
                      what + ": rows of " + std::to_string(w.row_bytes) +
                          " bytes do not fit a storage buffer of " + std::to_string(limit));
  }
  weight_matrix out;
  out.type = w.type;
  out.rows = static_cast<uint32_t>(w.rows);
  out.cols = static_cast<uint32_t>(w.cols);
  out.row_bytes = static_cast<uint32_t>(w.row_bytes);
  // Byte offsets inside a slice are 32-bit in the shaders.
  const uint64_t rows_per_slice =
      std::min<uint64_t>(limit, UINT32_MAX - 3) / w.row_bytes;
  for (uint64_t r0 = 0; r0 < static_cast<uint64_t>(w.rows); r0 += rows_per_slice) {
    const uint64_t rows = std::min<uint64_t>(rows_per_slice, w.rows - r0);
    // Whole 32-bit words: the shaders read words.
    const uint64_t bytes = (rows * w.row_bytes + 3) / 4 * 4;
    auto b = ctx.create_buffer(bytes, memory_use::device);
    result<void> written =
        b ? ctx.write(b.value(), std::span(w.row(static_cast<int64_t>(r0)), rows * w.row_bytes))
          : result<void>(b.error());
    if (!written) {
      error e = written.error();
      e.message = what + ": " + e.message;
      return e;
    }
    out.slices.push_back({std::move(b).value(), static_cast<uint32_t>(r0),
                          static_cast<uint32_t>(rows)});
  }
  return out;
}

result<buffer> upload_floats(context& ctx, std::span<const float> values) {
  auto b = ctx.create_buffer(std::max<size_t>(4, values.size_bytes()), memory_use::device);
  if (!b) return b.error();
  if (auto r = ctx.write(b.value(), std::as_bytes(values)); !r) return r.error();
  return b;
}

std::vector<float> rope_cos_sin(std::span<const int32_t> positions, int n_rot, float freq_base,
                                float freq_scale, std::span<const float> freq_factors) {
  const size_t half = static_cast<size_t>(n_rot / 2);
  std::vector<float> out(positions.size() * half * 2);
  cpu::rope_table table(n_rot, freq_base, freq_scale, freq_factors);
  table.prepare(positions);
  // Rotating the unit vectors (1, 0) gives (cos, sin) exactly
  // (fma(1, c, -(0 * s)) = c, fma(1, s, 0 * c) = s): the CPU's own angles,
  // in this table's layout, without a second copy of its formula.
  for (size_t p = 0; p < positions.size(); ++p) {
    float* row = out.data() + p * half * 2;
    for (size_t i = 0; i < half; ++i) {
      row[2 * i] = 1.0f;
      row[2 * i + 1] = 0.0f;
    }
    table.apply_normal(row, static_cast<int64_t>(p));
  }
  return out;
}

result<const pipeline*> ops::get(const std::string& name, const pipeline_options& options) {
  last_shader_ = name;
  std::string key = name;
  for (uint32_t c : options.workgroup_size) (key += '/') += std::to_string(c);
  for (uint32_t c : options.constants) (key += ':') += std::to_string(c);
  if (auto it = pipelines_.find(key); it != pipelines_.end()) return &it->second;
  const shaders::spirv* shader = shaders::find(name);
  if (shader == nullptr) {
    return make_error(errc::invalid_argument, "shader '" + name + "' is not built in");
  }
  auto p = ctx_->create_pipeline(*shader, options);
  if (!p) return p.error();
  return &pipelines_.emplace(key, std::move(p).value()).first->second;
}

result<void> ops::mul_mat(const weight_matrix& w, const buffer& x, uint32_t m, buffer& y,
                          uint32_t ldx, uint32_t ldy, bool q8_activations) {
  if (m == 0) return success();
  if (ldx == 0) ldx = w.cols;
  if (ldy == 0) ldy = w.rows;
  if (ldx < w.cols || ldy < w.rows) {
    return make_error(errc::invalid_argument, "mul_mat: ldx/ldy smaller than a row");
  }
  if (auto r = check_size(x, (uint64_t{m - 1} * ldx + w.cols) * 4, "mul_mat", "x"); !r) return r;
  if (auto r = check_size(y, (uint64_t{m - 1} * ldy + w.rows) * 4, "mul_mat", "y"); !r) return r;
  // The row kernel when its preconditions hold (always, in the forward
  // pass), the tiled one otherwise or when asked.
  const bool rows_kernel =
      w.cols % 32 == 0 && ldx % 4 == 0 && matmul_kernel_ != matmul_kernel::tiles;
  if (rows_kernel) {
    const uint32_t tm = std::min(m, 8u);
    const bool q8 = q8_activations && cpu::uses_q8(w.type);
    if (q8) {
      // The int8 kernels read whole blocks of the weight's scales: K-quants
      // have k % 256 == 0 by construction.
      q8_kernel kernel = q8_kernel_;
      if (kernel == q8_kernel::automatic) {
        kernel = paths_.integer_dot ? q8_kernel::integer_dot : q8_kernel::float_rounding;
      }
      if (kernel == q8_kernel::integer_dot && !paths_.integer_dot) {
        return make_error(errc::missing_feature,
                          "mul_mat: the integer dot product path is not enabled on '" +
                              ctx_->device().name + "' (paths: " + to_string(paths_) + ")");
      }
      if (kernel != q8_kernel::float_rounding) {
        return mul_mat_integer(w, x, m, y, ldx, ldy, kernel == q8_kernel::integer_dot);
      }
    }
    // Subgroup path: one subgroup per weight row, for few activation rows.
    const bool sg = paths_.subgroup && !q8 && m <= 8;
    const uint32_t sg_size = ctx_->device().subgroup_size;
    const uint32_t wg = sg ? std::max(group_size, sg_size) : group_size;
    const uint32_t rows_per_group = sg ? wg / sg_size : wg;
    const bool f16_storage = !sg && paths_.float16 && w.type == gguf::tensor_type::f16;
    const std::string name = sg ? "mul_mat_sg_" + type_suffix(w.type)
                             : f16_storage ? std::string("mul_mat_f16_storage")
                                           : "mul_mat_" + type_suffix(w.type);
    pipeline_options options{.binding_count = 3,
                             .push_constant_size = 28,
                             .workgroup_size = {wg, 1, 1},
                             .constants = {tm, q8 ? 1u : 0u}};
    if (sg) options.constants = {tm};
    auto p = get(name, options);
    if (!p) return p.error();
    for (const auto& s : w.slices) {
      struct {
        uint32_t n_rows, k, m, row_bytes, ldx, ldy, y_col0;
      } push{s.rows, w.cols, m, w.row_bytes, ldx, ldy, s.row0};
      const buffer* bindings[] = {&s.data, &x, &y};
      if (auto r = ctx_->record(*p.value(), bindings, bytes_of(push),
                                {div_ceil(s.rows, rows_per_group), div_ceil(m, tm), 1});
          !r) {
        return r;
      }
    }
    return success();
  }
  // Few activation rows (decoding, logits): tall tiles; else square ones.
  const uint32_t bn = m <= 8 ? 64 : 32, bm = m <= 8 ? 8 : 32;
  auto p = get("mul_mm_" + type_suffix(w.type),
               {.binding_count = 3,
                .push_constant_size = 28,
                .workgroup_size = {group_size, 1, 1},
                .constants = {bn, bm}});
  if (!p) return p.error();
  for (const auto& s : w.slices) {
    struct {
      uint32_t n_rows, k, m, row_bytes, ldx, ldy, y_col0;
    } push{s.rows, w.cols, m, w.row_bytes, ldx, ldy, s.row0};
    const buffer* bindings[] = {&s.data, &x, &y};
    if (auto r = ctx_->record(*p.value(), bindings, bytes_of(push),
                              {div_ceil(s.rows, bn), div_ceil(m, bm), 1});
        !r) {
      return r;
    }
  }
  return success();
}

shader_paths ops::set_paths(const shader_paths& wanted) {
  const shader_paths& enabled = ctx_->device().paths;
  paths_ = {.subgroup = wanted.subgroup && enabled.subgroup,
            .integer_dot = wanted.integer_dot && enabled.integer_dot,
            .float16 = wanted.float16 && enabled.float16};
  return paths_;
}

result<void> ops::mul_mat_integer(const weight_matrix& w, const buffer& x, uint32_t m, buffer& y,
                                  uint32_t ldx, uint32_t ldy, bool dot) {
  // 48 bytes per block of 32 (q8_block.glsl).
  const uint32_t nb = w.cols / 32;
  const uint64_t bytes = uint64_t{m} * nb * 48;
  if (q8_scratch_.size() < bytes) {
    auto b = ctx_->create_buffer(std::max<uint64_t>(bytes, 2 * q8_scratch_.size()));
    if (!b) return b.error();
    if (q8_scratch_.size() > 0) retired_scratch_.push_back(std::move(q8_scratch_));
    q8_scratch_ = std::move(b).value();
  }
  auto quantize = get("quantize_q8", {.binding_count = 2, .push_constant_size = 12});
  if (!quantize) return quantize.error();
  struct {
    uint32_t k, m, ldx;
  } qpush{w.cols, m, ldx};
  const buffer* qbindings[] = {&x, &q8_scratch_};
  if (auto r = ctx_->record(*quantize.value(), qbindings, bytes_of(qpush),
                            {div_ceil(nb, group_size), m, 1});
      !r) {
    return r;
  }
  const uint32_t tm = std::min(m, 8u);
  auto p = get(std::string(dot ? "mul_mat_q8dot_" : "mul_mat_q8int_") + type_suffix(w.type),
               {.binding_count = 3, .push_constant_size = 24, .constants = {tm}});
  if (!p) return p.error();
  for (const auto& s : w.slices) {
    struct {
      uint32_t n_rows, k, m, row_bytes, ldy, y_col0;
    } push{s.rows, w.cols, m, w.row_bytes, ldy, s.row0};
    const buffer* bindings[] = {&s.data, &q8_scratch_, &y};
    if (auto r = ctx_->record(*p.value(), bindings, bytes_of(push),
                              {div_ceil(s.rows, group_size), div_ceil(m, tm), 1});
        !r) {
      return r;
    }
  }
  return success();
}

result<void> ops::get_rows(const weight_matrix& w, const buffer& ids, uint32_t n, buffer& y) {
  if (n == 0) return success();
  if (auto r = check_size(ids, uint64_t{n} * 4, "get_rows", "ids"); !r) return r;
  if (auto r = check_size(y, uint64_t{n} * w.cols * 4, "get_rows", "y"); !r) return r;
  auto p = get("get_rows_" + type_suffix(w.type),
               {.binding_count = 3, .push_constant_size = 20});
  if (!p) return p.error();
  // One dispatch per slice; each writes the rows whose ids fall in it.
  for (const auto& s : w.slices) {
    struct {
      uint32_t cols, n_ids, row_bytes, row0, rows;
    } push{w.cols, n, w.row_bytes, s.row0, s.rows};
    const buffer* bindings[] = {&s.data, &ids, &y};
    if (auto r = ctx_->record(*p.value(), bindings, bytes_of(push),
                              {div_ceil(w.cols, group_size), n, 1});
        !r) {
      return r;
    }
  }
  return success();
}

result<void> ops::rms_norm(const buffer& x, const buffer& weight, buffer& y, uint32_t rows,
                           uint32_t cols, float eps) {
  if (rows == 0) return success();
  const uint64_t bytes = uint64_t{rows} * cols * 4;
  if (auto r = check_size(x, bytes, "rms_norm", "x"); !r) return r;
  if (auto r = check_size(weight, uint64_t{cols} * 4, "rms_norm", "weight"); !r) return r;
  if (auto r = check_size(y, bytes, "rms_norm", "y"); !r) return r;
  auto p = get(paths_.subgroup ? "rms_norm_f32_sg" : "rms_norm_f32",
               {.binding_count = 3, .push_constant_size = 8});
  if (!p) return p.error();
  struct {
    uint32_t cols;
    float eps;
  } push{cols, eps};
  const buffer* bindings[] = {&x, &weight, &y};
  return ctx_->record(*p.value(), bindings, bytes_of(push), {rows, 1, 1});
}

result<void> ops::rope(buffer& x, const buffer& cos_sin, uint32_t n_tokens, uint32_t n_heads,
                       uint32_t head_dim, uint32_t n_rot, uint32_t ld, bool neox) {
  if (n_tokens == 0) return success();
  if (n_rot % 2 != 0 || n_rot > head_dim || ld < n_heads * head_dim) {
    return make_error(errc::invalid_argument, "rope: n_rot must be even and at most head_dim, "
                                              "ld at least n_heads * head_dim");
  }
  if (auto r = check_size(x, (uint64_t{n_tokens - 1} * ld + n_heads * head_dim) * 4, "rope", "x");
      !r) {
    return r;
  }
  if (auto r = check_size(cos_sin, uint64_t{n_tokens} * n_rot * 4, "rope", "cos_sin"); !r) {
    return r;
  }
  auto p = get("rope_f32", {.binding_count = 2, .push_constant_size = 24});
  if (!p) return p.error();
  struct {
    uint32_t n_heads, head_dim, n_rot, n_tokens, ld, neox;
  } push{n_heads, head_dim, n_rot, n_tokens, ld, neox ? 1u : 0u};
  const buffer* bindings[] = {&x, &cos_sin};
  return ctx_->record(*p.value(), bindings, bytes_of(push),
                      {div_ceil(n_heads * (n_rot / 2), group_size), n_tokens, 1});
}

result<void> ops::attention(const buffer& q, const buffer& k, const buffer& v,
                            const buffer& first_row, buffer& out, uint32_t n_tokens,
                            uint32_t n_heads, uint32_t n_kv_heads, uint32_t head_dim,
                            float scale, bool round_f16, uint32_t kv_pos0, uint32_t window) {
  if (n_tokens == 0) return success();
  if (n_kv_heads == 0 || n_heads % n_kv_heads != 0 || head_dim == 0 ||
      head_dim > 4 * group_size || head_dim > 256) {
    return make_error(errc::invalid_argument,
                      "attention: n_heads must be a multiple of n_kv_heads, head_dim 1 to 256");
  }
  const uint64_t q_bytes = uint64_t{n_tokens} * n_heads * head_dim * 4;
  const uint64_t kv_bytes = (uint64_t{n_tokens} + kv_pos0) * n_kv_heads * head_dim * 4;
  if (auto r = check_size(q, q_bytes, "attention", "q"); !r) return r;
  if (auto r = check_size(k, kv_bytes, "attention", "k"); !r) return r;
  if (auto r = check_size(v, kv_bytes, "attention", "v"); !r) return r;
  if (auto r = check_size(first_row, uint64_t{n_tokens} * 4, "attention", "first_row"); !r) {
    return r;
  }
  if (auto r = check_size(out, q_bytes, "attention", "out"); !r) return r;
  auto p = get("attention_f32", {.binding_count = 5,
                                 .push_constant_size = 32,
                                 .constants = {round_f16 ? 1u : 0u}});
  if (!p) return p.error();
  struct {
    uint32_t n_heads, n_kv_heads, head_dim, ldq, ldkv;
    float scale;
    uint32_t kv_pos0, window;
  } push{n_heads,
         n_kv_heads,
         head_dim,
         n_heads * head_dim,
         n_kv_heads * head_dim,
         scale,
         kv_pos0,
         window};
  const buffer* bindings[] = {&q, &k, &v, &first_row, &out};
  return ctx_->record(*p.value(), bindings, bytes_of(push), {n_heads, n_tokens, 1});
}

result<void> ops::copy(const buffer& src, buffer& dst, uint32_t count, uint32_t src_offset,
                       uint32_t dst_offset) {
  if (count == 0) return success();
  if (auto r = check_size(src, (uint64_t{src_offset} + count) * 4, "copy", "src"); !r) return r;
  if (auto r = check_size(dst, (uint64_t{dst_offset} + count) * 4, "copy", "dst"); !r) return r;
  auto p = get("copy_f32", {.binding_count = 2, .push_constant_size = 12});
  if (!p) return p.error();
  struct {
    uint32_t count, src_offset, dst_offset;
  } push{count, src_offset, dst_offset};
  const buffer* bindings[] = {&src, &dst};
  return ctx_->record(*p.value(), bindings, bytes_of(push), {div_ceil(count, group_size), 1, 1});
}

result<void> ops::swiglu(const buffer& gate, const buffer& up, buffer& out, uint32_t count) {
  if (count == 0) return success();
  for (const buffer* b : {&gate, &up, static_cast<const buffer*>(&out)}) {
    if (auto r = check_size(*b, uint64_t{count} * 4, "swiglu", "gate/up/out"); !r) return r;
  }
  auto p = get("swiglu_f32", {.binding_count = 3, .push_constant_size = 4});
  if (!p) return p.error();
  const buffer* bindings[] = {&gate, &up, &out};
  return ctx_->record(*p.value(), bindings, bytes_of(count), {div_ceil(count, group_size), 1, 1});
}

result<void> ops::geglu(const buffer& gate, const buffer& up, buffer& out, uint32_t count) {
  if (count == 0) return success();
  for (const buffer* b : {&gate, &up, static_cast<const buffer*>(&out)}) {
    if (auto r = check_size(*b, uint64_t{count} * 4, "geglu", "gate/up/out"); !r) return r;
  }
  auto p = get("geglu_f32", {.binding_count = 3, .push_constant_size = 4});
  if (!p) return p.error();
  const buffer* bindings[] = {&gate, &up, &out};
  return ctx_->record(*p.value(), bindings, bytes_of(count), {div_ceil(count, group_size), 1, 1});
}

result<void> ops::scale(buffer& x, float s, uint32_t count) {
  if (count == 0) return success();
  if (auto r = check_size(x, uint64_t{count} * 4, "scale", "x"); !r) return r;
  auto p = get("scale_f32", {.binding_count = 1, .push_constant_size = 8});
  if (!p) return p.error();
  struct {
    uint32_t count;
    float s;
  } push{count, s};
  const buffer* bindings[] = {&x};
  return ctx_->record(*p.value(), bindings, bytes_of(push), {div_ceil(count, group_size), 1, 1});
}

result<void> ops::add(const buffer& a, const buffer& b, buffer& c, uint32_t count,
                      uint32_t b_count) {
  if (count == 0) return success();
  if (b_count == 0) b_count = count;
  for (const buffer* x : {&a, static_cast<const buffer*>(&c)}) {
    if (auto r = check_size(*x, uint64_t{count} * 4, "add", "a/c"); !r) return r;
  }
  if (auto r = check_size(b, uint64_t{b_count} * 4, "add", "b"); !r) return r;
  const buffer* bindings[] = {&a, &b, &c};
  if (b_count == count) {
    auto p = get("add_f32", {.binding_count = 3, .push_constant_size = 4});
    if (!p) return p.error();
    return ctx_->record(*p.value(), bindings, bytes_of(count),
                        {div_ceil(count, group_size), 1, 1});
  }
  auto p = get("add_rows_f32", {.binding_count = 3, .push_constant_size = 8});
  if (!p) return p.error();
  struct {
    uint32_t count, b_count;
  } push{count, b_count};
  return ctx_->record(*p.value(), bindings, bytes_of(push), {div_ceil(count, group_size), 1, 1});
}

result<void> ops::softmax(buffer& x, uint32_t rows, uint32_t cols) {
  if (rows == 0) return success();
  if (auto r = check_size(x, uint64_t{rows} * cols * 4, "softmax", "x"); !r) return r;
  auto p = get(paths_.subgroup ? "softmax_f32_sg" : "softmax_f32",
               {.binding_count = 1, .push_constant_size = 4});
  if (!p) return p.error();
  const buffer* bindings[] = {&x};
  return ctx_->record(*p.value(), bindings, bytes_of(cols), {rows, 1, 1});
}

result<void> ops::pool(const buffer& h, const buffer& offsets, buffer& last, buffer& mean,
                       uint32_t n_seqs, uint32_t cols) {
  if (n_seqs == 0) return success();
  if (auto r = check_size(offsets, uint64_t{n_seqs + 1} * 4, "pool", "offsets"); !r) return r;
  if (auto r = check_size(last, uint64_t{n_seqs} * cols * 4, "pool", "last"); !r) return r;
  if (auto r = check_size(mean, uint64_t{n_seqs} * cols * 4, "pool", "mean"); !r) return r;
  auto p = get("pool_f32", {.binding_count = 4, .push_constant_size = 8});
  if (!p) return p.error();
  struct {
    uint32_t cols, n_seqs;
  } push{cols, n_seqs};
  const buffer* bindings[] = {&h, &offsets, &last, &mean};
  return ctx_->record(*p.value(), bindings, bytes_of(push),
                      {div_ceil(cols, group_size), n_seqs, 1});
}

}  // namespace triage::vulkan
