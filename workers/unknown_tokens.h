// unknown_tokens.h: how many of a ticket's tokens stand for raw bytes rather
// than text the model's vocabulary knows, for the unknown-token drift
// statistic (state/drift.h).
//
//   auto ids = tok.encode(text);
//   uint32_t unknown = count_unknown_tokens(tok, ids);   // rate: unknown / ids.size()
//
// Counted: the unknown token (id == tok.unk()), SentencePiece byte-fallback
// tokens (token_type::byte, e.g. <0xE2>), and tokens whose bytes are not
// complete UTF-8 characters (state::is_fragment_piece). The last is what a
// byte-level BPE vocabulary such as SmolLM2's (which has no unknown token)
// does with a character outside its merges: it spells it in byte tokens, of
// which at least one is a fragment. Control tokens (the prompt template's)
// and complete characters are known.
#pragma once

#include <cstdint>
#include <span>

#include "compute/tokenizer/tokenizer.h"

namespace triage::workers {

uint32_t count_unknown_tokens(const tokenizer::tokenizer& tok, std::span<const int32_t> ids);

}  // namespace triage::workers
