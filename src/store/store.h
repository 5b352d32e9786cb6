// The content-addressed model store (~/.hearth/models, or $HEARTH_MODELS):
//
//   blobs/sha256-<hex>               verified content, immutable, shared by every manifest that names it
//   blobs/sha256-<hex>.partial       a download in progress (+ .partial.json: its resume state, + .lock)
//   manifests/<host>/<repo...>/<tag>.json   one per reference: the files (role, name, digest, size)
//
// A blob appears under its final name only after its sha256 was verified (rename is atomic). Every path is
// built from validated components and digests, so no reference, tag or manifest field can reach outside
// the store.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "store/reference.h"

namespace hearth::store {

// $HEARTH_MODELS, or $HOME/.hearth/models.
std::string default_root();

struct ManifestFile {
  std::string role;    // "model", "mmproj"
  std::string name;    // file name at the source ("gemma-4-E2B-it-Q4_K_M-00001-of-00002.gguf")
  std::string digest;  // "sha256:<hex>"
  uint64_t size = 0;
};

struct Manifest {
  std::string reference;  // canonical reference
  std::string source;     // where it came from (URL, "import:/path")
  std::vector<ManifestFile> files;
  int64_t created = 0;    // unix seconds
};

struct StoredModel {
  Reference ref;
  Manifest manifest;
  std::string manifest_path;
  uint64_t size = 0;
  int64_t modified = 0;
};

class Store {
 public:
  explicit Store(std::string root = default_root());  // creates blobs/ and manifests/
  const std::string& root() const { return root_; }

  std::string blob_path(const std::string& digest) const;  // throws for a malformed digest
  std::string partial_path(const std::string& digest) const { return blob_path(digest) + ".partial"; }
  bool has_blob(const std::string& digest) const;

  // Hashes `file` and, if it matches `digest`, renames it to the blob (atomic). On a mismatch the file is
  // deleted and hearth::Error is thrown.
  void publish(const std::string& file, const std::string& digest) const;

  std::string manifest_path(const Reference& ref) const;
  void write_manifest(const Reference& ref, const Manifest& m) const;  // atomic
  // nullopt when absent; throws hearth::Error for a manifest that is malformed or names hostile paths.
  std::optional<Manifest> read_manifest(const Reference& ref) const;
  std::vector<StoredModel> list() const;  // skips (and reports on stderr) manifests that fail validation
  // A name as the user typed it: a reference with a manifest, or a locally imported name.
  std::optional<StoredModel> find(const std::string& name) const;
  // Removes the manifest, then every blob no manifest references. Returns the bytes freed.
  uint64_t remove(const StoredModel& m) const;
  uint64_t gc() const;

  // Imports a local GGUF file under `name` (a plain name, "name:tag" or a full reference): hashes it, hard-links
  // it into blobs/ when the file system allows (else copies), and writes a manifest. Returns the model.
  // `how` receives "hard link", "copy" or "already stored".
  StoredModel import_file(const std::string& path, const std::string& name, std::string* how = nullptr) const;

  // Free bytes on the store's file system ($HEARTH_DISK_FREE overrides, for tests).
  uint64_t free_space() const;

  // The path of the model file (the first part of a split model) of a stored model.
  std::string model_path(const StoredModel& m) const;

 private:
  std::string root_;
};

}  // namespace hearth::store
