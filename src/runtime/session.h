// One sequence evaluated step by step: a model, its KV cache, a thread pool. The prompt is evaluated in
// batches of up to n_batch tokens, then one token per step. Used by `hearth generate` and `hearth logits`.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "kernels/threadpool.h"
#include "models/model.h"

namespace hearth::runtime {

struct SessionOptions {
  int n_ctx = 4096;
  int n_batch = 512;
  models::KvType kv_type = models::KvType::F16;
  int n_threads = 0;  // 0: one per hardware thread
};

class Session {
 public:
  Session(models::Model& model, const SessionOptions& opt);

  // Appends tokens to the sequence. Returns the logits after the last one (n_vocab floats, valid until
  // the next call). With all_logits, logits() holds one row per token instead.
  const float* eval(const std::vector<int32_t>& tokens, bool all_logits = false);
  const std::vector<float>& logits() const { return out_.logits; }

  // Clears the cache, evaluates `tokens` as a new sequence and returns the mean of their final-normed
  // hidden states (n_embd floats). The cache holds `tokens` afterwards.
  std::vector<float> mean_hidden(const std::vector<int32_t>& tokens);

  int32_t n_past() const { return kv_->n_past(0); }
  int n_ctx() const { return opt_.n_ctx; }
  void reset() { kv_->clear(0); }
  bool truncate(int32_t n) { return kv_->truncate(0, n); }
  models::Model& model() { return model_; }
  const models::KvCache& kv() const { return *kv_; }
  kernels::ThreadPool& pool() { return pool_; }

 private:
  models::Model& model_;
  SessionOptions opt_;
  kernels::ThreadPool pool_;
  std::unique_ptr<models::KvCache> kv_;
  models::Batch batch_;
  models::ForwardOutput out_;
};

}  // namespace hearth::runtime
