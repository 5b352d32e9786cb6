// Token sampling: greedy, or the llama.cpp-style chain top-k -> top-p -> min-p -> temperature -> draw,
// with a seeded generator so that a given seed reproduces the same text.
#pragma once
#include <cstdint>
#include <random>
#include <vector>

namespace hearth::runtime {

struct SamplerParams {
  float temperature = 0.8f;  // <= 0: greedy (argmax)
  int top_k = 40;            // <= 0: off
  float top_p = 0.95f;       // >= 1: off
  float min_p = 0.05f;       // <= 0: off
  uint64_t seed = 0;
};

class Sampler {
 public:
  explicit Sampler(const SamplerParams& p) : p_(p), rng_(p.seed) {}
  int32_t sample(const float* logits, int n_vocab);
  const SamplerParams& params() const { return p_; }

 private:
  struct Cand {
    int32_t id;
    float logit;
    float p;
  };
  SamplerParams p_;
  std::mt19937_64 rng_;
  std::vector<Cand> cands_;
};

// Index of the largest value; ties resolve to the lowest index (llama.cpp's greedy choice).
int32_t argmax(const float* x, int n);

}  // namespace hearth::runtime
