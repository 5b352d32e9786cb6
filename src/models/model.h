// What every architecture provides to the runtime: hyperparameters, the layout of its KV cache, and a
// forward pass over a batch of tokens (several sequences may share one batch).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gguf/reader.h"
#include "kernels/threadpool.h"
#include "models/kv_cache.h"

namespace hearth::models {

struct ModelInfo {
  std::string arch;        // general.architecture
  std::string name;        // general.name or the file name
  int n_vocab = 0;
  int n_embd = 0;
  int n_layer = 0;
  int n_ctx_train = 0;
  int64_t n_params = 0;    // elements of all tensors
  uint64_t weight_bytes = 0;
};

// Tokens to evaluate. Positions of one sequence must continue that sequence's cache (pos == n_past,
// n_past + 1, ...), in order.
struct Batch {
  std::vector<int32_t> tokens;
  std::vector<int32_t> pos;
  std::vector<int32_t> seq;
  std::vector<uint8_t> want_logits;

  void add(int32_t token, int32_t p, int32_t s, bool logits) {
    tokens.push_back(token);
    pos.push_back(p);
    seq.push_back(s);
    want_logits.push_back(logits ? 1 : 0);
  }
  size_t size() const { return tokens.size(); }
  void clear() {
    tokens.clear();
    pos.clear();
    seq.clear();
    want_logits.clear();
  }
};

struct ForwardOutput {
  // One row of n_vocab logits per batch token with want_logits set, in batch order.
  std::vector<float> logits;
  int n_rows = 0;
  // With want_hidden: the final-normed hidden state (the LM head's input) of the same rows, n_embd each.
  bool want_hidden = false;
  std::vector<float> hidden;
  const float* row(int i, int n_vocab) const { return logits.data() + size_t(i) * size_t(n_vocab); }
};

struct LoadOptions {
  bool verbose = false;
};

class Model {
 public:
  virtual ~Model() = default;
  virtual const ModelInfo& info() const = 0;
  virtual std::vector<KvLayerSpec> kv_layout() const = 0;
  // Evaluates the batch, writes its keys/values into `kv` and advances kv.n_past of the sequences.
  // Throws hearth::Error for invalid tokens or positions.
  virtual void forward(const Batch& batch, KvCache& kv, ForwardOutput& out, kernels::ThreadPool& pool) = 0;

  std::unique_ptr<KvCache> make_cache(const KvCacheOptions& opt) const {
    return std::make_unique<KvCache>(kv_layout(), opt);
  }
};

// Loads the architecture named in general.architecture. The GGUF file must outlive the model.
std::unique_ptr<Model> load_model(std::shared_ptr<const gguf::File> file, const LoadOptions& opt = {});

// Architectures register here (registry.cpp): one line per architecture.
using ModelFactory = std::unique_ptr<Model> (*)(std::shared_ptr<const gguf::File>, const LoadOptions&);
struct ArchEntry {
  const char* arch;
  ModelFactory make;
};
const std::vector<ArchEntry>& architectures();

}  // namespace hearth::models
