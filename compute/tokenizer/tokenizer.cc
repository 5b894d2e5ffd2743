#include "compute/tokenizer/tokenizer.h"

#include <algorithm>
#include <array>
#include <stdexcept>
#include <unordered_map>

#include "compute/tokenizer/bpe.h"
#include "compute/tokenizer/unicode.h"

namespace triage::tokenizer {

struct tokenizer::state {
  std::string pre_name;
  pre_tokenizer_config pre;
  // Token texts as in the file, and the bytes each token decodes to, packed:
  // token i is blob[off[i], off[i + 1]).
  std::string text_blob;
  std::vector<uint32_t> text_off;
  std::string piece_blob;
  std::vector<uint32_t> piece_off;
  std::vector<token_type> types;
  std::unordered_map<std::string_view, int32_t> by_text;  // views into text_blob
  // Control, user-defined and unknown tokens, longest text first: the order
  // in which llama.cpp cuts them out of the input.
  std::vector<int32_t> specials;
  std::vector<bool> eog;
  int32_t bos = -1;
  int32_t eos = -1;
  int32_t eot = -1;
  int32_t eom = -1;
  int32_t unk = -1;
  int32_t pad = -1;
  bool add_bos = false;
  bool add_eos = false;
  bpe rules;
  // SentencePiece vocabularies (tokenizer.ggml.model "llama"): merged by
  // score instead of by BPE rules, unknown characters spelled as <0xNN>.
  bool spm = false;
  bool add_space_prefix = false;  // tokenizer.ggml.add_space_prefix (SentencePiece default: true)
  std::vector<float> scores;      // tokenizer.ggml.scores (0 when absent)
  std::array<int32_t, 256> byte_ids{};  // the token of each byte (<0xNN>), -1: none

  std::string_view text(int32_t id) const {
    return std::string_view(text_blob).substr(text_off[id], text_off[id + 1] - text_off[id]);
  }
  std::string_view piece(int32_t id) const {
    return std::string_view(piece_blob).substr(piece_off[id], piece_off[id + 1] - piece_off[id]);
  }
  int32_t size() const { return static_cast<int32_t>(types.size()); }

  void encode_text(std::string_view raw, std::vector<int32_t>& out) const;
  void encode_spm(std::string_view raw, bool space_prefix, std::vector<int32_t>& out) const;
};

namespace {

constexpr std::string_view k_model_key = "tokenizer.ggml.model";
constexpr std::string_view k_pre_key = "tokenizer.ggml.pre";
constexpr std::string_view k_tokens_key = "tokenizer.ggml.tokens";
constexpr std::string_view k_merges_key = "tokenizer.ggml.merges";
constexpr std::string_view k_types_key = "tokenizer.ggml.token_type";

// A GGUF getter's failure in the tokenizer's terms: which key, in which file.
error key_error(const gguf::reader& gguf, std::string_view key, const error& e) {
  const bool missing = e.code == gguf::errc::not_found;
  return make_error(missing ? errc::missing_key : errc::wrong_type,
                    gguf.name() + ": " + (missing ? std::string(key) + " is missing" : e.message));
}

// Token texts llama.cpp recognises when the file does not name the token
// (llama_vocab::impl::load): it forces them to be control tokens.
constexpr std::array<std::string_view, 10> k_eot_names = {
    "<|eot_id|>",      "<|im_end|>", "<|end|>", "<end_of_turn>",         "<|endoftext|>",
    "<|end_of_text|>", "<EOT>",      "_<EOT>",  "<｜end▁of▁sentence｜>", "<end_of_utterance>"};
constexpr std::array<std::string_view, 12> k_eog_names = {
    "<|eot_id|>", "<|im_end|>",    "<|end|>",         "<|return|>",
    "<|call|>",   "<end_of_turn>", "<|endoftext|>",   "<|eom_id|>",
    "<EOT>",      "_<EOT>",        "<|end_of_text|>", "<end_of_utterance>"};

struct fim_role {
  std::string_view key;
  std::string_view deprecated_key;  // read after `key`, so it wins (as in llama.cpp)
  std::array<std::string_view, 7> names;
  bool eog;
};
constexpr std::array<fim_role, 6> k_fim_roles = {{
    {"tokenizer.ggml.fim_pre_token_id",
     "tokenizer.ggml.prefix_token_id",
     {"<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>", "▁<PRE>",
      "<|code_prefix|>"},
     false},
    {"tokenizer.ggml.fim_suf_token_id",
     "tokenizer.ggml.suffix_token_id",
     {"<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>", "<SUF>", "▁<SUF>",
      "<|code_suffix|>"},
     false},
    {"tokenizer.ggml.fim_mid_token_id",
     "tokenizer.ggml.middle_token_id",
     {"<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>", "<MID>", "▁<MID>",
      "<|code_middle|>"},
     false},
    {"tokenizer.ggml.fim_pad_token_id",
     "",
     {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>"},
     true},
    {"tokenizer.ggml.fim_rep_token_id",
     "",
     {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"},
     true},
    {"tokenizer.ggml.fim_sep_token_id", "", {"<|file_sep|>"}, true},
}};

bool is_one_of(std::string_view s, std::span<const std::string_view> names) {
  return std::find(names.begin(), names.end(), s) != names.end();
}

// The bytes a normal token stands for: each byte-level symbol gives its
// byte. A code point outside the alphabet (only in hand-made vocabularies)
// is kept as its UTF-8, where llama.cpp would print "[UNK_BYTE_0x..]".
std::string decode_symbols(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    uint32_t cpt = 0;
    const size_t n = decode_utf8(text, i, cpt);
    const int b = symbol_to_byte(cpt);
    if (b >= 0) {
      out += static_cast<char>(b);
    } else {
      out.append(text.substr(i, n));
    }
    i += n;
  }
  return out;
}

// The bytes a SentencePiece token stands for: "\u2581" is a space.
std::string unescape_spaces(std::string_view text) {
  constexpr std::string_view marker = "\xe2\x96\x81";  // U+2581
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    if (text.substr(i, marker.size()) == marker) {
      out += ' ';
      i += marker.size();
    } else {
      out += text[i++];
    }
  }
  return out;
}

// Per-thread working memory of encode_spm(): the symbol chain and the queue
// of candidate merges.
struct spm_symbol {
  uint32_t begin;  // byte offset in the escaped text
  uint32_t n;      // bytes; 0 once merged into its left neighbour
  int32_t prev;
  int32_t next;
};
struct spm_bigram {
  float score;
  int32_t left;
  int32_t right;
  uint32_t size;
};
struct spm_scratch {
  std::string text;
  std::vector<spm_symbol> symbols;
  std::vector<spm_bigram> heap;
};

// Per-thread working memory of encode_text().
struct text_scratch {
  std::string canonical;  // the text re-encoded from its code points
  std::vector<uint32_t> cpts;
  std::vector<uint8_t> flags;
  std::vector<uint32_t> offset;  // byte offset of each code point in `canonical`, plus the end
  std::vector<uint32_t> ends;    // word ends from the pre-tokenizer
};

}  // namespace

void tokenizer::state::encode_text(std::string_view raw, std::vector<int32_t>& out) const {
  thread_local text_scratch s;
  s.canonical.clear();
  s.cpts.clear();
  s.flags.clear();
  s.offset.clear();
  s.ends.clear();
  // llama.cpp re-encodes the text from its decoded code points, which turns
  // each invalid byte into U+FFFD and overlong forms into shortest ones.
  for (size_t i = 0; i < raw.size();) {
    uint32_t cpt = 0;
    const auto c = static_cast<uint8_t>(raw[i]);
    size_t n = 1;
    s.offset.push_back(static_cast<uint32_t>(s.canonical.size()));
    if (c < 0x80) {
      cpt = c;
      s.canonical += static_cast<char>(c);
    } else {
      n = decode_utf8(raw, i, cpt);
      append_utf8(s.canonical, cpt);
    }
    s.cpts.push_back(cpt);
    s.flags.push_back(cpt_flags(cpt));
    i += n;
  }
  s.offset.push_back(static_cast<uint32_t>(s.canonical.size()));

  pre_tokenize(pre.rules, s.cpts, s.flags, s.ends);
  const std::string_view text = s.canonical;
  uint32_t begin = 0;
  for (uint32_t end : s.ends) {
    rules.encode_word(text.substr(s.offset[begin], s.offset[end] - s.offset[begin]), out);
    begin = end;
  }
}

void tokenizer::state::encode_spm(std::string_view raw, bool space_prefix,
                                  std::vector<int32_t>& out) const {
  thread_local spm_scratch s;
  // Spaces become U+2581, as in the vocabulary (llama.cpp's
  // llama_escape_whitespace); nothing else is normalised.
  s.text.clear();
  if (space_prefix) s.text += "\xe2\x96\x81";
  for (char ch : raw) {
    if (ch == ' ') {
      s.text += "\xe2\x96\x81";
    } else {
      s.text += ch;
    }
  }
  const std::string_view text = s.text;
  // One symbol per UTF-8 character, its length from the lead byte alone
  // (invalid sequences are cut the same way llama.cpp cuts them).
  s.symbols.clear();
  for (size_t off = 0; off < text.size();) {
    static constexpr uint8_t len_of[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    const size_t n = std::min<size_t>(len_of[static_cast<uint8_t>(text[off]) >> 4], text.size() - off);
    const auto i = static_cast<int32_t>(s.symbols.size());
    s.symbols.push_back({static_cast<uint32_t>(off), static_cast<uint32_t>(n), i - 1,
                         off + n == text.size() ? -1 : i + 1});
    off += n;
  }
  // Highest score first; on equal scores the leftmost pair.
  auto lower = [](const spm_bigram& a, const spm_bigram& b) {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  };
  s.heap.clear();
  auto try_add = [&](int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    const spm_symbol& l = s.symbols[static_cast<size_t>(left)];
    const spm_symbol& r = s.symbols[static_cast<size_t>(right)];
    const auto it = by_text.find(text.substr(l.begin, l.n + r.n));
    if (it == by_text.end()) return;
    s.heap.push_back({scores[static_cast<size_t>(it->second)], left, right, l.n + r.n});
    std::push_heap(s.heap.begin(), s.heap.end(), lower);
  };
  for (int32_t i = 1; i < static_cast<int32_t>(s.symbols.size()); ++i) try_add(i - 1, i);
  while (!s.heap.empty()) {
    std::pop_heap(s.heap.begin(), s.heap.end(), lower);
    const spm_bigram bg = s.heap.back();
    s.heap.pop_back();
    spm_symbol& l = s.symbols[static_cast<size_t>(bg.left)];
    spm_symbol& r = s.symbols[static_cast<size_t>(bg.right)];
    // Stale: one side has changed since the pair was queued.
    if (l.n == 0 || r.n == 0 || l.n + r.n != bg.size) continue;
    l.n += r.n;
    r.n = 0;
    l.next = r.next;
    if (r.next >= 0) s.symbols[static_cast<size_t>(r.next)].prev = bg.left;
    try_add(l.prev, bg.left);
    try_add(bg.left, l.next);
  }
  // Every merged symbol is a token; a single character that is not one is
  // spelled with byte tokens.
  for (int32_t i = s.symbols.empty() ? -1 : 0; i != -1; i = s.symbols[static_cast<size_t>(i)].next) {
    const spm_symbol& sym = s.symbols[static_cast<size_t>(i)];
    const std::string_view piece = text.substr(sym.begin, sym.n);
    if (const auto it = by_text.find(piece); it != by_text.end()) {
      out.push_back(it->second);
      continue;
    }
    // A byte with neither a byte token nor an unknown token is dropped, as
    // byte-level BPE drops bytes without a token: an id is never -1.
    for (char ch : piece) {
      const int32_t byte_id = byte_ids[static_cast<uint8_t>(ch)];
      const int32_t id = byte_id >= 0 ? byte_id : unk;
      if (id >= 0) out.push_back(id);
    }
  }
}

result<tokenizer> tokenizer::from_gguf(const gguf::reader& gguf) {
  auto st = std::make_shared<state>();

  auto model = gguf.get_string(k_model_key);
  if (!model) return key_error(gguf, k_model_key, model.error());
  if (model.value() != "gpt2" && model.value() != "llama") {
    const std::string_view kind = model.value() == "bert" ? " (WordPiece)"
                                  : model.value() == "t5" ? " (Unigram)"
                                                          : "";
    return make_error(errc::unsupported_model,
                      gguf.name() + ": " + std::string(k_model_key) + " is '" +
                          std::string(model.value()) + "'" + std::string(kind) +
                          "; supported: byte-level BPE ('gpt2') and SentencePiece ('llama')");
  }
  st->spm = model.value() == "llama";

  auto pre = gguf.get_string(k_pre_key);
  if (st->spm) {
    // SentencePiece splits no words: tokenizer.ggml.pre is not used.
    st->pre_name = pre ? std::string(pre.value()) : std::string("default");
  } else if (!pre) {
    if (pre.error().code == gguf::errc::not_found) {
      return make_error(errc::missing_key,
                        gguf.name() + ": " + std::string(k_pre_key) +
                            " is missing (llama.cpp would fall back to its 'default' "
                            "rules, which are not implemented)");
    }
    return key_error(gguf, k_pre_key, pre.error());
  }
  if (!st->spm) {
    auto config = find_pre_tokenizer(pre.value());
    if (!config) {
      return make_error(errc::unknown_pre_tokenizer,
                        gguf.name() + ": " + std::string(k_pre_key) + " '" +
                            std::string(pre.value()) + "' is not implemented; known: " +
                            std::string(known_pre_tokenizers()));
    }
    st->pre_name = std::string(pre.value());
    st->pre = *config;
  }

  auto tokens = gguf.get_string_array(k_tokens_key);
  if (!tokens) return key_error(gguf, k_tokens_key, tokens.error());
  if (tokens.value().empty()) {
    return make_error(errc::bad_vocab,
                      gguf.name() + ": " + std::string(k_tokens_key) + " is empty");
  }
  if (tokens.value().size() > static_cast<size_t>(INT32_MAX) / 2) {
    return make_error(errc::bad_vocab, gguf.name() + ": " + std::string(k_tokens_key) +
                                           " has more tokens than int32 ids can number");
  }
  std::vector<std::string_view> merge_list;
  if (!st->spm) {
    auto merges = gguf.get_string_array(k_merges_key);
    if (!merges) return key_error(gguf, k_merges_key, merges.error());
    merge_list = std::move(merges.value());
  }

  const auto n = static_cast<int32_t>(tokens.value().size());
  st->types.assign(static_cast<size_t>(n), token_type::normal);
  if (gguf.contains(k_types_key)) {
    auto types = gguf.get_array<int32_t>(k_types_key);
    if (!types) return key_error(gguf, k_types_key, types.error());
    if (types.value().size() != static_cast<size_t>(n)) {
      return make_error(errc::bad_vocab, gguf.name() + ": " + std::string(k_types_key) + " has " +
                                             std::to_string(types.value().size()) +
                                             " entries for " + std::to_string(n) + " tokens");
    }
    for (int32_t i = 0; i < n; ++i) {
      const int32_t t = types.value()[static_cast<size_t>(i)];
      st->types[static_cast<size_t>(i)] =
          t >= 0 && t <= 6 ? static_cast<token_type>(t) : token_type::undefined;
    }
  }

  if (st->spm) {
    constexpr std::string_view k_scores_key = "tokenizer.ggml.scores";
    st->scores.assign(static_cast<size_t>(n), 0.0f);
    if (gguf.contains(k_scores_key)) {
      auto scores = gguf.get_array<float>(k_scores_key);
      if (!scores) return key_error(gguf, k_scores_key, scores.error());
      if (scores.value().size() != static_cast<size_t>(n)) {
        return make_error(errc::bad_vocab, gguf.name() + ": " + std::string(k_scores_key) +
                                               " has " + std::to_string(scores.value().size()) +
                                               " entries for " + std::to_string(n) + " tokens");
      }
      st->scores = std::move(scores.value());
    }
    st->add_space_prefix = true;  // llama.cpp's default for SentencePiece
    constexpr std::string_view k_prefix_key = "tokenizer.ggml.add_space_prefix";
    if (gguf.contains(k_prefix_key)) {
      auto v = gguf.get_bool(k_prefix_key);
      if (!v) return key_error(gguf, k_prefix_key, v.error());
      st->add_space_prefix = v.value();
    }
  }

  // Texts, packed. llama.cpp renames an empty token "[EMPTY_<id>]".
  st->text_off.reserve(static_cast<size_t>(n) + 1);
  for (int32_t i = 0; i < n; ++i) {
    st->text_off.push_back(static_cast<uint32_t>(st->text_blob.size()));
    const std::string_view t = tokens.value()[static_cast<size_t>(i)];
    st->text_blob += t.empty() ? "[EMPTY_" + std::to_string(i) + "]" : std::string(t);
  }
  st->text_off.push_back(static_cast<uint32_t>(st->text_blob.size()));
  std::vector<std::string_view> texts(static_cast<size_t>(n));
  st->by_text.reserve(static_cast<size_t>(n));
  for (int32_t i = 0; i < n; ++i) {
    texts[static_cast<size_t>(i)] = st->text(i);
    auto [it, inserted] = st->by_text.emplace(st->text(i), i);
    if (!inserted) {
      return make_error(errc::bad_vocab, gguf.name() + ": " + std::string(k_tokens_key) +
                                             ": tokens " + std::to_string(it->second) + " and " +
                                             std::to_string(i) + " have the same text");
    }
  }

  if (st->spm) {
    // The token of each byte: "<0xNN>" (upper-case hex), else the byte itself.
    for (int b = 0; b < 256; ++b) {
      static constexpr char hex[] = "0123456789ABCDEF";
      const char name[6] = {'<', '0', 'x', hex[b >> 4], hex[b & 15], '>'};
      auto it = st->by_text.find(std::string_view(name, 6));
      if (it == st->by_text.end()) {
        const char one = static_cast<char>(b);
        it = st->by_text.find(std::string_view(&one, 1));
      }
      st->byte_ids[static_cast<size_t>(b)] = it == st->by_text.end() ? -1 : it->second;
    }
  }

  // Special token ids. An id outside the vocabulary is an error here where
  // llama.cpp warns and keeps a default: a file that says so is broken.
  auto read_id = [&](std::string_view key) -> result<int32_t> {
    if (!gguf.contains(key)) return -1;
    auto v = gguf.get_uint(key);
    if (!v) return key_error(gguf, key, v.error());
    if (v.value() >= static_cast<uint64_t>(n)) {
      return make_error(errc::bad_token_id, gguf.name() + ": " + std::string(key) + " = " +
                                                std::to_string(v.value()) + " is outside the " +
                                                std::to_string(n) + "-token vocabulary");
    }
    return static_cast<int32_t>(v.value());
  };
  struct named_id {
    std::string_view key;
    int32_t* id;
  };
  for (const auto& [key, id] : {named_id{"tokenizer.ggml.bos_token_id", &st->bos},
                                named_id{"tokenizer.ggml.eos_token_id", &st->eos},
                                named_id{"tokenizer.ggml.eot_token_id", &st->eot},
                                named_id{"tokenizer.ggml.eom_token_id", &st->eom},
                                named_id{"tokenizer.ggml.unknown_token_id", &st->unk},
                                named_id{"tokenizer.ggml.padding_token_id", &st->pad}}) {
    auto v = read_id(key);
    if (!v) return v.error();
    *id = v.value();
  }

  st->add_bos = st->pre.add_bos;
  for (const auto& [key, flag] :
       {std::pair{std::string_view("tokenizer.ggml.add_bos_token"), &st->add_bos},
        std::pair{std::string_view("tokenizer.ggml.add_eos_token"), &st->add_eos}}) {
    if (!gguf.contains(key)) continue;
    auto v = gguf.get_bool(key);
    if (!v) return key_error(gguf, key, v.error());
    *flag = v.value();
  }
  if (st->add_bos && st->bos < 0) {
    return make_error(errc::bad_token_id,
                      gguf.name() +
                          ": the model asks for a BOS token (add_bos_token) but "
                          "tokenizer.ggml.bos_token_id is missing");
  }
  if (st->add_eos && st->eos < 0) {
    return make_error(errc::bad_token_id,
                      gguf.name() +
                          ": the model asks for an EOS token (add_eos_token) but "
                          "tokenizer.ggml.eos_token_id is missing");
  }

  // llama.cpp's fix-ups of token types by name, which decide what is cut
  // out as special text: tokens that look like end-of-turn or fill-in-the-
  // middle markers become control tokens when the file does not name them.
  auto force_control = [&](int32_t id) {
    st->types[static_cast<size_t>(id)] = token_type::control;
  };
  auto first_named = [&](std::span<const std::string_view> names) {
    for (int32_t i = 0; i < n; ++i) {
      if (is_one_of(st->text(i), names)) return i;
    }
    return int32_t{-1};
  };
  if (st->eot < 0 && (st->eot = first_named(k_eot_names)) >= 0) force_control(st->eot);
  if (st->eom < 0) {
    constexpr std::array<std::string_view, 1> k_eom = {"<|eom_id|>"};
    if ((st->eom = first_named(k_eom)) >= 0) force_control(st->eom);
  }
  st->eog.assign(static_cast<size_t>(n), false);
  for (const auto& role : k_fim_roles) {
    auto id = read_id(role.key);
    if (!id) return id.error();
    if (!role.deprecated_key.empty()) {
      auto old = read_id(role.deprecated_key);
      if (!old) return old.error();
      if (old.value() >= 0) id = old.value();
    }
    int32_t fim = id.value();
    if (fim < 0) {
      std::vector<std::string_view> names;
      for (auto name : role.names) {
        if (!name.empty()) names.push_back(name);
      }
      if ((fim = first_named(names)) >= 0) force_control(fim);
    }
    if (fim >= 0 && role.eog) st->eog[static_cast<size_t>(fim)] = true;
  }
  for (int32_t i = 0; i < n; ++i) {
    if (is_one_of(st->text(i), k_eog_names)) {
      st->eog[static_cast<size_t>(i)] = true;
      force_control(i);
    }
    // gpt-oss's harmony markers are always printed.
    constexpr std::array<std::string_view, 4> k_harmony = {"<|channel|>", "<|message|>",
                                                           "<|start|>", "<|constrain|>"};
    if (is_one_of(st->text(i), k_harmony))
      st->types[static_cast<size_t>(i)] = token_type::user_defined;
  }
  {
    // gpt-oss again: with <|return|> and <|call|> ending turns, <|end|> does not.
    auto id_of = [&](std::string_view t) {
      auto it = st->by_text.find(t);
      return it == st->by_text.end() ? -1 : it->second;
    };
    const int32_t ret = id_of("<|return|>"), call = id_of("<|call|>"), end = id_of("<|end|>");
    if (ret >= 0 && call >= 0 && end >= 0 && st->eog[static_cast<size_t>(ret)] &&
        st->eog[static_cast<size_t>(call)] && st->eog[static_cast<size_t>(end)] && end != st->eos &&
        end != st->eot && end != st->eom) {
      st->eog[static_cast<size_t>(end)] = false;
      st->types[static_cast<size_t>(end)] = token_type::user_defined;
    }
  }
  for (int32_t id : {st->eos, st->eot, st->eom}) {
    if (id >= 0) st->eog[static_cast<size_t>(id)] = true;
  }

  for (int32_t i = 0; i < n; ++i) {
    const auto t = st->types[static_cast<size_t>(i)];
    if (t == token_type::control || t == token_type::user_defined || t == token_type::unknown) {
      st->specials.push_back(i);
    }
  }
  // llama.cpp sorts by length only (std::sort, so equal lengths come in no
  // set order); ids break the ties here. Only tokens of equal length that
  // overlap in the text could tell the difference.
  std::stable_sort(st->specials.begin(), st->specials.end(),
                   [&](int32_t a, int32_t b) { return st->text(a).size() > st->text(b).size(); });

  st->piece_off.reserve(static_cast<size_t>(n) + 1);
  for (int32_t i = 0; i < n; ++i) {
    st->piece_off.push_back(static_cast<uint32_t>(st->piece_blob.size()));
    switch (st->types[static_cast<size_t>(i)]) {
      case token_type::normal:
        st->piece_blob += st->spm ? unescape_spaces(st->text(i)) : decode_symbols(st->text(i));
        break;
      case token_type::byte: {
        // SentencePiece: <0xNN> is the byte NN (nothing for BPE, as llama.cpp).
        const std::string_view t = st->text(i);
        auto hex = [](char ch) {
          return ch >= '0' && ch <= '9' ? ch - '0'
                 : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                 : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                                          : -1;
        };
        if (st->spm && t.size() == 6 && t.starts_with("<0x") && t.ends_with(">") &&
            hex(t[3]) >= 0 && hex(t[4]) >= 0) {
          st->piece_blob += static_cast<char>(hex(t[3]) * 16 + hex(t[4]));
        }
        break;
      }
      case token_type::control:
      case token_type::unknown:
      case token_type::user_defined:
        st->piece_blob += st->text(i);
        break;
      default:
        break;  // unused, undefined: llama.cpp prints nothing
    }
  }
  st->piece_off.push_back(static_cast<uint32_t>(st->piece_blob.size()));

  if (!st->spm) st->rules = bpe::build(texts, merge_list, st->pre.ignore_merges);
  return tokenizer(std::move(st));
}

void tokenizer::encode(std::string_view text, std::vector<int32_t>& out, bool add_special,
                       bool parse_special) const {
  const state& s = *s_;
  if (add_special && s.add_bos) out.push_back(s.bos);

  // Cut special tokens out of the text, longest first, each over the raw
  // parts left by the ones before (llama.cpp's tokenizer_st_partition).
  struct fragment {
    int32_t token;  // -1: raw text [begin, end)
    size_t begin;
    size_t end;
  };
  thread_local std::vector<fragment> fragments;
  thread_local std::vector<fragment> next;
  fragments.clear();
  if (!text.empty()) fragments.push_back({-1, 0, text.size()});
  // Which bytes occur at all: most special tokens (Gemma has 6414) are ruled
  // out by their first byte without a search.
  std::array<bool, 256> present{};
  for (char ch : text) present[static_cast<uint8_t>(ch)] = true;
  for (int32_t id : s.specials) {
    const token_type t = s.types[static_cast<size_t>(id)];
    if (!parse_special && (t == token_type::control || t == token_type::unknown)) continue;
    const std::string_view special = s.text(id);
    if (!present[static_cast<uint8_t>(special[0])]) continue;
    if (text.find(special) == std::string_view::npos) continue;
    next.clear();
    for (const fragment& f : fragments) {
      if (f.token >= 0) {
        next.push_back(f);
        continue;
      }
      const std::string_view window = text.substr(0, f.end);
      size_t pos = f.begin;
      for (size_t m; (m = window.find(special, pos)) != std::string_view::npos;) {
        if (m > pos) next.push_back({-1, pos, m});
        next.push_back({id, 0, 0});
        pos = m + special.size();
      }
      if (pos < f.end) next.push_back({-1, pos, f.end});
    }
    fragments.swap(next);
  }

  bool prev_special = true;  // SentencePiece: a space before text that starts the input or follows a special token
  for (const fragment& f : fragments) {
    if (f.token >= 0) {
      out.push_back(f.token);
      prev_special = true;
    } else if (s.spm) {
      s.encode_spm(text.substr(f.begin, f.end - f.begin), s.add_space_prefix && prev_special, out);
      prev_special = false;
    } else {
      s.encode_text(text.substr(f.begin, f.end - f.begin), out);
    }
  }
  if (add_special && s.add_eos) out.push_back(s.eos);
}

std::vector<int32_t> tokenizer::encode(std::string_view text, bool add_special,
                                       bool parse_special) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 4);
  encode(text, out, add_special, parse_special);
  return out;
}

std::string_view tokenizer::piece(int32_t id, bool render_special) const {
  if (id < 0 || id >= s_->size()) {
    throw std::out_of_range("token id " + std::to_string(id) + " outside the vocabulary of " +
                            std::to_string(s_->size()));
  }
  const token_type t = s_->types[static_cast<size_t>(id)];
  if (!render_special && (t == token_type::control || t == token_type::unknown)) return {};
  return s_->piece(id);
}

std::string tokenizer::decode(std::span<const int32_t> ids, bool render_special) const {
  std::string out;
  for (int32_t id : ids) out += piece(id, render_special);
  return out;
}

std::string_view tokenizer::token_text(int32_t id) const {
  if (id < 0 || id >= s_->size()) {
    throw std::out_of_range("token id " + std::to_string(id) + " outside the vocabulary of " +
                            std::to_string(s_->size()));
  }
  return s_->text(id);
}

token_type tokenizer::type(int32_t id) const {
  if (id < 0 || id >= s_->size()) {
    throw std::out_of_range("token id " + std::to_string(id) + " outside the vocabulary of " +
                            std::to_string(s_->size()));
  }
  return s_->types[static_cast<size_t>(id)];
}

std::optional<int32_t> tokenizer::find(std::string_view text) const {
  auto it = s_->by_text.find(text);
  if (it == s_->by_text.end()) return std::nullopt;
  return it->second;
}

size_t tokenizer::vocab_size() const { return s_->types.size(); }
int32_t tokenizer::bos() const { return s_->bos; }
int32_t tokenizer::eos() const { return s_->eos; }
int32_t tokenizer::eot() const { return s_->eot; }
int32_t tokenizer::pad() const { return s_->pad; }
int32_t tokenizer::unk() const { return s_->unk; }
bool tokenizer::add_bos() const { return s_->add_bos; }
bool tokenizer::add_eos() const { return s_->add_eos; }
bool tokenizer::is_eog(int32_t id) const {
  return id >= 0 && id < s_->size() && s_->eog[static_cast<size_t>(id)];
}
std::string_view tokenizer::pre() const { return s_->pre_name; }
const pre_tokenizer_config& tokenizer::pre_config() const { return s_->pre; }

}  // namespace triage::tokenizer
