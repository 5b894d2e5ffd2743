#include "workers/generate_backend.h"

#include <algorithm>
#include <filesystem>
#include <numeric>

#include <spdlog/spdlog.h>

#include "compute/classifier/adapter.h"
#include "compute/vulkan/vk_decoder.h"

namespace triage::workers {

namespace cl = triage::classifier;

cl::generate_spec generate_spec_of(const topology::generate_options& g) {
  cl::generate_spec s;
  if (!g.chat_template.empty()) s.chat_template = g.chat_template;
  if (!g.system_prompt.empty()) s.system_prompt = g.system_prompt;
  s.max_tokens = g.max_tokens;
  s.max_expansions = g.max_expansions;
  return s;
}

result<std::unique_ptr<generate_backend>> generate_backend::load(const generate_backend_options& opts) {
  std::unique_ptr<generate_backend> b(new generate_backend());
  auto tax = cl::load_taxonomy(opts.taxonomy);
  if (!tax) return tax.error();
  b->tax_ = std::move(tax.value());
  model::model_options mo;
  mo.threads = opts.threads;
  for (const auto& l : opts.generate.loras) {
    model::lora_spec spec;
    spec.path = l.path;
    spec.scale = static_cast<float>(l.scale);
    mo.loras.push_back(spec);
  }
  auto m = model::model::load(opts.model, mo);
  if (!m) return m.error();
  b->model_ = std::make_unique<model::model>(std::move(m.value()));
  auto tok = tokenizer::tokenizer::from_gguf(b->model_->gguf());
  if (!tok) return tok.error();
  b->tok_ = std::make_unique<tokenizer::tokenizer>(std::move(tok.value()));
  const auto spec = generate_spec_of(opts.generate);
  b->spec_ = spec;
  if (opts.backend == "vulkan" || opts.backend == "vulkan-required") {
    vulkan::vk_model_options vo = opts.device;
    vo.loras = mo.loras;
    auto gpu = vulkan::vk_model::load(opts.model, vo);
    if (gpu) {
      b->gpu_ = std::make_unique<vulkan::vk_model>(std::move(gpu.value()));
      vulkan::vk_model* dev = b->gpu_.get();
      auto g = cl::generator::create(
          dev->cfg(), *b->tok_, b->tax_.categories, spec,
          [dev](int64_t capacity) -> result<std::unique_ptr<model::step_decoder>> {
            auto d = vulkan::vk_decoder::create(*dev, capacity);
            if (!d) return d.error();
            return std::unique_ptr<model::step_decoder>(std::move(d).value());
          });
      if (!g) return g.error();
      b->gen_ = std::make_unique<cl::generator>(std::move(g.value()));
      spdlog::info("generate backend: decoding on Vulkan device '{}' ({} MB of weights)",
                   dev->device().name, dev->weight_bytes() >> 20);
    } else if (opts.backend == "vulkan-required" ||
               gpu.error().code.category() != vulkan::vulkan_category()) {
      return gpu.error();
    } else {
      spdlog::warn("generate backend: --backend vulkan: {}; using the CPU", gpu.error().message);
    }
  } else if (opts.backend != "cpu") {
    return make_error(topology::errc::bad_value, "generate backend: backend '" + opts.backend +
                                                  "': expected cpu, vulkan or vulkan-required");
  }
  if (!b->gpu_) {
    if (auto r = b->make_cpu_generator(); !r) return r.error();
    b->gen_ = std::move(b->cpu_gen_);
  }
  const std::string fp = cl::model_fingerprint(b->model_->gguf());
  b->model_version_ = std::filesystem::path(opts.model).filename().string() + "@" + fp.substr(0, 12);
  b->prompt_sha_ = cl::prompt_fingerprint(spec);
  b->fingerprint_ = fp;
  if (!opts.generate.calibration.empty()) {
    const auto& path = opts.generate.calibration;
    auto c = cl::load_generate_calibration(path);
    if (!c) return c.error();
    const auto& cal = c.value();
    const auto mismatch = [&](const std::string& what) {
      return make_error(cl::errc::adapter_mismatch,
                        path + ": calibrated for another " + what +
                            "; run `triage calibrate-generate` again");
    };
    if (!cal.base_fingerprint.empty() && cal.base_fingerprint != fp) return mismatch("base model");
    if (!cal.taxonomy_sha256.empty() && cal.taxonomy_sha256 != b->tax_.sha256) return mismatch("taxonomy");
    if (!cal.prompt_sha256.empty() && cal.prompt_sha256 != b->prompt_sha_) {
      return mismatch("chat template or system prompt");
    }
    b->calibration_ = cal;
    b->has_calibration_ = true;
  } else {
    spdlog::warn("generate backend: no generate.calibration file; temperature 1 and threshold 1 "
                 "(nothing routes on confidence)");
  }
  return b;
}

result<void> generate_backend::make_cpu_generator() {
  auto g = cl::generator::create(*model_, *tok_, tax_.categories, spec_);
  if (!g) return g.error();
  cpu_gen_ = std::make_unique<cl::generator>(std::move(g.value()));
  return success();
}

cl::generation generate_backend::run_one(const std::string& text) {
  if (!gpu_) return gen_->run(text);
  try {
    return gen_->run(text);
  } catch (const vulkan::device_failure& e) {
    spdlog::error("generate backend: Vulkan decoding failed, this ticket runs on the CPU: {}",
                  e.what());
  }
  if (!cpu_gen_) {
    if (auto r = make_cpu_generator(); !r) {
      throw std::runtime_error("generate backend: no CPU fallback: " + r.error().what());
    }
  }
  return cpu_gen_->run(text);
}

std::string generate_backend::adapter_version() const {
  return "generate@" + prompt_sha_.substr(0, 12) + (has_calibration_ ? "+calibrated" : "");
}

int generate_backend::estimate_tokens(const v1::TicketEvent& ticket) const {
  return static_cast<int>((ticket.subject().size() + ticket.body().size()) / 4 + 1);
}

std::vector<generate_backend::scored> generate_backend::generate(std::span<const std::string> texts) {
  std::vector<scored> out;
  out.reserve(texts.size());
  for (const auto& t : texts) {
    scored s;
    s.out = run_one(t);
    s.calibrated = cl::calibrate_probs(s.out.category_probs, calibration_.temperature);
    out.push_back(std::move(s));
  }
  return out;
}

std::vector<decision> generate_backend::classify(std::span<const v1::TicketEvent* const> tickets) {
  std::vector<std::string> texts;
  texts.reserve(tickets.size());
  for (const auto* t : tickets) {
    texts.push_back(t->subject().empty() ? t->body()
                    : t->body().empty()  ? t->subject()
                                         : t->subject() + "\n" + t->body());
  }
  const auto scored_all = generate(texts);
  std::vector<decision> out;
  out.reserve(scored_all.size());
  for (const auto& s : scored_all) {
    decision d;
    d.category = tax_.categories[static_cast<size_t>(s.out.category)];
    d.urgency = s.out.urgency;
    d.confidence = s.calibrated[static_cast<size_t>(s.out.category)];
    d.truncated = s.out.truncated;
    d.prompt_tokens = s.out.prompt_tokens;
    std::vector<size_t> order(s.calibrated.size());
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return s.calibrated[a] > s.calibrated[b]; });
    for (size_t k = 0; k < order.size() && d.alternatives.size() < 2; ++k) {
      if (static_cast<int32_t>(order[k]) == s.out.category) continue;
      v1::Alternative alt;
      alt.set_category(tax_.categories[order[k]]);
      alt.set_probability(s.calibrated[order[k]]);
      d.alternatives.push_back(std::move(alt));
    }
    out.push_back(std::move(d));
  }
  return out;
}

}  // namespace triage::workers
