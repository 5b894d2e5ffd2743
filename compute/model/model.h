// model.h: a language model loaded from a GGUF file and run on the CPU.
// Weights stay in the file's read-only mapping (resident memory is about the
// file size plus the activations of the largest batch).
//
//   auto m = triage::model::model::load(path, {.threads = 2});
//   if (!m) return m.error();                      // names the key or tensor at fault
//   std::vector<std::vector<int32_t>> seqs = {ids_a, ids_b};   // ragged batch
//   auto out = m.value().forward(seqs, {.pool = triage::model::pooling::both});
//   std::span<const float> a_last(out.last.data(), out.dim);   // sequence 0
//   auto ids = m.value().generate_greedy(prompt_ids, 32);
//   triage::model::decoder d(m.value(), 256);       // step-wise, with a KV cache
//   auto logits = d.feed(prompt_ids);               // last token's logits (vocab)
//   const int64_t mark = d.size();                  // shared prefix
//   d.feed(std::vector<int32_t>{a}); d.truncate(mark); d.feed(std::vector<int32_t>{b});
//
// Classification reads pooled hidden states and never computes the
// vocabulary-wide output layer; logits are computed only when asked.
// One call at a time per model (calls are serialised).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"
#include "compute/cpu/thread_pool.h"
#include "compute/gguf/reader.h"
#include "compute/model/config.h"
#include "compute/model/kv_cache.h"
#include "compute/model/llama.h"
#include "compute/model/lora.h"
#include "compute/model/run_state.h"
#include "compute/model/weights.h"

namespace triage::model {

struct model_options {
  // Worker threads including the caller. Default: 0, one per hardware thread.
  int threads = 0;
  // Most tokens per micro-batch of forward(): bounds activation memory
  // (~23 KB per token for SmolLM2-135M); a longer sequence runs alone.
  // Default: 4096.
  int64_t max_batch_tokens = 4096;
  // Round Q, K, V and attention weights to F16 like llama.cpp's F16 KV
  // cache, to track its results closely. Default: true.
  bool f16_attention = true;
  // LoRA adapters merged into the weights at load time, in order (see
  // lora.h): each target weight becomes an F32 copy owned by the model.
  // Default: empty (the weights stay in the file's mapping).
  std::vector<lora_spec> loras = {};
  // Keep the LoRA-merged matrices as F16 instead of F32: half the memory
  // (SmolLM2, adapter on attn_q/attn_v/ffn_down: peak RSS +84 MB instead of
  // +152 MB) and faster float matmuls, at F16 rounding of the merged
  // weights (a little further from llama.cpp, see compute/model/README.md).
  // Default: false.
  bool lora_f16 = false;
};

enum class pooling {
  last,  // the last token's state (what a causal model has read everything by)
  mean,  // the mean over the sequence's tokens
  both,
};

struct forward_options {
  // Which hidden state to pool. -1: the final-norm output (what the output
  // layer reads); 0 .. n_layers: the residual stream after that many blocks
  // (0: the embeddings), unnormalised; later blocks are skipped.
  // Default: -1.
  int layer = -1;
  // Default: last.
  pooling pool = pooling::last;
  // Last-token logits of every sequence (runs all blocks). Default: false.
  bool want_logits = false;
  // Logits of every token of every sequence (runs all blocks; vocab floats
  // per token). Default: false.
  bool all_logits = false;
};

struct prefill_result {
  int64_t n_seqs = 0;
  int dim = 0;
  int vocab = 0;
  std::vector<float> last;        // (n_seqs, dim) pooled: each sequence's last token
  std::vector<float> mean;        // (n_seqs, dim) pooled: mean over each sequence
  std::vector<float> logits;      // (n_seqs, vocab) last-token logits, when asked
  std::vector<float> all_logits;  // (n_tokens, vocab) sequences one after another, when asked
  std::vector<int64_t> offsets;   // (n_seqs + 1) first row of each sequence in all_logits

  std::span<const float> last_of(int64_t s) const { return {last.data() + s * dim, size_t(dim)}; }
  std::span<const float> mean_of(int64_t s) const { return {mean.data() + s * dim, size_t(dim)}; }
  std::span<const float> logits_of(int64_t s) const {
    return {logits.data() + s * vocab, size_t(vocab)};
  }
};

class model {
 public:
  // Maps the file, reads the hyperparameters and checks every tensor.
  static result<model> load(const std::string& path, const model_options& opts = {});

  model(model&&) noexcept = default;
  model& operator=(model&&) noexcept = default;

  const config& cfg() const { return cfg_; }
  const gguf::reader& gguf() const { return gguf_; }
  int threads() const { return pool_->size(); }

  // Runs the sequences as ragged batches (micro-batches of at most
  // max_batch_tokens). Throws std::invalid_argument for an empty sequence, a
  // sequence longer than the model's context length, or a token id outside
  // the vocabulary.
  prefill_result forward(std::span<const std::vector<int32_t>> seqs,
                         const forward_options& opts = {});

  // Greedy decoding: the prompt, then n_tokens times the argmax token, with a
  // KV cache. Stops early after EOS when stop_at_eos. Returns the new tokens.
  // Throws std::invalid_argument when prompt + n_tokens exceeds the context.
  std::vector<int32_t> generate_greedy(std::span<const int32_t> prompt, int n_tokens,
                                       bool stop_at_eos = false);
  // The same, calling on_token(id) for each new token as soon as it is
  // chosen (streaming); decoding stops when it returns false.
  std::vector<int32_t> generate_greedy(std::span<const int32_t> prompt, int n_tokens,
                                       const std::function<bool(int32_t)>& on_token);

  // One step of incremental decoding: runs `tokens` as the continuation of
  // the sequence held in `cache` (their keys and values are appended) and
  // writes the last token's logits (vocab floats) to `logits`. Throws
  // std::invalid_argument for an empty span, a token id outside the
  // vocabulary or a cache of another shape, std::length_error when the cache
  // cannot hold them. decoder (below) wraps it.
  void extend(kv_cache& cache, std::span<const int32_t> tokens, std::span<float> logits);

 private:
  model(gguf::reader&& g, config c, weights w, const model_options& opts);
  void check_tokens(std::span<const std::vector<int32_t>> seqs) const;
  void run_blocks(const ragged_batch& b, int n_blocks, kv_cache* cache);
  // Final norm + output layer for the given rows of st.x into out (rows, vocab).
  void logits_of_rows(std::span<const int64_t> rows, float* out);

  gguf::reader gguf_;
  config cfg_;
  weights w_;
  model_options opts_;
  std::unique_ptr<cpu::thread_pool> pool_;
  std::unique_ptr<run_state> st_;
  std::unique_ptr<std::mutex> mutex_;
};

// A sequence being decoded step by step, on whatever engine: what the
// constrained generator (compute/classifier/generate.h) drives. decoder
// (below) runs it on the CPU, vulkan::vk_decoder on a Vulkan device.
// Contract: feed() appends one or more tokens and returns the last one's
// logits (vocab floats, valid until the next feed or truncate); it throws
// std::invalid_argument for no tokens or a token id outside the vocabulary,
// std::length_error beyond capacity() (nothing is appended then); an engine
// may throw its own std::runtime_error for a failure of the device.
// truncate(n) forgets positions n.. (n <= size(); else invalid_argument).
class step_decoder {
 public:
  virtual ~step_decoder() = default;
  virtual std::span<const float> feed(std::span<const int32_t> tokens) = 0;
  virtual void truncate(int64_t n) = 0;
  virtual int64_t size() const = 0;
  virtual int64_t capacity() const = 0;
  virtual std::span<const float> logits() const = 0;
};

// A sequence being decoded step by step: a KV cache of fixed capacity and
// the logits after the last token fed. truncate() forgets positions (the
// cache is append-only, so going back to a shorter length is free), which is
// how several continuations are scored after one shared prefix. The model
// must outlive the decoder; one decoder per thread.
class decoder final : public step_decoder {
 public:
  // capacity: most positions the sequence will hold (at most the model's
  // context length).
  decoder(model& m, int64_t capacity);

  // Appends the tokens and returns the last one's logits (vocab floats,
  // valid until the next feed). Throws as model::extend does.
  std::span<const float> feed(std::span<const int32_t> tokens) override;
  // Forgets every position from n on (n <= size()); logits() is stale until
  // the next feed().
  void truncate(int64_t n) override;
  int64_t size() const override { return cache_.size(); }
  int64_t capacity() const override { return cache_.capacity(); }
  std::span<const float> logits() const override { return logits_; }

 private:
  model* m_;
  kv_cache cache_;
  std::vector<float> logits_;
};

}  // namespace triage::model
