// The idle timeout and lifetime of a stateful sandbox (POST /sandboxes), the same for
// the SANDBOX actor of every backend: the actor keeps one and asks it at each `expire`.
#pragma once

#include "actors/atoms.hpp"
#include "actors/messages.hpp"

#include <algorithm>
#include <chrono>
#include <string>

namespace codeexec {

struct sandbox_lifetime {
  using clock = std::chrono::steady_clock;

  /// The longest wait between two expiry checks. A pending delayed message keeps its
  /// actor alive: with one `expire` per idle timeout, a sandbox ended by DELETE stayed
  /// in memory, with its thread, until its timeout would have passed (minutes). One
  /// chain of checks per sandbox: a sandbox ends at most this late.
  static constexpr std::chrono::milliseconds check_interval{2000};

  /// Adopted: the sandbox has an idle timeout and a lifetime (else it ends with its
  /// one execution).
  bool stateful = false;
  sandbox_settings settings;
  clock::time_point created = clock::now();
  clock::time_point last_activity = created;

  /// Makes the sandbox stateful from now; returns when to check its expiry first.
  std::chrono::milliseconds adopt(sandbox_settings s);
  /// A new idle timeout, counted from now (the next periodic check applies it).
  void set_idle_timeout(std::chrono::milliseconds idle);
  /// The sandbox was used now: its idle time starts anew, its record shows the new end.
  void touch();

  struct check {
    /// Why the sandbox ends now; empty while it lives on.
    std::string end_reason;
    /// When to check again.
    std::chrono::milliseconds next{0};
  };
  /// An expiry check (logged when the sandbox ends); `busy`: running cells are not idle.
  check expire(bool busy);
};

/// Sends a SANDBOX actor its next `expire`, `after` from now.
template <class Self>
void schedule_expiry(Self* self, std::chrono::milliseconds after) {
  self->delayed_send(self, std::max(after, std::chrono::milliseconds(1)), atom::expire_v);
}

}  // namespace codeexec
