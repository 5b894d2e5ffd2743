// dequantize.h: the reference decoding of every weight type the CPU engine
// reads (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q4_K, Q6_K) into
// floats, exactly
// as ggml defines the block layouts (blocks.h). Used for embedding lookups,
// small tensors (norm weights), the reference matmul and the tests; the fast
// matmul never dequantizes.
//
//   using triage::gguf::tensor_type;
//   if (!triage::cpu::can_dequantize(t.type)) return error;
//   std::vector<float> row(t.ne[0]);
//   triage::cpu::dequantize_row(t.type, t.data.data() + i * t.row_bytes(), row.data(), t.ne[0]);
#pragma once

#include <cstddef>
#include <cstdint>

#include "compute/gguf/types.h"

namespace triage::cpu {

// Whether the CPU kernels read this tensor type (matmul and dequantize).
bool can_dequantize(gguf::tensor_type t);

// Decodes n elements (a whole number of blocks) from src into dst.
// Precondition: can_dequantize(t) and n a multiple of the type's block size.
void dequantize_row(gguf::tensor_type t, const std::byte* src, float* dst, int64_t n);

}  // namespace triage::cpu
