// Turns a request body into an execution_request, or a precise client error.
#pragma once

#include "core/api_error.hpp"
#include "core/config.hpp"
#include "core/execution.hpp"
#include "core/sandbox_spec.hpp"

#include <string_view>
#include <variant>

namespace codeexec {

/// Which endpoint the body came to: the streaming ones also need a clientId; the
/// sandbox ones take a context and leave the sandbox's limits alone.
enum class execute_endpoint { execute, execute_stream, sandbox_execute, sandbox_execute_stream };

/// Input for a running execution: POST /executions/{id}/stdin, or a WebSocket
/// {"type": "stdin"} message.
struct stdin_request {
  std::string data;
  bool eof = false;
};

/// Parses and validates the body of POST /execute or /execute-stream.
std::variant<execution_request, api_error> parse_execute_request(std::string_view body,
                                                                 const config& cfg,
                                                                 execute_endpoint endpoint);

/// Parses POST /sandboxes (an empty body asks for the defaults).
std::variant<sandbox_request, api_error> parse_sandbox_request(std::string_view body,
                                                               const config& cfg);

/// Parses POST /sandboxes/{id}/contexts: {"language"?, "cwd"?}.
std::variant<context_request, api_error> parse_context_request(std::string_view body);

/// Parses POST /sandboxes/{id}/timeout: {"timeout": seconds}.
std::variant<std::chrono::milliseconds, api_error> parse_timeout_request(std::string_view body,
                                                                         const config& cfg);

/// Parses POST /executions/{id}/stdin: {"data"?, "eof"?}.
std::variant<stdin_request, api_error> parse_stdin_request(std::string_view body,
                                                           const config& cfg);

/// Longest accepted clientId.
inline constexpr std::size_t max_client_id_length = 256;

/// Validates a clientId from a body or a WebSocket URL; empty optional when fine.
std::optional<api_error> validate_client_id(std::string_view client_id);

}  // namespace codeexec
