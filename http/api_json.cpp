#include "http/api_json.hpp"

#include "core/json_mapping.hpp"

namespace codeexec::http {

api_error to_api_error(const service_error& err) {
  auto make = [&](int status, const char* code, int retry_after = 0) {
    return api_error{status, code, err.message,
                     err.retry_after_seconds > 0 ? err.retry_after_seconds : retry_after};
  };
  switch (err.code) {
    case ec::none:
    case ec::invalid_request:
      return make(400, "invalid_request");
    case ec::unavailable_language:
      return make(400, "unavailable_language");
    case ec::not_supported_by_backend:
      return make(400, "not_supported_by_backend");
    case ec::files_not_supported:
      return make(501, "not_supported_by_backend");
    case ec::shutting_down:
      return make(503, "shutting_down", 5);
    case ec::overloaded:
      return make(503, "overloaded", 1);
    case ec::key_execution_limit:
      return make(429, "too_many_executions", 1);
    case ec::sandbox_limit:
      return make(503, "too_many_sandboxes", 1);
    case ec::key_sandbox_limit:
      return make(429, "too_many_sandboxes", 1);
    case ec::execution_not_found:
      return make(404, "execution_not_found");
    case ec::stdin_closed:
      return make(409, "stdin_closed");
    case ec::sandbox_not_found:
    case ec::sandbox_ended:
      return make(404, "sandbox_not_found");
    case ec::sandbox_start_failed:
      return make(503, "sandbox_start_failed", 1);
    case ec::sandbox_busy:
      return make(503, "sandbox_busy", 1);
    case ec::context_not_found:
      return make(404, "context_not_found");
    case ec::too_many_contexts:
      return make(409, "too_many_contexts");
    case ec::backend_error:
      return make(502, "backend_error");
    case ec::invalid_path:
      return make(400, "invalid_path");
    case ec::outside_workspace:
      return make(400, "outside_workspace");
    case ec::file_not_found:
      return make(404, "file_not_found");
    case ec::not_a_file:
      return make(400, "not_a_file");
    case ec::not_a_directory:
      return make(400, "not_a_directory");
    case ec::is_directory:
      return make(400, "is_directory");
    case ec::file_too_large:
    case ec::no_space:
      return make(413, "payload_too_large");
    case ec::permission_denied:
      return make(403, "forbidden");
    case ec::io_error:
      return make(503, "io_error", 1);
    case ec::e2b_unavailable:
      return make(503, "e2b_unavailable", 1);
    case ec::e2b_unauthorized:
      return make(502, "e2b_unauthorized");
    case ec::e2b_rate_limited:
      return make(429, "e2b_rate_limited", 1);
    case ec::e2b_refused:
      return make(502, "e2b_error");
    case ec::e2b_sandbox_gone:
      return make(410, "sandbox_gone");
  }
  return make(500, "internal_error");
}

std::int64_t unix_ms(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

nlohmann::json limits_json(const resource_limits& l) {
  return {{"memoryMb", l.memory_bytes >> 20},
          {"pids", l.pids},
          {"workspaceMb", l.workspace_bytes >> 20},
          {"fileSizeMb", l.file_size_bytes >> 20},
          {"openFiles", l.open_files},
          {"outputBytes", l.output_bytes}};
}

nlohmann::json sandbox_json(const sandbox_info& s) {
  return {{"sandboxId", s.id},
          {"language", to_string(s.lang)},
          {"state", "running"},
          {"createdAt", iso_time(unix_ms(s.created))},
          {"expiresAt", iso_time(unix_ms(s.expires))},
          {"metadata", s.metadata},
          {"limits", limits_json(s.limits)}};
}

nlohmann::json sandboxes_json(const std::vector<sandbox_info>& sandboxes) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& s : sandboxes) out.push_back(sandbox_json(s));
  return {{"sandboxes", std::move(out)}};
}

nlohmann::json context_json(const context_info& c) {
  return {{"id", c.id},           {"language", to_string(c.lang)},
          {"cwd", c.cwd},         {"default", c.is_default},
          {"running", c.running}, {"queued", c.queued}};
}

nlohmann::json contexts_json(const std::vector<context_info>& contexts) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& c : contexts) out.push_back(context_json(c));
  return {{"contexts", std::move(out)}};
}

nlohmann::json file_listing_json(const std::string& path, const sandbox::dir_listing& listing) {
  nlohmann::json entries = nlohmann::json::array();
  for (const auto& e : listing.entries) {
    const char* type = e.type == sandbox::entry_type::file      ? "file"
                       : e.type == sandbox::entry_type::dir     ? "dir"
                       : e.type == sandbox::entry_type::symlink ? "symlink"
                                                                : "other";
    entries.push_back(
        {{"name", e.name}, {"path", e.path}, {"type", type}, {"size", e.size}, {"mode", e.mode}});
  }
  return {{"path", path}, {"entries", std::move(entries)}, {"truncated", listing.truncated}};
}

nlohmann::json file_written_json(const std::string& path, std::uint64_t size) {
  return {{"path", path}, {"size", size}};
}

}  // namespace codeexec::http
