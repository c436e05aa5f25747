#include "http/api_json.hpp"

#include "core/json_mapping.hpp"

namespace codeexec::http {

namespace {

/// The HTTP form of each code: status, the body's code, the default Retry-After.
struct http_form {
  ec code;
  int status;
  const char* name;
  int retry_after = 0;
};
constexpr http_form http_forms[] = {
    {ec::invalid_request, 400, "invalid_request"},
    {ec::unavailable_language, 400, "unavailable_language"},
    {ec::not_supported_by_backend, 400, "not_supported_by_backend"},
    {ec::files_not_supported, 501, "not_supported_by_backend"},
    {ec::shutting_down, 503, "shutting_down", 5},
    {ec::overloaded, 503, "overloaded", 1},
    {ec::key_execution_limit, 429, "too_many_executions", 1},
    {ec::sandbox_limit, 503, "too_many_sandboxes", 1},
    {ec::key_sandbox_limit, 429, "too_many_sandboxes", 1},
    {ec::execution_not_found, 404, "execution_not_found"},
    {ec::stdin_closed, 409, "stdin_closed"},
    {ec::sandbox_not_found, 404, "sandbox_not_found"},
    {ec::sandbox_ended, 404, "sandbox_not_found"},
    {ec::sandbox_start_failed, 503, "sandbox_start_failed", 1},
    {ec::sandbox_busy, 503, "sandbox_busy", 1},
    {ec::context_not_found, 404, "context_not_found"},
    {ec::too_many_contexts, 409, "too_many_contexts"},
    {ec::backend_error, 502, "backend_error"},
    {ec::invalid_path, 400, "invalid_path"},
    {ec::outside_workspace, 400, "outside_workspace"},
    {ec::file_not_found, 404, "file_not_found"},
    {ec::not_a_file, 400, "not_a_file"},
    {ec::not_a_directory, 400, "not_a_directory"},
    {ec::is_directory, 400, "is_directory"},
    {ec::file_too_large, 413, "payload_too_large"},
    {ec::no_space, 413, "payload_too_large"},
    {ec::permission_denied, 403, "forbidden"},
    {ec::io_error, 503, "io_error", 1},
    {ec::e2b_unavailable, 503, "e2b_unavailable", 1},
    {ec::e2b_unauthorized, 502, "e2b_unauthorized"},
    {ec::e2b_rate_limited, 429, "e2b_rate_limited", 1},
    {ec::e2b_refused, 502, "e2b_error"},
    {ec::e2b_sandbox_gone, 410, "sandbox_gone"},
};

}  // namespace

api_error to_api_error(const service_error& err) {
  http_form form{err.code, 400, "invalid_request"};
  for (const auto& f : http_forms)
    if (f.code == err.code) form = f;
  return {form.status, form.name, err.message,
          err.retry_after_seconds > 0 ? err.retry_after_seconds : form.retry_after};
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
