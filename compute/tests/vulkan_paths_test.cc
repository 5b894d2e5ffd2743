// The optional shader paths (compute/vulkan/context.h shader_paths: subgroup
// reductions, integer dot products, 16-bit storage) against the CPU engine's
// kernels, each next to the portable path on the same device, and the
// choice of path: what the device enables, what ops picks, and that
// context_options::portable / TRIAGE_VULKAN_PORTABLE=1 leave only the
// portable shaders. On lavapipe (Mesa 22.3) every path is available, so all
// of them run in CI; a path the device lacks is skipped with a message.
//
// Bounds on max|gpu - cpu| / max|cpu| (vulkan_test_util.h):
//  - rms_norm, softmax, subgroup or not: 1e-5, as in vulkan_ops_test (the
//    subgroup sum only changes the order of the additions).
//  - mul_mat on float activations, every path (portable rows, one subgroup
//    per row, F16 through 16-bit storage): 1e-5 against
//    cpu::matmul_reference, as for the portable kernel: the same dequantized
//    values, summed in f32 in another order.
//  - mul_mat with int8 activations, every q8_kernel: against the CPU's own
//    integer kernels (cpu::matmul on q8_0-format activations), 1e-4, and
//    1e-3 for Q4_0, Q4_1, Q4_K whose offset terms the CPU keeps in F16
//    (2^-11 relative on those terms). The integer kernels compute the same
//    integer sums as the CPU exactly; what differs is a code rounded the
//    other way where the device's 127 / amax differs by an ulp, and the
//    order of the float additions.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cmath>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "compute/cpu/matmul.h"
#include "compute/cpu/ops.h"
#include "compute/cpu/quantize.h"
#include "compute/cpu/thread_pool.h"
#include "compute/gguf/types.h"
#include "compute/tests/vulkan_test_util.h"
#include "compute/vulkan/ops.h"

namespace triage::vulkan {

namespace {

using gguf::tensor_type;
using test::lower_type;
using test::matmul_case;
using test::normalized_error;
using test::random_floats;

constexpr shader_paths portable_paths{};
constexpr shader_paths subgroup_only{.subgroup = true};
constexpr shader_paths float16_only{.float16 = true};

class vulkan_paths : public test::ops_fixture {
 protected:
  // Each test starts and ends with the device's paths and the automatic
  // q8 kernel on the shared ops.
  void SetUp() override {
    test::ops_fixture::SetUp();
    restore_defaults();
  }
  void TearDown() override {
    restore_defaults();
    test::ops_fixture::TearDown();
  }
  void restore_defaults() {
    if (!ops_) return;
    ops_->set_paths(ctx_->device().paths);
    ops_->set_q8_kernel(q8_kernel::automatic);
  }
  // Sets `paths` on the shared ops; false (and a message) when the device
  // does not have them all.
  bool use(const shader_paths& paths) {
    return ops_->set_paths(paths) == paths;
  }
};

// --- which path is enabled and chosen ---

TEST_F(vulkan_paths, device_enables_only_paths_it_has_features_for) {
  const device_info& d = ctx_->device();
  std::cout << "device '" << d.name << "': paths " << to_string(d.paths) << "\n";
  if (d.paths.subgroup) {
    EXPECT_TRUE(d.subgroup_arithmetic);
    EXPECT_GE(d.subgroup_size, 4u);
    EXPECT_LE(d.subgroup_size, 128u);
  }
  EXPECT_TRUE(!d.paths.integer_dot || d.integer_dot_product);
  EXPECT_TRUE(!d.paths.float16 || d.storage_buffer_16bit);
  // list_devices() reports the same for the device.
  auto all = list_devices();
  ASSERT_TRUE(all) << all.error().what();
  ASSERT_LT(d.index, all.value().size());
  EXPECT_EQ(all.value()[d.index].paths, d.paths);
  // ops cannot turn on what the context did not enable.
  EXPECT_EQ(ops_->set_paths({.subgroup = true, .integer_dot = true, .float16 = true}), d.paths);
}

TEST_F(vulkan_paths, to_string_names_the_paths) {
  EXPECT_EQ(to_string(shader_paths{}), "portable");
  EXPECT_EQ(to_string(shader_paths{.subgroup = true, .float16 = true}), "subgroup float16");
  EXPECT_EQ(to_string(shader_paths{.integer_dot = true}), "integer_dot");
}

// Records one op of each kind on `k` and returns the shaders they ran.
std::vector<std::string> shaders_chosen(context& ctx, ops& k) {
  std::vector<std::string> out;
  const int cols = 64;
  const auto values = random_floats(4 * cols, 3);
  const auto q41 = cpu::quantize_weights(tensor_type::q4_1, values, 4, cols);
  const auto f16 = cpu::quantize_weights(tensor_type::f16, values, 4, cols);
  auto wq = upload_matrix(ctx, {tensor_type::q4_1, 4, cols, *gguf::row_bytes(tensor_type::q4_1, cols),
                                q41.data()});
  auto wf = upload_matrix(ctx, {tensor_type::f16, 4, cols, *gguf::row_bytes(tensor_type::f16, cols),
                                f16.data()});
  auto x = ctx.create_buffer(2 * cols * 4);
  auto y = ctx.create_buffer(2 * cols * 4);
  auto nw = ctx.create_buffer(cols * 4);
  if (!wq || !wf || !x || !y || !nw) return {"allocation failed"};
  EXPECT_TRUE(ctx.begin());
  auto note = [&](result<void> r) {
    out.push_back(r ? k.last_shader() : "error: " + r.error().message);
  };
  note(k.rms_norm(x.value(), nw.value(), y.value(), 2, cols, 1e-5f));
  note(k.softmax(y.value(), 2, cols));
  note(k.mul_mat(wq.value(), x.value(), 2, y.value()));
  note(k.mul_mat(wq.value(), x.value(), 2, y.value(), 0, 0, /*q8_activations=*/true));
  note(k.mul_mat(wf.value(), x.value(), 2, y.value()));
  auto s = ctx.submit();
  EXPECT_TRUE(s) << s.error().what();
  return out;
}

TEST_F(vulkan_paths, ops_choose_shaders_by_path) {
  ASSERT_TRUE(use(portable_paths));
  EXPECT_EQ(shaders_chosen(*ctx_, *ops_),
            (std::vector<std::string>{"rms_norm_f32", "softmax_f32", "mul_mat_q4_1", "mul_mat_q4_1",
                                      "mul_mat_f16"}));
  if (use(subgroup_only)) {
    EXPECT_EQ(shaders_chosen(*ctx_, *ops_),
              (std::vector<std::string>{"rms_norm_f32_sg", "softmax_f32_sg", "mul_mat_sg_q4_1",
                                        "mul_mat_q4_1", "mul_mat_sg_f16"}));
  }
  if (use({.integer_dot = true, .float16 = true})) {
    EXPECT_EQ(shaders_chosen(*ctx_, *ops_),
              (std::vector<std::string>{"rms_norm_f32", "softmax_f32", "mul_mat_q4_1",
                                        "mul_mat_q8dot_q4_1", "mul_mat_f16_storage"}));
  }
}

TEST_F(vulkan_paths, portable_option_enables_no_optional_path) {
  auto portable = context::create({.allow_cpu = true, .validation = test::validate(), .portable = true});
  ASSERT_TRUE(portable) << portable.error().what();
  EXPECT_EQ(portable.value().device().paths, portable_paths);
  EXPECT_EQ(portable.value().device().name, ctx_->device().name);
  {
    ops k(portable.value());
    EXPECT_EQ(k.paths(), portable_paths);
    // Asking for paths does not turn them on.
    EXPECT_EQ(k.set_paths({.subgroup = true, .integer_dot = true, .float16 = true}), portable_paths);
    EXPECT_EQ(shaders_chosen(portable.value(), k),
              (std::vector<std::string>{"rms_norm_f32", "softmax_f32", "mul_mat_q4_1", "mul_mat_q4_1",
                                        "mul_mat_f16"}));
    // The integer kernel needs no feature; the dot product one does.
    k.set_q8_kernel(q8_kernel::integer);
    auto shaders = shaders_chosen(portable.value(), k);
    ASSERT_EQ(shaders.size(), 5u);
    EXPECT_EQ(shaders[3], "mul_mat_q8int_q4_1");
    k.set_q8_kernel(q8_kernel::integer_dot);
    shaders = shaders_chosen(portable.value(), k);
    ASSERT_EQ(shaders.size(), 5u);
    EXPECT_NE(shaders[3].find("error: mul_mat: the integer dot product path is not enabled"),
              std::string::npos)
        << shaders[3];
  }
  for (const auto& m : portable.value().validation_messages()) ADD_FAILURE() << "validation: " << m;
}

TEST_F(vulkan_paths, portable_environment_variable_forces_the_portable_path) {
  ASSERT_EQ(::setenv("TRIAGE_VULKAN_PORTABLE", "1", 1), 0);
  auto forced = context::create({.allow_cpu = true, .validation = test::validate()});
  ::unsetenv("TRIAGE_VULKAN_PORTABLE");
  ASSERT_TRUE(forced) << forced.error().what();
  EXPECT_EQ(forced.value().device().paths, portable_paths);
  EXPECT_EQ(ops(forced.value()).paths(), portable_paths);
  // Without it, the same device gets what it has (the shared context).
  auto again = context::create({.allow_cpu = true, .validation = test::validate()});
  ASSERT_TRUE(again) << again.error().what();
  EXPECT_EQ(again.value().device().paths, ctx_->device().paths);
}

// --- rms_norm and softmax: portable and subgroup reductions ---

class vulkan_paths_rows : public vulkan_paths,
                          public ::testing::WithParamInterface<std::tuple<int, int>> {};

TEST_P(vulkan_paths_rows, rms_norm_and_softmax_match_cpu_on_every_path) {
  const auto [rows, cols] = GetParam();
  const auto x = random_floats(static_cast<size_t>(rows) * cols, rows + cols, -3.0f, 3.0f);
  const auto w = random_floats(cols, 5, 0.5f, 2.0f);
  std::vector<float> norm_ref(x.size()), soft_ref = x;
  for (int r = 0; r < rows; ++r) {
    cpu::rmsnorm(x.data() + r * cols, w.data(), norm_ref.data() + r * cols, cols, 1e-5f);
    cpu::softmax(soft_ref.data() + r * cols, cols);
  }
  for (const shader_paths& paths : {portable_paths, subgroup_only}) {
    if (!use(paths)) {
      std::cout << "skipped: device has no " << to_string(paths) << " path\n";
      continue;
    }
    SCOPED_TRACE(to_string(paths));
    buffer bx = upload(x), bw = upload(w), by = zeros(x.size());
    run([&](ops& k) { return k.rms_norm(bx, bw, by, rows, cols, 1e-5f); });
    EXPECT_EQ(ops_->last_shader(), paths.subgroup ? "rms_norm_f32_sg" : "rms_norm_f32");
    EXPECT_LT(normalized_error(read(by, x.size()), norm_ref), 1e-5);
    run([&](ops& k) { return k.softmax(bx, rows, cols); });
    EXPECT_LT(normalized_error(read(bx, x.size()), soft_ref), 1e-5);
  }
}

INSTANTIATE_TEST_SUITE_P(shapes, vulkan_paths_rows,
                         ::testing::Values(std::tuple{1, 1}, std::tuple{3, 577},
                                           std::tuple{2, 4097}, std::tuple{5, 63}));

// --- mul_mat per path ---

class vulkan_paths_mul_mat : public vulkan_paths,
                             public ::testing::WithParamInterface<matmul_case> {};

TEST_P(vulkan_paths_mul_mat, float_activations_match_cpu_reference_on_every_path) {
  const tensor_type type = GetParam().type;
  const int m = GetParam().m;
  const test::matmul_problem p(GetParam());
  const auto ref = p.reference();
  for (const shader_paths& paths : {portable_paths, subgroup_only, float16_only}) {
    if (!use(paths)) {
      std::cout << "skipped: device has no " << to_string(paths) << " path\n";
      continue;
    }
    // Whole, and split in slices of 3 rows.
    for (uint64_t slice_bytes : {uint64_t{0}, p.row_bytes * 3}) {
      SCOPED_TRACE(to_string(paths) + (slice_bytes ? ", slices" : ", whole"));
      auto w = upload_matrix(*ctx_, p.view, slice_bytes);
      ASSERT_TRUE(w) << w.error().what();
      buffer bx = upload(p.x), by = zeros(ref.size());
      run([&](ops& k) { return k.mul_mat(w.value(), bx, m, by); });
      std::string expected = "mul_mat_" + lower_type(type);
      if (paths.subgroup && m <= 8) expected = "mul_mat_sg_" + lower_type(type);
      if (paths.float16 && type == tensor_type::f16) expected = "mul_mat_f16_storage";
      EXPECT_EQ(ops_->last_shader(), expected);
      EXPECT_LT(normalized_error(read(by, ref.size()), ref), 1e-5);
    }
  }
}

// Quantized weight types only: float weights take float activations.
class vulkan_paths_mul_mat_q8 : public vulkan_paths_mul_mat {};

TEST_P(vulkan_paths_mul_mat_q8, int8_activations_match_cpu_integer_kernels_on_every_kernel) {
  const tensor_type type = GetParam().type;
  const int m = GetParam().m;
  const test::matmul_problem p(GetParam());
  const auto ref = p.q8_reference();
  for (q8_kernel kernel : {q8_kernel::float_rounding, q8_kernel::integer, q8_kernel::integer_dot}) {
    if (kernel == q8_kernel::integer_dot && !ctx_->device().paths.integer_dot) {
      std::cout << "skipped: device has no integer_dot path\n";
      continue;
    }
    ops_->set_q8_kernel(kernel);
    for (uint64_t slice_bytes : {uint64_t{0}, p.row_bytes * 3}) {
      auto w = upload_matrix(*ctx_, p.view, slice_bytes);
      ASSERT_TRUE(w) << w.error().what();
      buffer bx = upload(p.x), by = zeros(ref.size());
      run([&](ops& k) { return k.mul_mat(w.value(), bx, m, by, 0, 0, /*q8_activations=*/true); });
      const std::string shader = ops_->last_shader();
      SCOPED_TRACE(shader + (slice_bytes ? ", slices" : ", whole"));
      const std::string prefix = kernel == q8_kernel::float_rounding ? "mul_mat_"
                                 : kernel == q8_kernel::integer      ? "mul_mat_q8int_"
                                                                     : "mul_mat_q8dot_";
      EXPECT_EQ(shader, prefix + lower_type(type));
      EXPECT_LT(normalized_error(read(by, ref.size()), ref), p.q8_bound());
    }
  }
}

std::vector<matmul_case> matmul_cases() {
  return test::matmul_cases({{1, 32, 1},
                             {67, 96, 5},    // ragged: 67 rows, m not a multiple of anything
                             {130, 576, 8},  // SmolLM2's dim, the largest m of the subgroup kernel
                             {13, 576, 19}}); // ragged groups of 8 activation rows
}

INSTANTIATE_TEST_SUITE_P(types, vulkan_paths_mul_mat, ::testing::ValuesIn(matmul_cases()),
                         test::case_name);

INSTANTIATE_TEST_SUITE_P(types, vulkan_paths_mul_mat_q8,
                         ::testing::ValuesIn(test::quantized_cases(matmul_cases())),
                         test::case_name);

}  // namespace

}  // namespace triage::vulkan
