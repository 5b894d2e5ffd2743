#include "compute/classifier/generate.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <numeric>
#include <queue>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "compute/classifier/adapter.h"
#include "compute/classifier/taxonomy.h"

namespace triage::classifier {
namespace {

// JSON string escaping of a label (quotes, backslashes, control bytes).
std::string json_escape(std::string_view s) {
  std::string out;
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20) {
      static const char* hex = "0123456789abcdef";
      out += "\\u00";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += ch;
    }
  }
  return out;
}

bool is_special(tokenizer::token_type t) {
  return t == tokenizer::token_type::control || t == tokenizer::token_type::user_defined ||
         t == tokenizer::token_type::unknown;
}

// Length of the UTF-8 character starting with byte c (1 for a stray byte).
size_t utf8_len(unsigned char c) {
  if (c >= 0xF0 && c < 0xF8) return 4;
  if (c >= 0xE0) return c < 0xF0 ? 3 : 1;
  if (c >= 0xC0) return 2;
  return 1;
}

void encode_untrusted_into(const tokenizer::tokenizer& tok, std::string_view text,
                           std::vector<int32_t>& out) {
  if (text.empty()) return;
  const auto ids = tok.encode(text, false, false);
  for (const int32_t id : ids) {
    if (!is_special(tok.type(id))) continue;
    // A special token came out of plain text (one the tokenizer always cuts
    // out): split its text after its first character, so neither side holds
    // it whole, and encode both sides the same way.
    const std::string_view special = tok.piece(id, true);
    const size_t at = special.empty() ? std::string_view::npos : text.find(special);
    if (at == std::string_view::npos) continue;
    const size_t cut = at + std::min(special.size(), utf8_len(static_cast<unsigned char>(special[0])));
    if (cut >= at + special.size()) continue;  // a one-character special: nothing to split
    encode_untrusted_into(tok, text.substr(0, cut), out);
    encode_untrusted_into(tok, text.substr(cut), out);
    return;
  }
  out.insert(out.end(), ids.begin(), ids.end());
}

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  for (size_t at = 0; (at = s.find(from, at)) != std::string::npos; at += to.size()) {
    s.replace(at, from.size(), to);
  }
}

}  // namespace

// --- output_constraint ---

std::string output_constraint::output_text(std::string_view category, int urgency) {
  return "{\"category\": \"" + json_escape(category) + "\", \"urgency\": " +
         std::to_string(urgency) + "}";
}

output_constraint::output_constraint(std::span<const std::string> categories,
                                     std::vector<std::string> pieces)
    : pieces_(std::move(pieces)), by_first_byte_(256) {
  if (categories.empty()) throw std::invalid_argument("output_constraint: no categories");
  // Sorted by their text in the output, so the categories sharing any prefix
  // of it are a contiguous range.
  std::vector<std::string> keys;
  for (const auto& c : categories) keys.push_back(json_escape(c) + "\"");
  sorted_to_index_.resize(categories.size());
  std::iota(sorted_to_index_.begin(), sorted_to_index_.end(), 0);
  std::sort(sorted_to_index_.begin(), sorted_to_index_.end(),
            [&](int32_t a, int32_t b) { return keys[static_cast<size_t>(a)] < keys[static_cast<size_t>(b)]; });
  for (size_t s = 1; s < sorted_to_index_.size(); ++s) {
    if (keys[static_cast<size_t>(sorted_to_index_[s])] == keys[static_cast<size_t>(sorted_to_index_[s - 1])]) {
      throw std::invalid_argument("output_constraint: category '" +
                                  categories[static_cast<size_t>(sorted_to_index_[s])] +
                                  "' appears twice");
    }
  }
  nodes_.emplace_back();
  for (size_t s = 0; s < sorted_to_index_.size(); ++s) {
    for (int u = 1; u <= 3; ++u) {
      const std::string text =
          output_text(categories[static_cast<size_t>(sorted_to_index_[s])], u);
      longest_ = std::max(longest_, text.size());
      int32_t n = 0;
      const auto mark = [&](int32_t at) {
        nodes_[static_cast<size_t>(at)].lo = std::min(nodes_[static_cast<size_t>(at)].lo, static_cast<int32_t>(s));
        nodes_[static_cast<size_t>(at)].hi = std::max(nodes_[static_cast<size_t>(at)].hi, static_cast<int32_t>(s));
      };
      mark(0);
      for (const char ch : text) {
        int32_t next = child(n, static_cast<uint8_t>(ch));
        if (next < 0) {
          next = static_cast<int32_t>(nodes_.size());
          nodes_[static_cast<size_t>(n)].next.emplace_back(static_cast<uint8_t>(ch), next);
          nodes_.emplace_back();
        }
        n = next;
        mark(n);
      }
      nodes_[static_cast<size_t>(n)].final_string = static_cast<int32_t>(s) * 3 + u - 1;
    }
  }
  for (size_t id = 0; id < pieces_.size(); ++id) {
    if (!pieces_[id].empty()) {
      by_first_byte_[static_cast<uint8_t>(pieces_[id][0])].push_back(static_cast<int32_t>(id));
    }
  }
  // Which nodes the vocabulary can finish from: a child is always created
  // after its parent, so one pass from the last node back sees every token's
  // end node decided before the node it starts from.
  std::vector<std::pair<int32_t, int32_t>> kids;
  for (size_t n = nodes_.size(); n-- > 0;) {
    nodes_[n].alive = nodes_[n].final_string >= 0;
    if (!nodes_[n].alive) {
      allowed(static_cast<int32_t>(n), kids);
      nodes_[n].alive = !kids.empty();
    }
  }
  if (!nodes_[0].alive) {
    throw std::invalid_argument("output_constraint: the vocabulary cannot write every output");
  }
  // Every output must be writable, or a label would be lost silently.
  std::vector<uint8_t> seen(nodes_.size(), 0);
  std::vector<int32_t> todo = {0};
  size_t finals = 0;
  seen[0] = 1;
  while (!todo.empty()) {
    const int32_t n = todo.back();
    todo.pop_back();
    finals += nodes_[static_cast<size_t>(n)].final_string >= 0;
    allowed(n, kids);
    for (const auto& [id, end] : kids) {
      if (!seen[static_cast<size_t>(end)]) {
        seen[static_cast<size_t>(end)] = 1;
        todo.push_back(end);
      }
    }
  }
  if (finals != 3 * sorted_to_index_.size()) {
    throw std::invalid_argument("output_constraint: the vocabulary cannot write every output");
  }
}

int32_t output_constraint::child(int32_t n, uint8_t b) const {
  for (const auto& [byte, next] : nodes_[static_cast<size_t>(n)].next) {
    if (byte == b) return next;
  }
  return -1;
}

int32_t output_constraint::walk(int32_t node, std::string_view bytes) const {
  for (const char ch : bytes) {
    if (node < 0) return -1;
    node = child(node, static_cast<uint8_t>(ch));
  }
  return node;
}

bool output_constraint::is_final(int32_t node) const {
  return nodes_[static_cast<size_t>(node)].final_string >= 0;
}

std::pair<int32_t, int32_t> output_constraint::category_range(int32_t node) const {
  return {nodes_[static_cast<size_t>(node)].lo, nodes_[static_cast<size_t>(node)].hi};
}

int32_t output_constraint::final_category(int32_t node) const {
  const int32_t f = nodes_[static_cast<size_t>(node)].final_string;
  if (f < 0) throw std::invalid_argument("output_constraint: not a final node");
  return sorted_to_index_[static_cast<size_t>(f / 3)];
}

int output_constraint::final_urgency(int32_t node) const {
  const int32_t f = nodes_[static_cast<size_t>(node)].final_string;
  if (f < 0) throw std::invalid_argument("output_constraint: not a final node");
  return f % 3 + 1;
}

std::string output_constraint::forced(int32_t node) const {
  std::string out;
  while (!is_final(node) && nodes_[static_cast<size_t>(node)].next.size() == 1) {
    out += static_cast<char>(nodes_[static_cast<size_t>(node)].next[0].first);
    node = nodes_[static_cast<size_t>(node)].next[0].second;
  }
  return out;
}

void output_constraint::allowed(int32_t node, std::vector<std::pair<int32_t, int32_t>>& out) const {
  out.clear();
  for (const auto& [byte, next] : nodes_[static_cast<size_t>(node)].next) {
    for (const int32_t id : by_first_byte_[byte]) {
      const int32_t end = walk(next, std::string_view(pieces_[static_cast<size_t>(id)]).substr(1));
      if (end >= 0 && nodes_[static_cast<size_t>(end)].alive) out.emplace_back(id, end);
    }
  }
  std::sort(out.begin(), out.end());
}

// --- probabilities ---

std::vector<float> log_probs(std::span<const float> probs) {
  std::vector<float> out(probs.size());
  for (size_t i = 0; i < probs.size(); ++i) out[i] = std::log(std::max(probs[i], 1e-9f));
  return out;
}

std::vector<float> calibrate_probs(std::span<const float> probs, float temperature) {
  auto z = log_probs(probs);
  const float t = temperature > 0 ? temperature : 1.0f;
  const float mx = *std::max_element(z.begin(), z.end());
  double sum = 0;
  for (auto& v : z) {
    v = std::exp((v - mx) / t);
    sum += v;
  }
  for (auto& v : z) v = static_cast<float>(v / sum);
  return z;
}

// --- generator ---

result<generator> generator::create(model::model& m, const tokenizer::tokenizer& tok,
                                    std::vector<std::string> categories,
                                    const generate_spec& spec) {
  return create(m.cfg(), tok, std::move(categories), spec,
                [&m](int64_t capacity) -> result<std::unique_ptr<model::step_decoder>> {
                  return std::unique_ptr<model::step_decoder>(
                      std::make_unique<model::decoder>(m, capacity));
                });
}

result<generator> generator::create(const model::config& cfg, const tokenizer::tokenizer& tok,
                                    std::vector<std::string> categories,
                                    const generate_spec& spec,
                                    const decoder_factory& make_decoder) {
  if (spec.max_tokens < 16 || spec.max_tokens > cfg.context_length) {
    return make_error(errc::bad_training, "generate.max_tokens: must be 16.." +
                                              std::to_string(cfg.context_length) + ", got " +
                                              std::to_string(spec.max_tokens));
  }
  if (spec.max_expansions < 0 || spec.max_expansions > 256) {
    return make_error(errc::bad_training, "generate.max_expansions: must be 0..256, got " +
                                              std::to_string(spec.max_expansions));
  }
  if (categories.empty()) return make_error(errc::bad_training, "generate: no categories");
  const auto slot = spec.chat_template.find("{ticket}");
  if (slot == std::string::npos || spec.chat_template.find("{ticket}", slot + 1) != std::string::npos) {
    return make_error(errc::bad_training, "generate.chat_template: needs exactly one {ticket} slot");
  }
  generator g;
  g.tok_ = &tok;
  g.spec_ = spec;
  g.categories_ = std::move(categories);

  // Token pieces: normal and byte tokens may be written; specials never.
  std::vector<std::string> pieces(tok.vocab_size());
  for (size_t id = 0; id < pieces.size(); ++id) {
    const auto t = tok.type(static_cast<int32_t>(id));
    if (t == tokenizer::token_type::normal || t == tokenizer::token_type::byte) {
      pieces[id] = std::string(tok.piece(static_cast<int32_t>(id)));
    }
  }
  try {
    g.constraint_ = std::make_unique<output_constraint>(g.categories_, std::move(pieces));
  } catch (const std::invalid_argument& e) {
    return make_error(errc::bad_training, std::string("generate: ") + e.what());
  }

  // The template cut at the vocabulary's special-token text (longest first).
  std::vector<std::pair<std::string_view, int32_t>> specials;
  for (size_t id = 0; id < tok.vocab_size(); ++id) {
    if (!is_special(tok.type(static_cast<int32_t>(id)))) continue;
    const auto text = tok.token_text(static_cast<int32_t>(id));
    if (!text.empty() && spec.chat_template.find(text) != std::string::npos) {
      specials.emplace_back(text, static_cast<int32_t>(id));
    }
  }
  std::sort(specials.begin(), specials.end(),
            [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  std::string cats;
  for (const auto& c : g.categories_) cats += (cats.empty() ? "" : ", ") + c;
  std::string system = spec.system_prompt;
  replace_all(system, "{categories}", cats);

  std::vector<int32_t>* out = &g.prefix_;
  if (tok.add_bos() && tok.bos() >= 0) out->push_back(tok.bos());
  std::string text;
  const auto flush = [&] {
    if (text.empty()) return;
    replace_all(text, "{system}", system);
    tok.encode(text, *out, false, false);
    text.clear();
  };
  const std::string_view tmpl(spec.chat_template);
  for (size_t i = 0; i < tmpl.size();) {
    if (tmpl.substr(i).starts_with("{ticket}")) {
      flush();
      out = &g.after_ticket_;
      i += 8;
      continue;
    }
    bool matched = false;
    for (const auto& [s, id] : specials) {
      if (tmpl.substr(i).starts_with(s)) {
        flush();
        out->push_back(id);
        i += s.size();
        matched = true;
        break;
      }
    }
    if (!matched) text += tmpl[i++];
  }
  flush();
  if (g.after_ticket_.empty() && tok.add_eos() && tok.eos() >= 0) g.after_ticket_.push_back(tok.eos());
  const size_t frame = g.prefix_.size() + g.after_ticket_.size();
  if (frame + 1 > static_cast<size_t>(spec.max_tokens)) {
    return make_error(errc::bad_training, "generate: the prompt frame takes " +
                                              std::to_string(frame) + " tokens, no room for a ticket in " +
                                              std::to_string(spec.max_tokens) + " (generate.max_tokens)");
  }
  const int64_t capacity =
      spec.max_tokens + static_cast<int64_t>(g.constraint_->longest_output()) + 8;
  if (capacity > cfg.context_length) {
    return make_error(errc::bad_training, "generate.max_tokens: " + std::to_string(spec.max_tokens) +
                                              " leaves no room for the output in the context (" +
                                              std::to_string(cfg.context_length) + ")");
  }
  auto d = make_decoder(capacity);
  if (!d) return d.error();
  g.decoder_ = std::move(d).value();
  return g;
}

std::vector<int32_t> generator::prompt(std::string_view ticket, bool* truncated) const {
  auto body = encode_untrusted(*tok_, ticket);
  const size_t room = static_cast<size_t>(spec_.max_tokens) - prefix_.size() - after_ticket_.size();
  if (truncated != nullptr) *truncated = body.size() > room;
  if (body.size() > room) body.resize(room);
  std::vector<int32_t> ids = prefix_;
  ids.insert(ids.end(), body.begin(), body.end());
  ids.insert(ids.end(), after_ticket_.begin(), after_ticket_.end());
  return ids;
}

std::vector<double> generator::search(int32_t node, std::span<const float> logits, int64_t mark,
                                      uint32_t& passes) {
  const output_constraint& c = *constraint_;
  struct item {
    double p;
    int32_t node;
    std::vector<int32_t> path;
    bool operator<(const item& o) const { return p < o.p; }
  };
  std::priority_queue<item> queue;
  double open = 0;  // unresolved mass in the queue
  std::vector<std::pair<int32_t, int32_t>> kids;
  const auto expand = [&](const item& parent, std::span<const float> lg) {
    c.allowed(parent.node, kids);
    float mx = -INFINITY;
    for (const auto& [id, n] : kids) mx = std::max(mx, lg[static_cast<size_t>(id)]);
    double z = 0;
    for (const auto& [id, n] : kids) z += std::exp(static_cast<double>(lg[static_cast<size_t>(id)] - mx));
    for (const auto& [id, n] : kids) {
      item k{parent.p * std::exp(static_cast<double>(lg[static_cast<size_t>(id)] - mx)) / z, n, parent.path};
      k.path.push_back(id);
      const auto [lo, hi] = c.category_range(n);
      if (lo != hi) open += k.p;
      queue.push(std::move(k));
    }
  };
  expand(item{1.0, node, {}}, logits);
  std::vector<double> mass(c.n_categories(), 0.0);
  int used = 0;
  while (!queue.empty()) {
    item it = queue.top();
    queue.pop();
    const auto [lo, hi] = c.category_range(it.node);
    if (lo == hi) {
      mass[static_cast<size_t>(lo)] += it.p;
      continue;
    }
    if (used >= spec_.max_expansions || open < spec_.min_mass) {
      // Out of budget: what the branch holds goes evenly to the categories it can still reach.
      for (int32_t s = lo; s <= hi; ++s) mass[static_cast<size_t>(s)] += it.p / (hi - lo + 1);
      open -= it.p;
      continue;
    }
    open -= it.p;
    decoder_->truncate(mark);
    const auto lg = decoder_->feed(it.path);
    ++used;
    ++passes;
    expand(it, lg);
  }
  decoder_->truncate(mark);
  return mass;
}

generation generator::run(std::string_view ticket) {
  generation g;
  const output_constraint& c = *constraint_;
  auto body = encode_untrusted(*tok_, ticket);
  const size_t room = static_cast<size_t>(spec_.max_tokens) - prefix_.size() - after_ticket_.size();
  g.truncated = body.size() > room;
  if (g.truncated) body.resize(room);
  g.prompt_tokens = static_cast<uint32_t>(prefix_.size() + body.size() + after_ticket_.size());

  // The frame before the ticket is the same for every ticket: its keys and
  // values stay in the cache from one ticket to the next.
  if (!prefix_cached_ && !prefix_.empty()) {
    decoder_->truncate(0);
    decoder_->feed(prefix_);
    ++g.forward_passes;
    prefix_cached_ = true;
  }
  std::vector<int32_t> rest = std::move(body);
  rest.insert(rest.end(), after_ticket_.begin(), after_ticket_.end());
  int64_t keep = static_cast<int64_t>(prefix_.size());
  if (rest.empty()) {
    // An empty ticket at the end of the template: the logits after the
    // frame come from feeding its last token again.
    if (prefix_.empty()) rest.push_back(tok_->eos() >= 0 ? tok_->eos() : 0);
    else rest.push_back(prefix_[static_cast<size_t>(--keep)]);
  }
  decoder_->truncate(keep);
  std::vector<float> logits;
  const auto feed = [&](std::span<const int32_t> ids) {
    const auto lg = decoder_->feed(ids);
    logits.assign(lg.begin(), lg.end());
    ++g.forward_passes;
  };
  feed(rest);

  std::vector<double> mass;
  std::vector<std::pair<int32_t, int32_t>> kids;
  int32_t node = c.root();
  while (!c.is_final(node)) {
    if (spec_.jump_forward) {
      const std::string f = c.forced(node);
      if (!f.empty()) {
        const auto ids = tok_->encode(f, false, false);
        bool plain = !ids.empty() && tok_->decode(ids) == f;
        for (const int32_t id : ids) plain = plain && !is_special(tok_->type(id));
        if (plain) {
          node = c.walk(node, f);
          g.json += f;
          g.output_tokens += static_cast<uint32_t>(ids.size());
          if (!c.is_final(node)) feed(ids);
          continue;
        }
      }
    }
    c.allowed(node, kids);
    if (kids.empty()) {
      throw std::logic_error("generator: no token continues the output '" + g.json + "'");
    }
    if (mass.empty()) {
      const auto here = c.category_range(node);
      const bool chooses = std::any_of(kids.begin(), kids.end(), [&](const auto& k) {
        return c.category_range(k.second) != here;
      });
      if (chooses) mass = search(node, logits, decoder_->size(), g.forward_passes);
    }
    const auto best = *std::max_element(kids.begin(), kids.end(), [&](const auto& a, const auto& b) {
      return logits[static_cast<size_t>(a.first)] < logits[static_cast<size_t>(b.first)];
    });
    node = best.second;
    g.json += tok_->piece(best.first);
    ++g.output_tokens;
    if (!c.is_final(node)) {
      const int32_t id[1] = {best.first};
      feed(id);
    }
  }
  g.category = c.final_category(node);
  g.urgency = c.final_urgency(node);
  g.category_probs.assign(categories_.size(), 0.0f);
  if (mass.empty()) {
    g.category_probs[static_cast<size_t>(g.category)] = 1.0f;  // one category: no choice
  } else {
    const double sum = std::accumulate(mass.begin(), mass.end(), 0.0);
    for (size_t s = 0; s < mass.size(); ++s) {
      g.category_probs[static_cast<size_t>(c.sorted_category(static_cast<int32_t>(s)))] =
          static_cast<float>(sum > 0 ? mass[s] / sum : 0.0);
    }
  }
  return g;
}

std::vector<int32_t> encode_untrusted(const tokenizer::tokenizer& tok, std::string_view text) {
  std::vector<int32_t> out;
  encode_untrusted_into(tok, text, out);
  return out;
}

// --- calibration file ---

std::string prompt_fingerprint(const generate_spec& spec) {
  return sha256_hex(spec.chat_template + "\n" + spec.system_prompt);
}

result<generate_calibration> load_generate_calibration(const std::string& path) {
  std::ifstream in(path);
  if (!in) return make_error(errc::bad_adapter, path + ": cannot open the generate calibration");
  std::stringstream ss;
  ss << in.rdbuf();
  const auto j = nlohmann::json::parse(ss.str(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return make_error(errc::bad_adapter, path + ": not a JSON object");
  }
  generate_calibration c;
  try {
    c.temperature = j.at("temperature").get<float>();
    c.threshold = j.at("threshold").get<float>();
    c.target_accuracy = j.value("target_accuracy", c.target_accuracy);
    c.target_met = j.value("target_met", false);
    c.base_fingerprint = j.value("base_fingerprint", "");
    c.taxonomy_sha256 = j.value("taxonomy_sha256", "");
    c.prompt_sha256 = j.value("prompt_sha256", "");
    c.created_by = j.value("created_by", "");
  } catch (const nlohmann::json::exception& e) {
    return make_error(errc::bad_adapter, path + ": " + e.what());
  }
  if (!(c.temperature > 0.0f) || !(c.threshold >= 0.0f && c.threshold <= 1.0f)) {
    return make_error(errc::bad_adapter,
                      path + ": temperature must be > 0 and threshold within 0..1");
  }
  return c;
}

result<void> save_generate_calibration(const generate_calibration& c, const std::string& path) {
  const nlohmann::ordered_json j = {
      {"temperature", c.temperature},       {"threshold", c.threshold},
      {"target_accuracy", c.target_accuracy}, {"target_met", c.target_met},
      {"base_fingerprint", c.base_fingerprint}, {"taxonomy_sha256", c.taxonomy_sha256},
      {"prompt_sha256", c.prompt_sha256},   {"created_by", c.created_by},
  };
  std::ofstream out(path);
  out << j.dump(2) << "\n";
  if (!out) return make_error(errc::bad_adapter, path + ": cannot write the generate calibration");
  return success();
}

}  // namespace triage::classifier
