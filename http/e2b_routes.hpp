// E2B's own API over the local sandboxes, so that unmodified programs using the
// official SDKs (e2b, @e2b/code-interpreter) run on this service
// (docs/reference/e2b-protocol.md §1–§5). Library-free, like routes.hpp:
//
//   control plane   POST/GET /v2/sandboxes, GET/DELETE /sandboxes/{id},
//                   POST /sandboxes/{id}/timeout, POST /v2/sandboxes/{id}/connect
//   code interpreter (port 49999)  POST /execute (NDJSON), /contexts…, GET /health
//   envd             (port 49983)  GET /health, GET/POST /files
//
// An E2B sandbox is one of our stateful sandboxes; an E2B context one of its contexts.
#pragma once

#include "actors/service.hpp"
#include "core/access_policy.hpp"
#include "core/config.hpp"
#include "http/chunked_reply.hpp"
#include "http/e2b_wire.hpp"
#include "http/routes.hpp"

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <variant>
#include <vector>

namespace codeexec::http {

/// Which of E2B's surfaces a listener serves.
enum class e2b_plane {
  /// One port for everything (E2B_API_URL = E2B_SANDBOX_URL): the data plane is told
  /// apart by the E2b-Sandbox-Port header (or a `{port}-{id}.{domain}` Host).
  routed,
  /// The SDK's debug mode: localhost:49999, every request for the shared debug sandbox.
  debug_code_interpreter,
  /// The SDK's debug mode: localhost:49983 (envd).
  debug_envd,
};

class e2b_routes {
 public:
  /// `access` (keys, rate limits) is shared with the native API; it outlives this.
  e2b_routes(const config& cfg, service& svc, access_policy& access);

  /// Handles a request that came to a listener of `plane`; `respond` answers once.
  void handle(e2b_plane plane, const request_info& req, std::string body, responder respond);

 private:
  /// An E2B sandbox: one of our stateful sandboxes, with what E2B adds to it (its
  /// e2b_extension, kept in the sandbox's directory record).
  using entry_ptr = std::shared_ptr<const extended_sandbox>;
  /// One request on its way (e2b_call.hpp); shared by the continuations that answer it.
  struct call;
  using call_ptr = std::shared_ptr<call>;

  // Control plane (e2b_control_plane.cpp).
  void control_plane(const call_ptr& c);
  void create_sandbox(const call_ptr& c);
  void list_sandboxes(const call_ptr& c);
  void connect_sandbox(const call_ptr& c, const std::string& id);
  /// The caller's key identity from X-API-Key ("" when the service is open), or why not.
  std::variant<std::string, api_error> authenticate(const call& c);

  // Data plane (e2b_data_plane.cpp).
  void code_interpreter(const call_ptr& c, const entry_ptr& sandbox);
  void list_contexts(const call_ptr& c, const std::string& owner, const std::string& id);
  void create_context(const call_ptr& c, const std::string& owner, const std::string& id);
  /// DELETE /contexts/{id} (`remove`) or POST /contexts/{id}/restart.
  void change_context(const call_ptr& c, const std::string& owner, const std::string& id,
                      const std::string& context_id, bool remove);
  void execute(const call_ptr& c, const entry_ptr& sandbox);
  void start_execution(const call_ptr& c, const entry_ptr& sandbox, execution_request request,
                       const std::string& counter_key);
  void envd(const call_ptr& c, const entry_ptr& sandbox);
  void read_file(const call_ptr& c, const entry_ptr& sandbox);
  void upload_files(const call_ptr& c, const entry_ptr& sandbox);

  // Sandboxes (e2b_routes.cpp).
  /// Finds the sandbox a data-plane request names and checks it still lives and the
  /// caller holds its token; then runs `then`, else answers like E2B's edge proxy.
  void with_sandbox(const call_ptr& c, const std::string& id, bool debug, bool envd,
                    std::function<void(const call_ptr&, const entry_ptr&)> then);
  /// The shared sandbox of the debug ports, started on first use and again when gone.
  void with_debug_sandbox(std::function<void(std::variant<entry_ptr, api_error>)> then);
  /// Registers a new sandbox's default javascript context (E2B's sandboxes list default
  /// python and javascript contexts from the start), then calls `then`; where
  /// javascript is unavailable the sandbox simply has none.
  void add_default_contexts(const std::string& owner, const std::string& id,
                            std::function<void()> then);
  /// The E2B extension of `owner`'s sandbox `id`, made on first use for a sandbox not
  /// created through this API (native); null if the sandbox is gone.
  std::shared_ptr<e2b_extension> adopt(const std::string& owner, const std::string& id);

  const config& cfg_;
  service& service_;
  access_policy& access_;
  mutable std::mutex mutex_;
  // The debug sandbox, and who waits for it while it starts (guarded by mutex_).
  entry_ptr debug_sandbox_;
  bool debug_starting_ = false;
  std::vector<std::function<void(std::variant<entry_ptr, api_error>)>> debug_waiters_;
};

}  // namespace codeexec::http
