// The JSON report carries the metrics; the HTML page holds every chart inline,
// escapes what it shows, and refers to nothing outside itself.
#include "replay/report.h"

#include <regex>

#include <gtest/gtest.h>

namespace triage::replay {
namespace {

std::vector<scored_ticket> sample() {
  auto t = [](const char* label, const char* pred, float conf, workers::outcome k) {
    scored_ticket s;
    s.truth.category = label;
    s.category = pred;
    s.confidence = conf;
    s.kind = k;
    s.latency_ms = conf;
    s.id = std::string("id-") + label;
    return s;
  };
  return {t("cards", "cards", 0.9f, workers::outcome::routed),
          t("cards", "<b>&x", 0.4f, workers::outcome::escalated),
          t("cash", "cash", 0.7f, workers::outcome::routed)};
}

report make_report(bool with_b) {
  report r;
  r.inputs = {"in.jsonl"};
  r.meta = {"a", "null", "m", "a1", "topology/default.yaml", 0.5, 1.0};
  r.eval = evaluate(sample(), std::vector<double>{1.5, 2.5});
  if (with_b) {
    auto b = sample();
    b[1].category = "cards";
    r.meta_b = run_meta{"b", "null", "m", "a2", "topology/default.yaml", 0.5, 1.0};
    r.eval_b = evaluate(b, std::vector<double>{1.0});
    r.diff = compare(sample(), b);
  }
  return r;
}

TEST(report, json_carries_the_metrics) {
  const auto j = to_json(make_report(true));
  const auto& ev = j.at("evaluation");
  EXPECT_EQ(ev.at("records"), 3);
  EXPECT_NEAR(ev.at("category_accuracy").get<double>(), 2.0 / 3, 1e-12);
  EXPECT_EQ(ev.at("confusion").at("labels").size(), 3u);
  EXPECT_EQ(ev.at("coverage_accuracy").size(), 21u);
  EXPECT_EQ(ev.at("latency").at("batch").at("count"), 2);
  EXPECT_NEAR(ev.at("cost").at("escalated_share").get<double>(), 1.0 / 3, 1e-12);
  EXPECT_EQ(j.at("run").at("adapter_version"), "a1");
  EXPECT_EQ(j.at("run_b").at("adapter_version"), "a2");
  const auto& c = j.at("comparison");
  EXPECT_EQ(c.at("changed"), 1);
  EXPECT_NEAR(c.at("difference").get<double>(), 1.0 / 3, 1e-12);
  EXPECT_EQ(c.at("ci95").size(), 2u);
  EXPECT_EQ(c.at("changes").at(0).at("category_b"), "cards");
}

TEST(report, html_is_self_contained_with_every_chart) {
  const std::string html = to_html(make_report(true));
  for (const char* id : {"reliability-diagram", "coverage-accuracy", "confusion-matrix", "latency-histogram",
                         "reliability-diagram-b", "confusion-matrix-b"}) {
    EXPECT_NE(html.find(std::string("<svg class=\"chart\" id=\"") + id + "\""), std::string::npos) << id;
  }
  // Escaped, never raw markup from the data.
  EXPECT_EQ(html.find("<b>&x"), std::string::npos);
  EXPECT_NE(html.find("&lt;b&gt;&amp;x"), std::string::npos);
  // Nothing fetched: no src/href attributes, no URLs but the SVG namespace.
  EXPECT_EQ(html.find(" src="), std::string::npos);
  EXPECT_EQ(html.find(" href="), std::string::npos);
  EXPECT_EQ(html.find("@import"), std::string::npos);
  const std::regex url("(https?:)?//[a-z]");
  for (std::sregex_iterator it(html.begin(), html.end(), url), end; it != end; ++it) {
    EXPECT_EQ(html.compare(static_cast<size_t>(it->position()), 26, "http://www.w3.org/2000/svg"), 0)
        << html.substr(static_cast<size_t>(it->position()), 40);
  }
  // The confusion matrix has one cell per (label, prediction) pair: 3 x 3.
  const auto conf = confusion_svg(make_report(false).eval);
  size_t cells = 0;
  for (size_t at = 0; (at = conf.find("class=\"cell\"", at)) != std::string::npos; ++at) ++cells;
  EXPECT_EQ(cells, 9u);
  // Comparison section with its interval method.
  EXPECT_NE(html.find("normal approximation on paired differences"), std::string::npos);
}

}  // namespace
}  // namespace triage::replay
