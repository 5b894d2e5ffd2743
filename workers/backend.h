// backend.h: what the worker asks of a classifier, so the Kafka side does not
// care whether tickets are classified by the SLM on a GPU, on the CPU, or by
// the trivial `null` backend that measures the pipeline's own overhead.
//
//   null_backend b({"cards", "payments"});
//   auto decisions = b.classify(tickets);   // one per ticket, same order
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "schemas/triage.pb.h"

namespace triage::workers {

// Shadow mode (workers/shadow.h): the candidate adapter's verdict on the
// same ticket. Recorded in the state, never routed on.
struct shadow_decision {
  std::string category;
  int urgency = 0;
  float confidence = 0;
  bool out_of_scope = false;
  bool truncated = false;
  float threshold = 1;             // the candidate adapter's own threshold
};

// The SLM's verdict on one ticket, before the routing policy.
struct decision {
  std::string category;
  int urgency = 0;                 // 1..3
  float confidence = 0;            // calibrated probability that `category` is right
  std::string intent;
  std::vector<v1::Alternative> alternatives;  // runner-up categories, best first
  bool truncated = false;          // the ticket was cut to the token budget
  bool out_of_scope = false;       // the model judged it outside the taxonomy
  uint32_t prompt_tokens = 0;
  uint32_t unknown_tokens = 0;     // of the ticket's tokens, raw-byte / unknown ones
  std::optional<shadow_decision> shadow;  // set only when a shadow adapter runs
};

class backend {
 public:
  virtual ~backend() = default;
  // "null", "cpu", "vulkan:<device>": shown in logs and results.
  virtual std::string name() const = 0;
  virtual std::string model_version() const = 0;
  virtual std::string adapter_version() const = 0;
  // The threshold the adapter chose from data (routing.min_confidence: adapter).
  virtual float threshold() const = 0;
  // A cheap estimate of a ticket's prompt tokens, for batching by token budget.
  virtual int estimate_tokens(const v1::TicketEvent& ticket) const = 0;
  // One decision per ticket, in order. Throws only on a failure that ends the
  // worker (the device was lost); a ticket it cannot judge gets confidence 0.
  virtual std::vector<decision> classify(std::span<const v1::TicketEvent* const> tickets) = 0;
};

// Routes every ticket with confidence 1 to a category picked by a hash of its
// text, so outputs spread over the queues like real traffic. For measuring
// the pipeline without a model, and for tests.
class null_backend final : public backend {
 public:
  explicit null_backend(std::vector<std::string> categories);
  std::string name() const override { return "null"; }
  std::string model_version() const override { return "null"; }
  std::string adapter_version() const override { return "null"; }
  float threshold() const override { return 0.5f; }
  int estimate_tokens(const v1::TicketEvent& ticket) const override;
  std::vector<decision> classify(std::span<const v1::TicketEvent* const> tickets) override;

 private:
  std::vector<std::string> categories_;
};

// One backend shared by the consumer instances of a process: classify calls
// take turns (a model runs one batch at a time anyway), the rest forwards.
class shared_backend final : public backend {
 public:
  explicit shared_backend(backend& inner) : inner_(inner) {}
  std::string name() const override { return inner_.name(); }
  std::string model_version() const override { return inner_.model_version(); }
  std::string adapter_version() const override { return inner_.adapter_version(); }
  float threshold() const override { return inner_.threshold(); }
  int estimate_tokens(const v1::TicketEvent& ticket) const override { return inner_.estimate_tokens(ticket); }
  std::vector<decision> classify(std::span<const v1::TicketEvent* const> tickets) override {
    std::lock_guard lock(mutex_);
    return inner_.classify(tickets);
  }

 private:
  backend& inner_;
  std::mutex mutex_;
};

// The backend's throughput in tickets/s on a fixed sample of support-ticket
// texts, in batches of `batch` (one warm-up batch first, not timed).
double measure_capacity(backend& model, int batch);

// Consumer instances a process of `tickets_per_s` capacity runs: one per
// `instance_capacity` tickets/s, rounded, within 1..max_instances.
int instances_for(double tickets_per_s, double instance_capacity, int max_instances);

}  // namespace triage::workers
