#include "actors/execution.hpp"

#include "actor_fixture.hpp"
#include "deterministic_fixture.hpp"

#include <doctest/doctest.h>

#include <future>
#include <optional>

using namespace codeexec;
using namespace std::chrono_literals;

namespace {

kernel_event text(kernel_event::kind kind, std::string s) {
  kernel_event ev;
  ev.type = kind;
  ev.text = std::move(s);
  return ev;
}

/// The handlers a fake sandbox ignores, around the ones a test scripts.
template <class Run, class Kill, class Stop>
sandbox_actor::behavior_type fake_sandbox(Run run, Kill kill, Stop stop) {
  return {
      std::move(run),
      std::move(kill),
      std::move(stop),
      [](atom::input, std::string&, std::string&, bool) {},
      [](atom::interrupt, std::string&) { return std::uint64_t{0}; },
      [](atom::create, context_request&) { return context_info{}; },
      [](atom::get) { return std::vector<context_info>{}; },
      [](atom::remove, std::string&) { return true; },
      [](atom::restart, std::string&) { return context_info{}; },
      [](atom::adopt, sandbox_settings&) { return true; },
      [](atom::timeout, std::chrono::milliseconds) {},
      [](atom::touch) {},
      [](atom::expire) {},
  };
}

/// A sandbox that answers a cell with a fixed script of events and an outcome.
sandbox_actor::behavior_type scripted_sandbox(sandbox_actor::pointer self) {
  return fake_sandbox(
      [self](atom::run, run_cell& cell, event_sink_actor sink) -> caf::result<cell_outcome> {
        self->send(sink, atom::event_v, text(kernel_event::kind::stdout_text, "out:" + cell.code));
        self->send(sink, atom::event_v, text(kernel_event::kind::stderr_text, "err\n"));
        kernel_event result;
        result.type = kernel_event::kind::result;
        result.result = {{"text", "2"}, {"is_main_result", true}};
        self->send(sink, atom::event_v, std::move(result));
        return cell_outcome{};
      },
      [](atom::kill) {}, [](atom::stop, std::string&) {});
}

/// A sandbox whose cell never ends until it is killed (one-shot) or stopped (stateful:
/// the cell is interrupted and the state kept).
struct hanging_state {
  caf::typed_response_promise<cell_outcome> promise;
  std::string stdin_seen;
  static inline const char* name = "hanging_sandbox";
};
sandbox_actor::behavior_type hanging_sandbox(sandbox_actor::stateful_pointer<hanging_state> self) {
  return fake_sandbox(
      [self](atom::run, run_cell&, event_sink_actor sink) -> caf::result<cell_outcome> {
        self->send(sink, atom::event_v, text(kernel_event::kind::stdout_text, "before\n"));
        self->state.promise = self->make_response_promise<cell_outcome>();
        return self->state.promise;
      },
      [self](atom::kill) {
        cell_outcome out;
        out.how = cell_end::killed;
        out.signal = 9;
        self->state.promise.deliver(out);
      },
      [self](atom::stop, std::string&) {
        cell_outcome out;
        out.how = cell_end::interrupted;
        self->state.promise.deliver(out);
      });
}

/// A sandbox source for tests: spawns `make` once, owned or leased.
template <class F>
sandbox_source source_of(F make, bool owned = true) {
  return [make, owned](caf::actor_system& s, const execution_request&) {
    return sandbox_lease{s.spawn(make), owned, std::chrono::seconds(5)};
  };
}

struct execution_fixture : test::actor_fixture {
  std::promise<execution_report> done;

  execution_target target() {
    execution_target t;
    t.on_done = [this](execution_report r) { done.set_value(std::move(r)); };
    return t;
  }

  execution_report wait() {
    auto fut = done.get_future();
    REQUIRE(fut.wait_for(deadline) == std::future_status::ready);
    return fut.get();
  }
};

/// An execution on the test's clock: its report is there once run() or advance() made it.
struct timed_execution_fixture : test::deterministic_fixture {
  std::optional<execution_report> report;

  execution_target target() {
    execution_target t;
    t.on_done = [this](execution_report r) { report = std::move(r); };
    return t;
  }
};

}  // namespace

TEST_CASE_FIXTURE(execution_fixture, "an execution collects events in order") {
  execution_request req;
  req.code = "1+1";
  sys.spawn(execution, std::string{"e1"}, req, target(), source_of(scripted_sandbox));
  const auto report = wait();
  CHECK(report.execution_id == "e1");
  CHECK(report.result.stdout_chunks == std::vector<std::string>{"out:1+1"});
  CHECK(report.result.stderr_chunks == std::vector<std::string>{"err\n"});
  REQUIRE(report.result.results.size() == 1);
  CHECK(report.result.results[0]["text"] == "2");
  CHECK_FALSE(report.result.error);
  CHECK(report.result.status == verdict::ok);
}

TEST_CASE_FIXTURE(execution_fixture, "a timeout kills the sandbox and keeps the output") {
  execution_request req;
  req.code = "sleep";
  req.timeout = 50ms;
  sys.spawn(execution, std::string{"e2"}, req, target(), source_of(hanging_sandbox));
  const auto report = wait();
  CHECK(report.result.status == verdict::timeout);
  REQUIRE(report.result.error);
  CHECK(report.result.error->name == "TimeoutError");
  CHECK(report.result.stdout_chunks == std::vector<std::string>{"before\n"});
}

TEST_CASE_FIXTURE(execution_fixture, "a cancel ends the execution as killed") {
  execution_request req;
  req.code = "sleep";
  auto handle = sys.spawn(execution, std::string{"e3"}, req, target(), source_of(hanging_sandbox));
  self->send(handle, atom::cancel_v, std::string{"client left"});
  const auto report = wait();
  CHECK(report.result.status == verdict::killed);
  REQUIRE(report.result.error);
  CHECK(report.result.error->value == "client left");
}

TEST_CASE_FIXTURE(
    execution_fixture,
    "a timeout in a stateful sandbox interrupts the cell and says the state is kept") {
  execution_request req;
  req.code = "sleep";
  req.timeout = 50ms;
  sys.spawn(execution, std::string{"e4"}, req, target(), source_of(hanging_sandbox, false));
  const auto report = wait();
  CHECK(report.result.status == verdict::timeout);
  REQUIRE(report.result.error);
  CHECK(report.result.error->value.find("state is kept") != std::string::npos);
}

TEST_CASE_FIXTURE(execution_fixture, "a refused cell becomes the report's rejection") {
  execution_request req;
  req.code = "x";
  auto refusing = [](sandbox_actor::pointer) {
    return fake_sandbox(
        [](atom::run, run_cell&, event_sink_actor) -> caf::result<cell_outcome> {
          cell_outcome out;
          out.how = cell_end::refused;
          out.refusal = service_error{ec::context_not_found, "No context 'c'", 0};
          return out;
        },
        [](atom::kill) {}, [](atom::stop, std::string&) {});
  };
  sys.spawn(execution, std::string{"e5"}, req, target(), source_of(refusing, false));
  const auto report = wait();
  REQUIRE(report.rejection);
  CHECK(report.rejection->code == ec::context_not_found);
}

TEST_CASE("outcomes map to verdicts") {
  execution_result r;
  cell_outcome died;
  died.how = cell_end::died;
  died.signal = 9;
  died.oom_killed = true;
  apply_outcome(r, died, std::nullopt, "");
  CHECK(r.status == verdict::memory_limit);
  CHECK(r.error->name == "MemoryError");

  execution_result r2;
  cell_outcome limit;
  limit.how = cell_end::output_limit;
  limit.stdout_truncated = true;
  apply_outcome(r2, limit, std::nullopt, "");
  CHECK(r2.status == verdict::output_limit);
  CHECK(r2.stdout_truncated);

  execution_result r3;
  cell_outcome failed;
  failed.how = cell_end::start_failed;
  failed.detail = "no namespaces";
  apply_outcome(r3, failed, std::nullopt, "");
  CHECK(r3.status == verdict::sandbox_error);
  CHECK(r3.error->value == "no namespaces");

  execution_result r4;
  cell_outcome exited;
  exited.how = cell_end::died;
  exited.exit_code = 3;
  exited.detail = "the kernel exited with code 3";
  apply_outcome(r4, exited, std::nullopt, "");
  CHECK(r4.status == verdict::error);
  CHECK(r4.exit_code == 3);
}

TEST_CASE_FIXTURE(timed_execution_fixture, "an execution times out at its deadline, not before") {
  execution_request req;
  req.code = "sleep";
  req.timeout = 30s;
  sys.spawn(execution, std::string{"t1"}, req, target(), source_of(hanging_sandbox));
  run();
  CHECK_FALSE(report);
  advance(30s - 1ms);
  CHECK_FALSE(report);
  advance(1ms);
  REQUIRE(report);
  CHECK(report->result.status == verdict::timeout);
  CHECK(report->result.stdout_chunks == std::vector<std::string>{"before\n"});
}

TEST_CASE_FIXTURE(timed_execution_fixture,
                  "a timed-out execution whose sandbox ignores the kill ends after the grace") {
  execution_request req;
  req.code = "sleep";
  req.timeout = 1s;
  // A sandbox that never answers: neither the cell nor the kill.
  auto deaf = [](sandbox_actor::stateful_pointer<hanging_state> self) {
    return fake_sandbox(
        [self](atom::run, run_cell&, event_sink_actor) -> caf::result<cell_outcome> {
          self->state.promise = self->make_response_promise<cell_outcome>();
          return self->state.promise;
        },
        [](atom::kill) {}, [](atom::stop, std::string&) {});
  };
  sys.spawn(execution, std::string{"t2"}, req, target(), source_of(deaf));
  run();
  advance(1s);
  CHECK_FALSE(report);
  // The lease's stop grace (5 s, source_of): the execution finishes without the sandbox.
  advance(5s);
  REQUIRE(report);
  CHECK(report->result.status == verdict::timeout);
}
