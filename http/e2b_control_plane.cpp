// The control plane of the E2B-compatible API (e2b-protocol.md §1): sandboxes are our
// stateful sandboxes; X-API-Key is one of API_KEYS.
#include "core/ids.hpp"
#include "core/request_parsing.hpp"
#include "http/e2b_call.hpp"
#include "http/path_match.hpp"

#include <algorithm>
#include <tuple>

namespace codeexec::http {
namespace {

enum class control_action { create, list, get, kill, timeout, connect };

using control_route = route_row<control_action>;
constexpr control_route control_routes[] = {
    {"/v2/sandboxes", "POST", control_action::create},
    {"/v2/sandboxes", "GET", control_action::list},
    {"/sandboxes", "GET", control_action::list},  // v1 list, still in the SDK's schema
    {"/sandboxes/{id}", "GET", control_action::get},
    {"/sandboxes/{id}", "DELETE", control_action::kill},
    {"/sandboxes/{id}/timeout", "POST", control_action::timeout},
    {"/v2/sandboxes/{id}/connect", "POST", control_action::connect},
    {"/sandboxes/{id}/connect", "POST", control_action::connect},
};

/// The `metadata` filter of GET /v2/sandboxes: "k1=v1&k2=v2" (URL-decoded once already).
std::map<std::string, std::string> metadata_filter(const std::string& query) {
  std::map<std::string, std::string> out;
  std::size_t start = 0;
  while (start < query.size()) {
    auto end = query.find('&', start);
    if (end == std::string::npos) end = query.size();
    const auto item = query.substr(start, end - start);
    const auto eq = item.find('=');
    if (eq != std::string::npos) out[item.substr(0, eq)] = item.substr(eq + 1);
    start = end + 1;
  }
  return out;
}

bool has_metadata(const sandbox_info& sandbox, const std::map<std::string, std::string>& want) {
  return std::all_of(want.begin(), want.end(), [&](const auto& kv) {
    auto it = sandbox.metadata.find(kv.first);
    return it != sandbox.metadata.end() && it->second == kv.second;
  });
}

/// Our body for POST /sandboxes from E2B's NewSandboxV2: the fields both share. The
/// rest (network, autoPause, mcp…) has no meaning here: sandboxes have no network
/// and are never paused.
std::variant<nlohmann::json, api_error> native_create_body(const std::string& body) {
  if (body.find_first_not_of(" \t\r\n") == std::string::npos) return nlohmann::json::object();
  auto doc = nlohmann::json::parse(body, nullptr, false);
  if (!doc.is_object()) return api_error::bad_request("The body must be a JSON object");
  nlohmann::json native = nlohmann::json::object();
  for (const char* key : {"timeout", "metadata", "envVars"})
    if (doc.contains(key)) native[key] = doc[key];
  return native;
}

/// A sandbox that ended between two lookups of one request.
service_error ended(const std::string& id) {
  return {ec::sandbox_not_found, "No sandbox '" + id + "'", 0};
}

}  // namespace

std::variant<std::string, api_error> e2b_routes::authenticate(const call& c) {
  auto presented = c.header("x-api-key");
  if (!presented) {
    // The deprecated bearer access token of E2B's schema.
    if (auto authorization = c.header("authorization"))
      if (auto token = api_keys::bearer_token(*authorization)) presented = std::string{*token};
  }
  return access_.admit(presented ? std::optional<std::string_view>{*presented} : std::nullopt,
                       "X-API-Key");
}

void e2b_routes::control_plane(const call_ptr& c) {
  const auto segments = c->segment_views();
  std::vector<std::string> params;
  bool path_known = false;
  const auto* match = find_route(control_routes, c->method, segments, params, path_known);
  if (!match)
    return c->error({path_known ? 405 : 404, "not_found",
                     c->method + " " + c->path + " is not part of this server's E2B API"});
  auto who = authenticate(*c);
  if (auto* err = std::get_if<api_error>(&who)) return c->error(*err);
  c->owner = std::get<std::string>(who);
  const auto id = params.empty() ? std::string{} : params[0];

  switch (match->what) {
    case control_action::create:
      return create_sandbox(c);
    case control_action::list:
      return list_sandboxes(c);
    case control_action::get: {
      auto found = service_.get_sandbox(c->owner, id);
      if (auto* err = std::get_if<service_error>(&found)) return c->error(*err);
      auto e2b = adopt(c->owner, id);
      if (!e2b) return c->error(ended(id));
      return c->json(200, e2b::sandbox_detail_json(std::get<sandbox_info>(found), e2b->identity));
    }
    case control_action::kill:
      return service_.delete_sandbox(c->owner, id, [c](std::optional<service_error> err) {
        if (err) return c->error(*err);
        c->no_content();
      });
    case control_action::timeout: {
      auto parsed = parse_timeout_request(c->body, cfg_);
      if (auto* err = std::get_if<api_error>(&parsed)) return c->error(*err);
      const auto timeout = std::get<std::chrono::milliseconds>(parsed);
      auto set = service_.set_sandbox_timeout(c->owner, id, timeout);
      if (auto* err = std::get_if<service_error>(&set)) return c->error(*err);
      if (auto e2b = adopt(c->owner, id)) e2b->timeout_ms = timeout.count();
      return c->no_content();
    }
    case control_action::connect:
      return connect_sandbox(c, id);
  }
}

void e2b_routes::create_sandbox(const call_ptr& c) {
  auto native = native_create_body(c->body);
  if (auto* err = std::get_if<api_error>(&native)) return c->error(*err);
  auto parsed = parse_sandbox_request(dump(std::get<nlohmann::json>(native)), cfg_);
  if (auto* err = std::get_if<api_error>(&parsed)) return c->error(*err);
  auto request = std::get<sandbox_request>(std::move(parsed));
  request.owner = c->owner;
  std::string template_id{e2b::default_template};
  if (auto doc = nlohmann::json::parse(c->body, nullptr, false); doc.is_object())
    if (auto it = doc.find("templateID"); it != doc.end() && it->is_string() && !it->empty())
      template_id = it->get<std::string>();
  auto extension = std::make_shared<e2b_extension>(e2b_identity{template_id, make_secret()},
                                                   request.idle_timeout.count());
  request.e2b = extension;
  service_.create_sandbox(std::move(request), [this, c, extension](result<sandbox_info> created) {
    if (auto* err = std::get_if<service_error>(&created)) return c->error(*err);
    const auto& ours = std::get<sandbox_info>(created);
    add_default_contexts(
        c->owner, ours.id,
        [c, body = e2b::sandbox_json(ours, extension->identity)] { c->json(201, body); });
  });
}

void e2b_routes::add_default_contexts(const std::string& owner, const std::string& id,
                                      std::function<void()> then) {
  // Registered at once (the kernel starts meanwhile): listed before the reply.
  context_request javascript{language::javascript, "/home/user", true};
  service_.create_context(owner, id, std::move(javascript),
                          [then = std::move(then)](result<context_info>) { then(); });
}

void e2b_routes::list_sandboxes(const call_ptr& c) {
  auto sandboxes = service_.list_sandboxes(c->owner);
  // Sandboxes here are never paused: a filter for paused ones alone finds none.
  const auto state = c->query_value("state").value_or("");
  const bool running_wanted = state.empty() || state.find("running") != std::string::npos;
  const auto filter = metadata_filter(c->query_value("metadata").value_or(""));
  std::vector<sandbox_info> selected;
  for (auto& s : sandboxes)
    if (running_wanted && has_metadata(s, filter)) selected.push_back(std::move(s));
  std::sort(selected.begin(), selected.end(), [](const auto& a, const auto& b) {
    return std::tie(a.created, a.id) < std::tie(b.created, b.id);
  });
  // Pages: nextToken is the offset of the next page, limit its size (§1).
  std::size_t offset = 0;
  std::size_t limit = 100;
  try {
    if (auto token = c->query_value("nextToken"); token && !token->empty())
      offset = std::stoul(*token);
    if (auto value = c->query_value("limit"); value && !value->empty())
      limit = std::clamp<std::size_t>(std::stoul(*value), 1, 1000);
  } catch (const std::exception&) {
    return c->error(api_error::bad_request("`limit` and `nextToken` must be numbers"));
  }
  nlohmann::json page = nlohmann::json::array();
  for (std::size_t i = offset; i < selected.size() && i < offset + limit; ++i)
    if (auto e2b = adopt(c->owner, selected[i].id))  // else it ended since the listing
      page.push_back(e2b::listed_sandbox_json(selected[i], e2b->identity));
  reply r{200, dump(page), {}};
  r.headers.emplace_back("X-Total-Running", std::to_string(selected.size()));
  if (offset + limit < selected.size())
    r.headers.emplace_back("X-Next-Token", std::to_string(offset + limit));
  c->respond.reply(std::move(r));
}

void e2b_routes::connect_sandbox(const call_ptr& c, const std::string& id) {
  // Body optional: {"timeout"?: seconds}. Connecting only ever extends the timeout.
  std::optional<std::chrono::milliseconds> timeout;
  if (c->body.find_first_not_of(" \t\r\n") != std::string::npos) {
    auto doc = nlohmann::json::parse(c->body, nullptr, false);
    if (!doc.is_object()) return c->error(api_error::bad_request("The body must be a JSON object"));
    if (doc.contains("timeout")) {
      auto parsed = parse_timeout_request(c->body, cfg_);
      if (auto* err = std::get_if<api_error>(&parsed)) return c->error(*err);
      timeout = std::get<std::chrono::milliseconds>(parsed);
    }
  }
  auto found = service_.get_sandbox(c->owner, id);
  if (auto* err = std::get_if<service_error>(&found)) return c->error(*err);
  auto e2b = adopt(c->owner, id);
  if (!e2b) return c->error(ended(id));
  if (timeout && timeout->count() > e2b->timeout_ms) {
    found = service_.set_sandbox_timeout(c->owner, id, *timeout);
    if (auto* err = std::get_if<service_error>(&found)) return c->error(*err);
    e2b->timeout_ms = timeout->count();
  }
  c->json(200, e2b::sandbox_json(std::get<sandbox_info>(found), e2b->identity));
}

}  // namespace codeexec::http
