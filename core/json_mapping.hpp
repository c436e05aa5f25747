// JSON shapes of the public API and of the runner events, in one place.
#pragma once

#include "core/api_error.hpp"
#include "core/execution.hpp"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace codeexec {

/// Serializes without ever throwing: invalid UTF-8 becomes U+FFFD.
std::string dump(const nlohmann::json& j);

/// {"error": {"code", "message"}}
std::string error_body(const api_error& err);

/// The `result` object of /execute and of the WebSocket `result` event.
nlohmann::json to_json(const execution_result& result);

/// 200 body of POST /execute: {"executionId", "result", "duration"}.
std::string execute_response(const execution_report& report);

/// WebSocket events of one execution.
std::string status_message(std::string_view execution_id, std::string_view status,
                           std::string_view message);
/// stdout/stderr/error events; nullopt for results (they travel in the `result` event).
std::optional<std::string> output_message(std::string_view execution_id, const kernel_event& event);
std::string result_message(const execution_report& report);

/// RFC 3339 UTC time with milliseconds, e.g. "2026-11-26T12:00:00.000Z".
std::string iso_time(std::int64_t unix_ms);
/// The same with microseconds and "+00:00", as Jupyter dates its messages
/// (E2B's stdout/stderr timestamps), e.g. "2026-11-26T12:00:00.000123+00:00".
std::string iso_time_us(std::int64_t unix_us);

/// A string member of an untrusted JSON object; empty when absent or not a string.
std::string string_field(const nlohmann::json& object, const char* key);

/// A runner's stdout/stderr/result/error event as a kernel_event; nullopt for other types.
std::optional<kernel_event> parse_kernel_event(const nlohmann::json& event);

}  // namespace codeexec
