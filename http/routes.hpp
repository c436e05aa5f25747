// The public API's routes, free of any HTTP library: a request comes in as method,
// path and body; the reply goes out through a callback, now or later.
#pragma once

#include "actors/service.hpp"
#include "core/api_error.hpp"
#include "core/config.hpp"

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace codeexec::http {

struct reply {
  int status = 200;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  ///< besides Content-Type
};

using reply_fn = std::function<void(reply)>;

/// A JSON error reply with the right status (and Retry-After where it applies).
reply error_reply(const api_error& err);

class routes {
 public:
  routes(const config& cfg, service& svc) : cfg_(cfg), service_(svc) {}

  /// Handles a request. `respond` is called exactly once, possibly from another thread.
  void handle(std::string_view method, std::string_view path, std::string body, reply_fn respond);

  /// Decides on a WebSocket upgrade to `path` with the decoded clientId (if given):
  /// the clientId to attach, or the refusal.
  std::variant<std::string, api_error> accept_websocket(std::string_view path,
                                                        const std::string* client_id) const;

 private:
  void execute(std::string body, reply_fn respond);
  void execute_stream(std::string body, reply_fn respond);

  const config& cfg_;
  service& service_;
};

}  // namespace codeexec::http
