// The service as the HTTP layer sees it: plain C++ calls in, callbacks out. It owns
// the actor system; neither CAF nor RESTinio types cross this boundary.
#pragma once

#include "actors/client_connection.hpp"
#include "core/api_error.hpp"
#include "core/config.hpp"
#include "core/execution.hpp"
#include "core/request_parsing.hpp"
#include "core/sandbox_spec.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>

namespace codeexec {

/// One connected WebSocket, as the HTTP layer holds it.
struct client_link;
struct sandbox_record;

/// A JSON answer or a client error.
using json_result = std::variant<nlohmann::json, api_error>;
/// Called exactly once, from an actor thread, with the answer.
using json_callback = std::function<void(json_result)>;

class service {
 public:
  /// Starts the actor system and the sandbox backend; throws std::runtime_error
  /// with the reason (and the fix) if the backend cannot work here.
  explicit service(const config& cfg);
  ~service();
  service(const service&) = delete;
  service& operator=(const service&) = delete;

  /// Runs code; `done` is called exactly once, from an actor thread, with the report.
  /// Returns the execution id, or why it was not started.
  std::variant<std::string, api_error> execute(execution_request request,
                                               std::function<void(execution_report)> done);

  /// Runs code whose events go to the WebSocket clients of request.client_id.
  std::variant<std::string, api_error> execute_stream(execution_request request);

  /// Runs code whose events go to `on_event` as they happen (in order, from an actor
  /// thread; errors the service decides on come last) and whose report goes to `done`.
  std::variant<std::string, api_error> execute_events(
      execution_request request, std::function<void(const kernel_event&)> on_event,
      std::function<void(execution_report)> done);

  /// Stops a running execution of `owner` (its client left); its report follows.
  void cancel_execution(const std::string& owner, const std::string& execution_id,
                        std::string reason);

  /// Input for a running execution of `owner` (202 when accepted).
  std::optional<api_error> send_stdin(const std::string& owner, const std::string& execution_id,
                                      stdin_request input);

  // ---- stateful sandboxes (a sandbox belongs to the key that created it) ----

  /// Creates a sandbox; `done` gets its description once its first kernel is ready.
  void create_sandbox(sandbox_request request, json_callback done);
  json_result list_sandboxes(const std::string& owner) const;
  json_result get_sandbox(const std::string& owner, const std::string& id) const;
  /// Whether `owner` has the sandbox `id` (a lookup, without building its JSON).
  bool has_sandbox(const std::string& owner, const std::string& id) const;
  /// Ends a sandbox; `done` is called once its processes are gone.
  void delete_sandbox(const std::string& owner, const std::string& id, json_callback done);
  /// Sets a sandbox's idle timeout, counted from now.
  json_result set_sandbox_timeout(const std::string& owner, const std::string& id,
                                  std::chrono::milliseconds timeout);
  /// Interrupts the running cells of a sandbox (of one context, if given).
  void interrupt_sandbox(const std::string& owner, const std::string& id,
                         const std::string& context_id, json_callback done);

  void create_context(const std::string& owner, const std::string& id, context_request request,
                      json_callback done);
  void list_contexts(const std::string& owner, const std::string& id, json_callback done);
  void delete_context(const std::string& owner, const std::string& id,
                      const std::string& context_id, json_callback done);
  void restart_context(const std::string& owner, const std::string& id,
                       const std::string& context_id, json_callback done);

  /// Files in a sandbox's /home/user and /tmp.
  std::variant<std::string, api_error> read_file(const std::string& owner, const std::string& id,
                                                 const std::string& path) const;
  json_result write_file(const std::string& owner, const std::string& id, const std::string& path,
                         std::string_view data) const;
  json_result list_files(const std::string& owner, const std::string& id,
                         const std::string& path) const;

  /// A WebSocket for a clientId of `owner` (an API key identity, or "") opened; it
  /// receives that clientId's events from now on (and the replay of recent executions).
  /// Pings go out every `ws_ping_interval` of the config.
  std::shared_ptr<client_link> connect_client(const std::string& owner, std::string client_id,
                                              std::shared_ptr<client_connection> connection);
  /// A text message arrived on a WebSocket.
  void client_message(const client_link& link, std::string message);
  /// The WebSocket closed (by the peer or because it broke).
  void client_closed(const client_link& link);
  /// Closes a WebSocket that broke a rule (too big, too fast) with `code` and `reason`.
  void close_client(const client_link& link, std::uint16_t code, std::string reason);

  /// Liveness and what the backend enforces, for GET /health.
  nlohmann::json health() const;

  /// Readiness for GET /ready: {"ready": bool, "reasons": [...]}.
  nlohmann::json readiness() const;

  /// The Prometheus text exposition for GET /metrics.
  std::string metrics_text() const;

  /// Refuses new work, lets running executions finish for up to `grace`, cancels
  /// what still runs, then tells every WebSocket and closes it with 1001.
  void shutdown(std::chrono::milliseconds grace);
  /// Cuts a running shutdown short: cancels every execution now (a second SIGTERM).
  void force_shutdown();
  /// Ends every actor within bounds, once shutdown() ran and the server stopped: the
  /// known ones get user_shutdown, then kill after SHUTDOWN_KILL_MS. Returns the actors
  /// still alive after that, by kind: empty when all ended. With stragglers, the caller
  /// exits without destroying the service (its destructor would wait for them).
  std::map<std::string, std::uint64_t> stop();

 private:
  struct impl;
  /// Starts (or takes from the pool) the sandbox of `record` and adopts it.
  void start_sandbox(std::shared_ptr<sandbox_record> record, std::chrono::milliseconds idle_timeout,
                     json_callback done);
  std::unique_ptr<impl> impl_;
};

/// The registry's name for a clientId: a clientId belongs to the key that uses it.
std::string scoped_client_id(const std::string& owner, const std::string& client_id);

}  // namespace codeexec
