#include "workers/commands.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <thread>

#include "compute/vulkan/context.h"
#include "schemas/codec.h"

namespace triage::workers {

int run_decode(const std::vector<std::string>& files) {
  int status = 0;
  for (const auto& file : files) {
    std::string bytes;
    if (file == "-") {
      bytes.assign(std::istreambuf_iterator<char>(std::cin), {});
    } else {
      std::ifstream in(file, std::ios::binary);
      if (!in) {
        std::cerr << file << ": cannot open\n";
        status = 2;
        continue;
      }
      bytes.assign(std::istreambuf_iterator<char>(in), {});
    }
    auto ticket = schemas::decode_ticket(bytes);
    if (!ticket) {
      const auto code = static_cast<schemas::errc>(ticket.error().code.value());
      std::cerr << file << ": " << schemas::errc_name(code) << ": " << ticket.error().message
                << "\n";
      status = 2;
      continue;
    }
    std::cout << schemas::to_json(ticket.value()) << "\n";
  }
  return status;
}

std::string cache_dir() {
  if (const char* cache = std::getenv("TRIAGE_CACHE"); cache && *cache) return cache;
  const char* home = std::getenv("HOME");
  return std::string(home ? home : "") + "/.cache/triage";
}

std::string model_path_or_default(const std::string& path) {
  if (!path.empty()) return path;
  if (const char* env = std::getenv("TRIAGE_MODEL"); env && *env) return env;
  return cache_dir() + "/models/SmolLM2-135M-Instruct.Q4_1.gguf";
}

int run_devices() {
  std::cout << "cpu: " << std::thread::hardware_concurrency() << " threads\n";
  auto devices = vulkan::list_devices();
  if (!devices) {
    std::cout << "vulkan: unavailable: " << devices.error().message << "\n";
    return 0;  // no Vulkan is a normal configuration: the CPU backend serves
  }
  if (devices.value().empty()) std::cout << "vulkan: no devices\n";
  for (const auto& d : devices.value()) {
    std::cout << "vulkan[" << d.index << "]: " << d.name << " (" << vulkan::to_string(d.type)
              << ", Vulkan " << vulkan::version_string(d.api_version) << ")\n"
              << "  subgroup_size=" << d.subgroup_size
              << " max_storage_buffer_range=" << d.max_storage_buffer_range
              << " device_local_bytes=" << d.device_local_bytes << "\n"
              << "  float16=" << d.shader_float16 << " int8=" << d.shader_int8
              << " storage8=" << d.storage_buffer_8bit << " storage16=" << d.storage_buffer_16bit
              << " subgroup_arithmetic=" << d.subgroup_arithmetic
              << " subgroup_shuffle=" << d.subgroup_shuffle
              << " integer_dot=" << d.integer_dot_product << "\n"
              << "  shader paths: " << vulkan::to_string(d.paths)
              << " (TRIAGE_VULKAN_PORTABLE=1: portable)\n";
  }
  return 0;
}

}  // namespace triage::workers
