// vulkan_bench: benchmark program (not a test) for the Vulkan backend.
// Prints matmul throughput per weight type and shader path (portable,
// subgroup, 16-bit storage, int8 activations in float / 32-bit integer /
// integer dot product) on the chosen device, then the prefill throughput of
// the whole model on Vulkan and on the CPU engine.
//
//   vulkan_bench [model.gguf] [tokens per sequence] [sequences]
//   TRIAGE_VULKAN_DEVICE=llvmpipe vulkan_bench       # lavapipe explicitly
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "compute/cpu/quantize.h"
#include "compute/model/model.h"
#include "compute/tests/test_files.h"
#include "compute/vulkan/ops.h"
#include "compute/vulkan/vk_model.h"

namespace {

using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

// One matmul configuration: shader paths, int8 activations or not, kernel.
struct matmul_path {
  const char* label;
  triage::vulkan::shader_paths paths;
  bool q8;
  triage::vulkan::q8_kernel kernel;
};

// Matmul figures per shader path side by side (GMAC/s; "-" where the path
// does not apply to the type or the device lacks it).
int bench_matmul(triage::vulkan::context& ctx) {
  using triage::gguf::tensor_type;
  using triage::vulkan::q8_kernel;
  using triage::vulkan::shader_paths;
  triage::vulkan::ops k(ctx);
  const shader_paths all = ctx.device().paths;
  std::printf("shader paths enabled: %s\n", triage::vulkan::to_string(all).c_str());
  const matmul_path paths[] = {
      {"portable", {}, false, q8_kernel::automatic},
      {"subgroup", {.subgroup = true}, false, q8_kernel::automatic},
      {"f16-storage", {.float16 = true}, false, q8_kernel::automatic},
      {"q8:float", {}, true, q8_kernel::float_rounding},
      {"q8:int32", {}, true, q8_kernel::integer},
      {"q8:dot", {.integer_dot = true}, true, q8_kernel::integer_dot},
  };
  std::printf("%-24s", "mul_mat GMAC/s");
  for (const auto& p : paths) std::printf(" %11s", p.label);
  std::printf("\n");
  const int rows = 1536, cols = 576;
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> w(static_cast<size_t>(rows) * cols);
  for (float& v : w) v = dist(rng);
  for (tensor_type t : {tensor_type::f32, tensor_type::f16, tensor_type::q8_0, tensor_type::q4_1}) {
    const auto bytes = triage::cpu::quantize_weights(t, w, rows, cols);
    const triage::cpu::matrix_view view{t, rows, cols, *triage::gguf::row_bytes(t, cols),
                                        bytes.data()};
    auto wm = triage::vulkan::upload_matrix(ctx, view);
    if (!wm) return std::fprintf(stderr, "%s\n", wm.error().what().c_str()), 1;
    for (uint32_t m : {1u, 64u}) {
      auto x = ctx.create_buffer(m * cols * 4);
      auto y = ctx.create_buffer(m * rows * 4);
      if (!x || !y) return 1;
      std::printf("%-5s %dx%d m=%-3u    ", std::string(triage::gguf::type_name(t)).c_str(), rows,
                  cols, m);
      for (const auto& p : paths) {
        const bool applies = (!p.q8 || triage::cpu::uses_q8(t)) &&
                             (p.paths == shader_paths{} || k.set_paths(p.paths) == p.paths) &&
                             !(p.paths.float16 && t != tensor_type::f16) &&
                             !(p.paths.subgroup && m > 8);
        k.set_paths(p.paths);
        k.set_q8_kernel(p.kernel);
        if (!applies) {
          std::printf(" %11s", "-");
          continue;
        }
        auto run = [&] {
          (void)ctx.begin();
          if (auto r = k.mul_mat(wm.value(), x.value(), m, y.value(), 0, 0, p.q8); !r) return r;
          return ctx.submit();
        };
        if (auto r = run(); !r) return std::fprintf(stderr, "%s\n", r.error().what().c_str()), 1;
        const int reps = 3;
        const auto t0 = clock_type::now();
        for (int i = 0; i < reps; ++i) (void)run();
        const double s = seconds_since(t0) / reps;
        std::printf(" %11.2f", double(rows) * cols * m / s * 1e-9);
      }
      std::printf("\n");
    }
  }
  k.set_paths(all);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string path =
      argc > 1 && *argv[1] ? argv[1] : triage::test_files::model_path().string();
  const int len = argc > 2 ? std::atoi(argv[2]) : 64;
  const int n_seqs = argc > 3 ? std::atoi(argv[3]) : 4;

  auto ctx = triage::vulkan::context::create({.allow_cpu = true});
  if (!ctx) return std::fprintf(stderr, "vulkan: %s\n", ctx.error().what().c_str()), 1;
  std::printf("device: %s\n", ctx.value().device().name.c_str());
  if (int r = bench_matmul(ctx.value()); r != 0) return r;

  std::vector<std::vector<int32_t>> seqs(static_cast<size_t>(n_seqs));
  std::mt19937 rng(2);
  for (auto& s : seqs) {
    for (int i = 0; i < len; ++i) s.push_back(static_cast<int32_t>(rng() % 49152));
  }
  const double tokens = double(len) * n_seqs;
  const triage::model::forward_options fo{.pool = triage::model::pooling::both};

  auto gpu = triage::vulkan::vk_model::load(path, {.device = {.allow_cpu = true}});
  if (!gpu) return std::fprintf(stderr, "%s\n", gpu.error().what().c_str()), 1;
  (void)gpu.value().forward(seqs, fo);  // warm-up: pipelines, buffers
  auto t0 = clock_type::now();
  auto out = gpu.value().forward(seqs, fo);
  if (!out) return std::fprintf(stderr, "%s\n", out.error().what().c_str()), 1;
  const double gs = seconds_since(t0);
  std::printf("vulkan prefill %d x %d tokens: %.2f s, %.1f tokens/s\n", n_seqs, len, gs,
              tokens / gs);

  auto cpu = triage::model::model::load(path);
  if (!cpu) return std::fprintf(stderr, "%s\n", cpu.error().what().c_str()), 1;
  (void)cpu.value().forward(seqs, fo);
  t0 = clock_type::now();
  (void)cpu.value().forward(seqs, fo);
  const double cs = seconds_since(t0);
  std::printf("cpu    prefill %d x %d tokens: %.2f s, %.1f tokens/s (%d threads)\n", n_seqs, len,
              cs, tokens / cs, cpu.value().threads());
  return 0;
}
