#include "store/puller.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <atomic>
#include <mutex>
#include <thread>

#include "store/http.h"
#include "store/sha256.h"
#include "system/hardware.h"

namespace hearth::store {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

std::string http_status_message(long status, const std::string& what) {
  const std::string s = "HTTP " + std::to_string(status);
  if (status == 401) return what + ": authentication required (" + s + "); set HF_TOKEN or log in to the registry";
  if (status == 403) return what + ": access denied (" + s + "); the token may lack access or the license is not accepted";
  if (status == 404) return what + ": not found (" + s + ")";
  if (status == 429) return what + ": rate limited by the server (" + s + ")";
  if (status >= 500) return what + ": server error (" + s + ")";
  return what + ": unexpected " + s;
}

namespace {
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

struct Part {
  uint64_t start = 0, end = 0, done = 0;  // [start, end); done bytes from start are on disk
};

struct State {
  std::string url, etag, last_modified, digest;
  uint64_t size = 0;
  std::vector<Part> parts;  // parallel mode only
};

std::optional<State> read_state(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  try {
    const auto j = nlohmann::json::parse(in);
    State s;
    s.url = j.value("url", "");
    s.etag = j.value("etag", "");
    s.last_modified = j.value("last_modified", "");
    s.digest = j.value("digest", "");
    s.size = j.value("size", uint64_t(0));
    if (j.contains("parts"))
      for (const auto& p : j["parts"]) {
        Part q{p.at(0).get<uint64_t>(), p.at(1).get<uint64_t>(), p.at(2).get<uint64_t>()};
        if (q.start > q.end || q.end > s.size || q.done > q.end - q.start) return std::nullopt;
        s.parts.push_back(q);
      }
    return s;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

void write_state(const std::string& path, const State& s) {
  nlohmann::json j{{"url", s.url}, {"etag", s.etag}, {"last_modified", s.last_modified}, {"digest", s.digest},
                   {"size", s.size}};
  if (!s.parts.empty()) {
    j["parts"] = nlohmann::json::array();
    for (const Part& p : s.parts) j["parts"].push_back({p.start, p.end, p.done});
  }
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << j.dump() << "\n";
  }
  std::rename(tmp.c_str(), path.c_str());
}

// A validator usable in If-Range: a strong ETag, else Last-Modified.
std::string validator(const State& s) {
  if (!s.etag.empty() && s.etag.rfind("W/", 0) != 0) return s.etag;
  return s.last_modified;
}

class ProgressBar {
 public:
  ProgressBar(const PullOptions& o, const std::string& name, const std::string& digest, uint64_t total)
      : o_(o), name_(name), digest_(digest), total_(total) {}
  void update(uint64_t done, const char* status, bool force = false) {
    const auto now = Clock::now();
    if (!force && now - last_ < std::chrono::milliseconds(100)) return;
    last_ = now;
    samples_.push_back({now, done});
    while (samples_.size() > 2 && now - samples_.front().first > std::chrono::seconds(5)) samples_.erase(samples_.begin());
    const double dt = std::chrono::duration<double>(now - samples_.front().first).count();
    const double rate = dt > 0 ? double(done - std::min(done, samples_.front().second)) / dt : 0;
    if (o_.on_progress) o_.on_progress({name_, digest_, done, total_, rate, status});
    if (!o_.progress_bar) return;
    const double frac = total_ ? double(done) / double(total_) : 0;
    const int width = 30, fill = int(frac * width);
    std::string bar(size_t(fill), '#');
    bar.resize(size_t(width), '.');
    char eta[32] = "--";
    if (rate > 0 && total_ > done) {
      const long s = long(double(total_ - done) / rate);
      std::snprintf(eta, sizeof eta, "%ldm%02lds", s / 60, s % 60);
    }
    std::fprintf(stderr, "\r%-28.28s [%s] %5.1f%% %10s / %-10s %10s/s ETA %-8s %s", name_.c_str(), bar.c_str(),
                 frac * 100, system::format_bytes(done).c_str(), system::format_bytes(total_).c_str(),
                 system::format_bytes(uint64_t(rate)).c_str(), eta, status);
    if (force) std::fprintf(stderr, "\n");
    std::fflush(stderr);
  }

 private:
  const PullOptions& o_;
  std::string name_, digest_;
  uint64_t total_;
  Clock::time_point last_{};
  std::vector<std::pair<Clock::time_point, uint64_t>> samples_;
};

// "bytes 100-199/1000" -> (100, 1000); nullopt if malformed.
std::optional<std::pair<uint64_t, uint64_t>> content_range(const std::string& v) {
  unsigned long long a = 0, b = 0, t = 0;
  if (std::sscanf(v.c_str(), "bytes %llu-%llu/%llu", &a, &b, &t) != 3) return std::nullopt;
  return std::pair<uint64_t, uint64_t>{a, t};
}

// Parallel ranged parts into a preallocated partial. Returns normally when every part is complete; throws
// RemoteChanged / Error like the single-stream path.
void download_parts(const BlobSource& src, const PullOptions& opt, int fd, State& st, const std::string& state_path,
                    ProgressBar& bar, PullStats& stats) {
  std::mutex mu;
  std::atomic<bool> abort{false};
  std::string fatal;
  bool changed = false;
  auto total_done = [&] {
    uint64_t n = 0;
    for (const Part& p : st.parts) n += p.done;
    return n;
  };
  auto save = [&] { write_state(state_path, st); };
  Clock::time_point last_save = Clock::now();
  auto worker = [&](size_t idx) {
    int failures = 0;
    while (!abort) {
      uint64_t from, to;
      std::string val;
      {
        std::lock_guard<std::mutex> l(mu);
        const Part& p = st.parts[idx];
        if (p.start + p.done >= p.end) return;
        from = p.start + p.done;
        to = p.end;
        val = validator(st);
      }
      HttpRequest rq;
      rq.url = src.url;
      rq.headers = src.headers;
      rq.stall_timeout_s = opt.stall_timeout_s;
      rq.headers.push_back("Range: bytes=" + std::to_string(from) + "-" + std::to_string(to - 1));
      if (!val.empty()) rq.headers.push_back("If-Range: " + val);
      bool first = true;
      uint64_t progressed = 0;
      std::string why;
      const HttpResult r = http_get(rq, [&](const HttpResult& res, const char* data, size_t n) -> bool {
        if (abort) return false;
        if (first) {
          first = false;
          const auto cr = res.headers.find("content-range");
          const auto range = cr == res.headers.end() ? std::nullopt : content_range(cr->second);
          const auto et = res.headers.find("etag");
          const std::string etag = et == res.headers.end() ? "" : et->second;
          std::lock_guard<std::mutex> l(mu);
          if (res.status != 206 || !range || range->first != from || range->second != src.size ||
              (!st.etag.empty() && !etag.empty() && etag != st.etag)) {
            // A 200 to a ranged If-Range request: the file changed (or the server cannot do ranges).
            changed = true;
            abort = true;
            return false;
          }
          if (st.etag.empty() && !etag.empty()) st.etag = etag;
        }
        std::lock_guard<std::mutex> l(mu);
        Part& p = st.parts[idx];
        if (p.start + p.done + n > p.end) {
          why = "the server sent more bytes than asked";
          return false;
        }
        size_t w = 0;
        while (w < n) {
          const ssize_t k = ::pwrite(fd, data + w, n - w, off_t(p.start + p.done + w));
          if (k <= 0) {
            fatal = std::string("write failed: ") + std::strerror(errno);
            abort = true;
            return false;
          }
          w += size_t(k);
        }
        p.done += n;
        progressed += n;
        const uint64_t all = total_done();
        if (Clock::now() - last_save > std::chrono::milliseconds(250)) {  // progress survives a kill
          save();
          last_save = Clock::now();
        }
        bar.update(all, "downloading");
        return true;
      });
      {
        std::lock_guard<std::mutex> l(mu);
        ++stats.requests;
        stats.bytes_received += r.status >= 200 && r.status < 300 ? r.body_bytes : 0;
        save();
        if (abort) return;
        if (r.status == 401 || r.status == 403 || r.status == 404 || r.status == 410) {
          fatal = http_status_message(r.status, src.name + " (" + src.url + ")");
          abort = true;
          return;
        }
        const Part& p = st.parts[idx];
        if (p.start + p.done >= p.end) return;
        if (why.empty()) why = r.status >= 300 ? http_status_message(r.status, src.name)
                               : !r.transport_ok() ? r.curl_error : "the transfer ended early";
        failures = progressed > 0 ? 1 : failures + 1;
        if (failures > opt.max_retries) {
          fatal = src.name + ": download failed after " + std::to_string(stats.requests) + " attempts: " + why;
          abort = true;
          return;
        }
        ++stats.retries;
        std::fprintf(stderr, "%s (part %zu): %s; retrying\n", src.name.c_str(), idx + 1, why.c_str());
      }
      long delay = std::min(30000L, long(opt.backoff_ms) << std::min(failures - 1, 5));
      if (auto ra = r.headers.find("retry-after"); ra != r.headers.end())
        delay = std::max(delay, std::min(30000L, std::atol(ra->second.c_str()) * 1000));
      for (long t = 0; t < delay && !abort; t += 10) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  };
  std::vector<std::thread> threads;
  for (size_t i = 0; i < st.parts.size(); ++i) threads.emplace_back(worker, i);
  for (std::thread& t : threads) t.join();
  if (changed) throw RemoteChanged(src.name + ": the file changed on the server (new ETag); starting over");
  if (!fatal.empty()) throw Error(fatal);
}
}  // namespace

PullStats download_blob(const Store& store, const BlobSource& src, const PullOptions& opt_in) {
  PullOptions opt = opt_in;
  if (const char* e = std::getenv("HEARTH_PULL_BACKOFF_MS"); e && *e) opt.backoff_ms = std::max(0, std::atoi(e));
  PullStats stats;
  if (src.size == 0) throw Error(src.name + ": the server did not give the file's size");
  const std::string blob = store.blob_path(src.digest);
  const std::string want_hex = digest_hex(src.digest);
  const std::string partial = blob + ".partial";
  const std::string state_path = partial + ".json";

  // One pull per blob at a time.
  Fd lock(::open((blob + ".lock").c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644));
  if (lock.get() < 0) throw Error("cannot create the lock file for " + src.name + ": " + std::strerror(errno));
  if (::flock(lock.get(), LOCK_EX | LOCK_NB) != 0) {
    std::fprintf(stderr, "%s: another hearth is downloading this file; waiting for it\n", src.name.c_str());
    if (::flock(lock.get(), LOCK_EX) != 0) throw Error("cannot lock " + blob + ".lock");
  }
  if (fs::is_regular_file(blob)) {
    stats.already_present = true;
    return stats;
  }

  // Resume state: only a partial of this very digest, recorded with its validator, is resumed.
  State st;
  uint64_t offset = 0;
  if (auto old = read_state(state_path); old && old->digest == src.digest && fs::exists(partial)) {
    st = *old;
    offset = st.parts.empty() ? fs::file_size(partial) : 0;
    if (offset > src.size) offset = 0;
    if (!st.parts.empty() && (st.size != src.size || fs::file_size(partial) != src.size)) st.parts.clear();
  }
  const bool parallel = !st.parts.empty() || (offset == 0 && opt.connections > 1 &&
                                              src.size >= uint64_t(opt.connections) << 20);
  st.url = src.url;
  st.digest = src.digest;
  st.size = src.size;
  Fd fd(::open(partial.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
  if (fd.get() < 0) throw Error("cannot create '" + partial + "': " + std::strerror(errno));
  if (!parallel || st.parts.empty()) {
    if (::ftruncate(fd.get(), off_t(offset)) != 0) throw Error("cannot truncate '" + partial + "'");
    if (offset == 0) st.etag.clear(), st.last_modified.clear();
  }
  if (parallel && st.parts.empty()) {
    const uint64_t n = uint64_t(opt.connections), chunk = (src.size + n - 1) / n;
    for (uint64_t a = 0; a < src.size; a += chunk) st.parts.push_back({a, std::min(src.size, a + chunk), 0});
  }
  write_state(state_path, st);
  uint64_t resumed = offset;
  for (const Part& p : st.parts) resumed += p.done;
  stats.resumed_from = resumed;

  // Disk space, before the first request.
  const uint64_t need = src.size - resumed, free = store.free_space();
  if (need > free)
    throw Error("not enough disk space for " + src.name + " in " + store.root() + ": " + system::format_bytes(need) +
                " needed, " + system::format_bytes(free) + " free");

  Sha256 hash;
  if (offset) {
    std::fprintf(stderr, "%s: resuming at %s of %s\n", src.name.c_str(), system::format_bytes(offset).c_str(),
                 system::format_bytes(src.size).c_str());
    std::ifstream in(partial, std::ios::binary);
    std::vector<char> buf(1 << 20);
    uint64_t left = offset;
    while (left) {
      in.read(buf.data(), std::streamsize(std::min<uint64_t>(left, buf.size())));
      const size_t got = size_t(in.gcount());
      if (!got) throw Error("cannot read '" + partial + "'");
      hash.update(buf.data(), got);
      left -= got;
    }
  }
  auto restart_from_zero = [&] {
    if (::ftruncate(fd.get(), 0) != 0) throw Error("cannot truncate '" + partial + "'");
    offset = 0;
    hash.hex();  // resets
  };

  ProgressBar bar(opt, src.name, src.digest, src.size);
  if (parallel) {
    if (resumed)
      std::fprintf(stderr, "%s: resuming %zu parts at %s of %s\n", src.name.c_str(), st.parts.size(),
                   system::format_bytes(resumed).c_str(), system::format_bytes(src.size).c_str());
    if (::ftruncate(fd.get(), off_t(src.size)) != 0) throw Error("cannot allocate '" + partial + "'");
    try {
      download_parts(src, opt, fd.get(), st, state_path, bar, stats);
    } catch (const RemoteChanged&) {
      std::remove(partial.c_str());
      std::remove(state_path.c_str());
      throw;
    }
    bar.update(src.size, "verifying", true);
    ::fdatasync(fd.get());
    if (sha256_file(partial) == want_hex) {
      if (std::rename(partial.c_str(), blob.c_str()) != 0)
        throw Error("cannot move '" + partial + "' into the store: " + std::strerror(errno));
      std::remove(state_path.c_str());
      return stats;
    }
    // Corrupted data somewhere: discard it and fetch once more in one stream (below).
    std::fprintf(stderr, "%s: sha256 mismatch after the parallel download; discarding the data\n", src.name.c_str());
    st.parts.clear();
    st.etag.clear(), st.last_modified.clear();
    if (::ftruncate(fd.get(), 0) != 0) throw Error("cannot truncate '" + partial + "'");
    write_state(state_path, st);
  }
  int failures = 0;
  bool verified_once = false;
  while (true) {
    if (offset == src.size) {
      bar.update(offset, "verifying", false);
      ::fdatasync(fd.get());
      const std::string got = hash.hex();
      if (got == want_hex) break;
      // Corrupted bytes somewhere (or a server that changed the file without changing its validator):
      // discard everything and fetch once more from zero.
      std::fprintf(stderr, "%s: sha256 mismatch (expected %s, got %s); discarding the data\n", src.name.c_str(),
                   want_hex.c_str(), got.c_str());
      restart_from_zero();
      st.etag.clear(), st.last_modified.clear();
      write_state(state_path, st);
      if (verified_once) {
        std::remove(partial.c_str());
        std::remove(state_path.c_str());
        throw RemoteChanged(src.name + ": the downloaded data does not match its sha256 " + want_hex +
                            " twice; the remote file differs from its manifest");
      }
      verified_once = true;
      continue;
    }
    HttpRequest rq;
    rq.url = src.url;
    rq.headers = src.headers;
    rq.stall_timeout_s = opt.stall_timeout_s;
    const std::string val = validator(st);
    if (offset > 0) {
      rq.headers.push_back("Range: bytes=" + std::to_string(offset) + "-");
      if (!val.empty()) rq.headers.push_back("If-Range: " + val);
    }
    bool first = true;
    std::string abort_reason;
    bool changed = false;
    uint64_t progressed = 0;
    auto sink = [&](const HttpResult& r, const char* data, size_t n) -> bool {
      if (first) {
        first = false;
        const auto etag = r.headers.find("etag");
        const auto lm = r.headers.find("last-modified");
        const std::string new_etag = etag == r.headers.end() ? "" : etag->second;
        if (r.status == 206) {
          const auto cr = r.headers.find("content-range");
          const auto range = cr == r.headers.end() ? std::nullopt : content_range(cr->second);
          if (!range || range->first != offset || range->second != src.size) {
            abort_reason = "the server answered a range request with the wrong range";
            restart_from_zero();
            return false;
          }
        } else if (r.status == 200) {
          if (offset > 0) {
            // The server ignored the range, or If-Range found the file changed: never append.
            if (!st.etag.empty() && !new_etag.empty() && new_etag != st.etag) changed = true;
            restart_from_zero();
            if (changed) return false;
          }
        }
        if (!st.etag.empty() && !new_etag.empty() && new_etag != st.etag) {
          changed = true;
          restart_from_zero();
          return false;
        }
        st.etag = new_etag;
        st.last_modified = lm == r.headers.end() ? "" : lm->second;
        write_state(state_path, st);
      }
      if (offset + n > src.size) {
        abort_reason = "the server sent more bytes than the file has";
        restart_from_zero();
        return false;
      }
      size_t done = 0;
      while (done < n) {
        const ssize_t w = ::pwrite(fd.get(), data + done, n - done, off_t(offset + done));
        if (w <= 0) {
          abort_reason = std::string("write to '") + partial + "' failed: " + std::strerror(errno);
          return false;
        }
        done += size_t(w);
      }
      hash.update(data, n);
      // Bytes on disk survive a power cut too: flush every 64 MiB (a resume then re-hashes what is there).
      if ((offset >> 26) != ((offset + n) >> 26)) ::fdatasync(fd.get());
      offset += n;
      progressed += n;
      bar.update(offset, "downloading");
      return true;
    };
    const HttpResult r = http_get(rq, sink);
    ++stats.requests;
    stats.bytes_received += r.status >= 200 && r.status < 300 ? r.body_bytes : 0;
    if (changed) {
      std::remove(partial.c_str());
      std::remove(state_path.c_str());
      throw RemoteChanged(src.name + ": the file changed on the server (new ETag); starting over");
    }
    if (!abort_reason.empty() && abort_reason.rfind("write to", 0) == 0) throw Error(abort_reason);
    if (r.status == 401 || r.status == 403 || r.status == 404 || r.status == 410)
      throw Error(http_status_message(r.status, src.name + " (" + src.url + ")"));
    if (r.status == 416) {  // our offset is not inside the file (it shrank?): start over
      restart_from_zero();
      st.etag.clear();
      continue;
    }
    if (r.transport_ok() && (r.status == 200 || r.status == 206) && offset == src.size) continue;  // verify
    // Anything else is transient: retry with backoff.
    std::string why;
    if (!abort_reason.empty()) why = abort_reason;
    else if (r.status >= 300 && !(r.status == 200 || r.status == 206)) why = http_status_message(r.status, src.name);
    else if (!r.transport_ok()) why = r.curl_error;
    else why = "the transfer ended early";
    failures = progressed > 0 ? 1 : failures + 1;
    if (failures > opt.max_retries)
      throw Error(src.name + ": download failed after " + std::to_string(stats.requests) + " attempts: " + why);
    ++stats.retries;
    ::fdatasync(fd.get());
    long delay = long(opt.backoff_ms) << std::min(failures - 1, 5);
    delay = std::min(delay, 30000L);
    if (auto ra = r.headers.find("retry-after"); ra != r.headers.end())
      delay = std::max(delay, std::min(30000L, std::atol(ra->second.c_str()) * 1000));
    if (opt.progress_bar) std::fprintf(stderr, "\n");
    std::fprintf(stderr, "%s: %s; retrying in %.1f s (at %s of %s)\n", src.name.c_str(), why.c_str(), double(delay) / 1000,
                 system::format_bytes(offset).c_str(), system::format_bytes(src.size).c_str());
    bar.update(offset, "retrying", false);
    std::this_thread::sleep_for(std::chrono::milliseconds(delay));
  }
  bar.update(offset, "done", true);
  if (::fsync(fd.get()) != 0) throw Error("cannot flush '" + partial + "'");
  if (std::rename(partial.c_str(), blob.c_str()) != 0)
    throw Error("cannot move '" + partial + "' into the store: " + std::strerror(errno));
  std::remove(state_path.c_str());
  return stats;
}

}  // namespace hearth::store
