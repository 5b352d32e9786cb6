// hearth pull (and the remote half of hearth fit).
#include "cli/commands.h"
#include "cli/fit_report.h"
#include "core/error.h"

namespace hearth::cli {

FitSource fetch_remote_header(const std::string& ref) {
  throw Error("'" + ref + "' is not a file (remote references are not supported yet)");
}

}  // namespace hearth::cli
