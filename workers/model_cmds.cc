#include "workers/model_cmds.h"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/csv.h"
#include "compute/cpu/cpu_features.h"
#include "compute/cpu/peak.h"
#include "compute/model/model.h"
#include "compute/tokenizer/chat.h"
#include "compute/tokenizer/tokenizer.h"
#include "compute/vulkan/vk_model.h"
#include "workers/commands.h"

namespace triage::workers {

namespace {

using clock_type = std::chrono::steady_clock;

double ms_since(clock_type::time_point t0) {
  return std::chrono::duration<double, std::milli>(clock_type::now() - t0).count();
}

// "1 2 3", "1,2,3" or "[1, 2, 3]" -> ids; false on anything else.
bool parse_ids(std::string_view s, std::vector<int32_t>& out) {
  out.clear();
  std::string cleaned(s);
  for (char& c : cleaned) {
    if (c == ',' || c == '[' || c == ']') c = ' ';
  }
  std::istringstream in(cleaned);
  std::string word;
  while (in >> word) {
    char* end = nullptr;
    const long v = std::strtol(word.c_str(), &end, 10);
    if (end == word.c_str() || *end != '\0' || v < 0 || v > INT32_MAX) return false;
    out.push_back(static_cast<int32_t>(v));
  }
  return true;
}

struct loaded {
  std::optional<model::model> m;
  std::optional<tokenizer::tokenizer> tok;
};

// Model and tokenizer, or a message on stderr.
bool load(const std::string& path, int threads, loaded& out,
          const std::vector<std::string>& loras = {}, float lora_scale = 1.0f) {
  model::model_options mo{.threads = threads};
  for (const auto& f : loras) mo.loras.push_back({f, lora_scale});
  auto m = model::model::load(path, mo);
  if (!m) {
    std::cerr << "triage: cannot load model: " << m.error().what() << "\n";
    return false;
  }
  auto t = tokenizer::tokenizer::from_gguf(m.value().gguf());
  if (!t) {
    std::cerr << "triage: cannot read the tokenizer: " << t.error().what() << "\n";
    return false;
  }
  out.m.emplace(std::move(m.value()));
  out.tok.emplace(std::move(t.value()));
  return true;
}

double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto i = static_cast<size_t>(std::clamp(q * static_cast<double>(v.size() - 1) + 0.5, 0.0,
                                                static_cast<double>(v.size() - 1)));
  return v[i];
}

double peak_rss_mb() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;  // Linux: KB
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

}  // namespace

// --- generate ---

int run_generate(const std::string& model, const std::string& prompt, int n_tokens, int threads) {
  generate_args a;
  a.model = model;
  a.prompt = prompt;
  a.n_tokens = n_tokens;
  a.threads = threads;
  return run_generate(a);
}

int run_generate(const generate_args& args) {
  loaded l;
  if (!load(model_path_or_default(args.model), args.threads, l, args.loras, args.lora_scale)) {
    return 1;
  }
  const auto& tok = *l.tok;
  std::vector<int32_t> prompt;
  if (args.ids) {
    if (!parse_ids(args.prompt, prompt)) {
      std::cerr << "triage generate: --ids expects token ids such as \"1 2 3\"\n";
      return 2;
    }
    for (int32_t id : prompt) {
      if (id >= l.m->cfg().vocab_size) {
        std::cerr << "triage generate: token id " << id << " is outside the vocabulary ("
                  << l.m->cfg().vocab_size << ")\n";
        return 2;
      }
    }
  } else if (args.chat) {
    // The model's own format (ChatML for SmolLM2/Qwen2, turns for Gemma).
    const auto chat = tokenizer::detect_chat_format(l.m->gguf());
    if (!chat.note.empty()) std::cerr << "triage generate: " << chat.note << "\n";
    prompt = tokenizer::encode_chat(tok, chat.format, args.prompt);
  } else {
    prompt = tok.encode(args.prompt, /*add_special=*/true, /*parse_special=*/true);
  }
  if (prompt.empty()) {
    std::cerr << "triage generate: the prompt has no tokens\n";
    return 2;
  }
  const auto t0 = clock_type::now();
  double first_ms = 0;
  int n = 0;
  std::vector<int32_t> ids;
  try {
    ids = l.m->generate_greedy(prompt, args.n_tokens, [&](int32_t id) {
      if (n++ == 0) first_ms = ms_since(t0);
      if (args.stop_at_eog && tok.is_eog(id)) return false;
      const auto piece = tok.piece(id);
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
      return true;
    });
  } catch (const std::invalid_argument& e) {
    std::cerr << "triage generate: " << e.what() << "\n";
    return 2;
  }
  const double total_ms = ms_since(t0);
  std::fputc('\n', stdout);
  const double decode_ms = total_ms - first_ms;
  std::fprintf(stderr,
               "prompt: %zu tokens, %.1f ms to the first token (%.0f tokens/s); generated %zu "
               "tokens, %.1f tokens/s; %d threads, %s kernels\n",
               prompt.size(), first_ms, static_cast<double>(prompt.size()) / first_ms * 1000.0,
               ids.size(), ids.size() > 1 ? (static_cast<double>(ids.size()) - 1) / decode_ms * 1000.0 : 0.0,
               l.m->threads(), std::string(cpu::isa_name(cpu::active_isa())).c_str());
  return 0;
}

// --- embed ---

int run_embed(const embed_args& args) {
  if (args.pooling != "last" && args.pooling != "mean" && args.pooling != "both") {
    std::cerr << "triage embed: --pooling must be last, mean or both\n";
    return 2;
  }
  loaded l;
  if (!load(model_path_or_default(args.model), args.threads, l, args.loras, args.lora_scale)) {
    return 1;
  }
  if (args.layer < -1 || args.layer > l.m->cfg().n_layers) {
    std::cerr << "triage embed: --layer must be -1 .. " << l.m->cfg().n_layers << "\n";
    return 2;
  }
  std::ifstream file;
  std::istream* in = &std::cin;
  if (args.input != "-") {
    file.open(args.input);
    if (!file) {
      std::cerr << "triage embed: cannot open " << args.input << "\n";
      return 2;
    }
    in = &file;
  }
  model::forward_options fo;
  fo.layer = args.layer;
  fo.pool = args.pooling == "last"   ? model::pooling::last
            : args.pooling == "mean" ? model::pooling::mean
                                     : model::pooling::both;
  std::vector<std::vector<int32_t>> seqs;
  std::vector<int64_t> line_of;
  int status = 0;
  auto flush = [&] {
    if (seqs.empty()) return;
    model::prefill_result out;
    try {
      out = l.m->forward(seqs, fo);
    } catch (const std::invalid_argument& e) {  // a line longer than the context
      std::cerr << "triage embed: lines " << line_of.front() << ".." << line_of.back() << ": "
                << e.what() << "\n";
      status = 2;
      seqs.clear();
      line_of.clear();
      return;
    }
    for (size_t s = 0; s < seqs.size(); ++s) {
      nlohmann::ordered_json j;
      j["line"] = line_of[s];
      j["tokens"] = seqs[s].size();
      if (!out.last.empty()) {
        const auto v = out.last_of(static_cast<int64_t>(s));
        j["last"] = std::vector<float>(v.begin(), v.end());
      }
      if (!out.mean.empty()) {
        const auto v = out.mean_of(static_cast<int64_t>(s));
        j["mean"] = std::vector<float>(v.begin(), v.end());
      }
      std::cout << j.dump() << "\n";
    }
    seqs.clear();
    line_of.clear();
  };
  std::string line;
  for (int64_t n = 0; std::getline(*in, line); ++n) {
    std::vector<int32_t> ids;
    if (args.ids) {
      if (!parse_ids(line, ids)) {
        std::cerr << "triage embed: line " << n << ": not token ids\n";
        status = 2;
        continue;
      }
      bool ok = true;
      for (int32_t id : ids) ok = ok && id < l.m->cfg().vocab_size;
      if (!ok) {
        std::cerr << "triage embed: line " << n << ": token id outside the vocabulary\n";
        status = 2;
        continue;
      }
    } else {
      ids = l.tok->encode(line, /*add_special=*/true, /*parse_special=*/false);
    }
    if (ids.empty()) {
      std::cerr << "triage embed: line " << n << ": no tokens, skipped\n";
      continue;
    }
    seqs.push_back(std::move(ids));
    line_of.push_back(n);
    if (static_cast<int>(seqs.size()) >= std::max(1, args.batch)) flush();
  }
  flush();
  return status;
}

// --- bench ---

namespace {

struct bench_row {
  std::string engine;
  int batch = 0;
  size_t tickets = 0;
  size_t tokens = 0;
  double tickets_per_s = 0;
  double tokens_per_s = 0;
  double p50_ms = 0;
  double p99_ms = 0;
  double rss_mb = 0;
  double gmacs = 0;  // ours only
};

std::string default_llama_python() {
  if (const char* env = std::getenv("TRIAGE_LLAMA_PYTHON"); env != nullptr && *env != '\0') {
    return env;
  }
  const char* home = std::getenv("HOME");
  const std::string p =
      std::string(home != nullptr ? home : "") + "/.cache/triage/llama-venv/bin/python";
  return std::filesystem::exists(p) ? p : "";
}

std::string default_llama_script() {
  const char* src = std::getenv("TRIAGE_SOURCE_DIR");
  return (std::filesystem::path(src != nullptr ? src : ".") /
          "compute/tests/golden/bench_llama_cpp.py")
      .string();
}

// Runs the llama.cpp driver for one batch size; nullopt (and a note) on failure.
std::optional<bench_row> run_llama(const std::string& python, const std::string& script,
                                   const std::string& model, const bench_args& a, int batch,
                                   int threads) {
  const std::string cmd = shell_quote(python) + " " + shell_quote(script) + " --model " +
                          shell_quote(model) + " --data " + shell_quote(a.data) + " --n " +
                          std::to_string(a.n) + " --batch " + std::to_string(batch) +
                          " --threads " + std::to_string(threads) + " 2>/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return std::nullopt;
  std::string out;
  char buf[4096];
  while (size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  const int rc = pclose(p);
  const auto nl = out.find_last_of('{');
  if (rc != 0 || nl == std::string::npos) {
    std::cerr << "triage bench: llama.cpp run failed (exit " << rc << "): " << cmd << "\n";
    return std::nullopt;
  }
  try {
    const auto j = nlohmann::json::parse(out.substr(nl));
    bench_row r;
    r.engine = "llama.cpp " + j.at("llama_cpp_python").get<std::string>();
    r.batch = j.at("batch").get<int>();
    r.tickets = j.at("tickets").get<size_t>();
    r.tokens = j.at("tokens").get<size_t>();
    r.tickets_per_s = j.at("tickets_per_s").get<double>();
    r.tokens_per_s = j.at("tokens_per_s").get<double>();
    r.p50_ms = j.at("p50_ms").get<double>();
    r.p99_ms = j.at("p99_ms").get<double>();
    r.rss_mb = j.at("peak_rss_mb").get<double>();
    return r;
  } catch (const std::exception& e) {
    std::cerr << "triage bench: cannot read llama.cpp's output: " << e.what() << "\n";
    return std::nullopt;
  }
}

void print_row(const bench_row& r, bool json, double peak_gmacs) {
  if (json) {
    nlohmann::ordered_json j{{"engine", r.engine},         {"batch", r.batch},
                     {"tickets", r.tickets},       {"tokens", r.tokens},
                     {"tickets_per_s", r.tickets_per_s}, {"tokens_per_s", r.tokens_per_s},
                     {"p50_ms", r.p50_ms},         {"p99_ms", r.p99_ms},
                     {"peak_rss_mb", r.rss_mb}};
    if (r.gmacs > 0) j["gmacs"] = r.gmacs;
    std::cout << j.dump() << std::endl;
    return;
  }
  std::string extra;
  if (r.gmacs > 0) {
    char b[64];
    std::snprintf(b, sizeof b, "%7.1f  %5.1f%%", r.gmacs, 100.0 * r.gmacs / peak_gmacs);
    extra = b;
  }
  std::printf("%-18s %5d %10.1f %10.0f %9.1f %9.1f %9.0f  %s\n", r.engine.c_str(), r.batch,
              r.tickets_per_s, r.tokens_per_s, r.p50_ms, r.p99_ms, r.rss_mb, extra.c_str());
  std::fflush(stdout);
}

}  // namespace

int run_bench(const bench_args& args) {
  if (args.data.empty()) {
    std::cerr << "triage bench: --data CSV is required (e.g. Banking77's train.csv)\n";
    return 2;
  }
  if (args.backend != "cpu" && args.backend != "vulkan") {
    std::cerr << "triage bench: --backend '" << args.backend << "': expected cpu or vulkan\n";
    return 2;
  }
  const std::string model_path = model_path_or_default(args.model);
  loaded l;
  if (!load(model_path, args.threads, l)) return 1;
  std::unique_ptr<vulkan::vk_model> gpu;
  if (args.backend == "vulkan") {
    auto g = vulkan::vk_model::load(
        model_path, {.device = {.allow_cpu = true,
                                .pipeline_cache_dir = vulkan::default_pipeline_cache_dir()}});
    if (!g) {
      std::cerr << "triage bench: --backend vulkan: " << g.error().what() << "\n";
      return 1;
    }
    gpu = std::make_unique<vulkan::vk_model>(std::move(g.value()));
  }
  // One forward pass on the engine measured; false on a device error.
  auto forward = [&](const std::vector<std::vector<int32_t>>& seqs) {
    if (!gpu) return !l.m->forward(seqs).last.empty();
    auto r = gpu->forward(seqs);
    if (!r) std::cerr << "triage bench: " << r.error().what() << "\n";
    return r.has_value();
  };
  auto table = read_csv(args.data);
  if (!table) {
    std::cerr << "triage bench: " << table.error().what() << "\n";
    return 2;
  }
  auto col = table.value().column(args.column);
  if (!col) {
    std::cerr << "triage bench: " << col.error().what() << "\n";
    return 2;
  }
  std::vector<std::vector<int32_t>> tickets;
  size_t n_tokens = 0;
  for (const auto& row : table.value().rows) {
    if (static_cast<int>(tickets.size()) >= args.n) break;
    auto ids = l.tok->encode(row[col.value()], /*add_special=*/true, /*parse_special=*/false);
    if (ids.empty()) continue;
    n_tokens += ids.size();
    tickets.push_back(std::move(ids));
  }
  if (tickets.empty()) {
    std::cerr << "triage bench: no tickets in " << args.data << "\n";
    return 2;
  }
  const auto& c = l.m->cfg();
  // Multiply-accumulates per token in the blocks' matmuls (the output layer
  // is not run: classification reads hidden states).
  const double macs_per_token =
      static_cast<double>(c.n_layers) *
      (2.0 * c.dim * c.q_dim() + 2.0 * c.dim * c.kv_dim() + 3.0 * c.dim * c.ffn_dim);
  const auto peak = cpu::measure_peak();
  const int threads = l.m->threads();
  std::string python = args.llama_python.empty() ? default_llama_python() : args.llama_python;
  if (python == "none") python.clear();
  const std::string script = args.llama_script.empty() ? default_llama_script() : args.llama_script;
  if (!args.json) {
    if (gpu) std::printf("engine: Vulkan on '%s'\n", gpu->device().name.c_str());
    std::printf("model %s\n%zu tickets from %s, %zu tokens (%.1f per ticket); %d threads, %s "
                "kernels\nsingle-core peak: int8 %.1f GMAC/s (AVX2 maddubs %.1f, VNNI %.1f), "
                "fp32 FMA %.1f GFLOP/s; %% of peak below is of %d x int8\n\n",
                model_path.c_str(), tickets.size(), args.data.c_str(), n_tokens,
                static_cast<double>(n_tokens) / static_cast<double>(tickets.size()), threads,
                std::string(cpu::isa_name(cpu::active_isa())).c_str(), peak.int8_gmacs,
                peak.int8_avx2_gmacs, peak.int8_vnni_gmacs, peak.fp32_gflops, threads);
    std::printf("%-18s %5s %10s %10s %9s %9s %9s  %7s  %6s\n", "engine", "batch", "tickets/s",
                "tokens/s", "p50 ms", "p99 ms", "RSS MB", "GMAC/s", "peak");
    if (python.empty()) std::printf("(llama.cpp skipped: no llama-cpp-python; see --llama-python)\n");
  }
  for (int batch : args.batches) {
    if (batch <= 0) continue;
    std::vector<std::vector<int32_t>> b(tickets.begin(),
                                        tickets.begin() + std::min<size_t>(tickets.size(), batch));
    if (!forward(b)) return 1;  // warm-up: pages in the weights, sizes the buffers
    std::vector<double> lat;
    const auto t0 = clock_type::now();
    for (size_t i = 0; i < tickets.size(); i += static_cast<size_t>(batch)) {
      const size_t e = std::min(tickets.size(), i + static_cast<size_t>(batch));
      b.assign(tickets.begin() + static_cast<long>(i), tickets.begin() + static_cast<long>(e));
      const auto t1 = clock_type::now();
      if (!forward(b)) return 1;
      lat.push_back(ms_since(t1));
    }
    const double seconds = ms_since(t0) / 1000.0;
    bench_row r;
    r.engine = gpu ? "triage (vulkan)" : "triage (cpu)";
    r.batch = batch;
    r.tickets = tickets.size();
    r.tokens = n_tokens;
    r.tickets_per_s = static_cast<double>(tickets.size()) / seconds;
    r.tokens_per_s = static_cast<double>(n_tokens) / seconds;
    r.p50_ms = percentile(lat, 0.5);
    r.p99_ms = percentile(lat, 0.99);
    r.rss_mb = peak_rss_mb();
    r.gmacs = r.tokens_per_s * macs_per_token / 1e9;
    print_row(r, args.json, peak.int8_gmacs * threads);
    if (!python.empty()) {
      if (auto lr = run_llama(python, script, model_path, args, batch, threads)) {
        if (lr->tokens != n_tokens && !args.json) {
          std::printf("(llama.cpp tokenized the tickets into %zu tokens, we into %zu)\n",
                      lr->tokens, n_tokens);
        }
        print_row(*lr, args.json, 0);
      }
    }
  }
  return 0;
}

}  // namespace triage::workers
