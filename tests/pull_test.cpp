// hearth pull against a loopback server that mimics Hugging Face and an OCI registry, with faults: cut
// connections, SIGKILL of hearth, corrupted bytes, stalls, a file changed between attempts, HTTP errors,
// a full disk, hostile names. And hearth fit on remote references (header only, Range requests counted).
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "fit_header.h"
#include "pull_server.h"
#include "run_command.h"
#include "store/sha256.h"
#include "store/store.h"
#include "test_data.h"

namespace {

namespace fs = std::filesystem;
using hearth::test::PullServer;
using hearth::test::run_command;
using hearth::test::sha256_hex;

class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() / ("hearth-pull-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string str() const { return path_.string(); }

 private:
  static inline int counter_ = 0;
  fs::path path_;
};

std::string read_file(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// A small real GGUF (tiny-dense, Q8_0: about 4 MB), made once.
const std::string& model_bytes() {
  static const std::string bytes = [] {
    const std::string path = fs::temp_directory_path() / ("hearth-pull-model-" + std::to_string(::getpid()) + ".gguf");
    auto r = run_command(hearth::test::hearth_binary() + " synth --preset tiny-dense --wtype Q8_0 -q -o " + path);
    EXPECT_EQ(r.status, 0) << r.output;
    std::string b = read_file(path);
    fs::remove(path);
    return b;
  }();
  return bytes;
}

constexpr const char* kRepo = "test-org/tiny-GGUF";
constexpr const char* kFile = "tiny-Q8_0.gguf";

struct Env {
  TempDir dir;
  std::string store() const { return dir.str() + "/store"; }
  std::string env(const PullServer& s) const {
    return "HEARTH_MODELS=" + store() + " HEARTH_HF_ENDPOINT=" + s.url() +
           " HEARTH_PULL_BACKOFF_MS=20 OLLAMA_MODELS=/nonexistent HF_HUB_CACHE=/nonexistent ";
  }
  std::string pull(const PullServer& s, const std::string& extra = "") const {
    return env(s) + hearth::test::hearth_binary() + " pull hf.co/" + kRepo + ":Q8_0 --no-progress " + extra;
  }
  std::string blob(const std::string& content) const { return store() + "/blobs/sha256-" + sha256_hex(content); }
};

TEST(PullHf, CompletesThroughConnectionsCutAtRandomOffsets) {
  PullServer s;
  const std::string& m = model_bytes();
  s.add_hf_file(kRepo, kFile, m);
  s.add_hf_file(kRepo, "tiny-F16.gguf", "other quant");
  std::mt19937 rng(42);
  for (int i = 0; i < 6; ++i)
    s.push_fault({PullServer::Fault::Cut, 1 + rng() % (m.size() / 6), 0, ""});
  Env e;
  auto r = run_command(e.pull(s, "--json"));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(read_file(e.blob(m)), m);
  EXPECT_FALSE(fs::exists(e.blob(m) + ".partial"));
  const uint64_t sent = s.download_bytes();
  int downloads = 0;
  for (const auto& q : s.requests())
    if (q.path.find("/resolve/") != std::string::npos && (q.range.empty() || q.range.back() == '-')) ++downloads;
  EXPECT_EQ(downloads, 7);  // six cut attempts, each resumed, then the last one completes
  EXPECT_LE(sent, m.size() + m.size() / 10) << "bytes sent " << sent << " for a file of " << m.size();
  const auto j = nlohmann::json::parse(r.output.substr(r.output.rfind("\n{") + 1));
  EXPECT_LE(j["bytes_received"].get<uint64_t>(), m.size() + m.size() / 10);
  std::printf("[ measured ] cut x6: %llu bytes sent by the server, %llu received by hearth, file %zu bytes\n",
              static_cast<unsigned long long>(sent), static_cast<unsigned long long>(j["bytes_received"].get<uint64_t>()),
              m.size());
  // The manifest names the verified blob; list shows it.
  r = run_command(e.env(s) + hearth::test::hearth_binary() + " list --json");
  ASSERT_EQ(r.status, 0) << r.output;
  const auto l = nlohmann::json::parse(r.output);
  ASSERT_EQ(l.size(), 1u);
  EXPECT_EQ(l[0]["name"], std::string("hf.co/") + kRepo + ":Q8_0");
  EXPECT_EQ(l[0]["quant"], "Q8_0");
  // A second pull downloads nothing.
  s.clear_log();
  r = run_command(e.pull(s));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(s.download_bytes(), 0u);
}

TEST(PullHf, ParallelPartsThroughCutConnectionsAndAKill) {
  PullServer s;
  const std::string& m = model_bytes();
  s.add_hf_file(kRepo, kFile, m);
  // Parts ask for bounded ranges; the header probe before the download asks for the first 2 MiB.
  s.set_download_filter([](const std::string& r) { return !r.empty() && r != "bytes=0-2097151"; });
  std::mt19937 rng(7);
  for (int i = 0; i < 4; ++i) s.push_fault({PullServer::Fault::Cut, 1 + rng() % (m.size() / 8), 0, ""});
  Env e;
  auto r = run_command(e.pull(s, "--connections 4 --json"));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(read_file(e.blob(m)), m);
  EXPECT_LE(s.download_bytes(), m.size() + m.size() / 10);
  int parts = 0;
  for (const auto& q : s.requests())
    if (q.path.find("/resolve/") != std::string::npos && q.start > 0) ++parts;
  EXPECT_GE(parts, 3);  // the other three parts start past 0

  // Killed mid-way: the rerun continues every part where it stopped.
  fs::remove_all(e.store());
  s.clear_log();
  s.set_throttle(512 << 10);  // per connection: about 2 s in all
  const std::string partial = e.blob(m) + ".partial";
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::execl("/bin/sh", "sh", "-c", ("exec env " + e.pull(s, "--connections 4") + " >" + e.dir.str() + "/child.log 2>&1").c_str(),
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  for (int i = 0; i < 1000 && s.download_bytes() < m.size() / 3; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ::kill(pid, SIGKILL);
  int st = 0;
  ::waitpid(pid, &st, 0);
  ASSERT_TRUE(WIFSIGNALED(st)) << "exit " << WEXITSTATUS(st) << ": " << read_file(e.dir.str() + "/child.log");
  uint64_t done_at_kill = 0;
  {
    std::ifstream in(partial + ".json");
    const nlohmann::json state = nlohmann::json::parse(in);  // (not a temporary: the loop below views it)
    for (const auto& p : state.at("parts")) done_at_kill += p.at(2).get<uint64_t>();
  }
  EXPECT_GT(done_at_kill, 0u);
  s.set_throttle(0);
  s.clear_log();
  r = run_command(e.pull(s, "--connections 4"));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("resuming 4 parts"), std::string::npos) << r.output;
  EXPECT_EQ(read_file(e.blob(m)), m);
  EXPECT_LE(s.download_bytes(), m.size() - done_at_kill);
  std::printf("[ measured ] 4 parts: killed with %llu of %zu bytes recorded; the rerun downloaded %llu bytes\n",
              static_cast<unsigned long long>(done_at_kill), m.size(),
              static_cast<unsigned long long>(s.download_bytes()));
}

TEST(PullHf, SigkillMidDownloadThenRerunResumes) {
  PullServer s;
  const std::string& m = model_bytes();
  s.add_hf_file(kRepo, kFile, m);
  s.set_throttle(2 << 20);  // 2 MB/s: about 2 s for the whole file
  Env e;
  const std::string partial = e.blob(m) + ".partial";
  const std::string cmd = e.pull(s, "-q");
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::execl("/bin/sh", "sh", "-c", ("exec env " + cmd + " >/dev/null 2>&1").c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  uint64_t at_kill = 0;
  for (int i = 0; i < 1000; ++i) {
    std::error_code ec;
    const uint64_t sz = fs::exists(partial, ec) ? fs::file_size(partial, ec) : 0;
    if (sz >= m.size() / 3) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  int st = 0;
  ::waitpid(pid, &st, 0);
  ASSERT_TRUE(WIFSIGNALED(st));
  ASSERT_TRUE(fs::exists(partial));
  ASSERT_TRUE(fs::exists(partial + ".json"));
  at_kill = fs::file_size(partial);
  ASSERT_GT(at_kill, 0u);
  ASSERT_LT(at_kill, m.size());

  s.set_throttle(0);
  s.clear_log();
  auto r = run_command(e.pull(s));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("resuming at"), std::string::npos) << r.output;
  EXPECT_EQ(read_file(e.blob(m)), m);
  // The rerun asked for the rest only.
  bool saw = false;
  for (const auto& q : s.requests())
    if (q.path.find("/resolve/") != std::string::npos && !q.range.empty() && q.range.back() == '-') {
      EXPECT_EQ(q.range, "bytes=" + std::to_string(at_kill) + "-");
      saw = true;
    }
  EXPECT_TRUE(saw);
  EXPECT_EQ(s.download_bytes(), m.size() - at_kill);
  std::printf("[ measured ] SIGKILL at %llu of %zu bytes; the rerun downloaded %llu bytes\n",
              static_cast<unsigned long long>(at_kill), m.size(), static_cast<unsigned long long>(s.download_bytes()));
}

TEST(PullHf, CorruptedByteIsDetectedDiscardedAndRefetched) {
  PullServer s;
  const std::string& m = model_bytes();
  s.add_hf_file(kRepo, kFile, m);
  s.push_fault({PullServer::Fault::Corrupt, m.size() / 2, 0, ""});
  Env e;
  auto r = run_command(e.pull(s, "--mem-limit 100M"));
  ASSERT_EQ(r.status, 0) << r.output;
  // (and pull warned, from the remote header, that the model will not fit 100 MB)
  EXPECT_NE(r.output.find("will not fit this machine"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("sha256 mismatch"), std::string::npos) << r.output;
  EXPECT_EQ(read_file(e.blob(m)), m);
}

TEST(PullHf, StalledServerIsRetried) {
  PullServer s;
  const std::string& m = model_bytes();
  s.add_hf_file(kRepo, kFile, m);
  s.push_fault({PullServer::Fault::Stall, m.size() / 4, 8000, ""});
  Env e;
  const auto t0 = std::chrono::steady_clock::now();
  auto r = run_command(e.pull(s, "--stall-timeout 1"));
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("retrying"), std::string::npos) << r.output;
  EXPECT_EQ(read_file(e.blob(m)), m);
  EXPECT_LT(secs, 6.0);  // gave up on the stalled connection after about 1 s, not the server's 8 s
  EXPECT_LE(s.download_bytes(), m.size() + m.size() / 10);
}

TEST(PullHf, RemoteFileChangedBetweenAttemptsRestartsCleanly) {
  PullServer s;
  const std::string& m = model_bytes();
  std::string changed = m;
  changed[changed.size() - 1] ^= 1;  // a new upload of the same name
  s.add_hf_file(kRepo, kFile, m);
  s.push_fault({PullServer::Fault::CutAndChange, m.size() * 2 / 5, 0, changed});
  Env e;
  auto r = run_command(e.pull(s));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("changed on the server"), std::string::npos) << r.output;
  // The new file, complete and verified; nothing of the old one appended to it or left behind.
  EXPECT_EQ(read_file(e.blob(changed)), changed);
  EXPECT_FALSE(fs::exists(e.blob(m)));
  EXPECT_FALSE(fs::exists(e.blob(m) + ".partial"));
  hearth::store::Store st(e.store());
  auto sm = st.find(std::string("hf.co/") + kRepo + ":Q8_0");
  ASSERT_TRUE(sm.has_value());
  EXPECT_EQ(sm->manifest.files[0].digest, "sha256:" + sha256_hex(changed));
}

TEST(PullHf, HttpErrorsGiveClearMessages) {
  PullServer s;
  const std::string& m = model_bytes();
  s.add_hf_file(kRepo, kFile, m);
  Env e;
  const std::string h = hearth::test::hearth_binary();
  auto r = run_command(e.env(s) + h + " pull hf.co/nobody/missing:Q8_0 --no-progress");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("not found (HTTP 404)"), std::string::npos) << r.output;
  r = run_command(e.pull(s).replace(e.pull(s).find(":Q8_0"), 5, ":Q2_K"));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("no Q2_K GGUF file (available: Q8_0)"), std::string::npos) << r.output;

  s.push_status(500, 1);  // once: retried
  r = run_command(e.pull(s));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("server error (HTTP 500)"), std::string::npos) << r.output;
  fs::remove_all(e.store());

  s.push_status(500, 3);  // --retries 2: three attempts in all
  r = run_command(e.pull(s, "--retries 2"));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("download failed after 3 attempts: tiny-Q8_0.gguf: server error (HTTP 500)"),
            std::string::npos) << r.output;
  s.push_status(429, 2, 0);
  r = run_command(e.pull(s, "--retries 1"));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("rate limited by the server (HTTP 429)"), std::string::npos) << r.output;
  s.push_status(404, 1);
  r = run_command(e.pull(s));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("not found (HTTP 404)"), std::string::npos) << r.output;
  while (!s.requests().empty()) s.clear_log();

  // A gated repository: 401 without HF_TOKEN, success with it.
  s.require_token("hf_secret");
  r = run_command(e.pull(s));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("authentication required (HTTP 401); set HF_TOKEN"), std::string::npos) << r.output;
  r = run_command("HF_TOKEN=hf_secret " + e.pull(s));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(read_file(e.blob(m)), m);
}

TEST(PullHf, ProgressEventsAsJsonLines) {
  PullServer s;
  const std::string& m = model_bytes();
  s.add_hf_file(kRepo, kFile, m);
  s.set_throttle(8 << 20);  // about half a second: several events
  Env e;
  auto r = run_command("(" + e.pull(s, "--progress-json") + " 2>/dev/null)");  // stdout only
  ASSERT_EQ(r.status, 0) << r.output;
  std::vector<nlohmann::json> ev;
  size_t i = 0;
  while (i < r.output.size()) {
    const size_t j = r.output.find('\n', i);
    ev.push_back(nlohmann::json::parse(r.output.substr(i, j - i)));
    i = j == std::string::npos ? r.output.size() : j + 1;
  }
  ASSERT_GE(ev.size(), 3u) << r.output;
  uint64_t last = 0;
  for (size_t k = 0; k + 1 < ev.size(); ++k) {
    EXPECT_EQ(ev[k]["total"].get<uint64_t>(), m.size());
    EXPECT_GE(ev[k]["completed"].get<uint64_t>(), last);
    last = ev[k]["completed"].get<uint64_t>();
  }
  EXPECT_EQ(ev[0]["status"], "pulling sha256:" + sha256_hex(m));
  EXPECT_EQ(ev[ev.size() - 2]["status"], "done");
  EXPECT_EQ(ev[ev.size() - 2]["completed"].get<uint64_t>(), m.size());
  EXPECT_EQ(ev.back()["status"], "success");
}

TEST(PullHf, NotEnoughDiskFailsBeforeDownloading) {
  PullServer s;
  const std::string& m = model_bytes();
  s.add_hf_file(kRepo, kFile, m);
  Env e;
  auto r = run_command("HEARTH_DISK_FREE=1M " + e.pull(s));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("not enough disk space"), std::string::npos) << r.output;
  EXPECT_EQ(s.download_bytes(), 0u);
}

TEST(PullHf, HostileNamesFromTheServerAreRejected) {
  PullServer s;
  Env e;
  const std::string sha(64, 'a');
  for (const std::string& path : {std::string("../../evil-Q8_0.gguf"), std::string("/etc/evil-Q8_0.gguf"),
                                  std::string("a\\\\..\\\\evil-Q8_0.gguf")}) {
    s.set_hf_tree_override(kRepo, R"([{"type":"file","path":")" + path + R"(","size":10,"lfs":{"oid":")" + sha +
                                      R"(","size":10}}])");
    auto r = run_command(e.pull(s));
    EXPECT_EQ(r.status, 1) << path;
    EXPECT_TRUE(r.output.find("not allowed") != std::string::npos || r.output.find("absolute") != std::string::npos)
        << r.output;
  }
  s.set_hf_tree_override(kRepo, R"([{"type":"file","path":"x-Q8_0.gguf","size":10,"lfs":{"oid":"../../../etc/passwd","size":10}}])");
  auto r = run_command(e.pull(s));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("not a sha256 digest"), std::string::npos) << r.output;
  // OCI manifests with hostile digests.
  s.add_oci("ai/evil", "x", {}, R"({"schemaVersion":2,"layers":[{"mediaType":"application/vnd.docker.ai.gguf.v3",
                                  "digest":"sha256:../../../../tmp/pwn","size":5}]})");
  r = run_command(e.env(s) + hearth::test::hearth_binary() + " pull ai/evil:x --registry " + s.url());
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("not a sha256 digest"), std::string::npos) << r.output;
  // Nothing was written outside the store.
  for (const auto& p : fs::recursive_directory_iterator(e.store()))
    EXPECT_EQ(p.path().string().rfind(e.store(), 0), 0u);
  EXPECT_FALSE(fs::exists("/tmp/pwn"));
}

TEST(PullHf, VisionProjectorAndSplitPartsArePulled) {
  PullServer s;
  const std::string& m = model_bytes();
  const std::string a = m.substr(0, m.size() / 2), b = m.substr(m.size() / 2);
  s.add_hf_file(kRepo, "tiny-Q8_0-00001-of-00002.gguf", a);
  s.add_hf_file(kRepo, "tiny-Q8_0-00002-of-00002.gguf", b);
  s.add_hf_file(kRepo, "mmproj-tiny-F16.gguf", "projector bytes");
  s.add_hf_file(kRepo, "mmproj-tiny-Q8_0.gguf", "other projector");
  Env e;
  auto r = run_command(e.pull(s));
  ASSERT_EQ(r.status, 0) << r.output;
  hearth::store::Store st(e.store());
  auto sm = st.find(std::string("hf.co/") + kRepo + ":Q8_0");
  ASSERT_TRUE(sm.has_value());
  ASSERT_EQ(sm->manifest.files.size(), 3u);
  EXPECT_EQ(sm->manifest.files[0].name, "tiny-Q8_0-00001-of-00002.gguf");
  EXPECT_EQ(sm->manifest.files[1].name, "tiny-Q8_0-00002-of-00002.gguf");
  EXPECT_EQ(sm->manifest.files[2].role, "mmproj");
  EXPECT_EQ(sm->manifest.files[2].name, "mmproj-tiny-F16.gguf");
  EXPECT_EQ(read_file(e.blob(a)), a);
  EXPECT_EQ(read_file(e.blob(b)), b);
  EXPECT_EQ(read_file(e.blob("projector bytes")), "projector bytes");
}

TEST(PullOci, OllamaRegistryNames) {
  PullServer s;
  const std::string& m = model_bytes();
  s.add_oci("library/tinymodel", "q8", {{"application/vnd.ollama.image.model", m},
                                        {"application/vnd.ollama.image.projector", "proj"}});
  Env e;
  auto r = run_command(e.env(s) + hearth::test::hearth_binary() + " pull tinymodel:q8 --no-progress --registry " + s.url());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(read_file(e.blob(m)), m);
  EXPECT_EQ(read_file(e.blob("proj")), "proj");
  hearth::store::Store st(e.store());
  auto sm = st.find("registry.ollama.ai/library/tinymodel:q8");
  ASSERT_TRUE(sm.has_value());
  EXPECT_EQ(sm->manifest.files[1].role, "mmproj");
}

TEST(PullOci, TokenAuthManifestAndBlobs) {
  PullServer s;
  const std::string& m = model_bytes();
  s.add_oci("ai/gemma4", "e2b", {{"application/vnd.docker.ai.gguf.v3", m}});
  s.push_fault({PullServer::Fault::Cut, m.size() / 3, 0, ""});
  Env e;
  auto r = run_command(e.env(s) + hearth::test::hearth_binary() + " pull ai/gemma4:e2b --no-progress --registry " + s.url());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(read_file(e.blob(m)), m);
  EXPECT_GE(s.token_requests(), 1);
  r = run_command(e.env(s) + hearth::test::hearth_binary() + " list --json");
  const auto l = nlohmann::json::parse(r.output);
  ASSERT_EQ(l.size(), 1u);
  EXPECT_EQ(l[0]["name"], "registry-1.docker.io/ai/gemma4:e2b");
  // fit on an OCI reference: header only, with the same token auth.
  r = run_command(e.env(s) + hearth::test::hearth_binary() + " fit ai/gemma4:e2b --json --ctx 64 --registry " + s.url() +
                  " --mem-limit 64G");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_GT(nlohmann::json::parse(r.output)["plan"]["weights"].get<uint64_t>(), 0u);
  fs::remove_all(e.store());
  s.clear_log();
  r = run_command(e.env(s) + hearth::test::hearth_binary() + " fit ai/gemma4:e2b --json --ctx 64 --registry " + s.url());
  ASSERT_TRUE(r.status == 0 || r.status == 3) << r.output;
  int ranges = 0;
  for (const auto& q : s.requests())
    if (!q.range.empty()) ++ranges;
  EXPECT_EQ(ranges, 1);
  EXPECT_EQ(s.download_bytes(), 0u);
  r = run_command(e.env(s) + hearth::test::hearth_binary() + " pull ai/nothing:here --registry " + s.url());
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("HTTP 404"), std::string::npos) << r.output;
}

TEST(PullHf, TwoPullsOfTheSameBlobDoNotClobber) {
  PullServer s;
  const std::string& m = model_bytes();
  s.add_hf_file(kRepo, kFile, m);
  s.set_throttle(4 << 20);
  Env e;
  const std::string out1 = e.dir.str() + "/out1", out2 = e.dir.str() + "/out2";
  auto t1 = std::thread([&] { EXPECT_EQ(run_command(e.pull(s) + " > " + out1).status, 0); });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto t2 = std::thread([&] { EXPECT_EQ(run_command(e.pull(s) + " > " + out2).status, 0); });
  t1.join();
  t2.join();
  EXPECT_EQ(read_file(e.blob(m)), m);
  EXPECT_LE(s.download_bytes(), m.size() + m.size() / 10);  // the second waited, then found the blob
}

// --- hearth fit on remote references: only the header, with few Range requests ---

TEST(FitRemote, HeaderOnlyWithFewRangeRequests) {
  PullServer s;
  Env e;
  const auto& v = hearth::test::kGemma4Variants[3];  // 31B
  auto w = hearth::test::gemma4_header(v);
  uint64_t data = 0;
  const std::vector<uint8_t> hdr = w.bytes(&data);
  const std::string header(hdr.begin(), hdr.end());
  s.add_hf_virtual("google/gemma-4-31B-GGUF", "gemma-4-31B-Q8_0.gguf", header, header.size() + data);
  auto r = run_command(e.env(s) + "HEARTH_MEM_LIMIT=64G " + hearth::test::hearth_binary() +
                       " fit hf.co/google/gemma-4-31B-GGUF:Q8_0 --ctx 32768 --json");
  ASSERT_TRUE(r.status == 0 || r.status == 3) << r.output;
  const auto j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j["plan"]["weights"].get<uint64_t>(), w.weight_bytes());
  EXPECT_EQ(j["plan"]["kv_cache"].get<uint64_t>(), uint64_t(3360) << 20);  // 31B at 32k, see fit_test
  int ranges = 0;
  uint64_t sent = 0;
  for (const auto& q : s.requests())
    if (!q.range.empty()) ++ranges, sent += q.sent;
  EXPECT_LE(ranges, 2);
  EXPECT_LE(sent, uint64_t(4) << 20);
  EXPECT_EQ(j["http_requests"].get<int>(), ranges + 1);  // + the tree listing
  std::printf("[ measured ] remote fit 31B: %d Range request(s), %llu header bytes of a %.1f GB file\n", ranges,
              static_cast<unsigned long long>(sent), double(header.size() + data) / 1e9);

  // Does not fit in 24 GiB: the answer names the largest context and a smaller quant of the repository that fits.
  s.add_hf_virtual("google/gemma-4-31B-GGUF", "gemma-4-31B-Q4_K_M.gguf", header, (header.size() + data) * 55 / 100);
  s.add_hf_virtual("google/gemma-4-31B-GGUF", "gemma-4-31B-Q6_K.gguf", header, (header.size() + data) * 80 / 100);
  r = run_command(e.env(s) + "HEARTH_MEM_LIMIT=24G " + hearth::test::hearth_binary() +
                  " fit hf.co/google/gemma-4-31B-GGUF:Q8_0 --ctx 32768");
  EXPECT_EQ(r.status, 3) << r.output;
  EXPECT_NE(r.output.find("fits: NO"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("a smaller quant that fits at this context: Q4_K_M"), std::string::npos) << r.output;
}

TEST(FitRemote, LargeHeaderGrowsTheRangeAndSplitFilesAreSummed) {
  PullServer s;
  Env e;
  // A header of about 5 MB (a 262144-token vocabulary), split in two files.
  const auto& v = hearth::test::kGemma4Variants[1];  // E4B
  auto full = hearth::test::gemma4_header(v);
  auto p1 = hearth::test::gemma4_header(v);
  std::vector<std::string> toks;
  for (int i = 0; i < 262144; ++i) toks.push_back("tok" + std::to_string(i));
  p1.arr_str("tokenizer.ggml.tokens", toks);
  // Part 2: more tensors (their weights must be counted too).
  hearth::test::HeaderWriter p2;
  p2.str("general.architecture", "gemma4");
  p2.tensor("extra.weight", hearth::gguf::GgmlType::Q8_0, {2560, 4096});
  uint64_t d1 = 0, d2 = 0;
  const std::vector<uint8_t> h1 = p1.bytes(&d1);
  const std::vector<uint8_t> h2 = p2.bytes(&d2);
  s.add_hf_virtual("google/gemma-4-E4B-GGUF", "Q8_0/gemma-4-E4B-Q8_0-00001-of-00002.gguf", std::string(h1.begin(), h1.end()), h1.size() + d1);
  s.add_hf_virtual("google/gemma-4-E4B-GGUF", "Q8_0/gemma-4-E4B-Q8_0-00002-of-00002.gguf", std::string(h2.begin(), h2.end()), h2.size() + d2);
  s.add_hf_file("google/gemma-4-E4B-GGUF", "mmproj-gemma-4-E4B-F16.gguf", "x");
  auto r = run_command(e.env(s) + hearth::test::hearth_binary() + " fit hf.co/google/gemma-4-E4B-GGUF:Q8_0 --json --ctx 4096");
  ASSERT_TRUE(r.status == 0 || r.status == 3) << r.output;
  const auto j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j["plan"]["kv_cache"].get<uint64_t>(), uint64_t(84) << 20);
  EXPECT_EQ(j["plan"]["weights"].get<uint64_t>(), full.weight_bytes() + p2.weight_bytes());
  int ranges = 0;
  uint64_t sent = 0;
  for (const auto& q : s.requests())
    if (!q.range.empty()) ++ranges, sent += q.sent;
  // Part 1: 2 MiB, then 2 more MiB, then 4 more (the header is about 5 MB); part 2: one request of 256 KiB.
  EXPECT_LE(ranges, 5);
  EXPECT_LE(sent, uint64_t(9) << 20);
  EXPECT_EQ(j["http_requests"].get<int>(), ranges + 1);
  std::printf("[ measured ] remote fit E4B split (5 MB header): %d Range requests, %llu bytes\n", ranges,
              static_cast<unsigned long long>(sent));
}

// Ollama's /api/pull on a running `hearth serve`: the store's puller runs behind it, its progress arrives as
// NDJSON and ends with {"status":"success"}; a failing pull ends with an error line (or a 400 unstreamed).
TEST(PullApi, OllamaPullThroughTheServer) {
  PullServer s;
  const std::string& m = model_bytes();
  s.add_hf_file(kRepo, kFile, m);
  s.add_hf_file(kRepo, "tiny-F16.gguf", "other quant");
  Env e;
  const std::string model_file = e.dir.str() + "/served.gguf";
  std::ofstream(model_file, std::ios::binary) << m;
  const std::string log = e.dir.str() + "/serve.log";
  const pid_t pid = fork();
  if (pid == 0) {
    setenv("HEARTH_MODELS", e.store().c_str(), 1);
    setenv("HEARTH_HF_ENDPOINT", s.url().c_str(), 1);
    setenv("HEARTH_PULL_BACKOFF_MS", "20", 1);
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    const std::string bin = hearth::test::hearth_binary();
    execl(bin.c_str(), bin.c_str(), "serve", model_file.c_str(), "--port", "0", "--threads", "1", nullptr);
    _exit(127);
  }
  int port = 0;
  for (int i = 0; i < 3000 && !port; ++i) {
    const std::string text = read_file(log);
    const std::string key = "listening on http://127.0.0.1:";
    if (const size_t at = text.find(key); at != std::string::npos) port = std::atoi(text.c_str() + at + key.size());
    else std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_GT(port, 0) << read_file(log);
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(60, 0);
  const std::string ref = std::string("hf.co/") + kRepo + ":Q8_0";
  auto r = c.Post("/api/pull", nlohmann::json{{"model", ref}}.dump(), "application/json");
  ASSERT_TRUE(r) << "no response";
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(r->get_header_value("Content-Type"), "application/x-ndjson");
  std::vector<nlohmann::json> lines;
  for (size_t pos = 0; pos < r->body.size();) {
    const size_t nl = r->body.find('\n', pos);
    lines.push_back(nlohmann::json::parse(r->body.substr(pos, nl - pos)));
    pos = nl == std::string::npos ? r->body.size() : nl + 1;
  }
  ASSERT_GE(lines.size(), 2u) << r->body;
  EXPECT_EQ(lines.back()["status"], "success") << r->body;
  EXPECT_TRUE(fs::exists(e.blob(m)));
  // Not streamed: one object. A reference that does not exist: a clear error.
  r = c.Post("/api/pull", nlohmann::json{{"model", ref}, {"stream", false}}.dump(), "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(nlohmann::json::parse(r->body)["status"], "success");
  r = c.Post("/api/pull", nlohmann::json{{"model", "hf.co/test-org/missing-GGUF"}, {"stream", false}}.dump(),
             "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400) << r->body;
  EXPECT_NE(r->body.find("error"), std::string::npos) << r->body;
  r = c.Post("/api/pull", nlohmann::json{{"model", "../../etc/passwd"}}.dump(), "application/json");
  ASSERT_TRUE(r);
  EXPECT_NE(r->body.find("error"), std::string::npos) << r->body;
  kill(pid, SIGTERM);
  waitpid(pid, nullptr, 0);
}

}  // namespace
