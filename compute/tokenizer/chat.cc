#include "compute/tokenizer/chat.h"

#include <stdexcept>

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

}  // namespace triage::tokenizer
