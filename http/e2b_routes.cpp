#include "http/e2b_routes.hpp"

#include "core/ids.hpp"
#include "core/metrics.hpp"
#include "http/e2b_call.hpp"
#include "http/path_match.hpp"

#include <cctype>

namespace codeexec::http {
namespace {

/// The ports of a sandbox the SDK talks to (§2).
constexpr std::string_view code_interpreter_port = "49999";
constexpr std::string_view envd_port = "49983";

enum class surface { control, code_interpreter, envd, closed_port };

struct destination {
  surface where = surface::control;
  std::string sandbox_id;
};

/// `{port}-{sandboxID}.{domain}` (§2), the Host the SDK uses without E2B_SANDBOX_URL.
std::optional<std::pair<std::string, std::string>> port_and_id_of_host(std::string_view host) {
  const auto dot = host.find('.');
  if (dot == std::string_view::npos) return std::nullopt;
  const auto label = host.substr(0, dot);
  const auto dash = label.find('-');
  if (dash == std::string_view::npos || dash == 0 || dash + 1 == label.size()) return std::nullopt;
  const auto port = label.substr(0, dash);
  for (char ch : port)
    if (!std::isdigit(static_cast<unsigned char>(ch))) return std::nullopt;
  return std::pair{std::string{port}, std::string{label.substr(dash + 1)}};
}

destination locate(e2b_plane plane, const request_info& req) {
  const auto id = std::string{req.header("e2b-sandbox-id").value_or("")};
  switch (plane) {
    case e2b_plane::debug_code_interpreter:
      return {surface::code_interpreter, id};
    case e2b_plane::debug_envd:
      return {surface::envd, id};
    case e2b_plane::routed:
      break;
  }
  std::optional<std::pair<std::string, std::string>> port_and_id;
  if (auto port = req.header("e2b-sandbox-port"))
    port_and_id = std::pair{std::string{*port}, id};
  else if (auto host = req.header("host"))
    port_and_id = port_and_id_of_host(*host);
  if (!port_and_id) return {surface::control, ""};
  const auto& [port, sandbox] = *port_and_id;
  if (port == code_interpreter_port) return {surface::code_interpreter, sandbox};
  if (port == envd_port) return {surface::envd, sandbox};
  return {surface::closed_port, sandbox};
}

/// Whether the request must carry the sandbox's envd access token. The SDK sends it to
/// envd and to /execute; its /contexts and /health calls go without (§2).
bool needs_access_token(const std::string& path, bool envd) {
  if (envd) return path != "/health";
  return path == "/execute";
}

}  // namespace

e2b_routes::e2b_routes(const config& cfg, service& svc, access_policy& access)
    : cfg_(cfg), service_(svc), access_(access) {}

void e2b_routes::handle(e2b_plane plane, const request_info& req, std::string body,
                        responder respond) {
  const auto dest = locate(plane, req);
  auto c = std::make_shared<call>();
  c->method = std::string{req.method};
  c->path = std::string{req.path};
  if (c->path.size() > 1 && c->path.back() == '/') c->path.pop_back();
  for (auto segment : split_path(c->path)) c->segments.emplace_back(segment);
  c->query = req.query;
  c->headers = req.headers;
  c->body = std::move(body);
  const char* surface_name = dest.where == surface::control            ? "e2b_control"
                             : dest.where == surface::code_interpreter ? "e2b_code_interpreter"
                                                                       : "e2b_envd";
  c->respond.stream = std::move(respond.stream);
  c->respond.reply = [reply_fn = std::move(respond.reply), surface_name](reply r) {
    metrics::http_request(surface_name, r.status);
    reply_fn(std::move(r));
  };

  const bool debug = plane != e2b_plane::routed;
  switch (dest.where) {
    case surface::control:
      return control_plane(c);
    case surface::closed_port:
      return c->json(502, e2b::edge_proxy_error(dest.sandbox_id,
                                                "The sandbox is running but port is not open"));
    case surface::code_interpreter:
      return with_sandbox(
          c, dest.sandbox_id, debug, false,
          [this](const call_ptr& c, const entry_ptr& sandbox) { code_interpreter(c, sandbox); });
    case surface::envd:
      return with_sandbox(
          c, dest.sandbox_id, debug, true,
          [this](const call_ptr& c, const entry_ptr& sandbox) { envd(c, sandbox); });
  }
}

void e2b_routes::with_sandbox(const call_ptr& c, const std::string& id, bool debug, bool envd,
                              std::function<void(const call_ptr&, const entry_ptr&)> then) {
  auto proceed = [c, envd, then = std::move(then)](const entry_ptr& sandbox) {
    const auto token = c->header("x-access-token");
    const auto& expected = sandbox->e2b->identity.access_token;
    if (!expected.empty() &&
        (token ? !constant_time_equal(*token, expected) : needs_access_token(c->path, envd)))
      return c->error({401, "unauthorized",
                       "The X-Access-Token header does not match the sandbox's envdAccessToken"});
    c->owner = sandbox->owner;
    then(c, sandbox);
  };
  // Debug mode names every sandbox debug_sandbox_id; a known id is served as such.
  auto sandbox = service_.find_extended(id);
  if (debug && !sandbox) {
    return with_debug_sandbox([c, proceed](std::variant<entry_ptr, api_error> found) {
      if (auto* err = std::get_if<api_error>(&found)) return c->error(*err);
      proceed(std::get<entry_ptr>(found));
    });
  }
  if (!sandbox) return c->json(502, e2b::sandbox_not_found(id));
  proceed(std::make_shared<const extended_sandbox>(std::move(*sandbox)));
}

void e2b_routes::with_debug_sandbox(std::function<void(std::variant<entry_ptr, api_error>)> then) {
  std::unique_lock lock{mutex_};
  if (debug_sandbox_ && service_.has_sandbox(debug_sandbox_->owner, debug_sandbox_->id)) {
    auto sandbox = debug_sandbox_;
    lock.unlock();
    return then(std::move(sandbox));
  }
  // Gone (timed out, killed) or never started: the next request starts a new one.
  debug_sandbox_.reset();
  debug_waiters_.push_back(std::move(then));
  if (debug_starting_) return;
  debug_starting_ = true;
  lock.unlock();
  sandbox_request request;
  request.idle_timeout = cfg_.sandbox_idle_timeout;
  request.limits = cfg_.default_limits;
  // No access token: the debug ports take none.
  auto extension = std::make_shared<e2b_extension>(
      e2b_identity{std::string{e2b::default_template}, ""}, cfg_.sandbox_idle_timeout.count());
  request.e2b = extension;
  service_.create_sandbox(std::move(request), [this, extension](result<sandbox_info> created) {
    std::variant<entry_ptr, api_error> outcome;
    if (auto* err = std::get_if<service_error>(&created))
      outcome = to_api_error(*err);
    else
      outcome = std::make_shared<const extended_sandbox>(
          extended_sandbox{std::get<sandbox_info>(created).id, "", extension});
    auto answer = [this, outcome] {
      std::vector<std::function<void(std::variant<entry_ptr, api_error>)>> waiters;
      {
        std::lock_guard guard{mutex_};
        debug_starting_ = false;
        if (auto* entry = std::get_if<entry_ptr>(&outcome)) debug_sandbox_ = *entry;
        waiters.swap(debug_waiters_);
      }
      for (auto& waiter : waiters) waiter(outcome);
    };
    if (auto* entry = std::get_if<entry_ptr>(&outcome))
      return add_default_contexts((*entry)->owner, (*entry)->id, std::move(answer));
    answer();
  });
}

std::shared_ptr<e2b_extension> e2b_routes::adopt(const std::string& owner, const std::string& id) {
  return service_.extend_sandbox(owner, id, [] {
    return std::make_shared<e2b_extension>(
        e2b_identity{std::string{e2b::default_template}, make_secret()});
  });
}

}  // namespace codeexec::http
