#include "actors/client_session.hpp"

#include "actors/actor_metrics.hpp"
#include "core/json_mapping.hpp"
#include "core/log.hpp"

#include <caf/all.hpp>

#include <algorithm>

namespace codeexec {
namespace {

using session_pointer = client_session_actor::stateful_pointer<client_session_state>;

/// Ends the session, closing its socket with `code` and `reason` (0: already closed).
void end_session(session_pointer self, std::uint16_t code, std::string reason) {
  auto& st = self->state;
  if (st.connection && code != 0) st.connection->close(code, std::move(reason));
  st.connection.reset();
  self->quit();
}

constexpr std::size_t report_messages = 64;
constexpr auto report_delay = std::chrono::milliseconds(100);

/// Arms the `progress` timer unless one is pending.
void arm_timer(session_pointer self, std::chrono::milliseconds after) {
  auto& st = self->state;
  if (st.timer_armed) return;
  st.timer_armed = true;
  self->delayed_send(self, after, atom::progress_v);
}

/// How often a pressured session checks that its socket makes progress.
std::chrono::milliseconds stall_check(const client_session_state& st) {
  return std::max(std::chrono::milliseconds(20), st.settings.stall_timeout / 4);
}

/// Tells the registry how far the socket got, and whether it is over its high-water mark.
void report(session_pointer self) {
  auto& st = self->state;
  st.unreported_bytes = 0;
  st.unreported_messages = 0;
  self->send(st.registry, atom::pressure_v, st.client_id,
             caf::actor_cast<client_session_actor>(self), st.pressured, st.cursor);
}

/// Hands one message to the socket.
void send_to_socket(session_pointer self, std::string message) {
  auto& st = self->state;
  const auto bytes = message.size();
  if (!st.connection->send_text(std::move(message))) {
    end_session(self, 0, {});
    return;
  }
  metrics::websocket_message_sent(bytes);
  st.unreported_bytes += bytes;
  if (++st.unreported_messages >= report_messages || st.unreported_bytes >= session_report_bytes)
    report(self);
  else
    arm_timer(self, report_delay);  // an idle stream is reported soon too
}

/// Asks to be told (as `drained`) when the socket's queue is down to the low-water mark.
void wait_for_drain(session_pointer self) {
  auto& st = self->state;
  if (st.waiting_drain || !st.connection) return;
  st.waiting_drain = true;
  st.connection->when_drained(st.settings.low_water,
                              [weak = caf::actor_cast<caf::weak_actor_ptr>(self)] {
                                if (auto strong = caf::actor_cast<client_session_actor>(weak))
                                  caf::anon_send(strong, atom::drained_v);
                              });
}

/// The socket is over its high-water mark: the executions of its clientId wait for it.
void enter_pressure(session_pointer self) {
  auto& st = self->state;
  wait_for_drain(self);
  if (st.pressured) return;
  st.pressured = true;
  report(self);
  arm_timer(self, stall_check(st));
}

void leave_pressure(session_pointer self) {
  auto& st = self->state;
  if (!st.pressured) return;
  st.pressured = false;
  report(self);
}

/// After anything was queued: over the high-water mark, hold the stream.
void check_queue(session_pointer self) {
  auto& st = self->state;
  if (st.connection && st.connection->queued_bytes() >= st.settings.high_water)
    enter_pressure(self);
}

/// Asks the registry for what the socket missed, as much as its queue takes now.
void pull(session_pointer self) {
  auto& st = self->state;
  if (st.pulling || !st.behind || !st.connection) return;
  const auto queued = st.connection->queued_bytes();
  if (queued >= st.settings.high_water) {
    enter_pressure(self);
    return;
  }
  st.pulling = true;
  self->send(st.registry, atom::replay_v, st.client_id, caf::actor_cast<client_session_actor>(self),
             st.cursor, static_cast<std::uint64_t>(st.settings.high_water - queued));
}

}  // namespace

client_session_actor::behavior_type client_session(
    client_session_actor::stateful_pointer<client_session_state> self, std::string client_id,
    std::shared_ptr<client_connection> connection, client_registry_actor registry,
    session_settings settings, std::optional<std::uint64_t> last_event_id) {
  count_exit(self, metrics::actor_kind::client_session);
  auto& st = self->state;
  st.client_id = std::move(client_id);
  st.connection = std::move(connection);
  st.settings = settings;
  st.registry = registry;
  st.cursor = last_event_id.value_or(0);
  // The attach answers with a replayed batch (what was missed, or the replay window).
  st.pulling = true;
  self->send(registry, atom::attach_v, st.client_id, caf::actor_cast<client_session_actor>(self),
             last_event_id.has_value(), st.cursor);
  if (settings.ping_interval.count() > 0)
    self->delayed_send(self, settings.ping_interval, atom::tick_v);
  log::debug("websocket client connected", {{"clientId", st.client_id}});
  return {
      [self](atom::deliver, std::uint64_t id, std::string& message) {
        auto& st = self->state;
        if (!st.connection) return;
        if (id == 0) {  // a notice outside the stream (shutdown)
          send_to_socket(self, std::move(message));
          return;
        }
        if (id <= st.cursor) return;
        // Only the next message, when nothing older waits and the socket has room;
        // anything else is read back from the log once the socket drains.
        if (st.pulling || st.behind || id != st.cursor + 1 ||
            st.connection->queued_bytes() >= st.settings.high_water) {
          st.behind = true;
          pull(self);
          return;
        }
        st.cursor = id;
        send_to_socket(self, std::move(message));
        check_queue(self);
      },
      [self](atom::replay, std::uint64_t id, std::string& message) {
        auto& st = self->state;
        if (!st.connection) return;
        if (id == 0) {
          // What follows does not continue the cursor (trimmed, or a cursor from the future).
          st.cursor = 0;
          send_to_socket(self, std::move(message));
          return;
        }
        if (id <= st.cursor) return;
        st.cursor = id;
        send_to_socket(self, std::move(message));
      },
      [self](atom::caught_up, std::uint64_t covered, std::uint64_t head) {
        auto& st = self->state;
        st.pulling = false;
        st.cursor = std::max(st.cursor, covered);
        st.behind = st.cursor < head;
        if (!st.connection) return;
        check_queue(self);
        if (st.behind) {
          pull(self);
        } else if (st.pressured) {
          if (st.connection->queued_bytes() <= st.settings.low_water)
            leave_pressure(self);
          else
            wait_for_drain(self);
        }
      },
      [self](atom::drained) {
        auto& st = self->state;
        st.waiting_drain = false;
        if (!st.connection) return;
        if (st.behind)
          pull(self);
        else if (!st.pulling)
          leave_pressure(self);
      },
      [self](atom::progress) {
        auto& st = self->state;
        st.timer_armed = false;
        if (!st.connection) return;
        if (st.unreported_messages > 0) report(self);
        if (!st.pressured) return;
        const auto idle = st.connection->since_progress();
        if (st.connection->queued_bytes() > 0 && idle >= st.settings.stall_timeout) {
          log::info("websocket client too slow: no progress, closed",
                    {{"clientId", st.client_id}, {"stalledMs", idle.count()}});
          metrics::websocket_message_dropped();
          end_session(self, 1008,
                      "client too slow: nothing read for " + std::to_string(idle.count()) +
                          " ms; reconnect with lastEventId=<the last eventId received> to resume");
          return;
        }
        arm_timer(self, stall_check(st));
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
        end_session(self, 0, {});
      },
      [self](atom::close, std::uint16_t code, std::string& reason) {
        log::info("closing websocket",
                  {{"clientId", self->state.client_id}, {"code", code}, {"reason", reason}});
        end_session(self, code, std::move(reason));
      },
      [self](atom::tick) {
        auto& st = self->state;
        if (!st.connection) return;
        // A client that let a whole interval pass since the previous ping unanswered is gone,
        // unless it is reading what is queued before that ping (a slow reader).
        if (st.connection->since_last_pong() > 2 * st.settings.ping_interval &&
            st.connection->since_progress() > 2 * st.settings.ping_interval) {
          log::info("websocket client did not answer pings: closed", {{"clientId", st.client_id}});
          end_session(self, 1001, "ping timeout");
          return;
        }
        st.connection->ping();
        self->delayed_send(self, st.settings.ping_interval, atom::tick_v);
      },
  };
}

}  // namespace codeexec
