// Prometheus metrics of the service: the calls the actors and the HTTP layer make,
// and the text exposition `GET /metrics` serves.
//
// A compile firewall, like the HTTP layer: no prometheus-cpp header is included
// here, only metrics.cpp sees them. Every function is thread-safe and cheap enough
// for a hot path (an atomic add on a series resolved once, or a short locked
// lookup for series whose labels come from a call).
#pragma once

#include "core/execution.hpp"
#include "core/language.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace codeexec::metrics {

/// The actor kinds, the `kind` label of the actor metrics. A new kind also goes
/// into `all_actor_kinds` in metrics.cpp, which creates its series.
enum class actor_kind { execution, sandbox, client_session, client_registry };

std::string_view to_string(actor_kind kind);

/// Counts a spawn of `kind` when constructed, and one live actor of `kind` until
/// destroyed. A member of each actor's state: CAF builds the state when it spawns
/// the actor and destroys it when the actor ends, so the gauge follows the actor.
class actor_scope {
 public:
  explicit actor_scope(actor_kind kind);
  ~actor_scope();
  actor_scope(const actor_scope&) = delete;
  actor_scope& operator=(const actor_scope&) = delete;

 private:
  actor_kind kind_;
};

/// Counts an actor's exit. `reason` is a short name ("normal", "user_shutdown",
/// "kill", "error"…); an unbounded stream of distinct reasons is folded into
/// "other" so the label's cardinality stays bounded.
void actor_exited(actor_kind kind, std::string_view reason);

/// The actors alive now, by kind (kinds with none are left out).
std::map<std::string, std::uint64_t> live_actors();

/// What a `live_scope` counts while it exists.
enum class live_gauge {
  /// Sandbox processes (local backend), from launch until reaped.
  sandboxes,
  /// WebSocket clients, from the upgrade until the socket is released.
  websocket_clients,
};

/// Holds one unit of a live gauge for its lifetime.
class live_scope {
 public:
  explicit live_scope(live_gauge gauge);
  ~live_scope();
  live_scope(const live_scope&) = delete;
  live_scope& operator=(const live_scope&) = delete;

 private:
  live_gauge gauge_;
};

/// Sandboxes started ahead of demand and waiting in the warm pool.
void set_sandboxes_pooled(std::size_t count);

/// Launch-to-ready latency of one sandbox (the runner's `ready` event).
void sandbox_started(std::chrono::steady_clock::duration latency);

/// Actors whose mailbox depth is exported (the `actor` label; `pool` is for the
/// warm pool to come). A new value also goes into `all_mailbox_owners` in metrics.cpp.
enum class mailbox_owner { client_registry, pool };

/// The number of messages waiting in an actor's mailbox, sampled by the actor itself.
void set_mailbox_depth(mailbox_owner owner, std::size_t depth);

/// One execution ended with `status` after `duration` (request to final result).
void execution_finished(language lang, verdict status,
                        std::chrono::steady_clock::duration duration);

/// One message handed to a WebSocket, of `bytes` bytes.
void websocket_message_sent(std::size_t bytes);

/// One message that reached no WebSocket and was not kept for a later one.
void websocket_message_dropped();

/// One HTTP request answered. `route` is the route template ("/execute"), or
/// "other" for requests that matched no route; `status` the HTTP status code.
/// Only the first few distinct routes get their own label value, the rest count
/// as "other", so a caller passing raw paths cannot blow up the series count.
void http_request(std::string_view route, int status);

/// The Prometheus text exposition (format 0.0.4) of every metric of the service,
/// plus the standard `process_*` metrics read from /proc at call time.
std::string render_metrics();

}  // namespace codeexec::metrics
