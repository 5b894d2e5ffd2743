#include "compute/tokenizer/errc.h"

#include <string>

namespace triage::tokenizer {
namespace {

class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "tokenizer"; }

  std::string message(int value) const override {
    switch (static_cast<errc>(value)) {
      case errc::missing_key:
        return "tokenizer key missing";
      case errc::wrong_type:
        return "tokenizer key of the wrong type";
      case errc::unsupported_model:
        return "unsupported tokenizer model";
      case errc::unknown_pre_tokenizer:
        return "unknown pre-tokenizer";
      case errc::bad_vocab:
        return "bad tokenizer vocabulary";
      case errc::bad_token_id:
        return "special token id out of range";
    }
    return "unknown tokenizer error";
  }
};

}  // namespace

const std::error_category& tokenizer_category() noexcept {
  static const category c;
  return c;
}

}  // namespace triage::tokenizer
