// The CAF side of core/metrics.hpp: what metrics cannot know without CAF.
#pragma once

#include "core/metrics.hpp"

#include <caf/abstract_actor.hpp>
#include <caf/error.hpp>
#include <caf/exit_reason.hpp>

#include <string>

namespace codeexec {

/// The `reason` label of an actor exit: the exit_reason's name ("normal",
/// "user_shutdown", "kill"…), or "error" for any other error (an exception in a
/// handler arrives as sec::runtime_error). A short, bounded set.
inline std::string exit_reason_label(const caf::error& reason) {
  if (!reason) return "normal";
  // The category atom of exit reasons, taken from CAF rather than spelled here.
  static const auto exit_category = caf::make_error(caf::exit_reason::kill).category();
  if (reason.category() == exit_category)
    return caf::to_string(static_cast<caf::exit_reason>(reason.code()));
  return "error";
}

/// Counts `self`'s exit, by kind and reason, when it terminates.
inline void count_exit(caf::abstract_actor* self, metrics::actor_kind kind) {
  self->attach_functor(
      [kind](const caf::error& reason) { metrics::actor_exited(kind, exit_reason_label(reason)); });
}

}  // namespace codeexec
