# embed_spirv.cmake: cmake -DNAME=<id> -DSPV=<file.spv> -DOUT=<file.cc> -P embed_spirv.cmake
#
# Writes a C++ source defining `triage::shaders::embedded::<NAME>`, a spirv
# whose words are the contents of SPV. Run by compute/shaders/CMakeLists.txt.
foreach(var NAME SPV OUT)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "embed_spirv.cmake: -D${var}=... is required")
  endif()
endforeach()

file(READ ${SPV} hex HEX)
string(LENGTH "${hex}" hex_length)
math(EXPR remainder "${hex_length} % 8")
# SPIR-V is a stream of 32-bit words starting with the magic 0x07230203; glslc
# writes it little-endian, as the bytes "03022307".
if(hex_length EQUAL 0 OR NOT remainder EQUAL 0 OR NOT hex MATCHES "^03022307")
  message(FATAL_ERROR "embed_spirv.cmake: ${SPV} is not little-endian SPIR-V")
endif()
math(EXPR word_count "${hex_length} / 8")

# Bytes b0 b1 b2 b3 -> word 0xb3b2b1b0, then eight words per line.
string(REGEX REPLACE "(..)(..)(..)(..)" "0x\\4\\3\\2\\1u," words "${hex}")
set(w "0x........u,")
string(REGEX REPLACE "(${w}${w}${w}${w}${w}${w}${w}${w})" "\\1\n    " words "${words}")
string(STRIP "${words}" words)

file(WRITE ${OUT}
"// Generated from ${NAME}.spv by compute/shaders/embed_spirv.cmake; do not edit.
#include <cstdint>

#include \"compute/shaders/embedded.h\"

namespace triage::shaders::embedded {
namespace {
const uint32_t words[${word_count}] = {
    ${words}
};
}  // namespace

// constinit: initialised at compile time, so usable from any static initialiser.
constinit const spirv ${NAME}{\"${NAME}\", words, ${word_count}};

}  // namespace triage::shaders::embedded
")
