#include "http/routes.hpp"

#include "core/json_mapping.hpp"
#include "core/metrics.hpp"
#include "core/request_parsing.hpp"
#include "http/api_json.hpp"
#include "http/mcp.hpp"
#include "http/openapi.hpp"
#include "http/path_match.hpp"
#include "http/playground.hpp"

namespace codeexec::http {
namespace {

/// What a route does; the handler switches on it.
enum class action {
  health,
  ready,
  metrics,
  openapi,
  execute,
  execute_stream,
  stdin_input,
  create_sandbox,
  list_sandboxes,
  get_sandbox,
  delete_sandbox,
  sandbox_timeout,
  sandbox_execute,
  sandbox_execute_stream,
  sandbox_interrupt,
  create_context,
  list_contexts,
  delete_context,
  restart_context,
  read_file,
  write_file,
  list_files,
  mcp,
  playground,
};

/// A path template ("{x}" matches one segment), a method and whether it needs a key.
struct route {
  std::string_view path;
  std::string_view method;
  action what;
  bool needs_key = true;
};
constexpr route known_routes[] = {
    {"/health", "GET", action::health, false},
    {"/ready", "GET", action::ready, false},
    {"/metrics", "GET", action::metrics, false},
    {"/openapi.json", "GET", action::openapi, false},
    {"/", "GET", action::playground, false},
    {"/playground/{file}", "GET", action::playground, false},
    {"/execute", "POST", action::execute},
    {"/execute-stream", "POST", action::execute_stream},
    {"/executions/{id}/stdin", "POST", action::stdin_input},
    {"/sandboxes", "POST", action::create_sandbox},
    {"/sandboxes", "GET", action::list_sandboxes},
    {"/sandboxes/{id}", "GET", action::get_sandbox},
    {"/sandboxes/{id}", "DELETE", action::delete_sandbox},
    {"/sandboxes/{id}/timeout", "POST", action::sandbox_timeout},
    {"/sandboxes/{id}/execute", "POST", action::sandbox_execute},
    {"/sandboxes/{id}/execute-stream", "POST", action::sandbox_execute_stream},
    {"/sandboxes/{id}/interrupt", "POST", action::sandbox_interrupt},
    {"/sandboxes/{id}/contexts", "POST", action::create_context},
    {"/sandboxes/{id}/contexts", "GET", action::list_contexts},
    {"/sandboxes/{id}/contexts/{ctx}", "DELETE", action::delete_context},
    {"/sandboxes/{id}/contexts/{ctx}/restart", "POST", action::restart_context},
    {"/sandboxes/{id}/files", "GET", action::read_file},
    {"/sandboxes/{id}/files", "PUT", action::write_file},
    {"/sandboxes/{id}/files/list", "GET", action::list_files},
    {"/mcp", "POST", action::mcp},
    {"/mcp", "DELETE", action::mcp},
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

reply error_reply(const service_error& err) {
  return error_reply(to_api_error(err));
}

routes::routes(const config& cfg, service& svc, access_policy& access)
    : cfg_(cfg),
      service_(svc),
      access_(access),
      cors_origins_(split_list(cfg.cors_origins)),
      mcp_(std::make_unique<mcp_server>(cfg, svc)) {}

routes::~routes() = default;

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
  std::optional<std::string_view> presented;
  if (req.authorization) presented = api_keys::bearer_token(*req.authorization);
  if (!presented && req.token) presented = req.token;
  return access_.admit(presented, "Authorization: Bearer <key>");
}

/// One request on its way through the routes.
struct routes::call {
  const route* match = nullptr;
  const request_info* request = nullptr;  ///< valid until dispatch returns
  std::vector<std::string> params;        ///< values of the route's "{x}" segments
  std::vector<std::pair<std::string, std::string>> query;
  std::string owner;
  std::string body;
  reply_fn respond;

  std::string query_value(std::string_view name) const {
    for (const auto& [k, v] : query)
      if (k == name) return v;
    return {};
  }
  /// Answers with the service's error, or with `ok_status` and the value rendered.
  template <class T, class Render>
  void answer(const result<T>& outcome, Render render, int ok_status = 200) const {
    if (auto* err = std::get_if<service_error>(&outcome))
      respond(error_reply(*err));
    else
      respond(json_reply(ok_status, dump(render(std::get<T>(outcome)))));
  }
  /// A callback for the service that answers as answer() does.
  template <class T, class Render>
  reply_callback<T> answer_later(Render render, int ok_status = 200) const {
    return [respond = respond, render, ok_status](result<T> outcome) {
      if (auto* err = std::get_if<service_error>(&outcome))
        respond(error_reply(*err));
      else
        respond(json_reply(ok_status, dump(render(std::get<T>(outcome)))));
    };
  }
  /// A callback for the service that answers 204 (or the error).
  done_callback no_content_later() const {
    return [respond = respond](std::optional<service_error> err) {
      respond(err ? error_reply(*err) : reply{204, "", {}});
    };
  }
};

void routes::handle(const request_info& req, std::string body, reply_fn respond_plain) {
  auto path = req.path;
  // Tolerate one trailing slash, as most HTTP frameworks do.
  if (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  const auto segments = split_path(path);
  call c;
  std::string allowed;  // methods of the path, for 405 and CORS preflights
  for (const auto& r : known_routes) {
    std::vector<std::string> params;
    if (!matches(r.path, segments, params)) continue;
    allowed += (allowed.empty() ? "" : ", ") + std::string{r.method};
    if (r.method == req.method || (!c.match && req.method == "OPTIONS")) {
      c.match = &r;
      c.params = std::move(params);
    }
  }
  // Every reply carries the CORS headers and is counted under its route template.
  auto cors = cors_headers(req.origin);
  c.respond = [respond_plain = std::move(respond_plain), cors,
               route = c.match ? c.match->path : std::string_view{"other"}](reply r) {
    r.headers.insert(r.headers.end(), cors.begin(), cors.end());
    metrics::http_request(route, r.status);
    respond_plain(std::move(r));
  };
  if (allowed.empty()) {
    c.respond(error_reply({404, "not_found", "No route for " + std::string{path}}));
    return;
  }
  if (req.method == "OPTIONS" && !cors.empty()) {
    // A CORS preflight.
    reply r{204, "", {}};
    r.headers = {{"Access-Control-Allow-Methods", allowed},
                 {"Access-Control-Allow-Headers", "Authorization, Content-Type"},
                 {"Access-Control-Max-Age", "600"}};
    c.respond(std::move(r));
    return;
  }
  if (!c.match || c.match->method != req.method) {
    auto r = error_reply(
        {405, "method_not_allowed", std::string{path} + " accepts " + allowed + " only"});
    r.headers.emplace_back("Allow", allowed);
    c.respond(std::move(r));
    return;
  }
  if (c.match->needs_key) {
    auto who = authenticate(req);
    if (auto* err = std::get_if<api_error>(&who)) {
      c.respond(error_reply(*err));
      return;
    }
    c.owner = std::get<std::string>(who);
  }
  c.query = req.query;
  c.body = std::move(body);
  c.request = &req;
  dispatch(c);
}

void routes::dispatch(call& c) {
  const auto id = c.params.empty() ? std::string{} : c.params[0];
  switch (c.match->what) {
    case action::health:
      return c.respond(json_reply(200, dump(service_.health())));
    case action::ready: {
      auto readiness = service_.readiness();
      const bool ready = readiness.value("ready", false);
      return c.respond(json_reply(ready ? 200 : 503, dump(readiness)));
    }
    case action::metrics: {
      reply r{200, service_.metrics_text(), {}};
      r.content_type = "text/plain; version=0.0.4; charset=utf-8";
      return c.respond(std::move(r));
    }
    case action::openapi:
      return c.respond(json_reply(200, std::string{openapi::document()}));
    case action::execute:
      return execute(c, execute_endpoint::execute);
    case action::execute_stream:
      return execute(c, execute_endpoint::execute_stream);
    case action::sandbox_execute:
      return execute(c, execute_endpoint::sandbox_execute);
    case action::sandbox_execute_stream:
      return execute(c, execute_endpoint::sandbox_execute_stream);
    case action::stdin_input: {
      auto parsed = parse_stdin_request(c.body, cfg_);
      if (auto* err = std::get_if<api_error>(&parsed)) return c.respond(error_reply(*err));
      auto& input = std::get<stdin_request>(parsed);
      const auto bytes = input.data.size();
      const bool eof = input.eof;
      if (auto err = service_.send_stdin(c.owner, id, std::move(input)))
        return c.respond(error_reply(*err));
      return c.respond(json_reply(202, dump({{"accepted", bytes}, {"eof", eof}})));
    }
    case action::create_sandbox: {
      auto parsed = parse_sandbox_request(c.body, cfg_);
      if (auto* err = std::get_if<api_error>(&parsed)) return c.respond(error_reply(*err));
      auto& request = std::get<sandbox_request>(parsed);
      request.owner = c.owner;
      return service_.create_sandbox(std::move(request),
                                     c.answer_later<sandbox_info>(sandbox_json, 201));
    }
    case action::list_sandboxes:
      return c.respond(json_reply(200, dump(sandboxes_json(service_.list_sandboxes(c.owner)))));
    case action::get_sandbox:
      return c.answer(service_.get_sandbox(c.owner, id), sandbox_json);
    case action::delete_sandbox:
      return service_.delete_sandbox(c.owner, id, c.no_content_later());
    case action::sandbox_timeout: {
      auto parsed = parse_timeout_request(c.body, cfg_);
      if (auto* err = std::get_if<api_error>(&parsed)) return c.respond(error_reply(*err));
      return c.answer(
          service_.set_sandbox_timeout(c.owner, id, std::get<std::chrono::milliseconds>(parsed)),
          sandbox_json);
    }
    case action::sandbox_interrupt: {
      std::string context_id;
      if (c.body.find_first_not_of(" \t\r\n") != std::string::npos) {
        auto doc = nlohmann::json::parse(c.body, nullptr, false);
        if (!doc.is_object())
          return c.respond(error_reply(
              api_error::bad_request("The body must be empty or {\"contextId\": \"…\"}")));
        context_id = string_field(doc, "contextId");
      }
      return service_.interrupt_sandbox(c.owner, id, context_id,
                                        c.answer_later<std::uint64_t>([](std::uint64_t count) {
                                          return nlohmann::json{{"interrupted", count}};
                                        }));
    }
    case action::create_context: {
      auto parsed = parse_context_request(c.body);
      if (auto* err = std::get_if<api_error>(&parsed)) return c.respond(error_reply(*err));
      return service_.create_context(c.owner, id, std::get<context_request>(parsed),
                                     c.answer_later<context_info>(context_json, 201));
    }
    case action::list_contexts:
      return service_.list_contexts(c.owner, id,
                                    c.answer_later<std::vector<context_info>>(contexts_json));
    case action::delete_context:
      return service_.delete_context(c.owner, id, c.params[1], c.no_content_later());
    case action::restart_context:
      return service_.restart_context(c.owner, id, c.params[1],
                                      c.answer_later<context_info>(context_json));
    case action::read_file:
    case action::write_file:
    case action::list_files:
      return sandbox_files(c);
    case action::mcp:
      return mcp_->handle(*c.request, c.owner, std::move(c.body), c.respond);
    case action::playground: {
      const auto asset = playground::find(id);
      if (!asset || !playground::serves(cfg_.playground, c.request->loopback_client))
        return c.respond(error_reply(
            {404, "not_found",
             asset ? "The playground is off for this client: PLAYGROUND=auto serves it to "
                     "loopback clients only, PLAYGROUND=on to all"
                   : "No such playground file"}));
      reply r{200, std::string{asset->body}, {{"Cache-Control", "no-cache"}}};
      r.content_type = asset->content_type;
      return c.respond(std::move(r));
    }
  }
}

void routes::sandbox_files(call& c) {
  const auto& id = c.params[0];
  auto path = c.query_value("path");
  if (path.empty() && c.match->what == action::list_files) path = "/home/user";
  if (path.empty())
    return c.respond(error_reply(
        api_error::bad_request("The `path` query parameter is required: ?path=/home/user/file")));
  switch (c.match->what) {
    case action::read_file: {
      auto read = service_.read_file(c.owner, id, path);
      if (auto* err = std::get_if<service_error>(&read)) return c.respond(error_reply(*err));
      reply r{200, std::move(std::get<std::string>(read)), {}};
      r.content_type = "application/octet-stream";
      return c.respond(std::move(r));
    }
    case action::write_file:
      return c.answer(service_.write_file(c.owner, id, path, c.body),
                      [&](std::uint64_t size) { return file_written_json(path, size); });
    default:
      return c.answer(
          service_.list_files(c.owner, id, path),
          [&](const sandbox::dir_listing& listed) { return file_listing_json(path, listed); });
  }
}

void routes::execute(call& c, execute_endpoint endpoint) {
  auto parsed = parse_execute_request(c.body, cfg_, endpoint);
  if (auto* err = std::get_if<api_error>(&parsed)) return c.respond(error_reply(*err));
  auto& request = std::get<execution_request>(parsed);
  request.owner = c.owner;
  if (endpoint == execute_endpoint::sandbox_execute ||
      endpoint == execute_endpoint::sandbox_execute_stream)
    request.sandbox_id = c.params[0];
  if (endpoint == execute_endpoint::execute || endpoint == execute_endpoint::sandbox_execute) {
    // The reply function is shared: the service either calls it with the report or
    // returns an error synchronously, never both.
    auto shared = std::make_shared<reply_fn>(c.respond);
    auto started = service_.execute(std::move(request), [shared](execution_report report) {
      if (report.rejection)
        (*shared)(error_reply(*report.rejection));
      else
        (*shared)(json_reply(200, execute_response(report)));
    });
    if (auto* err = std::get_if<service_error>(&started)) (*shared)(error_reply(*err));
    return;
  }
  const auto client_id = request.client_id;
  auto started = service_.execute_stream(std::move(request));
  if (auto* err = std::get_if<service_error>(&started)) return c.respond(error_reply(*err));
  c.respond(json_reply(200, dump({{"executionId", std::get<std::string>(started)},
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
