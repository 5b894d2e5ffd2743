// run_state.h: the activation buffers of a forward pass over a batch of
// n_tokens tokens, reused from call to call (they only grow; about 23 KB per
// token for SmolLM2-135M, so a 4096-token micro-batch holds ~95 MB).
//
//   triage::model::run_state st;
//   st.reserve(cfg, batch.n_tokens());
//   float* row = st.x.data() + i * cfg.dim;   // token i's residual stream
#pragma once

#include <cstdint>
#include <vector>

#include "compute/cpu/ops.h"
#include "compute/cpu/quantize.h"
#include "compute/model/config.h"

namespace triage::model {

struct run_state {
  int64_t capacity = 0;     // tokens the buffers hold
  std::vector<float> x;     // (n_tokens, dim) the residual stream
  std::vector<float> xb;    // (n_tokens, dim) a block's normalised input, then its output
  std::vector<float> q;     // (n_tokens, q_dim) queries, heads side by side
  std::vector<float> k;     // (n_tokens, kv_dim) keys
  std::vector<float> v;     // (n_tokens, kv_dim) values
  std::vector<float> att;   // (n_tokens, q_dim) attention output, heads side by side
  std::vector<float> gate;  // (n_tokens, ffn_dim) FFN gate projection, then silu(gate) * up
  std::vector<float> up;    // (n_tokens, ffn_dim) FFN up projection
  cpu::q8_activations xq;   // the current matmul input, quantized once for all its matrices
  cpu::rope_table rope{2, 10000.0f};  // cos/sin of the batch's positions
  cpu::rope_table rope_local{2, 10000.0f};  // gemma3: the same with the local layers' base

  void reserve(const config& c, int64_t n_tokens) {
    if (n_tokens <= capacity) return;
    capacity = n_tokens;
    const auto n = static_cast<size_t>(n_tokens);
    x.resize(n * c.dim);
    xb.resize(n * c.dim);
    q.resize(n * c.q_dim());
    k.resize(n * c.kv_dim());
    v.resize(n * c.kv_dim());
    att.resize(n * c.q_dim());
    gate.resize(n * c.ffn_dim);
    up.resize(n * c.ffn_dim);
  }
};

}  // namespace triage::model
