#include "workers/unknown_tokens.h"

#include "state/drift.h"

namespace triage::workers {

uint32_t count_unknown_tokens(const tokenizer::tokenizer& tok, std::span<const int32_t> ids) {
  uint32_t n = 0;
  const int32_t unk = tok.unk();
  for (int32_t id : ids) {
    if (id < 0 || static_cast<size_t>(id) >= tok.vocab_size()) continue;
    const auto type = tok.type(id);
    if (id == unk || type == tokenizer::token_type::unknown || type == tokenizer::token_type::byte) {
      ++n;
    } else if (type == tokenizer::token_type::normal && state::is_fragment_piece(tok.piece(id))) {
      ++n;
    }
  }
  return n;
}

}  // namespace triage::workers
