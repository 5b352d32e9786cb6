// A loopback HTTP server for pull tests that mimics Hugging Face (tree API, resolve URLs with ETag, Range and
// If-Range) and an OCI registry (token auth, manifests, blobs), with fault injection on file transfers:
// connections cut at given offsets, stalls, corrupted bytes, a file that changes, error statuses, throttling.
#pragma once
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "store/sha256.h"

namespace hearth::test {

inline std::string sha256_hex(const std::string& s) {
  store::Sha256 h;
  h.update(s.data(), s.size());
  return h.hex();
}

class PullServer {
 public:
  struct Fault {
    enum Kind { Cut, Stall, Corrupt, CutAndChange } kind = Cut;
    uint64_t at = 0;            // bytes into this response (Cut, Stall) or absolute file offset (Corrupt)
    int stall_ms = 3000;
    std::string new_content;    // CutAndChange
  };
  struct FileEntry {
    std::shared_ptr<const std::string> content;  // nullptr: virtual (header + zeros up to size)
    std::string header;                           // virtual files: their first bytes
    uint64_t size = 0;
    std::string sha;  // hex
    std::string etag;
  };
  struct Request {
    std::string path;
    std::string range;     // the Range header as sent
    uint64_t start = 0;    // first byte served
    uint64_t sent = 0;     // body bytes written
    int status = 0;
  };

  PullServer() {
    install_routes();
    port_ = svr_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { svr_.listen_after_bind(); });
    for (int i = 0; i < 200 && !svr_.is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ~PullServer() {
    stop_ = true;
    svr_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  // Hugging Face: a file in repo "org/repo" (real content, or a virtual file of `size` bytes starting with header).
  void add_hf_file(const std::string& repo, const std::string& path, std::string content) {
    std::lock_guard<std::mutex> l(mu_);
    hf_[repo][path] = make_entry(std::move(content));
  }
  void add_hf_virtual(const std::string& repo, const std::string& path, std::string header, uint64_t size) {
    std::lock_guard<std::mutex> l(mu_);
    FileEntry e;
    e.header = std::move(header);
    e.size = size;
    e.sha = sha256_hex(e.header + std::to_string(size));  // not the real hash: these are never downloaded whole
    e.etag = "\"" + e.sha + "\"";
    hf_[repo][path] = e;
  }
  // A raw tree answer for a repo (hostile names).
  void set_hf_tree_override(const std::string& repo, const std::string& json) {
    std::lock_guard<std::mutex> l(mu_);
    tree_override_[repo] = json;
  }
  void require_token(const std::string& token) {
    std::lock_guard<std::mutex> l(mu_);
    hf_token_ = token;
  }
  // OCI: repo "ai/gemma4", tag -> layers (media type, content).
  void add_oci(const std::string& repo, const std::string& tag, std::vector<std::pair<std::string, std::string>> layers,
               std::optional<std::string> raw_manifest = std::nullopt) {
    std::lock_guard<std::mutex> l(mu_);
    nlohmann::json man{{"schemaVersion", 2}, {"mediaType", "application/vnd.oci.image.manifest.v1+json"}};
    man["config"] = {{"mediaType", "application/vnd.docker.ai.model.config.v0.1+json"}, {"digest", "sha256:" + std::string(64, '0')}, {"size", 2}};
    man["layers"] = nlohmann::json::array();
    for (auto& [mt, content] : layers) {
      FileEntry e = make_entry(content);
      man["layers"].push_back({{"mediaType", mt}, {"digest", "sha256:" + e.sha}, {"size", e.size}});
      oci_blobs_["sha256:" + e.sha] = e;
    }
    oci_manifests_[repo + ":" + tag] = raw_manifest ? *raw_manifest : man.dump();
  }

  void push_fault(Fault f) {
    std::lock_guard<std::mutex> l(mu_);
    faults_.push_back(std::move(f));
  }
  // Status answered to the next `count` file requests (and Retry-After when > 0).
  void push_status(int status, int count = 1, int retry_after = -1) {
    std::lock_guard<std::mutex> l(mu_);
    for (int i = 0; i < count; ++i) statuses_.push_back({status, retry_after});
  }
  void set_throttle(uint64_t bytes_per_sec) { throttle_ = bytes_per_sec; }
  // Which file requests are downloads (faults and forced statuses apply to them, download_bytes counts them).
  // Default: no Range or an open-ended one (header probes ask for bounded ranges).
  void set_download_filter(std::function<bool(const std::string& range)> f) {
    std::lock_guard<std::mutex> l(mu_);
    is_download_ = std::move(f);
  }
  void replace_hf_file(const std::string& repo, const std::string& path, std::string content) {
    add_hf_file(repo, path, std::move(content));
  }

  std::vector<Request> requests() const {
    std::lock_guard<std::mutex> l(mu_);
    return log_;
  }
  void clear_log() {
    std::lock_guard<std::mutex> l(mu_);
    log_.clear();
  }
  int token_requests() const { return token_requests_; }
  // Body bytes sent for file downloads (open-ended or absent Range: not header probes).
  uint64_t download_bytes() const {
    uint64_t n = 0;
    std::function<bool(const std::string&)> f;
    {
      std::lock_guard<std::mutex> l(mu_);
      f = is_download_;
    }
    for (const Request& r : requests())
      if (f(r.range)) n += r.sent;
    return n;
  }

 private:
  static FileEntry make_entry(std::string content) {
    FileEntry e;
    e.sha = sha256_hex(content);
    e.size = content.size();
    e.etag = "\"" + e.sha + "\"";
    e.content = std::make_shared<const std::string>(std::move(content));
    return e;
  }

  void install_routes() {
    svr_.Get(R"(/api/models/([^/]+)/([^/]+)/tree/main)", [this](const httplib::Request& req, httplib::Response& res) {
      const std::string repo = req.matches[1].str() + "/" + req.matches[2].str();
      std::lock_guard<std::mutex> l(mu_);
      log_.push_back({req.path, "", 0, 0, 0});
      if (!hf_token_.empty() && req.get_header_value("Authorization") != "Bearer " + hf_token_) {
        res.status = 401;
        log_.back().status = 401;
        res.set_content(R"({"error":"Invalid credentials"})", "application/json");
        return;
      }
      if (auto it = tree_override_.find(repo); it != tree_override_.end()) {
        res.set_content(it->second, "application/json");
        return;
      }
      auto it = hf_.find(repo);
      if (it == hf_.end()) {
        res.status = 404;
        log_.back().status = 404;
        res.set_content(R"({"error":"Repository not found"})", "application/json");
        return;
      }
      nlohmann::json tree = nlohmann::json::array();
      for (const auto& [path, e] : it->second)
        tree.push_back({{"type", "file"}, {"path", path}, {"size", e.size}, {"oid", std::string(40, 'a')},
                        {"lfs", {{"oid", e.sha}, {"size", e.size}, {"pointerSize", 134}}}});
      res.set_content(tree.dump(), "application/json");
    });
    svr_.Get(R"(/([^/]+)/([^/]+)/resolve/main/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
      const std::string repo = req.matches[1].str() + "/" + req.matches[2].str();
      FileEntry e;
      {
        std::lock_guard<std::mutex> l(mu_);
        if (!hf_token_.empty() && req.get_header_value("Authorization") != "Bearer " + hf_token_) {
          res.status = 401;
          log_.push_back({req.path, req.get_header_value("Range"), 0, 0, 401});
          return;
        }
        auto r = hf_.find(repo);
        auto f = r == hf_.end() ? decltype(r->second.end()){} : r->second.find(req.matches[3].str());
        if (r == hf_.end() || f == r->second.end()) {
          res.status = 404;
          log_.push_back({req.path, req.get_header_value("Range"), 0, 0, 404});
          return;
        }
        e = f->second;
      }
      serve(req, res, e, repo, req.matches[3].str());
    });
    svr_.Get("/token", [this](const httplib::Request&, httplib::Response& res) {
      ++token_requests_;
      res.set_content(R"({"token":"test-token-123"})", "application/json");
    });
    svr_.Get(R"(/v2/(.+)/manifests/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard<std::mutex> l(mu_);
      log_.push_back({req.path, "", 0, 0, 0});
      if (!authorized(req, res, req.matches[1].str())) return;
      auto it = oci_manifests_.find(req.matches[1].str() + ":" + req.matches[2].str());
      if (it == oci_manifests_.end()) {
        res.status = 404;
        res.set_content(R"({"errors":[{"code":"MANIFEST_UNKNOWN"}]})", "application/json");
        return;
      }
      res.set_content(it->second, "application/vnd.oci.image.manifest.v1+json");
    });
    svr_.Get(R"(/v2/(.+)/blobs/(sha256:[0-9a-f]{64}))", [this](const httplib::Request& req, httplib::Response& res) {
      FileEntry e;
      {
        std::lock_guard<std::mutex> l(mu_);
        if (!authorized(req, res, req.matches[1].str())) {
          log_.push_back({req.path, req.get_header_value("Range"), 0, 0, 401});
          return;
        }
        auto it = oci_blobs_.find(req.matches[2].str());
        if (it == oci_blobs_.end()) {
          res.status = 404;
          log_.push_back({req.path, req.get_header_value("Range"), 0, 0, 404});
          return;
        }
        e = it->second;
      }
      serve(req, res, e, "", "");
    });
  }

  bool authorized(const httplib::Request& req, httplib::Response& res, const std::string& repo) {
    if (req.get_header_value("Authorization") == "Bearer test-token-123") return true;
    res.status = 401;
    res.set_header("WWW-Authenticate", "Bearer realm=\"" + url() + "/token\",service=\"test-registry\",scope=\"repository:" +
                                           repo + ":pull\"");
    res.set_content(R"({"errors":[{"code":"UNAUTHORIZED"}]})", "application/json");
    return false;
  }

  void serve(const httplib::Request& req, httplib::Response& res, const FileEntry& e, const std::string& repo,
             const std::string& path) {
    // We answer Range ourselves (status, Content-Range, If-Range); httplib must not apply it again.
    const std::string range = req.get_header_value("Range");
    const_cast<httplib::Request&>(req).ranges.clear();
    uint64_t start = 0, end = e.size;  // [start, end)
    bool partial = false;
    if (!range.empty()) {
      unsigned long long a = 0, b = 0;
      const std::string if_range = req.get_header_value("If-Range");
      const bool honour = if_range.empty() || if_range == e.etag;
      const int n = std::sscanf(range.c_str(), "bytes=%llu-%llu", &a, &b);
      if (honour && n >= 1) {
        if (a >= e.size) {
          res.status = 416;
          res.set_header("Content-Range", "bytes */" + std::to_string(e.size));
          std::lock_guard<std::mutex> l(mu_);
          log_.push_back({req.path, range, a, 0, 416});
          return;
        }
        start = a;
        if (n == 2) end = std::min<uint64_t>(b + 1, e.size);
        partial = true;
      }
    }
    std::optional<std::pair<int, int>> forced;
    std::optional<Fault> fault;
    size_t log_index;
    {
      std::lock_guard<std::mutex> l(mu_);
      const bool download = is_download_(range);
      if (download && !statuses_.empty()) {
        forced = statuses_.front();
        statuses_.pop_front();
      }
      if (download && !forced && !faults_.empty()) {
        fault = faults_.front();
        faults_.pop_front();
      }
      log_.push_back({req.path, range, start, 0, forced ? forced->first : (partial ? 206 : 200)});
      log_index = log_.size() - 1;
    }
    if (forced) {
      res.status = forced->first;
      if (forced->second >= 0) res.set_header("Retry-After", std::to_string(forced->second));
      res.set_content("{\"error\":\"injected\"}", "application/json");
      return;
    }
    res.status = partial ? 206 : 200;
    res.set_header("ETag", e.etag);
    res.set_header("Accept-Ranges", "bytes");
    if (partial)
      res.set_header("Content-Range", "bytes " + std::to_string(start) + "-" + std::to_string(end - 1) + "/" +
                                          std::to_string(e.size));
    res.set_content_provider(
        size_t(end - start), "application/octet-stream",
        [this, e, start, fault, log_index, repo, path](size_t off, size_t length, httplib::DataSink& sink) {
          const uint64_t pos = start + off;
          size_t n = std::min<size_t>(length, 64 * 1024);
          if (fault && (fault->kind == Fault::Cut || fault->kind == Fault::CutAndChange || fault->kind == Fault::Stall)) {
            if (off >= fault->at) {
              if (fault->kind == Fault::Stall) {
                for (int t = 0; t < fault->stall_ms / 10 && !stop_; ++t) std::this_thread::sleep_for(std::chrono::milliseconds(10));
              }
              if (fault->kind == Fault::CutAndChange) add_hf_file(repo, path, fault->new_content);
              return false;  // connection closed mid-body
            }
            n = std::min<size_t>(n, size_t(fault->at - off));
          }
          if (throttle_.load()) n = std::min<size_t>(n, 16 * 1024);
          std::string chunk(n, '\0');
          if (e.content) {
            chunk = e.content->substr(pos, n);
          } else if (pos < e.header.size()) {
            chunk = e.header.substr(pos, n);
            chunk.resize(n, '\0');
          }
          if (fault && fault->kind == Fault::Corrupt && fault->at >= pos && fault->at < pos + n)
            chunk[size_t(fault->at - pos)] ^= 0x5a;
          if (const uint64_t bps = throttle_.load()) {
            std::this_thread::sleep_for(std::chrono::microseconds(uint64_t(n) * 1000000 / bps));
          }
          if (stop_ || !sink.write(chunk.data(), chunk.size())) return false;
          std::lock_guard<std::mutex> l(mu_);
          log_[log_index].sent += n;
          return true;
        });
  }

  httplib::Server svr_;
  int port_ = 0;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> throttle_{0};
  std::atomic<int> token_requests_{0};
  mutable std::mutex mu_;
  std::map<std::string, std::map<std::string, FileEntry>> hf_;
  std::map<std::string, std::string> tree_override_;
  std::string hf_token_;
  std::map<std::string, std::string> oci_manifests_;
  std::map<std::string, FileEntry> oci_blobs_;
  std::deque<Fault> faults_;
  std::deque<std::pair<int, int>> statuses_;
  std::vector<Request> log_;
  std::function<bool(const std::string&)> is_download_ = [](const std::string& r) { return r.empty() || r.back() == '-'; };
};

}  // namespace hearth::test
