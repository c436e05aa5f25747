// The E2B wire protocol as the official SDK speaks it (docs/reference/e2b-protocol.md
// §1–§3): where the control plane and a sandbox's ports are, the headers and bodies of
// each call, what a reply means, and which client-facing error an E2B failure becomes.
// No I/O here: e2b/http_client.hpp sends what these functions build.
#pragma once

#include "core/config.hpp"
#include "core/language.hpp"
#include "core/service_error.hpp"
#include "e2b/http_client.hpp"

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace codeexec::e2b {

/// The Code Interpreter's port in every sandbox (envd's is 49983).
inline constexpr int code_interpreter_port = 49999;

/// Where E2B is and how to use it, resolved from the configuration as the SDK resolves
/// E2B_DOMAIN, E2B_API_URL and E2B_SANDBOX_URL.
struct settings {
  std::string api_key;
  /// E2B_DOMAIN, default e2b.app: the API host and sandbox hosts live under it.
  std::string domain = "e2b.app";
  /// The control plane: E2B_API_URL, else https://api.{domain}. No trailing slash.
  std::string api_url = "https://api.e2b.app";
  /// E2B_SANDBOX_URL: one base for every port of every sandbox (routed by the
  /// E2b-Sandbox-Id/-Port headers); empty: https://{port}-{sandboxID}.{domain}.
  std::string sandbox_url;
  std::string template_id = "code-interpreter-v1";
  /// Control-plane and contexts calls (not /execute streams, which the service's
  /// deadline ends).
  std::chrono::milliseconds request_timeout{60000};
  /// How often a failed create is retried when the failure is transient.
  std::uint32_t create_retries = 4;
};

settings make_settings(const config& cfg);

/// A sandbox as POST /v2/sandboxes returned it.
struct sandbox_info {
  std::string id;
  /// The domain of its hosts; empty: the configured one.
  std::string domain;
  std::string envd_access_token;
  std::string traffic_access_token;
};

/// Base URL of port `port` of a sandbox (no trailing slash).
std::string sandbox_base_url(const settings& s, const sandbox_info& sandbox, int port);

/// POST /v2/sandboxes (NewSandboxV2): the template, E2B's own timeout (seconds) and
/// labels that mark the sandbox as the service's.
http_request create_request(const settings& s, std::chrono::seconds timeout,
                            const std::map<std::string, std::string>& metadata);
/// The sandbox of a 201 reply, or what is wrong with the reply.
std::variant<sandbox_info, std::string> parse_sandbox(std::string_view body);
/// DELETE /sandboxes/{id}.
http_request kill_request(const settings& s, const std::string& sandbox_id);
/// POST /sandboxes/{id}/timeout: E2B kills the sandbox `timeout` from now.
http_request timeout_request(const settings& s, const std::string& sandbox_id,
                             std::chrono::seconds timeout);

/// POST /execute on the Code Interpreter: in `context_id` if given, else in the
/// default context of `lang`.
http_request execute_request(const settings& s, const sandbox_info& sandbox,
                             const std::string& code, const std::string& context_id, language lang,
                             const std::map<std::string, std::string>& env);
/// POST /contexts {language, cwd}.
http_request create_context_request(const settings& s, const sandbox_info& sandbox, language lang,
                                    const std::string& cwd);
/// GET /contexts.
http_request list_contexts_request(const settings& s, const sandbox_info& sandbox);
/// DELETE /contexts/{id}.
http_request remove_context_request(const settings& s, const sandbox_info& sandbox,
                                    const std::string& context_id);
/// POST /contexts/{id}/restart.
http_request restart_context_request(const settings& s, const sandbox_info& sandbox,
                                     const std::string& context_id);

/// E2B's language name of one of ours, and back ("python", "javascript", …).
std::string_view language_name(language lang);

// ---- failures ----------------------------------------------------------------------

/// The human part of an E2B error body ({"message"} / {"detail"} / text), shortened.
std::string error_message(std::string_view body);
/// Seconds of a Retry-After header (integer seconds), if there is one.
std::optional<int> retry_after(const header_map& headers);
/// Whether a failed call may succeed if sent again: no response (connection refused,
/// reset, timeout), 408, 429, 5xx.
bool transient(const http_response& response);
/// Whether the reply says the sandbox no longer exists: the edge proxy's 502 "sandbox
/// was not found", or a control-plane 404 for a sandbox call.
bool sandbox_gone(const http_response& response);

/// The error of a failed E2B call; `what` completes "E2B failed to …" (e.g. "create a
/// sandbox"). E2B's Retry-After is kept.
service_error call_error(std::string_view what, const http_response& response);
/// The error for a sandbox that E2B says no longer exists.
service_error sandbox_gone_error(const std::string& sandbox_id, const http_response& response);

/// How long to wait before retry number `attempt` (0-based) of a create: E2B's
/// Retry-After when it gave one (at most 30 s), else exponential backoff from 250 ms
/// (at most 8 s) scaled by `jitter` in [0.5, 1].
std::chrono::milliseconds retry_delay(std::uint32_t attempt, std::optional<int> retry_after,
                                      double jitter);

}  // namespace codeexec::e2b
