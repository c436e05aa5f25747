// The service as the HTTP layer sees it: plain C++ calls in, callbacks out; domain
// types (sandbox_info, context_info, dir_listing…) and service_error come back, which
// http/ renders. It owns the actor system; neither CAF nor RESTinio types, nor JSON
// shapes or HTTP statuses, cross this boundary.
#pragma once

#include "actors/client_connection.hpp"
#include "core/config.hpp"
#include "core/execution.hpp"
#include "core/request_parsing.hpp"
#include "core/sandbox_spec.hpp"
#include "core/service_error.hpp"
#include "sandbox/sandbox_files.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace codeexec {

/// One connected WebSocket, as the HTTP layer holds it.
struct client_link;
struct sandbox_record;

/// Called exactly once, from an actor thread, with the answer or why there is none.
template <class T>
using reply_callback = std::function<void(result<T>)>;
/// Called exactly once, from an actor thread, when done: nothing, or why it failed.
using done_callback = std::function<void(std::optional<service_error>)>;

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
  result<std::string> execute(execution_request request,
                              std::function<void(execution_report)> done);

  /// Runs code whose events go to the WebSocket clients of request.client_id.
  result<std::string> execute_stream(execution_request request);

  /// Runs code whose events go to `on_event` as they happen (in order, from an actor
  /// thread; errors the service decides on come last) and whose report goes to `done`.
  result<std::string> execute_events(execution_request request,
                                     std::function<void(const kernel_event&)> on_event,
                                     std::function<void(execution_report)> done);

  /// Stops a running execution of `owner` (its client left); its report follows.
  void cancel_execution(const std::string& owner, const std::string& execution_id,
                        std::string reason);

  /// Input for a running execution of `owner`; nothing when accepted.
  std::optional<service_error> send_stdin(const std::string& owner, const std::string& execution_id,
                                          stdin_request input);

  // ---- stateful sandboxes (a sandbox belongs to the key that created it) ----

  /// Creates a sandbox; `done` gets its description once its first kernel is ready.
  void create_sandbox(sandbox_request request, reply_callback<sandbox_info> done);
  /// The sandboxes of `owner`, oldest first.
  std::vector<sandbox_info> list_sandboxes(const std::string& owner) const;
  result<sandbox_info> get_sandbox(const std::string& owner, const std::string& id) const;
  /// Whether `owner` has the sandbox `id` (a lookup, without describing it).
  bool has_sandbox(const std::string& owner, const std::string& id) const;
  /// What E2B's API adds to `owner`'s sandbox `id`: its extension, `make()` on first
  /// use. Null when there is no such sandbox.
  std::shared_ptr<e2b_extension> extend_sandbox(
      const std::string& owner, const std::string& id,
      const std::function<std::shared_ptr<e2b_extension>()>& make);
  /// The sandbox `id` with its E2B extension, whoever owns it (E2B's data plane knows
  /// the id alone and checks the extension's token); nothing if gone or not extended.
  std::optional<extended_sandbox> find_extended(const std::string& id) const;
  /// Ends a sandbox; `done` is called once its processes are gone.
  void delete_sandbox(const std::string& owner, const std::string& id, done_callback done);
  /// Sets a sandbox's idle timeout, counted from now.
  result<sandbox_info> set_sandbox_timeout(const std::string& owner, const std::string& id,
                                           std::chrono::milliseconds timeout);
  /// Interrupts the running cells of a sandbox (of one context, if given); `done` gets
  /// how many.
  void interrupt_sandbox(const std::string& owner, const std::string& id,
                         const std::string& context_id, reply_callback<std::uint64_t> done);

  void create_context(const std::string& owner, const std::string& id, context_request request,
                      reply_callback<context_info> done);
  void list_contexts(const std::string& owner, const std::string& id,
                     reply_callback<std::vector<context_info>> done);
  void delete_context(const std::string& owner, const std::string& id,
                      const std::string& context_id, done_callback done);
  void restart_context(const std::string& owner, const std::string& id,
                       const std::string& context_id, reply_callback<context_info> done);

  /// Files in a sandbox's /home/user and /tmp.
  result<std::string> read_file(const std::string& owner, const std::string& id,
                                const std::string& path) const;
  /// Writes a file; the bytes written.
  result<std::uint64_t> write_file(const std::string& owner, const std::string& id,
                                   const std::string& path, std::string_view data) const;
  result<sandbox::dir_listing> list_files(const std::string& owner, const std::string& id,
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
                     reply_callback<sandbox_info> done);
  std::unique_ptr<impl> impl_;
};

/// The registry's name for a clientId: a clientId belongs to the key that uses it.
std::string scoped_client_id(const std::string& owner, const std::string& client_id);

}  // namespace codeexec
