#include "e2b/api.hpp"
#include "http/api_json.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <algorithm>

using namespace codeexec;
using namespace codeexec::e2b;
using namespace std::chrono_literals;

namespace {

settings settings_from(std::map<std::string, std::string> env) {
  env.emplace("E2B_API_KEY", "e2b_key");
  env.emplace("SANDBOX_BACKEND", "e2b");
  return make_settings(make_config([&](const std::string& name) -> std::optional<std::string> {
    auto it = env.find(name);
    return it == env.end() ? std::nullopt : std::optional<std::string>{it->second};
  }));
}

bool has_header(const http_request& r, const std::string& line) {
  return std::find(r.headers.begin(), r.headers.end(), line) != r.headers.end();
}

bool has_header_named(const http_request& r, const std::string& name) {
  return std::any_of(r.headers.begin(), r.headers.end(),
                     [&](const std::string& h) { return h.rfind(name + ":", 0) == 0; });
}

http_response reply(long status, std::string body = {}, header_map headers = {}) {
  http_response r;
  r.result.status = status;
  r.body = std::move(body);
  r.headers = std::move(headers);
  return r;
}

const e2b::sandbox_info sbx{"sbx1", "", "envd-token", ""};

}  // namespace

TEST_CASE("e2b api: URLs as the SDK builds them, for every combination of variables") {
  SUBCASE("defaults: api.e2b.app, per-port sandbox hosts under e2b.app") {
    const auto s = settings_from({});
    CHECK(create_request(s, 60s, {}).url == "https://api.e2b.app/v2/sandboxes");
    CHECK(sandbox_base_url(s, sbx, 49999) == "https://49999-sbx1.e2b.app");
    CHECK(execute_request(s, sbx, "1", "", language::python, {}).url ==
          "https://49999-sbx1.e2b.app/execute");
  }
  SUBCASE("E2B_DOMAIN moves both") {
    const auto s = settings_from({{"E2B_DOMAIN", "example.dev"}});
    CHECK(kill_request(s, "sbx1").url == "https://api.example.dev/sandboxes/sbx1");
    CHECK(sandbox_base_url(s, sbx, 49999) == "https://49999-sbx1.example.dev");
  }
  SUBCASE("the sandbox's own domain from the create reply wins over E2B_DOMAIN") {
    const auto s = settings_from({{"E2B_DOMAIN", "example.dev"}});
    auto other = sbx;
    other.domain = "eu.e2b.app";
    CHECK(sandbox_base_url(s, other, 49999) == "https://49999-sbx1.eu.e2b.app");
  }
  SUBCASE("E2B_API_URL replaces the control plane only, verbatim (no trailing slash)") {
    const auto s = settings_from({{"E2B_API_URL", "http://127.0.0.1:3000/"}});
    CHECK(timeout_request(s, "sbx1", 30s).url == "http://127.0.0.1:3000/sandboxes/sbx1/timeout");
    CHECK(sandbox_base_url(s, sbx, 49999) == "https://49999-sbx1.e2b.app");
  }
  SUBCASE("E2B_SANDBOX_URL replaces every sandbox port's base") {
    const auto s = settings_from(
        {{"E2B_API_URL", "http://127.0.0.1:3000"}, {"E2B_SANDBOX_URL", "http://127.0.0.1:3001"}});
    CHECK(create_request(s, 60s, {}).url == "http://127.0.0.1:3000/v2/sandboxes");
    CHECK(list_contexts_request(s, sbx).url == "http://127.0.0.1:3001/contexts");
    CHECK(remove_context_request(s, sbx, "c1").url == "http://127.0.0.1:3001/contexts/c1");
    CHECK(restart_context_request(s, sbx, "c1").url == "http://127.0.0.1:3001/contexts/c1/restart");
  }
}

TEST_CASE("e2b api: headers of the control and data planes") {
  const auto s = settings_from({});
  const auto create = create_request(s, 60s, {});
  CHECK(has_header(create, "X-API-Key: e2b_key"));
  CHECK(create.method == "POST");
  CHECK(create.timeout == 60000ms);

  auto exec = execute_request(s, sbx, "1", "", language::python, {});
  CHECK(has_header(exec, "E2b-Sandbox-Id: sbx1"));
  CHECK(has_header(exec, "E2b-Sandbox-Port: 49999"));
  CHECK(has_header(exec, "X-Access-Token: envd-token"));
  CHECK_FALSE(has_header_named(exec, "E2B-Traffic-Access-Token"));
  CHECK_FALSE(has_header_named(exec, "X-API-Key"));  // the API key never reaches a sandbox
  CHECK(exec.timeout == 0ms);                        // a stream: ended by the service's deadline
  CHECK(exec.stall_timeout > 0ms);

  auto secured = sbx;
  secured.traffic_access_token = "traffic";
  CHECK(has_header(list_contexts_request(s, secured), "E2B-Traffic-Access-Token: traffic"));
}

TEST_CASE("e2b api: request bodies") {
  const auto s = settings_from({{"E2B_TEMPLATE_ID", "my-template"}});
  auto body = nlohmann::json::parse(create_request(s, 360s, {{"createdBy", "codeexec"}}).body);
  CHECK(body == nlohmann::json{{"templateID", "my-template"},
                               {"timeout", 360},
                               {"metadata", {{"createdBy", "codeexec"}}}});
  CHECK(nlohmann::json::parse(timeout_request(s, "sbx1", 90s).body) ==
        nlohmann::json{{"timeout", 90}});

  body = nlohmann::json::parse(
      execute_request(s, sbx, "x = 1", "", language::javascript, {{"A", "b"}}).body);
  CHECK(body ==
        nlohmann::json{{"code", "x = 1"}, {"language", "javascript"}, {"env_vars", {{"A", "b"}}}});
  // E2B refuses context_id with language: the context decides.
  body = nlohmann::json::parse(execute_request(s, sbx, "1", "ctx", language::r, {}).body);
  CHECK(body == nlohmann::json{{"code", "1"}, {"context_id", "ctx"}});

  CHECK(nlohmann::json::parse(create_context_request(s, sbx, language::r, "/tmp").body) ==
        nlohmann::json{{"language", "r"}, {"cwd", "/tmp"}});
}

TEST_CASE("e2b api: the create reply") {
  auto parsed =
      parse_sandbox(R"({"sandboxID":"ixoo","templateID":"t","clientID":"c","envdVersion":"0.2.4",)"
                    R"("envdAccessToken":"tok","trafficAccessToken":null,"domain":null})");
  REQUIRE(std::holds_alternative<e2b::sandbox_info>(parsed));
  const auto& info = std::get<e2b::sandbox_info>(parsed);
  CHECK(info.id == "ixoo");
  CHECK(info.envd_access_token == "tok");
  CHECK(info.traffic_access_token.empty());
  CHECK(info.domain.empty());
  CHECK(std::holds_alternative<std::string>(parse_sandbox("{}")));
  CHECK(std::holds_alternative<std::string>(parse_sandbox("<html>")));
}

TEST_CASE("e2b api: E2B failures become clear, specific client errors") {
  auto err = http::to_api_error(
      call_error("create a sandbox", reply(401, R"({"code":401,"message":"Invalid API key"})")));
  CHECK(err.status == 502);
  CHECK(err.code == "e2b_unauthorized");
  CHECK(err.message.find("E2B_API_KEY") != std::string::npos);
  CHECK(err.message.find("Invalid API key") != std::string::npos);

  err = http::to_api_error(call_error(
      "create a sandbox", reply(429, R"({"message":"too many"})", {{"retry-after", "7"}})));
  CHECK(err.status == 429);
  CHECK(err.code == "e2b_rate_limited");
  CHECK(err.retry_after_seconds == 7);

  err = http::to_api_error(call_error("create a sandbox", reply(500, "boom")));
  CHECK(err.status == 503);
  CHECK(err.code == "e2b_unavailable");
  CHECK(err.retry_after_seconds == 1);
  CHECK(err.message.find("boom") != std::string::npos);

  err = http::to_api_error(call_error("create a sandbox", reply(503, "", {{"retry-after", "3"}})));
  CHECK(err.retry_after_seconds == 3);

  http_response reset;
  reset.result.curl_code = 56;
  reset.result.error = "Connection reset by peer";
  err = http::to_api_error(call_error("run the code", reset));
  CHECK(err.status == 503);
  CHECK(err.code == "e2b_unavailable");
  CHECK(err.message.find("Connection reset") != std::string::npos);

  err = http::to_api_error(
      call_error("create a sandbox", reply(400, R"({"code":400,"message":"template not found"})")));
  CHECK(err.status == 502);
  CHECK(err.code == "e2b_error");
  CHECK(err.message.find("template not found") != std::string::npos);

  const auto gone =
      reply(502, R"({"sandboxId":"sbx1","message":"The sandbox was not found","code":502})");
  CHECK(sandbox_gone(gone));
  CHECK(sandbox_gone(reply(404, "")));
  CHECK_FALSE(sandbox_gone(reply(502, "Bad Gateway")));
  err = http::to_api_error(sandbox_gone_error("sbx1", gone));
  CHECK(err.status == 410);
  CHECK(err.code == "sandbox_gone");
  CHECK(err.message.find("sbx1") != std::string::npos);
}

TEST_CASE("e2b api: which failures are worth a retry, and when") {
  CHECK(transient(reply(429)));
  CHECK(transient(reply(500)));
  CHECK(transient(reply(503)));
  CHECK(transient(reply(0)));
  CHECK_FALSE(transient(reply(401)));
  CHECK_FALSE(transient(reply(400)));
  http_response cancelled;
  cancelled.result.cancelled = true;
  CHECK_FALSE(transient(cancelled));

  CHECK(retry_after({{"retry-after", "5"}}) == 5);
  CHECK_FALSE(retry_after({{"retry-after", "Wed, 21 Oct 2015 07:28:00 GMT"}}));
  CHECK_FALSE(retry_after({}));

  CHECK(retry_delay(0, std::nullopt, 1.0) == 250ms);
  CHECK(retry_delay(2, std::nullopt, 1.0) == 1000ms);
  CHECK(retry_delay(2, std::nullopt, 0.5) == 500ms);
  CHECK(retry_delay(20, std::nullopt, 1.0) == 8000ms);
  CHECK(retry_delay(0, 4, 0.5) == 4000ms);
  CHECK(retry_delay(0, 999, 1.0) == 30000ms);
}
