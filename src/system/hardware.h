// What the machine has: cores and the memory a model may use (MemAvailable, capped by the cgroup's limit).
// Everything is read from files whose locations can be redirected, so tests can fake a machine, and
// HEARTH_MEM_LIMIT (bytes, or 512M / 8G / 1.5GiB) simulates a memory limit outright.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

namespace hearth::system {

struct Hardware {
  int cores = 1;                         // online CPUs this process may run on
  uint64_t mem_total = 0;                // MemTotal
  uint64_t mem_available = 0;            // MemAvailable (0 when unknown)
  std::optional<uint64_t> cgroup_limit;  // memory.max (v2) or memory.limit_in_bytes (v1), when limited
  uint64_t cgroup_usage = 0;             // memory.current / memory.usage_in_bytes
  std::optional<uint64_t> simulated_limit;  // HEARTH_MEM_LIMIT or --mem-limit
  // What a model may use: the simulated limit when set; otherwise MemAvailable, capped by the cgroup's
  // headroom (limit - usage).
  uint64_t usable = 0;
  std::string usable_source;  // "MemAvailable", "cgroup v2 memory.max", "HEARTH_MEM_LIMIT", ...
};

struct ProbePaths {
  std::string meminfo = "/proc/meminfo";
  std::string cgroup_self = "/proc/self/cgroup";
  std::string cgroup_root = "/sys/fs/cgroup";
};

// Reads the machine. `mem_limit_override` (e.g. from a --mem-limit option) wins over HEARTH_MEM_LIMIT.
Hardware probe(const ProbePaths& paths = {}, std::optional<uint64_t> mem_limit_override = std::nullopt);

// "MemAvailable:  123 kB" lines -> bytes; nullopt when the key is absent.
std::optional<uint64_t> meminfo_value(const std::string& meminfo_text, const std::string& key);
// "8G", "512M", "1.5GiB", "123456" (bytes), "max" -> nullopt. Throws hearth::Error for anything else.
std::optional<uint64_t> parse_size(const std::string& text);
std::string format_bytes(uint64_t n);  // "1.50 GiB"

}  // namespace hearth::system
