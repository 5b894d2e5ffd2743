// shadow.h: shadow mode (issue #7): a candidate adapter (what `triage
// retrain` writes) judges every ticket beside the live one; its verdict is
// recorded (agreement with the live decision, accuracy against corrections:
// state/README.md) and never routes, produces or commits anything.
//
//   auto cand = load_shadow_adapter("topology/adapters/banking.candidate.gguf", live, "banking.gguf");
//   if (!cand) return cand.error();        // adapter_mismatch naming the file and what differs
//   if (same_features(live, cand.value())) ...   // only its head runs, on the live features
//
// Configured in the topology (`shadow: {adapter: PATH}`, topology/config.h);
// slm_backend::set_shadow loads it.
#pragma once

#include <string>
#include <string_view>

#include "base/result.h"
#include "compute/classifier/adapter.h"

namespace triage::workers {

// Loads the candidate at `path` and checks it can stand beside `live`
// (loaded from `live_path`): the same base model (fingerprint), the same
// taxonomy (hash, and the same categories) and a head over as many features.
// Errors (classifier::errc::adapter_mismatch, or the loader's) name `path`
// and what differs.
result<classifier::adapter> load_shadow_adapter(const std::string& path, const classifier::adapter& live,
                                                std::string_view live_path);

// The same check on adapters already loaded.
result<void> check_shadow(const classifier::adapter& candidate, std::string_view path,
                          const classifier::adapter& live, std::string_view live_path);

// True when both take the features the same way (prompt template, token
// budget, layer, pooling): the candidate's head then runs on the live
// features, at no second forward pass.
bool same_features(const classifier::adapter& a, const classifier::adapter& b);

}  // namespace triage::workers
