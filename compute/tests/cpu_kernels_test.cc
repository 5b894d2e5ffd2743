// Parity tests of the CPU kernels: every fast path (AVX2, AVX-512 VNNI where
// the CPU has them) against the scalar path and against the float reference,
// on random data with ragged shapes, within stated normalized error bounds:
//   err(y, ref) = ||y - ref||_2 / ||ref||_2
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <random>
#include <span>
#include <utility>
#include <vector>

#include <immintrin.h>
#include <nlohmann/json.hpp>

#include "compute/cpu/attention.h"
#include "compute/cpu/blocks.h"
#include "compute/cpu/cpu_features.h"
#include "compute/cpu/dequantize.h"
#include "compute/cpu/half.h"
#include "compute/cpu/matmul.h"
#include "compute/cpu/ops.h"
#include "compute/cpu/quantize.h"
#include "compute/cpu/thread_pool.h"

namespace {

using namespace triage::cpu;
using triage::gguf::tensor_type;

std::vector<float> random_floats(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

double norm_err(const std::vector<float>& y, const std::vector<float>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    num += (static_cast<double>(y[i]) - ref[i]) * (static_cast<double>(y[i]) - ref[i]);
    den += static_cast<double>(ref[i]) * ref[i];
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

std::vector<isa> fast_families() {
  std::vector<isa> out;
  if (detected_isa() >= isa::avx2) out.push_back(isa::avx2);
  if (detected_isa() >= isa::avx512_vnni) out.push_back(isa::avx512_vnni);
  return out;
}

constexpr tensor_type all_types[] = {tensor_type::f32,  tensor_type::f16,  tensor_type::bf16,
                                     tensor_type::q8_0, tensor_type::q4_0, tensor_type::q4_1,
                                     tensor_type::q5_0, tensor_type::q4_k, tensor_type::q6_k};

// How well the round-to-nearest encoders reproduce N(0,1) weights: bounds on
// err(dequantize(quantize(w)), w), from the bits per weight (a safety factor
// of about 1.5 over what they achieve).
double encode_bound(tensor_type t) {
  switch (t) {
    case tensor_type::f32:
      return 0;
    case tensor_type::f16:
      return 1e-3;
    case tensor_type::bf16:
      return 5e-3;
    case tensor_type::q8_0:
      return 0.015;
    case tensor_type::q6_k:
      return 0.05;
    case tensor_type::q5_0:
      return 0.08;
    default:
      return 0.15;  // 4-bit types
  }
}

// --- half / bfloat16 ---

TEST(cpu_half, every_half_round_trips) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = fp16_to_fp32(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(fp32_to_fp16(f), h) << "half 0x" << std::hex << h;
  }
}

TEST(cpu_half, matches_f16c_rounding) {
  if (detected_isa() < isa::avx2) GTEST_SKIP() << "no F16C";
  std::mt19937 rng(7);
  std::uniform_int_distribution<uint32_t> bits;
  for (int i = 0; i < 200000; ++i) {
    uint32_t b = bits(rng);
    // Mostly values in and around the half range, some arbitrary bit patterns.
    if (i % 4 != 0) b = (b & 0x807fffffu) | ((100u + (b >> 23) % 60u) << 23);
    float f;
    std::memcpy(&f, &b, 4);
    if (std::isnan(f)) continue;
    const uint16_t hw = [](float v) __attribute__((target("f16c"))) {
      return static_cast<uint16_t>(_cvtss_sh(v, _MM_FROUND_TO_NEAREST_INT));
    }(f);
    ASSERT_EQ(fp32_to_fp16(f), hw) << f;
    ASSERT_EQ(std::bit_cast<uint32_t>(fp16_to_fp32(hw)),
              std::bit_cast<uint32_t>([](uint16_t v) __attribute__((target("f16c"))) {
                return _cvtsh_ss(v);
              }(hw)));
  }
}

TEST(cpu_half, bf16_rounds_to_nearest_even) {
  EXPECT_EQ(fp32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(bf16_to_fp32(0x3f80), 1.0f);
  // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to the even (1.0).
  EXPECT_EQ(fp32_to_bf16(1.0f + 0x1p-8f), 0x3f80);
  EXPECT_EQ(fp32_to_bf16(1.0f + 0x1p-8f + 0x1p-20f), 0x3f81);
}

// --- block layouts, checked on hand-made blocks ---

TEST(cpu_dequantize, q4_1_block_layout) {
  block_q4_1 b{};
  b.d = fp32_to_fp16(0.5f);
  b.m = fp32_to_fp16(-1.0f);
  for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  float y[32];
  dequantize_row(tensor_type::q4_1, reinterpret_cast<const std::byte*>(&b), y, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], 0.5f * j - 1.0f);
    EXPECT_EQ(y[j + 16], 0.5f * (15 - j) - 1.0f);
  }
}

TEST(cpu_dequantize, q4_k_scale_packing) {
  // Sub-block j: scale j + 1 (and j + 40 for j >= 4, using the high bits),
  // min 2j + 3; all codes 1 in the first chunk's low nibbles.
  uint8_t sc[8], mn[8];
  for (int j = 0; j < 8; ++j) {
    sc[j] = static_cast<uint8_t>(j < 4 ? j + 1 : j + 40);
    mn[j] = static_cast<uint8_t>(2 * j + 3 + (j >= 4 ? 32 : 0));
  }
  block_q4_k b{};
  for (int j = 0; j < 4; ++j) {
    b.scales[j] = static_cast<uint8_t>(sc[j] | ((sc[j + 4] >> 4) << 6));
    b.scales[j + 4] = static_cast<uint8_t>(mn[j] | ((mn[j + 4] >> 4) << 6));
    b.scales[j + 8] = static_cast<uint8_t>((sc[j + 4] & 0xf) | ((mn[j + 4] & 0xf) << 4));
  }
  for (int j = 0; j < 8; ++j) {
    uint8_t s = 0, m = 0;
    q4_k_scale_min(j, b.scales, s, m);
    EXPECT_EQ(s, sc[j]) << j;
    EXPECT_EQ(m, mn[j]) << j;
  }
  b.d = fp32_to_fp16(1.0f);
  b.dmin = fp32_to_fp16(0.25f);
  for (int l = 0; l < 32; ++l) b.qs[64 + l] = static_cast<uint8_t>(0x21);  // chunk 2: 1 low, 2 high
  float y[256];
  dequantize_row(tensor_type::q4_k, reinterpret_cast<const std::byte*>(&b), y, 256);
  EXPECT_EQ(y[0], -0.25f * mn[0]);                        // code 0
  EXPECT_EQ(y[128], 1.0f * sc[4] * 1 - 0.25f * mn[4]);    // sub-block 4, low nibble
  EXPECT_EQ(y[160], 1.0f * sc[5] * 2 - 0.25f * mn[5]);    // sub-block 5, high nibble
}

TEST(cpu_dequantize, q6_k_bit_layout) {
  block_q6_k b{};
  b.d = fp32_to_fp16(1.0f);
  for (int j = 0; j < 16; ++j) b.scales[j] = static_cast<int8_t>(j - 8);
  // Element 64 + 5 of the second half: low bits in ql[64 + 5] >> 4, high bits
  // in (qh[32 + 5] >> 4) & 3, scale index 8 + 4 + 0.
  b.ql[64 + 5] = 0xa0;  // low 4 bits = 10
  b.qh[32 + 5] = 0x20;  // high 2 bits = 2
  float y[256];
  dequantize_row(tensor_type::q6_k, reinterpret_cast<const std::byte*>(&b), y, 256);
  EXPECT_EQ(y[128 + 64 + 5], static_cast<float>((12 - 8) * ((10 | (2 << 4)) - 32)));
  EXPECT_EQ(y[0], static_cast<float>(-8 * -32));  // all-zero codes: q = -32, scale -8
}

// Q5_0 (Gemma 3's Q/K/gate/up): bit 4 of element j is bit j of qh, for the
// high-nibble elements j + 16 too; codes are q - 16.
TEST(cpu_dequantize, q5_0_bit_layout) {
  block_q5_0 b{};
  b.d = fp32_to_fp16(0.5f);
  b.qs[3] = 0x7a;                       // element 3: low bits 10; element 19: low bits 7
  const uint32_t qh = (1u << 3) | (1u << 20);  // bit 4 set for elements 3 and 20
  std::memcpy(b.qh, &qh, 4);
  float y[32];
  dequantize_row(tensor_type::q5_0, reinterpret_cast<const std::byte*>(&b), y, 32);
  EXPECT_EQ(y[3], 0.5f * ((10 | 16) - 16));
  EXPECT_EQ(y[19], 0.5f * (7 - 16));
  EXPECT_EQ(y[20], 0.5f * ((0 | 16) - 16));
  EXPECT_EQ(y[0], 0.5f * -16);
  // And the integer kernels read the same codes: against one-hot inputs the
  // matmul returns each weight (times the activation's 8-bit scale, exact here).
  thread_pool pool(1);
  matrix_view mv{tensor_type::q5_0, 1, 32, sizeof(b), reinterpret_cast<const std::byte*>(&b)};
  std::vector<isa> families = fast_families();
  families.insert(families.begin(), isa::scalar);
  for (isa f : families) {
    for (int e : {0, 3, 19, 20, 31}) {
      std::vector<float> x(32, 0.0f);
      x[static_cast<size_t>(e)] = 127.0f;
      float out = NAN;
      matmul_with(f, mv, {x.data(), nullptr, 1, 0}, &out, pool);
      EXPECT_EQ(out, 127.0f * y[e]) << isa_name(f) << " element " << e;
    }
  }
}

// Blocks encoded by llama.cpp's own quantizer (compute/tests/golden/
// make_logits.py requantizes SmolLM2 and has ggml dequantize the result):
// decoding them must give ggml's floats exactly.
TEST(cpu_dequantize, llama_cpp_blocks_decode_exactly) {
  const char* src = std::getenv("TRIAGE_SOURCE_DIR");
  const std::filesystem::path dir = std::filesystem::path(src != nullptr ? src : ".") / "compute/tests/golden";
  std::ifstream jf(dir / "logits.json");
  ASSERT_TRUE(jf) << "missing " << dir / "logits.json";
  const auto j = nlohmann::json::parse(jf);
  std::ifstream bf(dir / j.at("blocks_file").get<std::string>(), std::ios::binary);
  const std::vector<char> blob((std::istreambuf_iterator<char>(bf)), std::istreambuf_iterator<char>());
  int checked = 0;
  thread_pool pool(2);
  for (const auto& b : j.at("blocks")) {
    const auto type = static_cast<tensor_type>(b.at("type").get<uint32_t>());
    const int64_t rows = b.at("rows").get<int64_t>(), cols = b.at("cols").get<int64_t>();
    const auto* bytes = reinterpret_cast<const std::byte*>(blob.data() + b.at("offset").get<size_t>());
    const auto* want = reinterpret_cast<const float*>(blob.data() + b.at("float_offset").get<size_t>());
    ASSERT_LE(b.at("float_offset").get<size_t>() + rows * cols * 4, blob.size());
    const size_t row_bytes = b.at("n_bytes").get<size_t>() / static_cast<size_t>(rows);
    std::vector<float> got(static_cast<size_t>(rows * cols));
    for (int64_t r = 0; r < rows; ++r) dequantize_row(type, bytes + r * row_bytes, got.data() + r * cols, cols);
    for (int64_t i = 0; i < rows * cols; ++i) {
      float w;
      std::memcpy(&w, want + i, 4);
      ASSERT_EQ(got[static_cast<size_t>(i)], w) << triage::gguf::type_name(type) << " element " << i;
    }
    // The integer kernels on llama.cpp's blocks agree with the reference.
    const auto x = random_floats(static_cast<size_t>(5 * cols), 77);
    matrix_view mv{type, rows, cols, row_bytes, bytes};
    std::vector<float> ref(static_cast<size_t>(5 * rows)), y(ref.size());
    matmul_reference(mv, x.data(), 5, ref.data());
    matmul(mv, x.data(), 5, y.data(), pool);
    EXPECT_LT(norm_err(y, ref), 1e-2) << triage::gguf::type_name(type);
    ++checked;
  }
  EXPECT_EQ(checked, 3);  // Q4_K, Q6_K, Q4_0
}

TEST(cpu_dequantize, encoders_round_trip) {
  for (tensor_type t : all_types) {
    const int64_t rows = 3, cols = 512;
    const auto w = random_floats(static_cast<size_t>(rows * cols), 11);
    const auto bytes = quantize_weights(t, w, rows, cols);
    ASSERT_EQ(bytes.size(), rows * *triage::gguf::row_bytes(t, cols));
    std::vector<float> back(w.size());
    for (int64_t r = 0; r < rows; ++r) {
      dequantize_row(t, bytes.data() + r * (bytes.size() / rows), back.data() + r * cols, cols);
    }
    EXPECT_LE(norm_err(back, w), encode_bound(t)) << triage::gguf::type_name(t);
  }
}

// --- activation quantization ---

TEST(cpu_quantize, activations_fast_equals_reference) {
  const int64_t m = 7, k = 96;
  auto x = random_floats(static_cast<size_t>(m * k), 3, 2.0f);
  x[5] = 0.0f;
  std::fill(x.begin() + 32, x.begin() + 64, 0.0f);  // an all-zero block
  q8_activations fast, ref;
  quantize_activations(x.data(), m, k, fast);
  quantize_activations_reference(x.data(), m, k, ref);
  ASSERT_EQ(0, std::memcmp(fast.q.data(), ref.q.data(), static_cast<size_t>(m * k)));
  for (int64_t i = 0; i < m * fast.nb; ++i) {
    ASSERT_EQ(fast.d[i], ref.d[i]) << i;
    ASSERT_EQ(fast.s[i], ref.s[i]) << i;
  }
  // And it is a quantization: |x - d q| <= d / 2 per element.
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t l = 0; l < k; ++l) {
      const float d = ref.row_d(i)[l / 32];
      EXPECT_NEAR(x[i * k + l], d * ref.row_q(i)[l], d * 0.51f + 1e-6f);
    }
  }
}

// ggml's Q8_K, written out independently: per 256 values, the value of
// largest magnitude v maps to -127, codes min(127, round(x * -127 / v)),
// d = 1 / (-127 / v).
TEST(cpu_quantize, q8_k_activations_follow_ggml_rule) {
  const int64_t m = 3, k = 512;
  auto x = random_floats(static_cast<size_t>(m * k), 21, 2.0f);
  x[7] = 9.0f;                                        // row 0, super-block 0: positive max
  x[300] = -9.5f;                                     // row 0, super-block 1: negative max
  std::fill(x.begin() + k, x.begin() + k + 256, 0.0f);  // row 1, super-block 0: zeros
  for (bool fast : {false, true}) {
    q8_activations xq;
    if (fast) {
      thread_pool pool(2);
      quantize_activations(x.data(), m, k, xq, &pool, 0, q8_format::q8_k);
    } else {
      quantize_activations_reference(x.data(), m, k, xq, 0, q8_format::q8_k);
    }
    ASSERT_EQ(xq.format, q8_format::q8_k);
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t sb = 0; sb < k / 256; ++sb) {
        const float* xb = x.data() + i * k + sb * 256;
        float v = 0.0f;
        for (int j = 0; j < 256; ++j) {
          if (std::fabs(xb[j]) > std::fabs(v)) v = xb[j];
        }
        const float iscale = v != 0.0f ? -127.0f / v : 0.0f;
        const float d = v != 0.0f ? 1.0f / iscale : 0.0f;
        for (int b = 0; b < 8; ++b) {
          int sum = 0;
          for (int j = 0; j < 32; ++j) {
            const int want = std::min(127, static_cast<int>(std::nearbyint(iscale * xb[32 * b + j])));
            ASSERT_EQ(xq.row_q(i)[sb * 256 + 32 * b + j], want) << i << " " << sb << " " << j;
            sum += want;
          }
          ASSERT_EQ(xq.row_d(i)[sb * 8 + b], d);
          ASSERT_FLOAT_EQ(xq.row_s(i)[sb * 8 + b], d * static_cast<float>(sum));
        }
      }
    }
    EXPECT_EQ(xq.row_q(0)[7], -127);     // the positive maximum maps to -127
    EXPECT_EQ(xq.row_q(0)[300], -127);   // so does the negative one (d < 0)
    EXPECT_EQ(xq.row_d(1)[0], 0.0f);
  }
  q8_activations bad;
  EXPECT_THROW(quantize_activations(x.data(), 1, 96, bad, nullptr, 0, q8_format::q8_k),
               std::invalid_argument);
  EXPECT_EQ(activation_format(tensor_type::q4_k), q8_format::q8_0);  // see quantize.h
  EXPECT_EQ(activation_format(tensor_type::q6_k), q8_format::q8_k);
  EXPECT_EQ(activation_format(tensor_type::q4_1), q8_format::q8_0);
  EXPECT_EQ(activation_format(tensor_type::q5_0), q8_format::q8_0);
}

// matmul rounds the activations to activation_format(W.type) by itself
// (Q8_K for Q6_K) and takes a given xq in either format: every kernel family
// equals the float reference applied to the dequantized activations (only
// float summation order differs).
TEST(cpu_matmul, kernels_read_either_activation_format) {
  thread_pool pool(2);
  const int64_t n = 20, k = 768, m = 6;
  const auto w = random_floats(static_cast<size_t>(n * k), 31);
  const auto x = random_floats(static_cast<size_t>(m * k), 32, 3.0f);
  for (auto [t, format] : {std::pair{tensor_type::q6_k, q8_format::q8_k},
                           std::pair{tensor_type::q4_k, q8_format::q8_k},
                           std::pair{tensor_type::q4_k, q8_format::q8_0},
                           std::pair{tensor_type::q4_1, q8_format::q8_0}}) {
    const auto bytes = quantize_weights(t, w, n, k);
    matrix_view mv{t, n, k, bytes.size() / static_cast<size_t>(n), bytes.data()};
    q8_activations xq;
    quantize_activations_reference(x.data(), m, k, xq, 0, format);
    const bool own = format == activation_format(t);  // matmul quantizes by itself
    std::vector<float> xd(static_cast<size_t>(m * k));
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t l = 0; l < k; ++l) xd[i * k + l] = xq.row_d(i)[l / 32] * xq.row_q(i)[l];
    }
    std::vector<float> ref(static_cast<size_t>(m * n));
    matmul_reference(mv, xd.data(), m, ref.data());
    std::vector<isa> families = fast_families();
    families.push_back(isa::scalar);
    for (isa f : families) {
      std::vector<float> y(ref.size(), NAN);
      matmul_with(f, mv, {x.data(), own ? nullptr : &xq, m, 0}, y.data(), pool);
      // The per-32 format keeps its offset terms (Q4_1, Q4_K) in F16, as
      // ggml's Q8_1: 2^-11 relative on those.
      const bool f16_offsets = format == q8_format::q8_0 && t != tensor_type::q6_k;
      EXPECT_LT(norm_err(y, ref), f16_offsets ? 1e-3 : 1e-5)
          << triage::gguf::type_name(t) << " " << isa_name(f) << " own " << own;
    }
  }
}

// --- matmul ---

// Fast vs the float reference: the q8 paths quantize the activations to 8
// bits per 32 values, which costs up to ~0.5% (normalized); float weights
// only differ in summation order.
double matmul_bound(tensor_type t) { return uses_q8(t) ? 1e-2 : 1e-5; }

struct shape {
  int64_t n, k, m;
};

// The error against the reference is summed over all shapes of a type (a
// single output of a small shape can be near zero, which makes its own
// relative error meaningless); the fast-vs-scalar check is per shape.
TEST(cpu_matmul, every_type_every_family_matches_reference) {
  thread_pool pool(3);
  const shape shapes[] = {{1, 256, 1},  {7, 256, 3},   {33, 512, 5},
                          {64, 768, 17}, {5, 1536, 9}, {130, 256, 70}, {24, 512, 65}};
  uint32_t seed = 100;
  for (tensor_type t : all_types) {
    const auto name = triage::gguf::type_name(t);
    std::vector<float> all_ref, all_scalar;
    std::vector<std::vector<float>> all_fast(fast_families().size());
    for (const shape& s : shapes) {
      const auto w = random_floats(static_cast<size_t>(s.n * s.k), seed++);
      const auto x = random_floats(static_cast<size_t>(s.m * s.k), seed++);
      const auto bytes = quantize_weights(t, w, s.n, s.k);
      matrix_view mv{t, s.n, s.k, bytes.size() / static_cast<size_t>(s.n), bytes.data()};
      std::vector<float> ref(static_cast<size_t>(s.m * s.n));
      matmul_reference(mv, x.data(), s.m, ref.data());
      all_ref.insert(all_ref.end(), ref.begin(), ref.end());

      std::vector<float> scalar(ref.size(), NAN);
      matmul_with(isa::scalar, mv, {x.data(), nullptr, s.m, 0}, scalar.data(), pool);
      all_scalar.insert(all_scalar.end(), scalar.begin(), scalar.end());
      for (size_t f = 0; f < fast_families().size(); ++f) {
        std::vector<float> y(ref.size(), NAN);
        matmul_with(fast_families()[f], mv, {x.data(), nullptr, s.m, 0}, y.data(), pool);
        // Same algorithm as the scalar path: only the summation order differs.
        EXPECT_LT(norm_err(y, scalar), 1e-5) << name << " " << isa_name(fast_families()[f])
                                              << " vs scalar, n=" << s.n << " k=" << s.k
                                              << " m=" << s.m;
        all_fast[f].insert(all_fast[f].end(), y.begin(), y.end());
      }
    }
    const double e = norm_err(all_scalar, all_ref);
    EXPECT_LT(e, matmul_bound(t)) << name << " scalar";
    std::printf("%-5s scalar err %.2e", std::string(name).c_str(), e);
    for (size_t f = 0; f < fast_families().size(); ++f) {
      const double ef = norm_err(all_fast[f], all_ref);
      EXPECT_LT(ef, matmul_bound(t)) << name << " " << isa_name(fast_families()[f]);
      std::printf("  %s %.2e", std::string(isa_name(fast_families()[f])).c_str(), ef);
    }
    std::printf("  (bound %.0e)\n", matmul_bound(t));
  }
}

// Each output row is computed by the same operations whatever its place in
// the batch (tile column, group, tail): a row alone gives the same bits as
// that row among 70 others. The ragged batch's exactness rests on this.
TEST(cpu_matmul, a_row_alone_equals_the_row_in_a_batch) {
  thread_pool pool(2);
  const int64_t n = 12, k = 512, m = 70;
  const auto x = random_floats(static_cast<size_t>(m * k), 9);
  for (tensor_type t : all_types) {
    const auto w = random_floats(static_cast<size_t>(n * k), 10);
    const auto bytes = quantize_weights(t, w, n, k);
    matrix_view mv{t, n, k, bytes.size() / static_cast<size_t>(n), bytes.data()};
    for (isa f : fast_families()) {
      std::vector<float> all(static_cast<size_t>(m * n)), one(static_cast<size_t>(n));
      matmul_with(f, mv, {x.data(), nullptr, m, 0}, all.data(), pool);
      for (int64_t c : {0, 3, 4, 33, 64, 69}) {
        matmul_with(f, mv, {x.data() + c * k, nullptr, 1, 0}, one.data(), pool);
        for (int64_t r = 0; r < n; ++r) {
          ASSERT_EQ(one[static_cast<size_t>(r)], all[static_cast<size_t>(c * n + r)])
              << triage::gguf::type_name(t) << " " << isa_name(f) << " row " << c;
        }
      }
    }
  }
}

TEST(cpu_matmul, strided_input_output_and_shared_quantized_input) {
  thread_pool pool(2);
  const int64_t n = 40, k = 256, m = 6, ldx = 300, ldy = 50;
  const auto w = random_floats(static_cast<size_t>(n * k), 1);
  auto xs = random_floats(static_cast<size_t>(m * ldx), 2);
  const auto bytes = quantize_weights(tensor_type::q4_1, w, n, k);
  matrix_view mv{tensor_type::q4_1, n, k, bytes.size() / n, bytes.data()};
  std::vector<float> x(static_cast<size_t>(m * k));
  for (int64_t i = 0; i < m; ++i) std::memcpy(&x[i * k], &xs[i * ldx], k * 4);
  std::vector<float> dense(static_cast<size_t>(m * n));
  matmul(mv, x.data(), m, dense.data(), pool);

  q8_activations xq;
  quantize_activations(xs.data(), m, k, xq, &pool, ldx);
  std::vector<float> strided(static_cast<size_t>(m * ldy), -1.0f);
  matmul(mv, {xs.data(), &xq, m, ldx}, strided.data(), pool, ldy);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) EXPECT_EQ(strided[i * ldy + j], dense[i * n + j]);
    for (int64_t j = n; j < ldy; ++j) EXPECT_EQ(strided[i * ldy + j], -1.0f);  // untouched
  }
}

// --- ops ---

TEST(cpu_ops, rmsnorm_matches_formula) {
  const auto x = random_floats(576, 5, 3.0f);
  const auto w = random_floats(576, 6);
  std::vector<float> y(576);
  rmsnorm(x.data(), w.data(), y.data(), 576, 1e-5f);
  double ss = 0;
  for (float v : x) ss += static_cast<double>(v) * v;
  const double scale = 1.0 / std::sqrt(ss / 576 + 1e-5);
  for (int i = 0; i < 576; ++i) EXPECT_NEAR(y[i], x[i] * scale * w[i], 1e-5 * std::fabs(x[i] * scale * w[i]) + 1e-6);
}

TEST(cpu_ops, rope_normal_rotates_adjacent_pairs) {
  rope_table rope(8, 10000.0f);
  const std::vector<int32_t> pos{0, 3};
  rope.prepare(pos);
  std::vector<float> x{1, 2, 3, 4, 5, 6, 7, 8};
  auto y = x;
  rope.apply_normal(y.data(), 0);  // position 0: identity
  EXPECT_EQ(y, x);
  y = x;
  rope.apply_normal(y.data(), 1);
  for (int i = 0; i < 4; ++i) {
    const double theta = 3.0 * std::pow(10000.0, -2.0 * i / 8);
    EXPECT_NEAR(y[2 * i], x[2 * i] * std::cos(theta) - x[2 * i + 1] * std::sin(theta), 1e-5);
    EXPECT_NEAR(y[2 * i + 1], x[2 * i] * std::sin(theta) + x[2 * i + 1] * std::cos(theta), 1e-5);
  }
  y = x;
  rope.apply_neox(y.data(), 1);
  for (int i = 0; i < 4; ++i) {
    const double theta = 3.0 * std::pow(10000.0, -2.0 * i / 8);
    EXPECT_NEAR(y[i], x[i] * std::cos(theta) - x[i + 4] * std::sin(theta), 1e-5);
    EXPECT_NEAR(y[i + 4], x[i] * std::sin(theta) + x[i + 4] * std::cos(theta), 1e-5);
  }
}

// Scaled tables against the formula, computed here in double: the angle of
// pair i at position p is scale * p * base^(-2i / n) / ff[i].
TEST(cpu_ops, rope_scaling_follows_ggml_formula) {
  const int n = 16;
  const std::vector<float> ff{1.0f, 1.0f, 2.5f, 4.0f, 8.0f, 8.0f, 31.0f, 0.75f};
  const std::vector<int32_t> pos{0, 1, 7, 100};
  for (float scale : {1.0f, 0.25f, 0.125f}) {
    for (bool factors : {false, true}) {
      rope_table rope(n, 500000.0f, scale,
                      factors ? std::span<const float>(ff) : std::span<const float>());
      rope.prepare(pos);
      for (size_t p = 0; p < pos.size(); ++p) {
        // x = (1 .. 1, 0 .. 0): neox rotation leaves cos in x[i], sin in x[i + n/2].
        std::vector<float> x(n, 0.0f);
        std::fill(x.begin(), x.begin() + n / 2, 1.0f);
        rope.apply_neox(x.data(), static_cast<int64_t>(p));
        for (int i = 0; i < n / 2; ++i) {
          const double theta = scale * pos[p] * std::pow(500000.0, -2.0 * i / n) /
                               (factors ? ff[static_cast<size_t>(i)] : 1.0);
          EXPECT_NEAR(x[i], std::cos(theta), 2e-5) << scale << " " << factors << " " << pos[p];
          EXPECT_NEAR(x[i + n / 2], std::sin(theta), 2e-5) << scale << " " << factors << " " << pos[p];
        }
      }
    }
  }
  // Scale 1 and no factors: the same table as the plain constructor, bit for bit.
  rope_table plain(n, 500000.0f), unit(n, 500000.0f, 1.0f, std::vector<float>(n / 2, 1.0f));
  plain.prepare(pos);
  unit.prepare(pos);
  std::vector<float> a(n, 0.5f), b(n, 0.5f);
  plain.apply_normal(a.data(), 3);
  unit.apply_normal(b.data(), 3);
  EXPECT_EQ(a, b);
}

TEST(cpu_ops, softmax_silu_swiglu_gelu_add) {
  std::vector<float> s{1.0f, 2.0f, 3.0f, -1000.0f};
  softmax(s.data(), 4);
  const double z = std::exp(-2.0) + std::exp(-1.0) + 1.0;
  EXPECT_NEAR(s[0], std::exp(-2.0) / z, 1e-7);
  EXPECT_NEAR(s[2], 1.0 / z, 1e-7);
  EXPECT_EQ(s[3], 0.0f);

  std::vector<float> g{-2.0f, 0.0f, 1.5f}, u{2.0f, 3.0f, -1.0f}, o(3);
  swiglu(g.data(), u.data(), o.data(), 3);
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(o[i], g[i] / (1 + std::exp(-g[i])) * u[i], 1e-6);
  silu(g.data(), 3);
  EXPECT_NEAR(g[2], 1.5 / (1 + std::exp(-1.5)), 1e-6);

  std::vector<float> x{-1.0f, 0.5f};
  gelu(x.data(), 2);
  EXPECT_NEAR(x[0], -0.158808f, 1e-5);  // gelu_pytorch_tanh(-1)
  EXPECT_NEAR(x[1], 0.345714f, 1e-5);
  std::vector<float> a{1, 2}, b{3, 4};
  add(a.data(), b.data(), 2);
  EXPECT_EQ(a, (std::vector<float>{4, 6}));
}

// The vector SwiGLU (its own exp) against the formula in double, over the
// range of gate values a model produces and beyond: within 4 ulp-ish.
TEST(cpu_ops, swiglu_vector_path_is_accurate) {
  std::vector<float> g(4099), u(g.size()), out(g.size());
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> dist(-40.0f, 40.0f);
  for (size_t i = 0; i < g.size(); ++i) {
    g[i] = i < 200 ? (static_cast<float>(i) - 100.0f) * 0.01f : dist(rng);
    u[i] = 1.0f + 0.001f * static_cast<float>(i % 17);
  }
  g[0] = 120.0f;  // clamped range
  g[1] = -120.0f;
  swiglu(g.data(), u.data(), out.data(), static_cast<int64_t>(g.size()));
  for (size_t i = 0; i < g.size(); ++i) {
    const double want = g[i] / (1.0 + std::exp(-static_cast<double>(g[i]))) * u[i];
    EXPECT_NEAR(out[i], want, 4e-7 * std::fabs(want) + 1e-30) << "g = " << g[i];
  }
}

TEST(cpu_attention, causal_gqa_head_matches_naive) {
  const int hd = 64, n_kv_heads = 2;
  const int64_t n = 9, ld = n_kv_heads * hd;
  const auto q = random_floats(static_cast<size_t>(n * hd), 1);
  const auto k = random_floats(static_cast<size_t>(n * ld), 2);
  const auto v = random_floats(static_cast<size_t>(n * ld), 3);
  for (int64_t pos0 : {0, 4}) {  // a fresh sequence, and 5 new queries after 4 cached keys
    const int64_t n_q = n - pos0;
    std::vector<float> out(static_cast<size_t>(n_q * hd));
    std::vector<float> scratch(attention_scratch_floats(n, hd));
    attention_args a;
    a.q = q.data() + pos0 * hd;
    a.ldq = hd;
    a.n_q = n_q;
    a.q_pos0 = pos0;
    a.k = k.data() + hd;  // kv head 1
    a.v = v.data() + hd;
    a.ldkv = ld;
    a.head_dim = hd;
    a.scale = 0.125f;
    a.out = out.data();
    a.ldo = hd;
    attention_head(a, scratch);
    for (int64_t i = 0; i < n_q; ++i) {
      const int64_t nk = pos0 + i + 1;
      std::vector<double> p(static_cast<size_t>(nk));
      double mx = -1e300, sum = 0;
      for (int64_t j = 0; j < nk; ++j) {
        double d = 0;
        for (int l = 0; l < hd; ++l) d += static_cast<double>(a.q[i * hd + l]) * a.k[j * ld + l];
        p[j] = d * 0.125;
        mx = std::max(mx, p[j]);
      }
      for (auto& e : p) sum += (e = std::exp(e - mx));
      for (int l = 0; l < hd; ++l) {
        double o = 0;
        for (int64_t j = 0; j < nk; ++j) o += p[j] / sum * a.v[j * ld + l];
        EXPECT_NEAR(out[i * hd + l], o, 1e-5) << "pos0 " << pos0 << " query " << i;
      }
    }
  }
}

// --- thread pool ---

TEST(cpu_thread_pool, parallel_for_covers_each_index_once) {
  for (int threads : {1, 2, 5}) {
    thread_pool pool(threads);
    EXPECT_EQ(pool.size(), threads);
    for (int64_t n : {0, 1, 7, 1000}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      for (int rep = 0; rep < 20; ++rep) {
        pool.parallel_for(n, 3, [&](int64_t b, int64_t e) {
          for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)]++;
        });
      }
      for (auto& h : hits) ASSERT_EQ(h.load(), 20);
    }
    std::vector<int> seen(static_cast<size_t>(threads), 0);
    pool.run([&](int t) { seen[static_cast<size_t>(t)]++; });
    for (int s : seen) EXPECT_EQ(s, 1);
  }
}

}  // namespace
