// ops.h: the element-wise and row-wise operations of a transformer layer, on
// float rows: RMSNorm, rotary position embedding (both pairings), softmax,
// SiLU / SwiGLU, GELU, add. Each follows ggml's definition (the same
// formulas and, where it changes results, the same accumulation precision),
// so that the engine's numbers track llama.cpp's.
//
//   triage::cpu::rmsnorm(x, norm_weight, y, dim, 1e-5f);     // one row
//   triage::cpu::rope_table rope(64, 100000.0f);             // rotary dims, freq base
//   rope.prepare(positions);                                  // cos/sin per position
//   rope.apply_normal(q_head, i);                             // token i's position
//   triage::cpu::swiglu(gate, up, out, n);                    // silu(gate) * up
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace triage::cpu {

// y = x / sqrt(mean(x^2) + eps) * weight (weight may be null: no scaling).
// The squares are summed in double, as ggml does. y may alias x.
void rmsnorm(const float* x, const float* weight, float* y, int64_t n, float eps);

// Rotary position embedding tables for a set of positions. Angles follow
// ggml: theta_i = pos * base^(-2i / n_rot), built by repeated multiplication
// in float, as ggml builds them, for pairs i = 0 .. n_rot/2 - 1. Scaling, as
// ggml's rope cache applies it: the angle of pair i is
// freq_scale * (theta_i / freq_factors[i]): freq_scale = 1 / factor for
// linear scaling (GGUF rope.scaling.factor), freq_factors the per-pair
// divisors of Llama 3's frequency scaling (the rope_freqs.weight tensor,
// n_rot / 2 values; empty: none).
class rope_table {
 public:
  rope_table(int n_rot, float freq_base, float freq_scale = 1.0f,
             std::span<const float> freq_factors = {})
      : n_rot_(n_rot),
        freq_base_(freq_base),
        freq_scale_(freq_scale),
        freq_factors_(freq_factors.begin(), freq_factors.end()) {}
  // One row of cos/sin per position (a batch's positions, in order).
  void prepare(std::span<const int32_t> positions);
  int n_rot() const { return n_rot_; }
  // Rotates x[0 .. n_rot) of one head in place, with the angles of the
  // prepared position number `row`.
  // "normal" (ggml mode 0, LLAMA): adjacent pairs (x[2i], x[2i+1]); GGUF's
  // llama converter permutes Q and K so that this matches HF's rotate_half.
  void apply_normal(float* x, int64_t row) const;
  // "neox" (ggml mode 2, Qwen2, Gemma): pairs (x[i], x[i + n_rot/2]).
  void apply_neox(float* x, int64_t row) const;

 private:
  int n_rot_;
  float freq_base_;
  float freq_scale_;
  std::vector<float> freq_factors_;  // empty, or n_rot / 2 divisors
  std::vector<float> cos_;  // (positions, n_rot / 2)
  std::vector<float> sin_;
};

// In place: x = exp(x - max) / sum; the sum in llama.cpp's order (chunks of
// 16 in float, their sums in double).
void softmax(float* x, int64_t n);
// x * sigmoid(x), in place.
void silu(float* x, int64_t n);
// out = silu(gate) * up; out may alias gate or up. The AVX2 path uses its
// own vector exp (within 4e-7 relative of the exact result).
void swiglu(const float* gate, const float* up, float* out, int64_t n);
// GELU, tanh approximation (Gemma's gelu_pytorch_tanh), in place.
void gelu(float* x, int64_t n);
// y += x.
void add(float* y, const float* x, int64_t n);
// Rounds each value to the nearest F16 (in place, kept as float): emulates
// storing it in an F16 buffer, as llama.cpp's KV cache does.
void round_to_f16(float* x, int64_t n);

}  // namespace triage::cpu
