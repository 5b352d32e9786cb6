// Where tests find shared data and tools. Tests that need them skip with a clear message when absent.
#pragma once
#include <cstdlib>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

namespace hearth::test {

// ../shared/testdata by default; HEARTH_TESTDATA overrides it at run time.
inline std::string testdata_dir() {
  const char* env = std::getenv("HEARTH_TESTDATA");
  return env && *env ? env : HEARTH_TESTDATA_DEFAULT;
}
inline std::string testdata(const std::string& rel) { return testdata_dir() + "/" + rel; }

// ../shared/tools by default; HEARTH_TOOLS overrides it.
inline std::string tools_dir() {
  const char* env = std::getenv("HEARTH_TOOLS");
  return env && *env ? env : HEARTH_TOOLS_DEFAULT;
}

// The llama.cpp reference installed by ../shared/tools/setup-llamacpp.sh (HEARTH_REF_DIR or ~/.cache/hearth-ref).
inline std::string ref_dir() {
  if (const char* env = std::getenv("HEARTH_REF_DIR"); env && *env) return env;
  const char* home = std::getenv("HOME");
  return std::string(home ? home : "/root") + "/.cache/hearth-ref";
}

inline std::string hearth_binary() { return HEARTH_BINARY; }

}  // namespace hearth::test

// Skips the current test when `path` does not exist.
#define HEARTH_REQUIRE_FILE(path)                                                                      \
  do {                                                                                                 \
    if (!std::filesystem::exists(path))                                                                \
      GTEST_SKIP() << "test data not found: " << (path) << " (set HEARTH_TESTDATA to ../shared/testdata)"; \
  } while (0)
