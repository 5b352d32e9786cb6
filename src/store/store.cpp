#include "store/store.h"

#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "core/error.h"
#include "store/sha256.h"
#include "system/hardware.h"

namespace hearth::store {

namespace fs = std::filesystem;

std::string default_root() {
  if (const char* e = std::getenv("HEARTH_MODELS"); e && *e) return e;
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : "/root") + "/.hearth/models";
}

Store::Store(std::string root) : root_(std::move(root)) {
  std::error_code ec;
  fs::create_directories(root_ + "/blobs", ec);
  fs::create_directories(root_ + "/manifests", ec);
  if (!fs::is_directory(root_ + "/blobs")) throw Error("cannot create the model store at '" + root_ + "'");
}

std::string Store::blob_path(const std::string& digest) const { return root_ + "/blobs/sha256-" + digest_hex(digest); }

bool Store::has_blob(const std::string& digest) const { return fs::is_regular_file(blob_path(digest)); }

void Store::publish(const std::string& file, const std::string& digest) const {
  const std::string want = digest_hex(digest);
  const std::string got = sha256_file(file);
  if (got != want) {
    std::remove(file.c_str());
    throw Error("sha256 mismatch: expected " + want + ", got " + got + " (the data was discarded)");
  }
  if (std::rename(file.c_str(), blob_path(digest).c_str()) != 0)
    throw Error("cannot move '" + file + "' into the store: " + std::strerror(errno));
}

std::string Store::manifest_path(const Reference& ref) const {
  if (ref.kind == RefKind::Path) throw Error("'" + ref.path + "' is a file path, not a stored model");
  // Re-validate: a Reference can be built by hand.
  const std::string host = ref.host.substr(0, ref.host.find(':'));
  validate_component(host, "registry host");
  if (ref.repo.empty()) throw Error("reference has no repository");
  std::string p = root_ + "/manifests/" + host;
  if (host.size() != ref.host.size()) {
    const std::string port = ref.host.substr(host.size() + 1);
    validate_component(port, "registry port");
    p += "_" + port;
  }
  for (const std::string& c : ref.repo) {
    validate_component(c, "name component");
    p += "/" + c;
  }
  validate_component(ref.tag, "tag");
  return p + "/" + ref.tag + ".json";
}

namespace {
nlohmann::json to_json(const Manifest& m) {
  nlohmann::json j;
  j["schema"] = 1;
  j["reference"] = m.reference;
  j["source"] = m.source;
  j["created"] = m.created;
  j["files"] = nlohmann::json::array();
  for (const ManifestFile& f : m.files)
    j["files"].push_back({{"role", f.role}, {"name", f.name}, {"digest", f.digest}, {"size", f.size}});
  return j;
}

Manifest from_json(const nlohmann::json& j, const std::string& where) {
  try {
    Manifest m;
    m.reference = j.at("reference").get<std::string>();
    m.source = j.value("source", "");
    m.created = j.value("created", int64_t(0));
    for (const auto& f : j.at("files")) {
      ManifestFile mf;
      mf.role = f.at("role").get<std::string>();
      mf.name = f.at("name").get<std::string>();
      mf.digest = f.at("digest").get<std::string>();
      mf.size = f.at("size").get<uint64_t>();
      validate_component(mf.role, "manifest file role");
      validate_repo_file(mf.name);
      digest_hex(mf.digest);
      m.files.push_back(mf);
    }
    if (m.files.empty()) throw Error("no files");
    return m;
  } catch (const nlohmann::json::exception& e) {
    throw Error("manifest '" + where + "' is malformed: " + e.what());
  } catch (const Error& e) {
    throw Error("manifest '" + where + "' is invalid: " + e.what());
  }
}

void write_atomic(const std::string& path, const std::string& text) {
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    out.flush();
    if (!out) throw Error("cannot write '" + tmp + "'");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw Error("cannot write '" + path + "': " + std::strerror(errno));
  }
}
}  // namespace

void Store::write_manifest(const Reference& ref, const Manifest& m) const {
  for (const ManifestFile& f : m.files) {
    digest_hex(f.digest);
    validate_repo_file(f.name);
  }
  write_atomic(manifest_path(ref), to_json(m).dump(2) + "\n");
}

std::optional<Manifest> Store::read_manifest(const Reference& ref) const {
  const std::string p = manifest_path(ref);
  std::ifstream in(p);
  if (!in) return std::nullopt;
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw Error("manifest '" + p + "' is malformed: " + e.what());
  }
  return from_json(j, p);
}

std::vector<StoredModel> Store::list() const {
  std::vector<StoredModel> out;
  std::error_code ec;
  const fs::path base = root_ + "/manifests";
  for (auto it = fs::recursive_directory_iterator(base, fs::directory_options::none, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_symlink() || !it->is_regular_file() || it->path().extension() != ".json") continue;
    const std::string p = it->path().string();
    try {
      std::ifstream in(p);
      const Manifest m = from_json(nlohmann::json::parse(in), p);
      Reference ref = parse_reference(m.reference);
      // The manifest must live exactly where its reference says (no aliasing of other names).
      if (ref.kind == RefKind::Path || manifest_path(ref) != p) throw Error("reference does not match its location");
      StoredModel sm{ref, m, p, 0, 0};
      for (const ManifestFile& f : m.files) sm.size += f.size;
      sm.modified = std::chrono::duration_cast<std::chrono::seconds>(
                        fs::last_write_time(it->path()).time_since_epoch() -
                        (fs::file_time_type::clock::now().time_since_epoch() -
                         std::chrono::system_clock::now().time_since_epoch()))
                        .count();
      out.push_back(std::move(sm));
    } catch (const std::exception& e) {
      std::fprintf(stderr, "hearth: skipping manifest '%s': %s\n", p.c_str(), e.what());
    }
  }
  std::sort(out.begin(), out.end(), [](const StoredModel& a, const StoredModel& b) {
    return a.ref.canonical() < b.ref.canonical();
  });
  return out;
}

std::optional<StoredModel> Store::find(const std::string& name) const {
  std::vector<Reference> candidates;
  try {
    candidates.push_back(parse_reference(name));
  } catch (const Error&) {
    if (name.find('/') != std::string::npos) throw;
  }
  if (name.find('/') == std::string::npos) candidates.push_back(parse_reference("local/" + name));
  for (const Reference& ref : candidates) {
    if (ref.kind == RefKind::Path) continue;
    if (auto m = read_manifest(ref)) {
      StoredModel sm{ref, *m, manifest_path(ref), 0, m->created};
      for (const ManifestFile& f : m->files) sm.size += f.size;
      return sm;
    }
  }
  return std::nullopt;
}

uint64_t Store::gc() const {
  std::set<std::string> keep;
  for (const StoredModel& m : list())
    for (const ManifestFile& f : m.manifest.files) keep.insert("sha256-" + digest_hex(f.digest));
  uint64_t freed = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root_ + "/blobs", ec)) {
    const std::string n = e.path().filename().string();
    if (n.rfind("sha256-", 0) != 0 || n.size() != 7 + 64 || keep.count(n)) continue;  // partials stay
    std::error_code ec2;
    const uint64_t sz = e.file_size(ec2);
    if (fs::remove(e.path(), ec2)) freed += ec2 ? 0 : sz;
  }
  return freed;
}

uint64_t Store::remove(const StoredModel& m) const {
  const std::string p = manifest_path(m.ref);
  if (!fs::remove(p)) throw Error("'" + m.ref.canonical() + "' is not in the store");
  // Prune empty manifest directories up to manifests/.
  std::error_code ec;
  for (fs::path d = fs::path(p).parent_path(); d != fs::path(root_ + "/manifests") && fs::is_empty(d, ec);
       d = d.parent_path())
    fs::remove(d, ec);
  return gc();
}

StoredModel Store::import_file(const std::string& path, const std::string& name, std::string* how) const {
  if (!fs::is_regular_file(path)) throw Error("'" + path + "' is not a file");
  Reference ref;
  if (name.find('/') == std::string::npos) {
    ref = parse_reference("local/" + name);
  } else {
    ref = parse_reference(name);
  }
  if (ref.kind == RefKind::Path) throw Error("'" + name + "' is not a model name");
  std::fprintf(stderr, "hashing %s ...\n", path.c_str());
  const std::string hex = sha256_file(path);
  const std::string digest = "sha256:" + hex;
  const uint64_t size = fs::file_size(path);
  std::string did = "already stored";
  if (!has_blob(digest)) {
    const std::string tmp = blob_path(digest) + ".import." + std::to_string(::getpid());
    std::remove(tmp.c_str());
    if (::link(path.c_str(), tmp.c_str()) == 0) {
      did = "hard link";
      if (std::rename(tmp.c_str(), blob_path(digest).c_str()) != 0) {
        std::remove(tmp.c_str());
        throw Error("cannot move '" + tmp + "' into the store");
      }
    } else {
      std::error_code ec;
      fs::copy_file(path, tmp, fs::copy_options::overwrite_existing, ec);
      if (ec) throw Error("cannot copy '" + path + "' into the store: " + ec.message());
      publish(tmp, digest);  // re-hashes the copy
      did = "copy";
    }
  }
  Manifest m;
  m.reference = ref.canonical();
  m.source = "import:" + fs::absolute(path).string();
  m.created = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  m.files.push_back({"model", fs::path(path).filename().string(), digest, size});
  // The original file name may have characters names do not allow: keep only a safe form.
  std::string safe;
  for (char c : m.files[0].name) safe += (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_') ? c : '_';
  if (safe.empty() || safe[0] == '.' || safe[0] == '-') safe = "_" + safe;
  m.files[0].name = safe;
  write_manifest(ref, m);
  if (how) *how = did;
  return StoredModel{ref, m, manifest_path(ref), size, m.created};
}

uint64_t Store::free_space() const {
  if (const char* e = std::getenv("HEARTH_DISK_FREE"); e && *e) return system::parse_size(e).value_or(UINT64_MAX);
  struct statvfs st {};
  if (::statvfs((root_ + "/blobs").c_str(), &st) != 0) return UINT64_MAX;
  return uint64_t(st.f_bavail) * uint64_t(st.f_frsize);
}

std::string Store::model_path(const StoredModel& m) const {
  for (const ManifestFile& f : m.manifest.files)
    if (f.role == "model") return blob_path(f.digest);
  throw Error("'" + m.ref.canonical() + "' has no model file");
}

}  // namespace hearth::store
