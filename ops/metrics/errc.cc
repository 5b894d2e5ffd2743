#include "ops/metrics/errc.h"

#include <string>

namespace triage::ops {
namespace {

class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "triage.ops"; }
  std::string message(int c) const override {
    switch (static_cast<errc>(c)) {
      case errc::bad_address: return "bad listen address";
      case errc::bind_failed: return "cannot bind the listen address";
    }
    return "unknown ops error " + std::to_string(c);
  }
};

}  // namespace

const std::error_category& ops_category() {
  static const category c;
  return c;
}

std::error_code make_error_code(errc e) { return {static_cast<int>(e), ops_category()}; }

}  // namespace triage::ops
