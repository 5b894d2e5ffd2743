#include "compute/tokenizer/chat.h"

#include <initializer_list>
#include <stdexcept>
#include <string>
#include <utility>

namespace triage::tokenizer {

std::string format_chatml(std::string_view system, std::string_view user) {
  std::string out;
  out.reserve(system.size() + user.size() + 80);
  out += "<|im_start|>system\n";
  out += system;
  out += "<|im_end|>\n<|im_start|>user\n";
  out += user;
  out += "<|im_end|>\n<|im_start|>assistant\n";
  return out;
}

std::string format_chatml(std::string_view user) {
  return format_chatml(k_smollm2_default_system, user);
}

namespace {

// After BOS (where add_special and the tokenizer adds one), each turn as
// <start>role\ntext<end>\n, then <start>reply_role\n for the model to go
// on. Raw text between two markers is one fragment, as when llama.cpp cuts
// the markers out of the whole prompt: "system\n" and the message tokenize
// together. Throws std::invalid_argument, naming `caller`, when the
// vocabulary has no token for either marker.
std::vector<int32_t> encode_turns(
    const tokenizer& tok, std::string_view caller, std::string_view start_marker,
    std::string_view end_marker,
    std::initializer_list<std::pair<std::string_view, std::string_view>> turns,
    std::string_view reply_role, bool add_special) {
  const auto start = tok.find(start_marker);
  const auto end = tok.find(end_marker);
  if (!start || !end) {
    throw std::invalid_argument(std::string(caller) + ": the vocabulary has no " +
                                std::string(start_marker) + "/" + std::string(end_marker) +
                                " tokens");
  }
  std::vector<int32_t> ids;
  if (add_special && tok.add_bos()) ids.push_back(tok.bos());
  for (const auto& [role, text] : turns) {
    ids.push_back(*start);
    std::string raw(role);
    raw += '\n';
    raw += text;
    tok.encode(raw, ids, false, false);
    ids.push_back(*end);
    tok.encode("\n", ids, false, false);
  }
  ids.push_back(*start);
  tok.encode(std::string(reply_role) + "\n", ids, false, false);
  return ids;
}

}  // namespace

std::vector<int32_t> encode_chatml(const tokenizer& tok, std::string_view system,
                                   std::string_view user, bool add_special) {
  auto ids = encode_turns(tok, "encode_chatml", "<|im_start|>", "<|im_end|>",
                          {{"system", system}, {"user", user}}, "assistant", add_special);
  if (add_special && tok.add_eos()) ids.push_back(tok.eos());
  return ids;
}

chat_choice chat_format_for(std::string_view name, std::string_view architecture,
                            const std::string_view* chat_template) {
  if (chat_template != nullptr) {
    const bool gemma = chat_template->find("<start_of_turn>") != std::string_view::npos;
    const bool chatml = chat_template->find("<|im_start|>") != std::string_view::npos;
    if (gemma && !chatml) return {chat_format::gemma, ""};
    if (chatml && !gemma) return {chat_format::chatml, ""};
  }
  if (architecture == "gemma" || architecture == "gemma2" || architecture == "gemma3") {
    return {chat_format::gemma, ""};
  }
  if (architecture == "llama" || architecture == "qwen2") return {chat_format::chatml, ""};
  std::string note(name);
  note += ": ";
  note += chat_template != nullptr
              ? "'tokenizer.chat_template' is neither ChatML nor Gemma turns"
              : "no 'tokenizer.chat_template'";
  note += " and architecture '";
  note += architecture;
  note += "' has no known chat format; using ChatML";
  return {chat_format::chatml, std::move(note)};
}

chat_choice detect_chat_format(const gguf::reader& gguf) {
  const auto arch = gguf.architecture();
  const std::string_view a = arch ? arch.value() : std::string_view("(none)");
  if (auto t = gguf.get_string("tokenizer.chat_template")) {
    const std::string_view tmpl = t.value();
    return chat_format_for(gguf.name(), a, &tmpl);
  }
  return chat_format_for(gguf.name(), a, nullptr);
}

std::string format_gemma(std::string_view user) {
  std::string out;
  out.reserve(user.size() + 64);
  out += "<start_of_turn>user\n";
  out += user;
  out += "<end_of_turn>\n<start_of_turn>model\n";
  return out;
}

std::vector<int32_t> encode_gemma(const tokenizer& tok, std::string_view user, bool add_special) {
  return encode_turns(tok, "encode_gemma", "<start_of_turn>", "<end_of_turn>", {{"user", user}},
                      "model", add_special);
}

std::vector<int32_t> encode_chat(const tokenizer& tok, chat_format f, std::string_view user,
                                 bool add_special) {
  if (f == chat_format::gemma) return encode_gemma(tok, user, add_special);
  return encode_chatml(tok, k_smollm2_default_system, user, add_special);
}

}  // namespace triage::tokenizer
