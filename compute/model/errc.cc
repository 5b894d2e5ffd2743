#include "compute/model/errc.h"

#include <string>

namespace triage::model {

namespace {

class category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "model"; }
  std::string message(int code) const override {
    switch (static_cast<errc>(code)) {
      case errc::unsupported_architecture:
        return "unsupported architecture";
      case errc::missing_key:
        return "missing metadata key";
      case errc::bad_key:
        return "bad metadata value";
      case errc::missing_tensor:
        return "missing tensor";
      case errc::bad_shape:
        return "tensor shape mismatch";
      case errc::unsupported_type:
        return "unsupported tensor type";
    }
    return "unknown model error";
  }
};

}  // namespace

const std::error_category& model_category() noexcept {
  static const category_impl category;
  return category;
}

}  // namespace triage::model
