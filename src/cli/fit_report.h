// Shared by `hearth fit` and `hearth show`: where a model's header came from, and the memory plan report.
#pragma once
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "gguf/reader.h"
#include "system/hardware.h"
#include "system/memory_plan.h"

namespace hearth::cli {

struct FitSource {
  std::string description;                             // file path or remote URL
  std::vector<std::unique_ptr<std::vector<uint8_t>>> buffers;  // header bytes the parsed files point into
  std::vector<gguf::File> files;                       // one per split part
  std::map<std::string, uint64_t> quant_sizes;       // other quants of a remote repository
  std::vector<std::pair<std::string, uint64_t>> extras;  // e.g. the repository's vision projector
  int http_requests = 0;
  uint64_t bytes_fetched = 0;
};

// A reference that is not a local file: fetch only the GGUF header(s) with HTTP Range requests (cmd_pull.cpp).
// `registry`: OCI base URL override (--registry), empty for the default.
FitSource fetch_remote_header(const std::string& ref, const std::string& registry = "");

void print_fit(const system::ModelShape& m, const system::FitResult& r, const system::Hardware& hw,
               const FitSource& src);
nlohmann::json fit_json(const system::ModelShape& m, const system::FitResult& r, const system::Hardware& hw,
                        const FitSource& src);

}  // namespace hearth::cli
