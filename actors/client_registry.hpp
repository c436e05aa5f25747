// The CLIENT REGISTRY actor (interface in actors.hpp).
#pragma once

#include "actors/actors.hpp"
#include "core/metrics.hpp"
#include "core/stream_log.hpp"

#include <caf/stateful_actor.hpp>

#include <caf/typed_response_promise.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace codeexec {

/// How the registry keeps and serves the streams.
struct stream_settings {
  /// A socket without lastEventId receives the executions that began this recently.
  caf::timespan replay_window{std::chrono::seconds(10)};
  stream_retention retention;
  /// The most a replayed batch carries (a session asks for no more than its socket takes).
  std::size_t batch_bytes = 1 << 20;
  /// How long a clientId's running executions outlive its last socket (0: cancelled at
  /// once), so that a client whose connection dropped can resume with lastEventId.
  caf::timespan reconnect_grace{0};
  /// How far (bytes of the log) a clientId's slowest socket may be behind before its
  /// executions' credit is held (their sandboxes then stop reading their output).
  std::size_t lag_limit = 2 << 20;
};

struct client_registry_state {
  struct session_entry {
    client_session_actor actor;
    /// Its socket is over the high-water mark: the clientId's executions wait for it.
    bool pressured = false;
    /// The eventId it last reported as sent; the log keeps everything after it.
    std::uint64_t cursor = 0;
  };
  /// An execution inside the replay window, with its first eventId.
  struct recent {
    std::string execution_id;
    std::uint64_t first_id = 0;
  };

  /// A running execution's credit and what the registry has not given back yet.
  struct owed_credit {
    std::shared_ptr<output_credit> credit;
    std::uint64_t owed = 0;
  };

  struct client {
    std::vector<session_entry> sessions;
    /// In start order, so a late socket sees executions from the oldest one on.
    std::vector<recent> recents;
    std::unordered_map<std::string, execution_actor> running;
    /// The credits of the running executions that have one, by execution id.
    std::unordered_map<std::string, owed_credit> credits;
    std::size_t pressured = 0;
    /// Counts attaches: a reconnect grace ends only if no socket attached meanwhile.
    std::uint64_t attaches = 0;
  };

  /// Counts the registry as a live actor for as long as its state exists.
  metrics::actor_scope scope{metrics::actor_kind::client_registry};
  std::unordered_map<std::string, client> clients;
  /// Which clientId a monitored session or execution belongs to.
  std::unordered_map<caf::actor_addr, std::string> owner_of;
  stream_settings settings;
  std::unique_ptr<stream_log> log;
  /// A retention tick is pending.
  bool tick_armed = false;

  /// Set while a shutdown waits for the sessions to close their sockets.
  std::optional<caf::typed_response_promise<bool>> shutdown_promise;

  /// Drops what is past the retention of a clientId, then the clientId if nothing is left.
  void trim(const std::string& client_id);
  /// Gives a clientId's executions back the credit of what is logged, unless one of its
  /// sockets is more than lag_limit behind (its progress reports settle it later).
  void settle(const std::string& client_id, client& c);
  /// Answers a pending shutdown once no session is left.
  void answer_shutdown_if_closed();

  static inline const char* name = "client_registry";
};

client_registry_actor::behavior_type client_registry(
    client_registry_actor::stateful_pointer<client_registry_state> self, stream_settings settings);

}  // namespace codeexec
