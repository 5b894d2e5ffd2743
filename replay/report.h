// report.h: a replay's evaluation as JSON (for machines) and as one
// self-contained HTML page (inline SVG charts; no external scripts, styles,
// fonts or network access).
//
//   report rep{.meta = {...}, .eval = replay::evaluate(run.scored, run.batch_ms)};
//   write_file("report.json", to_json(rep).dump(2));
//   write_file("report.html", to_html(rep));
//
// The page holds four charts, each an <svg class="chart"> with a stable id:
// reliability-diagram, coverage-accuracy, confusion-matrix, latency-histogram;
// and, with a comparison, a table of the tickets that changed.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "replay/metrics.h"

namespace triage::replay {

// What was replayed, with what.
struct run_meta {
  std::string name;              // "a", "b", or the adapter's name
  std::string backend;
  std::string model_version;
  std::string adapter_version;
  std::string config;            // topology config file
  double threshold = 0;          // routing threshold in force
  double wall_s = 0;
};

struct report {
  std::string title = "Triage replay";
  std::vector<std::string> inputs;   // files or topic ranges
  std::string command;               // the command line, for the record
  run_meta meta;
  evaluation eval;
  // With a second run over the same records:
  std::optional<run_meta> meta_b;
  std::optional<evaluation> eval_b;
  std::optional<comparison> diff;
};

nlohmann::json to_json(const evaluation& ev);
nlohmann::json to_json(const comparison& c);
nlohmann::json to_json(const report& r);

std::string to_html(const report& r);

// Chart SVGs on their own (the page embeds them), for tests.
std::string reliability_svg(const evaluation& ev);
std::string coverage_svg(const evaluation& ev, const evaluation* b = nullptr);
std::string confusion_svg(const evaluation& ev);
std::string latency_svg(const evaluation& ev);

// Escapes &, <, >, " and ' for HTML text and attributes.
std::string html_escape(std::string_view s);

}  // namespace triage::replay
