// A small libcurl wrapper: one GET at a time, headers and body streamed to callbacks, stalls detected
// (no bytes for stall_timeout_s seconds), redirects followed.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace hearth::store {

struct HttpRequest {
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  int stall_timeout_s = 30;          // abort when no byte arrives for this long
  int connect_timeout_s = 15;
};

struct HttpResult {
  int curl_code = 0;          // CURLcode; 0 = the transfer completed
  std::string curl_error;     // curl's message when curl_code != 0
  long status = 0;            // final HTTP status (after redirects); 0 if none was received
  std::map<std::string, std::string> headers;  // of the final response; lower-case names
  std::string body;           // non-2xx bodies, and 2xx bodies when no sink was given (capped)
  uint64_t body_bytes = 0;    // bytes of the final response's body that arrived
  bool aborted_by_sink = false;
  bool transport_ok() const { return curl_code == 0; }
};

// Called with each piece of a 2xx body, after `status` and `headers` are known; return false to abort.
using BodySink = std::function<bool(const HttpResult& so_far, const char* data, size_t n)>;

HttpResult http_get(const HttpRequest& req, const BodySink& sink = {}, size_t body_cap = 64u << 20);

// "Bearer realm="https://auth/token",service="registry",scope="repository:ai/x:pull"" -> its parameters.
std::map<std::string, std::string> parse_www_authenticate(const std::string& header);

std::string url_escape_query(const std::string& s);

}  // namespace hearth::store
