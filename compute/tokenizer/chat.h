// chat.h: prompts in the chat format of the models we run, written out
// directly instead of evaluating the GGUF's Jinja template.
//
// SmolLM2 (and Qwen2.5) use ChatML; SmolLM2's template adds a default system
// message when the conversation has none, which format_chatml(user) does too.
// Gemma (2, 3) uses turns: "<bos><start_of_turn>user\n...<end_of_turn>\n
// <start_of_turn>model\n". detect_chat_format() picks one from the GGUF
// (tokenizer.chat_template, else general.architecture); encode_chat() writes
// a one-message conversation in it.
//
//   auto f = detect_chat_format(gguf);                 // chat_choice
//   if (!f.note.empty()) std::cerr << f.note << "\n";  // a fallback, explained
//   auto ids = encode_chat(tok, f.format, "Where is my card?");
//
//   std::string p = format_chatml("Classify the ticket.", ticket);
//   // "<|im_start|>system\nClassify the ticket.<|im_end|>\n"
//   // "<|im_start|>user\n<ticket><|im_end|>\n<|im_start|>assistant\n"
//   auto ids = encode_chatml(tok, "Classify the ticket.", ticket);
//
// Tickets are untrusted: one containing "<|im_end|>" must not close the
// user turn. encode_chatml() therefore places the markers as token ids and
// tokenizes the texts with parse_special off; for texts without marker text
// its ids equal tok.encode(format_chatml(...), add_special, true).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "compute/gguf/reader.h"
#include "compute/tokenizer/tokenizer.h"

namespace triage::tokenizer {

// The system message SmolLM2-Instruct's chat template inserts when none is given.
inline constexpr std::string_view k_smollm2_default_system =
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face";

// A system and a user turn followed by the opening of the assistant's turn
// (the template's add_generation_prompt), as text.
std::string format_chatml(std::string_view system, std::string_view user);
// The same with SmolLM2's default system message, as its template renders a
// conversation of one user message.
std::string format_chatml(std::string_view user);

// The ids of format_chatml(system, user), with "<|im_start|>" and
// "<|im_end|>" only where the template puts them. add_special: BOS/EOS as
// the model asks (tokenizer::encode). Throws std::invalid_argument when the
// vocabulary has no ChatML markers.
std::vector<int32_t> encode_chatml(const tokenizer& tok, std::string_view system,
                                   std::string_view user, bool add_special = true);

// The chat formats written out here.
enum class chat_format {
  chatml,  // <|im_start|>role\n...<|im_end|>\n (SmolLM2, Qwen2): SmolLM2's default system turn
  gemma,   // <start_of_turn>user\n...<end_of_turn>\n<start_of_turn>model\n (Gemma 2, 3)
};

// A model's chat format and, when it had to be guessed, why (else empty).
struct chat_choice {
  chat_format format = chat_format::chatml;
  std::string note;  // e.g. "m.gguf: tokenizer.chat_template is not ChatML or Gemma turns ...; using ChatML"
};

// The format for a model with this general.architecture and, when the file
// has one, tokenizer.chat_template (nullptr: none). The template decides when
// it contains the markers of one format ("<start_of_turn>", "<|im_start|>");
// else the architecture (gemma, gemma2, gemma3: gemma; llama, qwen2: chatml).
// Anything else falls back to ChatML with a note naming the key and the
// architecture. `name` (the file) prefixes the note.
chat_choice chat_format_for(std::string_view name, std::string_view architecture,
                            const std::string_view* chat_template);
// The same read from a GGUF file's metadata.
chat_choice detect_chat_format(const gguf::reader& gguf);

// One Gemma user turn and the opening of the model's turn, as text (without
// the BOS that the template puts first).
std::string format_gemma(std::string_view user);
// Its ids: BOS when the model asks for it (add_special), "<start_of_turn>"
// and "<end_of_turn>" only where the template puts them (marker text in the
// message stays text). Throws std::invalid_argument when the vocabulary has
// no such tokens.
std::vector<int32_t> encode_gemma(const tokenizer& tok, std::string_view user,
                                  bool add_special = true);
// A one-message conversation in format f: encode_chatml with SmolLM2's
// default system message, or encode_gemma.
std::vector<int32_t> encode_chat(const tokenizer& tok, chat_format f, std::string_view user,
                                 bool add_special = true);

}  // namespace triage::tokenizer
