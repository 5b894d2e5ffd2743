#include "compute/vulkan/context.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <optional>
#include <utility>

// Vulkan create-infos are written as designated initializers that name only
// the fields that matter; the rest are zero, as Vulkan expects. GCC before 14
// warns about every omitted field there, so that one warning is off here.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace triage::vulkan {

namespace detail {

// Owned by the context and by every buffer and pipeline made from it, so the
// VkDevice outlives all objects created on it whatever order they die in.
struct device_state {
  VkInstance instance = VK_NULL_HANDLE;
  VkPhysicalDevice physical = VK_NULL_HANDLE;
  VkDevice device = VK_NULL_HANDLE;
  VkQueue queue = VK_NULL_HANDLE;
  VkCommandPool command_pool = VK_NULL_HANDLE;
  VkCommandBuffer commands = VK_NULL_HANDLE;  // re-recorded by every dispatch
  VkFence done = VK_NULL_HANDLE;              // signalled when a dispatch finishes
  VkPhysicalDeviceLimits limits{};
  VkPhysicalDeviceMemoryProperties memory{};
  // Descriptor sets of the dispatches of one recording, reset by begin();
  // one more pool is added whenever they are all full.
  std::vector<VkDescriptorPool> pools;
  size_t pool_in_use = 0;
  bool recording = false;  // record() may add to the command buffer
  bool open = false;       // the command buffer is begun and not ended
  // The validation layer's messenger and what it reported (the layer may
  // call from any thread).
  VkDebugUtilsMessengerEXT messenger = VK_NULL_HANDLE;
  mutable std::mutex messages_mutex;
  std::vector<std::string> messages;

  device_state() = default;
  device_state(const device_state&) = delete;
  device_state& operator=(const device_state&) = delete;
  // Compiled pipelines kept across runs (context_options::pipeline_cache_dir):
  // loaded at creation, written back to cache_file when the device closes.
  VkPipelineCache cache = VK_NULL_HANDLE;
  std::string cache_file;

  // Writes the pipeline cache to cache_file (a temporary file renamed into
  // place, so a reader never sees half a file). Best effort: a cache that
  // cannot be written only costs compile time next run.
  void save_cache() const {
    size_t size = 0;
    if (vkGetPipelineCacheData(device, cache, &size, nullptr) != VK_SUCCESS || size == 0) return;
    std::vector<char> data(size);
    if (vkGetPipelineCacheData(device, cache, &size, data.data()) != VK_SUCCESS) return;
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(cache_file).parent_path(), ec);
    const std::string tmp = cache_file + ".tmp";
    {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      out.write(data.data(), static_cast<std::streamsize>(size));
      if (!out) return;
    }
    std::filesystem::rename(tmp, cache_file, ec);
  }

  ~device_state() {
    if (device != VK_NULL_HANDLE) {
      if (cache != VK_NULL_HANDLE) {
        if (!cache_file.empty()) save_cache();
        vkDestroyPipelineCache(device, cache, nullptr);
      }
      if (done != VK_NULL_HANDLE) vkDestroyFence(device, done, nullptr);
      for (VkDescriptorPool p : pools) vkDestroyDescriptorPool(device, p, nullptr);
      // Destroying the pool frees `commands`.
      if (command_pool != VK_NULL_HANDLE) vkDestroyCommandPool(device, command_pool, nullptr);
      vkDestroyDevice(device, nullptr);
    }
    if (messenger != VK_NULL_HANDLE) {
      auto destroy = reinterpret_cast<PFN_vkDestroyDebugUtilsMessengerEXT>(
          vkGetInstanceProcAddr(instance, "vkDestroyDebugUtilsMessengerEXT"));
      if (destroy) destroy(instance, messenger, nullptr);
    }
    if (instance != VK_NULL_HANDLE) vkDestroyInstance(instance, nullptr);
  }
};

}  // namespace detail

namespace {

using detail::device_state;

// The runtime's floor: SPIR-V from glslc --target-env=vulkan1.2 needs it.
constexpr uint32_t required_api_version = VK_API_VERSION_1_2;

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool has_extension(const std::vector<VkExtensionProperties>& extensions, std::string_view name) {
  return std::any_of(extensions.begin(), extensions.end(),
                     [name](const VkExtensionProperties& e) { return e.extensionName == name; });
}

result<std::vector<VkExtensionProperties>> instance_extensions() {
  uint32_t count = 0;
  VkResult r = vkEnumerateInstanceExtensionProperties(nullptr, &count, nullptr);
  std::vector<VkExtensionProperties> extensions(count);
  if (r == VK_SUCCESS)
    r = vkEnumerateInstanceExtensionProperties(nullptr, &count, extensions.data());
  // VK_INCOMPLETE: a driver appeared in between; what we got is still usable.
  if (r != VK_SUCCESS && r != VK_INCOMPLETE) {
    return make_vk_error(r, "vkEnumerateInstanceExtensionProperties");
  }
  extensions.resize(count);
  return extensions;
}

constexpr const char* validation_layer_name = "VK_LAYER_KHRONOS_validation";

VKAPI_ATTR VkBool32 VKAPI_CALL on_validation_message(
    VkDebugUtilsMessageSeverityFlagBitsEXT, VkDebugUtilsMessageTypeFlagsEXT,
    const VkDebugUtilsMessengerCallbackDataEXT* data, void* user) {
  auto* state = static_cast<device_state*>(user);
  std::lock_guard lock(state->messages_mutex);
  state->messages.emplace_back(data && data->pMessage ? data->pMessage : "(no message)");
  return VK_FALSE;  // the call that triggered it goes on
}

// Fills state.instance. Enables VK_KHR_portability_enumeration when the
// loader has it, without which devices on top of Metal (MoltenVK) are hidden,
// and the validation layer with a messenger into state.messages when asked.
result<void> create_instance(device_state& state, bool validation = false) {
  auto extensions = instance_extensions();
  if (!extensions) {
    error e = extensions.error();
    e.code = errc::no_loader;
    return e;
  }
  const bool portability =
      has_extension(extensions.value(), VK_KHR_PORTABILITY_ENUMERATION_EXTENSION_NAME);
  std::vector<const char*> enabled;
  if (portability) enabled.push_back(VK_KHR_PORTABILITY_ENUMERATION_EXTENSION_NAME);
  if (validation) {
    if (!validation_layer_available()) {
      return make_error(errc::missing_feature,
                        std::string("validation asked for, but the layer ") +
                            validation_layer_name +
                            " is not installed (Debian: vulkan-validationlayers)");
    }
    enabled.push_back(VK_EXT_DEBUG_UTILS_EXTENSION_NAME);
  }
  const VkDebugUtilsMessengerCreateInfoEXT messenger_info{
      .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
      .messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT |
                         VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT,
      .messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT |
                     VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                     VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT,
      .pfnUserCallback = on_validation_message,
      .pUserData = &state,
  };

  const VkApplicationInfo app{
      .sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
      .pApplicationName = "triage",
      .pEngineName = "triage",
      .apiVersion = required_api_version,
  };
  const VkInstanceCreateInfo info{
      .sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
      // Chained, so that instance creation itself is validated too.
      .pNext = validation ? &messenger_info : nullptr,
      .flags = portability ? VkInstanceCreateFlags{VK_INSTANCE_CREATE_ENUMERATE_PORTABILITY_BIT_KHR}
                           : VkInstanceCreateFlags{0},
      .pApplicationInfo = &app,
      .enabledLayerCount = validation ? 1u : 0u,
      .ppEnabledLayerNames = &validation_layer_name,
      .enabledExtensionCount = static_cast<uint32_t>(enabled.size()),
      .ppEnabledExtensionNames = enabled.data(),
  };
  if (VkResult r = vkCreateInstance(&info, nullptr, &state.instance); r != VK_SUCCESS) {
    state.instance = VK_NULL_HANDLE;
    // Short of memory, every failure here (no driver: VK_ERROR_INCOMPATIBLE_DRIVER,
    // a loader older than 1.2, a broken layer) means Vulkan is unusable on this machine.
    error e = make_vk_error(r, "vkCreateInstance", "Vulkan 1.2");
    if (e.code != errc::out_of_device_memory) e.code = errc::no_loader;
    return e;
  }
  if (validation) {
    auto create = reinterpret_cast<PFN_vkCreateDebugUtilsMessengerEXT>(
        vkGetInstanceProcAddr(state.instance, "vkCreateDebugUtilsMessengerEXT"));
    if (!create) {
      return make_error(errc::missing_feature, "vkCreateDebugUtilsMessengerEXT is missing");
    }
    if (VkResult r = create(state.instance, &messenger_info, nullptr, &state.messenger);
        r != VK_SUCCESS) {
      state.messenger = VK_NULL_HANDLE;
      return make_vk_error(r, "vkCreateDebugUtilsMessengerEXT");
    }
  }
  return success();
}

result<std::vector<VkPhysicalDevice>> physical_devices(VkInstance instance) {
  uint32_t count = 0;
  VkResult r = vkEnumeratePhysicalDevices(instance, &count, nullptr);
  std::vector<VkPhysicalDevice> devices(count);
  if (r == VK_SUCCESS) r = vkEnumeratePhysicalDevices(instance, &count, devices.data());
  if (r != VK_SUCCESS && r != VK_INCOMPLETE) return make_vk_error(r, "vkEnumeratePhysicalDevices");
  devices.resize(count);
  return devices;
}

device_type to_device_type(VkPhysicalDeviceType type) {
  switch (type) {
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU:
      return device_type::integrated_gpu;
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU:
      return device_type::discrete_gpu;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU:
      return device_type::virtual_gpu;
    case VK_PHYSICAL_DEVICE_TYPE_CPU:
      return device_type::cpu;
    default:
      return device_type::other;
  }
}

device_info describe(VkPhysicalDevice physical, uint32_t index) {
  VkPhysicalDeviceSubgroupProperties subgroup{
      .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
  VkPhysicalDeviceProperties2 properties{.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2};
  vkGetPhysicalDeviceProperties(physical, &properties.properties);
  const uint32_t api_version = properties.properties.apiVersion;
  // Structures from a newer version than the device's must not be chained.
  if (api_version >= VK_API_VERSION_1_1) {
    properties.pNext = &subgroup;
    vkGetPhysicalDeviceProperties2(physical, &properties);
  }

  device_info info;
  info.index = index;
  info.name = properties.properties.deviceName;
  info.type = to_device_type(properties.properties.deviceType);
  info.api_version = api_version;
  info.subgroup_size = subgroup.subgroupSize;
  info.max_storage_buffer_range = properties.properties.limits.maxStorageBufferRange;

  if (api_version >= VK_API_VERSION_1_1 && (subgroup.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT)) {
    const VkSubgroupFeatureFlags ops = subgroup.supportedOperations;
    info.subgroup_arithmetic =
        (ops & VK_SUBGROUP_FEATURE_BASIC_BIT) && (ops & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT);
    info.subgroup_shuffle =
        (ops & VK_SUBGROUP_FEATURE_BASIC_BIT) && (ops & VK_SUBGROUP_FEATURE_SHUFFLE_BIT);
  }
  if (api_version >= VK_API_VERSION_1_2) {
    uint32_t count = 0;
    vkEnumerateDeviceExtensionProperties(physical, nullptr, &count, nullptr);
    std::vector<VkExtensionProperties> extensions(count);
    vkEnumerateDeviceExtensionProperties(physical, nullptr, &count, extensions.data());
    extensions.resize(count);
    const bool dot_extension =
        has_extension(extensions, VK_KHR_SHADER_INTEGER_DOT_PRODUCT_EXTENSION_NAME);

    VkPhysicalDeviceShaderIntegerDotProductFeaturesKHR dot{
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES_KHR};
    VkPhysicalDeviceVulkan12Features features12{
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES,
        .pNext = dot_extension ? &dot : nullptr};
    VkPhysicalDeviceVulkan11Features features11{
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES, .pNext = &features12};
    VkPhysicalDeviceFeatures2 features{.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2,
                                       .pNext = &features11};
    vkGetPhysicalDeviceFeatures2(physical, &features);
    info.shader_float16 = features12.shaderFloat16;
    info.shader_int8 = features12.shaderInt8;
    info.storage_buffer_8bit = features12.storageBuffer8BitAccess;
    info.storage_buffer_16bit = features11.storageBuffer16BitAccess;
    info.integer_dot_product = dot_extension && dot.shaderIntegerDotProduct;
  }
  info.paths = {
      .subgroup = info.subgroup_arithmetic && info.subgroup_size >= 4 &&
                  info.subgroup_size <= 128 && (info.subgroup_size & (info.subgroup_size - 1)) == 0,
      .integer_dot = info.integer_dot_product,
      .float16 = info.storage_buffer_16bit,
  };

  VkPhysicalDeviceMemoryProperties memory;
  vkGetPhysicalDeviceMemoryProperties(physical, &memory);
  for (uint32_t i = 0; i < memory.memoryHeapCount; ++i) {
    if (memory.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) {
      info.device_local_bytes = std::max(info.device_local_bytes, memory.memoryHeaps[i].size);
    }
  }
  return info;
}

std::optional<uint32_t> compute_queue_family(VkPhysicalDevice physical) {
  uint32_t count = 0;
  vkGetPhysicalDeviceQueueFamilyProperties(physical, &count, nullptr);
  std::vector<VkQueueFamilyProperties> families(count);
  vkGetPhysicalDeviceQueueFamilyProperties(physical, &count, families.data());
  for (uint32_t i = 0; i < count; ++i) {
    if (families[i].queueFlags & VK_QUEUE_COMPUTE_BIT) return i;
  }
  return std::nullopt;
}

struct candidate {
  VkPhysicalDevice physical;
  device_info info;
  std::optional<uint32_t> queue_family;

  // Why the runtime cannot use this device, or empty if it can.
  std::string unusable_because() const {
    if (info.api_version < required_api_version) {
      return "supports Vulkan " + version_string(info.api_version) + ", 1.2 is required";
    }
    if (!queue_family) return "has no compute queue";
    return {};
  }
};

// Higher is preferred; CPU-type devices last because the CPU kernels beat them.
int preference(device_type type) {
  switch (type) {
    case device_type::discrete_gpu:
      return 4;
    case device_type::integrated_gpu:
      return 3;
    case device_type::virtual_gpu:
      return 2;
    case device_type::other:
      return 1;
    case device_type::cpu:
      return 0;
  }
  return 0;
}

// "0: 'llvmpipe (LLVM 15.0.6, 256 bits)' (cpu, Vulkan 1.3.230)", for messages.
std::string summary(const std::vector<candidate>& candidates) {
  std::string out;
  for (const candidate& c : candidates) {
    if (!out.empty()) out += "; ";
    out += std::to_string(c.info.index) + ": '" + c.info.name + "' (" +
           std::string(to_string(c.info.type)) + ", Vulkan " + version_string(c.info.api_version) +
           ")";
  }
  return out.empty() ? "none" : out;
}

// An all-digit `wanted` is an index; anything else a name substring.
bool matches(const device_info& info, std::string_view wanted) {
  if (std::all_of(wanted.begin(), wanted.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return wanted.size() < 10 && info.index == std::stoul(std::string(wanted));
  }
  return lower(info.name).find(lower(wanted)) != std::string::npos;
}

// The index into `candidates` of the device `options` asks for.
result<size_t> choose(const std::vector<candidate>& candidates, const context_options& options) {
  std::string wanted = options.device;
  std::string source = "context_options::device";
  if (const char* env = std::getenv("TRIAGE_VULKAN_DEVICE"); wanted.empty() && env && *env) {
    wanted = env;
    source = "TRIAGE_VULKAN_DEVICE";
  }

  if (!wanted.empty()) {
    for (size_t i = 0; i < candidates.size(); ++i) {
      if (!matches(candidates[i].info, wanted)) continue;
      if (std::string why = candidates[i].unusable_because(); !why.empty()) {
        return make_error(errc::missing_feature, "Vulkan device '" + candidates[i].info.name +
                                                     "' (" + source + "='" + wanted + "') " + why);
      }
      return i;
    }
    return make_error(
        errc::no_device,
        source + "='" + wanted +
            "' matches no Vulkan device (by index or name); devices: " + summary(candidates));
  }

  std::optional<size_t> best;
  bool skipped_cpu = false;
  for (size_t i = 0; i < candidates.size(); ++i) {
    const candidate& c = candidates[i];
    if (!c.unusable_because().empty()) continue;
    if (c.info.type == device_type::cpu && !options.allow_cpu) {
      skipped_cpu = true;
      continue;
    }
    // Strictly greater: among equals the loader's first one wins, so the
    // choice is stable from run to run.
    if (!best || preference(c.info.type) > preference(candidates[*best].info.type)) best = i;
  }
  if (!best) {
    const std::string why =
        skipped_cpu ? "no GPU, and CPU-type devices need allow_cpu or TRIAGE_VULKAN_DEVICE"
                    : "none has Vulkan 1.2 and a compute queue";
    return make_error(errc::no_device, why + "; devices: " + summary(candidates));
  }
  return *best;
}

// Fills state.device, queue, command buffer and fence for `chosen`, with
// the optional features it has enabled unless `portable`.
result<void> create_device(device_state& state, const candidate& chosen, bool portable) {
  state.physical = chosen.physical;
  vkGetPhysicalDeviceMemoryProperties(chosen.physical, &state.memory);
  VkPhysicalDeviceProperties properties;
  vkGetPhysicalDeviceProperties(chosen.physical, &properties);
  state.limits = properties.limits;

  // The spec requires enabling VK_KHR_portability_subset where a device has
  // it (MoltenVK); it is a beta extension, hence the literal name.
  uint32_t count = 0;
  vkEnumerateDeviceExtensionProperties(chosen.physical, nullptr, &count, nullptr);
  std::vector<VkExtensionProperties> extensions(count);
  vkEnumerateDeviceExtensionProperties(chosen.physical, nullptr, &count, extensions.data());
  extensions.resize(count);
  const char* portability_subset = "VK_KHR_portability_subset";
  const bool portability = has_extension(extensions, portability_subset);

  const float priority = 1.0f;
  const VkDeviceQueueCreateInfo queue{
      .sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
      .queueFamilyIndex = *chosen.queue_family,
      .queueCount = 1,
      .pQueuePriorities = &priority,
  };
  // Optional features, each only where the device reports it (describe()),
  // none on the portable path: the shaders ops.cc picks (shader_paths) use
  // 16-bit storage, subgroup operations (no enable needed) and OpSDot.
  std::vector<const char*> enabled;
  if (portability) enabled.push_back(portability_subset);
  const device_info& d = chosen.info;
  VkPhysicalDeviceShaderIntegerDotProductFeaturesKHR dot{
      .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES_KHR,
      .shaderIntegerDotProduct = VK_TRUE};
  VkPhysicalDeviceVulkan12Features features12{
      .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
  VkPhysicalDeviceVulkan11Features features11{
      .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES, .pNext = &features12};
  VkPhysicalDeviceFeatures2 features{.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2,
                                     .pNext = &features11};
  if (!portable) {
    features12.shaderFloat16 = d.shader_float16;
    features12.shaderInt8 = d.shader_int8;
    features12.storageBuffer8BitAccess = d.storage_buffer_8bit;
    features11.storageBuffer16BitAccess = d.storage_buffer_16bit;
    if (d.integer_dot_product) {
      enabled.push_back(VK_KHR_SHADER_INTEGER_DOT_PRODUCT_EXTENSION_NAME);
      features12.pNext = &dot;
    }
  }
  const VkDeviceCreateInfo info{
      .sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
      .pNext = &features,
      .queueCreateInfoCount = 1,
      .pQueueCreateInfos = &queue,
      .enabledExtensionCount = static_cast<uint32_t>(enabled.size()),
      .ppEnabledExtensionNames = enabled.data(),
  };
  if (VkResult r = vkCreateDevice(chosen.physical, &info, nullptr, &state.device);
      r != VK_SUCCESS) {
    state.device = VK_NULL_HANDLE;
    return make_vk_error(r, "vkCreateDevice", chosen.info.name);
  }
  vkGetDeviceQueue(state.device, *chosen.queue_family, 0, &state.queue);

  const VkCommandPoolCreateInfo pool{
      .sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
      .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,  // re-record one buffer
      .queueFamilyIndex = *chosen.queue_family,
  };
  if (VkResult r = vkCreateCommandPool(state.device, &pool, nullptr, &state.command_pool);
      r != VK_SUCCESS) {
    state.command_pool = VK_NULL_HANDLE;
    return make_vk_error(r, "vkCreateCommandPool");
  }
  const VkCommandBufferAllocateInfo allocate{
      .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
      .commandPool = state.command_pool,
      .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
      .commandBufferCount = 1,
  };
  if (VkResult r = vkAllocateCommandBuffers(state.device, &allocate, &state.commands);
      r != VK_SUCCESS) {
    return make_vk_error(r, "vkAllocateCommandBuffers");
  }
  const VkFenceCreateInfo fence{.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
  if (VkResult r = vkCreateFence(state.device, &fence, nullptr, &state.done); r != VK_SUCCESS) {
    state.done = VK_NULL_HANDLE;
    return make_vk_error(r, "vkCreateFence");
  }
  return success();
}

// A memory type for mapped buffers: host-visible and coherent (no flushes),
// preferably cached, since the host reads results back from it.
std::optional<uint32_t> host_memory_type(const VkPhysicalDeviceMemoryProperties& memory,
                                         uint32_t allowed_types) {
  const VkMemoryPropertyFlags required =
      VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
  std::optional<uint32_t> found;
  for (uint32_t i = 0; i < memory.memoryTypeCount; ++i) {
    const VkMemoryPropertyFlags flags = memory.memoryTypes[i].propertyFlags;
    if (!(allowed_types & (1u << i)) || (flags & required) != required) continue;
    if (flags & VK_MEMORY_PROPERTY_HOST_CACHED_BIT) return i;
    if (!found) found = i;
  }
  return found;
}

// A memory type for memory_use::device: device-local and not host-visible
// when the device has one (a discrete GPU's own memory; its host-visible
// device-local heap is often a small BAR window), else device-local and
// host-visible (integrated GPUs, lavapipe: all memory is both), else none.
// `host_visible` tells which was found.
std::optional<uint32_t> device_memory_type(const VkPhysicalDeviceMemoryProperties& memory,
                                           uint32_t allowed_types, bool& host_visible) {
  const VkMemoryPropertyFlags mapped =
      VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
  std::optional<uint32_t> shared;
  for (uint32_t i = 0; i < memory.memoryTypeCount; ++i) {
    const VkMemoryPropertyFlags flags = memory.memoryTypes[i].propertyFlags;
    if (!(allowed_types & (1u << i)) || !(flags & VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT)) continue;
    if (!(flags & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT)) {
      host_visible = false;
      return i;
    }
    if ((flags & mapped) == mapped && !shared) shared = i;
  }
  host_visible = shared.has_value();
  return shared;
}

}  // namespace

std::string_view to_string(device_type type) {
  switch (type) {
    case device_type::other:
      return "other";
    case device_type::integrated_gpu:
      return "integrated_gpu";
    case device_type::discrete_gpu:
      return "discrete_gpu";
    case device_type::virtual_gpu:
      return "virtual_gpu";
    case device_type::cpu:
      return "cpu";
  }
  return "unknown";
}

std::string to_string(const shader_paths& paths) {
  std::string out;
  for (auto [on, name] : {std::pair{paths.subgroup, "subgroup"},
                          std::pair{paths.integer_dot, "integer_dot"},
                          std::pair{paths.float16, "float16"}}) {
    if (!on) continue;
    if (!out.empty()) out += ' ';
    out += name;
  }
  return out.empty() ? "portable" : out;
}

std::string version_string(uint32_t api_version) {
  return std::to_string(VK_API_VERSION_MAJOR(api_version)) + "." +
         std::to_string(VK_API_VERSION_MINOR(api_version)) + "." +
         std::to_string(VK_API_VERSION_PATCH(api_version));
}

result<std::vector<device_info>> list_devices() {
  device_state state;  // only its instance; destroyed on return
  if (auto r = create_instance(state); !r) return r.error();
  auto physicals = physical_devices(state.instance);
  if (!physicals) return physicals.error();
  const char* env_portable = std::getenv("TRIAGE_VULKAN_PORTABLE");
  const bool portable = env_portable && std::string_view(env_portable) == "1";
  std::vector<device_info> out;
  for (uint32_t i = 0; i < physicals.value().size(); ++i) {
    out.push_back(describe(physicals.value()[i], i));
    if (portable) out.back().paths = {};
  }
  return out;
}

// --- buffer ---

buffer::buffer(buffer&& other) noexcept
    : device_(std::move(other.device_)),
      buffer_(std::exchange(other.buffer_, VK_NULL_HANDLE)),
      memory_(std::exchange(other.memory_, VK_NULL_HANDLE)),
      mapped_(std::exchange(other.mapped_, nullptr)),
      size_(std::exchange(other.size_, 0)) {}

buffer& buffer::operator=(buffer&& other) noexcept {
  if (this != &other) {
    release();
    device_ = std::move(other.device_);
    buffer_ = std::exchange(other.buffer_, VK_NULL_HANDLE);
    memory_ = std::exchange(other.memory_, VK_NULL_HANDLE);
    mapped_ = std::exchange(other.mapped_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

buffer::~buffer() { release(); }

void buffer::release() {
  if (!device_) return;
  // Safe without waiting: dispatch() returns only once the device is done.
  if (mapped_) vkUnmapMemory(device_->device, memory_);
  if (buffer_ != VK_NULL_HANDLE) vkDestroyBuffer(device_->device, buffer_, nullptr);
  if (memory_ != VK_NULL_HANDLE) vkFreeMemory(device_->device, memory_, nullptr);
  device_.reset();
  buffer_ = VK_NULL_HANDLE;
  memory_ = VK_NULL_HANDLE;
  mapped_ = nullptr;
  size_ = 0;
}

// --- pipeline ---

pipeline::pipeline(pipeline&& other) noexcept
    : device_(std::move(other.device_)),
      name_(std::exchange(other.name_, {})),
      options_(other.options_),
      set_layout_(std::exchange(other.set_layout_, VK_NULL_HANDLE)),
      layout_(std::exchange(other.layout_, VK_NULL_HANDLE)),
      pipeline_(std::exchange(other.pipeline_, VK_NULL_HANDLE)) {}

pipeline& pipeline::operator=(pipeline&& other) noexcept {
  if (this != &other) {
    release();
    device_ = std::move(other.device_);
    name_ = std::exchange(other.name_, {});
    options_ = other.options_;
    set_layout_ = std::exchange(other.set_layout_, VK_NULL_HANDLE);
    layout_ = std::exchange(other.layout_, VK_NULL_HANDLE);
    pipeline_ = std::exchange(other.pipeline_, VK_NULL_HANDLE);
  }
  return *this;
}

pipeline::~pipeline() { release(); }

void pipeline::release() {
  if (!device_) return;
  VkDevice device = device_->device;
  if (pipeline_ != VK_NULL_HANDLE) vkDestroyPipeline(device, pipeline_, nullptr);
  if (layout_ != VK_NULL_HANDLE) vkDestroyPipelineLayout(device, layout_, nullptr);
  if (set_layout_ != VK_NULL_HANDLE) vkDestroyDescriptorSetLayout(device, set_layout_, nullptr);
  device_.reset();
  pipeline_ = VK_NULL_HANDLE;
  layout_ = VK_NULL_HANDLE;
  set_layout_ = VK_NULL_HANDLE;
}

// --- context ---

result<context> context::create(const context_options& options) {
  auto state = std::make_shared<device_state>();
  const char* env_validation = std::getenv("TRIAGE_VULKAN_VALIDATION");
  const bool validation =
      options.validation || (env_validation && std::string_view(env_validation) == "1");
  if (auto r = create_instance(*state, validation); !r) return r.error();

  auto physicals = physical_devices(state->instance);
  if (!physicals) return physicals.error();
  std::vector<candidate> candidates;
  for (uint32_t i = 0; i < physicals.value().size(); ++i) {
    VkPhysicalDevice physical = physicals.value()[i];
    candidates.push_back({physical, describe(physical, i), compute_queue_family(physical)});
  }

  auto chosen = choose(candidates, options);
  if (!chosen) return chosen.error();
  const candidate& device = candidates[chosen.value()];
  const char* env_portable = std::getenv("TRIAGE_VULKAN_PORTABLE");
  const bool portable =
      options.portable || (env_portable && std::string_view(env_portable) == "1");
  if (auto r = create_device(*state, device, portable); !r) return r.error();
  if (!options.pipeline_cache_dir.empty()) {
    // One file per device and driver: the name holds the pipeline cache
    // UUID, which changes with the driver build (the driver also checks the
    // header and ignores data that does not fit).
    VkPhysicalDeviceProperties props;
    vkGetPhysicalDeviceProperties(device.physical, &props);
    std::string uuid;
    for (uint8_t b : props.pipelineCacheUUID) {
      const char* hex = "0123456789abcdef";
      uuid += hex[b >> 4];
      uuid += hex[b & 15];
    }
    state->cache_file = (std::filesystem::path(options.pipeline_cache_dir) /
                         (std::to_string(props.vendorID) + "-" + std::to_string(props.deviceID) +
                          "-" + uuid + ".bin"))
                            .string();
    std::vector<char> data;
    if (std::ifstream in(state->cache_file, std::ios::binary); in) {
      data.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    const VkPipelineCacheCreateInfo info{.sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO,
                                         .initialDataSize = data.size(),
                                         .pInitialData = data.empty() ? nullptr : data.data()};
    if (vkCreatePipelineCache(state->device, &info, nullptr, &state->cache) != VK_SUCCESS) {
      // A cache the driver rejects: start empty rather than fail.
      const VkPipelineCacheCreateInfo empty{.sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO};
      if (VkResult r = vkCreatePipelineCache(state->device, &empty, nullptr, &state->cache);
          r != VK_SUCCESS) {
        state->cache = VK_NULL_HANDLE;
        return make_vk_error(r, "vkCreatePipelineCache", state->cache_file);
      }
    }
  }

  context ctx;
  ctx.state_ = std::move(state);
  ctx.info_ = device.info;
  ctx.map_device_memory_ = options.map_device_memory;
  if (portable) ctx.info_.paths = {};
  return ctx;
}

context::~context() = default;

result<buffer> context::create_buffer(size_t bytes, memory_use use) {
  if (bytes == 0 || bytes > info_.max_storage_buffer_range) {
    return make_error(errc::invalid_argument,
                      "buffer of " + std::to_string(bytes) + " bytes on '" + info_.name +
                          "': must be 1 to maxStorageBufferRange (" +
                          std::to_string(info_.max_storage_buffer_range) + ") bytes");
  }
  const VkDevice device = state_->device;
  buffer out;  // its destructor releases whatever was created if a step fails
  out.device_ = state_;
  out.size_ = bytes;

  const VkBufferCreateInfo info{
      .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
      .size = bytes,
      // Transfer bits so the backend can later stage through these buffers.
      .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
               VK_BUFFER_USAGE_TRANSFER_DST_BIT,
      .sharingMode = VK_SHARING_MODE_EXCLUSIVE,
  };
  if (VkResult r = vkCreateBuffer(device, &info, nullptr, &out.buffer_); r != VK_SUCCESS) {
    out.buffer_ = VK_NULL_HANDLE;
    return make_vk_error(r, "vkCreateBuffer", std::to_string(bytes) + " bytes");
  }

  VkMemoryRequirements requirements;
  vkGetBufferMemoryRequirements(device, out.buffer_, &requirements);
  bool map = true;
  std::optional<uint32_t> type;
  if (use == memory_use::device) {
    type = device_memory_type(state_->memory, requirements.memoryTypeBits, map);
    map = map && map_device_memory_;
    if (!type) {
      return make_error(errc::missing_feature,
                        "'" + info_.name + "' has no device-local memory for storage buffers");
    }
  } else {
    type = host_memory_type(state_->memory, requirements.memoryTypeBits);
    if (!type) {
      return make_error(
          errc::missing_feature,
          "'" + info_.name + "' has no host-visible coherent memory for storage buffers");
    }
  }
  // One allocation per buffer: simple, and fine for the few large buffers a
  // model needs (drivers allow at least 4096 allocations).
  const VkMemoryAllocateInfo allocate{
      .sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
      .allocationSize = requirements.size,
      .memoryTypeIndex = *type,
  };
  if (VkResult r = vkAllocateMemory(device, &allocate, nullptr, &out.memory_); r != VK_SUCCESS) {
    out.memory_ = VK_NULL_HANDLE;
    return make_vk_error(r, "vkAllocateMemory", std::to_string(requirements.size) + " bytes");
  }
  if (VkResult r = vkBindBufferMemory(device, out.buffer_, out.memory_, 0); r != VK_SUCCESS) {
    return make_vk_error(r, "vkBindBufferMemory");
  }
  if (!map) {
    // Not mapped: zeroed on the device.
    if (auto r = transfer([&](VkCommandBuffer commands) {
          vkCmdFillBuffer(commands, out.buffer_, 0, VK_WHOLE_SIZE, 0);
        });
        !r) {
      return r.error();
    }
    return out;
  }
  if (VkResult r = vkMapMemory(device, out.memory_, 0, VK_WHOLE_SIZE, 0, &out.mapped_);
      r != VK_SUCCESS) {
    out.mapped_ = nullptr;
    return make_vk_error(r, "vkMapMemory", std::to_string(requirements.size) + " bytes");
  }
  // Vulkan leaves new memory undefined; zero it so results never depend on
  // what a previous allocation left there.
  std::memset(out.mapped_, 0, bytes);
  return out;
}

namespace {

// Ends the command buffer, submits it and waits for it. No timeout: a hung
// device comes back as VK_ERROR_DEVICE_LOST once the driver resets it, and a
// wait that gave up would leave the command buffer in flight, unusable for
// the next recording.
result<void> end_submit_and_wait(device_state& st) {
  VkCommandBuffer commands = st.commands;
  if (VkResult r = vkEndCommandBuffer(commands); r != VK_SUCCESS) {
    return make_vk_error(r, "vkEndCommandBuffer");
  }
  if (VkResult r = vkResetFences(st.device, 1, &st.done); r != VK_SUCCESS) {
    return make_vk_error(r, "vkResetFences");
  }
  const VkSubmitInfo submit_info{.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
                                 .commandBufferCount = 1,
                                 .pCommandBuffers = &commands};
  if (VkResult r = vkQueueSubmit(st.queue, 1, &submit_info, st.done); r != VK_SUCCESS) {
    return make_vk_error(r, "vkQueueSubmit");
  }
  if (VkResult r = vkWaitForFences(st.device, 1, &st.done, VK_TRUE, UINT64_MAX); r != VK_SUCCESS) {
    return make_vk_error(r, "vkWaitForFences");
  }
  return success();
}

}  // namespace

result<void> context::transfer(const std::function<void(VkCommandBuffer)>& commands_of) {
  device_state& st = *state_;
  if (st.open) {
    return make_error(errc::invalid_argument,
                      "a transfer on '" + info_.name + "' while a recording is open (begin() .. submit())");
  }
  const VkCommandBufferBeginInfo info{.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                      .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT};
  VkCommandBuffer commands = st.commands;
  if (VkResult r = vkBeginCommandBuffer(commands, &info); r != VK_SUCCESS) {
    return make_vk_error(r, "vkBeginCommandBuffer");
  }
  // Earlier dispatches' writes are done before the transfer reads or
  // overwrites; the transfer's writes are done before anything later (a
  // dispatch, another transfer, the host) touches them. Barrier scopes run
  // in submission order, so these cover the submits before and after.
  const VkMemoryBarrier before{
      .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
      .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_SHADER_READ_BIT,
      .dstAccessMask = VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT};
  vkCmdPipelineBarrier(commands, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_TRANSFER_BIT, 0,
                       1, &before, 0, nullptr, 0, nullptr);
  commands_of(commands);
  const VkMemoryBarrier after{
      .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
      .srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT,
      .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_READ_BIT |
                       VK_ACCESS_TRANSFER_WRITE_BIT | VK_ACCESS_HOST_READ_BIT};
  vkCmdPipelineBarrier(commands, VK_PIPELINE_STAGE_TRANSFER_BIT,
                       VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT |
                           VK_PIPELINE_STAGE_HOST_BIT,
                       0, 1, &after, 0, nullptr, 0, nullptr);
  return end_submit_and_wait(st);
}

namespace {

// Largest staging buffer write() and read() use; bigger copies go in pieces.
constexpr size_t staging_bytes = size_t{16} << 20;

}  // namespace

result<void> context::write(buffer& dst, std::span<const std::byte> data, size_t offset) {
  if (dst.device_ != state_ || offset > dst.size_ || data.size() > dst.size_ - offset) {
    return make_error(errc::invalid_argument,
                      "write of " + std::to_string(data.size()) + " bytes at offset " + std::to_string(offset) +
                          " into a buffer of " + std::to_string(dst.size_) + " bytes (or of another context)");
  }
  if (data.empty()) return success();
  if (dst.mapped()) {
    std::memcpy(static_cast<std::byte*>(dst.mapped_) + offset, data.data(), data.size());
    return success();
  }
  auto staging = create_buffer(std::min(staging_bytes, data.size()));
  if (!staging) return staging.error();
  for (size_t done = 0; done < data.size();) {
    const size_t n = std::min(staging.value().size(), data.size() - done);
    std::memcpy(staging.value().mapped_, data.data() + done, n);
    const VkBufferCopy region{.srcOffset = 0, .dstOffset = offset + done, .size = n};
    if (auto r = transfer([&](VkCommandBuffer commands) {
          vkCmdCopyBuffer(commands, staging.value().buffer_, dst.buffer_, 1, &region);
        });
        !r) {
      return r;
    }
    done += n;
  }
  return success();
}

result<void> context::read(const buffer& src, std::span<std::byte> dst, size_t offset) {
  if (src.device_ != state_ || offset > src.size_ || dst.size() > src.size_ - offset) {
    return make_error(errc::invalid_argument,
                      "read of " + std::to_string(dst.size()) + " bytes at offset " + std::to_string(offset) +
                          " from a buffer of " + std::to_string(src.size_) + " bytes (or of another context)");
  }
  if (dst.empty()) return success();
  if (src.mapped()) {
    std::memcpy(dst.data(), static_cast<const std::byte*>(src.mapped_) + offset, dst.size());
    return success();
  }
  auto staging = create_buffer(std::min(staging_bytes, dst.size()));
  if (!staging) return staging.error();
  for (size_t done = 0; done < dst.size();) {
    const size_t n = std::min(staging.value().size(), dst.size() - done);
    const VkBufferCopy region{.srcOffset = offset + done, .dstOffset = 0, .size = n};
    if (auto r = transfer([&](VkCommandBuffer commands) {
          vkCmdCopyBuffer(commands, src.buffer_, staging.value().buffer_, 1, &region);
        });
        !r) {
      return r;
    }
    std::memcpy(dst.data() + done, staging.value().mapped_, n);
    done += n;
  }
  return success();
}

result<pipeline> context::create_pipeline(const shaders::spirv& shader,
                                          const pipeline_options& options) {
  const std::string what = "pipeline '" + std::string(shader.name) + "'";
  const VkPhysicalDeviceLimits& limits = state_->limits;
  if (shader.word_count == 0 || shader.words[0] != 0x07230203u) {
    return make_error(errc::invalid_argument, what + ": not a SPIR-V module");
  }
  if (options.binding_count == 0 ||
      options.binding_count > limits.maxPerStageDescriptorStorageBuffers) {
    return make_error(errc::invalid_argument,
                      what + ": binding_count " + std::to_string(options.binding_count) +
                          " must be 1 to " +
                          std::to_string(limits.maxPerStageDescriptorStorageBuffers));
  }
  if (options.push_constant_size % 4 != 0 ||
      options.push_constant_size > limits.maxPushConstantsSize) {
    return make_error(errc::invalid_argument, what + ": push_constant_size " +
                                                  std::to_string(options.push_constant_size) +
                                                  " must be a multiple of 4 up to " +
                                                  std::to_string(limits.maxPushConstantsSize));
  }
  uint64_t invocations = 1;
  for (int i = 0; i < 3; ++i) {
    const uint32_t size = options.workgroup_size[i];
    invocations *= size;
    if (size == 0 || size > limits.maxComputeWorkGroupSize[i]) {
      return make_error(errc::invalid_argument,
                        what + ": workgroup_size[" + std::to_string(i) + "] " +
                            std::to_string(size) + " must be 1 to " +
                            std::to_string(limits.maxComputeWorkGroupSize[i]));
    }
  }
  if (invocations > limits.maxComputeWorkGroupInvocations) {
    return make_error(errc::invalid_argument,
                      what + ": workgroup of " + std::to_string(invocations) +
                          " invocations exceeds " +
                          std::to_string(limits.maxComputeWorkGroupInvocations));
  }

  const VkDevice device = state_->device;
  pipeline out;  // its destructor releases whatever was created if a step fails
  out.device_ = state_;
  out.name_ = shader.name;
  out.options_ = options;

  std::vector<VkDescriptorSetLayoutBinding> bindings(options.binding_count);
  for (uint32_t i = 0; i < options.binding_count; ++i) {
    bindings[i] = {.binding = i,
                   .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                   .descriptorCount = 1,
                   .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT};
  }
  const VkDescriptorSetLayoutCreateInfo set_layout{
      .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
      .bindingCount = options.binding_count,
      .pBindings = bindings.data(),
  };
  if (VkResult r = vkCreateDescriptorSetLayout(device, &set_layout, nullptr, &out.set_layout_);
      r != VK_SUCCESS) {
    out.set_layout_ = VK_NULL_HANDLE;
    return make_vk_error(r, "vkCreateDescriptorSetLayout", what);
  }

  const VkPushConstantRange push_range{
      .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT, .offset = 0, .size = options.push_constant_size};
  const VkPipelineLayoutCreateInfo layout{
      .sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
      .setLayoutCount = 1,
      .pSetLayouts = &out.set_layout_,
      .pushConstantRangeCount = options.push_constant_size > 0 ? 1u : 0u,
      .pPushConstantRanges = &push_range,
  };
  if (VkResult r = vkCreatePipelineLayout(device, &layout, nullptr, &out.layout_);
      r != VK_SUCCESS) {
    out.layout_ = VK_NULL_HANDLE;
    return make_vk_error(r, "vkCreatePipelineLayout", what);
  }

  const VkShaderModuleCreateInfo module_info{
      .sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
      .codeSize = shader.word_count * sizeof(uint32_t),
      .pCode = shader.words,
  };
  VkShaderModule module = VK_NULL_HANDLE;
  if (VkResult r = vkCreateShaderModule(device, &module_info, nullptr, &module); r != VK_SUCCESS) {
    return make_vk_error(r, "vkCreateShaderModule", what);
  }
  // Specialization constants 0, 1, 2 are the workgroup size (common.glsl),
  // 3 on the shader's own. Entries for ids a shader does not declare are
  // ignored, as Vulkan specifies.
  std::vector<uint32_t> values(options.workgroup_size.begin(), options.workgroup_size.end());
  values.insert(values.end(), options.constants.begin(), options.constants.end());
  std::vector<VkSpecializationMapEntry> entries(values.size());
  for (uint32_t i = 0; i < entries.size(); ++i) {
    entries[i] = {.constantID = i, .offset = 4 * i, .size = sizeof(uint32_t)};
  }
  const VkSpecializationInfo specialization{
      .mapEntryCount = static_cast<uint32_t>(entries.size()),
      .pMapEntries = entries.data(),
      .dataSize = values.size() * sizeof(uint32_t),
      .pData = values.data(),
  };
  const VkComputePipelineCreateInfo pipeline_info{
      .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
      .stage = {.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
                .stage = VK_SHADER_STAGE_COMPUTE_BIT,
                .module = module,
                .pName = "main",
                .pSpecializationInfo = &specialization},
      .layout = out.layout_,
  };
  VkResult r =
      vkCreateComputePipelines(device, state_->cache, 1, &pipeline_info, nullptr, &out.pipeline_);
  // The pipeline keeps what it needs; the module is not needed after this.
  vkDestroyShaderModule(device, module, nullptr);
  if (r != VK_SUCCESS) {
    out.pipeline_ = VK_NULL_HANDLE;
    return make_vk_error(r, "vkCreateComputePipelines", what);
  }

  return out;
}

result<void> context::dispatch(const pipeline& p, std::span<const buffer* const> buffers,
                               std::span<const std::byte> push_constants,
                               std::array<uint32_t, 3> group_count) {
  if (auto r = begin(); !r) return r;
  if (auto r = record(p, buffers, push_constants, group_count); !r) return r;
  return submit();
}

namespace {

// A fresh pool for the descriptor sets of a recording.
result<VkDescriptorPool> create_descriptor_pool(VkDevice device) {
  constexpr uint32_t sets = 1024;  // a forward pass of SmolLM2 records ~450 dispatches
  const VkDescriptorPoolSize size{.type = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                  .descriptorCount = sets * 6};
  const VkDescriptorPoolCreateInfo info{
      .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
      .maxSets = sets,
      .poolSizeCount = 1,
      .pPoolSizes = &size,
  };
  VkDescriptorPool pool = VK_NULL_HANDLE;
  if (VkResult r = vkCreateDescriptorPool(device, &info, nullptr, &pool); r != VK_SUCCESS) {
    return make_vk_error(r, "vkCreateDescriptorPool");
  }
  return pool;
}

}  // namespace

result<void> context::begin() {
  device_state& st = *state_;
  st.recording = false;
  for (VkDescriptorPool pool : st.pools) {
    if (VkResult r = vkResetDescriptorPool(st.device, pool, 0); r != VK_SUCCESS) {
      return make_vk_error(r, "vkResetDescriptorPool");
    }
  }
  st.pool_in_use = 0;
  // A recording abandoned half-way is ended first: Vulkan does not allow
  // beginning a command buffer that is still recording.
  if (st.open) {
    vkEndCommandBuffer(st.commands);
    st.open = false;
  }
  const VkCommandBufferBeginInfo info{.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                      .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT};
  // Begin resets the buffer (the pool allows it), whatever state the last
  // recording left it in.
  if (VkResult r = vkBeginCommandBuffer(st.commands, &info); r != VK_SUCCESS) {
    return make_vk_error(r, "vkBeginCommandBuffer");
  }
  st.recording = true;
  st.open = true;
  return success();
}

result<void> context::record(const pipeline& p, std::span<const buffer* const> buffers,
                             std::span<const std::byte> push_constants,
                             std::array<uint32_t, 3> group_count) {
  device_state& st = *state_;
  const std::string what = "dispatch of '" + std::string(p.name_) + "'";
  if (!st.recording) {
    return make_error(errc::invalid_argument, what + ": not recording (call begin() first)");
  }
  // Any failure below abandons the recording.
  st.recording = false;
  if (p.device_ != state_) {
    return make_error(errc::invalid_argument, what + ": pipeline is from another context");
  }
  if (buffers.size() != p.options_.binding_count) {
    return make_error(errc::invalid_argument,
                      what + ": " + std::to_string(buffers.size()) + " buffers for " +
                          std::to_string(p.options_.binding_count) + " bindings");
  }
  for (size_t i = 0; i < buffers.size(); ++i) {
    if (!buffers[i] || buffers[i]->device_ != state_) {
      return make_error(errc::invalid_argument, what + ": buffer " + std::to_string(i) +
                                                    " is null, empty or from another context");
    }
  }
  if (push_constants.size() != p.options_.push_constant_size) {
    return make_error(errc::invalid_argument,
                      what + ": " + std::to_string(push_constants.size()) +
                          " bytes of push constants, the pipeline declares " +
                          std::to_string(p.options_.push_constant_size));
  }
  for (int i = 0; i < 3; ++i) {
    if (group_count[i] > st.limits.maxComputeWorkGroupCount[i]) {
      return make_error(errc::invalid_argument,
                        what + ": group_count[" + std::to_string(i) + "] " +
                            std::to_string(group_count[i]) + " exceeds " +
                            std::to_string(st.limits.maxComputeWorkGroupCount[i]));
    }
  }

  // A descriptor set from the recording's pools, adding a pool when all are full.
  VkDescriptorSet set = VK_NULL_HANDLE;
  while (set == VK_NULL_HANDLE) {
    if (st.pool_in_use == st.pools.size()) {
      auto pool = create_descriptor_pool(st.device);
      if (!pool) return pool.error();
      st.pools.push_back(pool.value());
    }
    const VkDescriptorSetAllocateInfo allocate{
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
        .descriptorPool = st.pools[st.pool_in_use],
        .descriptorSetCount = 1,
        .pSetLayouts = &p.set_layout_,
    };
    VkResult r = vkAllocateDescriptorSets(st.device, &allocate, &set);
    if (r == VK_ERROR_OUT_OF_POOL_MEMORY || r == VK_ERROR_FRAGMENTED_POOL) {
      set = VK_NULL_HANDLE;
      ++st.pool_in_use;
      continue;
    }
    if (r != VK_SUCCESS) return make_vk_error(r, "vkAllocateDescriptorSets", what);
  }

  std::vector<VkDescriptorBufferInfo> buffer_infos(buffers.size());
  std::vector<VkWriteDescriptorSet> writes(buffers.size());
  for (uint32_t i = 0; i < buffers.size(); ++i) {
    buffer_infos[i] = {.buffer = buffers[i]->buffer_, .offset = 0, .range = VK_WHOLE_SIZE};
    writes[i] = {.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
                 .dstSet = set,
                 .dstBinding = i,
                 .descriptorCount = 1,
                 .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                 .pBufferInfo = &buffer_infos[i]};
  }
  vkUpdateDescriptorSets(st.device, static_cast<uint32_t>(writes.size()), writes.data(), 0,
                         nullptr);

  VkCommandBuffer commands = st.commands;
  vkCmdBindPipeline(commands, VK_PIPELINE_BIND_POINT_COMPUTE, p.pipeline_);
  vkCmdBindDescriptorSets(commands, VK_PIPELINE_BIND_POINT_COMPUTE, p.layout_, 0, 1, &set, 0,
                          nullptr);
  if (!push_constants.empty()) {
    vkCmdPushConstants(commands, p.layout_, VK_SHADER_STAGE_COMPUTE_BIT, 0,
                       static_cast<uint32_t>(push_constants.size()), push_constants.data());
  }
  vkCmdDispatch(commands, group_count[0], group_count[1], group_count[2]);
  // The next dispatch may read what this one wrote, or overwrite what it read.
  const VkMemoryBarrier between{
      .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
      .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_SHADER_READ_BIT,
      .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT};
  vkCmdPipelineBarrier(commands, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
                       VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 1, &between, 0, nullptr, 0,
                       nullptr);
  st.recording = true;
  return success();
}

result<void> context::submit() {
  device_state& st = *state_;
  if (!st.recording) {
    return make_error(errc::invalid_argument,
                      "submit: nothing recorded (begin() was not called, or a record() failed)");
  }
  st.recording = false;
  VkCommandBuffer commands = st.commands;
  // A fence wait alone does not make shader writes visible to the host; this
  // barrier does. (Host writes before the submit need nothing: vkQueueSubmit
  // makes coherent host writes visible to the device.)
  const VkMemoryBarrier to_host{.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                                .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT,
                                .dstAccessMask = VK_ACCESS_HOST_READ_BIT};
  vkCmdPipelineBarrier(commands, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_HOST_BIT,
                       0, 1, &to_host, 0, nullptr, 0, nullptr);
  st.open = false;
  return end_submit_and_wait(st);
}

std::vector<std::string> context::validation_messages() const {
  std::lock_guard lock(state_->messages_mutex);
  return state_->messages;
}

std::string default_pipeline_cache_dir() {
  const char* home = std::getenv("HOME");
  if (home == nullptr || *home == '\0') return {};
  return (std::filesystem::path(home) / ".cache/triage/vulkan-pipelines").string();
}

bool validation_layer_available() {
  uint32_t count = 0;
  if (vkEnumerateInstanceLayerProperties(&count, nullptr) != VK_SUCCESS) return false;
  std::vector<VkLayerProperties> layers(count);
  if (vkEnumerateInstanceLayerProperties(&count, layers.data()) != VK_SUCCESS) return false;
  layers.resize(count);
  return std::any_of(layers.begin(), layers.end(), [](const VkLayerProperties& l) {
    return std::string_view(l.layerName) == validation_layer_name;
  });
}

}  // namespace triage::vulkan
