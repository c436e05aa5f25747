// The CLIENT SESSION actor (interface in actors.hpp): owns one WebSocket.
#pragma once

#include "actors/actors.hpp"
#include "actors/client_connection.hpp"
#include "core/metrics.hpp"

#include <caf/stateful_actor.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

namespace codeexec {

/// How much a session sends before it reports its cursor (the log keeps what follows the
/// last reported cursor: this bounds what one session holds there). It also reports
/// every 64 messages and 100 ms after its last message.
constexpr std::size_t session_report_bytes = 256 << 10;

/// How a session paces its socket.
struct session_settings {
  /// How often the client is pinged; 0 for never.
  std::chrono::milliseconds ping_interval{0};
  /// Over this many queued bytes the socket is behind: the clientId's executions wait.
  std::size_t high_water = 1 << 20;
  /// ...until it drains to this many.
  std::size_t low_water = 256 << 10;
  /// A socket that is behind and writes nothing for this long is closed (1008).
  std::chrono::milliseconds stall_timeout{10000};
};

struct client_session_state {
  // First, so the session counts as live and connected until its socket is released.
  metrics::actor_scope scope{metrics::actor_kind::client_session};
  metrics::live_scope connected{metrics::live_gauge::websocket_clients};
  std::string client_id;
  /// The socket. Released when the actor ends, which closes it if still open.
  std::shared_ptr<client_connection> connection;
  client_registry_actor registry;
  session_settings settings;
  /// The last eventId handed to the socket.
  std::uint64_t cursor = 0;
  /// A replayed batch was asked for and has not ended yet.
  bool pulling = true;
  /// The log holds messages after the cursor that the socket has not been given.
  bool behind = false;
  /// Over the high-water mark: the registry holds the clientId's executions.
  bool pressured = false;
  /// A drain notification is armed.
  bool waiting_drain = false;
  /// A `progress` timer is pending (one at a time).
  bool timer_armed = false;
  /// Sent since the cursor was last reported: the log keeps what follows a reported one.
  std::size_t unreported_bytes = 0;
  std::size_t unreported_messages = 0;

  static inline const char* name = "client_session";
};

client_session_actor::behavior_type client_session(
    client_session_actor::stateful_pointer<client_session_state> self, std::string client_id,
    std::shared_ptr<client_connection> connection, client_registry_actor registry,
    session_settings settings, std::optional<std::uint64_t> last_event_id);

}  // namespace codeexec
