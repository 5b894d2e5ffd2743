#include "replay/errc.h"

#include <string>

namespace triage::replay {
namespace {

class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "replay"; }
  std::string message(int c) const override {
    switch (static_cast<errc>(c)) {
      case errc::unreadable: return "input unreadable";
      case errc::malformed: return "malformed input";
      case errc::bad_option: return "bad option";
      case errc::kafka: return "Kafka request failed";
      case errc::live_topic: return "refusing to write to a live topic";
    }
    return "unknown replay error";
  }
};

}  // namespace

const std::error_category& replay_category() {
  static const category instance;
  return instance;
}

}  // namespace triage::replay
