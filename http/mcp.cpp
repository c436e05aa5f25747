#include "http/mcp.hpp"

#include "core/ids.hpp"
#include "core/json_mapping.hpp"
#include "http/routes.hpp"

#include <algorithm>
#include <array>

namespace codeexec::http {
namespace {

using json = nlohmann::json;

/// Newest first: an initialize asking for another revision is answered with the first.
constexpr std::array<std::string_view, 3> supported_versions = {"2025-11-25", "2025-06-18",
                                                                "2025-03-26"};

// JSON-RPC 2.0 error codes (and MCP's for an unknown session).
constexpr int parse_error = -32700;
constexpr int invalid_request = -32600;
constexpr int method_not_found = -32601;
constexpr int invalid_params = -32602;
constexpr int session_not_found = -32001;

bool supported(std::string_view version) {
  return std::find(supported_versions.begin(), supported_versions.end(), version) !=
         supported_versions.end();
}

reply rpc_reply(int status, const json& message) {
  return reply{status, dump(message), {}};
}

json rpc_error(const json& id, int code, std::string message) {
  return {
      {"jsonrpc", "2.0"}, {"id", id}, {"error", {{"code", code}, {"message", std::move(message)}}}};
}

json rpc_result(const json& id, json result) {
  return {{"jsonrpc", "2.0"}, {"id", id}, {"result", std::move(result)}};
}

std::string tool_names(const json& tools) {
  std::string out;
  for (const auto& t : tools) out += (out.empty() ? "" : ", ") + t["name"].get<std::string>();
  return out;
}

}  // namespace

mcp_server::mcp_server(const config& cfg, service& svc) : tools_(cfg, svc) {}

std::string mcp_server::open_session(const std::string& owner,
                                     const std::string& protocol_version) {
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock{mutex_};
  std::erase_if(sessions_, [now](const auto& entry) {
    return now - entry.second.last_used > session_idle_timeout;
  });
  if (sessions_.size() >= max_sessions) {
    auto oldest = std::min_element(sessions_.begin(), sessions_.end(), [](auto& a, auto& b) {
      return a.second.last_used < b.second.last_used;
    });
    sessions_.erase(oldest);
  }
  auto id = make_secret();
  sessions_.emplace(id, session{owner, protocol_version, now});
  return id;
}

std::optional<std::string> mcp_server::use_session(const std::string& id,
                                                   const std::string& owner) {
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock{mutex_};
  auto it = sessions_.find(id);
  if (it == sessions_.end() || it->second.owner != owner) return std::nullopt;
  if (now - it->second.last_used > session_idle_timeout) {
    sessions_.erase(it);
    return std::nullopt;
  }
  it->second.last_used = now;
  return it->second.protocol_version;
}

bool mcp_server::close_session(const std::string& id, const std::string& owner) {
  std::lock_guard lock{mutex_};
  auto it = sessions_.find(id);
  if (it == sessions_.end() || it->second.owner != owner) return false;
  sessions_.erase(it);
  return true;
}

void mcp_server::handle(const request_info& req, const std::string& owner, std::string body,
                        std::function<void(reply)> respond) {
  const auto session_header = req.header("mcp-session-id");
  if (req.method == "DELETE") {
    if (!session_header)
      return respond(error_reply(
          api_error::bad_request("DELETE /mcp ends a session: send its Mcp-Session-Id header")));
    if (!close_session(std::string{*session_header}, owner))
      return respond(error_reply({404, "session_not_found", "No such MCP session"}));
    return respond(reply{204, "", {}});
  }

  if (body.size() > max_message_bytes)
    return respond(
        rpc_reply(413, rpc_error(nullptr, invalid_request,
                                 "The message is " + std::to_string(body.size()) +
                                     " bytes; an MCP message may have at most " +
                                     std::to_string(max_message_bytes) +
                                     " (write big files with PUT /sandboxes/{id}/files)")));
  if (auto type = req.header("content-type"); type && !type->starts_with("application/json"))
    return respond(rpc_reply(
        415, rpc_error(nullptr, invalid_request,
                       "Content-Type must be application/json (one JSON-RPC 2.0 message)")));
  const json msg = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (msg.is_discarded())
    return respond(
        rpc_reply(400, rpc_error(nullptr, parse_error, "Parse error: the body is not JSON")));
  if (msg.is_array())
    return respond(rpc_reply(
        400, rpc_error(nullptr, invalid_request,
                       "JSON-RPC batches are not part of MCP (since 2025-06-18): send one "
                       "message per request")));
  if (!msg.is_object() || msg.value("jsonrpc", json{}) != "2.0")
    return respond(rpc_reply(
        400,
        rpc_error(nullptr, invalid_request,
                  "Invalid Request: a JSON-RPC 2.0 object with \"jsonrpc\": \"2.0\" is expected")));
  const bool has_id = msg.contains("id");
  const json id = has_id ? msg["id"] : json{};
  if (has_id && !id.is_string() && !id.is_number_integer())
    return respond(
        rpc_reply(400, rpc_error(nullptr, invalid_request,
                                 "Invalid Request: `id` must be a string or an integer")));
  const auto method_it = msg.find("method");
  if (method_it == msg.end()) {
    // A response to a request of ours: this server sends none, so there is nothing to match.
    if (has_id && (msg.contains("result") || msg.contains("error")))
      return respond(reply{202, "", {}});
    return respond(
        rpc_reply(400, rpc_error(id, invalid_request, "Invalid Request: `method` is missing")));
  }
  if (!method_it->is_string())
    return respond(rpc_reply(
        400, rpc_error(id, invalid_request, "Invalid Request: `method` must be a string")));
  const auto method = method_it->get<std::string>();
  const auto params = msg.value("params", json::object());
  if (!params.is_object())
    return respond(rpc_reply(400, rpc_error(id, invalid_params, "`params` must be an object")));

  if (auto version = req.header("mcp-protocol-version"); version && !supported(*version)) {
    std::string list;
    for (auto v : supported_versions) list += (list.empty() ? "" : ", ") + std::string{v};
    return respond(rpc_reply(400, rpc_error(id, invalid_request,
                                            "Unsupported MCP-Protocol-Version " +
                                                std::string{*version} + "; supported: " + list)));
  }

  if (method == "initialize") {
    if (!has_id)
      return respond(rpc_reply(
          400, rpc_error(nullptr, invalid_request, "`initialize` must be a request (with an id)")));
    const auto asked = string_field(params, "protocolVersion");
    const std::string version{supported(asked) ? std::string_view{asked} : supported_versions[0]};
    reply r = rpc_reply(
        200, rpc_result(id, {{"protocolVersion", version},
                             {"capabilities", {{"tools", {{"listChanged", false}}}}},
                             {"serverInfo",
                              {{"name", "codeexec"},
                               {"title", "codeexec: code execution in isolated sandboxes"},
                               {"version", "0.1.0"}}},
                             {"instructions",
                              "run_code runs code once in a fresh sandbox. For state across "
                              "calls (variables, files), create_sandbox, then "
                              "run_code_in_sandbox and the file tools with its sandboxId; "
                              "kill_sandbox when done."}}));
    r.headers.emplace_back("Mcp-Session-Id", open_session(owner, version));
    return respond(std::move(r));
  }

  if (!session_header)
    return respond(rpc_reply(
        400, rpc_error(id, invalid_request,
                       "The Mcp-Session-Id header is missing: send `initialize` first and "
                       "repeat the session id it returns on every request")));
  if (!use_session(std::string{*session_header}, owner))
    return respond(rpc_reply(
        404, rpc_error(id, session_not_found,
                       "Session not found (ended, expired, or another key's): initialize a "
                       "new session")));
  // Notifications (initialized, cancelled, progress…) need no answer.
  if (!has_id) return respond(reply{202, "", {}});

  if (method == "ping") return respond(rpc_reply(200, rpc_result(id, json::object())));
  if (method == "tools/list")
    return respond(rpc_reply(200, rpc_result(id, {{"tools", tools_.list()}})));
  if (method != "tools/call")
    return respond(rpc_reply(
        200, rpc_error(id, method_not_found,
                       "Method not found: " + method +
                           " (this server offers initialize, ping, tools/list, tools/call)")));

  const auto name = params.find("name");
  if (name == params.end() || !name->is_string())
    return respond(
        rpc_reply(200, rpc_error(id, invalid_params,
                                 "tools/call needs `name`: one of " + tool_names(tools_.list()))));
  if (!tools_.has(name->get<std::string>()))
    return respond(rpc_reply(200, rpc_error(id, invalid_params,
                                            "Unknown tool: " + name->get<std::string>() +
                                                "; tools: " + tool_names(tools_.list()))));
  const auto arguments = params.value("arguments", json::object());
  if (!arguments.is_object())
    return respond(
        rpc_reply(200, rpc_error(id, invalid_params, "tools/call `arguments` must be an object")));
  tools_.call(owner, name->get<std::string>(), arguments,
              [respond = std::move(respond), id](json result) {
                respond(rpc_reply(200, rpc_result(id, std::move(result))));
              });
}

}  // namespace codeexec::http
