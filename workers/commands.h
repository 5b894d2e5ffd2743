// commands.h: the implementations behind `triage <subcommand>`; main.cc parses
// the command line and calls these. Each returns the process exit status
// (0 ok, 1 the work failed, 2 bad input or usage).
#pragma once

#include <string>
#include <vector>

namespace triage::workers {

// `triage decode FILE...`: each file (or '-' for stdin) holds one record; prints
// the decoded TicketEvent as JSON, or the error a dead letter would carry.
int run_decode(const std::vector<std::string>& files);

// `triage devices`: Vulkan devices with the features the shaders can use, and
// the CPU backend.
int run_devices();

// Where downloads and caches live: $TRIAGE_CACHE, else ~/.cache/triage (as
// in ops/setup.sh).
std::string cache_dir();

// The model file a command uses: `path` when given, else $TRIAGE_MODEL, else
// the one ops/setup.sh installed ($TRIAGE_CACHE, default ~/.cache/triage,
// + /models/SmolLM2-135M-Instruct.Q4_1.gguf).
std::string model_path_or_default(const std::string& path);

}  // namespace triage::workers
