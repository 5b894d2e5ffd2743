#include "compute/tokenizer/chat.h"

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

std::vector<int32_t> encode_chatml(const tokenizer& tok, std::string_view system,
                                   std::string_view user, bool add_special) {
  const auto start = tok.find("<|im_start|>");
  const auto end = tok.find("<|im_end|>");
  if (!start || !end) {
    throw std::invalid_argument(
        "encode_chatml: the vocabulary has no <|im_start|>/<|im_end|> tokens");
  }
  std::vector<int32_t> ids;
  if (add_special && tok.add_bos()) ids.push_back(tok.bos());
  // Raw text between two markers is one fragment, as when llama.cpp cuts the
  // markers out of the whole prompt: "system\n" and the message tokenize
  // together.
  const auto turn = [&](std::string_view role, std::string_view text) {
    ids.push_back(*start);
    std::string raw(role);
    raw += '\n';
    raw += text;
    tok.encode(raw, ids, false, false);
    ids.push_back(*end);
    tok.encode("\n", ids, false, false);
  };
  turn("system", system);
  turn("user", user);
  ids.push_back(*start);
  tok.encode("assistant\n", ids, false, false);
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
  const auto start = tok.find("<start_of_turn>");
  const auto end = tok.find("<end_of_turn>");
  if (!start || !end) {
    throw std::invalid_argument(
        "encode_gemma: the vocabulary has no <start_of_turn>/<end_of_turn> tokens");
  }
  std::vector<int32_t> ids;
  if (add_special && tok.add_bos()) ids.push_back(tok.bos());
  ids.push_back(*start);
  std::string raw = "user\n";
  raw += user;
  tok.encode(raw, ids, false, false);
  ids.push_back(*end);
  tok.encode("\n", ids, false, false);
  ids.push_back(*start);
  tok.encode("model\n", ids, false, false);
  return ids;
}

std::vector<int32_t> encode_chat(const tokenizer& tok, chat_format f, std::string_view user,
                                 bool add_special) {
  if (f == chat_format::gemma) return encode_gemma(tok, user, add_special);
  return encode_chatml(tok, k_smollm2_default_system, user, add_special);
}

}  // namespace triage::tokenizer
