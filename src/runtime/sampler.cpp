#include "runtime/sampler.h"

#include <algorithm>
#include <cmath>

namespace hearth::runtime {

int32_t argmax(const float* x, int n) {
  int32_t best = 0;
  for (int i = 1; i < n; ++i)
    if (x[i] > x[best]) best = i;
  return best;
}

int32_t Sampler::sample(const float* logits, int n_vocab) {
  if (p_.temperature <= 0.0f) return argmax(logits, n_vocab);

  // top-k (k <= 0 keeps everything), candidates sorted by logit, descending.
  cands_.resize(size_t(n_vocab));
  for (int i = 0; i < n_vocab; ++i) cands_[size_t(i)] = {i, logits[i], 0.0f};
  auto by_logit = [](const Cand& a, const Cand& b) { return a.logit > b.logit || (a.logit == b.logit && a.id < b.id); };
  size_t k = p_.top_k > 0 ? std::min<size_t>(size_t(p_.top_k), cands_.size()) : cands_.size();
  std::partial_sort(cands_.begin(), cands_.begin() + std::ptrdiff_t(k), cands_.end(), by_logit);
  cands_.resize(k);
  // Tokens masked out (-inf, e.g. by a grammar) are never candidates, whatever top-k keeps.
  while (cands_.size() > 1 && cands_.back().logit == -INFINITY) cands_.pop_back();

  auto softmax = [&](float temp) {
    const float mx = cands_[0].logit;
    double sum = 0;
    for (Cand& c : cands_) {
      c.p = std::exp((c.logit - mx) / temp);
      sum += c.p;
    }
    for (Cand& c : cands_) c.p = float(c.p / sum);
  };
  softmax(1.0f);

  // top-p: the smallest prefix whose probability reaches p.
  if (p_.top_p < 1.0f) {
    double cum = 0;
    size_t keep = cands_.size();
    for (size_t i = 0; i < cands_.size(); ++i) {
      cum += cands_[i].p;
      if (cum >= p_.top_p) {
        keep = i + 1;
        break;
      }
    }
    cands_.resize(std::max<size_t>(1, keep));
  }
  // min-p: drop candidates below min_p times the top probability.
  if (p_.min_p > 0.0f) {
    const float floor = cands_[0].p * p_.min_p;
    size_t keep = 1;
    while (keep < cands_.size() && cands_[keep].p >= floor) ++keep;
    cands_.resize(keep);
  }
  // temperature, then draw.
  softmax(p_.temperature);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  const double r = u(rng_);
  double cum = 0;
  for (const Cand& c : cands_) {
    cum += c.p;
    if (r < cum) return c.id;
  }
  return cands_.back().id;
}

}  // namespace hearth::runtime
