#include "store/discover.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "store/reference.h"

namespace hearth::store {

namespace fs = std::filesystem;

namespace {
std::string home() {
  const char* h = std::getenv("HOME");
  return h && *h ? h : "/root";
}
bool inside(const fs::path& p, const fs::path& root) {
  std::error_code ec;
  const fs::path a = fs::weakly_canonical(p, ec), b = fs::weakly_canonical(root, ec);
  const std::string as = a.string(), bs = b.string();
  return !ec && as.size() > bs.size() && as.compare(0, bs.size(), bs) == 0 && as[bs.size()] == '/';
}
bool is_gguf(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  char magic[4] = {};
  in.read(magic, 4);
  return in.gcount() == 4 && std::string(magic, 4) == "GGUF";
}
}  // namespace

std::string ollama_root() {
  if (const char* e = std::getenv("OLLAMA_MODELS"); e && *e) return e;
  return home() + "/.ollama/models";
}

std::string hf_cache_root() {
  if (const char* e = std::getenv("HF_HUB_CACHE"); e && *e) return e;
  if (const char* e = std::getenv("HF_HOME"); e && *e) return std::string(e) + "/hub";
  return home() + "/.cache/huggingface/hub";
}

std::vector<ExternalModel> discover_external(const std::string& ollama, const std::string& hf_cache) {
  std::vector<ExternalModel> out;
  std::error_code ec;
  // Ollama: manifests/<host>/<namespace>/<model>/<tag> (JSON), model layer -> blobs/sha256-<hex>.
  const fs::path om = fs::path(ollama) / "manifests";
  for (auto it = fs::recursive_directory_iterator(om, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (!it->is_regular_file() || it.depth() != 3) continue;
    try {
      std::ifstream in(it->path());
      const auto j = nlohmann::json::parse(in);
      for (const auto& l : j.at("layers")) {
        if (l.value("mediaType", "") != "application/vnd.ollama.image.model") continue;
        const std::string hex = digest_hex(l.at("digest").get<std::string>());
        const fs::path blob = fs::path(ollama) / "blobs" / ("sha256-" + hex);
        if (!inside(blob, ollama) || !fs::is_regular_file(blob) || !is_gguf(blob)) continue;
        const fs::path rel = it->path().lexically_relative(om);
        auto p = rel.begin();
        const std::string host = (p++)->string(), ns = (p++)->string(), model = (p++)->string(), tag = p->string();
        for (const std::string& c : {host, ns, model, tag}) validate_component(c, "Ollama manifest path");
        out.push_back({"ollama/" + (host == "registry.ollama.ai" ? "" : host + "/") + ns + "/" + model + ":" + tag,
                       "ollama", blob.string(), fs::file_size(blob)});
      }
    } catch (const std::exception&) {
      // Not an Ollama manifest we understand: ignore it.
    }
  }
  // Hugging Face cache: models--ORG--REPO/snapshots/<revision>/<path>.gguf (symlinks into blobs/).
  for (const auto& repo : fs::directory_iterator(hf_cache, ec)) {
    const std::string dn = repo.path().filename().string();
    if (dn.rfind("models--", 0) != 0) continue;
    const std::string id = dn.substr(8);
    const size_t sep = id.find("--");
    if (sep == std::string::npos) continue;
    const std::string org = id.substr(0, sep), name = id.substr(sep + 2);
    try {
      validate_component(org, "organisation");
      validate_component(name, "repository");
    } catch (const Error&) {
      continue;
    }
    std::error_code ec2;
    for (auto it = fs::recursive_directory_iterator(repo.path() / "snapshots", ec2);
         !ec2 && it != fs::recursive_directory_iterator(); it.increment(ec2)) {
      const fs::path p = it->path();
      if (p.extension() != ".gguf" || !fs::is_regular_file(p)) continue;  // follows the symlink
      if (!inside(p, hf_cache) || !is_gguf(p)) continue;
      const fs::path rel = p.lexically_relative(repo.path() / "snapshots");
      auto r = rel.begin();
      ++r;  // the revision
      fs::path file;
      for (; r != rel.end(); ++r) file /= *r;
      try {
        validate_repo_file(file.string());
      } catch (const Error&) {
        continue;
      }
      out.push_back({"hf-cache/" + org + "/" + name + "/" + file.string(), "hf-cache",
                     fs::weakly_canonical(p).string(), fs::file_size(p)});
    }
  }
  return out;
}

}  // namespace hearth::store
