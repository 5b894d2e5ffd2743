// generate.h: generative triage. An instruct model answers a chat prompt
// with {"category": "<a taxonomy category>", "urgency": <1|2|3>}; decoding is
// constrained so that this is the only thing it can write, for any BPE or
// SentencePiece vocabulary and labels of any number of tokens.
//
//   auto g = generator::create(model, tok, taxonomy.categories, {});
//   if (!g) return g.error();
//   generation out = g.value().run("My card has not arrived yet");
//   out.json;            // {"category": "cards", "urgency": 2}
//   out.category_probs;  // the model's probability of each category
//   float conf = calibrated_confidence(out, cal.temperature);
//
// How: the allowed outputs (every category x urgency, written out as fixed
// JSON text) form a byte trie (output_constraint). At each step a token is
// allowed iff its bytes keep the output a prefix of some allowed string, so
// whatever the model would tokenize differently from the fixed pieces, the
// mask is exact; every other token is masked out and the most probable
// allowed token is taken (greedy). Text with only one way on (the JSON
// punctuation and keys) is appended as its own tokens without asking the
// model ("jump forward"), when its tokenization decodes back to the same
// bytes.
//
// Confidence: at the first step that chooses between categories, a
// best-first search over the trie, with the KV cache of the shared prefix
// kept and cut back between branches, gives each category the product of the
// masked, renormalised token probabilities along its paths (summed over
// paths), exactly for the most probable branches; the mass of branches left
// unexpanded when the search budget ends is spread evenly over the
// categories still reachable from them. Temperature scaling of log p on a
// calibration split, as head mode does (calibration.h), makes it a
// calibrated confidence.
//
// The ticket sits in its slot of the chat template and cannot break out:
// template text is cut at the vocabulary's special tokens by the template
// itself, the ticket is tokenized as plain text with any special-token text
// inside it split so that it never becomes a special id.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"
#include "compute/model/model.h"
#include "compute/tokenizer/tokenizer.h"

namespace triage::classifier {

// The allowed output strings as a byte trie, and which tokens keep to it.
//
//   output_constraint c(categories, pieces);   // pieces[id]: token id's bytes
//   int32_t n = c.walk(c.root(), "{\"category\": \"ca");
//   c.category_range(n);                       // the categories still possible
class output_constraint {
 public:
  // categories: the labels, in taxonomy order (non-empty, distinct);
  // pieces: the bytes of every token id (empty: never allowed, e.g. control
  // tokens). Throws std::invalid_argument for no or duplicate categories, or
  // a vocabulary that cannot write every allowed string.
  output_constraint(std::span<const std::string> categories, std::vector<std::string> pieces);

  // The text of an output: {"category": "<category, JSON-escaped>", "urgency": <u>}.
  static std::string output_text(std::string_view category, int urgency);

  int32_t root() const { return 0; }
  // The node after `bytes` from `node`, or -1 when they leave every allowed string.
  int32_t walk(int32_t node, std::string_view bytes) const;
  // A whole allowed string ends here (nothing may follow).
  bool is_final(int32_t node) const;
  // The categories reachable from `node`: [first, last] in sorted order
  // (sorted_category()), a single one once first == last.
  std::pair<int32_t, int32_t> category_range(int32_t node) const;
  // Taxonomy index of the category at sorted position `s`.
  int32_t sorted_category(int32_t s) const { return sorted_to_index_[static_cast<size_t>(s)]; }
  // The outcome a final node stands for.
  int32_t final_category(int32_t node) const;  // taxonomy index
  int final_urgency(int32_t node) const;        // 1..3
  // The bytes that must follow `node` before any choice (empty at a branch
  // or at the end).
  std::string forced(int32_t node) const;
  // The allowed tokens at `node`: (token id, node after it), by token id:
  // those whose bytes keep the output a prefix of an allowed string that
  // the vocabulary can still complete.
  void allowed(int32_t node, std::vector<std::pair<int32_t, int32_t>>& out) const;

  size_t n_categories() const { return sorted_to_index_.size(); }
  size_t longest_output() const { return longest_; }

 private:
  struct trie_node {
    std::vector<std::pair<uint8_t, int32_t>> next;  // by byte
    int32_t lo = std::numeric_limits<int32_t>::max(), hi = -1;               // sorted category range
    int32_t final_string = -1;                      // sorted_category * 3 + urgency - 1
    bool alive = false;                             // some token path leads on to a final node
  };
  int32_t child(int32_t n, uint8_t b) const;

  std::vector<trie_node> nodes_;
  std::vector<int32_t> sorted_to_index_;
  std::vector<std::string> pieces_;
  std::vector<std::vector<int32_t>> by_first_byte_;  // (256) token ids whose piece starts with the byte
  size_t longest_ = 0;
};

// ChatML (SmolLM2, Qwen2.5), with {system} and {ticket} slots.
inline constexpr std::string_view k_default_chat_template =
    "<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{ticket}<|im_end|>\n"
    "<|im_start|>assistant\n";
// {categories} becomes the taxonomy's categories, comma-separated.
inline constexpr std::string_view k_default_system_prompt =
    "You triage customer support tickets for a bank. Read the customer's message and answer "
    "with JSON only: {\"category\": \"<category>\", \"urgency\": <1, 2 or 3>}. The category is "
    "exactly one of: {categories}. Urgency: 1 routine, 2 soon, 3 urgent (money lost, fraud, "
    "blocked account).";

struct generate_spec {
  // Chat template: special-token text (as the vocabulary spells it) is
  // placed as those tokens; {system} and {ticket} are the slots.
  // Default: k_default_chat_template.
  std::string chat_template = std::string(k_default_chat_template);
  // System prompt; {categories} is replaced by the category list.
  // Default: k_default_system_prompt.
  std::string system_prompt = std::string(k_default_system_prompt);
  // Token budget of the prompt; the ticket is cut (from its end) to fit and
  // flagged truncated. Default: 512. Bounds: 16..model context.
  int max_tokens = 512;
  // Forward passes the confidence search may spend on branches beyond the
  // greedy path's. 0: the category probabilities come from the first
  // choice's token probabilities alone. Default: 8. Bounds: 0..256.
  int max_expansions = 8;
  // The search stops once the unexplored probability mass is below this.
  // Default: 0.01. Bounds: [0, 1].
  double min_mass = 0.01;
  // Append forced text (JSON punctuation, keys) as its own tokens instead of
  // asking the model. Default: true.
  bool jump_forward = true;
};

struct generation {
  std::string json;                   // the output, always one of the allowed strings
  int32_t category = -1;              // taxonomy index (greedy decoding)
  int urgency = 0;                    // 1..3
  std::vector<float> category_probs;  // (n_categories) the model's, uncalibrated, sum 1
  bool truncated = false;             // the ticket was cut to the budget
  uint32_t prompt_tokens = 0;
  uint32_t output_tokens = 0;         // tokens of the output (forced ones included)
  uint32_t forward_passes = 0;        // model calls for this ticket
};

// softmax(log p / temperature) over the categories (probabilities floored
// at 1e-9): temperature scaling of the generative probabilities.
std::vector<float> calibrate_probs(std::span<const float> probs, float temperature);
// log max(p, 1e-9): the "logits" temperature scaling is fitted on.
std::vector<float> log_probs(std::span<const float> probs);

class generator {
 public:
  // Errors: bad_training (naming the field) for a template without a
  // {ticket} slot, a budget out of bounds, or a prompt frame that leaves no
  // room for the ticket. The model and tokenizer must outlive the generator.
  static result<generator> create(model::model& m, const tokenizer::tokenizer& tok,
                                  std::vector<std::string> categories, const generate_spec& spec);
  // The same on any engine: `make_decoder(capacity)` gives the step decoder
  // (e.g. vulkan::vk_decoder::create on a vk_model) for a sequence of that
  // many positions; `cfg` is its model's. Its errors are returned as they are.
  using decoder_factory =
      std::function<result<std::unique_ptr<model::step_decoder>>(int64_t capacity)>;
  static result<generator> create(const model::config& cfg, const tokenizer::tokenizer& tok,
                                  std::vector<std::string> categories, const generate_spec& spec,
                                  const decoder_factory& make_decoder);

  // One ticket. Not thread-safe (one decoder); use one generator per thread.
  // Throws what the decoder throws (a device failure on Vulkan); the
  // generator stays usable after it.
  generation run(std::string_view ticket);

  // The prompt's token ids for a ticket (what run() feeds the model).
  std::vector<int32_t> prompt(std::string_view ticket, bool* truncated = nullptr) const;
  const output_constraint& constraint() const { return *constraint_; }
  const std::vector<std::string>& categories() const { return categories_; }

 private:
  generator() = default;
  // The category probabilities from the state in decoder_ (size mark, the
  // given logits at `node`); leaves decoder_ at mark.
  std::vector<double> search(int32_t node, std::span<const float> logits, int64_t mark,
                             uint32_t& passes);

  const tokenizer::tokenizer* tok_ = nullptr;
  std::vector<std::string> categories_;
  generate_spec spec_;
  std::unique_ptr<output_constraint> constraint_;
  std::vector<int32_t> prefix_;  // prompt tokens before the ticket (the same for every ticket)
  std::vector<int32_t> after_ticket_;  // the frame's tokens after the ticket
  std::unique_ptr<model::step_decoder> decoder_;
  bool prefix_cached_ = false;   // decoder_ holds prefix_ at positions 0..
};

// Token ids of untrusted text: like tok.encode(text) with parse_special off,
// and text of tokens the tokenizer cuts out even then (user-defined ones) is
// split so that no special token comes out of it.
std::vector<int32_t> encode_untrusted(const tokenizer::tokenizer& tok, std::string_view text);

// Temperature and threshold of generate mode, fitted on a calibration split
// (`triage calibrate-generate`) and kept in a small JSON file.
struct generate_calibration {
  float temperature = 1.0f;         // divides log p
  float threshold = 1.0f;           // route when calibrated confidence >= threshold
  double target_accuracy = 0.99;    // what the threshold was chosen for
  bool target_met = false;          // false: no threshold reached it on calibration
  std::string base_fingerprint;     // model_fingerprint() of the base model
  std::string taxonomy_sha256;
  std::string prompt_sha256;        // of chat_template + "\n" + system_prompt
  std::string created_by;
};

std::string prompt_fingerprint(const generate_spec& spec);
result<generate_calibration> load_generate_calibration(const std::string& path);
result<void> save_generate_calibration(const generate_calibration& c, const std::string& path);

}  // namespace triage::classifier
