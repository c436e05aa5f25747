// Message payloads exchanged between actors. They never leave the process, so they
// are allowed as "unsafe" (not serializable) message types.
#pragma once

#include "core/execution.hpp"

#include <caf/allowed_unsafe_message_type.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

namespace codeexec {

class client_connection;

/// A cell for a sandbox's kernel.
struct run_cell {
  std::string code;
  std::map<std::string, std::string> env;
  /// CPU time the cell may use (the whole tree's); 0 for no limit.
  std::uint64_t cpu_limit_ms = 0;
};

/// How a cell ended, as far as the sandbox knows.
enum class cell_end {
  finished,      ///< the kernel reported the end of the cell
  interrupted,   ///< the kernel stopped the cell on an interrupt
  killed,        ///< the sandbox was killed on request
  died,          ///< the kernel or sandbox exited on its own
  start_failed,  ///< the sandbox could not start
  output_limit,  ///< an output stream passed its cap; the sandbox was killed
  cpu_limit,     ///< the cell used up its CPU time; the sandbox was killed
  broken,        ///< the kernel broke the protocol
};

struct cell_outcome {
  cell_end how = cell_end::finished;
  std::string detail;  ///< why, for every end but finished
  std::optional<int> exit_code;
  std::optional<int> signal;
  bool oom_killed = false;
  bool stdout_truncated = false;
  bool stderr_truncated = false;
  std::uint64_t peak_memory_bytes = 0;
  std::uint64_t cpu_ms = 0;
};

/// Exit of a sandbox's init, reported by its I/O thread.
struct sandbox_exit {
  std::optional<int> exit_code;
  std::optional<int> signal;
  std::string setup_error;
};

}  // namespace codeexec

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(codeexec::kernel_event)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(codeexec::run_cell)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(codeexec::cell_outcome)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(codeexec::sandbox_exit)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(nlohmann::json)
