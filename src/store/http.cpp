#include "store/http.h"

#include <curl/curl.h>

#include <cctype>
#include <chrono>
#include <mutex>

namespace hearth::store {

namespace {
std::once_flag g_init;

struct Ctx {
  const BodySink* sink;
  HttpResult* res;
  size_t cap;
  CURL* curl;
  int stall_s;
  curl_off_t last_now = -1;
  std::chrono::steady_clock::time_point last_change = std::chrono::steady_clock::now();
  bool stalled = false;
};

// Stall detection: no new byte (headers or body) for stall_s seconds. (curl's LOW_SPEED_* averages the speed
// over several seconds, so a stall right after a burst would go unnoticed for too long.)
int on_progress(void* user, curl_off_t, curl_off_t dlnow, curl_off_t, curl_off_t) {
  Ctx& c = *static_cast<Ctx*>(user);
  const auto now = std::chrono::steady_clock::now();
  if (dlnow != c.last_now) {
    c.last_now = dlnow;
    c.last_change = now;
    return 0;
  }
  if (now - c.last_change > std::chrono::seconds(c.stall_s)) {
    c.stalled = true;
    return 1;
  }
  return 0;
}

std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

size_t on_header(char* data, size_t size, size_t n, void* user) {
  Ctx& c = *static_cast<Ctx*>(user);
  const size_t len = size * n;
  std::string line(data, len);
  while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.pop_back();
  if (line.rfind("HTTP/", 0) == 0) {  // a new response (redirects, 100-continue): start over
    c.res->headers.clear();
    const size_t sp = line.find(' ');
    c.res->status = sp == std::string::npos ? 0 : std::strtol(line.c_str() + sp + 1, nullptr, 10);
    return len;
  }
  const size_t colon = line.find(':');
  if (colon != std::string::npos) {
    std::string v = line.substr(colon + 1);
    while (!v.empty() && v.front() == ' ') v.erase(v.begin());
    c.res->headers[lower(line.substr(0, colon))] = v;
  }
  return len;
}

size_t on_body(char* data, size_t size, size_t n, void* user) {
  Ctx& c = *static_cast<Ctx*>(user);
  const size_t len = size * n;
  c.res->body_bytes += len;
  const bool ok2xx = c.res->status >= 200 && c.res->status < 300;
  if (ok2xx && c.sink && *c.sink) {
    if (!(*c.sink)(*c.res, data, len)) {
      c.res->aborted_by_sink = true;
      return 0;  // makes curl abort with CURLE_WRITE_ERROR
    }
    return len;
  }
  const size_t cap = ok2xx ? c.cap : 64 * 1024;
  if (c.res->body.size() < cap) c.res->body.append(data, std::min(len, cap - c.res->body.size()));
  return len;
}
}  // namespace

HttpResult http_get(const HttpRequest& req, const BodySink& sink, size_t body_cap) {
  std::call_once(g_init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  HttpResult res;
  CURL* curl = curl_easy_init();
  if (!curl) {
    res.curl_code = -1;
    res.curl_error = "curl_easy_init failed";
    return res;
  }
  Ctx ctx{&sink, &res, body_cap, curl, std::max(1, req.stall_timeout_s)};
  char err[CURL_ERROR_SIZE] = {};
  curl_slist* hdrs = nullptr;
  for (const std::string& h : req.headers) hdrs = curl_slist_append(hdrs, h.c_str());
  curl_easy_setopt(curl, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 8L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "hearth/0.1");
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, long(req.connect_timeout_s));
  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &ctx);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &ctx);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &ctx);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, err);
  curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "identity");
  const CURLcode rc = curl_easy_perform(curl);
  res.curl_code = int(rc);
  if (rc != CURLE_OK) res.curl_error = err[0] ? err : curl_easy_strerror(rc);
  if (ctx.stalled) res.curl_error = "stalled: no data for " + std::to_string(ctx.stall_s) + " s";
  long status = 0;
  if (curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK && status) res.status = status;
  curl_slist_free_all(hdrs);
  curl_easy_cleanup(curl);
  return res;
}

std::map<std::string, std::string> parse_www_authenticate(const std::string& header) {
  std::map<std::string, std::string> out;
  size_t i = header.find(' ');
  if (i == std::string::npos) return out;
  out["scheme"] = lower(header.substr(0, i));
  while (i < header.size()) {
    while (i < header.size() && (header[i] == ' ' || header[i] == ',')) ++i;
    const size_t eq = header.find('=', i);
    if (eq == std::string::npos) break;
    const std::string key = lower(header.substr(i, eq - i));
    std::string val;
    i = eq + 1;
    if (i < header.size() && header[i] == '"') {
      ++i;
      while (i < header.size() && header[i] != '"') {
        if (header[i] == '\\' && i + 1 < header.size()) ++i;
        val += header[i++];
      }
      ++i;
    } else {
      while (i < header.size() && header[i] != ',') val += header[i++];
    }
    out[key] = val;
  }
  return out;
}

std::string url_escape_query(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') out += char(c);
    else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

}  // namespace hearth::store
