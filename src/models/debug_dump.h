// Dumps named intermediate tensors when HEARTH_DUMP=DIR is set, using llama.cpp's debug names
// (GEMMA4.md §4.8), so the two engines can be diffed layer by layer. Costs one getenv when off.
#pragma once
#include <cstdio>
#include <cstdlib>
#include <string>

namespace hearth::models {

class DebugDump {
 public:
  DebugDump() {
    const char* d = std::getenv("HEARTH_DUMP");
    if (d && *d) dir_ = d;
  }
  bool on() const { return !dir_.empty(); }
  void next_step() { ++step_; }
  // Writes n floats as DIR/hSS_NAME[-LAYER].f32 (token-major, like ggml's [width, tokens]).
  void dump(const char* name, int layer, const float* data, size_t n) const {
    if (dir_.empty()) return;
    char path[1024];
    if (layer >= 0)
      std::snprintf(path, sizeof path, "%s/h%02d_%s-%d.f32", dir_.c_str(), step_, name, layer);
    else
      std::snprintf(path, sizeof path, "%s/h%02d_%s.f32", dir_.c_str(), step_, name);
    if (FILE* f = std::fopen(path, "wb")) {
      std::fwrite(data, sizeof(float), n, f);
      std::fclose(f);
    }
  }

 private:
  std::string dir_;
  int step_ = -1;
};

}  // namespace hearth::models
