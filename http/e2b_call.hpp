// One request to the E2B-compatible listener, owned (the RESTinio request it came
// from is gone once a continuation answers), and the reply shapes E2B uses.
// Private to http/e2b_*.cpp.
#pragma once

#include "core/json_mapping.hpp"
#include "http/api_json.hpp"
#include "http/e2b_routes.hpp"

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace codeexec::http {

struct e2b_routes::call {
  std::string method;
  std::string path;
  std::vector<std::string> segments;
  std::vector<std::pair<std::string, std::string>> query;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  /// The API key identity (control plane) or the sandbox's owner (data plane).
  std::string owner;
  responder respond;

  std::optional<std::string> query_value(std::string_view name) const {
    for (const auto& [k, v] : query)
      if (k == name) return v;
    return std::nullopt;
  }
  std::optional<std::string> header(std::string_view name) const {
    for (const auto& [k, v] : headers)
      if (k == name) return v;
    return std::nullopt;
  }
  /// The path's segments as views, for path_match.
  std::vector<std::string_view> segment_views() const { return {segments.begin(), segments.end()}; }

  void json(int status, const nlohmann::json& body_json) const {
    respond.reply(reply{status, dump(body_json), {}});
  }
  void no_content() const { respond.reply(reply{204, "", {}}); }
  /// The Code Interpreter answers its errors in plain text (FastAPI, §3.1–§3.2).
  void text(int status, std::string message) const {
    reply r{status, std::move(message), {}};
    r.content_type = "text/plain; charset=utf-8";
    respond.reply(std::move(r));
  }
  /// A service error as the Code Interpreter answers it: its status, plain text.
  void text(const service_error& err) const {
    const auto api = to_api_error(err);
    text(api.status, api.message);
  }
  /// Control plane and envd: {"code": status, "message"} (§1, §5), Retry-After kept.
  void error(const api_error& err) const {
    reply r{err.status, e2b::control_error(err), {}};
    if (err.retry_after_seconds > 0)
      r.headers.emplace_back("Retry-After", std::to_string(err.retry_after_seconds));
    respond.reply(std::move(r));
  }
  void error(const service_error& err) const { error(to_api_error(err)); }
};

}  // namespace codeexec::http
