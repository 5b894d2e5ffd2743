// kv_cache.h: the keys and values of one sequence at every layer, so that
// generation computes each new token against the cached past instead of
// re-running the prompt. Sized for the whole generation up front (prompt +
// new tokens), never for the model's full context: SmolLM2-135M needs
// 2 * 30 layers * 192 floats = 45 KB per position.
//
//   triage::model::kv_cache cache(cfg.n_layers, cfg.kv_dim(), prompt.size() + n_new);
//   float* k = cache.k(layer, pos);          // kv_dim floats
//   cache.set_size(cache.size() + n);        // positions filled so far
#pragma once

#include <cstdint>
#include <vector>

namespace triage::model {

class kv_cache {
 public:
  kv_cache(int n_layers, int kv_dim, int64_t capacity)
      : kv_dim_(kv_dim),
        capacity_(capacity),
        k_(static_cast<size_t>(n_layers) * static_cast<size_t>(capacity) * kv_dim),
        v_(k_.size()) {}

  float* k(int layer, int64_t pos) { return k_.data() + offset(layer, pos); }
  float* v(int layer, int64_t pos) { return v_.data() + offset(layer, pos); }
  int64_t size() const { return size_; }  // positions filled
  void set_size(int64_t n) { size_ = n; }
  int64_t capacity() const { return capacity_; }
  int kv_dim() const { return kv_dim_; }

 private:
  size_t offset(int layer, int64_t pos) const {
    return (static_cast<size_t>(layer) * static_cast<size_t>(capacity_) + static_cast<size_t>(pos)) *
           static_cast<size_t>(kv_dim_);
  }
  int kv_dim_;
  int64_t capacity_;
  int64_t size_ = 0;
  std::vector<float> k_;  // (n_layers, capacity, kv_dim)
  std::vector<float> v_;  // (n_layers, capacity, kv_dim)
};

}  // namespace triage::model
