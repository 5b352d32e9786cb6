// The one exception type hearth throws for bad input (files, requests, arguments).
// Messages name the offending key, tensor, field or value; callers print what() as is.
#pragma once
#include <stdexcept>
#include <string>

namespace hearth {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& msg) : std::runtime_error(msg) {}
};

}  // namespace hearth
