#include "e2b/execute_stream.hpp"

#include <doctest/doctest.h>

#include <optional>
#include <vector>

using namespace codeexec;
using namespace codeexec::e2b;

namespace {

/// Drives the callbacks as the client's thread would.
struct stream_run {
  std::vector<kernel_event> events;
  std::optional<stream_end> end;
  http_callbacks callbacks;

  explicit stream_run(std::size_t max_line = 1 << 20) {
    callbacks = execute_stream_callbacks(
        max_line, [this](kernel_event ev) { events.push_back(std::move(ev)); },
        [this](stream_end e) { end = std::move(e); });
  }
  bool data(std::string_view chunk) { return callbacks.on_data(chunk); }
  void done(http_result result = {}) {
    if (result.status == 0 && result.completed()) result.status = 200;
    callbacks.on_done(result);
  }
};

}  // namespace

TEST_CASE("e2b execute stream: lines become events as they arrive; end_of_execution completes") {
  stream_run run;
  run.callbacks.on_headers(200, {});
  CHECK(run.data("{\"type\": \"number_of_executions\", \"execution_count\": 1}\n{\"type\": \"std"));
  CHECK(run.events.empty());
  CHECK(run.data("out\", \"text\": \"a\\n\"}\n{\"type\": \"keepalive\"}\n"));
  REQUIRE(run.events.size() == 1);
  CHECK(run.events[0].text == "a\n");
  CHECK(
      run.data("{\"type\": \"result\", \"text\": \"2\", \"is_main_result\": true}\n"
               "{\"type\": \"end_of_execution\"}"));  // the last line without "\n"
  run.done();
  REQUIRE(run.end);
  CHECK(run.events.size() == 2);
  CHECK(run.end->complete);
  CHECK(run.end->lines == 5);
  CHECK(run.end->problem.empty());
}

TEST_CASE("e2b execute stream: a stream cut before end_of_execution is not complete") {
  stream_run run;
  run.callbacks.on_headers(200, {});
  CHECK(run.data("{\"type\": \"stdout\", \"text\": \"a\"}\n"));
  http_result reset;
  reset.status = 200;
  reset.curl_code = 56;
  reset.error = "Recv failure: Connection reset by peer";
  run.done(reset);
  REQUIRE(run.end);
  CHECK_FALSE(run.end->complete);
  CHECK(run.end->lines == 1);
  CHECK(run.end->response.result.error.find("reset") != std::string::npos);
}

TEST_CASE("e2b execute stream: an error reply keeps its body for the message") {
  stream_run run;
  run.callbacks.on_headers(404, {{"content-type", "text/plain"}});
  CHECK(run.data("Context ctx-1 not found"));
  http_result result;
  result.status = 404;
  run.done(result);
  REQUIRE(run.end);
  CHECK(run.events.empty());
  CHECK(run.end->response.body == "Context ctx-1 not found");
  CHECK(run.end->response.headers.at("content-type") == "text/plain");
}

TEST_CASE("e2b execute stream: a line over the cap and a malformed line end the transfer") {
  stream_run capped{16};
  capped.callbacks.on_headers(200, {});
  CHECK_FALSE(capped.data("{\"type\": \"stdout\", \"text\": \"far too long\"}\n"));
  capped.done();
  REQUIRE(capped.end);
  CHECK(capped.end->oversized);

  stream_run broken;
  broken.callbacks.on_headers(200, {});
  CHECK_FALSE(broken.data("{\"type\": \"stdout\", \"text\": \"a\"}\nnot json\n"));
  broken.done();
  REQUIRE(broken.end);
  CHECK(broken.events.size() == 1);
  CHECK_FALSE(broken.end->problem.empty());
}
