#include "e2b/ndjson.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <vector>

using namespace codeexec;
using namespace codeexec::e2b;

namespace {

struct collected {
  std::vector<std::string> lines;
  std::function<void(std::string_view)> sink() {
    return [this](std::string_view line) { lines.emplace_back(line); };
  }
};

}  // namespace

TEST_CASE("e2b ndjson: lines split across chunks come out whole") {
  line_splitter splitter{1024};
  collected out;
  CHECK(splitter.feed("{\"a\":1}\n{\"b\"", out.sink()));
  CHECK(out.lines == std::vector<std::string>{"{\"a\":1}"});
  CHECK(splitter.feed(":2}", out.sink()));
  CHECK(splitter.feed("\n\n{\"c\":3}\r\n", out.sink()));
  CHECK(out.lines == std::vector<std::string>{"{\"a\":1}", "{\"b\":2}", "{\"c\":3}"});
  CHECK(splitter.pending() == 0);
  CHECK_FALSE(splitter.finish());
}

TEST_CASE("e2b ndjson: a final unterminated fragment is returned by finish") {
  line_splitter splitter{1024};
  collected out;
  CHECK(splitter.feed("{\"a\":1}\n{\"type\":\"end_of_execution\"}", out.sink()));
  CHECK(out.lines.size() == 1);
  auto rest = splitter.finish();
  REQUIRE(rest);
  CHECK(*rest == "{\"type\":\"end_of_execution\"}");
  CHECK_FALSE(splitter.finish());
}

TEST_CASE("e2b ndjson: a huge line in small chunks is assembled in linear time") {
  // A 24 MiB base64 PNG in 16 KiB chunks, as curl may hand it over.
  const std::size_t size = 24u << 20;
  std::string line = "{\"type\":\"result\",\"png\":\"" + std::string(size, 'A') + "\"}";
  line_splitter splitter{size + 1024};
  collected out;
  const auto start = std::chrono::steady_clock::now();
  const std::string_view all{line};
  for (std::size_t at = 0; at < all.size(); at += 16384)
    REQUIRE(splitter.feed(all.substr(at, 16384), out.sink()));
  REQUIRE(splitter.feed("\n", out.sink()));
  const auto took = std::chrono::steady_clock::now() - start;
  REQUIRE(out.lines.size() == 1);
  CHECK(out.lines[0].size() == line.size());
  CHECK(took < std::chrono::seconds(2));
  auto parsed = parse_execute_line(out.lines[0]);
  REQUIRE(parsed.type == execute_line::kind::event);
  CHECK(parsed.event.result["png"].get_ref<const std::string&>().size() == size);
}

TEST_CASE("e2b ndjson: a line past the cap is an error, also across chunks") {
  line_splitter splitter{10};
  collected out;
  CHECK(splitter.feed("0123456789\n", out.sink()));
  CHECK(splitter.feed("01234", out.sink()));
  CHECK_FALSE(splitter.feed("567890", out.sink()));
  line_splitter whole{10};
  CHECK_FALSE(whole.feed("0123456789A\n", out.sink()));
}

TEST_CASE("e2b ndjson: stream lines map to the service's events") {
  auto out = parse_execute_line(
      R"({"type": "stdout", "text": "hi\n", "timestamp": "2025-01-02T03:04:05Z"})");
  REQUIRE(out.type == execute_line::kind::event);
  CHECK(out.event.type == kernel_event::kind::stdout_text);
  CHECK(out.event.text == "hi\n");

  out = parse_execute_line(R"({"type": "stderr", "text": "warn"})");
  REQUIRE(out.type == execute_line::kind::event);
  CHECK(out.event.type == kernel_event::kind::stderr_text);

  out = parse_execute_line(
      R"({"type": "result", "text": "2", "html": "<b>2</b>", "extra": {"x/y": 1}, "is_main_result": true})");
  REQUIRE(out.type == execute_line::kind::event);
  CHECK(out.event.type == kernel_event::kind::result);
  CHECK(out.event.result == nlohmann::json{{"text", "2"},
                                           {"html", "<b>2</b>"},
                                           {"extra", {{"x/y", 1}}},
                                           {"is_main_result", true}});

  out = parse_execute_line(R"({"type": "result", "png": "iVBO"})");
  CHECK(out.event.result["is_main_result"] == false);
  CHECK(out.event.result["extra"] == nlohmann::json::object());

  out = parse_execute_line(
      R"({"type": "error", "name": "NameError", "value": "name 'y' is not defined", "traceback": "tb"})");
  REQUIRE(out.type == execute_line::kind::event);
  CHECK(out.event.type == kernel_event::kind::error);
  CHECK(out.event.error.name == "NameError");
  CHECK(out.event.error.value == "name 'y' is not defined");
  CHECK(out.event.error.traceback == "tb");

  out = parse_execute_line(R"({"type": "number_of_executions", "execution_count": 3})");
  CHECK(out.type == execute_line::kind::execution_count);
  CHECK(out.execution_count == 3);
  CHECK(parse_execute_line(R"({"type": "keepalive"})").type == execute_line::kind::keepalive);
  CHECK(parse_execute_line(R"({"type": "end_of_execution"})").type ==
        execute_line::kind::end_of_execution);
  CHECK(parse_execute_line(R"({"type": "something_new", "x": 1})").type ==
        execute_line::kind::unknown);
}

TEST_CASE("e2b ndjson: malformed lines say what is wrong") {
  CHECK(parse_execute_line("not json").type == execute_line::kind::malformed);
  CHECK(parse_execute_line("[1, 2]").type == execute_line::kind::malformed);
  CHECK(parse_execute_line(R"({"text": "no type"})").type == execute_line::kind::malformed);
  auto out = parse_execute_line(R"({"type": "stdout"})");
  CHECK(out.type == execute_line::kind::malformed);
  CHECK(out.problem.find("text") != std::string::npos);
}
