// Routing, validation, authentication and CORS without a network: the service
// behind the routes is real, but no request here reaches a sandbox.
#include "http/routes.hpp"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

using namespace codeexec;

namespace {

struct routes_fixture {
  config cfg = [] {
    config c;
    c.default_limits.output_bytes = 1024;
    c.max_code_bytes = 128;
    c.warm_pool_size = 0;  // no sandbox starts unless a test asks
    return c;
  }();
  service svc{cfg};
  access_policy access{cfg};
  http::routes routes{cfg, svc, access};

  http::reply call(http::routes& r, std::string_view method, std::string_view path,
                   std::string body = {}, std::optional<std::string_view> authorization = {},
                   std::optional<std::string_view> origin = {}) {
    http::reply got;
    bool called = false;
    http::request_info info{method, path, authorization, std::nullopt, origin, {}, {}};
    r.handle(info, std::move(body), [&](http::reply reply) {
      got = std::move(reply);
      called = true;
    });
    REQUIRE(called);
    return got;
  }
  http::reply call(std::string_view method, std::string_view path, std::string body = {}) {
    return call(routes, method, path, std::move(body));
  }

  static std::string error_code(const http::reply& r) {
    return nlohmann::json::parse(r.body)["error"]["code"];
  }

  static std::string header(const http::reply& r, std::string_view name) {
    for (const auto& [k, v] : r.headers)
      if (k == name) return v;
    return {};
  }
};

}  // namespace

TEST_CASE_FIXTURE(routes_fixture, "health answers with the backend") {
  const auto r = call("GET", "/health");
  CHECK(r.status == 200);
  const auto body = nlohmann::json::parse(r.body);
  CHECK(body["status"] == "ok");
  CHECK(body["backend"] == "local");
  CHECK(body["sandboxes"]["live"] == 0);
}

TEST_CASE_FIXTURE(routes_fixture, "ready answers 200 with no reasons when idle") {
  const auto r = call("GET", "/ready");
  CHECK(r.status == 200);
  CHECK(nlohmann::json::parse(r.body)["ready"] == true);
}

TEST_CASE_FIXTURE(routes_fixture, "unknown routes are 404 and wrong methods 405") {
  CHECK(call("GET", "/nope").status == 404);
  CHECK(error_code(call("GET", "/nope")) == "not_found");
  const auto r = call("GET", "/execute");
  CHECK(r.status == 405);
  CHECK(error_code(r) == "method_not_allowed");
  CHECK(header(r, "Allow") == "POST");
  CHECK(call("DELETE", "/health").status == 405);
}

TEST_CASE_FIXTURE(routes_fixture, "invalid bodies are refused before any sandbox starts") {
  CHECK(error_code(call("POST", "/execute", "not json")) == "invalid_json");
  CHECK(call("POST", "/execute", "{\"code\":\"" + std::string(129, 'x') + "\"}").status == 413);
  CHECK(error_code(call("POST", "/execute-stream", R"({"code":"1"})")) == "invalid_request");
  CHECK(error_code(call("POST", "/execute", R"({"code":"1","language":"ruby"})")) ==
        "unsupported_language");
}

TEST_CASE_FIXTURE(routes_fixture, "websockets need a clientId on /") {
  const std::string id = "agent";
  http::request_info info{"GET", "/", {}, {}, {}, {}, {}};
  CHECK(std::get<http::websocket_grant>(routes.accept_websocket(info, &id)).client_id == "agent");
  CHECK(std::get<api_error>(routes.accept_websocket(info, nullptr)).status == 400);
  const std::string empty;
  CHECK(std::get<api_error>(routes.accept_websocket(info, &empty)).status == 400);
  info.path = "/other";
  CHECK(std::get<api_error>(routes.accept_websocket(info, &id)).status == 404);
}

TEST_CASE_FIXTURE(routes_fixture,
                  "with API keys every route but health ready and metrics needs one") {
  config keyed = cfg;
  keyed.api_keys = "alpha, beta";
  keyed.key_rate_limit_rps = 0;
  access_policy keyed_access{keyed};
  http::routes guarded{keyed, svc, keyed_access};
  CHECK(call(guarded, "GET", "/health").status == 200);
  CHECK(call(guarded, "GET", "/metrics").status == 200);
  const auto missing = call(guarded, "POST", "/execute", R"({"code":""})");
  CHECK(missing.status == 401);
  CHECK(error_code(missing) == "unauthorized");
  CHECK(header(missing, "WWW-Authenticate") == "Bearer");
  CHECK(call(guarded, "POST", "/execute", R"({"code":""})", "Bearer gamma").status == 401);
  CHECK(call(guarded, "POST", "/execute", R"({"code":""})", "Basic alpha").status == 401);
  // A valid key gets through to validation.
  CHECK(error_code(call(guarded, "POST", "/execute", R"({"code":""})", "Bearer beta")) ==
        "invalid_request");

  const std::string id = "agent";
  http::request_info ws{"GET", "/", {}, {}, {}, {}, {}};
  CHECK(std::get<api_error>(guarded.accept_websocket(ws, &id)).status == 401);
  ws.token = "alpha";
  CHECK(std::get<http::websocket_grant>(guarded.accept_websocket(ws, &id)).owner == "key-1");
  ws.token.reset();
  ws.authorization = "Bearer beta";
  CHECK(std::get<http::websocket_grant>(guarded.accept_websocket(ws, &id)).owner == "key-2");
}

TEST_CASE_FIXTURE(routes_fixture, "a key over its rate gets 429 with Retry-After") {
  config keyed = cfg;
  keyed.api_keys = "alpha";
  keyed.key_rate_limit_rps = 1;
  keyed.key_rate_limit_burst = 2;
  access_policy keyed_access{keyed};
  http::routes guarded{keyed, svc, keyed_access};
  CHECK(call(guarded, "POST", "/execute", "{}", "Bearer alpha").status == 400);
  CHECK(call(guarded, "POST", "/execute", "{}", "Bearer alpha").status == 400);
  const auto limited = call(guarded, "POST", "/execute", "{}", "Bearer alpha");
  CHECK(limited.status == 429);
  CHECK(error_code(limited) == "rate_limited");
  CHECK(header(limited, "Retry-After") == "1");
}

TEST_CASE_FIXTURE(routes_fixture, "listeners sharing an access policy share each key's budget") {
  config keyed = cfg;
  keyed.api_keys = "alpha";
  keyed.key_rate_limit_rps = 1;
  keyed.key_rate_limit_burst = 2;
  access_policy shared{keyed};
  http::routes first{keyed, svc, shared};
  http::routes second{keyed, svc, shared};
  CHECK(call(first, "POST", "/execute", "{}", "Bearer alpha").status == 400);
  CHECK(call(second, "POST", "/execute", "{}", "Bearer alpha").status == 400);
  CHECK(call(second, "POST", "/execute", "{}", "Bearer alpha").status == 429);
  CHECK(call(first, "POST", "/execute", "{}", "Bearer alpha").status == 429);
}

TEST_CASE_FIXTURE(routes_fixture, "CORS is off by default and answers allowed origins") {
  CHECK(header(call(routes, "GET", "/health", {}, {}, "https://app.example"),
               "Access-Control-Allow-Origin")
            .empty());
  config open = cfg;
  open.cors_origins = "https://app.example";
  access_policy open_access{open};
  http::routes cors{open, svc, open_access};
  CHECK(header(call(cors, "GET", "/health", {}, {}, "https://app.example"),
               "Access-Control-Allow-Origin") == "https://app.example");
  CHECK(header(call(cors, "GET", "/health", {}, {}, "https://evil.example"),
               "Access-Control-Allow-Origin")
            .empty());
  const auto preflight = call(cors, "OPTIONS", "/execute", {}, {}, "https://app.example");
  CHECK(preflight.status == 204);
  CHECK(header(preflight, "Access-Control-Allow-Methods") == "POST");
}
