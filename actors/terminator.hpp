// The TERMINATOR actor (interface in actors.hpp): ends the service's actors within
// bounds at shutdown, after VAST's terminator: EXIT user_shutdown to each, EXIT kill
// to those still alive after a grace, then give up on the rest and say how many.
#pragma once

#include "actors/actors.hpp"

#include <caf/stateful_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include <chrono>
#include <vector>

namespace codeexec {

struct terminator_state {
  /// The actors not yet down.
  std::vector<caf::actor> remaining;
  /// The shutdown request, answered once (all down, or the kill timeout passed).
  caf::typed_response_promise<std::uint64_t> promise;
  caf::timespan grace{};
  caf::timespan kill_timeout{};

  static inline const char* name = "terminator";
};

/// `grace`: from user_shutdown to kill; `kill_timeout`: from kill to giving up.
terminator_actor::behavior_type terminator(
    terminator_actor::stateful_pointer<terminator_state> self, caf::timespan grace,
    caf::timespan kill_timeout);

}  // namespace codeexec
