#include "http/routes.hpp"

#include "core/json_mapping.hpp"
#include "core/request_parsing.hpp"

namespace codeexec::http {
namespace {

/// Known paths and the method each takes.
struct route {
  std::string_view path;
  std::string_view method;
};
constexpr route known_routes[] = {
    {"/health", "GET"},
    {"/execute", "POST"},
    {"/execute-stream", "POST"},
};

reply json_reply(int status, std::string body) {
  return {status, std::move(body), {}};
}

}  // namespace

reply error_reply(const api_error& err) {
  reply r = json_reply(err.status, error_body(err));
  if (err.retry_after_seconds > 0)
    r.headers.emplace_back("Retry-After", std::to_string(err.retry_after_seconds));
  return r;
}

void routes::handle(std::string_view method, std::string_view path, std::string body,
                    reply_fn respond) {
  // Tolerate one trailing slash, as most HTTP frameworks do.
  if (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  const route* match = nullptr;
  for (const auto& r : known_routes)
    if (r.path == path) match = &r;
  if (!match) {
    respond(error_reply({404, "not_found", "No route for " + std::string{path}}));
    return;
  }
  if (method != match->method) {
    auto r = error_reply({405, "method_not_allowed",
                          std::string{path} + " accepts " + std::string{match->method} + " only"});
    r.headers.emplace_back("Allow", std::string{match->method});
    respond(std::move(r));
    return;
  }
  if (path == "/health") {
    respond(json_reply(200, dump(service_.health())));
  } else if (path == "/execute") {
    execute(std::move(body), std::move(respond));
  } else {
    execute_stream(std::move(body), std::move(respond));
  }
}

void routes::execute(std::string body, reply_fn respond) {
  auto parsed = parse_execute_request(body, cfg_, execute_endpoint::execute);
  if (auto* err = std::get_if<api_error>(&parsed)) {
    respond(error_reply(*err));
    return;
  }
  // The reply function is shared: the service either calls it with the report or
  // returns an error synchronously, never both.
  auto shared = std::make_shared<reply_fn>(std::move(respond));
  auto started = service_.execute(
      std::move(std::get<execution_request>(parsed)),
      [shared](execution_report report) { (*shared)(json_reply(200, execute_response(report))); });
  if (auto* err = std::get_if<api_error>(&started)) (*shared)(error_reply(*err));
}

void routes::execute_stream(std::string body, reply_fn respond) {
  auto parsed = parse_execute_request(body, cfg_, execute_endpoint::execute_stream);
  if (auto* err = std::get_if<api_error>(&parsed)) {
    respond(error_reply(*err));
    return;
  }
  auto& request = std::get<execution_request>(parsed);
  const auto client_id = request.client_id;
  auto started = service_.execute_stream(std::move(request));
  if (auto* err = std::get_if<api_error>(&started)) {
    respond(error_reply(*err));
    return;
  }
  respond(json_reply(200, dump({{"executionId", std::get<std::string>(started)},
                                {"status", "streaming"},
                                {"clientId", client_id}})));
}

std::variant<std::string, api_error> routes::accept_websocket(std::string_view path,
                                                              const std::string* client_id) const {
  if (path != "/" && !path.empty())
    return api_error{404, "not_found",
                     "WebSocket clients connect to / (ws://HOST:PORT/?clientId=…)"};
  if (!client_id)
    return api_error::bad_request(
        "A WebSocket needs a clientId: connect to ws://HOST:PORT/?clientId=<id>");
  if (auto err = validate_client_id(*client_id)) return *err;
  return *client_id;
}

}  // namespace codeexec::http
