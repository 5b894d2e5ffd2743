// tokenize_cmd.h: `triage tokenize`, token ids of text read from stdin, one
// input line per output line, for checking the tokenizer against llama.cpp
// and for looking at how tickets tokenize.
//
//   $ printf 'Where is my card?\n<|im_start|>user\n' | triage tokenize --special
//   9576 314 957 3421 47
//   1 4093
//
// Each line is tokenized as it is, bytes for bytes, without its '\n' (a '\r'
// before it stays part of the text); an empty line prints an empty line.
#pragma once

#include <string>

namespace triage::workers {

// model_path: a GGUF file; empty means $TRIAGE_MODEL, else
// ~/.cache/triage/models/SmolLM2-135M-Instruct.Q4_1.gguf. special: parse
// control-token text such as "<|im_start|>" into its id. add_bos: add the
// special tokens the model asks for (BOS when tokenizer.ggml.add_bos_token;
// SmolLM2 asks for none). Returns the exit status: 0, or 1 when the model
// cannot be loaded (the reason on stderr).
int run_tokenize(const std::string& model_path, bool special, bool add_bos);

}  // namespace triage::workers
