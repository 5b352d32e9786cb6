#include "chat/generation.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "chat/gemma4_format.h"
#include "core/error.h"
#include "runtime/json_schema.h"
#include "runtime/tool_grammar.h"

namespace hearth::chat {

namespace {

constexpr const char* kWrapUp = "\n\nI have thought enough; time to write the answer.\n";

runtime::SamplerParams sampler_params(const Sampling& s) {
  runtime::SamplerParams sp;
  sp.temperature = s.temperature;
  sp.top_k = s.top_k;
  sp.top_p = s.top_p;
  sp.min_p = s.min_p;
  sp.seed = s.seed.value_or(std::random_device{}());
  return sp;
}

// Keywords that narrow what is valid beyond what the grammar builder supports; dropped for tool schemas.
void strip_unenforceable(json& s) {
  static const char* const kDrop[] = {"pattern", "multipleOf", "minimum", "maximum", "exclusiveMinimum",
                                      "exclusiveMaximum", "uniqueItems", "prefixItems", "not", "if", "then", "else",
                                      "propertyNames", "minProperties", "maxProperties", "contains", "minContains",
                                      "maxContains", "dependentRequired", "dependentSchemas", "patternProperties",
                                      "unevaluatedProperties", "unevaluatedItems", "minLength", "maxLength",
                                      "format", "allOf"};
  if (s.is_object()) {
    for (const char* k : kDrop) s.erase(k);
    for (auto& [k, v] : s.items()) strip_unenforceable(v);
  } else if (s.is_array()) {
    for (json& v : s) strip_unenforceable(v);
  }
}

bool tool_schema_compiles(const std::string& name, const json& parameters) {
  try {
    runtime::compile_gbnf(runtime::gemma4_tool_call_gbnf({{name, parameters}}, false, {1, 2, 3}));
    return true;
  } catch (const Error&) {
    return false;
  }
}

}  // namespace

json enforceable_tool_schema(const std::string& name, const json& parameters) {
  if (tool_schema_compiles(name, parameters)) return parameters;
  json stripped = parameters;
  strip_unenforceable(stripped);
  if (tool_schema_compiles(name, stripped)) return stripped;
  return json{{"type", "object"}};
}

void check_constraints(const ChatRequest& req) {
  if (req.response_format == ResponseFormat::JsonSchema)
    runtime::compile_gbnf(runtime::json_schema_to_gbnf(req.json_schema));
}

ChatRequest effective_request(const ChatRequest& in, const GenerationShared& sh, int* budget_out) {
  ChatRequest req = in;
  if (req.raw_prompt) {
    // Completions: the text continues as it is; there is no chat turn to think or call tools in.
    req.think = false;
    req.tools.clear();
  }
  // The thinking budget covers every token of the channel (its forced header included), and max_tokens
  // keeps room for the answer. A budget that cannot hold the channel's markers means no thinking.
  int budget = req.thinking_budget.value_or(sh.default_thinking_budget);
  if (req.max_tokens) budget = std::min(budget, *req.max_tokens - std::max(1, std::min(*req.max_tokens / 4, 256)));
  const int markers = 1 + int(sh.tok->encode("thought\n", false).size()) + 1;
  if (req.think && budget < markers + 1) req.think = false;
  if (budget_out) *budget_out = budget;
  return req;
}

std::vector<int32_t> prompt_tokens(const ChatRequest& req, const tokenizer::Tokenizer& tok) {
  if (req.raw_prompt) return tok.encode_prompt(*req.raw_prompt, /*parse_special=*/true);
  // The rendered text starts with "<bos>", which parse_special turns into the BOS token.
  return tok.encode(render_gemma4(req), /*parse_special=*/true);
}

std::shared_ptr<const runtime::TokenIndex> VocabTables::token_index() {
  std::lock_guard lk(mu_);
  if (!index_) index_ = std::make_shared<const runtime::TokenIndex>(tok_);
  return index_;
}

const std::vector<uint8_t>& VocabTables::visible_tokens() {
  std::lock_guard lk(mu_);
  if (visible_.empty()) {
    visible_.assign(size_t(tok_.n_vocab()), 0);
    for (int32_t id = 0; id < tok_.n_vocab(); ++id) {
      const auto type = tok_.type(id);
      if (type == tokenizer::TokenType::Control || type == tokenizer::TokenType::UserDefined ||
          type == tokenizer::TokenType::Unused)
        continue;
      for (unsigned char c : tok_.token_to_piece(id, false))
        if ((c > ' ' && c < 0x80) || (c >= 0x80 && type != tokenizer::TokenType::Byte)) {
          // Printable ASCII, or a whole non-ASCII character (byte tokens may be a fragment of one).
          visible_[size_t(id)] = 1;
          break;
        }
    }
  }
  return visible_;
}

GenerationShared make_generation_shared(const tokenizer::Tokenizer& tok) {
  GenerationShared sh;
  sh.tok = &tok;
  sh.ids = Gemma4Tokens::from(tok);
  sh.tables = std::make_shared<VocabTables>(tok);
  return sh;
}

bool is_looping(const std::vector<int32_t>& seq, int window) {
  const size_t n = seq.size(), w = size_t(window);
  if (window < 8 || n < w) return false;
  for (size_t p = 1; p <= w / 4; ++p) {
    bool periodic = true;
    for (size_t i = n - w + p; i < n && periodic; ++i) periodic = seq[i] == seq[i - p];
    if (periodic) return true;
  }
  return false;
}

Generation::Generation(const ChatRequest& req, const GenerationShared& shared, EventFn on_event,
                       std::string call_id_prefix)
    : req_(req),
      sh_(shared),
      on_event_(std::move(on_event)),
      sampler_(sampler_params(req.sampling)),
      work_(size_t(shared.tok->n_vocab())),
      parser_(*shared.tok, shared.ids) {
  const tokenizer::Tokenizer& tok = *sh_.tok;
  parser_.set_call_id_prefix(std::move(call_id_prefix));
  req_ = effective_request(req, sh_, &budget_);
  header_.push_back(sh_.ids.channel_open);
  for (int32_t t : tok.encode("thought\n", false)) header_.push_back(t);
  wrap_up_ = tok.encode(kWrapUp, false);
  prompt_ = prompt_tokens(req_, tok);

  // Constraints. JSON output and tool calls exclude each other: a JSON answer has no calls.
  tools_allowed_ = !req_.tools.empty() && req_.tool_choice != ToolChoice::None &&
                   req_.response_format == ResponseFormat::Text;
  if (req_.response_format == ResponseFormat::JsonSchema) {
    answer_grammar_ = runtime::compile_gbnf(runtime::json_schema_to_gbnf(req_.json_schema));
  } else if (req_.response_format == ResponseFormat::JsonObject) {
    answer_grammar_ = runtime::compile_gbnf(runtime::json_object_gbnf());
  } else if (tools_allowed_) {
    std::vector<runtime::ToolSpec> specs;
    for (const Tool& t : req_.tools)
      if (req_.tool_choice != ToolChoice::Function || t.name == req_.tool_choice_function)
        specs.push_back({t.name, enforceable_tool_schema(t.name, t.parameters())});
    tool_grammar_ = runtime::compile_gbnf(runtime::gemma4_tool_call_gbnf(
        specs, req_.parallel_tool_calls, {sh_.ids.tool_call_open, sh_.ids.tool_call_close, sh_.ids.quote}));
    // required / a named function: the answer is the call; auto: the grammar starts at <|tool_call>.
    if (req_.tool_choice == ToolChoice::Required || req_.tool_choice == ToolChoice::Function)
      answer_grammar_ = tool_grammar_;
  }
  if (answer_grammar_) matcher_.emplace(answer_grammar_, sh_.tables->token_index());

  if (req_.think) forced_.assign(header_.begin(), header_.end());
  answer_started_ = !req_.think;
  matcher_live_ = answer_started_ && answer_grammar_;
}

int32_t Generation::choose(const float* logits) {
  if (!forced_.empty()) {
    const int32_t t = forced_.front();
    forced_.pop_front();
    return t;
  }
  const int n_vocab = int(work_.size());
  std::copy(logits, logits + n_vocab, work_.begin());
  for (const auto& [id, c] : counts_)
    work_[size_t(id)] -= float(c) * req_.sampling.frequency_penalty + req_.sampling.presence_penalty;
  for (const auto& [id, bias] : req_.sampling.logit_bias)
    if (id < n_vocab) work_[size_t(id)] += bias;
  const Gemma4Tokens& ids = sh_.ids;
  auto ban = [&](int32_t id) {
    if (id >= 0) work_[size_t(id)] = -INFINITY;
  };
  const std::vector<int32_t>& eog = sh_.tok->eog_ids();
  if (in_thought_) {
    // Thinking ends only through <channel|>, which the engine writes when the budget is spent.
    for (int32_t id : eog) ban(id);
    for (int32_t id : {ids.tool_call_open, ids.channel_open, ids.turn_open}) ban(id);
  } else if (matcher_live_) {
    matcher_->apply(work_.data(), eog);
  } else {
    for (int32_t id : {ids.channel_open, ids.channel_close, ids.turn_open}) ban(id);
    if (!tools_allowed_) ban(ids.tool_call_open);
    if (req_.sampling.ignore_eos)
      for (int32_t id : eog) ban(id);
    if (first_answer_token_) {
      // The answer is never empty: its first token is visible text (or a tool call).
      const std::vector<uint8_t>& vis = sh_.tables->visible_tokens();
      for (int32_t id = 0; id < n_vocab; ++id)
        if (!vis[size_t(id)] && !(tools_allowed_ && id == ids.tool_call_open)) work_[size_t(id)] = -INFINITY;
    }
  }
  const int32_t t = sampler_.sample(work_.data(), n_vocab);
  if (!std::isfinite(work_[size_t(t)])) throw Error("internal: the constraints left no token to sample");
  if (req_.logprobs >= 0) {
    // log-softmax over what was allowed; the alternatives are the most likely allowed tokens.
    const float mx = *std::max_element(work_.begin(), work_.end());
    double sum = 0;
    for (float x : work_) sum += std::isfinite(x) ? std::exp(double(x - mx)) : 0.0;
    const float log_z = mx + float(std::log(sum));
    TokenLogprob lp;
    lp.token = sh_.tok->token_to_piece(t, false);
    lp.logprob = work_[size_t(t)] - log_z;
    std::vector<int32_t> order(static_cast<size_t>(n_vocab));
    for (int32_t i = 0; i < n_vocab; ++i) order[size_t(i)] = i;
    const size_t k = std::min<size_t>(size_t(req_.logprobs), order.size());
    std::partial_sort(order.begin(), order.begin() + std::ptrdiff_t(k), order.end(), [&](int32_t a, int32_t b) {
      return work_[size_t(a)] > work_[size_t(b)] || (work_[size_t(a)] == work_[size_t(b)] && a < b);
    });
    for (size_t i = 0; i < k && std::isfinite(work_[size_t(order[i])]); ++i)
      lp.top.emplace_back(sh_.tok->token_to_piece(order[i], false), work_[size_t(order[i])] - log_z);
    sampled_lp_ = std::move(lp);
  }
  return t;
}

void Generation::deliver(ChatEvent ev) {
  switch (ev.kind) {
    case ChatEvent::Kind::Content: {
      // Hold back text that may be the start of a stop string; cut at a complete one.
      stop_buf_ += ev.text;
      size_t cut = std::string::npos;
      for (const std::string& s : req_.stop) cut = std::min(cut, stop_buf_.find(s));
      size_t hold = 0;
      if (cut != std::string::npos) {
        stop_buf_.resize(cut);
        if (finish_.empty()) finish_ = "stop";
      } else {
        for (const std::string& s : req_.stop)
          for (size_t n = std::min(s.size() - 1, stop_buf_.size()); n > hold; --n)
            if (stop_buf_.compare(stop_buf_.size() - n, n, s, 0, n) == 0) {
              hold = n;
              break;
            }
      }
      ev.text = stop_buf_.substr(0, stop_buf_.size() - hold);
      stop_buf_.erase(0, stop_buf_.size() - hold);
      if (ev.text.empty()) return;
      res_.content += ev.text;
      ev.logprobs = std::move(pending_lp_);
      pending_lp_.clear();
      res_.logprobs.insert(res_.logprobs.end(), ev.logprobs.begin(), ev.logprobs.end());
      break;
    }
    case ChatEvent::Kind::Reasoning: res_.reasoning += ev.text; break;
    case ChatEvent::Kind::ToolCall: res_.tool_calls.push_back(ev.call); break;
    case ChatEvent::Kind::Error: res_.errors.push_back(ev.text); break;
    case ChatEvent::Kind::Done: break;
  }
  if (on_event_ && !on_event_(ev)) finish_ = "cancelled";
}

std::optional<int32_t> Generation::step(const float* logits) {
  if (!finish_.empty()) return std::nullopt;
  const int32_t tok = choose(logits);
  const Gemma4Tokens& ids = sh_.ids;
  if (sh_.tok->is_eog(tok)) {
    finish_ = "stop";
    return std::nullopt;
  }
  ++res_.usage.completion_tokens;
  ++counts_[tok];
  if (tok == ids.channel_open && !answer_started_) in_thought_ = true;
  if (in_thought_) {
    ++res_.usage.reasoning_tokens;
    thought_.push_back(tok);
  }
  if (in_thought_ && tok == ids.channel_close) {
    in_thought_ = false;
    answer_started_ = true;
    matcher_live_ = bool(answer_grammar_);
  } else if (answer_started_) {
    first_answer_token_ = false;
    // Advance the grammar, or start it when a tool call opens in `auto` mode.
    if (matcher_live_) {
      if (!matcher_->accept(tok)) throw Error("internal: the grammar rejected a token it allowed");
    } else if (tool_grammar_ && tok == ids.tool_call_open) {
      matcher_.emplace(tool_grammar_, sh_.tables->token_index());
      matcher_live_ = true;
      if (!matcher_->accept(tok)) throw Error("internal: the tool-call grammar does not start with <|tool_call>");
    }
  }

  // A sampled token read as content carries its log-probability to the delta that delivers its text.
  if (sampled_lp_ && parser_.state() == Gemma4OutputParser::State::Content && tok != ids.tool_call_open &&
      tok != ids.channel_open && tok != ids.channel_close)
    pending_lp_.push_back(std::move(*sampled_lp_));
  sampled_lp_.reset();
  parser_.push(tok, events_);
  for (ChatEvent& ev : events_) deliver(std::move(ev));
  events_.clear();
  if (!finish_.empty()) return std::nullopt;

  if (matcher_live_ && matcher_->must_end()) {
    finish_ = "stop";
    return std::nullopt;
  }
  if (req_.max_tokens && res_.usage.completion_tokens >= *req_.max_tokens) {
    finish_ = "length";
    return std::nullopt;
  }
  // Thinking control: close the channel when the budget is spent or the reasoning loops.
  // A budget too small for the wrap-up line besides some thinking of its own just closes the channel.
  if (in_thought_ && !close_scheduled_ && forced_.empty()) {
    const int wrap = int(wrap_up_.size());
    const bool with_wrap_up = budget_ >= int(header_.size()) + 8 + wrap + 1;
    const int left = budget_ - res_.usage.reasoning_tokens;
    if (is_looping(thought_, sh_.loop_window) || left <= (with_wrap_up ? wrap + 1 : 1)) {
      if (with_wrap_up && left >= wrap + 1) forced_.assign(wrap_up_.begin(), wrap_up_.end());
      forced_.push_back(ids.channel_close);
      close_scheduled_ = true;
    }
  }
  return tok;
}

void Generation::stop(const std::string& finish_reason) {
  if (finish_.empty()) finish_ = finish_reason;
}

ChatResult Generation::finish(const Usage& timing) {
  parser_.finish(events_);
  const std::string reason = finish_;
  for (ChatEvent& ev : events_) deliver(std::move(ev));
  events_.clear();
  if (!reason.empty()) finish_ = reason;
  if (finish_.empty()) finish_ = "stop";
  if (finish_ != "cancelled" && !stop_buf_.empty()) {
    // Text held for a stop string that never completed belongs to the answer.
    res_.content += stop_buf_;
    ChatEvent tail;
    tail.kind = ChatEvent::Kind::Content;
    tail.text = std::exchange(stop_buf_, std::string());
    if (on_event_) on_event_(tail);
  }
  if (finish_ == "stop" && !res_.tool_calls.empty()) finish_ = "tool_calls";
  res_.finish_reason = finish_;
  res_.usage.prompt_tokens = timing.prompt_tokens;
  res_.usage.cached_prompt_tokens = timing.cached_prompt_tokens;
  res_.usage.prompt_ms = timing.prompt_ms;
  res_.usage.decode_ms = timing.decode_ms;
  ChatEvent done;
  done.kind = ChatEvent::Kind::Done;
  done.finish_reason = finish_;
  done.usage = res_.usage;
  if (on_event_) on_event_(done);
  return res_;
}

}  // namespace hearth::chat
