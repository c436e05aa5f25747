#include "core/json_mapping.hpp"

#include <cstdio>
#include <ctime>

namespace codeexec {

using json = nlohmann::json;

namespace {

json to_json(const execution_error& err) {
  return {{"name", err.name}, {"value", err.value}, {"traceback", err.traceback}};
}

}  // namespace

std::string dump(const json& j) {
  return j.dump(-1, ' ', /*ensure_ascii=*/false, json::error_handler_t::replace);
}

namespace {

/// "2026-11-26T12:00:00" + "." + `fraction` zero-padded to `digits` + `zone`.
std::string utc_time(std::int64_t seconds_since_epoch, std::int64_t fraction, int digits,
                     const char* zone) {
  const auto seconds = static_cast<std::time_t>(seconds_since_epoch);
  std::tm utc{};
  ::gmtime_r(&seconds, &utc);
  char date[32];
  const auto n = std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &utc);
  char out[64];
  std::snprintf(out, sizeof out, "%.*s.%0*lld%s", static_cast<int>(n), date, digits,
                static_cast<long long>(fraction), zone);
  return out;
}

}  // namespace

std::string iso_time(std::int64_t unix_ms) {
  return utc_time(unix_ms / 1000, unix_ms % 1000, 3, "Z");
}

std::string iso_time_us(std::int64_t unix_us) {
  return utc_time(unix_us / 1'000'000, unix_us % 1'000'000, 6, "+00:00");
}

std::string error_body(const api_error& err) {
  return dump({{"error", {{"code", err.code}, {"message", err.message}}}});
}

json to_json(const execution_result& result) {
  json out = {
      {"results", result.results},
      {"logs", {{"stdout", result.stdout_chunks}, {"stderr", result.stderr_chunks}}},
      {"error", result.error ? to_json(*result.error) : json(nullptr)},
      {"status", to_string(result.status)},
      {"truncated", {{"stdout", result.stdout_truncated}, {"stderr", result.stderr_truncated}}},
      {"usage",
       {{"wallMs", result.usage.wall_ms},
        {"cpuMs", result.usage.cpu_ms},
        {"peakMemoryBytes", result.usage.peak_memory_bytes}}},
  };
  if (result.exit_code) out["exitCode"] = *result.exit_code;
  if (result.signal) out["signal"] = *result.signal;
  return out;
}

std::string execute_response(const execution_report& report) {
  return dump({{"executionId", report.execution_id},
               {"result", to_json(report.result)},
               {"duration", report.duration.count()}});
}

std::string status_message(std::string_view execution_id, std::string_view status,
                           std::string_view message) {
  // A service-wide status (shutdown) has no execution: executionId is null then.
  return dump({{"type", "status"},
               {"executionId",
                execution_id.empty() ? nlohmann::json(nullptr) : nlohmann::json(execution_id)},
               {"status", status},
               {"message", message}});
}

std::optional<std::string> output_message(std::string_view execution_id,
                                          const kernel_event& event) {
  switch (event.type) {
    case kernel_event::kind::stdout_text:
      return dump({{"type", "stdout"}, {"executionId", execution_id}, {"data", event.text}});
    case kernel_event::kind::stderr_text:
      return dump({{"type", "stderr"}, {"executionId", execution_id}, {"data", event.text}});
    case kernel_event::kind::error:
      return dump(
          {{"type", "error"}, {"executionId", execution_id}, {"error", to_json(event.error)}});
    case kernel_event::kind::result:
      // Each rich result as the cell produces it (a figure shown mid-cell, display()),
      // as E2B streams them; the final `result` message has them all again.
      return dump({{"type", "display"}, {"executionId", execution_id}, {"result", event.result}});
  }
  return std::nullopt;
}

std::string result_message(const execution_report& report) {
  return dump({{"type", "result"},
               {"executionId", report.execution_id},
               {"result", to_json(report.result)},
               {"duration", report.duration.count()}});
}

std::string string_field(const json& object, const char* key) {
  const auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string{};
}

std::optional<kernel_event> parse_kernel_event(const json& event) {
  if (!event.is_object()) return std::nullopt;
  const auto type = string_field(event, "type");
  kernel_event out;
  if (type == "stdout" || type == "stderr") {
    out.type = type == "stdout" ? kernel_event::kind::stdout_text : kernel_event::kind::stderr_text;
    const auto text = event.find("text");
    if (text == event.end() || !text->is_string()) return std::nullopt;
    out.text = text->get<std::string>();
    return out;
  }
  if (type == "result") {
    out.type = kernel_event::kind::result;
    out.result = event;
    out.result.erase("type");
    // The runner is untrusted: keep the Result shape whatever it sent.
    const auto main = event.find("is_main_result");
    out.result["is_main_result"] = main != event.end() && main->is_boolean() && main->get<bool>();
    if (!out.result.contains("extra") || !out.result["extra"].is_object())
      out.result["extra"] = json::object();
    return out;
  }
  if (type == "error") {
    out.type = kernel_event::kind::error;
    out.error = {string_field(event, "name"), string_field(event, "value"),
                 string_field(event, "traceback")};
    if (out.error.name.empty()) out.error.name = "Error";
    return out;
  }
  return std::nullopt;
}

}  // namespace codeexec
