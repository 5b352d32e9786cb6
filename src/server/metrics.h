// Server metrics in the Prometheus text exposition format (version 0.0.4): HTTP requests by route and
// status, time to first token, request duration, and the engine's counters and gauges (ChatService::stats).
#pragma once
#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "chat/service.h"

namespace hearth::server {

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size(), 0) {}
  void observe(double v);
  // `name`_bucket{le=...}, `name`_sum, `name`_count lines (HELP/TYPE written by the caller).
  std::string render(const std::string& name) const;

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // cumulative counts are computed when rendering
  uint64_t count_ = 0;
  double sum_ = 0;
};

class Metrics {
 public:
  Metrics();
  void count_request(const std::string& route, int status);
  void observe_ttft(double seconds);
  void observe_request(double seconds);  // whole generation requests (submit → Done)
  void stream_started();
  void stream_ended();

  // The whole exposition: these counters plus the engine's stats and the process's resident memory.
  std::string render(const chat::ServiceStats& s) const;

  // Resident set size of this process (from /proc/self/statm), 0 when unavailable.
  static uint64_t resident_bytes();

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  Histogram ttft_;
  Histogram duration_;
  int64_t streams_ = 0;
};

// Escapes a Prometheus label value (backslash, double quote, newline).
std::string prom_label(const std::string& v);

}  // namespace hearth::server
