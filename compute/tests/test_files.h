// test_files.h: where compute tests find the real model and the golden files.
#pragma once

#include <cstdlib>
#include <filesystem>

namespace triage::test_files {

// $TRIAGE_MODEL, else the model ops/setup.sh installs (CI always has it).
inline std::filesystem::path model_path() {
  if (const char* env = std::getenv("TRIAGE_MODEL"); env != nullptr && *env != '\0') return env;
  const char* home = std::getenv("HOME");
  return std::filesystem::path(home != nullptr ? home : "") /
         ".cache/triage/models/SmolLM2-135M-Instruct.Q4_1.gguf";
}

// compute/tests/golden under $TRIAGE_SOURCE_DIR (set by CTest).
inline std::filesystem::path golden_dir() {
  const char* src = std::getenv("TRIAGE_SOURCE_DIR");
  return std::filesystem::path(src != nullptr ? src : ".") / "compute/tests/golden";
}

}  // namespace triage::test_files
