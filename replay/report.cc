#include "replay/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace triage::replay {
namespace {

using nlohmann::json;

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}
std::string num(double v) { return fmt("%.1f", v); }
std::string pct(double v) { return fmt("%.1f%%", 100 * v); }

json latency_json(const latency_stats& s) {
  return {{"count", s.count}, {"mean_ms", s.mean}, {"p50_ms", s.p50}, {"p90_ms", s.p90},
          {"p99_ms", s.p99}, {"max_ms", s.max}};
}

json meta_json(const run_meta& m) {
  return {{"name", m.name}, {"backend", m.backend}, {"model_version", m.model_version},
          {"adapter_version", m.adapter_version}, {"config", m.config},
          {"threshold", m.threshold}, {"wall_seconds", m.wall_s}};
}

// Plot frame: 360x260 drawing area inside a 440x320 viewBox.
constexpr double X0 = 60, Y0 = 24, W = 360, H = 236;
double px(double x) { return X0 + x * W; }
double py(double y) { return Y0 + (1 - y) * H; }

// Axes for x in [0, 1] and y in [ylo, 1] (ticks labelled accordingly).
std::string axes(const std::string& xlabel, const std::string& ylabel, bool unit_x, double ylo = 0) {
  std::string s;
  s += "<rect x=\"" + num(X0) + "\" y=\"" + num(Y0) + "\" width=\"" + num(W) + "\" height=\"" + num(H) +
       "\" fill=\"#fafafa\" stroke=\"#888\"/>";
  for (int i = 0; i <= 4; ++i) {
    const double v = i / 4.0;
    s += "<line x1=\"" + num(X0 - 4) + "\" y1=\"" + num(py(v)) + "\" x2=\"" + num(X0) + "\" y2=\"" +
         num(py(v)) + "\" stroke=\"#888\"/>";
    s += "<text x=\"" + num(X0 - 8) + "\" y=\"" + num(py(v) + 4) + "\" text-anchor=\"end\">" +
         fmt("%.2f", ylo + v * (1 - ylo)) + "</text>";
    if (unit_x) {
      s += "<text x=\"" + num(px(v)) + "\" y=\"" + num(Y0 + H + 16) + "\" text-anchor=\"middle\">" +
           fmt("%.2f", v) + "</text>";
    }
  }
  s += "<text x=\"" + num(X0 + W / 2) + "\" y=\"" + num(Y0 + H + 34) + "\" text-anchor=\"middle\">" +
       html_escape(xlabel) + "</text>";
  s += "<text x=\"14\" y=\"" + num(Y0 + H / 2) + "\" text-anchor=\"middle\" transform=\"rotate(-90 14 " +
       num(Y0 + H / 2) + ")\">" + html_escape(ylabel) + "</text>";
  return s;
}

std::string svg_open(const std::string& id, const std::string& title, double w = 440, double h = 320) {
  return "<svg class=\"chart\" id=\"" + id + "\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 " +
         num(w) + " " + num(h) + "\" width=\"" + num(w) + "\" height=\"" + num(h) +
         "\" role=\"img\"><title>" + html_escape(title) + "</title><text x=\"4\" y=\"12\" font-weight=\"bold\">" +
         html_escape(title) + "</text>";
}

}  // namespace

std::string html_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

json to_json(const evaluation& ev) {
  json classes = json::array();
  for (const auto& c : ev.classes) {
    classes.push_back({{"name", c.name}, {"support", c.support}, {"predicted", c.predicted},
                       {"correct", c.correct}, {"precision", c.precision}, {"recall", c.recall},
                       {"f1", c.f1}});
  }
  json names = json::array();
  for (const auto& c : ev.classes) names.push_back(c.name);
  json bins = json::array();
  for (const auto& b : ev.reliability) {
    bins.push_back({{"lo", b.lo}, {"hi", b.hi}, {"count", b.count},
                    {"mean_confidence", b.mean_confidence}, {"accuracy", b.accuracy}});
  }
  json curve = json::array();
  for (const auto& p : ev.coverage_curve) {
    curve.push_back({{"threshold", p.threshold}, {"coverage", p.coverage}, {"accuracy", p.accuracy},
                     {"count", p.count}});
  }
  const auto& c = ev.cost;
  return {
      {"records", ev.records},
      {"classified", ev.classified},
      {"routed", ev.routed},
      {"escalated", ev.escalated},
      {"dead_lettered", ev.dead_lettered},
      {"reasons", ev.by_reason},
      {"labelled", ev.labelled},
      {"in_scope", ev.in_scope},
      {"category_accuracy", ev.category_accuracy},
      {"category_correct", ev.category_correct},
      {"urgency_labelled", ev.urgency_labelled},
      {"urgency_accuracy", ev.urgency_accuracy},
      {"macro_f1", ev.macro_f1},
      {"classes", classes},
      {"confusion", {{"labels", names}, {"matrix", ev.confusion}}},
      {"ece", ev.ece},
      {"reliability", bins},
      {"coverage_accuracy", curve},
      {"routed_labelled", ev.routed_labelled},
      {"routed_accuracy", ev.routed_accuracy},
      {"escalation_rate", ev.escalation_rate},
      {"out_of_scope", ev.out_of_scope},
      {"out_of_scope_escalated", ev.out_of_scope_escalated},
      {"out_of_scope_escalation", ev.out_of_scope_escalation},
      {"latency", {{"batch", latency_json(ev.batch_latency)},
                   {"ticket", latency_json(ev.ticket_latency)},
                   {"ticket_histogram", {{"lo_ms", ev.ticket_latency_histogram.lo},
                                         {"width_ms", ev.ticket_latency_histogram.width},
                                         {"counts", ev.ticket_latency_histogram.counts}}}}},
      {"cost", {{"frontier_cost_per_call", c.options.frontier_cost_per_call},
                {"slm_cost_per_ticket", c.options.slm_cost_per_ticket},
                {"weekly_volume", c.options.weekly_volume},
                {"auto_routed_share", c.auto_routed_share},
                {"escalated_share", c.escalated_share},
                {"all_frontier_weekly", c.all_frontier_weekly},
                {"cascade_weekly", c.cascade_weekly},
                {"savings_weekly", c.savings_weekly},
                {"savings_share", c.savings_share}}},
  };
}

json to_json(const comparison& c) {
  json changes = json::array();
  for (const auto& x : c.changes) {
    changes.push_back({{"index", x.index}, {"id", x.id}, {"label", x.label},
                       {"category_a", x.category_a}, {"category_b", x.category_b},
                       {"outcome_a", std::string(workers::outcome_name(x.kind_a))},
                       {"outcome_b", std::string(workers::outcome_name(x.kind_b))},
                       {"confidence_a", x.confidence_a}, {"confidence_b", x.confidence_b}});
  }
  return {{"records", c.records},
          {"changed", c.changed},
          {"category_changed", c.category_changed},
          {"outcome_changed", c.outcome_changed},
          {"paired", c.paired},
          {"accuracy_a", c.accuracy_a},
          {"accuracy_b", c.accuracy_b},
          {"difference", c.difference},
          {"ci95", {c.ci_low, c.ci_high}},
          {"ci_method", "normal approximation on paired differences"},
          {"b_fixed", c.b_fixed},
          {"b_broke", c.b_broke},
          {"escalation_rate_a", c.escalation_rate_a},
          {"escalation_rate_b", c.escalation_rate_b},
          {"changes", changes}};
}

json to_json(const report& r) {
  json j = {{"title", r.title}, {"inputs", r.inputs}, {"command", r.command},
            {"run", meta_json(r.meta)}, {"evaluation", to_json(r.eval)}};
  if (r.meta_b) j["run_b"] = meta_json(*r.meta_b);
  if (r.eval_b) j["evaluation_b"] = to_json(*r.eval_b);
  if (r.diff) j["comparison"] = to_json(*r.diff);
  return j;
}

std::string reliability_svg(const evaluation& ev) {
  std::string s = svg_open("reliability-diagram", "Reliability diagram");
  s += axes("confidence", "accuracy", true);
  s += "<line x1=\"" + num(px(0)) + "\" y1=\"" + num(py(0)) + "\" x2=\"" + num(px(1)) + "\" y2=\"" +
       num(py(1)) + "\" stroke=\"#bbb\" stroke-dasharray=\"4 3\"/>";
  for (const auto& b : ev.reliability) {
    if (b.count == 0) continue;
    const double x = px(b.lo), w = (b.hi - b.lo) * W;
    s += "<rect class=\"bin\" x=\"" + num(x + 1) + "\" y=\"" + num(py(b.accuracy)) + "\" width=\"" +
         num(std::max(1.0, w - 2)) + "\" height=\"" + num(b.accuracy * H) +
         "\" fill=\"#4878d0\"><title>" + fmt("[%.2f, ", b.lo) + fmt("%.2f): ", b.hi) +
         std::to_string(b.count) + " tickets, accuracy " + fmt("%.3f", b.accuracy) + ", confidence " +
         fmt("%.3f", b.mean_confidence) + "</title></rect>";
    s += "<circle cx=\"" + num(px(b.mean_confidence)) + "\" cy=\"" + num(py(b.mean_confidence)) +
         "\" r=\"2.5\" fill=\"#d65f5f\"/>";
  }
  s += "<text x=\"" + num(X0 + 6) + "\" y=\"" + num(Y0 + 14) + "\">ECE " + fmt("%.4f", ev.ece) + "</text>";
  return s + "</svg>";
}

std::string coverage_svg(const evaluation& ev, const evaluation* b) {
  std::string s = svg_open("coverage-accuracy", "Coverage-accuracy curve");
  // The y axis starts at the tenth below the lowest accuracy, so curves near 1 stay readable.
  double lowest = 1;
  for (const auto* e : {&ev, b}) {
    if (!e) continue;
    for (const auto& p : e->coverage_curve) {
      if (p.count > 0) lowest = std::min(lowest, p.accuracy);
    }
  }
  const double ylo = std::clamp(std::floor(lowest * 10) / 10, 0.0, 0.9);
  auto py = [ylo](double y) { return Y0 + (1 - (y - ylo) / (1 - ylo)) * H; };
  s += axes("coverage (share auto-routed at threshold)", "accuracy of auto-routed", true, ylo);
  auto line = [&](const evaluation& e, const char* colour, const char* name) {
    std::string pts;
    std::string dots;
    for (const auto& p : e.coverage_curve) {
      if (p.count == 0) continue;
      pts += num(px(p.coverage)) + "," + num(py(p.accuracy)) + " ";
      dots += "<circle class=\"point\" cx=\"" + num(px(p.coverage)) + "\" cy=\"" + num(py(p.accuracy)) +
              "\" r=\"3\" fill=\"" + colour + "\"><title>" + name + ": threshold " +
              fmt("%.2f", p.threshold) + ", coverage " + fmt("%.3f", p.coverage) + ", accuracy " +
              fmt("%.3f", p.accuracy) + "</title></circle>";
    }
    if (!pts.empty()) {
      s += "<polyline fill=\"none\" stroke=\"" + std::string(colour) + "\" stroke-width=\"2\" points=\"" +
           pts + "\"/>";
    }
    s += dots;
  };
  line(ev, "#4878d0", "a");
  if (b) {
    line(*b, "#ee854a", "b");
    s += "<text x=\"" + num(X0 + 6) + "\" y=\"" + num(Y0 + 14) +
         "\" fill=\"#4878d0\">a</text><text x=\"" + num(X0 + 20) + "\" y=\"" + num(Y0 + 14) +
         "\" fill=\"#ee854a\">b</text>";
  }
  return s + "</svg>";
}

std::string confusion_svg(const evaluation& ev) {
  const size_t n = ev.classes.size();
  const double cell = n ? std::clamp(360.0 / static_cast<double>(n), 12.0, 48.0) : 48.0;
  const double left = 110, top = 24;
  const double w = left + cell * static_cast<double>(n) + 20,
               h = top + cell * static_cast<double>(n) + 110;
  std::string s = svg_open("confusion-matrix", "Confusion matrix (rows: label, columns: predicted)",
                           std::max(w, 240.0), std::max(h, 160.0));
  for (size_t i = 0; i < n; ++i) {
    size_t row = 0;
    for (size_t v : ev.confusion[i]) row += v;
    const double y = top + cell * static_cast<double>(i);
    s += "<text x=\"" + num(left - 4) + "\" y=\"" + num(y + cell / 2 + 4) + "\" text-anchor=\"end\">" +
         html_escape(ev.classes[i].name) + "</text>";
    for (size_t j = 0; j < n; ++j) {
      const size_t v = ev.confusion[i][j];
      const double share = row ? static_cast<double>(v) / static_cast<double>(row) : 0.0;
      const int shade = static_cast<int>(255 - share * 200);
      const double x = left + cell * static_cast<double>(j);
      s += "<rect class=\"cell\" x=\"" + num(x) + "\" y=\"" + num(y) + "\" width=\"" + num(cell) +
           "\" height=\"" + num(cell) + "\" fill=\"rgb(" + std::to_string(shade) + "," +
           std::to_string(shade) + ",255)\" stroke=\"#fff\"><title>label " +
           html_escape(ev.classes[i].name) + ", predicted " + html_escape(ev.classes[j].name) + ": " +
           std::to_string(v) + "</title></rect>";
      if (v && cell >= 20) {
        s += "<text x=\"" + num(x + cell / 2) + "\" y=\"" + num(y + cell / 2 + 4) +
             "\" text-anchor=\"middle\">" + std::to_string(v) + "</text>";
      }
    }
  }
  for (size_t j = 0; j < n; ++j) {
    const double x = left + cell * static_cast<double>(j) + cell / 2,
                 y = top + cell * static_cast<double>(n) + 6;
    s += "<text x=\"" + num(x) + "\" y=\"" + num(y) + "\" text-anchor=\"end\" transform=\"rotate(-60 " +
         num(x) + " " + num(y) + ")\">" + html_escape(ev.classes[j].name) + "</text>";
  }
  if (n == 0) s += "<text x=\"20\" y=\"40\">no labelled tickets</text>";
  return s + "</svg>";
}

std::string latency_svg(const evaluation& ev) {
  const auto& hg = ev.ticket_latency_histogram;
  std::string s = svg_open("latency-histogram", "Per-ticket classification latency histogram");
  size_t peak = 0;
  for (size_t c : hg.counts) peak = std::max(peak, c);
  s += "<rect x=\"" + num(X0) + "\" y=\"" + num(Y0) + "\" width=\"" + num(W) + "\" height=\"" + num(H) +
       "\" fill=\"#fafafa\" stroke=\"#888\"/>";
  const size_t n = hg.counts.size();
  for (size_t i = 0; i < n; ++i) {
    const double frac = peak ? static_cast<double>(hg.counts[i]) / static_cast<double>(peak) : 0.0;
    const double bw = W / static_cast<double>(n);
    const double lo = hg.lo + hg.width * static_cast<double>(i);
    s += "<rect class=\"bar\" x=\"" + num(X0 + bw * static_cast<double>(i) + 1) + "\" y=\"" +
         num(Y0 + (1 - frac) * H) + "\" width=\"" + num(std::max(1.0, bw - 2)) + "\" height=\"" +
         num(frac * H) + "\" fill=\"#6acc64\"><title>" + fmt("%.3f", lo) + fmt("-%.3f ms: ", lo + hg.width) +
         std::to_string(hg.counts[i]) + " tickets</title></rect>";
  }
  s += "<text x=\"" + num(X0 - 8) + "\" y=\"" + num(Y0 + 4) + "\" text-anchor=\"end\">" +
       std::to_string(peak) + "</text><text x=\"" + num(X0 - 8) + "\" y=\"" + num(Y0 + H + 4) +
       "\" text-anchor=\"end\">0</text>";
  s += "<text x=\"" + num(X0) + "\" y=\"" + num(Y0 + H + 16) + "\" text-anchor=\"start\">" +
       fmt("%.3f", hg.lo) + "</text><text x=\"" + num(X0 + W) + "\" y=\"" + num(Y0 + H + 16) +
       "\" text-anchor=\"end\">" + fmt("%.3f", hg.lo + hg.width * static_cast<double>(n)) + "</text>";
  s += "<text x=\"" + num(X0 + W / 2) + "\" y=\"" + num(Y0 + H + 34) +
       "\" text-anchor=\"middle\">ms per ticket (batch time / batch size)</text>";
  return s + "</svg>";
}

namespace {

std::string row(const std::string& k, const std::string& v) {
  return "<tr><th>" + html_escape(k) + "</th><td>" + html_escape(v) + "</td></tr>";
}

std::string summary_table(const run_meta& m, const evaluation& ev) {
  std::string s = "<table class=\"summary\">";
  s += row("backend", m.backend) + row("model", m.model_version) + row("adapter", m.adapter_version) +
       row("config", m.config) + row("threshold", fmt("%.4f", m.threshold)) +
       row("records", std::to_string(ev.records)) +
       row("routed / escalated / dead-lettered", std::to_string(ev.routed) + " / " +
                                                     std::to_string(ev.escalated) + " / " +
                                                     std::to_string(ev.dead_lettered)) +
       row("labelled (in scope)", std::to_string(ev.labelled) + " (" + std::to_string(ev.in_scope) + ")") +
       row("category accuracy", fmt("%.4f", ev.category_accuracy)) +
       row("macro-F1", fmt("%.4f", ev.macro_f1)) +
       row("urgency accuracy", fmt("%.4f", ev.urgency_accuracy) + " of " + std::to_string(ev.urgency_labelled)) +
       row("ECE (10 bins)", fmt("%.4f", ev.ece)) +
       row("accuracy of auto-routed", fmt("%.4f", ev.routed_accuracy) + " of " + std::to_string(ev.routed_labelled)) +
       row("escalation rate", pct(ev.escalation_rate)) +
       row("out-of-scope escalated", std::to_string(ev.out_of_scope_escalated) + " of " +
                                         std::to_string(ev.out_of_scope) + " (" + pct(ev.out_of_scope_escalation) + ")") +
       row("batch latency p50 / p90 / p99", fmt("%.3f", ev.batch_latency.p50) + " / " +
                                                fmt("%.3f", ev.batch_latency.p90) + " / " +
                                                fmt("%.3f ms", ev.batch_latency.p99)) +
       row("ticket latency p50 / p90 / p99", fmt("%.3f", ev.ticket_latency.p50) + " / " +
                                                 fmt("%.3f", ev.ticket_latency.p90) + " / " +
                                                 fmt("%.3f ms", ev.ticket_latency.p99));
  const auto& c = ev.cost;
  s += row("weekly volume", fmt("%.0f tickets", c.options.weekly_volume)) +
       row("frontier cost per call / SLM cost per ticket",
           fmt("%.5f", c.options.frontier_cost_per_call) + " / " + fmt("%.5f", c.options.slm_cost_per_ticket)) +
       row("auto-routed / escalated share", pct(c.auto_routed_share) + " / " + pct(c.escalated_share)) +
       row("weekly cost, all frontier", fmt("%.2f", c.all_frontier_weekly)) +
       row("weekly cost, cascade", fmt("%.2f", c.cascade_weekly)) +
       row("weekly savings", fmt("%.2f", c.savings_weekly) + " (" + pct(c.savings_share) + ")");
  return s + "</table>";
}

std::string class_table(const evaluation& ev) {
  std::string s = "<table class=\"classes\"><tr><th>class</th><th>support</th><th>predicted</th>"
                  "<th>precision</th><th>recall</th><th>F1</th></tr>";
  for (const auto& c : ev.classes) {
    s += "<tr><td>" + html_escape(c.name) + "</td><td>" + std::to_string(c.support) + "</td><td>" +
         std::to_string(c.predicted) + "</td><td>" + fmt("%.3f", c.precision) + "</td><td>" +
         fmt("%.3f", c.recall) + "</td><td>" + fmt("%.3f", c.f1) + "</td></tr>";
  }
  return s + "</table>";
}

}  // namespace

std::string to_html(const report& r) {
  std::string s =
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
      "img-src data:\"><title>" + html_escape(r.title) + "</title><style>"
      "body{font-family:sans-serif;margin:2em;color:#222}"
      "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}"
      "svg.chart{font-size:11px;margin:0 1em 1em 0;background:#fff}"
      ".charts{display:flex;flex-wrap:wrap}h2{margin-top:1.5em}"
      "</style></head><body>\n";
  s += "<h1>" + html_escape(r.title) + "</h1>\n<p>Inputs: ";
  for (size_t i = 0; i < r.inputs.size(); ++i) s += (i ? ", " : "") + html_escape(r.inputs[i]);
  s += "</p>\n";
  if (!r.command.empty()) s += "<p><code>" + html_escape(r.command) + "</code></p>\n";
  auto section = [&](const char* heading, const run_meta& m, const evaluation& ev, const evaluation* other) {
    s += "<h2>" + std::string(heading) + "</h2>\n" + summary_table(m, ev) + "\n<div class=\"charts\">" +
         reliability_svg(ev) + coverage_svg(ev, other) + latency_svg(ev) + "</div>\n<div class=\"charts\">" +
         confusion_svg(ev) + "</div>\n<h3>Per class</h3>" + class_table(ev) + "\n";
  };
  if (r.eval_b && r.meta_b) {
    section("Run a", r.meta, r.eval, &*r.eval_b);
    // The second run's charts get their own ids.
    std::string b;
    std::swap(b, s);
    section("Run b", *r.meta_b, *r.eval_b, nullptr);
    std::string part = s;
    for (const char* id : {"reliability-diagram", "coverage-accuracy", "confusion-matrix", "latency-histogram"}) {
      const std::string from = std::string("id=\"") + id + "\"", to = std::string("id=\"") + id + "-b\"";
      if (auto at = part.find(from); at != std::string::npos) part.replace(at, from.size(), to);
    }
    s = b + part;
  } else {
    section("Evaluation", r.meta, r.eval, nullptr);
  }
  if (r.diff) {
    const auto& d = *r.diff;
    s += "<h2>Comparison: b against a</h2><table class=\"comparison\">" +
         row("records", std::to_string(d.records)) +
         row("changed (category or outcome)", std::to_string(d.changed) + " (category " +
                                                 std::to_string(d.category_changed) + ", outcome " +
                                                 std::to_string(d.outcome_changed) + ")") +
         row("paired labelled tickets", std::to_string(d.paired)) +
         row("accuracy a / b", fmt("%.4f", d.accuracy_a) + " / " + fmt("%.4f", d.accuracy_b)) +
         row("difference b - a (95% CI, normal approximation on paired differences)",
             fmt("%+.4f", d.difference) + " [" + fmt("%+.4f", d.ci_low) + ", " + fmt("%+.4f", d.ci_high) + "]") +
         row("b fixed / b broke", std::to_string(d.b_fixed) + " / " + std::to_string(d.b_broke)) +
         row("escalation rate a / b", pct(d.escalation_rate_a) + " / " + pct(d.escalation_rate_b)) + "</table>\n";
    s += "<h3>Changed tickets (first " + std::to_string(d.changes.size()) +
         ")</h3><table class=\"changes\"><tr><th>#</th><th>id</th><th>label</th><th>a</th><th>b</th></tr>";
    for (const auto& c : d.changes) {
      s += "<tr><td>" + std::to_string(c.index) + "</td><td>" + html_escape(c.id) + "</td><td>" +
           html_escape(c.label) + "</td><td>" + html_escape(c.category_a) + " " +
           std::string(workers::outcome_name(c.kind_a)) + fmt(" %.2f", c.confidence_a) + "</td><td>" +
           html_escape(c.category_b) + " " + std::string(workers::outcome_name(c.kind_b)) +
           fmt(" %.2f", c.confidence_b) + "</td></tr>";
    }
    s += "</table>\n";
  }
  s += "<p>Metric definitions: replay/README.md.</p>\n</body></html>\n";
  return s;
}

}  // namespace triage::replay
