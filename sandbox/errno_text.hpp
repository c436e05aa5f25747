// "what: strerror(err)", the form of the sandbox's error messages.
#pragma once

#include <cstring>
#include <string>

namespace codeexec::sandbox {

inline std::string errno_text(const char* what, int err) {
  return std::string(what) + ": " + std::strerror(err);
}

}  // namespace codeexec::sandbox
