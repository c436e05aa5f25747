// Routing and validation without a network: the service behind it is real but no
// request here reaches a sandbox.
#include "http/routes.hpp"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

using namespace codeexec;

namespace {

struct routes_fixture {
  config cfg = [] {
    config c;
    c.max_code_bytes = 128;
    return c;
  }();
  service svc{cfg};
  http::routes routes{cfg, svc};

  http::reply call(std::string_view method, std::string_view path, std::string body = {}) {
    http::reply got;
    bool called = false;
    routes.handle(method, path, std::move(body), [&](http::reply r) {
      got = std::move(r);
      called = true;
    });
    REQUIRE(called);
    return got;
  }

  static std::string error_code(const http::reply& r) {
    return nlohmann::json::parse(r.body)["error"]["code"];
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

TEST_CASE_FIXTURE(routes_fixture, "unknown routes are 404 and wrong methods 405") {
  CHECK(call("GET", "/nope").status == 404);
  CHECK(error_code(call("GET", "/nope")) == "not_found");
  const auto r = call("GET", "/execute");
  CHECK(r.status == 405);
  CHECK(error_code(r) == "method_not_allowed");
  CHECK(r.headers.at(0) == std::pair<std::string, std::string>{"Allow", "POST"});
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
  CHECK(std::get<std::string>(routes.accept_websocket("/", &id)) == "agent");
  CHECK(std::get<api_error>(routes.accept_websocket("/", nullptr)).status == 400);
  CHECK(std::get<api_error>(routes.accept_websocket("/other", &id)).status == 404);
  const std::string empty;
  CHECK(std::get<api_error>(routes.accept_websocket("/", &empty)).status == 400);
}
