// The unknown-token count on SmolLM2's byte-level BPE vocabulary (the real
// model's tokenizer; only its GGUF metadata is read).
#include "workers/unknown_tokens.h"

#include <filesystem>
#include <memory>

#include <gtest/gtest.h>

#include "compute/gguf/reader.h"
#include "compute/tests/test_files.h"

namespace triage::workers {
namespace {

class unknown_tokens : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_TRUE(std::filesystem::exists(test_files::model_path()))
        << test_files::model_path() << " is missing: run ops/setup.sh (CI does)";
    auto r = gguf::reader::open(test_files::model_path());
    ASSERT_TRUE(r) << r.error().message;
    auto t = tokenizer::tokenizer::from_gguf(r.value());
    ASSERT_TRUE(t) << t.error().message;
    tok_ = std::make_unique<tokenizer::tokenizer>(std::move(t.value()));
  }
  static void TearDownTestSuite() { tok_.reset(); }
  static uint32_t count(std::string_view text) { return count_unknown_tokens(*tok_, tok_->encode(text)); }
  static std::unique_ptr<tokenizer::tokenizer> tok_;
};
std::unique_ptr<tokenizer::tokenizer> unknown_tokens::tok_;

TEST_F(unknown_tokens, english_banking_text_has_none) {
  EXPECT_EQ(count("My card payment was declined twice at the supermarket, why?"), 0u);
  EXPECT_EQ(count("I can't find the 'top up' button in the app."), 0u);
}

TEST_F(unknown_tokens, the_template_s_control_tokens_are_known) {
  const auto ids = tok_->encode("<|im_start|>user\nhello<|im_end|>\n", false, true);
  ASSERT_GT(ids.size(), 3u);
  EXPECT_EQ(count_unknown_tokens(*tok_, ids), 0u);
}

TEST_F(unknown_tokens, characters_outside_the_merges_come_as_fragments) {
  // Scripts and symbols an English-centred vocabulary spells in bytes: each
  // adds fragments, and the ids still decode to the text.
  for (std::string_view text : {"\xe6\x88\x91\xe7\x9a\x84\xe5\x8d\xa1\xe8\xa2\xab\xe6\x8b\x92\xe4\xba\x86",  // Chinese
                                "\xe1\x83\x91\xe1\x83\x90\xe1\x83\x90\xe1\x83\x97\xe1\x83\x98",             // Georgian
                                "\xf0\x9f\xa6\x96\xf0\x9f\xaa\xbc"}) {                                       // rare emoji
    const auto ids = tok_->encode(text);
    EXPECT_EQ(tok_->decode(ids), text);
    EXPECT_GT(count_unknown_tokens(*tok_, ids), 0u) << text;
    EXPECT_LE(count_unknown_tokens(*tok_, ids), ids.size());
  }
  // Adding such text to an English ticket raises its count by what it brings.
  EXPECT_EQ(count("card declined \xe1\x83\x91\xe1\x83\x90\xe1\x83\x90"),
            count(" \xe1\x83\x91\xe1\x83\x90\xe1\x83\x90"));
}

}  // namespace
}  // namespace triage::workers
