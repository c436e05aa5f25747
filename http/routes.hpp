// The public API's routes, free of any HTTP library: a request comes in as a
// request_info and a body; the reply goes out through a callback, now or later.
// Authentication, per-key rate limits and CORS are decided here too.
#pragma once

#include "actors/service.hpp"
#include "core/access_policy.hpp"
#include "core/api_error.hpp"
#include "core/config.hpp"

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace codeexec::http {

class mcp_server;

struct reply {
  int status = 200;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  ///< besides Content-Type
  std::string content_type = "application/json; charset=utf-8";
};

using reply_fn = std::function<void(reply)>;

/// What the routes need to know of a request besides its body.
struct request_info {
  std::string_view method;
  std::string_view path;
  std::optional<std::string_view> authorization;  ///< the Authorization header
  std::optional<std::string_view> token;          ///< the `token` query parameter (WebSocket)
  std::optional<std::string_view> origin;         ///< the Origin header
  /// The decoded query parameters (e.g. `path` of the files API).
  std::vector<std::pair<std::string, std::string>> query;
  /// Every header, names in lower case.
  std::vector<std::pair<std::string, std::string>> headers;
  /// Whether the peer's address is a loopback one (the main listener).
  bool loopback_client = false;

  /// A header's value (`name` in lower case), if present.
  std::optional<std::string_view> header(std::string_view name) const {
    for (const auto& [k, v] : headers)
      if (k == name) return v;
    return std::nullopt;
  }
};

/// A JSON error reply with the right status (and Retry-After where it applies).
reply error_reply(const api_error& err);
/// The same for an error of the service (its status from http/api_json.hpp).
reply error_reply(const service_error& err);

/// A WebSocket the routes accepted: whose it is and which clientId it listens to.
struct websocket_grant {
  std::string owner;
  std::string client_id;
};

class routes {
 public:
  /// `access` (keys, rate limits) is shared with the other listeners; it outlives this.
  routes(const config& cfg, service& svc, access_policy& access);
  ~routes();

  /// Handles a request. `respond` is called exactly once, possibly from another thread.
  void handle(const request_info& req, std::string body, reply_fn respond);

  /// Decides on a WebSocket upgrade to `req.path` with the decoded clientId (if given).
  std::variant<websocket_grant, api_error> accept_websocket(const request_info& req,
                                                            const std::string* client_id);

  /// CORS headers for a request from `origin`, if CORS allows it (else none).
  std::vector<std::pair<std::string, std::string>> cors_headers(
      std::optional<std::string_view> origin) const;

 private:
  struct call;

  /// The caller's key identity ("" when the service is open), or why not.
  std::variant<std::string, api_error> authenticate(const request_info& req);
  void dispatch(call& c);
  void execute(call& c, execute_endpoint endpoint);
  void sandbox_files(call& c);

  const config& cfg_;
  service& service_;
  access_policy& access_;
  std::vector<std::string> cors_origins_;
  std::unique_ptr<mcp_server> mcp_;  ///< POST/DELETE /mcp (http/mcp.hpp)
};

}  // namespace codeexec::http
