#include "workers/backend.h"

#include <algorithm>
#include <chrono>
#include <cmath>

namespace triage::workers {

null_backend::null_backend(std::vector<std::string> categories)
    : categories_(std::move(categories)) {
  if (categories_.empty()) categories_.push_back("general");
}

int null_backend::estimate_tokens(const v1::TicketEvent& ticket) const {
  // About four bytes per token for English text.
  return static_cast<int>((ticket.subject().size() + ticket.body().size()) / 4 + 1);
}

std::vector<decision> null_backend::classify(std::span<const v1::TicketEvent* const> tickets) {
  std::vector<decision> out;
  out.reserve(tickets.size());
  for (const auto* t : tickets) {
    uint64_t h = 1469598103934665603ull;  // FNV-1a: stable across runs and machines
    for (unsigned char c : t->body()) h = (h ^ c) * 1099511628211ull;
    decision d;
    d.category = categories_[h % categories_.size()];
    d.urgency = 1 + static_cast<int>((h >> 16) % 3);
    d.confidence = 1.0f;
    d.prompt_tokens = static_cast<uint32_t>(estimate_tokens(*t));
    out.push_back(std::move(d));
  }
  return out;
}

namespace {

// Ticket-like texts of the lengths support tickets have (a line to a
// paragraph), so the figure reflects real prompt sizes.
constexpr const char* capacity_sample[] = {
    "My card was declined at the supermarket even though I have money in my account.",
    "I was charged twice for the same purchase yesterday, please refund one of them.",
    "How do I change the address on my account? I moved last month and my new card should go there.",
    "The transfer I sent to my landlord three days ago still shows as pending. When will it arrive?",
    "Hi, I lost my phone and cannot log in to the app anymore. How can I reset my two-factor settings "
    "and make sure nobody else can access my account in the meantime?",
    "Why is there a fee on my statement for an ATM withdrawal abroad?",
    "I want to dispute a payment to an online shop that never delivered my order.",
    "Can I get a virtual card for online shopping, and is there a limit on how many I can have?",
};

}  // namespace

double measure_capacity(backend& model, int batch) {
  const int n = std::max(2 * batch, 16);
  std::vector<v1::TicketEvent> tickets(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    tickets[static_cast<size_t>(i)].set_id("capacity-" + std::to_string(i));
    tickets[static_cast<size_t>(i)].set_body(capacity_sample[static_cast<size_t>(i) % std::size(capacity_sample)]);
  }
  std::vector<const v1::TicketEvent*> ptrs;
  for (const auto& t : tickets) ptrs.push_back(&t);
  const auto all = std::span<const v1::TicketEvent* const>(ptrs);
  model.classify(all.first(static_cast<size_t>(std::min(batch, n))));  // warm-up
  const auto start = std::chrono::steady_clock::now();
  for (size_t i = 0; i < all.size(); i += static_cast<size_t>(batch)) {
    model.classify(all.subspan(i, std::min(static_cast<size_t>(batch), all.size() - i)));
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return s > 0 ? static_cast<double>(n) / s : 1e9;
}

int instances_for(double tickets_per_s, double instance_capacity, int max_instances) {
  if (!(instance_capacity > 0) || max_instances < 1) return 1;
  const double n = std::round(tickets_per_s / instance_capacity);
  return static_cast<int>(std::clamp(n, 1.0, static_cast<double>(max_instances)));
}

}  // namespace triage::workers
