// errc.h: error codes of the Vulkan runtime, usable as std::error_code.
//
// Callers branch on the code (fall back to CPU kernels on no_loader or
// no_device, shrink the batch on out_of_device_memory); the message of the
// triage::error names the Vulkan call, its VkResult and what was asked for.
//
//   if (!r && r.error().code == triage::vulkan::errc::no_device) use_cpu_kernels();
#pragma once

#include <vulkan/vulkan_core.h>

#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>

#include "base/result.h"

namespace triage::vulkan {

enum class errc {
  // Vulkan is unusable here: the loader found no driver, or instance creation failed.
  no_loader = 1,
  // No device fits: none present, none allowed (CPU-type), or none matches the name asked for.
  no_device,
  // The device lacks a required API version, queue, memory type, extension or feature.
  missing_feature,
  // Device or host memory ran out (VK_ERROR_OUT_OF_*_MEMORY).
  out_of_device_memory,
  // The driver lost the device (hang, reset); the context is unusable.
  device_lost,
  // The caller broke a documented limit (sizes, bindings, workgroup size).
  invalid_argument,
  // Any other failed Vulkan call.
  vk_error,
};

const std::error_category& vulkan_category();
std::error_code make_error_code(errc e);

// "VK_ERROR_OUT_OF_DEVICE_MEMORY"; the number for values it does not know.
std::string to_string(VkResult result);

// The error for a failed Vulkan call, coded by what the caller can do about
// it, e.g. make_vk_error(r, "vkAllocateMemory", "400000 bytes") gives
// out_of_device_memory: "vkAllocateMemory (400000 bytes): VK_ERROR_OUT_OF_DEVICE_MEMORY".
error make_vk_error(VkResult result, std::string_view call, std::string_view detail = {});

}  // namespace triage::vulkan

template <>
struct std::is_error_code_enum<triage::vulkan::errc> : std::true_type {};
