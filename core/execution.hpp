// The service's one event vocabulary, modelled on E2B's Code Interpreter stream:
// the local kernels, the E2B cloud client and every public API speak it.
#pragma once

#include "core/language.hpp"
#include "core/limits.hpp"
#include "core/service_error.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace codeexec {

/// What a client asked to run.
struct execution_request {
  std::string code;
  language lang = language::python;
  std::chrono::milliseconds timeout{30000};
  /// Set for /execute-stream: the WebSocket clients that receive the events.
  std::string client_id;
  /// Variables set for this execution only.
  std::map<std::string, std::string> env;
  /// Resolved limits: the config's defaults, overridden by the request.
  resource_limits limits;
  /// The API key identity that asked ("" when the service has no keys).
  std::string owner;
  /// Set for /sandboxes/{id}/execute*: the stateful sandbox to run in.
  std::string sandbox_id;
  /// The sandbox's context (kernel) to run in; empty: the default one of `lang`.
  std::string context_id;
  /// Whether the request named a language (a sandbox otherwise runs its own).
  bool lang_given = false;
  /// What the code reads on stdin: this text, then end-of-file unless `stdin_open`.
  std::string stdin_data;
  /// Keep stdin open: the client sends more (WebSocket or POST /executions/{id}/stdin).
  bool stdin_open = false;
};

/// A code error, E2B's ExecutionError.
struct execution_error {
  std::string name;
  std::string value;
  std::string traceback;
};

/// One event of a running cell.
struct kernel_event {
  enum class kind { stdout_text, stderr_text, result, error };
  kind type = kind::stdout_text;
  /// stdout/stderr: the chunk as written.
  std::string text;
  /// result: the E2B Result object (text, html, png, …, is_main_result).
  nlohmann::json result;
  /// error: the code error.
  execution_error error;
};

/// How an execution ended, machine-readable.
enum class verdict { ok, error, timeout, memory_limit, output_limit, killed, sandbox_error };

std::string_view to_string(verdict v);

/// Resource usage of one execution.
struct execution_usage {
  std::int64_t wall_ms = 0;
  std::int64_t cpu_ms = 0;
  std::uint64_t peak_memory_bytes = 0;
};

/// Everything an execution produced; the `result` object of the public API.
struct execution_result {
  std::vector<nlohmann::json> results;
  std::vector<std::string> stdout_chunks;
  std::vector<std::string> stderr_chunks;
  std::optional<execution_error> error;
  verdict status = verdict::ok;
  std::optional<int> exit_code;
  std::optional<int> signal;
  bool stdout_truncated = false;
  bool stderr_truncated = false;
  execution_usage usage;

  /// Appends an event the way E2B's SDK builds an Execution.
  void add(const kernel_event& event);
};

/// The final answer for one execution.
struct execution_report {
  std::string execution_id;
  execution_result result;
  std::chrono::milliseconds duration{0};
  /// Set when the request could not run at all (unknown context, language not
  /// available): the reply is this error instead of a result.
  std::optional<service_error> rejection;
};

}  // namespace codeexec
