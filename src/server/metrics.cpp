#include "server/metrics.h"

#include <unistd.h>

#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace hearth::server {

namespace {

// The shortest text that reads back as `v` (0.025, not 0.025000000000000001).
std::string num(double v) {
  char buf[64];
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
    return buf;
  }
  for (int prec = 1; prec <= 17; ++prec) {
    std::snprintf(buf, sizeof buf, "%.*g", prec, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

void header(std::ostringstream& o, const char* name, const char* type, const char* help) {
  o << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
}

void metric(std::ostringstream& o, const char* name, const char* type, const char* help, double v) {
  header(o, name, type, help);
  o << name << ' ' << num(v) << '\n';
}

}  // namespace

std::string prom_label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

void Histogram::observe(double v) {
  for (size_t i = 0; i < bounds_.size(); ++i)
    if (v <= bounds_[i]) {
      ++counts_[i];
      break;
    }
  ++count_;
  sum_ += v;
}

std::string Histogram::render(const std::string& name) const {
  std::ostringstream o;
  uint64_t cum = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cum += counts_[i];
    o << name << "_bucket{le=\"" << num(bounds_[i]) << "\"} " << cum << '\n';
  }
  o << name << "_bucket{le=\"+Inf\"} " << count_ << '\n';
  o << name << "_sum " << num(sum_) << '\n';
  o << name << "_count " << count_ << '\n';
  return o.str();
}

Metrics::Metrics()
    : ttft_({0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}),
      duration_({0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300}) {}

void Metrics::count_request(const std::string& route, int status) {
  std::lock_guard lk(mu_);
  ++requests_[{route, status}];
}

void Metrics::observe_ttft(double seconds) {
  std::lock_guard lk(mu_);
  ttft_.observe(seconds);
}

void Metrics::observe_request(double seconds) {
  std::lock_guard lk(mu_);
  duration_.observe(seconds);
}

void Metrics::stream_started() {
  std::lock_guard lk(mu_);
  ++streams_;
}

void Metrics::stream_ended() {
  std::lock_guard lk(mu_);
  --streams_;
}

uint64_t Metrics::resident_bytes() {
  std::ifstream f("/proc/self/statm");
  uint64_t size = 0, resident = 0;
  if (!(f >> size >> resident)) return 0;
  return resident * uint64_t(sysconf(_SC_PAGESIZE));
}

std::string Metrics::render(const chat::ServiceStats& s) const {
  std::ostringstream o;
  {
    std::lock_guard lk(mu_);
    header(o, "hearth_http_requests_total", "counter", "HTTP requests answered, by route and status code.");
    for (const auto& [key, n] : requests_)
      o << "hearth_http_requests_total{route=\"" << prom_label(key.first) << "\",status=\"" << key.second << "\"} "
        << n << '\n';
    header(o, "hearth_time_to_first_token_seconds", "histogram",
           "Time from a generation request's arrival to its first generated token (reasoning, content or tool call).");
    o << ttft_.render("hearth_time_to_first_token_seconds");
    header(o, "hearth_request_duration_seconds", "histogram",
           "Time from a generation request's arrival to its last token.");
    o << duration_.render("hearth_request_duration_seconds");
    metric(o, "hearth_streams_active", "gauge", "Streaming responses being written now.", double(streams_));
  }
  metric(o, "hearth_requests_completed_total", "counter", "Generation requests the engine finished.",
         double(s.requests_done));
  metric(o, "hearth_requests_failed_total", "counter", "Generation requests the engine failed with an error.",
         double(s.requests_failed));
  metric(o, "hearth_requests_cancelled_total", "counter",
         "Generation requests cancelled before they finished (client disconnected).", double(s.requests_cancelled));
  metric(o, "hearth_prompt_tokens_total", "counter", "Prompt tokens of finished requests (cached ones included).",
         double(s.prompt_tokens));
  metric(o, "hearth_prompt_tokens_cached_total", "counter", "Prompt tokens reused from a slot's KV cache.",
         double(s.cached_prompt_tokens));
  metric(o, "hearth_generated_tokens_total", "counter", "Generated tokens (reasoning included).",
         double(s.completion_tokens));
  metric(o, "hearth_reasoning_tokens_total", "counter", "Generated reasoning (thinking) tokens.",
         double(s.reasoning_tokens));
  metric(o, "hearth_prefill_seconds_total", "counter", "Time spent evaluating prompts, summed over requests.",
         s.prompt_ms / 1000.0);
  metric(o, "hearth_decode_seconds_total", "counter", "Time spent generating, summed over requests.",
         s.decode_ms / 1000.0);
  const double prefilled = double(s.prompt_tokens) - double(s.cached_prompt_tokens);
  metric(o, "hearth_prefill_tokens_per_second", "gauge",
         "Prompt tokens evaluated per second of prefill, averaged over all requests so far.",
         s.prompt_ms > 0 ? prefilled * 1000.0 / s.prompt_ms : 0.0);
  metric(o, "hearth_decode_tokens_per_second", "gauge",
         "Tokens generated per second of decoding of one request, averaged over all requests so far.",
         s.decode_ms > 0 ? double(s.completion_tokens) * 1000.0 / s.decode_ms : 0.0);
  metric(o, "hearth_queue_depth", "gauge", "Requests waiting for a free slot.", double(s.queued));
  metric(o, "hearth_slots", "gauge", "Engine slots (--parallel).", double(s.slots));
  metric(o, "hearth_slots_busy", "gauge", "Engine slots running a request now.", double(s.busy_slots));
  metric(o, "hearth_kv_cells_used", "gauge", "KV cache cells holding tokens, all slots.", double(s.kv_cells_used));
  metric(o, "hearth_kv_cells_total", "gauge", "KV cache cells, all slots.", double(s.kv_cells_total));
  metric(o, "process_resident_memory_bytes", "gauge", "Resident memory of the hearth process.",
         double(resident_bytes()));
  return o.str();
}

}  // namespace hearth::server
