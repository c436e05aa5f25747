#include "actors/client_session.hpp"

#include "core/log.hpp"

#include <caf/all.hpp>

namespace codeexec {

client_session_actor::behavior_type client_session(
    client_session_actor::stateful_pointer<client_session_state> self, std::string client_id,
    std::shared_ptr<client_connection> connection, client_registry_actor registry) {
  self->state.client_id = std::move(client_id);
  self->state.connection = std::move(connection);
  self->send(registry, atom::attach_v, self->state.client_id,
             caf::actor_cast<client_session_actor>(self));
  log::debug("websocket client connected", {{"clientId", self->state.client_id}});
  return {
      [self](atom::deliver, std::string& message) {
        if (self->state.connection) self->state.connection->send_text(std::move(message));
      },
      [self](atom::received, const std::string& message) {
        // Clients only listen for now; stdin from clients arrives with stateful sandboxes.
        log::debug("ignoring a message from a websocket client",
                   {{"clientId", self->state.client_id}, {"bytes", message.size()}});
      },
      [self](atom::closed) {
        log::debug("websocket client disconnected", {{"clientId", self->state.client_id}});
        self->state.connection.reset();
        self->quit();
      },
      [self](atom::close, std::uint16_t code, std::string& reason) {
        if (self->state.connection) self->state.connection->close(code, std::move(reason));
        self->state.connection.reset();
        self->quit();
      },
  };
}

}  // namespace codeexec
