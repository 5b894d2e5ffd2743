#include "compute/vulkan/vk_model.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "compute/cpu/dequantize.h"
#include "compute/gguf/reader.h"
#include "compute/model/batch.h"
#include "compute/model/weights.h"
#include "compute/vulkan/ops.h"

namespace triage::vulkan {

namespace {

struct layer {
  buffer attn_norm;     // (dim)
  weight_matrix wq;     // (q_dim, dim)
  weight_matrix wk;     // (kv_dim, dim)
  weight_matrix wv;     // (kv_dim, dim)
  weight_matrix wo;     // (dim, q_dim)
  buffer bq, bk, bv;    // (q_dim), (kv_dim), (kv_dim) projection biases (qwen2)
  buffer ffn_norm;      // (dim)
  weight_matrix w_gate;  // (ffn_dim, dim)
  weight_matrix w_up;    // (ffn_dim, dim)
  weight_matrix w_down;  // (dim, ffn_dim)
  // gemma3 only: per-head norms of Q and K, norms of the attention and FFN
  // outputs before the residual adds.
  buffer q_norm, k_norm;  // (head_dim)
  buffer post_attn_norm, post_ffn_norm;  // (dim)
};

// Activation buffers for micro-batches of up to `tokens` tokens and `seqs`
// sequences; they only grow.
struct activations {
  int64_t tokens = 0;
  int64_t seqs = 0;
  buffer x;        // (tokens, dim) the residual stream
  buffer xb;       // (tokens, dim) normed input / block output
  buffer q;        // (tokens, q_dim)
  buffer k;        // (tokens, kv_dim)
  buffer v;        // (tokens, kv_dim)
  buffer att;      // (tokens, q_dim)
  buffer gate;     // (tokens, ffn_dim)
  buffer up;       // (tokens, ffn_dim)
  buffer ids;      // (tokens) int32 token ids
  buffer first;    // (tokens) int32 first row of each token's sequence
  buffer cos_sin;  // (tokens, rope_dim / 2, 2)
  buffer cos_sin_local;  // the same for gemma3's local layers (their own base)
  buffer offsets;  // (seqs + 1) int32
  buffer last;     // (seqs, dim)
  buffer mean;     // (seqs, dim)
  buffer logits;   // (seqs, vocab)
};

}  // namespace

struct vk_model::impl {
  model::config cfg;
  vk_model_options opts;
  context ctx;
  ops kernels;
  weight_matrix token_embd;
  weight_matrix output;  // empty when tied to token_embd
  bool tied = false;
  buffer output_norm;
  std::vector<float> rope_freqs;  // rope_freqs.weight (empty: none), copied
  std::vector<layer> layers;
  activations act;
  uint64_t weight_bytes = 0;

  impl(model::config c, const vk_model_options& o, context&& cx)
      : cfg(std::move(c)), opts(o), ctx(std::move(cx)), kernels(ctx) {}

  const weight_matrix& out_matrix() const { return tied ? token_embd : output; }

  result<void> reserve(int64_t tokens, int64_t seqs, bool logits);
  // Records and submits one micro-batch. With a cache, `b` is one sequence
  // continuing the cache's (positions from cache->size()): its keys and
  // values are appended to the cache and attention reads the cache.
  result<void> record_batch(const model::ragged_batch& b, int n_blocks, bool normed,
                            bool logits, vk_kv_cache* cache = nullptr);
};

namespace {

// Host memory for what the host writes (ids, offsets, angles) or reads
// (pooled states, logits); device memory for the rest.
result<buffer> make(context& ctx, uint64_t floats, memory_use use = memory_use::host) {
  return ctx.create_buffer(std::max<uint64_t>(4, floats * 4), use);
}

}  // namespace

result<void> vk_model::impl::reserve(int64_t tokens, int64_t seqs, bool logits) {
  if (tokens > act.tokens) {
    const uint64_t n = static_cast<uint64_t>(tokens);
    constexpr memory_use dev = memory_use::device, host = memory_use::host;
    struct {
      buffer* b;
      uint64_t floats;
      memory_use use;
    } want[] = {{&act.x, n * cfg.dim, dev},        {&act.xb, n * cfg.dim, dev},
                {&act.q, n * cfg.q_dim(), dev},    {&act.k, n * cfg.kv_dim(), dev},
                {&act.v, n * cfg.kv_dim(), dev},   {&act.att, n * cfg.q_dim(), dev},
                {&act.gate, n * cfg.ffn_dim, dev}, {&act.up, n * cfg.ffn_dim, dev},
                {&act.ids, n, host},               {&act.first, n, host},
                {&act.cos_sin, n * static_cast<uint64_t>(cfg.rope_dim), host},
                {&act.cos_sin_local, n * static_cast<uint64_t>(cfg.rope_dim), host}};
    for (auto& [b, floats, use] : want) {
      auto r = make(ctx, floats, use);
      if (!r) return r.error();
      *b = std::move(r).value();
    }
    act.tokens = tokens;
  }
  const size_t logits_bytes = static_cast<size_t>(seqs) * cfg.vocab_size * 4;
  if (seqs > act.seqs || (logits && act.logits.size() < logits_bytes)) {
    const uint64_t s = static_cast<uint64_t>(std::max(seqs, act.seqs));
    for (auto [b, floats] : {std::pair{&act.offsets, s + 1}, std::pair{&act.last, s * cfg.dim},
                             std::pair{&act.mean, s * cfg.dim}}) {
      auto r = make(ctx, floats);
      if (!r) return r.error();
      *b = std::move(r).value();
    }
    if (logits) {
      auto r = make(ctx, s * cfg.vocab_size);
      if (!r) return r.error();
      act.logits = std::move(r).value();
    }
    act.seqs = static_cast<int64_t>(s);
  }
  return success();
}

result<void> vk_model::impl::record_batch(const model::ragged_batch& b, int n_blocks, bool normed,
                                          bool logits, vk_kv_cache* cache) {
  const auto n = static_cast<uint32_t>(b.n_tokens());
  const auto n_seqs = static_cast<uint32_t>(b.n_seqs());
  const auto dim = static_cast<uint32_t>(cfg.dim), q_dim = static_cast<uint32_t>(cfg.q_dim()),
             kv_dim = static_cast<uint32_t>(cfg.kv_dim()), ffn = static_cast<uint32_t>(cfg.ffn_dim),
             hd = static_cast<uint32_t>(cfg.head_dim);
  const bool gemma = cfg.arch == model::architecture::gemma3;
  // gemma3 scales Q before attention (as the CPU engine and llama.cpp do,
  // before the F16 rounding), with its own scale when the file gives one.
  const float q_scale = cfg.attn_scale > 0 ? cfg.attn_scale
                                           : 1.0f / std::sqrt(static_cast<float>(cfg.head_dim));
  const float scale = gemma ? 1.0f : q_scale;
  const bool neox = cfg.rope_neox || gemma;
  const auto pos0 = static_cast<uint32_t>(cache ? cache->size() : 0);

  // Host inputs: token ids, each token's sequence start, rope angles, offsets.
  std::memcpy(act.ids.bytes().data(), b.tokens.data(), b.tokens.size() * 4);
  auto first = act.first.as<int32_t>();
  auto offsets = act.offsets.as<int32_t>();
  for (int64_t s = 0; s < b.n_seqs(); ++s) {
    offsets[s] = static_cast<int32_t>(b.offsets[s]);
    for (int64_t i = b.offsets[s]; i < b.offsets[s + 1]; ++i) {
      first[i] = static_cast<int32_t>(b.offsets[s]);
    }
  }
  offsets[b.n_seqs()] = static_cast<int32_t>(b.offsets.back());
  const auto table = rope_cos_sin(b.positions, cfg.rope_dim, cfg.rope_freq_base,
                                  cfg.rope_freq_scale, rope_freqs);
  std::memcpy(act.cos_sin.bytes().data(), table.data(), table.size() * 4);
  if (gemma) {  // unscaled, as llama.cpp's local layers (freq_scale_swa = 1)
    const auto local = rope_cos_sin(b.positions, cfg.rope_dim, cfg.rope_freq_base_swa);
    std::memcpy(act.cos_sin_local.bytes().data(), local.data(), local.size() * 4);
  }

  ops& k = kernels;
  if (auto r = ctx.begin(); !r) return r;
  // Chain of recorded ops; the first failure stops it.
  result<void> r = k.get_rows(token_embd, act.ids, n, act.x);
  if (r && cfg.embed_scale) r = k.scale(act.x, std::sqrt(static_cast<float>(cfg.dim)), n * dim);
  for (int li = 0; li < n_blocks && r; ++li) {
    const layer& l = layers[static_cast<size_t>(li)];
    const bool local = cfg.is_local(li);
    const buffer& rope_table = local ? act.cos_sin_local : act.cos_sin;
    const auto window = static_cast<uint32_t>(local ? cfg.sliding_window : 0);
    if (!(r = k.rms_norm(act.x, l.attn_norm, act.xb, n, dim, cfg.rms_eps))) break;
    if (!(r = k.mul_mat(l.wq, act.xb, n, act.q, 0, 0, opts.q8_activations))) break;
    if (!(r = k.mul_mat(l.wk, act.xb, n, act.k, 0, 0, opts.q8_activations))) break;
    if (!(r = k.mul_mat(l.wv, act.xb, n, act.v, 0, 0, opts.q8_activations))) break;
    if (cfg.qkv_bias) {
      if (!(r = k.add(act.q, l.bq, act.q, n * q_dim, q_dim))) break;
      if (!(r = k.add(act.k, l.bk, act.k, n * kv_dim, kv_dim))) break;
      if (!(r = k.add(act.v, l.bv, act.v, n * kv_dim, kv_dim))) break;
    }
    if (gemma) {  // RMSNorm of each head of Q and K
      if (!(r = k.rms_norm(act.q, l.q_norm, act.q, n * static_cast<uint32_t>(cfg.n_heads), hd,
                           cfg.rms_eps))) {
        break;
      }
      if (!(r = k.rms_norm(act.k, l.k_norm, act.k, n * static_cast<uint32_t>(cfg.n_kv_heads), hd,
                           cfg.rms_eps))) {
        break;
      }
    }
    if (!(r = k.rope(act.q, rope_table, n, static_cast<uint32_t>(cfg.n_heads), hd,
                     static_cast<uint32_t>(cfg.rope_dim), q_dim, neox))) {
      break;
    }
    if (!(r = k.rope(act.k, rope_table, n, static_cast<uint32_t>(cfg.n_kv_heads), hd,
                     static_cast<uint32_t>(cfg.rope_dim), kv_dim, neox))) {
      break;
    }
    if (gemma && !(r = k.scale(act.q, q_scale, n * q_dim))) break;
    if (cache != nullptr) {
      // Append this step's keys and values at rows pos0.. of the cache, and
      // attend over the whole cache (first[] is 0: one sequence).
      buffer& ck = cache->k_[static_cast<size_t>(li)];
      buffer& cv = cache->v_[static_cast<size_t>(li)];
      if (!(r = k.copy(act.k, ck, n * kv_dim, 0, pos0 * kv_dim))) break;
      if (!(r = k.copy(act.v, cv, n * kv_dim, 0, pos0 * kv_dim))) break;
      if (!(r = k.attention(act.q, ck, cv, act.first, act.att, n,
                            static_cast<uint32_t>(cfg.n_heads),
                            static_cast<uint32_t>(cfg.n_kv_heads), hd, scale, opts.f16_attention,
                            pos0, window))) {
        break;
      }
    } else if (!(r = k.attention(act.q, act.k, act.v, act.first, act.att, n,
                                 static_cast<uint32_t>(cfg.n_heads),
                                 static_cast<uint32_t>(cfg.n_kv_heads), hd, scale,
                                 opts.f16_attention, 0, window))) {
      break;
    }
    if (!(r = k.mul_mat(l.wo, act.att, n, act.xb, 0, 0, opts.q8_activations))) break;
    if (gemma && !(r = k.rms_norm(act.xb, l.post_attn_norm, act.xb, n, dim, cfg.rms_eps))) break;
    if (!(r = k.add(act.x, act.xb, act.x, n * dim))) break;
    if (!(r = k.rms_norm(act.x, l.ffn_norm, act.xb, n, dim, cfg.rms_eps))) break;
    if (!(r = k.mul_mat(l.w_gate, act.xb, n, act.gate, 0, 0, opts.q8_activations))) break;
    if (!(r = k.mul_mat(l.w_up, act.xb, n, act.up, 0, 0, opts.q8_activations))) break;
    if (!(r = gemma ? k.geglu(act.gate, act.up, act.gate, n * ffn)
                    : k.swiglu(act.gate, act.up, act.gate, n * ffn))) {
      break;
    }
    if (!(r = k.mul_mat(l.w_down, act.gate, n, act.xb, 0, 0, opts.q8_activations))) break;
    if (gemma && !(r = k.rms_norm(act.xb, l.post_ffn_norm, act.xb, n, dim, cfg.rms_eps))) break;
    r = k.add(act.x, act.xb, act.x, n * dim);
  }
  buffer& pooled_from = normed ? act.xb : act.x;
  if (r && normed) r = k.rms_norm(act.x, output_norm, act.xb, n, dim, cfg.rms_eps);
  if (r) r = k.pool(pooled_from, act.offsets, act.last, act.mean, n_seqs, dim);
  if (r && logits) {
    r = k.mul_mat(out_matrix(), act.last, n_seqs, act.logits, 0, 0, opts.q8_activations);
  }
  if (!r) return r;
  return ctx.submit();
}

vk_model::vk_model(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
vk_model::vk_model(vk_model&&) noexcept = default;
vk_model& vk_model::operator=(vk_model&&) noexcept = default;
vk_model::~vk_model() = default;

const model::config& vk_model::cfg() const { return impl_->cfg; }
const device_info& vk_model::device() const { return impl_->ctx.device(); }
uint64_t vk_model::weight_bytes() const { return impl_->weight_bytes; }
std::vector<std::string> vk_model::validation_messages() const {
  return impl_->ctx.validation_messages();
}

result<vk_model> vk_model::load(const std::string& path, const vk_model_options& opts) {
  auto g = gguf::reader::open(path);
  if (!g) return g.error();
  auto c = model::read_config(g.value());
  if (!c) return c.error();
  auto w = model::load_weights(g.value(), c.value());
  if (!w) return w.error();
  if (!opts.loras.empty()) {  // merged on the host, uploaded as F32/F16 matrices
    auto merged = model::merge_loras(g.value(), c.value(), w.value(), opts.loras, nullptr,
                                     opts.lora_f16 ? gguf::tensor_type::f16
                                                   : gguf::tensor_type::f32);
    if (!merged) return merged.error();
  }
  auto ctx = context::create(opts.device);
  if (!ctx) return ctx.error();

  auto m = std::make_unique<impl>(c.value(), opts, std::move(ctx).value());
  m->opts.max_batch_tokens = std::max<int64_t>(1, opts.max_batch_tokens);
  const uint64_t limit = opts.max_buffer_bytes;
  auto matrix = [&](const cpu::matrix_view& v, const char* name,
                    weight_matrix& out) -> result<void> {
    // A type the CPU reads but no shader does (Q5_0, Q5_1, ... as in Gemma
    // 3's Q4_K_M file) goes up dequantized to F32: the same weight values,
    // 4 bytes each.
    std::vector<float> dequantized;
    cpu::matrix_view view = v;
    if (!can_upload(v.type) && cpu::can_dequantize(v.type)) {
      dequantized.resize(static_cast<size_t>(v.rows) * static_cast<size_t>(v.cols));
      for (int64_t i = 0; i < v.rows; ++i) {
        cpu::dequantize_row(v.type, v.row(i), dequantized.data() + i * v.cols, v.cols);
      }
      view = {gguf::tensor_type::f32, v.rows, v.cols, static_cast<size_t>(v.cols) * 4,
              reinterpret_cast<const std::byte*>(dequantized.data())};
    }
    auto u = upload_matrix(m->ctx, view, limit);
    if (!u) {
      error e = u.error();
      e.message = path + ": " + name + ": " + e.message;
      return e;
    }
    out = std::move(u).value();
    m->weight_bytes += out.bytes();
    return success();
  };
  auto floats = [&](std::span<const float> v, buffer& out) -> result<void> {
    auto u = upload_floats(m->ctx, v);
    if (!u) return u.error();
    out = std::move(u).value();
    m->weight_bytes += v.size_bytes();
    return success();
  };
  const model::weights& wt = w.value();
  if (auto r = matrix(wt.token_embd, "token_embd.weight", m->token_embd); !r) return r.error();
  m->tied = wt.tied_output;
  if (!m->tied) {
    if (auto r = matrix(wt.output, "output.weight", m->output); !r) return r.error();
  }
  if (auto r = floats(wt.output_norm, m->output_norm); !r) return r.error();
  m->rope_freqs.assign(wt.rope_freqs.begin(), wt.rope_freqs.end());
  m->layers.resize(wt.layers.size());
  for (size_t i = 0; i < wt.layers.size(); ++i) {
    const model::layer_weights& src = wt.layers[i];
    layer& dst = m->layers[i];
    const std::string blk = "blk." + std::to_string(i) + ".";
    for (auto [view, name, out] :
         {std::tuple{&src.wq, "attn_q", &dst.wq}, std::tuple{&src.wk, "attn_k", &dst.wk},
          std::tuple{&src.wv, "attn_v", &dst.wv}, std::tuple{&src.wo, "attn_output", &dst.wo},
          std::tuple{&src.w_gate, "ffn_gate", &dst.w_gate},
          std::tuple{&src.w_up, "ffn_up", &dst.w_up},
          std::tuple{&src.w_down, "ffn_down", &dst.w_down}}) {
      const std::string full = blk + name + ".weight";
      if (auto r = matrix(*view, full.c_str(), *out); !r) return r.error();
    }
    if (auto r = floats(src.attn_norm, dst.attn_norm); !r) return r.error();
    if (auto r = floats(src.ffn_norm, dst.ffn_norm); !r) return r.error();
    if (m->cfg.arch == model::architecture::gemma3) {
      for (auto [v, out] : {std::pair{src.attn_q_norm, &dst.q_norm},
                            std::pair{src.attn_k_norm, &dst.k_norm},
                            std::pair{src.post_attn_norm, &dst.post_attn_norm},
                            std::pair{src.post_ffn_norm, &dst.post_ffn_norm}}) {
        if (auto r = floats(v, *out); !r) return r.error();
      }
    }
    if (m->cfg.qkv_bias) {
      for (auto [v, out] : {std::pair{src.bq, &dst.bq}, std::pair{src.bk, &dst.bk},
                            std::pair{src.bv, &dst.bv}}) {
        if (auto r = floats(v, *out); !r) return r.error();
      }
    }
  }
  return vk_model(std::move(m));
}

result<model::prefill_result> vk_model::forward(std::span<const std::vector<int32_t>> seqs,
                                                const model::forward_options& opts) {
  const model::config& cfg = impl_->cfg;
  for (size_t s = 0; s < seqs.size(); ++s) {
    const std::string which = "vk_model::forward: sequence " + std::to_string(s);
    if (seqs[s].empty()) return make_error(errc::invalid_argument, which + " is empty");
    if (seqs[s].size() > static_cast<size_t>(cfg.context_length)) {
      return make_error(errc::invalid_argument,
                        which + " has " + std::to_string(seqs[s].size()) +
                            " tokens, more than the context length (" +
                            std::to_string(cfg.context_length) + ")");
    }
    for (int32_t t : seqs[s]) {
      if (t < 0 || t >= cfg.vocab_size) {
        return make_error(errc::invalid_argument, which + ": token id " + std::to_string(t) +
                                                      " is outside the vocabulary (" +
                                                      std::to_string(cfg.vocab_size) + ")");
      }
    }
  }
  if (opts.layer < -1 || opts.layer > cfg.n_layers) {
    return make_error(errc::invalid_argument, "vk_model::forward: layer " +
                                                  std::to_string(opts.layer) + " outside -1 .. " +
                                                  std::to_string(cfg.n_layers));
  }
  if (opts.all_logits) {
    return make_error(errc::invalid_argument,
                      "vk_model::forward: all_logits is not supported on Vulkan");
  }
  // The logits read the normed last states the pool produces for layer -1.
  if (opts.want_logits && opts.layer >= 0) {
    return make_error(errc::invalid_argument,
                      "vk_model::forward: logits need every block; pool layer -1 with them");
  }
  const int n_blocks = opts.layer < 0 ? cfg.n_layers : opts.layer;
  const bool normed = opts.layer < 0;
  const bool want_last = opts.pool != model::pooling::mean;
  const bool want_mean = opts.pool != model::pooling::last;
  const size_t dim = static_cast<size_t>(cfg.dim), vocab = static_cast<size_t>(cfg.vocab_size);

  model::prefill_result out;
  out.n_seqs = static_cast<int64_t>(seqs.size());
  out.dim = cfg.dim;
  out.vocab = cfg.vocab_size;
  if (want_last) out.last.resize(seqs.size() * dim);
  if (want_mean) out.mean.resize(seqs.size() * dim);
  if (opts.want_logits) out.logits.resize(seqs.size() * vocab);
  out.offsets.assign(1, 0);
  for (const auto& s : seqs) {
    out.offsets.push_back(out.offsets.back() + static_cast<int64_t>(s.size()));
  }

  activations& act = impl_->act;
  for (const auto& [begin, end] : model::plan_micro_batches(seqs, impl_->opts.max_batch_tokens)) {
    const model::ragged_batch b = model::ragged_batch::from(seqs.subspan(begin, end - begin));
    if (auto r = impl_->reserve(b.n_tokens(), b.n_seqs(), opts.want_logits); !r) return r.error();
    if (auto r = impl_->record_batch(b, n_blocks, normed, opts.want_logits); !r) return r.error();
    const size_t count = static_cast<size_t>(b.n_seqs()) * dim;
    if (want_last) std::memcpy(out.last.data() + begin * dim, act.last.bytes().data(), count * 4);
    if (want_mean) std::memcpy(out.mean.data() + begin * dim, act.mean.bytes().data(), count * 4);
    if (opts.want_logits) {
      std::memcpy(out.logits.data() + begin * vocab, act.logits.bytes().data(),
                  static_cast<size_t>(b.n_seqs()) * vocab * 4);
    }
  }
  return out;
}

result<vk_kv_cache> vk_model::make_cache(int64_t capacity) {
  const model::config& cfg = impl_->cfg;
  if (capacity < 1 || capacity > cfg.context_length) {
    return make_error(errc::invalid_argument,
                      "vk_model::make_cache: capacity " + std::to_string(capacity) +
                          " outside 1 .. the context length (" +
                          std::to_string(cfg.context_length) + ")");
  }
  vk_kv_cache c;
  c.capacity_ = capacity;
  c.kv_dim_ = cfg.kv_dim();
  const uint64_t floats = static_cast<uint64_t>(capacity) * static_cast<uint64_t>(cfg.kv_dim());
  for (int l = 0; l < cfg.n_layers; ++l) {
    for (auto* list : {&c.k_, &c.v_}) {
      auto b = make(impl_->ctx, floats, memory_use::device);
      if (!b) {
        error e = b.error();
        e.message = "vk_model::make_cache (" + std::to_string(capacity) + " positions): " + e.message;
        return e;
      }
      list->push_back(std::move(b).value());
    }
  }
  return c;
}

result<void> vk_model::extend(vk_kv_cache& cache, std::span<const int32_t> tokens,
                              std::span<float> logits) {
  const model::config& cfg = impl_->cfg;
  if (tokens.empty()) return make_error(errc::invalid_argument, "vk_model::extend: no tokens");
  if (cache.kv_dim_ != cfg.kv_dim() || cache.k_.size() != static_cast<size_t>(cfg.n_layers)) {
    return make_error(errc::invalid_argument,
                      "vk_model::extend: the cache is not shaped for this model");
  }
  if (logits.size() < static_cast<size_t>(cfg.vocab_size)) {
    return make_error(errc::invalid_argument,
                      "vk_model::extend: logits span shorter than the vocabulary");
  }
  if (cache.size() + static_cast<int64_t>(tokens.size()) > cache.capacity()) {
    return make_error(errc::invalid_argument,
                      "vk_model::extend: " + std::to_string(tokens.size()) +
                          " tokens do not fit the KV cache (" + std::to_string(cache.size()) +
                          " of " + std::to_string(cache.capacity()) + " used)");
  }
  for (int32_t t : tokens) {
    if (t < 0 || t >= cfg.vocab_size) {
      return make_error(errc::invalid_argument, "vk_model::extend: token id " + std::to_string(t) +
                                                    " is outside the vocabulary (" +
                                                    std::to_string(cfg.vocab_size) + ")");
    }
  }
  // Micro-batches of at most max_batch_tokens, each continuing the cache.
  const int64_t step = impl_->opts.max_batch_tokens;
  const int64_t start = cache.size();
  for (size_t at = 0; at < tokens.size(); at += static_cast<size_t>(step)) {
    const auto part = tokens.subspan(at, std::min<size_t>(static_cast<size_t>(step), tokens.size() - at));
    const bool last = at + part.size() == tokens.size();
    const model::ragged_batch b =
        model::ragged_batch::single(part, static_cast<int32_t>(cache.size()));
    auto r = impl_->reserve(b.n_tokens(), 1, last);
    if (r) r = impl_->record_batch(b, cfg.n_layers, true, last, &cache);
    if (!r) {
      cache.set_size(start);
      return r.error();
    }
    cache.set_size(cache.size() + b.n_tokens());
  }
  std::memcpy(logits.data(), impl_->act.logits.bytes().data(),
              static_cast<size_t>(cfg.vocab_size) * 4);
  return success();
}

}  // namespace triage::vulkan
