// How the end of a kernel (or of the whole sandbox) reads for the SANDBOX actor of
// the local backend: the exit status as a message, and the outcome of the cell it
// ended under. No actor and no sandbox needed, so doctest covers every rule.
#pragma once

#include "actors/messages.hpp"
#include "actors/stop_reason.hpp"
#include "sandbox/launcher.hpp"

#include <optional>
#include <string>

namespace codeexec {

/// "signal 9 (SIGKILL)".
std::string describe_signal(int sig);

/// The exit of a kernel or sandbox as a message. An exit code above 128 is how a
/// pid-namespace init reports its runner's fatal signal (it cannot re-raise it), as
/// shells do; it reads back as that signal.
sandbox_exit to_sandbox_exit(sandbox::exit_status status, std::string setup_error);

/// What the SANDBOX actor knows about a running cell whose kernel ended.
struct ended_cell_facts {
  /// Why the service stopped the cell, if it did.
  const std::optional<stop_reason>& forced;
  /// The service killed the kernel (the cell would not stop on interrupts).
  bool kernel_killed = false;
  /// The sandbox was killed on request.
  bool sandbox_killed = false;
  /// The kernel restarts for the next cell (a stateful sandbox): its state is lost.
  bool restarts = false;
};

/// The outcome of a cell whose kernel (or sandbox) ended under it: the service's
/// reason first, then a kernel it killed, a killed sandbox, a setup error, and else
/// how the kernel died.
cell_outcome ended_outcome(const ended_cell_facts& facts, const sandbox_exit& exit);

}  // namespace codeexec
