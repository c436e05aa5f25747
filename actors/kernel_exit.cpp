#include "actors/kernel_exit.hpp"

#include <csignal>
#include <cstring>

namespace codeexec {

std::string describe_signal(int sig) {
  const char* name = sigabbrev_np(sig);
  return "signal " + std::to_string(sig) + (name ? std::string{" (SIG"} + name + ")" : "");
}

sandbox_exit to_sandbox_exit(sandbox::exit_status status, std::string setup_error) {
  sandbox_exit exit;
  if (status.signal != 0)
    exit.signal = status.signal;
  else if (status.exit_code > 128 && status.exit_code < 128 + NSIG)
    exit.signal = status.exit_code - 128;
  else if (status.exit_code >= 0)
    exit.exit_code = status.exit_code;
  exit.setup_error = std::move(setup_error);
  return exit;
}

cell_outcome ended_outcome(const ended_cell_facts& facts, const sandbox_exit& exit) {
  cell_outcome out;
  out.exit_code = exit.exit_code;
  out.signal = exit.signal;
  const std::string state_note =
      facts.restarts ? "; the kernel restarts for the next execution, its state is lost" : "";
  if (facts.forced) {
    out.how = facts.forced->how;
    out.detail = facts.forced->detail;
  } else if (facts.kernel_killed) {
    out.how = cell_end::restarted;
    out.detail = "the cell did not stop on interrupt: its kernel was restarted, its state is lost";
  } else if (facts.sandbox_killed) {
    out.how = cell_end::killed;
    out.detail = "the sandbox was killed";
  } else if (!exit.setup_error.empty()) {
    out.how = cell_end::start_failed;
    out.detail = exit.setup_error;
  } else {
    out.how = cell_end::died;
    out.detail = (exit.signal ? "the kernel was killed by " + describe_signal(*exit.signal)
                              : "the kernel exited with code " +
                                    std::to_string(exit.exit_code.value_or(-1))) +
                 state_note;
  }
  return out;
}

}  // namespace codeexec
