// vulkan_bench: benchmark program (not a test) for the Vulkan backend.
// Prints matmul throughput per weight type on the chosen device, then the
// prefill throughput of the whole model on Vulkan and on the CPU engine.
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

int bench_matmul(triage::vulkan::context& ctx) {
  using triage::gguf::tensor_type;
  triage::vulkan::ops k(ctx);
  const int rows = 1536, cols = 576;
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> w(static_cast<size_t>(rows) * cols);
  for (float& v : w) v = dist(rng);
  for (tensor_type t : {tensor_type::f32, tensor_type::q8_0, tensor_type::q4_1}) {
    const auto bytes = triage::cpu::quantize_weights(t, w, rows, cols);
    const triage::cpu::matrix_view view{t, rows, cols, *triage::gguf::row_bytes(t, cols),
                                        bytes.data()};
    auto wm = triage::vulkan::upload_matrix(ctx, view);
    if (!wm) return std::fprintf(stderr, "%s\n", wm.error().what().c_str()), 1;
    for (uint32_t m : {1u, 64u}) {
      auto x = ctx.create_buffer(m * cols * 4);
      auto y = ctx.create_buffer(m * rows * 4);
      if (!x || !y) return 1;
      auto run = [&] {
        (void)ctx.begin();
        (void)k.mul_mat(wm.value(), x.value(), m, y.value());
        return ctx.submit();
      };
      if (auto r = run(); !r) return std::fprintf(stderr, "%s\n", r.error().what().c_str()), 1;
      const int reps = 3;
      const auto t0 = clock_type::now();
      for (int i = 0; i < reps; ++i) (void)run();
      const double s = seconds_since(t0) / reps;
      std::printf("mul_mat %-5s %dx%d m=%-3u  %8.2f ms  %7.2f GMAC/s\n",
                  std::string(triage::gguf::type_name(t)).c_str(), rows, cols, m, s * 1e3,
                  double(rows) * cols * m / s * 1e-9);
    }
  }
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
