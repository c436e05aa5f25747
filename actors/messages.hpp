// Message payloads exchanged between actors. They never leave the process, so they
// are allowed as "unsafe" (not serializable) message types.
#pragma once

#include "core/execution.hpp"
#include "core/sandbox_spec.hpp"
#include "core/service_error.hpp"

#include <caf/allowed_unsafe_message_type.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace codeexec {

class client_connection;
struct sandbox_record;

/// A cell for one of a sandbox's kernels.
struct run_cell {
  /// The execution's id: stop and input name the cell by it.
  std::string id;
  std::string code;
  std::map<std::string, std::string> env;
  /// CPU time the cell may use (the sandbox's, while it runs); 0 for no limit.
  std::uint64_t cpu_limit_ms = 0;
  /// Output kept per stream (stdout, stderr, results); 0: the sandbox's limit.
  std::uint64_t max_output_bytes = 0;
  /// The context to run in; empty: the default context of `lang`.
  std::string context_id;
  language lang = language::python;
  /// Whether `lang` was asked for (else the sandbox's own language).
  bool lang_given = true;
  /// stdin: this text, then end-of-file unless `stdin_open`.
  std::string stdin_data;
  bool stdin_open = false;
};

/// How a cell ended, as far as the sandbox knows.
enum class cell_end {
  finished,      ///< the kernel reported the end of the cell
  interrupted,   ///< the kernel stopped the cell on an interrupt; its state is kept
  restarted,     ///< the cell would not stop: its kernel was killed and restarted
  killed,        ///< the sandbox was killed on request
  died,          ///< the kernel or sandbox exited on its own
  start_failed,  ///< the sandbox or the kernel could not start
  output_limit,  ///< an output stream passed its cap
  cpu_limit,     ///< the cell used up its CPU time
  broken,        ///< the kernel broke the protocol
  refused,       ///< the request cannot run here (unknown context, language missing…)
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
  /// The context the cell ran in (empty if it never reached one).
  std::string context_id;
  /// For a cell the service stopped in a stateful sandbox: whether its kernel kept its
  /// state (interrupted) or lost it (restarted).
  std::optional<bool> state_kept;
  /// For `refused`: why.
  std::optional<service_error> refusal;
};

/// The outcome of a cell its sandbox refused to run: the client gets `err`.
inline cell_outcome refused_cell(service_error err) {
  cell_outcome out;
  out.how = cell_end::refused;
  out.detail = err.message;
  out.refusal = std::move(err);
  return out;
}

/// Turns a pooled (or fresh) sandbox into a stateful one.
struct sandbox_settings {
  std::shared_ptr<sandbox_record> record;
  std::chrono::milliseconds idle_timeout{300000};
  std::chrono::milliseconds max_lifetime{86400000};
};

/// Exit of a sandbox's init, or of one of its kernels, reported by its I/O thread.
struct sandbox_exit {
  std::optional<int> exit_code;
  std::optional<int> signal;
  std::string setup_error;
};

}  // namespace codeexec

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(codeexec::kernel_event)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(codeexec::run_cell)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(codeexec::cell_outcome)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(codeexec::context_info)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<codeexec::context_info>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(codeexec::context_request)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(codeexec::sandbox_settings)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(codeexec::sandbox_exit)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(nlohmann::json)
