#include "actors/client_session.hpp"

#include "actors/actor_metrics.hpp"
#include "core/json_mapping.hpp"
#include "core/log.hpp"

#include <caf/all.hpp>

namespace codeexec {

client_session_actor::behavior_type client_session(
    client_session_actor::stateful_pointer<client_session_state> self, std::string client_id,
    std::shared_ptr<client_connection> connection, client_registry_actor registry,
    std::chrono::milliseconds ping_interval) {
  count_exit(self, metrics::actor_kind::client_session);
  self->state.client_id = std::move(client_id);
  self->state.connection = std::move(connection);
  self->state.ping_interval = ping_interval;
  self->state.registry = registry;
  self->send(registry, atom::attach_v, self->state.client_id,
             caf::actor_cast<client_session_actor>(self));
  if (ping_interval.count() > 0) self->delayed_send(self, ping_interval, atom::tick_v);
  log::debug("websocket client connected", {{"clientId", self->state.client_id}});
  return {
      [self](atom::deliver, std::string& message) {
        auto& st = self->state;
        if (!st.connection) return;
        const auto bytes = message.size();
        if (st.connection->send_text(std::move(message))) {
          metrics::websocket_message_sent(bytes);
        } else {
          metrics::websocket_message_dropped();
          log::info("websocket client too slow or gone: closed", {{"clientId", st.client_id}});
          st.connection.reset();
          self->quit();
        }
      },
      [self](atom::received, const std::string& message) {
        auto& st = self->state;
        // The one message a client sends: input for a running execution's stdin,
        // {"type": "stdin", "executionId", "data"?, "eof"?}.
        const auto doc = nlohmann::json::parse(message, nullptr, false);
        const auto* data = doc.is_object() ? &doc : nullptr;
        if (data && string_field(doc, "type") == "stdin" &&
            !string_field(doc, "executionId").empty()) {
          const auto eof_it = doc.find("eof");
          const bool eof = eof_it != doc.end() && eof_it->is_boolean() && eof_it->get<bool>();
          self->send(st.registry, atom::input_v, st.client_id, string_field(doc, "executionId"),
                     string_field(doc, "data"), eof);
          return;
        }
        log::debug("ignoring a websocket message that is not stdin input",
                   {{"clientId", st.client_id}, {"bytes", message.size()}});
        if (st.connection)
          st.connection->send_text(dump({{"type", "error"},
                                         {"executionId", nullptr},
                                         {"name", "InvalidMessage"},
                                         {"value",
                                          "Clients may send only {\"type\": \"stdin\", "
                                          "\"executionId\", \"data\", \"eof\"}"}}));
      },
      [self](atom::closed) {
        log::debug("websocket client disconnected", {{"clientId", self->state.client_id}});
        self->state.connection.reset();
        self->quit();
      },
      [self](atom::close, std::uint16_t code, std::string& reason) {
        log::info("closing websocket",
                  {{"clientId", self->state.client_id}, {"code", code}, {"reason", reason}});
        if (self->state.connection) self->state.connection->close(code, std::move(reason));
        self->state.connection.reset();
        self->quit();
      },
      [self](atom::tick) {
        auto& st = self->state;
        if (!st.connection) return;
        // A client that let a whole interval pass since the previous ping unanswered is gone.
        if (st.connection->since_last_pong() > 2 * st.ping_interval) {
          log::info("websocket client did not answer pings: closed", {{"clientId", st.client_id}});
          st.connection->close(1001, "ping timeout");
          st.connection.reset();
          self->quit();
          return;
        }
        st.connection->ping();
        self->delayed_send(self, st.ping_interval, atom::tick_v);
      },
  };
}

}  // namespace codeexec
