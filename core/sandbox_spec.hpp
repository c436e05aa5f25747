// What a client asks for when it creates a stateful sandbox or a context in one.
#pragma once

#include "core/language.hpp"
#include "core/limits.hpp"

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

namespace codeexec {

struct e2b_extension;

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
  /// Set when E2B's API creates it: kept in the sandbox's record.
  std::shared_ptr<e2b_extension> e2b;
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

/// A stateful sandbox as the service describes it (a snapshot of its directory record).
struct sandbox_info {
  std::string id;
  language lang = language::python;
  std::chrono::system_clock::time_point created;
  /// When it will be destroyed if nothing uses it (moves with every use).
  std::chrono::system_clock::time_point expires;
  std::map<std::string, std::string> metadata;
  resource_limits limits;
};

/// Who a sandbox is to E2B's API (http/e2b_routes).
struct e2b_identity {
  std::string template_id;
  /// envd's access token; "" for none (the debug sandbox).
  std::string access_token;
};

/// What E2B's API adds to a sandbox. It lives in the sandbox's directory record (set
/// at creation, or when E2B's API first sees a sandbox made otherwise), so it ends with
/// the sandbox: nothing to reconcile.
struct e2b_extension {
  explicit e2b_extension(e2b_identity who, std::int64_t timeout = 0)
      : identity(std::move(who)), timeout_ms(timeout) {}
  const e2b_identity identity;
  /// The idle timeout last set through E2B's API, in ms (connect only ever extends it).
  std::atomic<std::int64_t> timeout_ms{0};
  std::mutex mutex;
  /// Cells run per context (or per language's default context): number_of_executions.
  std::map<std::string, std::uint64_t> executions;  // guarded by mutex
};

/// A sandbox as E2B's data plane finds it: by id alone (its token is the check).
struct extended_sandbox {
  std::string id;
  std::string owner;
  std::shared_ptr<e2b_extension> e2b;
};

/// One kernel of a sandbox, as the contexts API shows it.
struct context_info {
  std::string id;
  language lang = language::python;
  std::string cwd;
  /// The context a request without contextId uses for this language.
  bool is_default = false;
  /// Cells running (0 or 1) and waiting.
  std::size_t running = 0;
  std::size_t queued = 0;
};

}  // namespace codeexec
