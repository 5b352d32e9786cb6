#include "store/remote.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "store/http.h"
#include "store/puller.h"

namespace hearth::store {

RemoteOptions RemoteOptions::from_env() {
  RemoteOptions o;
  const char* ep = std::getenv("HEARTH_HF_ENDPOINT");
  o.hf_endpoint = ep && *ep ? ep : "https://huggingface.co";
  while (!o.hf_endpoint.empty() && o.hf_endpoint.back() == '/') o.hf_endpoint.pop_back();
  if (const char* t = std::getenv("HF_TOKEN"); t && *t) o.hf_token = t;
  return o;
}

namespace {
std::string upper(std::string s) {
  for (char& c : s) c = char(std::toupper(static_cast<unsigned char>(c)));
  return s;
}
std::string basename(const std::string& p) {
  const size_t s = p.rfind('/');
  return s == std::string::npos ? p : p.substr(s + 1);
}
bool ends_with(const std::string& s, const std::string& e) {
  return s.size() >= e.size() && s.compare(s.size() - e.size(), e.size(), e) == 0;
}

nlohmann::json get_json(const std::string& url, const std::vector<std::string>& headers, int stall, int* requests,
                        const std::string& what, HttpResult* out = nullptr) {
  HttpRequest rq;
  rq.url = url;
  rq.headers = headers;
  rq.stall_timeout_s = stall;
  HttpResult r = http_get(rq);
  if (requests) ++*requests;
  if (out) *out = r;
  if (!r.transport_ok()) throw Error(what + ": cannot reach " + url + ": " + r.curl_error);
  if (r.status != 200) {
    if (out && r.status == 401) return nullptr;
    throw Error(http_status_message(r.status, what + " (" + url + ")"));
  }
  try {
    return nlohmann::json::parse(r.body);
  } catch (const nlohmann::json::exception& e) {
    throw Error(what + ": the server's answer is not JSON: " + e.what());
  }
}

RemoteModel resolve_hf(const Reference& ref, const RemoteOptions& opt) {
  RemoteModel m;
  m.ref = ref;
  const std::string repo = ref.repo_path();
  std::vector<std::string> headers;
  if (!opt.hf_token.empty()) headers.push_back("Authorization: Bearer " + opt.hf_token);
  m.source = opt.hf_endpoint + "/" + repo;
  const std::string what = "hf.co/" + repo;
  const nlohmann::json tree =
      get_json(opt.hf_endpoint + "/api/models/" + repo + "/tree/main?recursive=true", headers, opt.stall_timeout_s,
               &m.requests, what);
  if (!tree.is_array()) throw Error(what + ": unexpected answer from the repository API");
  struct F {
    std::string path, digest;
    uint64_t size;
  };
  std::vector<F> ggufs;
  for (const auto& e : tree) {
    if (!e.is_object() || e.value("type", "") != "file") continue;
    const std::string path = e.value("path", "");
    if (!ends_with(upper(path), ".GGUF")) continue;
    validate_repo_file(path);  // hostile names never reach a URL or the store
    const auto lfs = e.find("lfs");
    if (lfs == e.end() || !lfs->is_object()) throw Error(what + ": '" + path + "' has no LFS sha256");
    const std::string oid = lfs->value("oid", "");
    const std::string digest = "sha256:" + oid;
    digest_hex(digest);
    ggufs.push_back({path, digest, lfs->value("size", e.value("size", uint64_t(0)))});
  }
  std::set<std::string> quants;
  std::vector<F> model, mmproj;
  const std::string want = upper(ref.tag);
  for (const F& f : ggufs) {
    const std::string b = basename(f.path);
    if (upper(b).rfind("MMPROJ", 0) == 0) {
      mmproj.push_back(f);
      continue;
    }
    const std::string q = quant_in_name(f.path);
    if (!q.empty()) quants.insert(q), m.quant_sizes[q] += f.size;
    if (upper(q) == want) model.push_back(f);
  }
  m.quants.assign(quants.begin(), quants.end());
  if (model.empty()) {
    std::string list;
    for (const std::string& q : m.quants) list += (list.empty() ? "" : ", ") + q;
    throw Error(what + " has no " + ref.tag + " GGUF file" + (list.empty() ? "" : " (available: " + list + ")"));
  }
  std::sort(model.begin(), model.end(), [](const F& a, const F& b) { return a.path < b.path; });
  if (const auto sp = parse_split_name(model[0].path)) {
    const int n = sp->count;
    const std::string prefix = sp->prefix;
    std::vector<F> parts;
    for (int i = 1; i <= n; ++i) {
      char suffix[32];
      std::snprintf(suffix, sizeof suffix, "-%05d-of-%05d.gguf", i, n);
      auto it = std::find_if(model.begin(), model.end(), [&](const F& f) { return upper(f.path) == upper(prefix + suffix); });
      if (it == model.end()) throw Error(what + ": split part " + prefix + suffix + " is missing");
      parts.push_back(*it);
    }
    model = parts;
  } else {
    model.resize(1);
  }
  for (const F& f : model) m.files.push_back({"model", f.path, opt.hf_endpoint + "/" + repo + "/resolve/main/" + f.path, f.digest, f.size});
  if (!mmproj.empty()) {
    auto it = std::find_if(mmproj.begin(), mmproj.end(), [](const F& f) { return upper(f.path).find("F16") != std::string::npos; });
    const F& f = it != mmproj.end() ? *it : mmproj[0];
    m.files.push_back({"mmproj", f.path, opt.hf_endpoint + "/" + repo + "/resolve/main/" + f.path, f.digest, f.size});
  }
  m.headers = headers;
  return m;
}

RemoteModel resolve_oci(const Reference& ref, const RemoteOptions& opt) {
  RemoteModel m;
  m.ref = ref;
  std::string base = opt.registry.empty() ? "https://" + ref.host : opt.registry;
  while (!base.empty() && base.back() == '/') base.pop_back();
  const std::string repo = ref.repo_path();
  const std::string what = ref.canonical();
  const std::string url = base + "/v2/" + repo + "/manifests/" + ref.tag;
  m.source = url;
  std::vector<std::string> headers = {
      "Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"};
  HttpResult first;
  nlohmann::json man = get_json(url, headers, opt.stall_timeout_s, &m.requests, what, &first);
  std::vector<std::string> auth;
  if (man.is_null()) {  // 401: token auth (Docker Hub, Ollama, any distribution registry)
    const auto wa = first.headers.find("www-authenticate");
    if (wa == first.headers.end()) throw Error(http_status_message(401, what));
    auto p = parse_www_authenticate(wa->second);
    if (p["scheme"] != "bearer" || p["realm"].empty()) throw Error(what + ": unsupported registry authentication");
    std::string turl = p["realm"] + (p["realm"].find('?') == std::string::npos ? "?" : "&") +
                       "service=" + url_escape_query(p["service"]) +
                       "&scope=" + url_escape_query(p["scope"].empty() ? "repository:" + repo + ":pull" : p["scope"]);
    const nlohmann::json tok = get_json(turl, {}, opt.stall_timeout_s, &m.requests, what + " (token)");
    std::string token = tok.value("token", tok.value("access_token", ""));
    if (token.empty()) throw Error(what + ": the registry's token service returned no token");
    auth.push_back("Authorization: Bearer " + token);
    headers.push_back(auth.back());
    man = get_json(url, headers, opt.stall_timeout_s, &m.requests, what);
  }
  if (!man.is_object() || !man.contains("layers") || !man["layers"].is_array())
    throw Error(what + ": the registry's manifest has no layers (a multi-platform index is not supported)");
  int n = 0;
  for (const auto& l : man["layers"]) {
    const std::string mt = l.value("mediaType", "");
    std::string role;
    if (mt.find("mmproj") != std::string::npos || mt.find("projector") != std::string::npos) role = "mmproj";
    else if (mt.find("gguf") != std::string::npos || mt == "application/vnd.ollama.image.model") role = "model";
    else continue;
    const std::string digest = l.value("digest", "");
    digest_hex(digest);  // hostile digests never become paths or URLs
    const uint64_t size = l.value("size", uint64_t(0));
    const std::string name = role + "-" + std::to_string(n++) + ".gguf";
    m.files.push_back({role, name, base + "/v2/" + repo + "/blobs/" + digest, digest, size});
  }
  if (std::none_of(m.files.begin(), m.files.end(), [](const RemoteFile& f) { return f.role == "model"; }))
    throw Error(what + ": the manifest has no GGUF layer");
  m.headers = auth;
  return m;
}
}  // namespace

std::optional<SplitName> parse_split_name(const std::string& f) {
  // ...-NNNNN-of-NNNNN.gguf: 20 characters of suffix.
  const size_t n = f.size();
  if (n <= 20 || upper(f.substr(n - 5)) != ".GGUF" || f[n - 20] != '-' || f.compare(n - 14, 4, "-of-") != 0)
    return std::nullopt;
  const std::string a = f.substr(n - 19, 5), b = f.substr(n - 10, 5);
  if (a.find_first_not_of("0123456789") != std::string::npos || b.find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;
  SplitName s{f.substr(0, n - 20), std::atoi(a.c_str()), std::atoi(b.c_str())};
  if (s.index < 1 || s.count < 1 || s.index > s.count) return std::nullopt;
  return s;
}

std::string quant_in_name(const std::string& file_name) {
  static const char* kQuants[] = {
      "IQ1_S", "IQ1_M", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ2_M", "IQ3_XXS", "IQ3_XS", "IQ3_S", "IQ3_M", "IQ4_NL",
      "IQ4_XS", "Q2_K", "Q2_K_S", "Q2_K_L", "Q2_K_XL", "Q3_K", "Q3_K_S", "Q3_K_M", "Q3_K_L", "Q3_K_XL", "Q4_0",
      "Q4_1", "Q4_K", "Q4_K_S", "Q4_K_M", "Q4_K_L", "Q4_K_XL", "Q5_0", "Q5_1", "Q5_K", "Q5_K_S", "Q5_K_M", "Q5_K_L",
      "Q5_K_XL", "Q6_K", "Q6_K_L", "Q6_K_XL", "Q8_0", "Q8_K_XL", "TQ1_0", "TQ2_0", "BF16", "F16", "F32", "MXFP4",
      "MXFP4_MOE"};
  const std::string b = upper(basename(file_name));
  auto alnum = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; };
  for (size_t i = 0; i < b.size(); ++i) {
    if (i > 0 && alnum(b[i - 1])) continue;  // a quant starts after a separator ('-', '.', '_', ...)
    std::string best;
    for (const char* q : kQuants) {
      const size_t len = std::strlen(q);
      if (b.compare(i, len, q) != 0) continue;
      const char next = i + len < b.size() ? b[i + len] : '\0';
      if (next && (alnum(next) || next == '_')) continue;  // Q4_K must not match Q4_K_M
      if (len > best.size()) best = q;
    }
    if (!best.empty()) return best;
  }
  return "";
}

RemoteModel resolve_remote(const Reference& ref, const RemoteOptions& opt) {
  if (ref.kind == RefKind::HuggingFace) return resolve_hf(ref, opt);
  if (ref.kind == RefKind::Oci) {
    if (ref.host == "local") throw Error("'" + ref.canonical() + "' is a local model and is not in the store");
    return resolve_oci(ref, opt);
  }
  throw Error("'" + ref.path + "' is a file path, not a remote model");
}

RemoteHeader fetch_header(const std::string& url, const std::vector<std::string>& headers, uint64_t file_size,
                          int stall_timeout_s, uint64_t initial, uint64_t max) {
  RemoteHeader h;
  h.bytes = std::make_unique<std::vector<uint8_t>>();
  uint64_t want = std::min<uint64_t>(initial, file_size ? file_size : initial);
  while (true) {
    const uint64_t have = h.bytes->size();
    HttpRequest rq;
    rq.url = url;
    rq.headers = headers;
    rq.headers.push_back("Range: bytes=" + std::to_string(have) + "-" + std::to_string(want - 1));
    rq.stall_timeout_s = stall_timeout_s;
    bool bad_range = false;
    const HttpResult r = http_get(rq, [&](const HttpResult& res, const char* d, size_t n) {
      if (res.status == 200 && have > 0) {  // range ignored: take what we need from the start
        bad_range = true;
        return false;
      }
      const uint64_t room = want - h.bytes->size();
      h.bytes->insert(h.bytes->end(), d, d + std::min<uint64_t>(n, room));
      return n <= room;  // stop once we have `want` bytes (a server that ignores Range sends everything)
    });
    ++h.requests;
    h.fetched += r.body_bytes;
    if (r.status != 200 && r.status != 206) {
      if (!r.transport_ok() && r.status == 0) throw Error("cannot reach " + url + ": " + r.curl_error);
      throw Error(http_status_message(r.status, url));
    }
    if (bad_range) throw Error(url + ": the server does not support Range requests");
    if (r.status == 206) {
      unsigned long long a = 0, b = 0, t = 0;
      const auto cr = r.headers.find("content-range");
      if (cr != r.headers.end() && std::sscanf(cr->second.c_str(), "bytes %llu-%llu/%llu", &a, &b, &t) == 3) {
        if (a != have) throw Error(url + ": the server answered with the wrong range");
        file_size = t;
      }
    } else if (!r.transport_ok() && !r.aborted_by_sink) {
      throw Error("cannot fetch " + url + ": " + r.curl_error);
    }
    if (r.status == 206 && !r.transport_ok()) throw Error("cannot fetch " + url + ": " + r.curl_error);
    gguf::ParseOptions po;
    po.header_only = true;
    po.full_file_size = file_size;
    try {
      h.file = gguf::File::parse(*h.bytes, url, po);
      return h;
    } catch (const Error& e) {
      const bool complete = file_size && h.bytes->size() >= file_size;
      if (complete || want >= max || h.bytes->size() < want) {
        if (!complete && want >= max)
          throw Error(url + ": the GGUF header is larger than " + std::to_string(max >> 20) + " MiB: " + e.what());
        throw Error(url + ": not a GGUF file: " + e.what());
      }
      want = std::min<uint64_t>(want * 2, max);
      if (file_size) want = std::min(want, file_size);
    }
  }
}

}  // namespace hearth::store
