// `hearth serve` end to end: each test starts the real server on a free loopback port (--port 0; the port is
// read from its first line) with a small synthesised model, and drives it with the Node scripts in
// tests/server/, which use the unmodified official `openai` and `ollama` npm clients (scripts/setup-node-tests.sh
// installs them; without them these tests skip). The server must also stop cleanly on SIGTERM (exit 0; under
// ASan that includes no leaks).
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "run_command.h"
#include "test_data.h"

namespace {

using hearth::test::run_command;
using hearth::test::shell_quote;
namespace fs = std::filesystem;

std::string hearth() { return hearth::test::hearth_binary(); }
std::string node_dir() { return std::string(HEARTH_SOURCE_DIR) + "/tests/server"; }

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Why the Node tests cannot run here, or "" when they can.
std::string node_missing() {
  if (run_command("node --version").status != 0) return "node is not installed (scripts/install-deps.sh installs it)";
  if (!fs::exists(node_dir() + "/node_modules/openai") || !fs::exists(node_dir() + "/node_modules/ollama"))
    return "tests/server/node_modules is missing: run scripts/setup-node-tests.sh (npm ci of the pinned openai and "
           "ollama clients)";
  return "";
}

#define REQUIRE_NODE()                                            \
  do {                                                            \
    if (const std::string why = node_missing(); !why.empty())     \
      GTEST_SKIP() << "server SDK tests skipped: " << why;        \
  } while (0)

// A synthesised model, made once per test process and removed at its exit.
struct TempDir {
  std::string path = ::testing::TempDir() + "/hearth-server-test-" + std::to_string(getpid());
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::string tiny_model() {
  static TempDir tmp;
  static const std::string path = [] {
    const std::string dir = tmp.path;
    fs::create_directories(dir);
    const std::string p = dir + "/tiny.gguf";
    auto r = run_command(hearth() + " synth --preset tiny-dense --wtype Q8_0 --seed 3 -o " + shell_quote(p));
    if (r.status != 0) {
      ADD_FAILURE() << "hearth synth failed: " << r.output;
      return std::string();
    }
    return p;
  }();
  return path;
}

class ServerProcess {
 public:
  // One compute thread per slot by default: the tests share a small machine, and a spinning kernel thread
  // pool that loses its core makes every token wait for the scheduler.
  explicit ServerProcess(const std::vector<std::string>& args, const std::string& threads = "1",
                         const std::string& model = tiny_model()) {
    log_ = ::testing::TempDir() + "/hearth-serve-" + std::to_string(getpid()) + "-" + std::to_string(counter_++) + ".log";
    std::vector<std::string> argv = {hearth(), "serve", model, "--port", "0", "--threads", threads};
    argv.insert(argv.end(), args.begin(), args.end());
    pid_ = fork();
    if (pid_ == 0) {
      const int fd = open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(fd, 1);
      dup2(fd, 2);
      std::vector<char*> cargv;
      for (auto& a : argv) cargv.push_back(a.data());
      cargv.push_back(nullptr);
      execv(cargv[0], cargv.data());
      _exit(127);
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (std::chrono::steady_clock::now() < deadline) {
      const std::string log = read_file(log_);
      // "listening on http://HOST:PORT " (no std::regex: GCC 12 warns inside it under ASan)
      const std::string key = "listening on http://";
      if (const size_t at = log.find(key); at != std::string::npos) {
        const size_t colon = log.find(':', at + key.size());
        const size_t end = log.find_first_not_of("0123456789", colon + 1);
        if (colon != std::string::npos && end != std::string::npos && end > colon + 1) {
          host_ = log.substr(at + key.size(), colon - at - key.size());
          port_ = std::stoi(log.substr(colon + 1, end - colon - 1));
          return;
        }
      }
      int st = 0;
      if (waitpid(pid_, &st, WNOHANG) == pid_) {
        pid_ = -1;
        ADD_FAILURE() << "hearth serve exited at start:\n" << log;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ADD_FAILURE() << "hearth serve did not start in 120 s:\n" << read_file(log_);
  }

  ~ServerProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    std::error_code ec;
    fs::remove(log_, ec);  // failures have printed it already
  }

  bool ok() const { return port_ > 0 && pid_ > 0; }
  int port() const { return port_; }
  std::string url() const { return "http://" + host_ + ":" + std::to_string(port_); }
  std::string log() const { return read_file(log_); }

  // SIGTERM, then the exit status (-1: did not exit within `seconds`, then killed).
  int stop(int seconds = 30) {
    if (pid_ <= 0) return -1;
    kill(pid_, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    while (std::chrono::steady_clock::now() < deadline) {
      int st = 0;
      if (waitpid(pid_, &st, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return -1;
  }

  // Runs a Node script from tests/server against this server.
  hearth::test::CommandResult node(const std::string& script, const std::string& extra_env = "",
                                   const std::string& args = "") const {
    const std::string cmd = "cd " + shell_quote(node_dir()) + " && HEARTH_URL=" + url() + " HEARTH_MODEL=tiny " +
                            extra_env + " node --test-reporter=spec " + script + " " + args;
    return run_command(cmd);
  }

 private:
  static inline int counter_ = 0;
  pid_t pid_ = -1;
  std::string host_;
  int port_ = 0;
  std::string log_;
};

// Copies the `hearth-measure:` lines of a script's output into the test log.
void report(const std::string& output) {
  std::istringstream in(output);
  for (std::string line; std::getline(in, line);)
    if (line.find("hearth-measure:") != std::string::npos) std::printf("    %s\n", line.c_str());
}

double measured(const std::string& output, const std::string& what) {
  const std::string key = "hearth-measure: " + what + " = ";
  const size_t at = output.find(key);
  return at == std::string::npos ? -1 : std::stod(output.substr(at + key.size()));
}

void run_script(const std::vector<std::string>& server_args, const std::string& script, const std::string& env = "") {
  ServerProcess srv(server_args);
  ASSERT_TRUE(srv.ok());
  auto r = srv.node(script, env);
  report(r.output);
  EXPECT_EQ(r.status, 0) << r.output << "\n--- server log ---\n" << srv.log();
  EXPECT_EQ(srv.stop(), 0) << "hearth serve did not stop cleanly on SIGTERM:\n" << srv.log();
}

TEST(Server, OpenAIClient) {
  REQUIRE_NODE();
  run_script({"--parallel", "2", "--ctx", "4096"}, "openai.test.mjs");
}

TEST(Server, OllamaClient) {
  REQUIRE_NODE();
  run_script({"--parallel", "2", "--ctx", "4096"}, "ollama.test.mjs");
}

// 16 streaming clients at once on one slot (the other 15 wait in the engine's queue), disconnects.
TEST(Server, SixteenStreamsAndDisconnects) {
  REQUIRE_NODE();
  run_script({"--parallel", "1", "--ctx", "4096"}, "load.test.mjs");
}

// The same on 4 slots decoding together (continuous batching).
TEST(Server, SixteenStreamsOnFourSlots) {
  REQUIRE_NODE();
  run_script({"--parallel", "4", "--ctx", "4096"}, "load.test.mjs");
}

TEST(Server, HostileRequests) {
  REQUIRE_NODE();
  run_script({"--parallel", "1", "--ctx", "4096"}, "hostile.test.mjs");
}

TEST(Server, ApiKeyAndCors) {
  REQUIRE_NODE();
  run_script({"--api-key", "s3cret-key", "--cors-origin", "http://app.example"}, "auth.test.mjs",
             "HEARTH_KEY=s3cret-key");
}

TEST(Server, Metrics) {
  REQUIRE_NODE();
  run_script({"--parallel", "1"}, "metrics.test.mjs");
}

// The model with the real 262k-token vocabulary (tiny random weights, about 26 MB), made once per process.
std::string real_vocab_model() {
  static const std::string path = [] {
    const std::string vocab = hearth::test::testdata("vocab/ggml-vocab-gemma-4.gguf");
    if (!fs::exists(vocab)) return std::string();
    const std::string p = fs::path(tiny_model()).parent_path().string() + "/real.gguf";
    auto r = run_command(hearth() + " synth --preset tiny-dense --vocab " + shell_quote(vocab) +
                         " --d-model 64 --tied true --wtype Q8_0 --embd-type Q4_0 -o " + shell_quote(p));
    if (r.status != 0) {
      ADD_FAILURE() << "hearth synth failed: " << r.output;
      return std::string();
    }
    return p;
  }();
  return path;
}

// Reported, not asserted: timings on a shared 2-core machine are noisy. The real-vocabulary model when the
// shared vocabulary is there: its 262k-row LM head makes each step read memory like a real model does, which
// is what batching slots saves; the tiny toy-vocabulary model is compute-bound and gains nothing.
TEST(Server, ThroughputFourSlotsVersusOne) {
  REQUIRE_NODE();
  const std::string real = real_vocab_model();
  const std::string model = real.empty() ? tiny_model() : real;
  const std::string id = real.empty() ? "tiny" : "real";
  double tps[2] = {0, 0};
  for (int i = 0; i < 2; ++i) {
    const std::string parallel = i == 0 ? "1" : "4";
    ServerProcess srv({"--parallel", parallel, "--ctx", "2048"}, "2", model);
    ASSERT_TRUE(srv.ok());
    auto r = srv.node("throughput.mjs", "HEARTH_MODEL=" + id, "16 48");
    ASSERT_EQ(r.status, 0) << r.output << srv.log();
    tps[i] = measured(r.output, "throughput tokens/s");
    std::printf("    %s, --parallel %s: %.1f generated tokens/s over 16 concurrent streams\n", id.c_str(),
                parallel.c_str(), tps[i]);
    EXPECT_EQ(srv.stop(), 0) << srv.log();
  }
  if (tps[0] > 0) std::printf("    throughput ratio --parallel 4 / --parallel 1: %.2f\n", tps[1] / tps[0]);
}

TEST(Server, StopsCleanlyWhileStreaming) {
  REQUIRE_NODE();
  ServerProcess srv({"--parallel", "1"});
  ASSERT_TRUE(srv.ok());
  // A long stream in the background, then SIGTERM: the server must exit promptly, with status 0.
  const std::string cmd = "cd " + shell_quote(node_dir()) + " && HEARTH_URL=" + srv.url() +
                          " node -e \"import('./lib.mjs').then(async (l) => { const s = await "
                          "l.openai().chat.completions.create({messages:[{role:'user',content:'go'}],max_tokens:3000,"
                          "stream:true}); for await (const c of s) {} }).catch(() => {})\" >/dev/null 2>&1 &";
  ASSERT_EQ(run_command(cmd).status, 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(srv.stop(20), 0) << srv.log();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("    stopped %.2f s after SIGTERM\n", secs);
  EXPECT_LT(secs, 10);
}

// The real 262k-token Gemma 4 vocabulary (tiny random weights): the demo client end to end.
TEST(Server, RealVocabularyModelThroughTheDemoClient) {
  REQUIRE_NODE();
  HEARTH_REQUIRE_FILE(hearth::test::testdata("vocab/ggml-vocab-gemma-4.gguf"));
  const std::string model = real_vocab_model();
  ASSERT_FALSE(model.empty());
  ServerProcess srv({}, "1", model);
  ASSERT_TRUE(srv.ok());
  auto r = run_command("cd " + shell_quote(node_dir()) + " && node demo.mjs " + srv.url() + " real");
  EXPECT_EQ(r.status, 0) << r.output << srv.log();
  EXPECT_NE(r.output.find("models: real"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("timings: prompt"), std::string::npos) << r.output;
  EXPECT_EQ(srv.stop(), 0) << srv.log();
}

TEST(Server, PsCommandAndVersion) {
  ServerProcess srv({});
  ASSERT_TRUE(srv.ok());
  EXPECT_NE(srv.log().find("listening on http://127.0.0.1:"), std::string::npos) << "binds loopback by default";
  auto r = run_command(hearth() + " ps --port " + std::to_string(srv.port()));
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("tiny"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Q8_0"), std::string::npos) << r.output;
  auto j = run_command(hearth() + " ps --json --port " + std::to_string(srv.port()));
  EXPECT_NE(j.output.find("\"context_length\""), std::string::npos) << j.output;
  EXPECT_EQ(srv.stop(), 0) << srv.log();
  auto gone = run_command(hearth() + " ps --port " + std::to_string(srv.port()));
  EXPECT_NE(gone.status, 0);
  EXPECT_NE(gone.output.find("no hearth server"), std::string::npos) << gone.output;
}

TEST(Server, PortInUseIsAClearError) {
  ServerProcess a({});
  ASSERT_TRUE(a.ok());
  auto r = run_command(hearth() + " serve " + shell_quote(tiny_model()) + " --port " + std::to_string(a.port()));
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("cannot listen"), std::string::npos) << r.output;
  EXPECT_EQ(a.stop(), 0) << a.log();
}

TEST(Server, MissingModelIsAClearError) {
  auto r = run_command(hearth() + " serve /nonexistent/model.gguf --port 0");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("/nonexistent/model.gguf"), std::string::npos) << r.output;
}

}  // namespace

namespace {

// hearth run: a scripted terminal session (stdin is not a terminal: no prompts, no colours).
TEST(Run, ChatsThinksAndLeaves) {
  const std::string input = ::testing::TempDir() + "/hearth-run-input-" + std::to_string(getpid()) + ".txt";
  {
    std::ofstream f(input);
    f << "hello there\n/set think on\n\"\"\"\nline one\nline two\n\"\"\"\n/show thinking\n/nonsense\n/clear\n/bye\n"
      << "never read\n";
  }
  auto r = run_command(hearth() + " run " + shell_quote(tiny_model()) + " -n 40 --seed 1 --threads 1 < " +
                       shell_quote(input));
  fs::remove(input);
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("thinking on"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("thinking)"), std::string::npos) << "second answer counts its thinking tokens\n" << r.output;
  EXPECT_NE(r.output.find("unknown command /nonsense"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("conversation cleared"), std::string::npos) << r.output;
  size_t answers = 0;
  for (size_t p = 0; (p = r.output.find(" tok/s (prompt ", p)) != std::string::npos; ++p) ++answers;
  EXPECT_EQ(answers, 2u) << r.output;
}

}  // namespace
