#include "core/execution.hpp"

namespace codeexec {

std::string_view to_string(verdict v) {
  switch (v) {
    case verdict::ok:
      return "ok";
    case verdict::error:
      return "error";
    case verdict::timeout:
      return "timeout";
    case verdict::memory_limit:
      return "memory_limit";
    case verdict::output_limit:
      return "output_limit";
    case verdict::killed:
      return "killed";
    case verdict::sandbox_error:
      return "sandbox_error";
  }
  return "unknown";
}

void execution_result::add(const kernel_event& event) {
  switch (event.type) {
    case kernel_event::kind::stdout_text:
      stdout_chunks.push_back(event.text);
      break;
    case kernel_event::kind::stderr_text:
      stderr_chunks.push_back(event.text);
      break;
    case kernel_event::kind::result:
      results.push_back(event.result);
      break;
    case kernel_event::kind::error:
      // Like E2B's JS SDK: the last error wins.
      error = event.error;
      if (status == verdict::ok) status = verdict::error;
      break;
  }
}

}  // namespace codeexec
