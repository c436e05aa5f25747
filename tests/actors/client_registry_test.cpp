#include "actors/client_registry.hpp"

#include "actor_fixture.hpp"
#include "deterministic_fixture.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace codeexec;
using namespace std::chrono_literals;

namespace {

/// A session that forwards what it is told to the test's scoped actor.
client_session_actor::behavior_type fake_session(client_session_actor::pointer self,
                                                 caf::actor probe) {
  return {
      [probe](atom::deliver, std::string& message) {
        caf::anon_send(probe, atom::deliver_v, std::move(message));
      },
      [](atom::received, const std::string&) {},
      [self](atom::closed) { self->quit(); },
      [self, probe](atom::close, std::uint16_t code, std::string&) {
        caf::anon_send(probe, atom::close_v, code);
        self->quit();
      },
      [](atom::tick) {},
  };
}

/// An execution that reports a cancel to the test's scoped actor.
execution_actor::behavior_type fake_execution(execution_actor::pointer self, caf::actor probe) {
  return {
      [](atom::event, const kernel_event&) {},
      [self, probe](atom::cancel, std::string& reason) {
        caf::anon_send(probe, atom::cancel_v, std::move(reason));
      },
      [](atom::timeout) {},
      [](atom::finish) {},
      [self, probe](atom::input, std::string& data, bool eof) {
        caf::anon_send(probe, atom::input_v, std::move(data), eof);
      },
  };
}

struct registry_fixture : test::actor_fixture {
  client_registry_actor registry = sys.spawn(client_registry, caf::timespan{10s});
  caf::actor probe = caf::actor_cast<caf::actor>(self);

  client_session_actor session() { return sys.spawn(fake_session, probe); }

  std::string next_delivery() {
    std::string got;
    self->receive([&](atom::deliver, std::string& m) { got = std::move(m); },
                  caf::after(deadline) >> [] { FAIL("no delivery before the deadline"); });
    return got;
  }

  /// Waits until the registry has processed everything sent so far.
  void sync() {
    self->request(registry, deadline, atom::get_v)
        .receive([](std::uint64_t, std::uint64_t) {},
                 [](caf::error& err) { FAIL(caf::to_string(err)); });
  }

  ~registry_fixture() { caf::anon_send_exit(registry, caf::exit_reason::user_shutdown); }
};

/// The registry on the test's clock: replay windows pass by advance(), not by waiting.
struct timed_registry_fixture : test::deterministic_fixture {
  static constexpr caf::timespan window = 10s;
  client_registry_actor registry = sys.spawn(client_registry, window);
  caf::actor probe = caf::actor_cast<caf::actor>(self);

  ~timed_registry_fixture() { caf::anon_send_exit(registry, caf::exit_reason::user_shutdown); }

  /// A session that attaches now; what it is delivered goes to the probe.
  client_session_actor attach(const std::string& client_id) {
    auto session = sys.spawn(fake_session, probe);
    self->send(registry, atom::attach_v, client_id, session);
    run();
    return session;
  }

  /// Every message delivered so far, in order.
  std::vector<std::string> delivered() {
    std::vector<std::string> out;
    for (bool more = true; more;)
      self->receive([&](atom::deliver, std::string& m) { out.push_back(std::move(m)); },
                    caf::after(0s) >> [&] { more = false; });
    return out;
  }
};

}  // namespace

TEST_CASE_FIXTURE(registry_fixture, "published messages reach every session of a clientId") {
  auto a = session();
  auto b = session();
  auto other = session();
  self->send(registry, atom::attach_v, std::string{"c1"}, a);
  self->send(registry, atom::attach_v, std::string{"c1"}, b);
  self->send(registry, atom::attach_v, std::string{"c2"}, other);
  self->send(registry, atom::publish_v, std::string{"c1"}, std::string{"e1"}, std::string{"m1"});
  CHECK(next_delivery() == "m1");
  CHECK(next_delivery() == "m1");
  // c2's session got nothing.
  self->receive([](atom::deliver, std::string&) { FAIL("a message leaked to another clientId"); },
                caf::after(100ms) >> [] {});
  self->send_exit(a, caf::exit_reason::user_shutdown);
  self->send_exit(b, caf::exit_reason::user_shutdown);
  self->send_exit(other, caf::exit_reason::user_shutdown);
}

TEST_CASE_FIXTURE(registry_fixture, "a late session receives the replay in order") {
  auto execution = sys.spawn(fake_execution, probe);
  self->send(registry, atom::track_v, std::string{"c1"}, std::string{"e1"}, execution);
  for (auto m : {"first", "second", "third"})
    self->send(registry, atom::publish_v, std::string{"c1"}, std::string{"e1"}, std::string{m});
  sync();
  auto late = session();
  self->send(registry, atom::attach_v, std::string{"c1"}, late);
  CHECK(next_delivery() == "first");
  CHECK(next_delivery() == "second");
  CHECK(next_delivery() == "third");
  self->send_exit(late, caf::exit_reason::user_shutdown);
  self->send_exit(execution, caf::exit_reason::user_shutdown);
}

TEST_CASE_FIXTURE(registry_fixture, "an expired replay is not sent") {
  auto execution = sys.spawn(fake_execution, probe);
  self->send(registry, atom::track_v, std::string{"c1"}, std::string{"e1"}, execution);
  self->send(registry, atom::publish_v, std::string{"c1"}, std::string{"e1"}, std::string{"old"});
  self->send(registry, atom::expire_v, std::string{"c1"}, std::string{"e1"});
  sync();
  auto late = session();
  self->send(registry, atom::attach_v, std::string{"c1"}, late);
  self->send(registry, atom::publish_v, std::string{"c1"}, std::string{"e1"}, std::string{"new"});
  CHECK(next_delivery() == "new");
  self->send_exit(late, caf::exit_reason::user_shutdown);
  self->send_exit(execution, caf::exit_reason::user_shutdown);
}

TEST_CASE_FIXTURE(registry_fixture, "the last session leaving cancels running executions") {
  auto a = session();
  auto b = session();
  auto execution = sys.spawn(fake_execution, probe);
  self->send(registry, atom::attach_v, std::string{"c1"}, a);
  self->send(registry, atom::attach_v, std::string{"c1"}, b);
  self->send(registry, atom::track_v, std::string{"c1"}, std::string{"e1"}, execution);
  sync();
  self->send(a, atom::closed_v);
  // One session remains: no cancel yet.
  self->receive([](atom::cancel, std::string&) { FAIL("cancelled while a session remained"); },
                caf::after(200ms) >> [] {});
  self->send(b, atom::closed_v);
  std::string reason;
  self->receive([&](atom::cancel, std::string& r) { reason = r; },
                caf::after(deadline) >> [] { FAIL("the execution was not cancelled"); });
  CHECK(reason.find("c1") != std::string::npos);
  self->send_exit(execution, caf::exit_reason::user_shutdown);
}

TEST_CASE_FIXTURE(registry_fixture, "shutdown closes every session with 1001") {
  auto a = session();
  self->send(registry, atom::attach_v, std::string{"c1"}, a);
  bool told = false;
  self->request(registry, deadline, atom::shutdown_v)
      .receive([&](bool) { told = true; }, [](caf::error&) {});
  CHECK(told);
  // First the reason, as a status event without an execution, then the close.
  const auto notice = nlohmann::json::parse(next_delivery());
  CHECK(notice["type"] == "status");
  CHECK(notice["status"] == "shutting_down");
  CHECK(notice["executionId"].is_null());
  std::uint16_t code = 0;
  self->receive([&](atom::close, std::uint16_t c) { code = c; },
                caf::after(deadline) >> [] { FAIL("the session was not closed"); });
  CHECK(code == 1001);
}

TEST_CASE_FIXTURE(timed_registry_fixture, "a replay lasts exactly its window") {
  auto execution = sys.spawn(fake_execution, probe);
  self->send(registry, atom::track_v, std::string{"c1"}, std::string{"e1"}, execution);
  self->send(registry, atom::publish_v, std::string{"c1"}, std::string{"e1"}, std::string{"m"});
  run();
  advance(window - 1ms);
  attach("c1");
  CHECK(delivered() == std::vector<std::string>{"m"});
  advance(1ms);
  attach("c1");
  CHECK(delivered().empty());
}
