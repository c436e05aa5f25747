// The CLIENT REGISTRY actor (interface in actors.hpp).
#pragma once

#include "actors/actors.hpp"
#include "core/metrics.hpp"

#include <caf/stateful_actor.hpp>

#include <caf/typed_response_promise.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace codeexec {

struct client_registry_state {
  /// Messages of one execution kept for sockets that connect late.
  struct replay {
    std::string execution_id;
    std::vector<std::string> messages;
  };

  struct client {
    std::vector<client_session_actor> sessions;
    /// In start order, so a late socket sees executions in the order they began.
    std::vector<replay> replays;
    std::unordered_map<std::string, execution_actor> running;
  };

  /// Counts the registry as a live actor for as long as its state exists.
  metrics::actor_scope scope{metrics::actor_kind::client_registry};
  std::unordered_map<std::string, client> clients;
  /// Which clientId a monitored session or execution belongs to.
  std::unordered_map<caf::actor_addr, std::string> owner_of;
  caf::timespan replay_window{std::chrono::seconds(10)};

  /// Set while a shutdown waits for the sessions to close their sockets.
  std::optional<caf::typed_response_promise<bool>> shutdown_promise;

  /// Drops a clientId that has nothing left.
  void forget_if_empty(const std::string& client_id);
  /// Answers a pending shutdown once no session is left.
  void answer_shutdown_if_closed();

  static inline const char* name = "client_registry";
};

client_registry_actor::behavior_type client_registry(
    client_registry_actor::stateful_pointer<client_registry_state> self,
    caf::timespan replay_window);

}  // namespace codeexec
