#include "e2b/api.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>

namespace codeexec::e2b {
namespace {

using json = nlohmann::json;

/// How much of an E2B error body a client sees.
constexpr std::size_t max_message_chars = 300;

std::string without_trailing_slash(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

std::vector<std::string> control_headers(const settings& s) {
  return {"X-API-Key: " + s.api_key, "Content-Type: application/json"};
}

std::vector<std::string> data_plane_headers(const sandbox_info& sandbox, int port) {
  std::vector<std::string> headers = {"Content-Type: application/json",
                                      "E2b-Sandbox-Id: " + sandbox.id,
                                      "E2b-Sandbox-Port: " + std::to_string(port)};
  if (!sandbox.envd_access_token.empty())
    headers.push_back("X-Access-Token: " + sandbox.envd_access_token);
  if (!sandbox.traffic_access_token.empty())
    headers.push_back("E2B-Traffic-Access-Token: " + sandbox.traffic_access_token);
  return headers;
}

http_request control(const settings& s, std::string method, const std::string& path,
                     std::string body = {}) {
  http_request r;
  r.method = std::move(method);
  r.url = s.api_url + path;
  r.headers = control_headers(s);
  r.body = std::move(body);
  r.timeout = s.request_timeout;
  return r;
}

http_request interpreter(const settings& s, const sandbox_info& sandbox, std::string method,
                         const std::string& path, std::string body = {}) {
  http_request r;
  r.method = std::move(method);
  r.url = sandbox_base_url(s, sandbox, code_interpreter_port) + path;
  r.headers = data_plane_headers(sandbox, code_interpreter_port);
  r.body = std::move(body);
  r.timeout = s.request_timeout;
  return r;
}

std::string lower(std::string_view text) {
  std::string out{text};
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return out;
}

std::string status_text(const http_response& r) {
  if (r.result.status == 0) return r.result.error.empty() ? "no response" : r.result.error;
  auto text = std::to_string(r.result.status);
  if (auto message = error_message(r.body); !message.empty()) text += ": " + message;
  return text;
}

}  // namespace

settings make_settings(const config& cfg) {
  settings s;
  s.api_key = cfg.e2b_api_key;
  s.domain = cfg.e2b_domain.empty() ? "e2b.app" : cfg.e2b_domain;
  s.api_url =
      without_trailing_slash(cfg.e2b_api_url.empty() ? "https://api." + s.domain : cfg.e2b_api_url);
  s.sandbox_url = without_trailing_slash(cfg.e2b_sandbox_url);
  s.template_id = cfg.e2b_template_id;
  s.request_timeout = cfg.e2b_request_timeout;
  s.create_retries = cfg.e2b_create_retries;
  return s;
}

std::string sandbox_base_url(const settings& s, const sandbox_info& sandbox, int port) {
  if (!s.sandbox_url.empty()) return s.sandbox_url;
  const auto& domain = sandbox.domain.empty() ? s.domain : sandbox.domain;
  return "https://" + std::to_string(port) + "-" + sandbox.id + "." + domain;
}

std::string_view language_name(language lang) {
  return to_string(lang);
}

http_request create_request(const settings& s, std::chrono::seconds timeout,
                            const std::map<std::string, std::string>& metadata) {
  json body = {{"templateID", s.template_id}, {"timeout", timeout.count()}};
  if (!metadata.empty()) body["metadata"] = metadata;
  return control(s, "POST", "/v2/sandboxes", body.dump());
}

std::variant<sandbox_info, std::string> parse_sandbox(std::string_view body) {
  const auto j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::string{"the reply is not a JSON object"};
  const auto text = [&](const char* key) {
    const auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string{};
  };
  sandbox_info info;
  info.id = text("sandboxID");
  if (info.id.empty()) return std::string{"the reply has no sandboxID"};
  info.domain = text("domain");
  info.envd_access_token = text("envdAccessToken");
  info.traffic_access_token = text("trafficAccessToken");
  return info;
}

http_request kill_request(const settings& s, const std::string& sandbox_id) {
  return control(s, "DELETE", "/sandboxes/" + sandbox_id);
}

http_request timeout_request(const settings& s, const std::string& sandbox_id,
                             std::chrono::seconds timeout) {
  return control(s, "POST", "/sandboxes/" + sandbox_id + "/timeout",
                 json{{"timeout", timeout.count()}}.dump());
}

http_request execute_request(const settings& s, const sandbox_info& sandbox,
                             const std::string& code, const std::string& context_id, language lang,
                             const std::map<std::string, std::string>& env) {
  // E2B refuses both context_id and language (400): the context decides its language.
  json body = {{"code", code}};
  if (!context_id.empty())
    body["context_id"] = context_id;
  else
    body["language"] = language_name(lang);
  if (!env.empty()) body["env_vars"] = env;
  auto r = interpreter(s, sandbox, "POST", "/execute",
                       body.dump(-1, ' ', false, json::error_handler_t::replace));
  // A stream lasts as long as its cell: the service's deadline ends it, not curl.
  r.timeout = std::chrono::milliseconds{0};
  r.stall_timeout = std::chrono::seconds(30);
  return r;
}

http_request create_context_request(const settings& s, const sandbox_info& sandbox, language lang,
                                    const std::string& cwd) {
  return interpreter(s, sandbox, "POST", "/contexts",
                     json{{"language", language_name(lang)}, {"cwd", cwd}}.dump());
}

http_request list_contexts_request(const settings& s, const sandbox_info& sandbox) {
  return interpreter(s, sandbox, "GET", "/contexts");
}

http_request remove_context_request(const settings& s, const sandbox_info& sandbox,
                                    const std::string& context_id) {
  return interpreter(s, sandbox, "DELETE", "/contexts/" + context_id);
}

http_request restart_context_request(const settings& s, const sandbox_info& sandbox,
                                     const std::string& context_id) {
  return interpreter(s, sandbox, "POST", "/contexts/" + context_id + "/restart");
}

// ---- failures ------------------------------------------------------------------------

std::string error_message(std::string_view body) {
  std::string message;
  const auto j = json::parse(body, nullptr, false);
  if (!j.is_discarded() && j.is_object()) {
    for (const char* key : {"message", "detail", "error"}) {
      const auto it = j.find(key);
      if (it == j.end()) continue;
      message = it->is_string() ? it->get<std::string>() : it->dump();
      break;
    }
  }
  if (message.empty()) message = std::string{body};
  while (!message.empty() && std::isspace(static_cast<unsigned char>(message.back())))
    message.pop_back();
  if (message.size() > max_message_chars) message = message.substr(0, max_message_chars) + "…";
  return message;
}

std::optional<int> retry_after(const header_map& headers) {
  const auto it = headers.find("retry-after");
  if (it == headers.end()) return std::nullopt;
  int seconds = 0;
  const auto& v = it->second;
  const auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), seconds);
  if (ec != std::errc{} || ptr != v.data() + v.size() || seconds < 0) return std::nullopt;
  return seconds;
}

bool transient(const http_response& response) {
  if (response.result.cancelled) return false;
  const auto status = response.result.status;
  if (status == 0) return true;                   // refused, reset, timed out: no answer at all
  if (!response.result.completed()) return true;  // cut in the middle of the reply
  return status == 408 || status == 429 || status >= 500;
}

bool sandbox_gone(const http_response& response) {
  const auto status = response.result.status;
  if (status == 404) return true;
  return status == 502 && lower(response.body).find("not found") != std::string::npos;
}

service_error call_error(std::string_view what, const http_response& response) {
  const auto status = response.result.status;
  const auto wait = retry_after(response.headers).value_or(0);
  const std::string doing{what};
  if (status == 0 || !response.result.completed())
    return {ec::e2b_unavailable,
            "E2B could not be reached to " + doing + ": " + status_text(response), 0};
  if (status == 401 || status == 403)
    return {ec::e2b_unauthorized, "E2B rejected E2B_API_KEY (" + status_text(response) + ")", 0};
  if (status == 429)
    return {ec::e2b_rate_limited,
            "E2B's rate limit was reached trying to " + doing + " (" + status_text(response) +
                "); retry later",
            wait};
  if (status >= 500)
    return {ec::e2b_unavailable, "E2B failed to " + doing + " (" + status_text(response) + ")",
            wait};
  return {ec::e2b_refused, "E2B refused to " + doing + " (" + status_text(response) + ")", 0};
}

service_error sandbox_gone_error(const std::string& sandbox_id, const http_response& response) {
  return {ec::e2b_sandbox_gone,
          "The E2B sandbox " + sandbox_id + " no longer exists (E2B: " + status_text(response) +
              "); it may have passed its E2B timeout or been killed",
          0};
}

std::chrono::milliseconds retry_delay(std::uint32_t attempt, std::optional<int> retry_after,
                                      double jitter) {
  if (retry_after) return std::chrono::seconds(std::min(*retry_after, 30));
  const double base_ms = 250.0 * std::pow(2.0, std::min(attempt, 10u));
  const double scaled = std::min(base_ms, 8000.0) * std::clamp(jitter, 0.5, 1.0);
  return std::chrono::milliseconds(static_cast<std::int64_t>(scaled));
}

}  // namespace codeexec::e2b
