#include "workers/tokenize_cmd.h"

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "compute/gguf/reader.h"
#include "compute/tokenizer/tokenizer.h"
#include "workers/commands.h"

namespace triage::workers {
int run_tokenize(const std::string& model_path, bool special, bool add_bos) {
  const std::string path = model_path_or_default(model_path);
  auto gguf = gguf::reader::open(path);
  if (!gguf) {
    std::cerr << "triage tokenize: " << gguf.error().what() << "\n";
    return 1;
  }
  auto tok = tokenizer::tokenizer::from_gguf(gguf.value());
  if (!tok) {
    std::cerr << "triage tokenize: " << tok.error().what() << "\n";
    return 1;
  }

  std::string line;
  std::string out;
  std::vector<int32_t> ids;
  // Lines are read as bytes: tickets may hold anything, invalid UTF-8 too.
  while (std::getline(std::cin, line)) {
    ids.clear();
    tok.value().encode(line, ids, add_bos, special);
    out.clear();
    for (size_t i = 0; i < ids.size(); ++i) {
      if (i != 0) out += ' ';
      out += std::to_string(ids[i]);
    }
    out += '\n';
    std::fwrite(out.data(), 1, out.size(), stdout);
  }
  std::fflush(stdout);
  return 0;
}

}  // namespace triage::workers
