// Parity of every forward-pass shader (compute/shaders) with the CPU engine's
// kernels (compute/cpu) on the best device allowed, lavapipe where there is
// no GPU, over shapes that are not multiples of the workgroup or tile sizes.
// Bounds are on max|gpu - cpu| / max|cpu| (see vulkan_test_util.h):
//  - 1e-5 for f32 ops; the shaders and the CPU round differently (fused
//    multiply-adds, summation order, the device's exp and sqrt), a few ulp
//    per element.
//  - mul_mat, every weight type: both sides dequantize the same block values
//    exactly (F16 scale times a small integer is exact in f32); what remains
//    is the summation of k products in f32 on the device against double on
//    the CPU reference, about sqrt(k) * 2^-24 relative to the terms, i.e.
//    below 1e-5 of the largest output for k up to 1024 with random data.
#include <gtest/gtest.h>
#include <unistd.h>


#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <tuple>
#include <vector>

#include "compute/cpu/attention.h"
#include "compute/cpu/dequantize.h"
#include "compute/cpu/matmul.h"
#include "compute/cpu/ops.h"
#include "compute/cpu/quantize.h"
#include "compute/cpu/thread_pool.h"
#include "compute/gguf/types.h"
#include "compute/shaders/spirv.h"
#include "compute/tests/vulkan_test_util.h"
#include "compute/vulkan/ops.h"

namespace triage::vulkan {

namespace {

using gguf::tensor_type;
using test::matmul_case;
using test::normalized_error;
using test::random_floats;

class vulkan_ops : public test::ops_fixture {};

// --- mul_mat and get_rows, per weight type ---

class vulkan_mul_mat : public vulkan_ops, public ::testing::WithParamInterface<matmul_case> {};

TEST_P(vulkan_mul_mat, matches_cpu_reference) {
  const int rows = GetParam().rows, m = GetParam().m;
  const test::matmul_problem p(GetParam());
  const auto ref = p.reference();

  // Both kernels, and the row kernel also on the matrix split into slices of
  // 3 rows (as a matrix larger than maxStorageBufferRange would be).
  for (auto [kernel, slice_bytes] :
       {std::pair{matmul_kernel::rows, uint64_t{0}}, std::pair{matmul_kernel::tiles, uint64_t{0}},
        std::pair{matmul_kernel::rows, p.row_bytes * 3 + 1}}) {
    SCOPED_TRACE(kernel == matmul_kernel::rows ? "rows kernel" : "tiles kernel");
    ops_->set_matmul_kernel(kernel);
    auto w = upload_matrix(*ctx_, p.view, slice_bytes);
    ASSERT_TRUE(w) << w.error().what();
    if (slice_bytes != 0) {
      EXPECT_EQ(w.value().slices.size(), static_cast<size_t>((rows + 2) / 3));
    }
    buffer bx = upload(p.x);
    buffer by = zeros(ref.size());
    run([&](ops& k) { return k.mul_mat(w.value(), bx, m, by); });
    ops_->set_matmul_kernel(matmul_kernel::automatic);
    const auto got = read(by, ref.size());
    EXPECT_LT(normalized_error(got, ref), 1e-5)
        << "slices " << w.value().slices.size() << ", first " << got[0] << " vs " << ref[0];
  }
}

// Quantized weight types only: float weights take float activations.
class vulkan_mul_mat_q8 : public vulkan_mul_mat {};

TEST_P(vulkan_mul_mat_q8, q8_activations_match_cpu_integer_kernels) {
  // The rounding of activations to int8 per block of 32 (what the forward
  // pass does for quantized weights) against the CPU engine's own kernels,
  // which round them the same way: both compute the same products in a
  // different order (1e-4), and for Q4_0, Q4_1 and Q4_K the CPU keeps each
  // block's offset term (d_x * sum q_x) in F16: 2^-11 = 4.9e-4 relative on
  // those terms, hence 1e-3 for them (matmul_problem::q8_bound()).
  const int m = GetParam().m;
  const test::matmul_problem p(GetParam());
  const auto ref = p.q8_reference();
  auto w = upload_matrix(*ctx_, p.view);
  ASSERT_TRUE(w) << w.error().what();
  buffer bx = upload(p.x), by = zeros(ref.size());
  run([&](ops& k) { return k.mul_mat(w.value(), bx, m, by, 0, 0, /*q8_activations=*/true); });
  EXPECT_LT(normalized_error(read(by, ref.size()), ref), p.q8_bound());
}

TEST_P(vulkan_mul_mat, get_rows_matches_cpu_dequantize) {
  const auto [type, rows, cols, m] = GetParam();
  const auto values = random_floats(static_cast<size_t>(rows) * cols, rows + cols);
  const auto bytes = cpu::quantize_weights(type, values, rows, cols);
  const uint64_t row_bytes = *gguf::row_bytes(type, cols);
  const cpu::matrix_view view{type, rows, cols, row_bytes, bytes.data()};
  std::vector<int32_t> ids(static_cast<size_t>(m));
  std::mt19937 rng(m);
  for (auto& id : ids) id = static_cast<int32_t>(rng() % rows);
  std::vector<float> ref(ids.size() * cols);
  for (size_t i = 0; i < ids.size(); ++i) {
    cpu::dequantize_row(type, view.row(ids[i]), ref.data() + i * cols, cols);
  }
  // Whole, and split into slices of 2 rows (each dispatch writes its ids).
  for (uint64_t slice_bytes : {uint64_t{0}, row_bytes * 2}) {
    auto w = upload_matrix(*ctx_, view, slice_bytes);
    ASSERT_TRUE(w) << w.error().what();
    buffer bids = upload(ids);
    buffer by = zeros(ref.size());
    run([&](ops& k) { return k.get_rows(w.value(), bids, static_cast<uint32_t>(m), by); });
    // Exact but for the association of K-quant scale products.
    EXPECT_LT(normalized_error(read(by, ref.size()), ref), 1e-6)
        << w.value().slices.size() << " slices";
  }
}

std::vector<matmul_case> matmul_cases() {
  return test::matmul_cases({{1, 32, 1},
                             {67, 96, 5},      // m <= 8: the tall tile
                             {130, 576, 33}}); // SmolLM2's dim; ragged tiles in n and m
}

INSTANTIATE_TEST_SUITE_P(types, vulkan_mul_mat, ::testing::ValuesIn(matmul_cases()),
                         test::case_name);

INSTANTIATE_TEST_SUITE_P(types, vulkan_mul_mat_q8,
                         ::testing::ValuesIn(test::quantized_cases(matmul_cases())),
                         test::case_name);

TEST_F(vulkan_ops, f32_matmul_takes_any_k) {
  // Float types need no whole blocks: k = 45 leaves a partial slice of 32.
  const int rows = 9, cols = 45, m = 3;
  const auto values = random_floats(rows * cols, 1);
  const cpu::matrix_view view{tensor_type::f32, rows, cols, cols * 4u,
                              reinterpret_cast<const std::byte*>(values.data())};
  const auto x = random_floats(m * cols, 2);
  std::vector<float> ref(m * rows);
  cpu::matmul_reference(view, x.data(), m, ref.data());
  auto w = upload_matrix(*ctx_, view);
  ASSERT_TRUE(w) << w.error().what();
  buffer bx = upload(x), by = zeros(ref.size());
  run([&](ops& k) { return k.mul_mat(w.value(), bx, m, by); });
  EXPECT_LT(normalized_error(read(by, ref.size()), ref), 1e-5);
}

TEST_F(vulkan_ops, rejects_buffers_too_small_for_the_sizes) {
  const auto values = random_floats(64 * 32, 3);
  const cpu::matrix_view view{tensor_type::f32, 64, 32, 128,
                              reinterpret_cast<const std::byte*>(values.data())};
  auto w = upload_matrix(*ctx_, view);
  ASSERT_TRUE(w);
  buffer bx = zeros(32 * 2), by = zeros(64);  // y too small for m = 2
  ASSERT_TRUE(ctx_->begin());
  auto r = ops_->mul_mat(w.value(), bx, 2, by);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::invalid_argument);
  EXPECT_NE(r.error().message.find("'y'"), std::string::npos) << r.error().message;
}

TEST_F(vulkan_ops, upload_rejects_types_without_a_shader) {
  std::vector<std::byte> data(64);
  const cpu::matrix_view view{tensor_type::q5_0, 1, 32, 22, data.data()};
  auto w = upload_matrix(*ctx_, view);
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error().code, errc::invalid_argument);
  EXPECT_NE(w.error().message.find("Q5_0"), std::string::npos) << w.error().message;
}

// --- row-wise and element-wise ops ---

class vulkan_rows : public vulkan_ops,
                    public ::testing::WithParamInterface<std::tuple<int, int>> {};

TEST_P(vulkan_rows, rms_norm_matches_cpu) {
  const auto [rows, cols] = GetParam();
  const auto x = random_floats(static_cast<size_t>(rows) * cols, rows + cols, -3.0f, 3.0f);
  const auto w = random_floats(cols, 5, 0.5f, 2.0f);
  std::vector<float> ref(x.size());
  for (int r = 0; r < rows; ++r) {
    cpu::rmsnorm(x.data() + r * cols, w.data(), ref.data() + r * cols, cols, 1e-5f);
  }
  buffer bx = upload(x), bw = upload(w), by = zeros(x.size());
  run([&](ops& k) { return k.rms_norm(bx, bw, by, rows, cols, 1e-5f); });
  EXPECT_LT(normalized_error(read(by, x.size()), ref), 1e-5);
  // In place, as the forward pass does not, but the op allows.
  run([&](ops& k) { return k.rms_norm(bx, bw, bx, rows, cols, 1e-5f); });
  EXPECT_LT(normalized_error(read(bx, x.size()), ref), 1e-5);
}

TEST_P(vulkan_rows, softmax_matches_cpu) {
  const auto [rows, cols] = GetParam();
  auto x = random_floats(static_cast<size_t>(rows) * cols, rows * cols, -20.0f, 20.0f);
  buffer bx = upload(x);
  for (int r = 0; r < rows; ++r) cpu::softmax(x.data() + r * cols, cols);
  run([&](ops& k) { return k.softmax(bx, rows, cols); });
  EXPECT_LT(normalized_error(read(bx, x.size()), x), 1e-5);
}

TEST_P(vulkan_rows, swiglu_and_add_match_cpu) {
  const auto [rows, cols] = GetParam();
  const size_t n = static_cast<size_t>(rows) * cols;
  const auto gate = random_floats(n, 11, -10.0f, 10.0f), up = random_floats(n, 12, -3.0f, 3.0f);
  std::vector<float> ref(n);
  cpu::swiglu(gate.data(), up.data(), ref.data(), static_cast<int64_t>(n));
  buffer bg = upload(gate), bu = upload(up);
  run([&](ops& k) { return k.swiglu(bg, bu, bg, static_cast<uint32_t>(n)); });  // in place
  EXPECT_LT(normalized_error(read(bg, n), ref), 1e-5);

  std::vector<float> sum = gate;
  cpu::add(sum.data(), up.data(), static_cast<int64_t>(n));
  buffer ba = upload(gate);
  run([&](ops& k) { return k.add(ba, bu, ba, static_cast<uint32_t>(n)); });  // in place
  const auto got = read(ba, n);
  for (size_t i = 0; i < n; ++i) ASSERT_EQ(got[i], sum[i]) << i;
}

INSTANTIATE_TEST_SUITE_P(shapes, vulkan_rows,
                         ::testing::Values(std::tuple{1, 1}, std::tuple{3, 577},
                                           std::tuple{7, 64}, std::tuple{2, 4097},
                                           std::tuple{5, 1536}));

TEST_F(vulkan_ops, rope_matches_cpu_rope_table) {
  // SmolLM2: 9 query heads of 64, all rotated, base 100000; and a partial
  // rotation (n_rot < head_dim) with a row stride wider than the heads.
  for (auto [n_heads, head_dim, n_rot, base] :
       {std::tuple{9, 64, 64, 100000.0f}, std::tuple{3, 40, 24, 10000.0f}}) {
    const int ld = n_heads * head_dim + 5;
    const std::vector<int32_t> positions = {0, 1, 2, 0, 7, 8, 300, 4095, 3};
    const int n = static_cast<int>(positions.size());
    auto x = random_floats(static_cast<size_t>(n) * ld, n_heads, -2.0f, 2.0f);
    buffer bx = upload(x);
    buffer table = upload(rope_cos_sin(positions, n_rot, base));
    cpu::rope_table rope(n_rot, base);
    rope.prepare(positions);
    for (int t = 0; t < n; ++t) {
      for (int h = 0; h < n_heads; ++h) rope.apply_normal(x.data() + t * ld + h * head_dim, t);
    }
    run([&](ops& k) {
      return k.rope(bx, table, n, n_heads, head_dim, n_rot, static_cast<uint32_t>(ld));
    });
    EXPECT_LT(normalized_error(read(bx, x.size()), x), 1e-6) << "head_dim " << head_dim;
  }
}

TEST_F(vulkan_ops, attention_matches_cpu_per_sequence_and_head) {
  // A ragged batch: lengths around the workgroup size (64) and the key chunk
  // (256), grouped-query heads, head_dim 64 (SmolLM2) and 40 (ragged).
  const std::vector<int> lengths = {1, 5, 300, 64, 17, 257};
  // round_f16: q, k, v and the weights rounded to F16 on both sides; the CPU
  // rounds the normalised weights, the shader the unnormalised ones, so the
  // two differ by F16 rounding (2^-11 relative) of each weight.
  for (auto [n_heads, n_kv_heads, hd, round_f16] :
       {std::tuple{9, 3, 64, false}, std::tuple{4, 4, 40, false}, std::tuple{9, 3, 64, true}}) {
    std::vector<int32_t> first;
    std::vector<int64_t> offsets = {0};
    for (int len : lengths) {
      for (int i = 0; i < len; ++i) first.push_back(static_cast<int32_t>(offsets.back()));
      offsets.push_back(offsets.back() + len);
    }
    const int n = static_cast<int>(first.size());
    const int q_dim = n_heads * hd, kv_dim = n_kv_heads * hd;
    const auto q = random_floats(static_cast<size_t>(n) * q_dim, 1, -2.0f, 2.0f);
    const auto k = random_floats(static_cast<size_t>(n) * kv_dim, 2, -2.0f, 2.0f);
    const auto v = random_floats(static_cast<size_t>(n) * kv_dim, 3);
    auto q16 = q, k16 = k, v16 = v;
    if (round_f16) {
      cpu::round_to_f16(q16.data(), static_cast<int64_t>(q16.size()));
      cpu::round_to_f16(k16.data(), static_cast<int64_t>(k16.size()));
      cpu::round_to_f16(v16.data(), static_cast<int64_t>(v16.size()));
    }
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    std::vector<float> ref(q.size());
    std::vector<float> scratch(cpu::attention_scratch_floats(n, hd));
    for (size_t s = 0; s + 1 < offsets.size(); ++s) {
      for (int h = 0; h < n_heads; ++h) {
        cpu::attention_args a;
        a.q = q16.data() + offsets[s] * q_dim + h * hd;
        a.ldq = q_dim;
        a.n_q = offsets[s + 1] - offsets[s];
        a.k = k16.data() + offsets[s] * kv_dim + (h / (n_heads / n_kv_heads)) * hd;
        a.v = v16.data() + offsets[s] * kv_dim + (h / (n_heads / n_kv_heads)) * hd;
        a.ldkv = kv_dim;
        a.head_dim = hd;
        a.scale = scale;
        a.out = ref.data() + offsets[s] * q_dim + h * hd;
        a.ldo = q_dim;
        a.f16_weights = round_f16;
        cpu::attention_head(a, scratch);
      }
    }
    buffer bq = upload(q), bk = upload(k), bv = upload(v), bf = upload(first);
    buffer bo = zeros(q.size());
    run([&](ops& o) {
      return o.attention(bq, bk, bv, bf, bo, n, n_heads, n_kv_heads, hd, scale, round_f16);
    });
    EXPECT_LT(normalized_error(read(bo, q.size()), ref), round_f16 ? 2e-3 : 1e-5)
        << "head_dim " << hd << (round_f16 ? ", f16" : "");
  }
}

TEST_F(vulkan_ops, pool_takes_last_and_mean_per_sequence) {
  const int cols = 70;
  const std::vector<int32_t> offsets = {0, 1, 4, 70, 75};
  const int n_seqs = 4, n = offsets.back();
  const auto h = random_floats(static_cast<size_t>(n) * cols, 9);
  std::vector<float> last(n_seqs * cols), mean(n_seqs * cols, 0.0f);
  for (int s = 0; s < n_seqs; ++s) {
    for (int r = offsets[s]; r < offsets[s + 1]; ++r) {
      cpu::add(mean.data() + s * cols, h.data() + r * cols, cols);
    }
    for (int e = 0; e < cols; ++e) {
      mean[s * cols + e] *= 1.0f / static_cast<float>(offsets[s + 1] - offsets[s]);
      last[s * cols + e] = h[(offsets[s + 1] - 1) * cols + e];
    }
  }
  buffer bh = upload(h), bo = upload(offsets), bl = zeros(last.size()), bm = zeros(mean.size());
  run([&](ops& k) { return k.pool(bh, bo, bl, bm, n_seqs, cols); });
  EXPECT_EQ(read(bl, last.size()), last);
  EXPECT_LT(normalized_error(read(bm, mean.size()), mean), 1e-6);
}

TEST_F(vulkan_ops, one_recording_chains_ops_through_barriers) {
  // norm -> matmul -> swiglu -> add in one submit: each op reads what the one
  // before it wrote, which only the barriers between dispatches guarantee.
  const int n = 13, dim = 96;
  const auto x = random_floats(n * dim, 21), nw = random_floats(dim, 22, 0.5f, 1.5f);
  const auto wv = random_floats(dim * dim, 23);
  const cpu::matrix_view view{tensor_type::f32, dim, dim, dim * 4u,
                              reinterpret_cast<const std::byte*>(wv.data())};
  std::vector<float> normed(x.size()), y(x.size()), ref = x;
  for (int r = 0; r < n; ++r) {
    cpu::rmsnorm(x.data() + r * dim, nw.data(), normed.data() + r * dim, dim, 1e-5f);
  }
  cpu::matmul_reference(view, normed.data(), n, y.data());
  cpu::swiglu(y.data(), normed.data(), y.data(), n * dim);
  cpu::add(ref.data(), y.data(), n * dim);

  auto w = upload_matrix(*ctx_, view);
  ASSERT_TRUE(w);
  buffer bx = upload(x), bnw = upload(nw), bn = zeros(x.size()), by = zeros(x.size());
  run([&](ops& k) -> result<void> {
    if (auto r = k.rms_norm(bx, bnw, bn, n, dim, 1e-5f); !r) return r;
    if (auto r = k.mul_mat(w.value(), bn, n, by); !r) return r;
    if (auto r = k.swiglu(by, bn, by, n * dim); !r) return r;
    return k.add(bx, by, bx, n * dim);
  });
  EXPECT_LT(normalized_error(read(bx, x.size()), ref), 1e-5);
}

TEST_F(vulkan_ops, submit_without_begin_is_an_error) {
  auto r = ctx_->submit();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::invalid_argument);
}

}  // namespace
}  // namespace triage::vulkan

namespace triage::vulkan {
namespace {

// On the fixture for its shared context, which keeps the driver loaded while
// these tests open and close their own (see vulkan_test_util.h).
class vulkan_validation : public test::vulkan_fixture {};
class vulkan_pipeline_cache : public test::vulkan_fixture {};

TEST_F(vulkan_validation, reports_a_pipeline_layout_the_shader_does_not_fit) {
  // The mechanism the fixture relies on: with the layer on, a misuse our API
  // cannot see (add.comp reads 4 bytes of push constants, the layout
  // declares none) shows up in validation_messages().
  if (!test::validate()) GTEST_SKIP() << "validation layer not installed, or sanitizer build";
  auto ctx = context::create({.allow_cpu = true, .validation = true});
  ASSERT_TRUE(ctx) << ctx.error().what();
  EXPECT_TRUE(ctx.value().validation_messages().empty());
  auto p = ctx.value().create_pipeline(*shaders::find("add_f32"),
                                       {.binding_count = 3, .push_constant_size = 0});
  EXPECT_FALSE(ctx.value().validation_messages().empty());
}

TEST_F(vulkan_pipeline_cache, is_written_at_close_and_read_back) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("triage-vk-cache-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  {
    auto ctx = context::create({.allow_cpu = true, .pipeline_cache_dir = dir.string()});
    ASSERT_TRUE(ctx) << ctx.error().what();
    auto p = ctx.value().create_pipeline(*shaders::find("add_f32"),
                                         {.binding_count = 3, .push_constant_size = 4});
    ASSERT_TRUE(p) << p.error().what();
  }  // the device closes: the cache is written
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(dir)) files.push_back(e.path());
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0].extension(), ".bin");
  EXPECT_GT(std::filesystem::file_size(files[0]), 0u);
  // A second context starts from it, and a corrupt file is ignored.
  for (bool corrupt : {false, true}) {
    if (corrupt) std::ofstream(files[0], std::ios::binary | std::ios::trunc) << "not a cache";
    auto ctx = context::create({.allow_cpu = true, .pipeline_cache_dir = dir.string()});
    ASSERT_TRUE(ctx) << ctx.error().what();
    auto p = ctx.value().create_pipeline(*shaders::find("add_f32"),
                                         {.binding_count = 3, .push_constant_size = 4});
    EXPECT_TRUE(p) << (corrupt ? "corrupt cache" : "cache");
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace triage::vulkan
