// context.h: one Vulkan device to run the embedded compute shaders on, with
// just what a kernel needs: storage buffers (host-visible, or device-local
// with staged writes and reads), compute pipelines, and a dispatch that waits
// for the result.
//
//   auto ctx = triage::vulkan::context::create({.allow_cpu = true});
//   if (!ctx) return use_cpu_kernels(ctx.error());  // no_loader, no_device, ...
//   auto& gpu = ctx.value();
//   auto a = gpu.create_buffer(n * sizeof(float));  // also b, c
//   a.value().as<float>()[0] = 1.0f;
//   auto add = gpu.create_pipeline(*triage::shaders::find("add_f32"),
//                                  {.binding_count = 3, .push_constant_size = 4});
//   const triage::vulkan::buffer* bindings[] = {&a.value(), &b.value(), &c.value()};
//   uint32_t count = n;
//   gpu.dispatch(add.value(), bindings, std::as_bytes(std::span(&count, 1)),
//                {triage::vulkan::div_ceil(n, 64), 1, 1});
//
// Device choice: discrete GPU > integrated > virtual > other; a CPU-type
// device (Mesa's lavapipe, SwiftShader) only when allowed or named, because
// the CPU kernels beat it. TRIAGE_VULKAN_DEVICE names a device by index or
// name. Buffers and pipelines keep their device alive, so they may outlive
// the context that made them. Not thread-safe: one context per thread.
#pragma once

#include <vulkan/vulkan_core.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "compute/shaders/spirv.h"
#include "compute/vulkan/errc.h"

namespace triage::vulkan {

enum class device_type { other, integrated_gpu, discrete_gpu, virtual_gpu, cpu };

// "discrete_gpu", "cpu", ...
std::string_view to_string(device_type type);

// "1.3.230" from a VK_MAKE_API_VERSION value.
std::string version_string(uint32_t api_version);

// The optional shader paths compute/vulkan/ops.h chooses between, each one
// turned on only when the device has the features it needs; all false is the
// portable path, which needs no optional feature (32-bit storage, float
// arithmetic, shared memory).
struct shader_paths {
  // Subgroup reductions (subgroupAdd/Max) in rms_norm, softmax and the
  // matmul with few activation rows. Needs subgroup_arithmetic in the
  // compute stage and a subgroup size of 4 to 128. Default: false.
  bool subgroup = false;
  // Integer dot products (OpSDot on 4 packed int8) in the matmul with int8
  // activations. Needs integer_dot_product. Default: false.
  bool integer_dot = false;
  // F16 weights loaded as float16_t (16-bit storage) instead of unpacked
  // from 32-bit words. Needs storage_buffer_16bit. Default: false.
  bool float16 = false;

  bool operator==(const shader_paths&) const = default;
};

// "subgroup integer_dot float16", or "portable" when none is on.
std::string to_string(const shader_paths& paths);

// What `triage devices` shows and what batch sizing needs to know.
struct device_info {
  uint32_t index = 0;  // position in list_devices(), usable in TRIAGE_VULKAN_DEVICE
  std::string name;    // e.g. "llvmpipe (LLVM 15.0.6, 256 bits)"
  device_type type = device_type::other;
  uint32_t api_version = 0;               // highest the device supports; see version_string()
  uint32_t subgroup_size = 0;             // invocations per subgroup (lavapipe: 8)
  uint64_t max_storage_buffer_range = 0;  // bytes one storage buffer binding may span
  uint64_t device_local_bytes = 0;        // size of the largest device-local memory heap
  // Features for quantized and half-precision kernels; false on devices below
  // Vulkan 1.2, which this runtime does not use anyway.
  bool shader_float16 = false;        // float16_t arithmetic in shaders
  bool shader_int8 = false;           // int8_t arithmetic in shaders
  bool storage_buffer_8bit = false;   // 8-bit loads/stores in storage buffers
  bool storage_buffer_16bit = false;  // 16-bit loads/stores in storage buffers
  // Subgroup operations in compute shaders (VkPhysicalDeviceSubgroupProperties;
  // false below Vulkan 1.1 or when the compute stage lacks them).
  bool subgroup_arithmetic = false;  // subgroupAdd, subgroupMax, ...
  bool subgroup_shuffle = false;     // subgroupShuffle, subgroupShuffleXor
  // VK_KHR_shader_integer_dot_product with shaderIntegerDotProduct: OpSDot
  // on 4 packed int8 (core in Vulkan 1.3; this runtime enables the extension).
  bool integer_dot_product = false;
  // The shader paths a context on this device turns on (see shader_paths):
  // what the device supports, or none when the portable path is forced.
  // list_devices() reports what context::create() would enable without
  // context_options::portable (none under TRIAGE_VULKAN_PORTABLE=1).
  shader_paths paths;
};

// Every device the Vulkan loader reports, in its order (the order indices
// refer to), whether or not a context would choose it.
result<std::vector<device_info>> list_devices();

struct context_options {
  // Whether a CPU-type device may be chosen when no GPU is present. Tests
  // turn it on to run the shaders on lavapipe.
  // Default: false.
  bool allow_cpu = false;
  // The device to use: an index from list_devices() ("1") or a
  // case-insensitive substring of its name ("llvmpipe"). A named device is
  // used whatever its type. Empty: the environment variable
  // TRIAGE_VULKAN_DEVICE if set and not empty, else the best device.
  // Default: "".
  std::string device = {};
  // Turn on the Khronos validation layer (VK_LAYER_KHRONOS_validation) and
  // collect its messages (warnings and errors), see
  // context::validation_messages(). Tests turn it on where the layer is
  // installed (Debian: vulkan-validationlayers); create() fails with
  // missing_feature when it is asked for and absent. The environment
  // variable TRIAGE_VULKAN_VALIDATION=1 turns it on too.
  // Default: false.
  bool validation = false;
  // Directory keeping compiled pipelines across runs (a VkPipelineCache per
  // device and driver, read at create(), written when the context's device
  // closes). Empty: no cache. Programs pass default_pipeline_cache_dir().
  // Default: "".
  std::string pipeline_cache_dir = {};
  // Use the portable shader path only: enable no optional device feature
  // (float16, int8, 8/16-bit storage, integer dot product, subgroup paths),
  // so device().paths is all false. The environment variable
  // TRIAGE_VULKAN_PORTABLE=1 does the same. Tests use it to compare paths
  // on one device.
  // Default: false.
  bool portable = false;
  // Map memory_use::device buffers when their memory is host-visible too
  // (integrated GPUs, lavapipe), so the host writes them in place. Off, every
  // device buffer goes through context::write/read's staging copy, as on a
  // discrete GPU; tests turn it off to run that path on lavapipe.
  // Default: true.
  bool map_device_memory = true;
};

// $HOME/.cache/triage/vulkan-pipelines ("" when HOME is unset).
std::string default_pipeline_cache_dir();

// Whether the Khronos validation layer is installed (tests skip their
// validation checks without it).
bool validation_layer_available();

// Number of workgroups of `group_size` that cover `count` items.
constexpr uint32_t div_ceil(uint32_t count, uint32_t group_size) {
  return (count + group_size - 1) / group_size;
}

namespace detail {
struct device_state;  // the VkInstance/VkDevice and their queue, shared by all objects below
}

// Where a buffer lives (context::create_buffer).
enum class memory_use {
  // Host-visible, host-coherent memory, mapped for the buffer's whole life:
  // the host writes inputs and reads outputs in place. On a discrete GPU
  // this is system memory the shaders read across the bus.
  host,
  // Device-local memory, the fastest for the shaders: weights, the KV cache,
  // activations the host never reads. Mapped like host memory where the
  // device makes it host-visible as well (integrated GPUs, lavapipe) and
  // context_options::map_device_memory allows; otherwise not mapped, and
  // written and read through context::write / context::read (a staging copy).
  device,
};

// A storage buffer: mapped (memory_use::host, or device memory the host can
// see), or device-only (mapped() false: bytes() is empty; use
// context::write / context::read).
class buffer {
 public:
  buffer() = default;
  buffer(buffer&& other) noexcept;
  buffer& operator=(buffer&& other) noexcept;
  ~buffer();

  size_t size() const { return size_; }  // bytes
  bool mapped() const { return mapped_ != nullptr; }
  std::span<std::byte> bytes() { return {static_cast<std::byte*>(mapped_), mapped_ ? size_ : 0}; }
  std::span<const std::byte> bytes() const {
    return {static_cast<const std::byte*>(mapped_), mapped_ ? size_ : 0};
  }
  // The contents as an array of T (trivially copyable), rounded down to whole
  // elements; empty when the buffer is not mapped.
  template <class T>
  std::span<T> as() {
    return {static_cast<T*>(mapped_), mapped_ ? size_ / sizeof(T) : 0};
  }

 private:
  friend class context;
  void release();

  std::shared_ptr<detail::device_state> device_;
  VkBuffer buffer_ = VK_NULL_HANDLE;
  VkDeviceMemory memory_ = VK_NULL_HANDLE;
  void* mapped_ = nullptr;
  size_t size_ = 0;
};

struct pipeline_options {
  // Storage buffers the shader declares, at bindings 0 .. binding_count-1 of set 0.
  uint32_t binding_count = 0;
  // Bytes of push constants the shader declares; a multiple of 4, at most the
  // device's maxPushConstantsSize (128 or more).
  // Default: 0.
  uint32_t push_constant_size = 0;
  // Workgroup size, given to the shader as specialization constants 0, 1, 2
  // (see compute/shaders/common.glsl); within the device's limits.
  // Default: {64, 1, 1}.
  std::array<uint32_t, 3> workgroup_size = {64, 1, 1};
  // Values of the shader's own specialization constants, ids 3, 4, ... in
  // order (tile sizes and the like; see each shader's header).
  // Default: none.
  std::vector<uint32_t> constants = {};
};

// A compute pipeline for one embedded shader, with the descriptor set its
// dispatches bind buffers through.
class pipeline {
 public:
  pipeline() = default;
  pipeline(pipeline&& other) noexcept;
  pipeline& operator=(pipeline&& other) noexcept;
  ~pipeline();

  std::string_view name() const { return name_; }  // the shader's name
  const pipeline_options& options() const { return options_; }

 private:
  friend class context;
  void release();

  std::shared_ptr<detail::device_state> device_;
  std::string_view name_;  // points into the embedded shader table
  pipeline_options options_;
  VkDescriptorSetLayout set_layout_ = VK_NULL_HANDLE;
  VkPipelineLayout layout_ = VK_NULL_HANDLE;
  VkPipeline pipeline_ = VK_NULL_HANDLE;
};

class context {
 public:
  // Opens the device chosen by `options` (see context_options). Errors:
  // no_loader, no_device (message lists the devices seen), missing_feature.
  static result<context> create(const context_options& options = {});

  context(context&&) noexcept = default;
  context& operator=(context&&) noexcept = default;
  ~context();

  const device_info& device() const { return info_; }

  // A buffer of `bytes` (1 .. device().max_storage_buffer_range), zero-filled,
  // in `use`'s memory (see memory_use). Errors: invalid_argument (size),
  // out_of_device_memory, missing_feature (no such memory type). A device
  // buffer that is not mapped is zeroed by a transfer, so it cannot be made
  // while a recording is open.
  result<buffer> create_buffer(size_t bytes, memory_use use = memory_use::host);

  // Copies `data` into `dst` at byte `offset`: in place when dst is mapped,
  // else through a host staging buffer and a transfer on the device (waited
  // for). Not while a recording is open (begin() .. submit()).
  result<void> write(buffer& dst, std::span<const std::byte> data, size_t offset = 0);
  // Copies dst.size() bytes of `src` from byte `offset` into `dst`, the same
  // way. Not while a recording is open.
  result<void> read(const buffer& src, std::span<std::byte> dst, size_t offset = 0);

  // A pipeline running `shader`'s main() with the layout in `options`.
  result<pipeline> create_pipeline(const shaders::spirv& shader, const pipeline_options& options);

  // Runs `p` over `group_count` workgroups with buffers[i] bound at binding i
  // and `push_constants` (exactly options().push_constant_size bytes), and
  // waits until its writes are visible to the host.
  result<void> dispatch(const pipeline& p, std::span<const buffer* const> buffers,
                        std::span<const std::byte> push_constants,
                        std::array<uint32_t, 3> group_count);

  // Several dispatches in one command buffer, one submit and one wait (a
  // whole forward pass): begin(), then record() per dispatch, then submit().
  // A memory barrier follows every recorded dispatch, so each one sees what
  // the ones before it wrote. Arguments are checked as for dispatch(); a
  // failed record() abandons the recording (begin() again).
  //   gpu.begin();
  //   gpu.record(norm, {&x, &w, &y}, push, {n_rows, 1, 1});
  //   gpu.record(matmul, {&w_q, &y, &q}, push2, groups);
  //   if (auto r = gpu.submit(); !r) ...;
  result<void> begin();
  result<void> record(const pipeline& p, std::span<const buffer* const> buffers,
                      std::span<const std::byte> push_constants,
                      std::array<uint32_t, 3> group_count);
  result<void> submit();

  // Messages of the validation layer since the context was created (empty
  // unless context_options::validation), e.g. "VUID-vkCmdDispatch-...: ...".
  std::vector<std::string> validation_messages() const;

 private:
  context() = default;
  // Records `commands_of`'s transfer commands between barriers into the
  // command buffer, submits and waits (write, read, zero-filling).
  result<void> transfer(const std::function<void(VkCommandBuffer)>& commands_of);

  std::shared_ptr<detail::device_state> state_;
  device_info info_;
  bool map_device_memory_ = true;
};

}  // namespace triage::vulkan
