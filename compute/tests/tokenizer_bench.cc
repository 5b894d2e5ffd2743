// tokenizer_bench: encoding throughput on real tickets (Banking77), one
// thread. A benchmark program, not a test: it prints figures and asserts
// nothing.
//
//   build/compute/tokenizer_bench [--model FILE] [--data train.csv] [--repeat N]
//
// Defaults: $TRIAGE_MODEL or ~/.cache/triage/models/SmolLM2-135M-Instruct.Q4_1.gguf,
// /work/shared/data/banking77/train.csv (first column, header skipped), 5 repeats.
// Compare with llama-cpp-python on the same texts:
//   /root/.cache/triage/llama-venv/bin/python -c 'import csv,time,llama_cpp,os;
//     t=[r["text"].encode() for r in csv.DictReader(open("train.csv"))];
//     l=llama_cpp.Llama(os.path.expanduser("~/.cache/triage/models/SmolLM2-135M-Instruct.Q4_1.gguf"),
//     vocab_only=True,verbose=False); s=time.perf_counter();
//     n=sum(len(l.tokenize(x,add_bos=False,special=False)) for x in t);
//     print(n/(time.perf_counter()-s),"tokens/s")'
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "compute/gguf/reader.h"
#include "compute/tokenizer/tokenizer.h"

namespace {

// First field of every record of an RFC 4180 CSV file (quotes, doubled
// quotes and newlines inside quotes), header skipped.
std::vector<std::string> first_column(const std::string& csv) {
  std::vector<std::string> out;
  std::string field;
  size_t column = 0;
  bool quoted = false;
  bool header = true;
  auto end_record = [&] {
    if (!header) out.push_back(field);
    header = false;
    field.clear();
    column = 0;
  };
  for (size_t i = 0; i < csv.size(); ++i) {
    const char c = csv[i];
    if (quoted) {
      if (c == '"' && i + 1 < csv.size() && csv[i + 1] == '"') {
        if (column == 0) field += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else if (column == 0) {
        field += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      ++column;
    } else if (c == '\n') {
      end_record();
    } else if (c != '\r' && column == 0) {
      field += c;
    }
  }
  if (!field.empty() || column != 0) end_record();
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::string model;
  if (const char* env = std::getenv("TRIAGE_MODEL"); env != nullptr && *env != '\0') {
    model = env;
  } else if (const char* home = std::getenv("HOME")) {
    model = std::string(home) + "/.cache/triage/models/SmolLM2-135M-Instruct.Q4_1.gguf";
  }
  std::string data = "/work/shared/data/banking77/train.csv";
  int repeat = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--model") == 0) {
      model = argv[i + 1];
    } else if (std::strcmp(argv[i], "--data") == 0) {
      data = argv[i + 1];
    } else if (std::strcmp(argv[i], "--repeat") == 0) {
      repeat = std::atoi(argv[i + 1]);
    } else {
      std::fprintf(stderr, "usage: %s [--model FILE] [--data CSV] [--repeat N]\n", argv[0]);
      return 2;
    }
  }

  const auto t_open = std::chrono::steady_clock::now();
  auto r = triage::gguf::reader::open(model);
  if (!r) {
    std::fprintf(stderr, "%s\n", r.error().what().c_str());
    return 1;
  }
  auto tok = triage::tokenizer::tokenizer::from_gguf(r.value());
  if (!tok) {
    std::fprintf(stderr, "%s\n", tok.error().what().c_str());
    return 1;
  }
  const double load_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t_open).count();

  std::ifstream in(data, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "cannot read %s\n", data.c_str());
    return 1;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  const std::vector<std::string> texts = first_column(ss.str());
  size_t bytes = 0;
  for (const auto& t : texts) bytes += t.size();

  std::vector<int32_t> ids;
  size_t tokens = 0;
  for (const auto& t : texts) {  // warm-up: caches, thread-local buffers
    ids.clear();
    tok.value().encode(t, ids);
    tokens += ids.size();
  }
  const auto start = std::chrono::steady_clock::now();
  for (int k = 0; k < repeat; ++k) {
    for (const auto& t : texts) {
      ids.clear();
      tok.value().encode(t, ids);
    }
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double n = static_cast<double>(repeat);
  std::printf("tokenizer_bench: %s, pre '%s'\n", std::filesystem::path(model).filename().c_str(),
              std::string(tok.value().pre()).c_str());
  std::printf("  load (open + build tokenizer): %.1f ms\n", load_ms);
  std::printf("  %zu texts, %zu bytes, %zu tokens (%.1f tokens/text)\n", texts.size(), bytes,
              tokens, static_cast<double>(tokens) / static_cast<double>(texts.size()));
  std::printf(
      "  encode, 1 thread, %d passes: %.0f texts/s, %.2f M tokens/s, %.1f MB/s, %.2f us/text\n",
      repeat, n * static_cast<double>(texts.size()) / s, n * static_cast<double>(tokens) / s / 1e6,
      n * static_cast<double>(bytes) / s / 1e6, s / (n * static_cast<double>(texts.size())) * 1e6);
  return 0;
}
