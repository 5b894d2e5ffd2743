#include "compute/model/model.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "compute/cpu/matmul.h"
#include "compute/cpu/ops.h"
#include "compute/model/errc.h"
#include "compute/model/gemma3.h"

namespace triage::model {

model::model(gguf::reader&& g, config c, weights w, const model_options& opts)
    : gguf_(std::move(g)),
      cfg_(std::move(c)),
      w_(std::move(w)),
      opts_(opts),
      pool_(std::make_unique<cpu::thread_pool>(opts.threads)),
      st_(std::make_unique<run_state>()),
      mutex_(std::make_unique<std::mutex>()) {
  opts_.max_batch_tokens = std::max<int64_t>(1, opts.max_batch_tokens);
}

result<model> model::load(const std::string& path, const model_options& opts) {
  auto r = gguf::reader::open(path);
  if (!r) return r.error();
  // Tensor views point into the mapping, which moving the reader keeps.
  auto c = read_config(r.value());
  if (!c) return c.error();
  auto w = load_weights(r.value(), c.value());
  if (!w) return w.error();
  model m(std::move(r.value()), std::move(c.value()), std::move(w.value()), opts);
  if (!opts.loras.empty()) {  // LoRA adapters: merged into F32 copies (lora.h)
    auto merged = merge_loras(m.gguf_, m.cfg_, m.w_, opts.loras, m.pool_.get(),
                              opts.lora_f16 ? gguf::tensor_type::f16 : gguf::tensor_type::f32);
    if (!merged) return merged.error();
  }
  return m;
}

void model::check_tokens(std::span<const std::vector<int32_t>> seqs) const {
  for (size_t s = 0; s < seqs.size(); ++s) {
    if (seqs[s].empty()) {
      throw std::invalid_argument("model::forward: sequence " + std::to_string(s) + " is empty");
    }
    if (seqs[s].size() > static_cast<size_t>(cfg_.context_length)) {
      throw std::invalid_argument("model::forward: sequence " + std::to_string(s) + " has " +
                                  std::to_string(seqs[s].size()) +
                                  " tokens, more than the context length (" +
                                  std::to_string(cfg_.context_length) + ")");
    }
    for (int32_t t : seqs[s]) {
      if (t < 0 || t >= cfg_.vocab_size) {
        throw std::invalid_argument("model::forward: token id " + std::to_string(t) +
                                    " in sequence " + std::to_string(s) +
                                    " is outside the vocabulary (" +
                                    std::to_string(cfg_.vocab_size) + ")");
      }
    }
  }
}

void model::run_blocks(const ragged_batch& b, int n_blocks, kv_cache* cache) {
  block_options bo;
  bo.f16_attention = opts_.f16_attention;
  switch (cfg_.arch) {
    case architecture::llama:
    case architecture::qwen2:
      llama_forward(cfg_, w_, b, n_blocks, bo, *st_, *pool_, cache);
      return;
    case architecture::gemma3:
      gemma3_forward(cfg_, w_, b, n_blocks, bo, *st_, *pool_, cache);
      return;
  }
}

void model::logits_of_rows(std::span<const int64_t> rows, float* out) {
  const int dim = cfg_.dim;
  std::vector<float> normed(rows.size() * static_cast<size_t>(dim));
  for (size_t i = 0; i < rows.size(); ++i) {
    cpu::rmsnorm(st_->x.data() + rows[i] * dim, w_.output_norm.data(), normed.data() + i * dim,
                 dim, cfg_.rms_eps);
  }
  cpu::matmul(w_.output, normed.data(), static_cast<int64_t>(rows.size()), out, *pool_);
}

prefill_result model::forward(std::span<const std::vector<int32_t>> seqs,
                              const forward_options& opts) {
  std::lock_guard lock(*mutex_);
  check_tokens(seqs);
  if (opts.layer < -1 || opts.layer > cfg_.n_layers) {
    throw std::invalid_argument("model::forward: layer " + std::to_string(opts.layer) +
                                " outside -1 .. " + std::to_string(cfg_.n_layers));
  }
  const int dim = cfg_.dim;
  const bool need_all_blocks = opts.layer < 0 || opts.want_logits || opts.all_logits;
  const int pooled_layer = opts.layer < 0 ? cfg_.n_layers : opts.layer;
  const int n_blocks = need_all_blocks ? cfg_.n_layers : pooled_layer;
  if (pooled_layer != n_blocks) {
    throw std::invalid_argument(
        "model::forward: logits need every block; pool layer -1 or n_layers with them");
  }
  const bool want_last = opts.pool != pooling::mean;
  const bool want_mean = opts.pool != pooling::last;

  prefill_result out;
  out.n_seqs = static_cast<int64_t>(seqs.size());
  out.dim = dim;
  out.vocab = cfg_.vocab_size;
  if (want_last) out.last.resize(seqs.size() * static_cast<size_t>(dim));
  if (want_mean) out.mean.resize(seqs.size() * static_cast<size_t>(dim));
  if (opts.want_logits) out.logits.resize(seqs.size() * static_cast<size_t>(cfg_.vocab_size));
  out.offsets.assign(1, 0);
  for (const auto& s : seqs) out.offsets.push_back(out.offsets.back() + static_cast<int64_t>(s.size()));
  if (opts.all_logits) {
    out.all_logits.resize(static_cast<size_t>(out.offsets.back()) * cfg_.vocab_size);
  }

  std::vector<float> state(static_cast<size_t>(dim));
  for (const auto& [begin, end] : plan_micro_batches(seqs, opts_.max_batch_tokens)) {
    const ragged_batch b = ragged_batch::from(seqs.subspan(begin, end - begin));
    run_blocks(b, n_blocks, nullptr);
    for (int64_t s = 0; s < b.n_seqs(); ++s) {
      const size_t gs = begin + static_cast<size_t>(s);
      float* last = want_last ? out.last.data() + gs * dim : nullptr;
      float* mean = want_mean ? out.mean.data() + gs * dim : nullptr;
      if (mean != nullptr) std::fill(mean, mean + dim, 0.0f);
      for (int64_t i = b.offsets[s]; i < b.offsets[s + 1]; ++i) {
        const float* h = st_->x.data() + i * dim;
        const bool is_last = i + 1 == b.offsets[s + 1];
        if (mean == nullptr && !is_last) continue;
        if (opts.layer < 0) {
          cpu::rmsnorm(h, w_.output_norm.data(), state.data(), dim, cfg_.rms_eps);
          h = state.data();
        }
        if (mean != nullptr) cpu::add(mean, h, dim);
        if (last != nullptr && is_last) std::copy(h, h + dim, last);
      }
      if (mean != nullptr) {
        const float inv = 1.0f / static_cast<float>(b.length(s));
        for (int d = 0; d < dim; ++d) mean[d] *= inv;
      }
    }
    if (opts.want_logits) {
      std::vector<int64_t> rows;
      for (int64_t s = 0; s < b.n_seqs(); ++s) rows.push_back(b.offsets[s + 1] - 1);
      logits_of_rows(rows, out.logits.data() + begin * static_cast<size_t>(cfg_.vocab_size));
    }
    if (opts.all_logits) {
      std::vector<int64_t> rows(static_cast<size_t>(b.n_tokens()));
      for (int64_t i = 0; i < b.n_tokens(); ++i) rows[static_cast<size_t>(i)] = i;
      logits_of_rows(rows, out.all_logits.data() + out.offsets[begin] * cfg_.vocab_size);
    }
  }
  return out;
}

std::vector<int32_t> model::generate_greedy(std::span<const int32_t> prompt, int n_tokens,
                                            bool stop_at_eos) {
  const int32_t eos = cfg_.eos_id;
  return generate_greedy(prompt, n_tokens,
                         [&](int32_t id) { return !(stop_at_eos && id == eos); });
}

std::vector<int32_t> model::generate_greedy(std::span<const int32_t> prompt, int n_tokens,
                                            const std::function<bool(int32_t)>& on_token) {
  std::lock_guard lock(*mutex_);
  std::vector<int32_t> out;
  if (n_tokens <= 0) return out;
  if (prompt.size() + static_cast<size_t>(n_tokens) > static_cast<size_t>(cfg_.context_length)) {
    throw std::invalid_argument("model::generate_greedy: prompt (" +
                                std::to_string(prompt.size()) + ") + new tokens (" +
                                std::to_string(n_tokens) + ") exceed the context length (" +
                                std::to_string(cfg_.context_length) + ")");
  }
  check_tokens(std::span<const std::vector<int32_t>>(
      std::vector<std::vector<int32_t>>{std::vector<int32_t>(prompt.begin(), prompt.end())}));
  kv_cache cache(cfg_.n_layers, cfg_.kv_dim(), static_cast<int64_t>(prompt.size()) + n_tokens);
  std::vector<float> logits(static_cast<size_t>(cfg_.vocab_size));
  ragged_batch b = ragged_batch::single(prompt, 0);
  for (int step = 0; step < n_tokens; ++step) {
    run_blocks(b, cfg_.n_layers, &cache);
    const int64_t row = b.n_tokens() - 1;
    logits_of_rows(std::span<const int64_t>(&row, 1), logits.data());
    const auto next = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) -
                                           logits.begin());
    out.push_back(next);
    if (!on_token(next)) break;
    const int32_t tok[1] = {next};
    b = ragged_batch::single(tok, static_cast<int32_t>(cache.size()));
  }
  return out;
}

void model::extend(kv_cache& cache, std::span<const int32_t> tokens, std::span<float> logits) {
  std::lock_guard lock(*mutex_);
  if (tokens.empty()) throw std::invalid_argument("model::extend: no tokens");
  if (cache.kv_dim() != cfg_.kv_dim()) {
    throw std::invalid_argument("model::extend: the cache is not shaped for this model");
  }
  if (logits.size() < static_cast<size_t>(cfg_.vocab_size)) {
    throw std::invalid_argument("model::extend: logits span shorter than the vocabulary");
  }
  if (cache.size() + static_cast<int64_t>(tokens.size()) > cache.capacity()) {
    throw std::length_error("model::extend: " + std::to_string(tokens.size()) +
                            " tokens do not fit the KV cache (" + std::to_string(cache.size()) +
                            " of " + std::to_string(cache.capacity()) + " used)");
  }
  for (int32_t t : tokens) {
    if (t < 0 || t >= cfg_.vocab_size) {
      throw std::invalid_argument("model::extend: token id " + std::to_string(t) +
                                  " is outside the vocabulary (" +
                                  std::to_string(cfg_.vocab_size) + ")");
    }
  }
  const ragged_batch b = ragged_batch::single(tokens, static_cast<int32_t>(cache.size()));
  run_blocks(b, cfg_.n_layers, &cache);
  const int64_t row = b.n_tokens() - 1;
  logits_of_rows(std::span<const int64_t>(&row, 1), logits.data());
}

decoder::decoder(model& m, int64_t capacity)
    : m_(&m),
      cache_(m.cfg().n_layers, m.cfg().kv_dim(),
             std::clamp<int64_t>(capacity, 1, m.cfg().context_length)),
      logits_(static_cast<size_t>(m.cfg().vocab_size)) {}

std::span<const float> decoder::feed(std::span<const int32_t> tokens) {
  m_->extend(cache_, tokens, logits_);
  return logits_;
}

void decoder::truncate(int64_t n) {
  if (n < 0 || n > cache_.size()) {
    throw std::invalid_argument("decoder::truncate: " + std::to_string(n) + " outside 0.." +
                                std::to_string(cache_.size()));
  }
  cache_.set_size(n);
}

}  // namespace triage::model
