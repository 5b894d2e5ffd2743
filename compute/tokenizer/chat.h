// chat.h: prompts in the chat format of the models we run, written out
// directly instead of evaluating the GGUF's Jinja template.
//
// SmolLM2 (and Qwen2.5) use ChatML; SmolLM2's template adds a default system
// message when the conversation has none, which format_chatml(user) does too.
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

}  // namespace triage::tokenizer
