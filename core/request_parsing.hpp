// Turns a request body into an execution_request, or a precise client error.
#pragma once

#include "core/api_error.hpp"
#include "core/config.hpp"
#include "core/execution.hpp"

#include <string_view>
#include <variant>

namespace codeexec {

/// Which endpoint the body came to: /execute-stream also needs a clientId.
enum class execute_endpoint { execute, execute_stream };

/// Parses and validates the body of POST /execute or /execute-stream.
std::variant<execution_request, api_error> parse_execute_request(std::string_view body,
                                                                 const config& cfg,
                                                                 execute_endpoint endpoint);

/// Longest accepted clientId.
inline constexpr std::size_t max_client_id_length = 256;

/// Validates a clientId from a body or a WebSocket URL; empty optional when fine.
std::optional<api_error> validate_client_id(std::string_view client_id);

}  // namespace codeexec
