// The idle timeout and lifetime of a stateful sandbox (POST /sandboxes), the same for
// the SANDBOX actor of every backend: the actor keeps one and asks it at each `expire`.
#pragma once

#include "actors/messages.hpp"

#include <chrono>
#include <string>

namespace codeexec {

struct sandbox_lifetime {
  using clock = std::chrono::steady_clock;

  /// Adopted: the sandbox has an idle timeout and a lifetime (else it ends with its
  /// one execution).
  bool stateful = false;
  sandbox_settings settings;
  clock::time_point created = clock::now();
  clock::time_point last_activity = created;

  /// Makes the sandbox stateful from now; returns when to check its expiry first.
  std::chrono::milliseconds adopt(sandbox_settings s);
  /// A new idle timeout, counted from now; returns when to check its expiry next.
  std::chrono::milliseconds set_idle_timeout(std::chrono::milliseconds idle);
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

}  // namespace codeexec
