// The E2B SANDBOX actor against a loopback server playing E2B: create retries, the
// output cap of a cell's stream, and a sandbox E2B says is gone.
#include "actors/e2b_sandbox.hpp"

#include "actor_fixture.hpp"
#include "actors/sandbox_directory.hpp"
#include "actors/sandbox_errors.hpp"
#include "e2b/tiny_server.hpp"
#include "http/api_json.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <functional>
#include <string>

using namespace codeexec;
using namespace std::chrono_literals;
using test::tiny_server;

namespace {

void respond(int fd, std::string_view status, std::string_view body,
             std::string_view headers = "") {
  tiny_server::write_all(
      fd, "HTTP/1.1 " + std::string{status} + "\r\nContent-Length: " + std::to_string(body.size()) +
              "\r\nConnection: close\r\n" + std::string{headers} + "\r\n" + std::string{body});
}

constexpr std::string_view created_body =
    R"({"sandboxID":"sbx1","envdAccessToken":"tok","templateID":"code-interpreter-v1"})";

struct e2b_fixture : test::actor_fixture {
  // What the fake E2B answers, set by a test before it spawns the sandbox.
  std::function<void(int)> on_create = [](int fd) { respond(fd, "201 Created", created_body); };
  std::function<void(int)> on_contexts = [](int fd) { respond(fd, "200 OK", "[]"); };
  std::function<void(int)> on_execute = [](int fd) { respond(fd, "200 OK", ""); };
  std::atomic<int> creates{0};
  std::atomic<int> deletes{0};

  tiny_server server{[this](int fd, const std::string& head) {
    if (head.rfind("POST /v2/sandboxes ", 0) == 0) {
      ++creates;
      on_create(fd);
    } else if (head.rfind("DELETE /sandboxes/", 0) == 0) {
      ++deletes;
      respond(fd, "204 No Content", "");
    } else if (head.rfind("GET /contexts", 0) == 0) {
      on_contexts(fd);
    } else if (head.rfind("POST /execute", 0) == 0) {
      on_execute(fd);
    } else {
      respond(fd, "204 No Content", "");  // timeouts
    }
  }};
  e2b::settings api = [this] {
    config cfg;
    cfg.e2b_api_key = "e2b_test";
    cfg.e2b_api_url = server.url("");
    cfg.e2b_sandbox_url = server.url("");
    cfg.e2b_create_retries = 3;
    return e2b::make_settings(cfg);
  }();
  e2b::http_client http;

  e2b_sandbox_actor spawn(std::uint64_t output_bytes = 1 << 20) {
    resource_limits limits;
    limits.output_bytes = output_bytes;
    return sys.spawn(e2b_sandbox, e2b_environment{&api, &http, 360s, {}}, language::python, limits);
  }

  /// Makes the sandbox stateful; true once E2B has created it.
  bool adopt(const e2b_sandbox_actor& sandbox) {
    auto record = std::make_shared<sandbox_record>();
    record->id = "s1";
    bool ok = false;
    self->request(sandbox, deadline, atom::adopt_v, sandbox_settings{record, 60s, 1h})
        .receive([&](bool b) { ok = b; },
                 [](caf::error& err) { FAIL("adopt failed: " << caf::to_string(err)); });
    return ok;
  }

  /// Ends the sandbox and waits until it is gone (its DELETE is then submitted).
  void end(const e2b_sandbox_actor& sandbox) {
    self->monitor(sandbox);
    self->send_exit(sandbox, caf::exit_reason::user_shutdown);
    self->receive([](const caf::down_msg&) {},
                  caf::after(deadline) >> [] { FAIL("the sandbox did not end"); });
  }
};

event_sink_actor::behavior_type ignore_events(event_sink_actor::pointer) {
  return {[](atom::event, const kernel_event&) {}};
}

}  // namespace

TEST_CASE_FIXTURE(e2b_fixture, "e2b sandbox: a transient create failure is retried") {
  on_create = [this](int fd) {
    if (creates == 1)
      respond(fd, "503 Service Unavailable", "busy", "Retry-After: 0\r\n");
    else
      respond(fd, "201 Created", created_body);
  };
  auto sandbox = spawn();
  CHECK(adopt(sandbox));
  CHECK(creates == 2);
  end(sandbox);
}

TEST_CASE_FIXTURE(e2b_fixture, "e2b sandbox: a create refused for good fails the adopt") {
  on_create = [](int fd) { respond(fd, "400 Bad Request", R"({"message":"no template"})"); };
  auto sandbox = spawn();
  std::optional<service_error> failure;
  auto record = std::make_shared<sandbox_record>();
  self->request(sandbox, deadline, atom::adopt_v, sandbox_settings{record, 60s, 1h})
      .receive([](bool) { FAIL("adopted"); },
               [&](caf::error& err) { failure = to_service_error(err); });
  REQUIRE(failure);
  CHECK(failure->code == ec::e2b_refused);
  CHECK(creates == 1);  // not transient: no retry
  end(sandbox);
}

TEST_CASE_FIXTURE(e2b_fixture, "e2b sandbox: a cell past the output cap is stopped") {
  on_execute = [](int fd) {
    tiny_server::write_all(fd,
                           "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\n"
                           "Connection: close\r\n\r\n");
    const std::string line = R"({"type":"stdout","text":")" + std::string(64, 'x') + "\"}\n";
    tiny_server::write_all(fd, line);
    tiny_server::wait_for_close(fd);  // E2B streams until the client goes
  };
  auto sandbox = spawn(16);
  REQUIRE(adopt(sandbox));
  run_cell cell;
  cell.id = "c1";
  cell.code = "print('x' * 64)";
  cell_outcome outcome;
  auto sink = sys.spawn(ignore_events);
  self->request(sandbox, deadline, atom::run_v, cell, sink)
      .receive([&](cell_outcome& out) { outcome = std::move(out); },
               [](caf::error& err) { FAIL(caf::to_string(err)); });
  CHECK(outcome.how == cell_end::output_limit);
  CHECK(outcome.stdout_truncated);
  end(sandbox);
  self->send_exit(sink, caf::exit_reason::user_shutdown);
}

TEST_CASE_FIXTURE(e2b_fixture, "e2b sandbox: gone at E2B answers 410 and ends the actor") {
  on_contexts = [](int fd) {
    respond(fd, "502 Bad Gateway",
            R"({"sandboxId":"sbx1","message":"The sandbox was not found","code":502})");
  };
  auto sandbox = spawn();
  REQUIRE(adopt(sandbox));
  self->monitor(sandbox);
  std::optional<service_error> failure;
  self->request(sandbox, deadline, atom::get_v)
      .receive([](std::vector<context_info>&) { FAIL("listed contexts of a gone sandbox"); },
               [&](caf::error& err) { failure = to_service_error(err); });
  REQUIRE(failure);
  CHECK(failure->code == ec::e2b_sandbox_gone);
  CHECK(http::to_api_error(*failure).status == 410);
  self->receive([](const caf::down_msg&) {},
                caf::after(deadline) >> [] { FAIL("the actor did not end"); });
}
