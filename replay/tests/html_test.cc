// The HTML report in a real browser: headless Chromium loads it with no
// network, no JavaScript errors and no console errors, and its DOM holds each
// chart with its marks. Chromium comes with ops/setup.sh (Debian package
// `chromium`); without it this test fails and says so.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <unistd.h>

#include <gtest/gtest.h>

#include "replay/report.h"

namespace triage::replay {
namespace {

std::string find_chromium() {
  for (const char* name : {"chromium", "chromium-browser", "google-chrome"}) {
    const std::string cmd = std::string("command -v ") + name + " 2>/dev/null";
    if (FILE* p = popen(cmd.c_str(), "r")) {
      char buf[512] = {};
      const bool found = std::fgets(buf, sizeof buf, p) != nullptr;
      pclose(p);
      if (found) {
        std::string path(buf);
        while (!path.empty() && (path.back() == '\n' || path.back() == '\r')) path.pop_back();
        return path;
      }
    }
  }
  return {};
}

std::string read(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

report sample_report() {
  std::vector<scored_ticket> v;
  const char* cats[] = {"cards", "cash", "payments", "top_up"};
  for (int i = 0; i < 40; ++i) {
    scored_ticket s;
    s.truth.category = cats[i % 4];
    s.category = cats[(i % 7 == 0) ? (i + 1) % 4 : i % 4];
    s.confidence = 0.3f + 0.0175f * static_cast<float>(i);
    s.kind = s.confidence >= 0.6f ? workers::outcome::routed : workers::outcome::escalated;
    s.latency_ms = 0.5 + 0.1 * (i % 9);
    s.id = std::string("T") + std::to_string(i);
    v.push_back(s);
  }
  report r;
  r.inputs = {"sample"};
  r.meta = {"a", "null", "m", "a1", "topology/default.yaml", 0.6, 1.0};
  r.eval = evaluate(v, std::vector<double>{4, 5, 6});
  auto w = v;
  for (auto& s : w) s.category = s.truth.category;
  r.meta_b = run_meta{"b", "null", "m", "a2", "topology/default.yaml", 0.6, 1.0};
  r.eval_b = evaluate(w, std::vector<double>{4});
  r.diff = compare(v, w);
  return r;
}

TEST(html_report, renders_in_headless_chromium_without_errors) {
  const std::string chromium = find_chromium();
  ASSERT_FALSE(chromium.empty())
      << "chromium is missing: this test needs headless Chromium to open the HTML report. "
         "Install it with ops/setup.sh (Debian package 'chromium').";

  const auto dir = std::filesystem::temp_directory_path() /
                   (std::string("replay_html_test_") + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::string html = to_html(sample_report());
  // Collect script errors into the DOM, ahead of anything else on the page;
  // the page itself has no scripts, so any error would be the browser's.
  const std::string probe =
      "<script>window.onerror=function(m){document.documentElement.setAttribute('data-js-errors',"
      "(document.documentElement.getAttribute('data-js-errors')||'')+m+'|');};"
      "addEventListener('load',function(){var n=document.querySelectorAll('svg.chart').length;"
      "document.documentElement.setAttribute('data-charts',String(n));});</script>";
  const auto head = html.find("<head>");
  ASSERT_NE(head, std::string::npos);
  html.insert(head + 6, probe);
  // The page's CSP forbids scripts; the probe needs them, so loosen it for the test only.
  const std::string csp = "default-src 'none';";
  if (auto at = html.find(csp); at != std::string::npos) html.replace(at, csp.size(), "default-src 'none'; script-src 'unsafe-inline';");
  {
    std::ofstream out(dir / "report.html");
    out << html;
  }
  const auto dom = dir / "dom.html", log = dir / "stderr.txt";
  const std::string cmd = "'" + chromium + "' --headless --disable-gpu --no-sandbox --no-first-run "
                          "--user-data-dir='" + (dir / "profile").string() + "' "
                          "--enable-logging=stderr --v=0 --virtual-time-budget=2000 --dump-dom 'file://" +
                          (dir / "report.html").string() + "' > '" + dom.string() + "' 2> '" + log.string() + "'";
  const int rc = std::system(cmd.c_str());
  const std::string out = read(dom), err = read(log);
  ASSERT_EQ(rc, 0) << "chromium failed:\n" << err;
  ASSERT_FALSE(out.empty()) << err;

  EXPECT_EQ(out.find("data-js-errors=\""), std::string::npos) << out.substr(0, 400);
  EXPECT_NE(out.find("data-charts=\"8\""), std::string::npos) << "expected 8 charts (4 per run)";
  // Console messages from the page (CONSOLE lines) or a refused load mean trouble.
  for (const char* bad : {":CONSOLE(", "Uncaught", "Refused to", "ERR_"}) {
    EXPECT_EQ(err.find(bad), std::string::npos) << "chromium stderr has '" << bad << "':\n" << err;
  }
  for (const char* id : {"reliability-diagram", "coverage-accuracy", "confusion-matrix", "latency-histogram"}) {
    const auto at = out.find(std::string("id=\"") + id + "\"");
    ASSERT_NE(at, std::string::npos) << id;
    const auto end = out.find("</svg>", at);
    const std::string chart = out.substr(at, end - at);
    // Each chart has its marks in the parsed DOM.
    const char* mark = std::string(id) == "coverage-accuracy" ? "<polyline" : "<rect";
    EXPECT_NE(chart.find(mark), std::string::npos) << id;
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace triage::replay
