// spirv.h: the compute shaders built into this binary, by name.
//
// Every triage_shader(<name> ...) line in compute/shaders/CMakeLists.txt
// becomes one entry: SPIR-V compiled by glslc at build time and embedded as
// an array of words. Names are the variant names (e.g. "add_f32").
//
//   const triage::shaders::spirv* s = triage::shaders::find("add_f32");
//   if (!s) ...;  // not built into this binary
//   vkCreateShaderModule(..., s->words, s->word_count * 4, ...);
//
// Code that always needs a given shader can name it directly and let the
// linker check it exists: #include "compute/shaders/embedded.h" (generated)
// and use triage::shaders::embedded::add_f32.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace triage::shaders {

struct spirv {
  std::string_view name;  // the triage_shader() name, a C++ identifier
  const uint32_t* words;  // SPIR-V module, host byte order; static storage
  size_t word_count;      // number of 32-bit words (bytes / 4)
};

// Every embedded shader, in the order of compute/shaders/CMakeLists.txt.
std::span<const spirv> all();

// The shader called `name`, or nullptr if none was built.
const spirv* find(std::string_view name);

}  // namespace triage::shaders
