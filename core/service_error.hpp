// What went wrong, in the service's own words: an error code and a message. The
// actors reply with it as a caf::error (actors/sandbox_errors.hpp registers `ec`
// with CAF); the facade (actors/service.hpp) returns it; only http/ turns it into
// an HTTP status and a wire shape (http/api_json.hpp, http/e2b_wire.hpp).
#pragma once

#include <cstdint>
#include <string>
#include <variant>

namespace codeexec {

enum class ec : std::uint8_t {
  none = 0,
  invalid_request,           ///< the request cannot be served as asked
  unavailable_language,      ///< this host cannot run that language
  not_supported_by_backend,  ///< the backend cannot do what the request asks
  files_not_supported,       ///< the backend has no files API
  shutting_down,             ///< the service refuses new work
  overloaded,                ///< MAX_CONCURRENT_EXECUTIONS reached
  key_execution_limit,       ///< the key runs KEY_MAX_CONCURRENT_EXECUTIONS already
  sandbox_limit,             ///< MAX_SANDBOXES live
  key_sandbox_limit,         ///< the key has KEY_MAX_SANDBOXES already
  execution_not_found,       ///< no running execution with that id (of that key)
  stdin_closed,              ///< the execution was not started interactive
  sandbox_not_found,         ///< no sandbox with that id (of that key)
  sandbox_ended,             ///< the sandbox ended meanwhile
  sandbox_start_failed,      ///< the sandbox or a kernel could not start
  sandbox_busy,              ///< the sandbox did not answer in time
  context_not_found,         ///< no context with that id in the sandbox
  too_many_contexts,         ///< MAX_CONTEXTS_PER_SANDBOX reached
  backend_error,             ///< the backend failed
  // The files API (sandbox/sandbox_files.hpp's file_errc).
  invalid_path,
  outside_workspace,
  file_not_found,
  not_a_file,
  not_a_directory,
  is_directory,
  file_too_large,
  no_space,
  permission_denied,
  io_error,
  // The E2B backend (e2b/api.hpp).
  e2b_unavailable,   ///< E2B could not be reached or failed (5xx)
  e2b_unauthorized,  ///< E2B rejected E2B_API_KEY
  e2b_rate_limited,  ///< E2B's rate limit
  e2b_refused,       ///< E2B refused the call (another 4xx, or a malformed reply)
  e2b_sandbox_gone,  ///< the E2B sandbox no longer exists
};

struct service_error {
  ec code = ec::none;
  std::string message;
  /// Seconds to wait before retrying, when the cause said (E2B's Retry-After); 0: the
  /// code's own default.
  int retry_after_seconds = 0;
};

/// A value or why there is none.
template <class T>
using result = std::variant<T, service_error>;

}  // namespace codeexec
