// The E2B shapes the compatible listener sends (e2b-protocol.md §1, §3).
#include "http/e2b_wire.hpp"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

using namespace codeexec;
using namespace codeexec::http;

namespace {

nlohmann::json parse_line(const std::string& line) {
  REQUIRE(!line.empty());
  CHECK(line.back() == '\n');
  CHECK(line.find('\n') == line.size() - 1);  // one object per line
  return nlohmann::json::parse(line);
}

}  // namespace

TEST_CASE("stdout and stderr lines carry a Jupyter-style timestamp") {
  kernel_event ev;
  ev.type = kernel_event::kind::stderr_text;
  ev.text = "warn\nmore";
  const auto line = parse_line(e2b::event_line(ev, 1'767'225'600'123'456));
  CHECK(line["type"] == "stderr");
  CHECK(line["text"] == "warn\nmore");
  CHECK(line["timestamp"] == "2026-01-01T00:00:00.123456+00:00");
}

TEST_CASE("results always have extra and is_main_result") {
  kernel_event ev;
  ev.type = kernel_event::kind::result;
  ev.result = {{"text", "2"}, {"is_main_result", true}};
  auto line = parse_line(e2b::event_line(ev, 0));
  CHECK(line == nlohmann::json{{"type", "result"},
                               {"text", "2"},
                               {"is_main_result", true},
                               {"extra", nlohmann::json::object()}});
  ev.result = {{"png", "iVBOR"}, {"extra", {{"application/x", 1}}}};
  line = parse_line(e2b::event_line(ev, 0));
  CHECK(line["is_main_result"] == false);
  CHECK(line["extra"]["application/x"] == 1);
  CHECK(line["png"] == "iVBOR");
}

TEST_CASE("errors, counts, keepalive and the end line") {
  kernel_event ev;
  ev.type = kernel_event::kind::error;
  ev.error = {"NameError", "name 'y' is not defined", "Traceback…"};
  CHECK(parse_line(e2b::event_line(ev, 0)) == nlohmann::json{{"type", "error"},
                                                             {"name", "NameError"},
                                                             {"value", "name 'y' is not defined"},
                                                             {"traceback", "Traceback…"}});
  CHECK(parse_line(e2b::execution_count_line(3)) ==
        nlohmann::json{{"type", "number_of_executions"}, {"execution_count", 3}});
  CHECK(parse_line(e2b::keepalive_line()) == nlohmann::json{{"type", "keepalive"}});
  CHECK(parse_line(e2b::end_of_execution_line()) == nlohmann::json{{"type", "end_of_execution"}});
}

TEST_CASE("sandboxes in E2B's shapes") {
  sandbox_info ours;
  ours.id = "abc";
  // 2026-11-26T12:00:00Z, and five minutes later.
  ours.created = std::chrono::system_clock::time_point{std::chrono::milliseconds{1795694400000}};
  ours.expires = ours.created + std::chrono::minutes(5);
  ours.metadata = {{"k", "v"}};
  ours.limits.memory_bytes = std::uint64_t{512} << 20;
  ours.limits.workspace_bytes = std::uint64_t{64} << 20;
  const e2b::sandbox_identity who{"code-interpreter-v1", "tok"};
  const auto created = e2b::sandbox_json(ours, who);
  CHECK(created["sandboxID"] == "abc");
  CHECK(created["envdAccessToken"] == "tok");
  CHECK(created["envdVersion"] == e2b::envd_version);
  CHECK(created.contains("clientID"));  // deprecated, still required by the SDK's schema
  CHECK(created["domain"].is_null());
  const auto listed = e2b::listed_sandbox_json(ours, who);
  CHECK(listed["startedAt"] == "2026-11-26T12:00:00.000Z");
  CHECK(listed["endAt"] == "2026-11-26T12:05:00.000Z");
  CHECK(listed["memoryMB"] == 512);
  CHECK(listed["state"] == "running");
  CHECK_FALSE(listed.contains("envdAccessToken"));  // listings never show the token
  CHECK(e2b::sandbox_detail_json(ours, who)["envdAccessToken"] == "tok");
}

TEST_CASE("languages normalize as the Code Interpreter's") {
  CHECK(e2b::normalize_language("") == language::python);
  CHECK(e2b::normalize_language("  JS ") == language::javascript);
  CHECK(e2b::normalize_language("ts") == language::typescript);
  CHECK(e2b::normalize_language("r") == language::r);
  CHECK_FALSE(e2b::normalize_language("cobol").has_value());
}

TEST_CASE("errors in the control plane's and the edge proxy's bodies") {
  CHECK(nlohmann::json::parse(e2b::control_error({404, "sandbox_not_found", "gone"})) ==
        nlohmann::json{{"code", 404}, {"message", "gone"}});
  CHECK(e2b::sandbox_not_found("abc") == nlohmann::json{{"sandboxId", "abc"},
                                                        {"message", "The sandbox was not found"},
                                                        {"code", 502}});
}
