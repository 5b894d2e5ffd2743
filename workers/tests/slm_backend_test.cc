// The SLM backend on the real model and the shipped banking adapter: what it
// hands the routing policy and the state beyond the category (prompt tokens,
// the unknown-token count the drift statistics read).
#include "workers/slm_backend.h"

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "compute/tests/test_files.h"
#include "topology/config.h"
#include "workers/processor.h"

namespace triage::workers {
namespace {

std::string adapter_path() {
  const char* src = std::getenv("TRIAGE_SOURCE_DIR");
  return (std::filesystem::path(src != nullptr ? src : ".") / "topology/adapters/banking.gguf").string();
}

v1::TicketEvent ticket(const std::string& id, const std::string& body) {
  v1::TicketEvent t;
  t.set_id(id);
  t.set_body(body);
  return t;
}

TEST(slm_backend, counts_the_unknown_tokens_of_each_ticket_and_the_result_carries_them) {
  ASSERT_TRUE(std::filesystem::exists(test_files::model_path()))
      << test_files::model_path() << " is missing: run ops/setup.sh (CI does)";
  auto b = slm_backend::load({.model = test_files::model_path().string(), .adapter = adapter_path(), .threads = 2});
  ASSERT_TRUE(b) << b.error().message;

  // English banking text is all known tokens; Georgian script is spelled in
  // byte fragments by SmolLM2's vocabulary (workers/unknown_tokens.h).
  const v1::TicketEvent english = ticket("T-en", "My card payment was declined twice, why?");
  const v1::TicketEvent georgian =
      ticket("T-ka", "card declined \xe1\x83\x91\xe1\x83\x90\xe1\x83\x90\xe1\x83\x97\xe1\x83\x98");
  const std::vector<const v1::TicketEvent*> batch{&english, &georgian};
  const auto d = b.value()->classify(batch);
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].unknown_tokens, 0u);
  EXPECT_GT(d[1].unknown_tokens, 0u);
  EXPECT_LE(d[1].unknown_tokens, d[1].prompt_tokens);

  // Through the processor: the routed event or escalation's result has it.
  topology::config cfg;
  processor p(cfg, *b.value());
  std::vector<input_record> in{{"tickets", 0, 7, "", georgian.SerializeAsString(), 0}};
  const auto out = p.process(in);
  ASSERT_EQ(out.size(), 1u);
  v1::TriageResult r;
  if (out[0].kind == outcome::routed) {
    v1::RoutedTicket rt;
    ASSERT_TRUE(rt.ParseFromString(out[0].value));
    r = rt.result();
  } else {
    ASSERT_EQ(out[0].kind, outcome::escalated);
    v1::Escalation e;
    ASSERT_TRUE(e.ParseFromString(out[0].value));
    r = e.draft();
  }
  EXPECT_EQ(r.unknown_tokens(), d[1].unknown_tokens);
  EXPECT_EQ(r.prompt_tokens(), d[1].prompt_tokens);
}

}  // namespace
}  // namespace triage::workers
