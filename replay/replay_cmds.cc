#include "replay/replay_cmds.h"

#include <cstdio>
#include <fstream>
#include <iostream>

#include <nlohmann/json.hpp>

#include "compute/classifier/taxonomy.h"
#include "replay/kafka_range.h"
#include "replay/report.h"
#include "replay/runner.h"
#include "replay/source.h"
#include "schemas/codec.h"
#include "schemas/utf8.h"
#include "workers/run_cmds.h"

namespace triage::replay {
namespace {

result<double> parse_pace(const std::string& p) {
  if (p == "fast") return 0.0;
  if (p == "recorded") return 1.0;
  std::string n = p;
  if (!n.empty() && (n.back() == 'x' || n.back() == 'X')) n.pop_back();
  try {
    size_t used = 0;
    const double v = std::stod(n, &used);
    if (used == n.size() && v > 0) return v;
  } catch (const std::exception&) {
  }
  return make_error(errc::bad_option, "--pace '" + p + "': expected fast, recorded or Nx (e.g. 10x)");
}

// One output as a JSON line: where it would go, what it is, and the message.
std::string output_line(const workers::output_record& o) {
  nlohmann::json j = {{"topic", o.topic},
                      {"kind", std::string(workers::outcome_name(o.kind))},
                      {"partition", o.partition},
                      {"offset", o.offset}};
  j["key"] = schemas::first_invalid_utf8(o.key) ? std::string() : o.key;
  std::string msg;
  if (o.kind == workers::outcome::routed) {
    v1::RoutedTicket m;
    m.ParseFromString(o.value);
    msg = schemas::to_json(m);
  } else if (o.kind == workers::outcome::escalated) {
    v1::Escalation m;
    m.ParseFromString(o.value);
    msg = schemas::to_json(m);
  } else {
    v1::DeadLetter m;
    m.ParseFromString(o.value);
    msg = schemas::to_json(m);
  }
  j["message"] = nlohmann::json::parse(msg);
  return j.dump();
}

bool write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  out.close();
  if (!out) {
    std::cerr << "triage replay: " << path << ": cannot write\n";
    return false;
  }
  return true;
}

run_meta meta_of(const std::string& name, const workers::backend& b, const std::string& config,
                 const workers::processor& p, double wall_s) {
  return {name, b.name(), b.model_version(), b.adapter_version(), config, p.threshold(), wall_s};
}

void print_summary(const char* name, const run_meta& m, const evaluation& ev) {
  std::printf("%s: backend %s, adapter %s, threshold %.3f, %.2f s\n", name, m.backend.c_str(),
              m.adapter_version.c_str(), m.threshold, m.wall_s);
  std::printf("  records %zu: routed %zu, escalated %zu, dead-lettered %zu (escalation rate %.1f%%)\n",
              ev.records, ev.routed, ev.escalated, ev.dead_lettered, 100 * ev.escalation_rate);
  if (ev.labelled > 0) {
    std::printf("  labelled %zu (in scope %zu): category accuracy %.4f, macro-F1 %.4f, urgency accuracy "
                "%.4f (of %zu), ECE %.4f\n",
                ev.labelled, ev.in_scope, ev.category_accuracy, ev.macro_f1, ev.urgency_accuracy,
                ev.urgency_labelled, ev.ece);
    std::printf("  auto-routed accuracy %.4f (of %zu); out-of-scope escalated %zu of %zu\n",
                ev.routed_accuracy, ev.routed_labelled, ev.out_of_scope_escalated, ev.out_of_scope);
  } else {
    std::printf("  no labels: accuracy metrics skipped\n");
  }
  std::printf("  latency per batch p50 %.3f ms p99 %.3f ms; per ticket p50 %.3f ms p99 %.3f ms\n",
              ev.batch_latency.p50, ev.batch_latency.p99, ev.ticket_latency.p50, ev.ticket_latency.p99);
  const auto& c = ev.cost;
  std::printf("  cost per week at %.0f tickets: all frontier %.2f, cascade %.2f, savings %.2f (%.1f%%)\n",
              c.options.weekly_volume, c.all_frontier_weekly, c.cascade_weekly, c.savings_weekly,
              100 * c.savings_share);
}

}  // namespace

int run_replay(const replay_args& args) {
  auto fail = [](const std::string& msg, int code) {
    std::cerr << "triage replay: " << msg << "\n";
    return code;
  };
  const bool from_kafka = !args.topic.empty();
  if (from_kafka == !args.inputs.empty()) {
    return fail("give input files or --topic (a Kafka range), not both or neither", 2);
  }
  auto pace = parse_pace(args.pace);
  if (!pace) return fail(pace.error().message, 2);
  auto cfg = topology::load_config(args.config, args.settings);
  if (!cfg) return fail(cfg.error().message, 2);
  auto tax = classifier::load_taxonomy(args.taxonomy);
  if (!tax) return fail(tax.error().message, 2);

  std::vector<replay_record> records;
  std::vector<std::string> inputs;
  if (from_kafka) {
    kafka_range range;
    range.topic = args.topic;
    range.partitions = args.partitions;
    if (args.from_offset >= 0) range.from_offset = args.from_offset;
    if (args.to_offset >= 0) range.to_offset = args.to_offset;
    for (auto [text, slot] : {std::pair{&args.from_time, &range.from_ms}, std::pair{&args.to_time, &range.to_ms}}) {
      if (text->empty()) continue;
      auto t = parse_time_ms(*text);
      if (!t) return fail(t.error().message, 2);
      *slot = t.value();
    }
    auto r = read_kafka_range(cfg.value().kafka.settings, range, &tax.value());
    if (!r) return fail(r.error().message, 1);
    records = std::move(r.value());
    std::string desc = args.topic;
    if (!args.from_time.empty() || !args.to_time.empty()) desc += " time [" + args.from_time + ", " + args.to_time + ")";
    if (args.from_offset >= 0 || args.to_offset >= 0) {
      desc += " offsets [" + std::to_string(args.from_offset) + ", " + std::to_string(args.to_offset) + ")";
    }
    inputs.push_back(desc);
  } else {
    auto fmt = parse_file_format(args.format);
    if (!fmt) return fail(fmt.error().message, 2);
    for (const auto& path : args.inputs) {
      auto r = read_file_source(path, {.format = fmt.value(), .taxonomy = &tax.value()});
      if (!r) return fail(r.error().message, 2);
      for (auto& rec : r.value()) records.push_back(std::move(rec));
      inputs.push_back(path);
    }
  }
  if (args.limit > 0 && records.size() > args.limit) records.resize(args.limit);
  std::cerr << "triage replay: " << records.size() << " records\n";

  std::unique_ptr<kafka_sink> sink;
  if (args.output_kafka) {
    auto s = kafka_sink::create(cfg.value(), {.prefix = args.output_prefix,
                                              .allow_live_topics = args.allow_live_topics});
    if (!s) return fail(s.error().message, 2);
    sink = std::move(s.value());
  }

  // As a worker with this config would run it: mode: generate included.
  auto model = workers::make_backend_for(cfg.value(), args.backend, args.model, args.adapter, args.taxonomy,
                                         args.threads);
  if (!model) return fail(model.error().message, 2);
  run_options ropts{.batch_max_tickets = static_cast<size_t>(cfg.value().worker.batch_max_tickets),
                    .batch_max_tokens = cfg.value().worker.batch_max_tokens,
                    .speed = pace.value(),
                    .progress = args.progress,
                    .label = "replay a"};
  // Flags override the config's cost section.
  const auto& cc = cfg.value().cost;
  const cost_options costs{args.frontier_cost >= 0 ? args.frontier_cost : cc.frontier_per_call,
                           args.slm_cost >= 0 ? args.slm_cost : cc.slm_per_ticket,
                           args.weekly_volume >= 0 ? args.weekly_volume : cc.weekly_tickets};

  report rep;
  rep.inputs = inputs;
  rep.command = args.command_line;
  run_result run_a;
  {
    workers::processor proc(cfg.value(), *model.value());
    try {
      run_a = run(records, proc, ropts);
    } catch (const std::exception& e) {
      return fail(std::string("classification failed: ") + e.what(), 1);
    }
    rep.meta = meta_of("a", *model.value(), args.config, proc, run_a.wall_s);
    rep.eval = evaluate(run_a.scored, run_a.batch_ms, costs);
  }

  const bool compare_runs = !args.compare_adapter.empty() || !args.compare_config.empty();
  if (compare_runs) {
    auto cfg_b = topology::load_config(args.compare_config.empty() ? args.config : args.compare_config,
                                       args.settings);
    if (!cfg_b) return fail(cfg_b.error().message, 2);
    const std::string adapter_b = args.compare_adapter.empty() ? args.adapter : args.compare_adapter;
    // A second model only when the adapter or the mode differs (head vs
    // generate); a policy change reuses the first.
    std::unique_ptr<workers::backend> owned_b;
    workers::backend* model_b = model.value().get();
    if (adapter_b != args.adapter || cfg_b.value().mode != cfg.value().mode) {
      auto b = workers::make_backend_for(cfg_b.value(), args.backend, args.model, adapter_b, args.taxonomy,
                                         args.threads);
      if (!b) return fail(b.error().message, 2);
      owned_b = std::move(b.value());
      model_b = owned_b.get();
    }
    workers::processor proc_b(cfg_b.value(), *model_b);
    ropts.label = "replay b";
    run_result run_b;
    try {
      run_b = run(records, proc_b, ropts);
    } catch (const std::exception& e) {
      return fail(std::string("classification failed (run b): ") + e.what(), 1);
    }
    rep.meta_b = meta_of("b", *model_b, args.compare_config.empty() ? args.config : args.compare_config,
                         proc_b, run_b.wall_s);
    rep.eval_b = evaluate(run_b.scored, run_b.batch_ms, costs);
    rep.diff = compare(run_a.scored, run_b.scored);
  }

  if (!args.output.empty()) {
    std::ofstream out(args.output, std::ios::binary);
    for (const auto& o : run_a.outputs) out << output_line(o) << "\n";
    out.close();
    if (!out) return fail(args.output + ": cannot write", 1);
  }
  if (sink) {
    auto n = sink->write(run_a.outputs);
    if (!n) return fail(n.error().message, 1);
    std::cerr << "triage replay: " << n.value() << " outputs produced under '" << args.output_prefix << "'\n";
  }
  if (!args.report.empty() && !write_text(args.report, to_json(rep).dump(2) + "\n")) return 1;
  if (!args.html.empty() && !write_text(args.html, to_html(rep))) return 1;

  print_summary("run a", rep.meta, rep.eval);
  if (compare_runs) {
    print_summary("run b", *rep.meta_b, *rep.eval_b);
    const auto& d = *rep.diff;
    std::printf("comparison: %zu of %zu tickets changed (category %zu, outcome %zu); accuracy b - a = %+.4f, "
                "95%% CI [%+.4f, %+.4f] over %zu paired labelled tickets (normal approximation on paired "
                "differences); b fixed %zu, broke %zu\n",
                d.changed, d.records, d.category_changed, d.outcome_changed, d.difference, d.ci_low, d.ci_high,
                d.paired, d.b_fixed, d.b_broke);
  }
  return 0;
}

}  // namespace triage::replay
