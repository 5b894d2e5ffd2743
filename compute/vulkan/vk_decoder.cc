#include "compute/vulkan/vk_decoder.h"

#include <algorithm>
#include <string>

namespace triage::vulkan {

vk_decoder::vk_decoder(vk_model& m, vk_kv_cache c)
    : m_(&m), cache_(std::move(c)), logits_(static_cast<size_t>(m.cfg().vocab_size)) {}

result<std::unique_ptr<vk_decoder>> vk_decoder::create(vk_model& m, int64_t capacity) {
  auto c = m.make_cache(std::clamp<int64_t>(capacity, 1, m.cfg().context_length));
  if (!c) return c.error();
  return std::unique_ptr<vk_decoder>(new vk_decoder(m, std::move(c).value()));
}

std::span<const float> vk_decoder::feed(std::span<const int32_t> tokens) {
  // The contract's errors, as model::extend throws them; the rest are the device's.
  if (tokens.empty()) throw std::invalid_argument("vk_decoder::feed: no tokens");
  if (size() + static_cast<int64_t>(tokens.size()) > capacity()) {
    throw std::length_error("vk_decoder::feed: " + std::to_string(tokens.size()) +
                            " tokens do not fit the KV cache (" + std::to_string(size()) +
                            " of " + std::to_string(capacity()) + " used)");
  }
  const int32_t vocab = m_->cfg().vocab_size;
  for (int32_t t : tokens) {
    if (t < 0 || t >= vocab) {
      throw std::invalid_argument("vk_decoder::feed: token id " + std::to_string(t) +
                                  " is outside the vocabulary (" + std::to_string(vocab) + ")");
    }
  }
  if (auto r = m_->extend(cache_, tokens, logits_); !r) throw device_failure(r.error());
  return logits_;
}

void vk_decoder::truncate(int64_t n) {
  if (n < 0 || n > cache_.size()) {
    throw std::invalid_argument("vk_decoder::truncate: " + std::to_string(n) + " outside 0.." +
                                std::to_string(cache_.size()));
  }
  cache_.set_size(n);
}

}  // namespace triage::vulkan
