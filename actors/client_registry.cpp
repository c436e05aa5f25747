#include "actors/client_registry.hpp"

#include "actors/actor_metrics.hpp"
#include "core/json_mapping.hpp"
#include "core/log.hpp"

#include <caf/all.hpp>

#include <algorithm>
#include <limits>

namespace codeexec {
namespace {

using registry_pointer = client_registry_actor::stateful_pointer<client_registry_state>;
using client = client_registry_state::client;

/// How often retention is enforced on streams nobody writes to.
constexpr auto retention_tick = std::chrono::seconds(1);

/// Exports how many messages wait behind the one being handled. Only the
/// mailbox's owner may read its size (the read moves newly arrived messages into
/// the owner's queue), so the registry samples it itself, once per message.
void sample_mailbox(registry_pointer self) {
  metrics::set_mailbox_depth(metrics::mailbox_owner::client_registry, self->mailbox().size());
}

client_registry_state::session_entry* find_session(client& c, const caf::actor_addr& addr) {
  const auto it = std::find_if(c.sessions.begin(), c.sessions.end(),
                               [&](const auto& s) { return s.actor.address() == addr; });
  return it == c.sessions.end() ? nullptr : &*it;
}

/// Sends a session the messages after `after` (about `max_bytes`), then where that
/// left it. A `replay_incomplete` notice goes first, as entry 0.
void send_batch(registry_pointer self, const std::string& client_id,
                const client_session_actor& session, std::uint64_t after, std::size_t max_bytes) {
  auto read = self->state.log->read(client_id, after, max_bytes);
  if (read.incomplete) self->send(session, atom::replay_v, std::uint64_t{0}, *read.incomplete);
  std::uint64_t covered = read.incomplete ? read.head : after;
  if (!read.entries.empty()) covered = read.entries.back().id;
  for (auto& e : read.entries) self->send(session, atom::replay_v, e.id, std::move(e.message));
  self->send(session, atom::caught_up_v, covered, read.head);
}

/// Pauses (or resumes) every running execution of a clientId.
void pause_all(registry_pointer self, const std::string& client_id, const client& c, bool on) {
  log::debug(on ? "pausing executions: a socket is behind" : "resuming executions",
             {{"clientId", client_id}, {"executions", c.running.size()}});
  for (const auto& [execution_id, execution] : c.running) self->send(execution, atom::pause_v, on);
}

void set_pressure(registry_pointer self, const std::string& client_id, client& c,
                  client_registry_state::session_entry& s, bool on) {
  if (s.pressured == on) return;
  s.pressured = on;
  if (on && ++c.pressured == 1) pause_all(self, client_id, c, true);
  if (!on && --c.pressured == 0) pause_all(self, client_id, c, false);
}

/// Cancels a clientId's running executions: none of its sockets is left.
void cancel_running(registry_pointer self, const std::string& client_id, const client& c) {
  for (const auto& [execution_id, execution] : c.running) {
    log::info("cancelling execution: its clients disconnected",
              {{"executionId", execution_id}, {"clientId", client_id}});
    self->send(execution, atom::cancel_v,
               "every WebSocket client of clientId '" + client_id + "' disconnected");
  }
}

void arm_tick(registry_pointer self) {
  if (self->state.tick_armed) return;
  self->state.tick_armed = true;
  self->delayed_send(self, retention_tick, atom::tick_v);
}

}  // namespace

void client_registry_state::trim(const std::string& client_id) {
  const auto it = clients.find(client_id);
  // What a socket has not reported as sent stays (it may have dropped it for lack of
  // room, and reads it back from here).
  auto keep_after = std::numeric_limits<std::uint64_t>::max();
  if (it != clients.end())
    for (const auto& s : it->second.sessions) keep_after = std::min(keep_after, s.cursor);
  const bool empty = log->trim(client_id, keep_after);
  metrics::set_stream_log_bytes(log->bytes());
  if (it == clients.end()) return;
  const auto& c = it->second;
  if (empty && c.sessions.empty() && c.recents.empty() && c.running.empty()) clients.erase(it);
}

void client_registry_state::settle(const std::string& client_id, client& c) {
  for (const auto& s : c.sessions)
    if (log->bytes_after(client_id, s.cursor) > settings.lag_limit) return;
  for (auto& [execution_id, owed] : c.credits) {
    if (owed.owed == 0) continue;
    owed.credit->give_back(owed.owed);
    owed.owed = 0;
  }
}

void client_registry_state::answer_shutdown_if_closed() {
  if (!shutdown_promise) return;
  for (const auto& [id, c] : clients)
    if (!c.sessions.empty()) return;
  shutdown_promise->deliver(true);
  shutdown_promise.reset();
}

client_registry_actor::behavior_type client_registry(
    client_registry_actor::stateful_pointer<client_registry_state> self, stream_settings settings) {
  count_exit(self, metrics::actor_kind::client_registry);
  self->state.settings = settings;
  self->state.log = make_memory_stream_log(settings.retention);
  self->set_down_handler([self](caf::down_msg& msg) {
    sample_mailbox(self);
    auto& st = self->state;
    const auto owner = st.owner_of.find(msg.source);
    if (owner == st.owner_of.end()) return;
    const auto client_id = owner->second;
    st.owner_of.erase(owner);
    const auto it = st.clients.find(client_id);
    if (it == st.clients.end()) return;
    auto& c = it->second;
    const auto running = std::find_if(c.running.begin(), c.running.end(), [&](const auto& kv) {
      return kv.second.address() == msg.source;
    });
    if (running != c.running.end()) {
      c.credits.erase(running->first);
      c.running.erase(running);
    } else if (auto* s = find_session(c, msg.source)) {
      set_pressure(self, client_id, c, *s, false);
      c.sessions.erase(c.sessions.begin() + (s - c.sessions.data()));
      st.settle(client_id, c);
      // The last socket of this clientId left: nobody can see its running executions,
      // unless one comes back within the grace.
      if (c.sessions.empty() && !c.running.empty()) {
        if (st.settings.reconnect_grace.count() > 0)
          self->delayed_send(self, st.settings.reconnect_grace, atom::cancel_v, client_id,
                             c.attaches);
        else
          cancel_running(self, client_id, c);
      }
    }
    st.trim(client_id);
    st.answer_shutdown_if_closed();
  });
  return {
      [self](atom::attach, const std::string& client_id, client_session_actor session,
             bool has_cursor, std::uint64_t cursor) {
        sample_mailbox(self);
        auto& st = self->state;
        auto& c = st.clients[client_id];
        // Without a cursor: every execution that began inside the replay window.
        if (!has_cursor)
          cursor = c.recents.empty() ? st.log->head(client_id) : c.recents.front().first_id - 1;
        self->monitor(session);
        st.owner_of[session.address()] = client_id;
        ++c.attaches;
        send_batch(self, client_id, session, cursor, st.settings.batch_bytes);
        c.sessions.push_back({std::move(session), false, cursor});
      },
      [self](atom::track, const std::string& client_id, const std::string& execution_id,
             execution_actor execution, std::shared_ptr<output_credit>& credit) {
        sample_mailbox(self);
        auto& st = self->state;
        auto& c = st.clients[client_id];
        self->monitor(execution);
        st.owner_of[execution.address()] = client_id;
        // A socket is behind already: the new execution waits with the others.
        if (c.pressured > 0) self->send(execution, atom::pause_v, true);
        c.running.emplace(execution_id, std::move(execution));
        if (credit) c.credits[execution_id].credit = std::move(credit);
        if (st.settings.replay_window.count() > 0) {
          c.recents.push_back({execution_id, st.log->head(client_id) + 1});
          self->delayed_send(self, st.settings.replay_window, atom::expire_v, client_id,
                             execution_id);
        }
      },
      [self](atom::publish, const std::string& client_id, const std::string& execution_id,
             std::string& message, std::uint64_t cost) {
        sample_mailbox(self);
        auto& st = self->state;
        const auto it = st.clients.find(client_id);
        if (it == st.clients.end()) {
          metrics::websocket_message_dropped();
          return;
        }
        const auto id = st.log->append(client_id, execution_id, message);
        // Trimmed (and the log's gauge set) before any socket can have the message: a
        // reader of codeexec_stream_log_bytes never sees a value older than what it read.
        st.trim(client_id);
        if (cost > 0)
          if (const auto owed = it->second.credits.find(execution_id);
              owed != it->second.credits.end()) {
            owed->second.owed += cost;
            st.settle(client_id, it->second);
          }
        for (const auto& s : it->second.sessions) self->send(s.actor, atom::deliver_v, id, message);
        arm_tick(self);
      },
      [self](atom::replay, const std::string& client_id, client_session_actor session,
             std::uint64_t after, std::uint64_t max_bytes) {
        sample_mailbox(self);
        auto& st = self->state;
        const auto it = st.clients.find(client_id);
        if (it == st.clients.end()) return;
        if (auto* s = find_session(it->second, session.address())) s->cursor = after;
        st.settle(client_id, it->second);
        send_batch(self, client_id, session, after,
                   std::min<std::size_t>(max_bytes, st.settings.batch_bytes));
      },
      [self](atom::pressure, const std::string& client_id, client_session_actor session, bool on,
             std::uint64_t cursor) {
        sample_mailbox(self);
        const auto it = self->state.clients.find(client_id);
        if (it == self->state.clients.end()) return;
        auto* s = find_session(it->second, session.address());
        if (!s) return;
        s->cursor = cursor;
        set_pressure(self, client_id, it->second, *s, on);
        self->state.settle(client_id, it->second);
        // What every socket has now sent may be past the retention already.
        self->state.trim(client_id);
      },
      [self](atom::input, const std::string& client_id, const std::string& execution_id,
             std::string& data, bool eof) {
        sample_mailbox(self);
        // Only the clientId's own executions: a socket cannot feed another's stdin.
        const auto it = self->state.clients.find(client_id);
        if (it == self->state.clients.end()) return;
        const auto execution = it->second.running.find(execution_id);
        if (execution == it->second.running.end()) return;
        self->send(execution->second, atom::input_v, std::move(data), eof);
      },
      [self](atom::expire, const std::string& client_id, const std::string& execution_id) {
        sample_mailbox(self);
        auto& st = self->state;
        const auto it = st.clients.find(client_id);
        if (it == st.clients.end()) return;
        auto& recents = it->second.recents;
        recents.erase(std::remove_if(recents.begin(), recents.end(),
                                     [&](const auto& r) { return r.execution_id == execution_id; }),
                      recents.end());
        st.trim(client_id);
      },
      [self](atom::tick) {
        sample_mailbox(self);
        auto& st = self->state;
        st.tick_armed = false;
        std::vector<std::string> ids;
        ids.reserve(st.clients.size());
        for (const auto& [id, c] : st.clients) ids.push_back(id);
        for (const auto& id : ids) st.trim(id);
        if (st.log->bytes() > 0 || !st.clients.empty()) arm_tick(self);
      },
      [self](atom::cancel, const std::string& client_id, std::uint64_t attaches) {
        sample_mailbox(self);
        const auto it = self->state.clients.find(client_id);
        if (it == self->state.clients.end()) return;
        const auto& c = it->second;
        if (c.sessions.empty() && c.attaches == attaches) cancel_running(self, client_id, c);
      },
      [self](atom::shutdown) -> caf::result<bool> {
        sample_mailbox(self);
        // Tell every client why its socket closes, then close it (1001: going away).
        const auto notice = status_message({}, "shutting_down", "The service is shutting down");
        for (auto& [client_id, c] : self->state.clients)
          for (const auto& s : c.sessions) {
            self->send(s.actor, atom::deliver_v, std::uint64_t{0}, notice);
            self->send(s.actor, atom::close_v, std::uint16_t{1001},
                       std::string{"the service is shutting down"});
          }
        // The answer waits until every session has closed its socket (and quit).
        auto& st = self->state;
        st.shutdown_promise = self->make_response_promise<bool>();
        auto promise = *st.shutdown_promise;
        st.answer_shutdown_if_closed();
        return promise;
      },
      [self](atom::get) {
        sample_mailbox(self);
        std::uint64_t clients = 0;
        std::uint64_t sessions = 0;
        for (const auto& [id, c] : self->state.clients) {
          if (!c.sessions.empty()) ++clients;
          sessions += c.sessions.size();
        }
        return caf::make_result(clients, sessions);
      },
  };
}

}  // namespace codeexec
