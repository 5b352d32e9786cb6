// Model references: what a user types after `hearth pull|fit|show|rm`.
//
//   ./model.gguf, /abs/model.gguf     a plain path (never stored under a manifest)
//   hf.co/ORG/REPO[:QUANT]            a Hugging Face GGUF repository (default quant Q4_K_M)
//   ai/gemma4:e2b, HOST/NS/NAME:TAG   an OCI registry (Docker Hub's ai/ namespace by default)
//   gemma4:e2b                        an alias (aliases.cpp, or $HEARTH_MODELS/aliases.txt) or else an
//                                     Ollama-registry name (registry.ollama.ai/library/gemma4:e2b)
//
// Every name component is validated (validate_component): a reference can never name a path outside the store.
#pragma once
#include <string>
#include <utility>
#include <vector>

namespace hearth::store {

enum class RefKind { Path, HuggingFace, Oci };

struct Reference {
  RefKind kind = RefKind::Path;
  std::string path;              // Path
  std::string host;              // "hf.co", "registry-1.docker.io", "registry.ollama.ai", "local"
  std::vector<std::string> repo; // HF: {org, repo}; OCI: namespace components and name
  std::string tag;               // HF: the quant ("Q4_K_M"); OCI: the tag ("latest")
  bool ollama = false;           // an Ollama-registry model (its manifest's media types)
  std::string alias;             // the alias this came from, if any

  std::string repo_path() const;  // "org/repo", "ai/gemma4"
  std::string canonical() const;  // "hf.co/org/repo:Q4_K_M", "registry-1.docker.io/ai/gemma4:e2b"
};

// Throws hearth::Error with a clear message for anything malformed or hostile.
Reference parse_reference(const std::string& text);

// One path component of a name: [A-Za-z0-9_][A-Za-z0-9._-]*, at most 128 bytes, not "." or ".."; no NUL, no
// slash, no backslash. Throws hearth::Error naming `what`.
void validate_component(const std::string& s, const std::string& what);
// A file name inside a repository ("sub/dir/model-Q4_K_M.gguf"): relative, components validated.
void validate_repo_file(const std::string& s);
// "sha256:<64 lowercase hex>"; returns the hex. Throws hearth::Error.
std::string digest_hex(const std::string& digest);

// The alias table: built-in entries plus $HEARTH_MODELS/aliases.txt ("alias target" per line, # comments),
// whose entries win.
std::vector<std::pair<std::string, std::string>> aliases(const std::string& store_root);

}  // namespace hearth::store
