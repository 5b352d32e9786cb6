#include "system/hardware.h"

#include <sched.h>
#include <unistd.h>

#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace hearth::system {

namespace {
std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

std::optional<uint64_t> read_u64(const std::string& path) {
  auto t = read_file(path);
  if (!t) return std::nullopt;
  const std::string s = trim(*t);
  if (s.empty() || s == "max") return std::nullopt;
  char* end = nullptr;
  const unsigned long long v = std::strtoull(s.c_str(), &end, 10);
  if (end == s.c_str() || *end) return std::nullopt;
  return uint64_t(v);
}
}  // namespace

std::optional<uint64_t> meminfo_value(const std::string& text, const std::string& key) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, key.size() + 1, key + ":") != 0) continue;
    std::istringstream ls(line.substr(key.size() + 1));
    unsigned long long v = 0;
    std::string unit;
    if (!(ls >> v)) return std::nullopt;
    ls >> unit;
    return uint64_t(v) * (unit == "kB" ? 1024 : 1);
  }
  return std::nullopt;
}

std::optional<uint64_t> parse_size(const std::string& text) {
  const std::string s = trim(text);
  if (s == "max") return std::nullopt;
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (end == s.c_str() || !(v >= 0) || !std::isfinite(v)) throw Error("'" + text + "' is not a size (use e.g. 8G, 512M)");
  std::string unit(end);
  for (char& c : unit) c = char(std::toupper(static_cast<unsigned char>(c)));
  double mul = 1;
  if (unit.empty() || unit == "B") mul = 1;
  else if (unit == "K" || unit == "KB" || unit == "KIB") mul = 1024.0;
  else if (unit == "M" || unit == "MB" || unit == "MIB") mul = 1024.0 * 1024;
  else if (unit == "G" || unit == "GB" || unit == "GIB") mul = 1024.0 * 1024 * 1024;
  else if (unit == "T" || unit == "TB" || unit == "TIB") mul = 1024.0 * 1024 * 1024 * 1024;
  else throw Error("'" + text + "' has an unknown size unit (use K, M, G or T)");
  const double bytes = v * mul;
  if (bytes > 1.8e19) throw Error("'" + text + "' is too large");
  return uint64_t(bytes);
}

std::string format_bytes(uint64_t n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = double(n);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u ? "%.2f %s" : "%.0f %s", v, units[u]);
  return buf;
}

Hardware probe(const ProbePaths& paths, std::optional<uint64_t> mem_limit_override) {
  Hardware hw;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) hw.cores = std::max(1, CPU_COUNT(&set));
  else hw.cores = int(std::max(1L, sysconf(_SC_NPROCESSORS_ONLN)));

  if (auto mi = read_file(paths.meminfo)) {
    hw.mem_total = meminfo_value(*mi, "MemTotal").value_or(0);
    hw.mem_available = meminfo_value(*mi, "MemAvailable").value_or(meminfo_value(*mi, "MemFree").value_or(0));
  }

  // cgroup: v2 has a line "0::/path"; v1 has "N:memory:/path" (or a comma list containing memory).
  std::string source = "MemAvailable";
  if (auto cg = read_file(paths.cgroup_self)) {
    std::istringstream in(*cg);
    std::string line;
    while (std::getline(in, line)) {
      const size_t a = line.find(':');
      const size_t b = a == std::string::npos ? a : line.find(':', a + 1);
      if (b == std::string::npos) continue;
      const std::string controllers = line.substr(a + 1, b - a - 1);
      std::string rel = line.substr(b + 1);
      if (rel.find("..") != std::string::npos) continue;  // never walk outside the cgroup mount
      if (controllers.empty()) {
        // v2: the limit of this cgroup and of every ancestor applies; take the smallest headroom.
        std::string dir = rel;
        while (true) {
          const std::string base = paths.cgroup_root + (dir == "/" ? "" : dir);
          if (auto lim = read_u64(base + "/memory.max")) {
            const uint64_t use = read_u64(base + "/memory.current").value_or(0);
            if (!hw.cgroup_limit || *lim - std::min(*lim, use) < *hw.cgroup_limit - std::min(*hw.cgroup_limit, hw.cgroup_usage)) {
              hw.cgroup_limit = *lim;
              hw.cgroup_usage = use;
              source = "cgroup v2 memory.max";
            }
          }
          if (dir == "/" || dir.empty()) break;
          const size_t p = dir.rfind('/');
          dir = p == 0 || p == std::string::npos ? "/" : dir.substr(0, p);
        }
      } else if (("," + controllers + ",").find(",memory,") != std::string::npos) {
        for (const std::string& base : {paths.cgroup_root + "/memory" + (rel == "/" ? "" : rel), paths.cgroup_root + "/memory"}) {
          auto lim = read_u64(base + "/memory.limit_in_bytes");
          // v1 reports "no limit" as a huge number (PAGE_COUNTER_MAX pages).
          if (lim && *lim < (uint64_t(1) << 60)) {
            hw.cgroup_limit = *lim;
            hw.cgroup_usage = read_u64(base + "/memory.usage_in_bytes").value_or(0);
            source = "cgroup v1 memory.limit_in_bytes";
            break;
          }
        }
      }
    }
  }

  hw.usable = hw.mem_available;
  hw.usable_source = "MemAvailable";
  if (hw.cgroup_limit) {
    const uint64_t headroom = *hw.cgroup_limit - std::min(*hw.cgroup_limit, hw.cgroup_usage);
    if (hw.usable == 0 || headroom < hw.usable) {
      hw.usable = headroom;
      hw.usable_source = source;
    }
  }
  std::optional<uint64_t> sim = mem_limit_override;
  std::string sim_source = "--mem-limit";
  if (!sim) {
    if (const char* env = std::getenv("HEARTH_MEM_LIMIT"); env && *env) {
      sim = parse_size(env);
      sim_source = "HEARTH_MEM_LIMIT";
    }
  }
  if (sim) {
    hw.simulated_limit = sim;
    hw.usable = *sim;
    hw.usable_source = sim_source;
  }
  return hw;
}

}  // namespace hearth::system
