// errc.h: error codes of the model loader, usable as std::error_code. The
// message of each failure names the file and the metadata key or tensor at
// fault, with what was expected and what the file holds.
//
//   auto m = triage::model::model::load(path);
//   if (!m && m.error().code == triage::model::errc::missing_tensor) { ... }
#pragma once

#include <system_error>

namespace triage::model {

enum class errc {
  // 0 is success for std::error_code, so codes start at 1.
  unsupported_architecture = 1,  // general.architecture is not one the engine runs
  missing_key,                   // a required metadata key is absent
  bad_key,                       // a key has the wrong type or an impossible value
  missing_tensor,                // a required tensor is absent
  bad_shape,                     // a tensor's dimensions do not match the hyperparameters
  unsupported_type,              // a tensor type the CPU kernels do not read
};

const std::error_category& model_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), model_category()};
}

}  // namespace triage::model

template <>
struct std::is_error_code_enum<triage::model::errc> : std::true_type {};
