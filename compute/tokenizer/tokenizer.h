// tokenizer.h: text <-> token ids for byte-level BPE models (GPT-2, SmolLM2,
// Llama 3, Qwen2.5; tokenizer.ggml.model "gpt2") and SentencePiece models
// (Gemma 3, Llama 2; "llama"), built from a GGUF file's tokenizer.ggml.*
// metadata and matching llama.cpp's ids exactly (tested against
// llama-cpp-python, see compute/tests/golden/).
//
//   auto r = triage::gguf::reader::open(model_path);
//   auto t = triage::tokenizer::tokenizer::from_gguf(r.value());
//   if (!t) return t.error();                       // errc + message naming the key
//   const auto& tok = t.value();
//   std::vector<int32_t> ids = tok.encode("Where is my card?");
//   auto prompt = tok.encode(format_chatml(system, ticket), /*add_special=*/true,
//                            /*parse_special=*/true);   // "<|im_start|>" -> one id
//   std::string text = tok.decode(ids);              // "Where is my card?"
//
// Encoding: special tokens are cut out first (control ones only when
// parse_special is set; user-defined ones always, as llama.cpp does), the
// rest is split into words by the rules of tokenizer.ggml.pre
// (pre_tokenizer.h), and each word is merged by BPE (bpe.h). Any byte string
// encodes: invalid UTF-8 becomes U+FFFD per bad byte, as in llama.cpp.
// SentencePiece instead: spaces become "▁" (plus one in front when
// tokenizer.ggml.add_space_prefix, default true), then neighbouring pieces
// merge, highest tokenizer.ggml.scores first, while the merged text is a
// token; characters left that are not tokens become <0xNN> byte tokens.
//
// A tokenizer owns copies of everything it needs (the reader may close) and
// never changes after from_gguf(): copies are cheap (shared state) and its
// const calls are safe from any number of threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "compute/gguf/reader.h"
#include "compute/tokenizer/errc.h"
#include "compute/tokenizer/pre_tokenizer.h"

namespace triage::tokenizer {

// tokenizer.ggml.token_type values (llama.cpp's llama_token_type).
enum class token_type : int32_t {
  undefined = 0,
  normal = 1,
  unknown = 2,
  control = 3,  // <|im_start|>, <|endoftext|>: parsed only when asked, never printed by default
  user_defined = 4,  // added tokens that are always cut out of the text
  unused = 5,
  byte = 6,  // <0x0A> style tokens of SentencePiece vocabularies
};

class tokenizer {
 public:
  // Reads tokenizer.ggml.{model, pre, tokens, merges, token_type,
  // {bos,eos,unknown,padding,eot,eom}_token_id, add_bos_token,
  // add_eos_token}, and for SentencePiece scores and add_space_prefix
  // (pre and merges unused). Errors: missing_key (tokens, merges, pre, model),
  // wrong_type, unsupported_model (not "gpt2" or "llama"), unknown_pre_tokenizer
  // (naming the value), bad_vocab (empty, duplicate tokens, token_type of
  // another length), bad_token_id.
  static result<tokenizer> from_gguf(const gguf::reader& gguf);

  // Token ids of `text`. add_special: add what the model asks for around a
  // sequence, as llama.cpp's add_special does: BOS first when
  // tokenizer.ggml.add_bos_token (default: false, true for Llama 3), EOS last
  // when add_eos_token. parse_special: text of control tokens ("<|im_end|>")
  // becomes their id; otherwise it is tokenized as plain text.
  std::vector<int32_t> encode(std::string_view text, bool add_special = false,
                              bool parse_special = false) const;
  // The same, appending to `out` (no allocation once `out` has capacity).
  void encode(std::string_view text, std::vector<int32_t>& out, bool add_special = false,
              bool parse_special = false) const;

  // The bytes the ids stand for (llama.cpp's token_to_piece, concatenated):
  // control and unknown tokens give their text only with render_special,
  // user-defined ones their text, normal ones their bytes ("▁" a space
  // for SentencePiece), byte tokens their byte (SentencePiece; nothing for
  // BPE); unused and undefined tokens nothing. Throws std::out_of_range for an id outside the
  // vocabulary. The result may hold invalid UTF-8 where ids cut a character.
  std::string decode(std::span<const int32_t> ids, bool render_special = false) const;
  // One token's bytes, as decode() gives them.
  std::string_view piece(int32_t id, bool render_special = false) const;

  // The token's text as stored in the file (byte-level symbols, "Ġhello").
  std::string_view token_text(int32_t id) const;
  token_type type(int32_t id) const;
  // The id of the token with exactly this (file) text.
  std::optional<int32_t> find(std::string_view text) const;

  size_t vocab_size() const;
  // -1 when the model has none.
  int32_t bos() const;
  int32_t eos() const;
  int32_t eot() const;
  int32_t pad() const;
  int32_t unk() const;
  bool add_bos() const;
  bool add_eos() const;
  // End of generation: EOS, EOT, EOM and the tokens llama.cpp recognises by
  // name (<|im_end|>, <|endoftext|>, <|eot_id|>, ...).
  bool is_eog(int32_t id) const;

  // tokenizer.ggml.pre and what it selected (SentencePiece: the value or
  // "default", and the default config, unused).
  std::string_view pre() const;
  const pre_tokenizer_config& pre_config() const;

 private:
  struct state;
  explicit tokenizer(std::shared_ptr<const state> s) : s_(std::move(s)) {}
  std::shared_ptr<const state> s_;
};

}  // namespace triage::tokenizer
