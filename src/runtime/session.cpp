#include "runtime/session.h"

#include <algorithm>

#include "core/error.h"

namespace hearth::runtime {

namespace {
int resolve_threads(int n) { return n > 0 ? n : kernels::ThreadPool::default_threads(); }
}  // namespace

Session::Session(models::Model& model, const SessionOptions& opt)
    : model_(model), opt_(opt), pool_(resolve_threads(opt.n_threads)) {
  models::KvCacheOptions ko;
  ko.n_ctx = opt.n_ctx;
  ko.n_seq = 1;
  ko.type = opt.kv_type;
  ko.max_ubatch = std::max(1, opt.n_batch);
  kv_ = model.make_cache(ko);
}

const float* Session::eval(const std::vector<int32_t>& tokens, bool all_logits) {
  if (tokens.empty()) throw Error("nothing to evaluate");
  if (size_t(n_past()) + tokens.size() > size_t(opt_.n_ctx))
    throw Error("context full: " + std::to_string(n_past()) + " + " + std::to_string(tokens.size()) +
                " tokens exceed the context size " + std::to_string(opt_.n_ctx));
  batch_.clear();
  int32_t pos = n_past();
  for (size_t i = 0; i < tokens.size(); ++i) batch_.add(tokens[i], pos++, 0, all_logits || i + 1 == tokens.size());
  model_.forward(batch_, *kv_, out_, pool_);
  const int n_vocab = model_.info().n_vocab;
  return out_.logits.data() + size_t(out_.n_rows - 1) * size_t(n_vocab);
}

std::vector<float> Session::mean_hidden(const std::vector<int32_t>& tokens) {
  reset();
  out_.want_hidden = true;
  struct Reset {
    models::ForwardOutput& o;
    ~Reset() { o.want_hidden = false; }
  } reset_hidden{out_};
  eval(tokens, /*all_logits=*/true);  // the model keeps hidden states of the rows that ask for logits
  const size_t d = size_t(model_.info().n_embd);
  std::vector<double> sum(d, 0.0);
  for (int r = 0; r < out_.n_rows; ++r)
    for (size_t i = 0; i < d; ++i) sum[i] += out_.hidden[size_t(r) * d + i];
  std::vector<float> mean(d);
  for (size_t i = 0; i < d; ++i) mean[i] = float(sum[i] / std::max(1, out_.n_rows));
  return mean;
}

}  // namespace hearth::runtime
