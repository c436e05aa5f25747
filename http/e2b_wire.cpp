#include "http/e2b_wire.hpp"

#include "core/json_mapping.hpp"
#include "http/api_json.hpp"

#include <cctype>
#include <thread>

namespace codeexec::http::e2b {
namespace {

std::string line(const nlohmann::json& object) {
  return dump(object) + '\n';
}

/// E2B's clientID is deprecated but still required by the SDK's schema (§1).
constexpr std::string_view client_id = "codeexec";

nlohmann::json listed_fields(const sandbox_info& ours, const sandbox_identity& who) {
  return {{"sandboxID", ours.id},
          {"templateID", who.template_id},
          {"alias", who.template_id},
          {"clientID", client_id},
          {"startedAt", iso_time(unix_ms(ours.created))},
          // Our timeout counts from the last use, so endAt moves while the sandbox works.
          {"endAt", iso_time(unix_ms(ours.expires))},
          {"state", "running"},
          {"cpuCount", std::max(1u, std::thread::hardware_concurrency())},
          {"memoryMB", ours.limits.memory_bytes >> 20},
          {"diskSizeMB", ours.limits.workspace_bytes >> 20},
          {"envdVersion", envd_version},
          {"metadata", ours.metadata}};
}

}  // namespace

std::string event_line(const kernel_event& event, std::int64_t unix_us) {
  switch (event.type) {
    case kernel_event::kind::stdout_text:
    case kernel_event::kind::stderr_text:
      // The Python SDK reads `timestamp` of every stdout/stderr line (§3.4).
      return line({{"type", event.type == kernel_event::kind::stdout_text ? "stdout" : "stderr"},
                   {"text", event.text},
                   {"timestamp", iso_time_us(unix_us)}});
    case kernel_event::kind::result: {
      nlohmann::json out = {{"type", "result"}};
      if (event.result.is_object()) out.update(event.result);
      if (!out.contains("extra")) out["extra"] = nlohmann::json::object();
      if (!out.contains("is_main_result")) out["is_main_result"] = false;
      return line(out);
    }
    case kernel_event::kind::error:
      return line({{"type", "error"},
                   {"name", event.error.name},
                   {"value", event.error.value},
                   {"traceback", event.error.traceback}});
  }
  return {};
}

std::string execution_count_line(std::uint64_t count) {
  return line({{"type", "number_of_executions"}, {"execution_count", count}});
}

std::string keepalive_line() {
  return line({{"type", "keepalive"}});
}

std::string end_of_execution_line() {
  return line({{"type", "end_of_execution"}});
}

std::string control_error(const api_error& err) {
  return dump({{"code", err.status}, {"message", err.message}});
}

nlohmann::json edge_proxy_error(std::string_view sandbox_id, std::string_view message) {
  return {{"sandboxId", sandbox_id}, {"message", message}, {"code", 502}};
}

nlohmann::json sandbox_not_found(std::string_view sandbox_id) {
  return edge_proxy_error(sandbox_id, "The sandbox was not found");
}

nlohmann::json sandbox_json(const sandbox_info& ours, const sandbox_identity& who) {
  return {{"sandboxID", ours.id},          {"templateID", who.template_id},
          {"alias", who.template_id},      {"clientID", client_id},
          {"envdVersion", envd_version},   {"envdAccessToken", who.access_token},
          {"trafficAccessToken", nullptr}, {"domain", nullptr}};
}

nlohmann::json listed_sandbox_json(const sandbox_info& ours, const sandbox_identity& who) {
  return listed_fields(ours, who);
}

nlohmann::json sandbox_detail_json(const sandbox_info& ours, const sandbox_identity& who) {
  auto out = listed_fields(ours, who);
  out["domain"] = nullptr;
  out["envdAccessToken"] = who.access_token;
  // Sandboxes here have no network, and end (not pause) when their time is up.
  out["allowInternetAccess"] = false;
  out["lifecycle"] = {{"onTimeout", "kill"}, {"autoResume", false}};
  return out;
}

nlohmann::json context_json(const context_info& ours) {
  return {{"id", ours.id}, {"language", to_string(ours.lang)}, {"cwd", ours.cwd}};
}

std::optional<language> normalize_language(std::string_view name) {
  while (!name.empty() && std::isspace(static_cast<unsigned char>(name.front())))
    name.remove_prefix(1);
  while (!name.empty() && std::isspace(static_cast<unsigned char>(name.back())))
    name.remove_suffix(1);
  if (name.empty()) return language::python;
  return parse_language(name);
}

}  // namespace codeexec::http::e2b
