#include "compute/vulkan/errc.h"

#include <string>

namespace triage::vulkan {
namespace {

class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "vulkan"; }

  std::string message(int value) const override {
    switch (static_cast<errc>(value)) {
      case errc::no_loader:
        return "Vulkan is not available";
      case errc::no_device:
        return "no suitable Vulkan device";
      case errc::missing_feature:
        return "Vulkan device lacks a required feature";
      case errc::out_of_device_memory:
        return "out of device memory";
      case errc::device_lost:
        return "Vulkan device lost";
      case errc::invalid_argument:
        return "invalid argument to the Vulkan runtime";
      case errc::vk_error:
        return "Vulkan call failed";
    }
    return "unknown vulkan error " + std::to_string(value);
  }
};

}  // namespace

const std::error_category& vulkan_category() {
  static const category instance;
  return instance;
}

std::error_code make_error_code(errc e) { return {static_cast<int>(e), vulkan_category()}; }

std::string to_string(VkResult result) {
  switch (result) {
#define TRIAGE_VK_RESULT(name) \
  case name:                   \
    return #name;
    TRIAGE_VK_RESULT(VK_SUCCESS)
    TRIAGE_VK_RESULT(VK_NOT_READY)
    TRIAGE_VK_RESULT(VK_TIMEOUT)
    TRIAGE_VK_RESULT(VK_EVENT_SET)
    TRIAGE_VK_RESULT(VK_EVENT_RESET)
    TRIAGE_VK_RESULT(VK_INCOMPLETE)
    TRIAGE_VK_RESULT(VK_ERROR_OUT_OF_HOST_MEMORY)
    TRIAGE_VK_RESULT(VK_ERROR_OUT_OF_DEVICE_MEMORY)
    TRIAGE_VK_RESULT(VK_ERROR_INITIALIZATION_FAILED)
    TRIAGE_VK_RESULT(VK_ERROR_DEVICE_LOST)
    TRIAGE_VK_RESULT(VK_ERROR_MEMORY_MAP_FAILED)
    TRIAGE_VK_RESULT(VK_ERROR_LAYER_NOT_PRESENT)
    TRIAGE_VK_RESULT(VK_ERROR_EXTENSION_NOT_PRESENT)
    TRIAGE_VK_RESULT(VK_ERROR_FEATURE_NOT_PRESENT)
    TRIAGE_VK_RESULT(VK_ERROR_INCOMPATIBLE_DRIVER)
    TRIAGE_VK_RESULT(VK_ERROR_TOO_MANY_OBJECTS)
    TRIAGE_VK_RESULT(VK_ERROR_FORMAT_NOT_SUPPORTED)
    TRIAGE_VK_RESULT(VK_ERROR_FRAGMENTED_POOL)
    TRIAGE_VK_RESULT(VK_ERROR_UNKNOWN)
    TRIAGE_VK_RESULT(VK_ERROR_OUT_OF_POOL_MEMORY)
    TRIAGE_VK_RESULT(VK_ERROR_INVALID_EXTERNAL_HANDLE)
    TRIAGE_VK_RESULT(VK_ERROR_FRAGMENTATION)
    TRIAGE_VK_RESULT(VK_ERROR_INVALID_OPAQUE_CAPTURE_ADDRESS)
    TRIAGE_VK_RESULT(VK_PIPELINE_COMPILE_REQUIRED)
#undef TRIAGE_VK_RESULT
    default:
      return "VkResult " + std::to_string(static_cast<int>(result));
  }
}

error make_vk_error(VkResult result, std::string_view call, std::string_view detail) {
  errc code = errc::vk_error;
  switch (result) {
    // Host memory counts as device memory here: on CPU and integrated devices
    // they are the same RAM, and the remedy (smaller batches) is the same.
    case VK_ERROR_OUT_OF_DEVICE_MEMORY:
    case VK_ERROR_OUT_OF_HOST_MEMORY:
    case VK_ERROR_OUT_OF_POOL_MEMORY:
      code = errc::out_of_device_memory;
      break;
    case VK_ERROR_DEVICE_LOST:
      code = errc::device_lost;
      break;
    case VK_ERROR_FEATURE_NOT_PRESENT:
    case VK_ERROR_EXTENSION_NOT_PRESENT:
      code = errc::missing_feature;
      break;
    default:
      break;
  }
  std::string message(call);
  if (!detail.empty()) {
    message.append(" (").append(detail).append(")");
  }
  message.append(": ").append(to_string(result));
  return make_error(code, std::move(message));
}

}  // namespace triage::vulkan
