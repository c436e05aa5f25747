// A client-facing error: an HTTP status plus the body {"error": {"code", "message"}}.
#pragma once

#include <string>

namespace codeexec {

struct api_error {
  int status = 400;
  std::string code;
  std::string message;
  /// Seconds for a Retry-After header (503/429); 0 for none.
  int retry_after_seconds = 0;

  static api_error bad_request(std::string message) {
    return {400, "invalid_request", std::move(message)};
  }
};

}  // namespace codeexec
