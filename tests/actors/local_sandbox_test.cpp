// The SANDBOX actor with a real sandbox and the real Python runner: contexts keep
// their state, a stop interrupts or restarts a kernel, stdin reaches the cell. Needs
// root, like the launcher tests. Every wait has a deadline.
#include "actors/local_sandbox.hpp"
#include "actors/sandbox_directory.hpp"

#include "../sandbox/sandbox_test_support.hpp"
#include "actor_fixture.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

using namespace codeexec;
using namespace std::chrono_literals;

namespace {

/// Collects a cell's events for the test (the execution actor's role).
struct sink_state {
  std::vector<kernel_event>* events = nullptr;
  static inline const char* name = "test_sink";
};
event_sink_actor::behavior_type collecting_sink(event_sink_actor::stateful_pointer<sink_state> self,
                                                std::vector<kernel_event>* events) {
  self->state.events = events;
  return {[self](atom::event, kernel_event& ev) { self->state.events->push_back(std::move(ev)); }};
}

struct sandbox_fixture : test::actor_fixture {
  std::unique_ptr<sandbox::launcher> launcher = [] {
    auto cfg = sandbox_test::test_config(3 * sandbox_test::kUidsPerLauncher);
    cfg.runner_dir = sandbox_test::staged_runners();
    auto made = sandbox::make_launcher(cfg);
    if (!made.value) FAIL("make_launcher: " << made.error);
    return std::move(made.value);
  }();
  sandbox_actor sandbox;
  std::vector<kernel_event> events;  // written by the sink, read after each reply

  sandbox_fixture() {
    sandbox_environment env;
    env.launcher = launcher.get();
    env.catalog = std::make_shared<runner_catalog>(sandbox_test::staged_runners());
    env.interrupt_grace = 500ms;
    sandbox = sys.spawn(local_sandbox, env, language::python, resource_limits{});
  }
  ~sandbox_fixture() {
    self->send_exit(sandbox, caf::exit_reason::user_shutdown);
    self->wait_for(sandbox);
  }

  /// Makes the sandbox stateful, as POST /sandboxes does.
  void adopt() {
    auto record = std::make_shared<sandbox_record>();
    record->id = "test";
    bool ok = false;
    self->request(sandbox, 30s, atom::adopt_v, sandbox_settings{record, 60s, 600s})
        .receive([&](bool) { ok = true; },
                 [](caf::error& err) { FAIL("adopt: " << caf::to_string(err)); });
    REQUIRE(ok);
  }

  cell_outcome run(std::string code, std::string context_id = {}, std::string stdin_data = {}) {
    events.clear();
    run_cell cell;
    cell.id = "cell-" + std::to_string(++cells_);
    cell.code = std::move(code);
    cell.context_id = std::move(context_id);
    cell.lang_given = false;
    cell.stdin_data = std::move(stdin_data);
    auto sink = sys.spawn(collecting_sink, &events);
    cell_outcome out;
    self->request(sandbox, 30s, atom::run_v, std::move(cell), sink)
        .receive([&](cell_outcome& o) { out = std::move(o); },
                 [](caf::error& err) { FAIL("run: " << caf::to_string(err)); });
    // The sink's mailbox holds the events sent before the reply: drain it.
    self->send_exit(sink, caf::exit_reason::user_shutdown);
    self->wait_for(sink);
    return out;
  }

  /// The text of the cell's main result ("" if none).
  std::string main_result() const {
    for (const auto& ev : events)
      if (ev.type == kernel_event::kind::result && ev.result.value("is_main_result", false))
        return ev.result.value("text", "");
    return {};
  }
  std::string error_name() const {
    for (const auto& ev : events)
      if (ev.type == kernel_event::kind::error) return ev.error.name;
    return {};
  }

  context_info new_context() {
    context_info info;
    self->request(sandbox, 30s, atom::create_v, context_request{})
        .receive([&](context_info& i) { info = std::move(i); },
                 [](caf::error& err) { FAIL("create: " << caf::to_string(err)); });
    return info;
  }

  int cells_ = 0;
};

}  // namespace

TEST_CASE_FIXTURE(sandbox_fixture, "a sandbox's contexts keep their own state and share files") {
  adopt();
  CHECK(run("x = 41\nopen('shared.txt', 'w').write('from ctx 0')").how == cell_end::finished);
  CHECK(run("x + 1").how == cell_end::finished);
  CHECK(main_result() == "42");
  const auto second = new_context();
  CHECK_FALSE(second.is_default);
  run("'x' in globals()", second.id);
  CHECK(main_result() == "False");
  run("open('shared.txt').read()", second.id);
  CHECK(main_result() == "from ctx 0");
}

TEST_CASE_FIXTURE(sandbox_fixture, "an unknown context is refused: context_not_found") {
  const auto out = run("1", "no-such-context");
  CHECK(out.how == cell_end::refused);
  REQUIRE(out.refusal);
  CHECK(out.refusal->code == ec::context_not_found);
}

TEST_CASE_FIXTURE(sandbox_fixture, "stop interrupts a cell and the state survives") {
  adopt();
  run("kept = 'yes'");
  self->delayed_send(sandbox, 300ms, atom::stop_v, std::string{"cell-2"});
  const auto out = run("import time\nwhile True: time.sleep(0.01)");
  CHECK(out.how == cell_end::interrupted);
  CHECK(out.state_kept == true);
  run("kept");
  CHECK(main_result() == "yes");
}

TEST_CASE_FIXTURE(sandbox_fixture, "a cell that ignores interrupts gets its kernel restarted") {
  adopt();
  run("lost = 1");
  self->delayed_send(sandbox, 300ms, atom::stop_v, std::string{"cell-2"});
  const auto started = std::chrono::steady_clock::now();
  const auto out =
      run("import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True: pass");
  const auto took = std::chrono::steady_clock::now() - started;
  CHECK(out.how == cell_end::restarted);
  CHECK(out.state_kept == false);
  // 300 ms until the stop, then the 500 ms grace of interrupts before the kill.
  CHECK(took >= 750ms);
  run("lost");
  CHECK(error_name() == "NameError");
}

TEST_CASE_FIXTURE(sandbox_fixture, "stdin given with a cell reaches input()") {
  adopt();
  run("input() + '|' + input()", {}, "first\nsecond\n");
  CHECK(main_result() == "first|second");
  // The next cell's stdin is at end-of-file again.
  run("input()");
  CHECK(error_name() == "EOFError");
}
