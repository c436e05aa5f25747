#include "actors/client_registry.hpp"

#include "actors/actor_metrics.hpp"
#include "core/json_mapping.hpp"
#include "core/log.hpp"

#include <caf/all.hpp>

#include <algorithm>

namespace codeexec {
namespace {

using registry_pointer = client_registry_actor::stateful_pointer<client_registry_state>;

/// Exports how many messages wait behind the one being handled. Only the
/// mailbox's owner may read its size (the read moves newly arrived messages into
/// the owner's queue), so the registry samples it itself, once per message.
void sample_mailbox(registry_pointer self) {
  metrics::set_mailbox_depth(metrics::mailbox_owner::client_registry, self->mailbox().size());
}

}  // namespace

void client_registry_state::forget_if_empty(const std::string& client_id) {
  const auto it = clients.find(client_id);
  if (it == clients.end()) return;
  const auto& c = it->second;
  if (c.sessions.empty() && c.replays.empty() && c.running.empty()) clients.erase(it);
}

void client_registry_state::answer_shutdown_if_closed() {
  if (!shutdown_promise) return;
  for (const auto& [id, c] : clients)
    if (!c.sessions.empty()) return;
  shutdown_promise->deliver(true);
  shutdown_promise.reset();
}

client_registry_actor::behavior_type client_registry(
    client_registry_actor::stateful_pointer<client_registry_state> self,
    caf::timespan replay_window) {
  count_exit(self, metrics::actor_kind::client_registry);
  self->state.replay_window = replay_window;
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
      c.running.erase(running);
    } else {
      c.sessions.erase(std::remove_if(c.sessions.begin(), c.sessions.end(),
                                      [&](const auto& s) { return s.address() == msg.source; }),
                       c.sessions.end());
      // The last socket of this clientId left: nobody can see its running executions.
      if (c.sessions.empty()) {
        for (const auto& [execution_id, execution] : c.running) {
          log::info("cancelling execution: its clients disconnected",
                    {{"executionId", execution_id}, {"clientId", client_id}});
          self->send(execution, atom::cancel_v,
                     "every WebSocket client of clientId '" + client_id + "' disconnected");
        }
      }
    }
    st.forget_if_empty(client_id);
    st.answer_shutdown_if_closed();
  });
  return {
      [self](atom::attach, const std::string& client_id, client_session_actor session) {
        sample_mailbox(self);
        auto& c = self->state.clients[client_id];
        for (const auto& r : c.replays)
          for (const auto& message : r.messages) self->send(session, atom::deliver_v, message);
        self->monitor(session);
        self->state.owner_of[session.address()] = client_id;
        c.sessions.push_back(std::move(session));
      },
      [self](atom::track, const std::string& client_id, const std::string& execution_id,
             execution_actor execution) {
        sample_mailbox(self);
        auto& c = self->state.clients[client_id];
        self->monitor(execution);
        self->state.owner_of[execution.address()] = client_id;
        c.running.emplace(execution_id, std::move(execution));
        if (self->state.replay_window.count() > 0) {
          c.replays.push_back({execution_id, {}});
          self->delayed_send(self, self->state.replay_window, atom::expire_v, client_id,
                             execution_id);
        }
      },
      [self](atom::publish, const std::string& client_id, const std::string& execution_id,
             std::string& message) {
        sample_mailbox(self);
        const auto it = self->state.clients.find(client_id);
        if (it == self->state.clients.end()) {
          metrics::websocket_message_dropped();
          return;
        }
        auto& c = it->second;
        for (const auto& session : c.sessions) self->send(session, atom::deliver_v, message);
        const auto r = std::find_if(c.replays.begin(), c.replays.end(),
                                    [&](const auto& x) { return x.execution_id == execution_id; });
        if (r != c.replays.end())
          r->messages.push_back(std::move(message));
        else if (c.sessions.empty())
          metrics::websocket_message_dropped();
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
        const auto it = self->state.clients.find(client_id);
        if (it == self->state.clients.end()) return;
        auto& replays = it->second.replays;
        replays.erase(std::remove_if(replays.begin(), replays.end(),
                                     [&](const auto& r) { return r.execution_id == execution_id; }),
                      replays.end());
        self->state.forget_if_empty(client_id);
      },
      [self](atom::shutdown) -> caf::result<bool> {
        sample_mailbox(self);
        // Tell every client why its socket closes, then close it (1001: going away).
        const auto notice = status_message({}, "shutting_down", "The service is shutting down");
        for (auto& [client_id, c] : self->state.clients)
          for (const auto& session : c.sessions) {
            self->send(session, atom::deliver_v, notice);
            self->send(session, atom::close_v, std::uint16_t{1001},
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
