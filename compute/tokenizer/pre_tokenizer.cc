#include "compute/tokenizer/pre_tokenizer.h"

#include <array>
#include <cstddef>
#include <string>

#include "compute/tokenizer/unicode.h"

namespace triage::tokenizer {
namespace {

struct named_config {
  std::string_view name;
  pre_tokenizer_config config;
};

// The tokenizer.ggml.pre values whose rules llama.cpp maps onto the four rule
// sets implemented here, with the flags its loader sets for each. Values it
// maps to other rules (deepseek, falcon, tekken, ...) are left out on
// purpose: accepting them would tokenize differently without saying so.
constexpr named_config gpt2(std::string_view name) { return {name, {.rules = pre_rules::gpt2}}; }
constexpr named_config smollm(std::string_view name) {
  return {name, {.rules = pre_rules::smollm}};
}
constexpr named_config qwen2(std::string_view name) { return {name, {.rules = pre_rules::qwen2}}; }
// llama3(name, true): Llama 3's own names also take whole-word tokens
// without merging and add BOS by default; the other users of its regex do not.
constexpr named_config llama3(std::string_view name, bool llama3_flags) {
  return {name,
          {.rules = pre_rules::llama3, .ignore_merges = llama3_flags, .add_bos = llama3_flags}};
}

constexpr std::array k_configs = {
    gpt2("gpt-2"),
    gpt2("phi-2"),
    gpt2("jina-es"),
    gpt2("jina-de"),
    gpt2("gigachat"),
    gpt2("a.x-4.0"),
    gpt2("mellum"),
    gpt2("mpt"),
    gpt2("olmo"),
    gpt2("jais"),
    gpt2("trillion"),
    gpt2("granite-docling"),
    gpt2("exaone4"),
    smollm("smollm"),
    smollm("starcoder"),
    smollm("refact"),
    smollm("command-r"),
    smollm("codeshell"),
    smollm("exaone"),
    smollm("minerva-7b"),
    llama3("llama-bpe", true),
    llama3("llama3", true),
    llama3("llama-v3", true),
    llama3("falcon3", true),
    llama3("falcon-h1", true),
    llama3("pixtral", true),
    llama3("midm-2.0", true),
    llama3("lfm2", true),
    llama3("dbrx", false),
    llama3("smaug-bpe", false),
    llama3("chatglm-bpe", false),
    llama3("glm4", false),
    qwen2("qwen2"),
    qwen2("deepseek-r1-qwen"),
    qwen2("kormo"),
    qwen2("megrez"),
    qwen2("stablelm2"),
    qwen2("hunyuan"),
    qwen2("grok-2"),
};

constexpr bool is_letter(uint8_t f) { return has(f, cpt_class::letter); }
constexpr bool is_number(uint8_t f) { return has(f, cpt_class::number); }
constexpr bool is_space(uint8_t f) { return has(f, cpt_class::whitespace); }
// [^\s\p{L}\p{N}]: a code point of the range that is none of the three. Past
// the range the flags read 0, which is no code point at all.
constexpr bool is_other(uint8_t f) {
  return f != 0 && !has(f, cpt_class::whitespace) && !is_letter(f) && !is_number(f);
}
constexpr uint32_t ascii_lower(uint32_t c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

// One contiguous part of the text being cut. Regexes apply to each part on
// its own (llama.cpp runs them part by part), so look-ahead stops at `end`:
// past it, flags read 0 and code points read k_none.
struct part {
  static constexpr uint32_t k_none = 0xFFFFFFFF;
  const uint32_t* cpts;
  const uint8_t* flags;
  size_t end;

  uint8_t f(size_t i) const { return i < end ? flags[i] : 0; }
  uint32_t c(size_t i) const { return i < end ? cpts[i] : k_none; }

  // Length of the contraction ('s 't 're 've 'm 'll 'd) at pos, 0 if none.
  size_t contraction(size_t pos, bool any_case) const {
    if (c(pos) != '\'') return 0;
    const auto fold = [&](uint32_t x) { return any_case ? ascii_lower(x) : x; };
    const uint32_t a = fold(c(pos + 1));
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    const uint32_t b = fold(c(pos + 2));
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    return 0;
  }

  template <class Pred>
  size_t run_end(size_t i, Pred pred) const {
    while (pred(f(i))) ++i;
    return i;
  }
};

// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
void split_gpt2(const part& p, size_t pos, std::vector<uint32_t>& ends) {
  while (pos < p.end) {
    size_t next = pos + p.contraction(pos, /*any_case=*/false);
    if (next == pos) {
      // The optional leading space belongs to the word after it.
      const size_t q = p.c(pos) == ' ' ? pos + 1 : pos;
      const uint8_t fq = p.f(q);
      if (is_letter(fq)) {
        next = p.run_end(q, is_letter);
      } else if (is_number(fq)) {
        next = p.run_end(q, is_number);
      } else if (is_other(fq)) {
        next = p.run_end(q, is_other);
      } else {
        const size_t n = p.run_end(pos, is_space) - pos;
        if (n > 1 && pos + n < p.end) {
          next = pos + n - 1;  // \s+(?!\S): the last space goes with the word that follows
        } else if (n > 0) {
          next = pos + n;
        } else {
          next = pos + 1;  // unreachable with real flags: every code point is in a class
        }
      }
    }
    ends.push_back(static_cast<uint32_t>(next));
    pos = next;
  }
}

// (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,max_digits}
// | ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
void split_llama3(const part& p, size_t pos, size_t max_digits, std::vector<uint32_t>& ends) {
  const auto is_newline = [](uint32_t c) { return c == '\r' || c == '\n'; };
  while (pos < p.end) {
    const uint32_t c = p.c(pos);
    const uint8_t f = p.f(pos);
    size_t next = pos + p.contraction(pos, /*any_case=*/true);
    if (next != pos) {
      // contraction
    } else if (!is_newline(c) && !is_number(f) && (is_letter(f) || is_letter(p.f(pos + 1)))) {
      // One code point of anything but a newline or digit may lead the letters.
      next = p.run_end(pos + 1, is_letter);
    } else if (is_number(f)) {
      next = pos;
      while (next - pos < max_digits && is_number(p.f(next))) ++next;
    } else if (const size_t q = c == ' ' ? pos + 1 : pos; is_other(p.f(q))) {
      next = p.run_end(q, is_other);
      while (is_newline(p.c(next))) ++next;
    } else {
      // \s*[\r\n]+ ends after the last newline of the whitespace run.
      size_t n = 0;
      size_t after_newline = 0;
      while (is_space(p.f(pos + n))) {
        if (is_newline(p.c(pos + n))) after_newline = pos + n + 1;
        ++n;
      }
      if (after_newline != 0) {
        next = after_newline;
      } else if (n > 1 && pos + n < p.end) {
        next = pos + n - 1;
      } else if (n > 0) {
        next = pos + n;
      } else {
        next = pos + 1;  // unreachable with real flags
      }
    }
    ends.push_back(static_cast<uint32_t>(next));
    pos = next;
  }
}

}  // namespace

std::optional<pre_tokenizer_config> find_pre_tokenizer(std::string_view name) {
  for (const auto& c : k_configs) {
    if (c.name == name) return c.config;
  }
  return std::nullopt;
}

std::string_view known_pre_tokenizers() {
  static const std::string names = [] {
    std::string out;
    for (const auto& c : k_configs) out += (out.empty() ? "" : ", ") + std::string(c.name);
    return out;
  }();
  return names;
}

void pre_tokenize(pre_rules rules, std::span<const uint32_t> cpts, std::span<const uint8_t> flags,
                  std::vector<uint32_t>& ends) {
  const size_t n = cpts.size();
  switch (rules) {
    case pre_rules::gpt2:
      split_gpt2(part{cpts.data(), flags.data(), n}, 0, ends);
      break;
    case pre_rules::smollm: {
      // First regex \p{N}: each digit is a part of its own, and so is each
      // run between digits; the gpt2 regex then runs inside every part.
      size_t begin = 0;
      while (begin < n) {
        size_t end = begin + 1;
        if (!is_number(flags[begin])) {
          while (end < n && !is_number(flags[end])) ++end;
        }
        split_gpt2(part{cpts.data(), flags.data(), end}, begin, ends);
        begin = end;
      }
      break;
    }
    case pre_rules::llama3:
      split_llama3(part{cpts.data(), flags.data(), n}, 0, 3, ends);
      break;
    case pre_rules::qwen2:
      split_llama3(part{cpts.data(), flags.data(), n}, 0, 1, ends);
      break;
  }
}

}  // namespace triage::tokenizer
