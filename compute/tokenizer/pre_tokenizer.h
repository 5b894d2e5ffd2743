// pre_tokenizer.h: the rules that cut text into words before BPE, one rule
// set per `tokenizer.ggml.pre` value, written as code rather than regexes
// (std::regex knows no \p{L} and is slow). Each rule set reproduces the
// regex of the model's tokenizer.json as llama.cpp applies it, including the
// order of alternatives and the look-ahead of \s+(?!\S):
//
//   gpt2     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//   smollm   every \p{N} cut out alone first, then gpt2 inside each part
//   llama3   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}
//            | ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//   qwen2    llama3 with \p{N} (one digit) instead of \p{N}{1,3}
//
//   using namespace triage::tokenizer;
//   auto cfg = find_pre_tokenizer("smollm");      // rules, ignore_merges, add_bos
//   std::vector<uint32_t> cpts = {...}, ends;     // code points of the text
//   std::vector<uint8_t> flags = {...};           // cpt_flags() of each
//   pre_tokenize(cfg->rules, cpts, flags, ends);  // ends of the words, in code points
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace triage::tokenizer {

// Each rule set serves several tokenizer.ggml.pre values (llama.cpp groups
// them the same way); known_pre_tokenizers() lists them all.
enum class pre_rules {
  gpt2,    // gpt-2, phi-2, mpt, olmo, ...
  smollm,  // smollm, starcoder, refact, command-r, ...
  llama3,  // llama-bpe (Llama 3), falcon3, dbrx, glm4, ...
  qwen2,   // qwen2 (Qwen2.5), deepseek-r1-qwen, stablelm2, ...
};

// What a tokenizer.ggml.pre value selects, as llama.cpp's vocabulary loader
// sets it.
struct pre_tokenizer_config {
  pre_rules rules = pre_rules::gpt2;
  // A word that is itself a token is emitted as is, without merges (Llama 3).
  bool ignore_merges = false;
  // Default of add-BOS when tokenizer.ggml.add_bos_token is absent.
  bool add_bos = false;
};

// The configuration for a tokenizer.ggml.pre value; nullopt for a value whose
// rules are not implemented here (deepseek, falcon, tekken, gpt-4o, ...:
// accepting them would tokenize differently without saying so).
std::optional<pre_tokenizer_config> find_pre_tokenizer(std::string_view name);

// The names find_pre_tokenizer() accepts, for error messages.
std::string_view known_pre_tokenizers();

// Cuts the code points `cpts` (with their cpt_flags() in `flags`, same size)
// into words and appends the end index of each word to `ends` (the first
// word starts at 0; the last ends at cpts.size(); empty input gives none).
void pre_tokenize(pre_rules rules, std::span<const uint32_t> cpts, std::span<const uint8_t> flags,
                  std::vector<uint32_t>& ends);

}  // namespace triage::tokenizer
