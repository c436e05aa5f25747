#include "core/request_parsing.hpp"

#include <doctest/doctest.h>

using namespace codeexec;

namespace {

config test_config() {
  config cfg;
  cfg.max_code_bytes = 64;
  cfg.max_timeout = std::chrono::milliseconds{5000};
  cfg.default_timeout = std::chrono::milliseconds{3000};
  return cfg;
}

api_error error_of(std::string_view body, execute_endpoint ep = execute_endpoint::execute) {
  auto parsed = parse_execute_request(body, test_config(), ep);
  REQUIRE(std::holds_alternative<api_error>(parsed));
  return std::get<api_error>(parsed);
}

execution_request request_of(std::string_view body,
                             execute_endpoint ep = execute_endpoint::execute) {
  auto parsed = parse_execute_request(body, test_config(), ep);
  if (auto* err = std::get_if<api_error>(&parsed)) FAIL(err->message);
  return std::get<execution_request>(parsed);
}

}  // namespace

TEST_CASE("a minimal body gets the defaults") {
  const auto req = request_of(R"json({"code":"print(1)"})json");
  CHECK(req.code == "print(1)");
  CHECK(req.lang == language::python);
  CHECK(req.timeout == std::chrono::milliseconds{3000});
  CHECK(req.client_id.empty());
}

TEST_CASE("language and timeout are read") {
  const auto req = request_of(R"json({"code":"echo hi","language":"SH","timeout":1200})json");
  CHECK(req.lang == language::bash);
  CHECK(req.timeout == std::chrono::milliseconds{1200});
}

TEST_CASE("invalid JSON is invalid_json") {
  const auto err = error_of("{\"code\":");
  CHECK(err.status == 400);
  CHECK(err.code == "invalid_json");
}

TEST_CASE("a body that is not an object is refused") {
  CHECK(error_of("[]").code == "invalid_request");
  CHECK(error_of("\"code\"").code == "invalid_request");
}

TEST_CASE("code is required and must be a non-empty string") {
  CHECK(error_of("{}").message.find("code") != std::string::npos);
  CHECK(error_of(R"json({"code":null})json").code == "invalid_request");
  CHECK(error_of(R"json({"code":42})json").message.find("string") != std::string::npos);
  CHECK(error_of(R"json({"code":""})json").code == "invalid_request");
}

TEST_CASE("code over the maximum is 413") {
  const std::string body = "{\"code\":\"" + std::string(65, 'x') + "\"}";
  const auto err = error_of(body);
  CHECK(err.status == 413);
  CHECK(err.code == "payload_too_large");
  CHECK(request_of("{\"code\":\"" + std::string(64, 'x') + "\"}").code.size() == 64);
}

TEST_CASE("a NUL byte in code is refused") {
  CHECK(error_of(R"json({"code":"a\u0000b"})json").message.find("NUL") != std::string::npos);
}

TEST_CASE("an unknown language names the supported ones") {
  const auto err = error_of(R"json({"code":"x","language":"cobol"})json");
  CHECK(err.status == 400);
  CHECK(err.code == "unsupported_language");
  CHECK(err.message.find("python") != std::string::npos);
  CHECK(err.message.find("javascript") != std::string::npos);
  CHECK(err.message.find("bash") != std::string::npos);
  CHECK(error_of(R"json({"code":"x","language":7})json").code == "invalid_request");
}

TEST_CASE("timeout must be a positive integer within the maximum") {
  CHECK(error_of(R"json({"code":"x","timeout":0})json").code == "invalid_request");
  CHECK(error_of(R"json({"code":"x","timeout":-5})json").code == "invalid_request");
  CHECK(error_of(R"json({"code":"x","timeout":5001})json").code == "invalid_request");
  CHECK(error_of(R"json({"code":"x","timeout":1.5})json").code == "invalid_request");
  CHECK(error_of(R"json({"code":"x","timeout":"100"})json").code == "invalid_request");
  CHECK(request_of(R"json({"code":"x","timeout":5000})json").timeout ==
        std::chrono::milliseconds{5000});
}

TEST_CASE("execute-stream needs a valid clientId") {
  CHECK(error_of(R"json({"code":"x"})json", execute_endpoint::execute_stream)
            .message.find("clientId") != std::string::npos);
  CHECK(error_of(R"json({"code":"x","clientId":""})json", execute_endpoint::execute_stream).code ==
        "invalid_request");
  CHECK(error_of(R"json({"code":"x","clientId":3})json", execute_endpoint::execute_stream).code ==
        "invalid_request");
  CHECK(request_of(R"json({"code":"x","clientId":"agent-1"})json", execute_endpoint::execute_stream)
            .client_id == "agent-1");
}

TEST_CASE("envVars must map names to strings") {
  CHECK(request_of(R"json({"code":"x","envVars":{"A":"1"}})json").env.at("A") == "1");
  CHECK(error_of(R"json({"code":"x","envVars":{"A":1}})json").code == "invalid_request");
  CHECK(error_of(R"json({"code":"x","envVars":["A"]})json").code == "invalid_request");
  CHECK(error_of(R"json({"code":"x","envVars":{"A=B":"1"}})json").code == "invalid_request");
}

TEST_CASE("limits default to the config and may be lowered or raised to the maximum") {
  const auto cfg = test_config();
  const auto defaults = request_of(R"json({"code":"x"})json");
  CHECK(defaults.limits.memory_bytes == cfg.default_limits.memory_bytes);
  const auto req = request_of(
      R"json({"code":"x","limits":{"memoryMb":64,"pids":16,"cpuMs":250,"outputBytes":1000}})json");
  CHECK(req.limits.memory_bytes == 64ull << 20);
  CHECK(req.limits.pids == 16);
  CHECK(req.limits.cpu_ms == 250);
  CHECK(req.limits.output_bytes == 1000);
  CHECK(req.limits.workspace_bytes == cfg.default_limits.workspace_bytes);
  CHECK(request_of(R"json({"code":"x","limits":{"memoryMb":4096}})json").limits.memory_bytes ==
        4096ull << 20);
}

TEST_CASE("limits out of range or unknown are refused") {
  CHECK(error_of(R"json({"code":"x","limits":{"memoryMb":4097}})json").message.find("16 to 4096") !=
        std::string::npos);
  CHECK(error_of(R"json({"code":"x","limits":{"memoryMb":8}})json").code == "invalid_request");
  CHECK(error_of(R"json({"code":"x","limits":{"pids":0}})json").code == "invalid_request");
  CHECK(error_of(R"json({"code":"x","limits":{"cpuMs":-1}})json").code == "invalid_request");
  CHECK(error_of(R"json({"code":"x","limits":{"cpuMs":"5"}})json").code == "invalid_request");
  CHECK(error_of(R"json({"code":"x","limits":{"disk":1}})json").message.find("Unknown limit") !=
        std::string::npos);
  CHECK(error_of(R"json({"code":"x","limits":[1]})json").code == "invalid_request");
}

TEST_CASE("sandbox executions take a context and stdin but not the sandbox's limits") {
  const auto req = request_of(
      R"json({"code":"x","contextId":"c1","stdin":"a\nb","interactive":true,
              "limits":{"outputBytes":100,"cpuMs":10}})json",
      execute_endpoint::sandbox_execute);
  CHECK(req.context_id == "c1");
  CHECK(req.stdin_data == "a\nb");
  CHECK(req.stdin_open);
  CHECK_FALSE(req.lang_given);
  CHECK(request_of(R"json({"code":"x","context_id":"c2"})json", execute_endpoint::sandbox_execute)
            .context_id == "c2");
  CHECK(error_of(R"json({"code":"x","limits":{"memoryMb":64}})json",
                 execute_endpoint::sandbox_execute)
            .message.find("property of the sandbox") != std::string::npos);
  CHECK(error_of(R"json({"code":"x","contextId":"c1"})json").message.find("needs a sandbox") !=
        std::string::npos);
  CHECK(error_of(R"json({"code":"x","interactive":"yes"})json").code == "invalid_request");
  CHECK(error_of(R"json({"code":"x","stdin":5})json").code == "invalid_request");
  CHECK(
      request_of(R"json({"code":"x","clientId":"c"})json", execute_endpoint::sandbox_execute_stream)
          .client_id == "c");
  CHECK(error_of(R"json({"code":"x"})json", execute_endpoint::sandbox_execute_stream)
            .message.find("clientId") != std::string::npos);
}

TEST_CASE("a sandbox request has defaults, a timeout in seconds, env and metadata") {
  auto cfg = test_config();
  cfg.sandbox_idle_timeout = std::chrono::milliseconds{60000};
  cfg.sandbox_idle_timeout_max = std::chrono::milliseconds{120000};
  auto empty = parse_sandbox_request("", cfg);
  REQUIRE(std::holds_alternative<sandbox_request>(empty));
  CHECK(std::get<sandbox_request>(empty).idle_timeout == std::chrono::milliseconds{60000});
  CHECK(std::get<sandbox_request>(empty).lang == language::python);
  auto full = parse_sandbox_request(
      R"json({"language":"js","timeout":90,"envVars":{"A":"1"},"metadata":{"team":"x"},
              "limits":{"memoryMb":64}})json",
      cfg);
  REQUIRE(std::holds_alternative<sandbox_request>(full));
  const auto& req = std::get<sandbox_request>(full);
  CHECK(req.lang == language::javascript);
  CHECK(req.idle_timeout == std::chrono::seconds{90});
  CHECK(req.env.at("A") == "1");
  CHECK(req.metadata.at("team") == "x");
  CHECK(req.limits.memory_bytes == 64ull << 20);
  auto too_long = parse_sandbox_request(R"json({"timeout":121})json", cfg);
  REQUIRE(std::holds_alternative<api_error>(too_long));
  CHECK(std::get<api_error>(too_long).message.find("1 to 120 seconds") != std::string::npos);
  CHECK(std::holds_alternative<api_error>(
      parse_sandbox_request(R"json({"metadata":{"a":1}})json", cfg)));
  CHECK(std::holds_alternative<api_error>(parse_sandbox_request("[]", cfg)));
}

TEST_CASE("context, timeout and stdin requests are validated") {
  const auto cfg = test_config();
  auto ctx = parse_context_request(R"json({"language":"bash","cwd":"/tmp"})json");
  REQUIRE(std::holds_alternative<context_request>(ctx));
  CHECK(std::get<context_request>(ctx).lang == language::bash);
  CHECK(std::get<context_request>(ctx).cwd == "/tmp");
  CHECK(std::get<context_request>(parse_context_request("")).cwd == "/home/user");
  CHECK(std::holds_alternative<api_error>(parse_context_request(R"json({"cwd":"rel"})json")));
  CHECK(
      std::holds_alternative<api_error>(parse_context_request(R"json({"language":"cobol"})json")));

  auto timeout = parse_timeout_request(R"json({"timeout":30})json", cfg);
  REQUIRE(std::holds_alternative<std::chrono::milliseconds>(timeout));
  CHECK(std::get<std::chrono::milliseconds>(timeout) == std::chrono::seconds{30});
  CHECK(std::holds_alternative<api_error>(parse_timeout_request("{}", cfg)));
  CHECK(std::holds_alternative<api_error>(parse_timeout_request(R"json({"timeout":0})json", cfg)));

  auto input = parse_stdin_request(R"json({"data":"hi\n","eof":true})json", cfg);
  REQUIRE(std::holds_alternative<stdin_request>(input));
  CHECK(std::get<stdin_request>(input).data == "hi\n");
  CHECK(std::get<stdin_request>(input).eof);
  CHECK(std::holds_alternative<api_error>(parse_stdin_request("{}", cfg)));
  CHECK(std::holds_alternative<api_error>(parse_stdin_request(R"json({"eof":1})json", cfg)));
  const auto big = R"json({"data":")json" + std::string(65, 'x') + R"json("})json";
  REQUIRE(std::holds_alternative<api_error>(parse_stdin_request(big, cfg)));
  CHECK(std::get<api_error>(parse_stdin_request(big, cfg)).status == 413);
}
