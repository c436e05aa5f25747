// The CLIENT SESSION actor (interface in actors.hpp): owns one WebSocket.
#pragma once

#include "actors/actors.hpp"
#include "actors/client_connection.hpp"
#include "core/metrics.hpp"

#include <caf/stateful_actor.hpp>

#include <chrono>
#include <memory>
#include <string>

namespace codeexec {

struct client_session_state {
  // First, so the session counts as live and connected until its socket is released.
  metrics::actor_scope scope{metrics::actor_kind::client_session};
  metrics::live_scope connected{metrics::live_gauge::websocket_clients};
  std::string client_id;
  /// The socket. Released when the actor ends, which closes it if still open.
  std::shared_ptr<client_connection> connection;
  client_registry_actor registry;
  /// How often the client is pinged; 0 for never.
  std::chrono::milliseconds ping_interval{0};

  static inline const char* name = "client_session";
};

client_session_actor::behavior_type client_session(
    client_session_actor::stateful_pointer<client_session_state> self, std::string client_id,
    std::shared_ptr<client_connection> connection, client_registry_actor registry,
    std::chrono::milliseconds ping_interval);

}  // namespace codeexec
