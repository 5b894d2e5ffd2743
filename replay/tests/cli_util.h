// cli_util.h: running `triage replay` as a subprocess in a scratch directory,
// for the CLI tests.
//
//   class my_test : public triage::replay::testing::replay_cli {};
//   auto r = triage("data/demo/tickets.jsonl --backend null");   // rc, stdout, stderr
#pragma once

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "base/csv.h"

namespace triage::replay::testing {

namespace fs = std::filesystem;

struct ran {
  int rc = -1;
  std::string out, err;
};

// The path in single quotes, for the shell.
inline std::string q(const fs::path& p) {
  std::string s = "'";
  s += p.string();
  s += "'";
  return s;
}

inline std::string read(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class replay_cli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / (std::string("replay_cli_test_") + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  ran triage(const std::string& args) {
    const std::string cmd = "cd '" TRIAGE_SOURCE_DIR "' && '" TRIAGE_BINARY "' replay " + args + " > '" +
                            (dir_ / "out").string() + "' 2> '" + (dir_ / "err").string() + "'";
    ran r;
    const int status = std::system(cmd.c_str());
    r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = read(dir_ / "out");
    r.err = read(dir_ / "err");
    return r;
  }
  fs::path dir_;
};

}  // namespace triage::replay::testing
