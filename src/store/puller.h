// Downloads one blob into the store so that no interruption loses or corrupts anything:
//
// * bytes go to blobs/sha256-<hex>.partial; blobs/sha256-<hex>.partial.json records the URL and the server's
//   validator (ETag / Last-Modified). Both survive crashes, kills and reboots; a later pull resumes with
//   `Range: bytes=<partial size>-` and `If-Range: <validator>`, after re-hashing the partial (sha256 is
//   computed while streaming, so the existing prefix is hashed once on resume).
// * a changed remote file (a 200 instead of a 206, or a different ETag) is never appended to old bytes: the
//   partial is discarded and RemoteChanged is thrown so that the caller resolves the reference again.
// * errors and stalls (no byte for stall_timeout_s) are retried with exponential backoff (Retry-After is
//   honoured); an attempt that made progress resets the retry count. 401/403/404 fail at once, clearly.
// * the disk-space check happens before the first byte is requested.
// * a lock file per blob (flock) makes a second pull of the same blob wait instead of clobbering.
// * the blob becomes visible only after its sha256 matched (Store::publish-style atomic rename).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/error.h"
#include "store/store.h"

namespace hearth::store {

class RemoteChanged : public Error {
 public:
  using Error::Error;
};

struct ProgressEvent {
  std::string name;
  std::string digest;
  uint64_t done = 0, total = 0;
  double rate = 0;  // bytes/s over the last seconds
  std::string status;  // "downloading", "retrying", "verifying", "done"
};

struct PullOptions {
  int stall_timeout_s = 30;
  int max_retries = 8;     // consecutive attempts without progress before giving up
  int backoff_ms = 1000;   // first retry delay; doubles up to 30 s ($HEARTH_PULL_BACKOFF_MS overrides)
  // > 1: files of at least connections x 1 MiB are fetched as that many ranged parts in parallel (the partial
  // is then preallocated, each part's progress is in the state file, and sha256 is computed once at the end).
  int connections = 1;
  bool progress_bar = false;
  std::function<void(const ProgressEvent&)> on_progress;
};

struct BlobSource {
  std::string name;    // for messages and the progress bar
  std::string url;
  std::vector<std::string> headers;  // e.g. Authorization
  std::string digest;  // sha256:<hex>
  uint64_t size = 0;
};

struct PullStats {
  uint64_t bytes_received = 0;  // body bytes received over the network (all attempts)
  uint64_t resumed_from = 0;    // size of the partial found at start
  int requests = 0;
  int retries = 0;
  bool already_present = false;
};

PullStats download_blob(const Store& store, const BlobSource& src, const PullOptions& opt);

// Human-readable message for an HTTP failure status.
std::string http_status_message(long status, const std::string& what);

}  // namespace hearth::store
