// make_seeds.cc: writes the binary seed inputs of the fuzz targets under a
// corpus directory (tests/fuzz/corpus): protobuf and JSON tickets, small GGUF
// files (a BPE and a SentencePiece vocabulary, tensors of several types with
// nested metadata arrays), classifier adapters with and without a hidden
// layer, and tokenizer inputs. Deterministic; run it when a format changes
// and commit what changed:
//
//   build-fuzz/tests/fuzz/fuzz_make_seeds tests/fuzz/corpus
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <span>
#include <string>
#include <vector>

#include "compute/classifier/adapter.h"
#include "compute/gguf/writer.h"
#include "schemas/codec.h"
#include "schemas/triage.pb.h"

namespace fs = std::filesystem;
namespace gguf = triage::gguf;

namespace {

void write(const fs::path& path, std::string_view bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) {
    std::fprintf(stderr, "make_seeds: cannot write %s\n", path.c_str());
    std::exit(1);
  }
}

void write(const fs::path& path, const std::vector<std::byte>& bytes) {
  write(path, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

std::vector<triage::v1::TicketEvent> tickets() {
  std::vector<triage::v1::TicketEvent> out;
  triage::v1::TicketEvent full;
  full.set_id("T-1001");
  full.set_tenant("acme-bank");
  full.set_subject("Card not arrived");
  full.set_body("I ordered a new card two weeks ago and it still has not arrived. Où est ma carte ?");
  full.set_channel(triage::v1::CHANNEL_EMAIL);
  full.mutable_created_at()->set_seconds(1767323045);
  full.mutable_created_at()->set_nanos(500000000);
  (*full.mutable_attributes())["customer_tier"] = "gold";
  (*full.mutable_attributes())["source"] = "zendesk";
  full.set_locale("en-GB");
  out.push_back(full);
  triage::v1::TicketEvent minimal;
  minimal.set_body("refund please");
  out.push_back(minimal);
  triage::v1::TicketEvent subject_only;
  subject_only.set_subject("Why was I charged twice? 💳");
  subject_only.set_channel(triage::v1::CHANNEL_CHAT);
  out.push_back(subject_only);
  // Ids of 123 and 91 bytes: the record starts "\n{" or "\n[" (tag of field
  // 1, then the length), which a format guess that skips blanks takes for JSON.
  triage::v1::TicketEvent brace = minimal;
  brace.set_id(std::string(123, 'x'));
  out.push_back(brace);
  triage::v1::TicketEvent bracket = minimal;
  bracket.set_id(std::string(91, 'y'));
  out.push_back(bracket);
  return out;
}

std::string bl(std::string_view raw) {
  std::string out;
  for (unsigned char b : raw) {  // GPT-2 byte-level symbols of printable ASCII are the bytes
    if (b > 0x20 && b < 0x7f) {
      out.push_back(static_cast<char>(b));
    } else if (b == ' ') {
      out += "\xc4\xa0";  // U+0120 'Ġ'
    }
  }
  return out;
}

std::vector<std::byte> bpe_vocabulary() {
  gguf::writer w;
  std::vector<std::string> tokens = {"<|endoftext|>", "<|im_start|>", "<|im_end|>", "a", "b", "c",
                                     "d", "e", bl(" "), "ab", "cd", bl(" ab"), "<user>"};
  std::vector<int32_t> types = {3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 4};
  w.set("general.architecture", gguf::value::string("llama"));
  w.set("tokenizer.ggml.model", gguf::value::string("gpt2"));
  w.set("tokenizer.ggml.pre", gguf::value::string("smollm"));
  w.set("tokenizer.ggml.tokens", gguf::value::string_array(tokens));
  w.set("tokenizer.ggml.token_type", gguf::value::i32_array(types));
  w.set("tokenizer.ggml.merges", gguf::value::string_array({"a b", "c d", bl(" ") + " ab"}));
  w.set("tokenizer.ggml.bos_token_id", gguf::value::u32(1));
  w.set("tokenizer.ggml.eos_token_id", gguf::value::u32(2));
  w.set("tokenizer.ggml.add_bos_token", gguf::value::boolean(true));
  return w.bytes();
}

std::vector<std::byte> spm_vocabulary() {
  gguf::writer w(2);
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>", "\xe2\x96\x81", "a", "b",
                                     "\xe2\x96\x81" "a", "ab", "<0x0A>", "<0x41>"};
  std::vector<int32_t> types = {2, 3, 3, 1, 1, 1, 1, 1, 6, 6};
  std::vector<float> scores = {0, 0, 0, -1, -2, -3, -1.5f, -0.5f, 0, 0};
  w.set("general.architecture", gguf::value::string("gemma3"));
  w.set("tokenizer.ggml.model", gguf::value::string("llama"));
  w.set("tokenizer.ggml.tokens", gguf::value::string_array(tokens));
  w.set("tokenizer.ggml.token_type", gguf::value::i32_array(types));
  w.set("tokenizer.ggml.scores", gguf::value::f32_array(scores));
  w.set("tokenizer.ggml.unknown_token_id", gguf::value::u32(0));
  w.set("tokenizer.ggml.bos_token_id", gguf::value::u32(1));
  w.set("tokenizer.ggml.eos_token_id", gguf::value::u32(2));
  w.set("tokenizer.ggml.add_space_prefix", gguf::value::boolean(true));
  return w.bytes();
}

std::vector<std::byte> tensors() {
  gguf::writer w;
  w.set("general.architecture", gguf::value::string("llama"));
  w.set("general.name", gguf::value::string("fuzz seed"));
  w.set("llama.block_count", gguf::value::u32(1));
  w.set("llama.context_length", gguf::value::u64(2048));
  w.set("llama.rope.freq_base", gguf::value::f32(10000.0f));
  w.set("general.weight", gguf::value::f64(0.25));
  w.set("general.flag", gguf::value::boolean(true));
  w.set("general.small", gguf::value::i8(-3));
  w.set("general.short", gguf::value::i16(-300));
  w.set("general.signed", gguf::value::i64(-5));
  w.set("general.nested",
        gguf::value::array(gguf::value_type::array,
                           {gguf::value::string_array({"x", "yz"}),
                            gguf::value::array(gguf::value_type::u16,
                                               {gguf::value::u16(1), gguf::value::u16(2)})}));
  w.set_alignment(64);
  std::vector<float> f32(8 * 2, 0.5f);
  w.add_tensor("token_embd.weight", gguf::tensor_type::f32, {8, 2},
               std::as_bytes(std::span<const float>(f32)));
  std::vector<std::byte> f16(4 * 2, std::byte{0x3c});
  w.add_tensor("output_norm.weight", gguf::tensor_type::f16, {4}, f16);
  std::vector<std::byte> q8(34, std::byte{1});  // one Q8_0 block of 32 weights
  w.add_tensor("blk.0.attn_q.weight", gguf::tensor_type::q8_0, {32, 1}, q8);
  return w.bytes();
}

triage::classifier::adapter small_adapter(int hidden) {
  triage::classifier::adapter a;
  a.name = "fuzz";
  a.created_by = "make_seeds";
  a.base_model_name = "SmolLM2-135M-Instruct";
  a.base_fingerprint = std::string(64, 'a');
  a.taxonomy_sha256 = std::string(64, 'b');
  a.intents = {"card_arrival", "refund_not_showing_up", "lost_or_stolen_card"};
  a.categories = {"cards", "payments"};
  a.intent_category = {0, 1, 0};
  a.intent_urgency = {2, 2, 3};
  a.prompt_template = "Ticket: {text}";
  a.max_tokens = 64;
  a.temperature = 1.5f;
  a.threshold = 0.8f;
  a.baseline_category_share = {0.6f, 0.4f};
  a.baseline_confidence_hist = std::vector<float>(10, 0.1f);
  const int d = 4, c = 3, width = hidden > 0 ? hidden : d;
  std::vector<float> w1(static_cast<size_t>(hidden * d), 0.1f), b1(static_cast<size_t>(hidden), 0.0f);
  a.intent_head = triage::classifier::head(d, hidden, c, std::vector<float>(d, 0.0f),
                                           std::vector<float>(d, 1.0f), w1, b1,
                                           std::vector<float>(static_cast<size_t>(c * width), 0.2f),
                                           std::vector<float>(c, 0.0f));
  return a;
}

void adapter_seed(const fs::path& path, int hidden) {
  fs::create_directories(path.parent_path());
  if (auto ok = triage::classifier::save_adapter(small_adapter(hidden), path.string()); !ok) {
    std::fprintf(stderr, "make_seeds: %s\n", ok.error().message.c_str());
    std::exit(1);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz_make_seeds CORPUS_DIR\n");
    return 2;
  }
  const fs::path dir = argv[1];
  int i = 0;
  for (const auto& t : tickets()) {
    ++i;
    write(dir / "ticket_protobuf" / ("ticket" + std::to_string(i) + ".pb"), t.SerializeAsString());
    write(dir / "ticket_json" / ("ticket" + std::to_string(i) + ".json"), triage::schemas::to_json(t));
  }
  write(dir / "gguf" / "bpe_vocabulary.gguf", bpe_vocabulary());
  write(dir / "gguf" / "spm_vocabulary.gguf", spm_vocabulary());
  write(dir / "gguf" / "tensors.gguf", tensors());
  adapter_seed(dir / "adapter" / "linear.gguf", 0);
  adapter_seed(dir / "adapter" / "hidden.gguf", 2);
  // Tokenizer inputs: a mode byte (bit 0 add_special, 1 parse_special,
  // 2 decode), then text or 16-bit ids.
  write(dir / "tokenizer" / "plain.txt", std::string("\x00", 1) + "Where is my card? I ordered it 12 days ago.");
  write(dir / "tokenizer" / "chatml.txt",
        std::string("\x03") + "<|im_start|>user\nRefund of 45,00 € please<|im_end|>\n");
  write(dir / "tokenizer" / "unicode.txt", std::string("\x00", 1) + "Ünïcödé 日本語 😀 \t\r\n  x");
  write(dir / "tokenizer" / "invalid_utf8.txt", std::string("\x00\xff\xfe\xc3(\xe2\x82", 7));
  write(dir / "tokenizer" / "ids.bin", std::string("\x04\x01\x00\x10\x00\x20\x01\xff\x7f\x00\x00", 11));
  std::printf("make_seeds: wrote seeds under %s\n", dir.c_str());
  return 0;
}
