#include "core/json_mapping.hpp"

#include <doctest/doctest.h>

using namespace codeexec;
using json = nlohmann::json;

TEST_CASE("runner events become kernel events") {
  auto out = parse_kernel_event(json{{"type", "stdout"}, {"text", "hi\n"}});
  REQUIRE(out);
  CHECK(out->type == kernel_event::kind::stdout_text);
  CHECK(out->text == "hi\n");

  auto res = parse_kernel_event(json{{"type", "result"}, {"text", "2"}, {"is_main_result", true}});
  REQUIRE(res);
  CHECK(res->result["text"] == "2");
  CHECK(res->result["is_main_result"] == true);
  CHECK(res->result["extra"] == json::object());
  CHECK_FALSE(res->result.contains("type"));

  auto err = parse_kernel_event(
      json{{"type", "error"}, {"name", "NameError"}, {"value", "x"}, {"traceback", "tb"}});
  REQUIRE(err);
  CHECK(err->error.name == "NameError");
  CHECK(err->error.traceback == "tb");

  CHECK_FALSE(parse_kernel_event(json{{"type", "end"}}));
  CHECK_FALSE(parse_kernel_event(json{{"type", "stdout"}}));
  CHECK_FALSE(parse_kernel_event(json::array()));
}

TEST_CASE("the result object has the public shape") {
  execution_result r;
  kernel_event ev;
  ev.type = kernel_event::kind::stdout_text;
  ev.text = "a\n";
  r.add(ev);
  ev.type = kernel_event::kind::error;
  ev.error = {"ValueError", "bad", "tb"};
  r.add(ev);
  const auto j = to_json(r);
  CHECK(j["logs"]["stdout"] == json::array({"a\n"}));
  CHECK(j["logs"]["stderr"] == json::array());
  CHECK(j["error"]["name"] == "ValueError");
  CHECK(j["status"] == "error");
  CHECK(j["results"] == json::array());
  CHECK(j["truncated"]["stdout"] == false);
  CHECK(j["usage"].contains("wallMs"));
  CHECK_FALSE(j.contains("exitCode"));
}

TEST_CASE("stream messages carry the execution id") {
  const auto status = json::parse(status_message("e1", "running", "Execution started"));
  CHECK(status == json{{"type", "status"},
                       {"executionId", "e1"},
                       {"status", "running"},
                       {"message", "Execution started"}});
  kernel_event ev;
  ev.type = kernel_event::kind::stderr_text;
  ev.text = "warn";
  const auto out = output_message("e1", ev);
  REQUIRE(out);
  CHECK(json::parse(*out) == json{{"type", "stderr"}, {"executionId", "e1"}, {"data", "warn"}});
  ev.type = kernel_event::kind::result;
  ev.result = json{{"png", "iVBO"}, {"is_main_result", false}};
  const auto shown = output_message("e1", ev);
  REQUIRE(shown);
  CHECK(json::parse(*shown) ==
        json{{"type", "display"}, {"executionId", "e1"}, {"result", ev.result}});
}

TEST_CASE("invalid UTF-8 never throws") {
  const auto text = dump(json{{"data", std::string{"ok \xff\xfe end"}}});
  CHECK(text.find("ok") != std::string::npos);
  CHECK_NOTHROW(json::parse(text));
}

TEST_CASE("error bodies have code and message") {
  CHECK(json::parse(error_body({404, "not_found", "nope"})) ==
        json{{"error", {{"code", "not_found"}, {"message", "nope"}}}});
}

TEST_CASE("times are RFC 3339 UTC with milliseconds, or microseconds for Jupyter-style dates") {
  CHECK(iso_time(1'767'225'600'007) == "2026-01-01T00:00:00.007Z");
  CHECK(iso_time_us(1'767'225'600'000'042) == "2026-01-01T00:00:00.000042+00:00");
  CHECK(iso_time_us(1'767'225'659'999'999) == "2026-01-01T00:00:59.999999+00:00");
}
