#include "state/errc.h"

#include <string>

namespace triage::state {
namespace {

class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "triage.state"; }
  std::string message(int value) const override {
    switch (static_cast<errc>(value)) {
      case errc::io: return "state store I/O error";
      case errc::corrupt: return "state store corrupt";
      case errc::invalid_argument: return "invalid argument to the state store";
      case errc::kafka: return "state changelog Kafka error";
      case errc::restore_failed: return "state restore failed";
    }
    return "unknown state error " + std::to_string(value);
  }
};

}  // namespace

const std::error_category& state_category() {
  static const category instance;
  return instance;
}

std::error_code make_error_code(errc e) { return {static_cast<int>(e), state_category()}; }

}  // namespace triage::state
