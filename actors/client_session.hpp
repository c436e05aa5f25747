// The CLIENT SESSION actor (interface in actors.hpp): owns one WebSocket.
#pragma once

#include "actors/actors.hpp"
#include "actors/client_connection.hpp"

#include <caf/stateful_actor.hpp>

#include <memory>
#include <string>

namespace codeexec {

struct client_session_state {
  std::string client_id;
  /// The socket. Released when the actor ends, which closes it if still open.
  std::shared_ptr<client_connection> connection;

  static inline const char* name = "client_session";
};

client_session_actor::behavior_type client_session(
    client_session_actor::stateful_pointer<client_session_state> self, std::string client_id,
    std::shared_ptr<client_connection> connection, client_registry_actor registry);

}  // namespace codeexec
