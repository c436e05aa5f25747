// What a client asks for when it creates a stateful sandbox or a context in one.
#pragma once

#include "core/language.hpp"
#include "core/limits.hpp"

#include <chrono>
#include <map>
#include <string>

namespace codeexec {

/// POST /sandboxes.
struct sandbox_request {
  /// The language of the sandbox's first (default) kernel.
  language lang = language::python;
  /// Idle time after which the sandbox is destroyed.
  std::chrono::milliseconds idle_timeout{300000};
  /// Variables every execution in the sandbox sees (an execution's own win).
  std::map<std::string, std::string> env;
  /// The client's labels, returned as given.
  std::map<std::string, std::string> metadata;
  resource_limits limits;
  /// The API key identity that asked ("" when the service has no keys).
  std::string owner;
};

/// POST /sandboxes/{id}/contexts.
struct context_request {
  language lang = language::python;
  /// Working directory of the new kernel, inside the sandbox.
  std::string cwd = "/home/user";
  /// The language's default context (the one a request without contextId uses),
  /// answered at once, without waiting for its kernel; an existing one is kept.
  /// E2B's sandboxes start with default python and javascript contexts.
  bool as_default = false;
};

}  // namespace codeexec
