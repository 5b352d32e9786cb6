// Where a reference's files live: Hugging Face (tree API + resolve URLs, LFS sha256) or an OCI registry
// (manifest, token auth, blobs). And the GGUF header of a remote file, fetched with a few Range requests.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gguf/reader.h"
#include "store/reference.h"

namespace hearth::store {

struct RemoteOptions {
  std::string hf_endpoint;  // default: $HEARTH_HF_ENDPOINT or https://huggingface.co
  std::string hf_token;     // default: $HF_TOKEN
  std::string registry;     // OCI base URL override (--registry), e.g. http://127.0.0.1:5000
  int stall_timeout_s = 30;
  static RemoteOptions from_env();
};

struct RemoteFile {
  std::string role;  // "model" (one per split part, in order) or "mmproj"
  std::string name;
  std::string url;
  std::string digest;  // sha256:<hex>
  uint64_t size = 0;
};

struct RemoteModel {
  Reference ref;
  std::string source;                // repository / manifest URL
  std::vector<RemoteFile> files;
  std::vector<std::string> headers;  // authorization for the file URLs
  std::vector<std::string> quants;   // every quant the repository offers (Hugging Face)
  std::map<std::string, uint64_t> quant_sizes;  // quant -> bytes of its model files (all split parts)
  int requests = 0;                  // HTTP requests the resolution took
};

RemoteModel resolve_remote(const Reference& ref, const RemoteOptions& opt);

// "dir/name-00002-of-00005.gguf" -> {"dir/name", 2, 5}; nullopt for a file that is not a split part.
struct SplitName {
  std::string prefix;
  int index = 0, count = 0;
};
std::optional<SplitName> parse_split_name(const std::string& file_name);

// The quant named in a GGUF file name ("gemma-4-E2B-it-Q4_K_M-00001-of-00002.gguf" -> "Q4_K_M"), or "".
std::string quant_in_name(const std::string& file_name);

struct RemoteHeader {
  std::unique_ptr<std::vector<uint8_t>> bytes;  // the parsed File views these
  std::optional<gguf::File> file;
  int requests = 0;
  uint64_t fetched = 0;
};
// GETs bytes [0, n) and grows n (doubling, starting at `initial`) until the header parses, up to `max` bytes.
RemoteHeader fetch_header(const std::string& url, const std::vector<std::string>& headers, uint64_t file_size,
                          int stall_timeout_s, uint64_t initial = 2u << 20, uint64_t max = 128u << 20);

}  // namespace hearth::store
