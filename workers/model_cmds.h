// model_cmds.h: `triage generate`, `triage embed` and `triage bench`, the CPU
// inference engine (compute/model) from the command line. Each returns the
// process exit status (0 ok, 1 the work failed, 2 bad input or usage).
//
//   $ triage generate "The capital of France is" --tokens 16
//   $ printf 'I lost my card\nWhere is my refund?\n' | triage embed --pooling mean
//   {"line":0,"tokens":4,"mean":[0.0123,...]}
//   $ triage bench --data /work/shared/data/banking77/train.csv --n 256 --threads 2
#pragma once

#include <string>
#include <vector>

namespace triage::workers {

struct generate_args {
  std::string model;        // GGUF file. Default: "" ($TRIAGE_MODEL, else the installed SmolLM2)
  std::string prompt;       // text (or ids with `ids`). Default: ""
  int n_tokens = 64;        // new tokens at most. Default: 64
  int threads = 0;          // inference threads. Default: 0, one per hardware thread
  bool ids = false;         // the prompt is token ids ("1 2 3" or "1,2,3"). Default: false
  bool chat = false;        // wrap the prompt in the model's chat format (ChatML, Gemma turns). Default: false
  bool stop_at_eog = true;  // stop at an end-of-generation token. Default: true
  // LoRA adapter GGUF files merged at load (compute/model/lora.h), each
  // with lora_scale. Default: none, 1.0
  std::vector<std::string> loras;
  float lora_scale = 1.0f;
};

// Greedy continuation of the prompt, streamed to stdout as it is decoded;
// prompt and timing figures on stderr. Text prompts are tokenized with
// special-token parsing on, so "<|im_start|>" works; --ids bypasses the
// tokenizer (ids are checked against the vocabulary).
int run_generate(const generate_args& args);
// The same with the other fields at their defaults.
int run_generate(const std::string& model, const std::string& prompt, int n_tokens, int threads);

struct embed_args {
  std::string model;              // Default: "" (as generate_args)
  std::string input = "-";        // one ticket per line; "-" is stdin. Default: "-"
  bool ids = false;               // lines are token ids, not text. Default: false
  int layer = -1;                 // -1: final-norm output; 0..n_layers: residual after that many blocks. Default: -1
  std::string pooling = "last";   // last, mean or both. Default: "last"
  int threads = 0;                // Default: 0, one per hardware thread
  int batch = 32;                 // lines per forward pass (a ragged batch). Default: 32
  std::vector<std::string> loras;  // LoRA adapters, as generate_args. Default: none
  float lora_scale = 1.0f;         // Default: 1.0
};

// Pooled hidden states of each input line as JSON lines:
// {"line":N,"tokens":T,"last":[...]} (and/or "mean"), in input order. An
// empty line is skipped with a note on stderr (a sequence needs a token).
int run_embed(const embed_args& args);

struct bench_args {
  std::string model;                  // Default: "" (as generate_args)
  std::string data;                   // CSV with a text column, e.g. Banking77's train.csv. Required
  std::string column = "text";        // Default: "text"
  int n = 256;                        // tickets (the first n rows). Default: 256
  std::vector<int> batches{1, 8, 32, 64};  // tickets per forward pass. Default: 1, 8, 32, 64
  int threads = 0;                    // Default: 0, one per hardware thread
  // Python with llama-cpp-python for the side-by-side run: "" means
  // $TRIAGE_LLAMA_PYTHON, else ~/.cache/triage/llama-venv/bin/python when it
  // exists; "none" skips llama.cpp. Default: ""
  std::string llama_python;
  // The llama.cpp driver script. Default: "" ($TRIAGE_SOURCE_DIR or the
  // current directory + compute/tests/golden/bench_llama_cpp.py)
  std::string llama_script;
  bool json = false;                  // JSON lines instead of a table. Default: false
  // Engine measured: "cpu" (the CPU engine) or "vulkan" (vulkan::vk_model
  // on the best device, lavapipe allowed; TRIAGE_VULKAN_DEVICE picks one).
  // Default: "cpu"
  std::string backend = "cpu";
};

// Prefill throughput on real tickets at each batch size: tickets/s, tokens/s,
// p50/p99 batch latency, peak RSS, GMAC/s and share of the measured int8
// peak; after each batch size, llama.cpp on the same tickets and threads
// (interleaved, so both see the same machine load).
int run_bench(const bench_args& args);

}  // namespace triage::workers
