#include "http/routes.hpp"

#include "core/json_mapping.hpp"
#include "core/metrics.hpp"
#include "core/request_parsing.hpp"

namespace codeexec::http {
namespace {

/// Known paths, the method each takes, and whether it needs an API key.
struct route {
  std::string_view path;
  std::string_view method;
  bool needs_key;
};
constexpr route known_routes[] = {
    {"/health", "GET", false},  {"/ready", "GET", false},          {"/metrics", "GET", false},
    {"/execute", "POST", true}, {"/execute-stream", "POST", true},
};

reply json_reply(int status, std::string body) {
  return {status, std::move(body), {}};
}

std::vector<std::string> split_list(const std::string& list) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= list.size()) {
    auto end = list.find(',', start);
    if (end == std::string::npos) end = list.size();
    auto item = list.substr(start, end - start);
    item.erase(0, item.find_first_not_of(' '));
    item.erase(item.find_last_not_of(' ') + 1);
    if (!item.empty()) out.push_back(item);
    start = end + 1;
  }
  return out;
}

}  // namespace

reply error_reply(const api_error& err) {
  reply r = json_reply(err.status, error_body(err));
  if (err.retry_after_seconds > 0)
    r.headers.emplace_back("Retry-After", std::to_string(err.retry_after_seconds));
  if (err.status == 401) r.headers.emplace_back("WWW-Authenticate", "Bearer");
  return r;
}

routes::routes(const config& cfg, service& svc)
    : cfg_(cfg),
      service_(svc),
      keys_(api_keys::load(cfg.api_keys, cfg.api_keys_file)),
      limiter_(static_cast<double>(cfg.key_rate_limit_rps),
               static_cast<double>(cfg.key_rate_limit_burst)),
      cors_origins_(split_list(cfg.cors_origins)) {}

std::vector<std::pair<std::string, std::string>> routes::cors_headers(
    std::optional<std::string_view> origin) const {
  if (cors_origins_.empty() || !origin) return {};
  for (const auto& allowed : cors_origins_) {
    if (allowed == "*") return {{"Access-Control-Allow-Origin", "*"}};
    if (allowed == *origin)
      return {{"Access-Control-Allow-Origin", std::string{*origin}}, {"Vary", "Origin"}};
  }
  return {};
}

std::variant<std::string, api_error> routes::authenticate(const request_info& req) {
  if (keys_.open()) return std::string{};
  std::optional<std::string_view> presented;
  if (req.authorization) presented = api_keys::bearer_token(*req.authorization);
  if (!presented && req.token) presented = req.token;
  if (!presented)
    return api_error{401, "unauthorized", "An API key is required: Authorization: Bearer <key>"};
  auto owner = keys_.identify(*presented);
  if (!owner) return api_error{401, "unauthorized", "The API key is not valid"};
  if (const int wait = limiter_.acquire(*owner); wait > 0)
    return api_error{429, "rate_limited",
                     "Too many requests for this API key (" +
                         std::to_string(cfg_.key_rate_limit_rps) + " per second)",
                     wait};
  return *owner;
}

void routes::handle(const request_info& req, std::string body, reply_fn respond_plain) {
  auto path = req.path;
  // Tolerate one trailing slash, as most HTTP frameworks do.
  if (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  const route* match = nullptr;
  for (const auto& r : known_routes)
    if (r.path == path) match = &r;
  // Every reply carries the CORS headers and is counted under its route template.
  auto cors = cors_headers(req.origin);
  auto respond = [respond_plain = std::move(respond_plain), cors,
                  route = match ? match->path : std::string_view{"other"}](reply r) {
    r.headers.insert(r.headers.end(), cors.begin(), cors.end());
    metrics::http_request(route, r.status);
    respond_plain(std::move(r));
  };
  if (!match) {
    respond(error_reply({404, "not_found", "No route for " + std::string{path}}));
    return;
  }
  if (req.method == "OPTIONS" && !cors.empty()) {
    // A CORS preflight.
    reply r{204, "", {}};
    r.headers = {{"Access-Control-Allow-Methods", std::string{match->method}},
                 {"Access-Control-Allow-Headers", "Authorization, Content-Type"},
                 {"Access-Control-Max-Age", "600"}};
    respond(std::move(r));
    return;
  }
  if (req.method != match->method) {
    auto r = error_reply({405, "method_not_allowed",
                          std::string{path} + " accepts " + std::string{match->method} + " only"});
    r.headers.emplace_back("Allow", std::string{match->method});
    respond(std::move(r));
    return;
  }
  std::string owner;
  if (match->needs_key) {
    auto who = authenticate(req);
    if (auto* err = std::get_if<api_error>(&who)) {
      respond(error_reply(*err));
      return;
    }
    owner = std::get<std::string>(who);
  }
  if (path == "/health") {
    respond(json_reply(200, dump(service_.health())));
  } else if (path == "/ready") {
    auto readiness = service_.readiness();
    const bool ready = readiness.value("ready", false);
    respond(json_reply(ready ? 200 : 503, dump(readiness)));
  } else if (path == "/metrics") {
    reply r{200, service_.metrics_text(), {}};
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    respond(std::move(r));
  } else if (path == "/execute") {
    execute(std::move(owner), std::move(body), std::move(respond));
  } else {
    execute_stream(std::move(owner), std::move(body), std::move(respond));
  }
}

void routes::execute(std::string owner, std::string body, reply_fn respond) {
  auto parsed = parse_execute_request(body, cfg_, execute_endpoint::execute);
  if (auto* err = std::get_if<api_error>(&parsed)) {
    respond(error_reply(*err));
    return;
  }
  auto& request = std::get<execution_request>(parsed);
  request.owner = std::move(owner);
  // The reply function is shared: the service either calls it with the report or
  // returns an error synchronously, never both.
  auto shared = std::make_shared<reply_fn>(std::move(respond));
  auto started = service_.execute(std::move(request), [shared](execution_report report) {
    (*shared)(json_reply(200, execute_response(report)));
  });
  if (auto* err = std::get_if<api_error>(&started)) (*shared)(error_reply(*err));
}

void routes::execute_stream(std::string owner, std::string body, reply_fn respond) {
  auto parsed = parse_execute_request(body, cfg_, execute_endpoint::execute_stream);
  if (auto* err = std::get_if<api_error>(&parsed)) {
    respond(error_reply(*err));
    return;
  }
  auto& request = std::get<execution_request>(parsed);
  request.owner = std::move(owner);
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

std::variant<websocket_grant, api_error> routes::accept_websocket(const request_info& req,
                                                                  const std::string* client_id) {
  if (req.path != "/" && !req.path.empty())
    return api_error{404, "not_found",
                     "WebSocket clients connect to / (ws://HOST:PORT/?clientId=…)"};
  auto who = authenticate(req);
  if (auto* err = std::get_if<api_error>(&who)) return *err;
  if (!client_id)
    return api_error::bad_request(
        "A WebSocket needs a clientId: connect to ws://HOST:PORT/?clientId=<id>");
  if (auto err = validate_client_id(*client_id)) return *err;
  return websocket_grant{std::get<std::string>(who), *client_id};
}

}  // namespace codeexec::http
