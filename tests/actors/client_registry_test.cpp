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
      [probe](atom::deliver, std::uint64_t, std::string& message) {
        caf::anon_send(probe, atom::deliver_v, std::move(message));
      },
      // Replayed messages reach the probe as deliveries too, in order.
      [probe](atom::replay, std::uint64_t, std::string& message) {
        caf::anon_send(probe, atom::deliver_v, std::move(message));
      },
      [probe](atom::caught_up, std::uint64_t covered, std::uint64_t head) {
        caf::anon_send(probe, atom::caught_up_v, covered, head);
      },
      [](atom::drained) {},
      [](atom::progress) {},
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
      [probe](atom::pause, bool on) { caf::anon_send(probe, atom::pause_v, on); },
  };
}

stream_settings settings(std::size_t retention_bytes = 1 << 20) {
  stream_settings s;
  s.replay_window = caf::timespan{10s};
  s.retention.max_bytes = retention_bytes;
  return s;
}

/// A stream message as an execution publishes it.
std::string message(const std::string& data) {
  return nlohmann::json{{"type", "stdout"}, {"executionId", "e1"}, {"data", data}}.dump();
}

struct registry_fixture : test::actor_fixture {
  client_registry_actor registry = sys.spawn(client_registry, settings());
  caf::actor probe = caf::actor_cast<caf::actor>(self);

  client_session_actor session() { return sys.spawn(fake_session, probe); }

  std::string next_delivery() {
    std::string got;
    self->receive([&](atom::deliver, std::string& m) { got = std::move(m); },
                  caf::after(deadline) >> [] { FAIL("no delivery before the deadline"); });
    return got;
  }

  /// The data and eventId of the next delivery.
  std::pair<std::string, std::uint64_t> next_event() {
    const auto doc = nlohmann::json::parse(next_delivery());
    return {doc.value("data", ""), doc.value("eventId", std::uint64_t{0})};
  }

  /// Waits for the end of a replayed batch: (covered, head).
  std::pair<std::uint64_t, std::uint64_t> next_caught_up() {
    std::pair<std::uint64_t, std::uint64_t> got;
    self->receive(
        [&](atom::caught_up, std::uint64_t c, std::uint64_t h) {
          got = {c, h};
        },
        caf::after(deadline) >> [] { FAIL("no caught_up before the deadline"); });
    return got;
  }

  void attach(const std::string& client_id, const client_session_actor& s) {
    self->send(registry, atom::attach_v, client_id, s, false, std::uint64_t{0});
    next_caught_up();
  }

  void publish(const std::string& data) {
    self->send(registry, atom::publish_v, std::string{"c1"}, std::string{"e1"}, message(data),
               std::uint64_t{0});
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
  static stream_settings timed_settings() {
    auto s = settings();
    s.replay_window = window;
    return s;
  }
  client_registry_actor registry = sys.spawn(client_registry, timed_settings());
  caf::actor probe = caf::actor_cast<caf::actor>(self);

  ~timed_registry_fixture() { caf::anon_send_exit(registry, caf::exit_reason::user_shutdown); }

  /// A session that attaches now; what it is delivered goes to the probe.
  client_session_actor attach(const std::string& client_id) {
    auto session = sys.spawn(fake_session, probe);
    self->send(registry, atom::attach_v, client_id, session, false, std::uint64_t{0});
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
  attach("c1", a);
  attach("c1", b);
  attach("c2", other);
  publish("m1");
  CHECK(next_event() == std::pair<std::string, std::uint64_t>{"m1", 1});
  CHECK(next_event() == std::pair<std::string, std::uint64_t>{"m1", 1});
  // c2's session got nothing.
  self->receive([](atom::deliver, std::string&) { FAIL("a message leaked to another clientId"); },
                caf::after(100ms) >> [] {});
  self->send_exit(a, caf::exit_reason::user_shutdown);
  self->send_exit(b, caf::exit_reason::user_shutdown);
  self->send_exit(other, caf::exit_reason::user_shutdown);
}

TEST_CASE_FIXTURE(registry_fixture, "a late session receives the replay in order") {
  auto execution = sys.spawn(fake_execution, probe);
  self->send(registry, atom::track_v, std::string{"c1"}, std::string{"e1"}, execution,
             std::shared_ptr<output_credit>{});
  for (auto m : {"first", "second", "third"}) publish(m);
  sync();
  auto late = session();
  self->send(registry, atom::attach_v, std::string{"c1"}, late, false, std::uint64_t{0});
  CHECK(next_event().first == "first");
  CHECK(next_event().first == "second");
  CHECK(next_event().first == "third");
  CHECK(next_caught_up() == std::pair<std::uint64_t, std::uint64_t>{3, 3});
  self->send_exit(late, caf::exit_reason::user_shutdown);
  self->send_exit(execution, caf::exit_reason::user_shutdown);
}

TEST_CASE_FIXTURE(registry_fixture, "an expired replay is not sent") {
  auto execution = sys.spawn(fake_execution, probe);
  self->send(registry, atom::track_v, std::string{"c1"}, std::string{"e1"}, execution,
             std::shared_ptr<output_credit>{});
  publish("old");
  self->send(registry, atom::expire_v, std::string{"c1"}, std::string{"e1"});
  sync();
  auto late = session();
  attach("c1", late);
  publish("new");
  CHECK(next_event() == std::pair<std::string, std::uint64_t>{"new", 2});
  self->send_exit(late, caf::exit_reason::user_shutdown);
  self->send_exit(execution, caf::exit_reason::user_shutdown);
}

TEST_CASE_FIXTURE(registry_fixture, "the last session leaving cancels running executions") {
  auto a = session();
  auto b = session();
  auto execution = sys.spawn(fake_execution, probe);
  attach("c1", a);
  attach("c1", b);
  self->send(registry, atom::track_v, std::string{"c1"}, std::string{"e1"}, execution,
             std::shared_ptr<output_credit>{});
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
  attach("c1", a);
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
  self->send(registry, atom::track_v, std::string{"c1"}, std::string{"e1"}, execution,
             std::shared_ptr<output_credit>{});
  self->send(registry, atom::publish_v, std::string{"c1"}, std::string{"e1"}, std::string{"m"},
             std::uint64_t{0});
  run();
  advance(window - 1ms);
  attach("c1");
  CHECK(delivered() == std::vector<std::string>{"m"});
  advance(1ms);
  attach("c1");
  CHECK(delivered().empty());
}

TEST_CASE_FIXTURE(registry_fixture, "a session resuming after an eventId gets exactly the rest") {
  auto execution = sys.spawn(fake_execution, probe);
  self->send(registry, atom::track_v, std::string{"c1"}, std::string{"e1"}, execution,
             std::shared_ptr<output_credit>{});
  for (auto m : {"first", "second", "third"}) publish(m);
  sync();
  auto resumed = session();
  self->send(registry, atom::attach_v, std::string{"c1"}, resumed, true, std::uint64_t{1});
  CHECK(next_event() == std::pair<std::string, std::uint64_t>{"second", 2});
  CHECK(next_event() == std::pair<std::string, std::uint64_t>{"third", 3});
  CHECK(next_caught_up() == std::pair<std::uint64_t, std::uint64_t>{3, 3});
  // A batch is bounded: asking for 1 byte after 1 gives one message.
  self->send(registry, atom::replay_v, std::string{"c1"}, resumed, std::uint64_t{1},
             std::uint64_t{1});
  CHECK(next_event().second == 2);
  CHECK(next_caught_up() == std::pair<std::uint64_t, std::uint64_t>{2, 3});
  self->send_exit(resumed, caf::exit_reason::user_shutdown);
  self->send_exit(execution, caf::exit_reason::user_shutdown);
}

TEST_CASE_FIXTURE(registry_fixture, "a cursor older than the retention gets replay_incomplete") {
  auto small = sys.spawn(client_registry, settings(0));
  auto execution = sys.spawn(fake_execution, probe);
  self->send(small, atom::track_v, std::string{"c1"}, std::string{"e1"}, execution,
             std::shared_ptr<output_credit>{});
  for (auto m : {"first", "second"})
    self->send(small, atom::publish_v, std::string{"c1"}, std::string{"e1"}, message(m),
               std::uint64_t{0});
  auto resumed = session();
  self->send(small, atom::attach_v, std::string{"c1"}, resumed, true, std::uint64_t{0});
  const auto notice = nlohmann::json::parse(next_delivery());
  CHECK(notice["status"] == "replay_incomplete");
  CHECK(notice["lastEventId"] == 0);
  CHECK(notice["executions"] == nlohmann::json::array({"e1"}));
  CHECK(next_caught_up() == std::pair<std::uint64_t, std::uint64_t>{2, 2});
  self->send_exit(resumed, caf::exit_reason::user_shutdown);
  self->send_exit(execution, caf::exit_reason::user_shutdown);
  self->send_exit(small, caf::exit_reason::user_shutdown);
}

TEST_CASE_FIXTURE(registry_fixture,
                  "a session behind pauses the clientId's executions until it drains") {
  auto a = session();
  auto b = session();
  attach("c1", a);
  attach("c1", b);
  auto execution = sys.spawn(fake_execution, probe);
  self->send(registry, atom::track_v, std::string{"c1"}, std::string{"e1"}, execution,
             std::shared_ptr<output_credit>{});
  auto pause_is = [&](bool expected) {
    self->receive([&](atom::pause, bool on) { CHECK(on == expected); },
                  caf::after(deadline) >> [] { FAIL("no pause message"); });
  };
  self->send(registry, atom::pressure_v, std::string{"c1"}, a, true, std::uint64_t{0});
  pause_is(true);
  // A second socket behind changes nothing; the executions resume when both caught up.
  self->send(registry, atom::pressure_v, std::string{"c1"}, b, true, std::uint64_t{0});
  self->send(registry, atom::pressure_v, std::string{"c1"}, a, false, std::uint64_t{0});
  self->receive([](atom::pause, bool) { FAIL("resumed while a socket was still behind"); },
                caf::after(100ms) >> [] {});
  // A socket behind that leaves no longer holds the executions.
  self->send_exit(b, caf::exit_reason::user_shutdown);
  pause_is(false);
  self->send_exit(a, caf::exit_reason::user_shutdown);
  self->send_exit(execution, caf::exit_reason::user_shutdown);
}

TEST_CASE_FIXTURE(registry_fixture,
                  "a socket back within the reconnect grace keeps the executions") {
  auto s = settings();
  s.reconnect_grace = caf::timespan{200ms};
  auto graceful = sys.spawn(client_registry, s);
  auto execution = sys.spawn(fake_execution, probe);
  auto a = session();
  self->send(graceful, atom::attach_v, std::string{"c1"}, a, false, std::uint64_t{0});
  next_caught_up();
  self->send(graceful, atom::track_v, std::string{"c1"}, std::string{"e1"}, execution,
             std::shared_ptr<output_credit>{});
  self->send(a, atom::closed_v);
  auto b = session();
  self->send(graceful, atom::attach_v, std::string{"c1"}, b, false, std::uint64_t{0});
  next_caught_up();
  self->receive([](atom::cancel, std::string&) { FAIL("cancelled although a socket came back"); },
                caf::after(400ms) >> [] {});
  self->send(b, atom::closed_v);
  self->receive([](atom::cancel, std::string&) {},
                caf::after(deadline) >> [] { FAIL("not cancelled after the grace"); });
  self->send_exit(execution, caf::exit_reason::user_shutdown);
  self->send_exit(graceful, caf::exit_reason::user_shutdown);
}

TEST_CASE_FIXTURE(registry_fixture, "credit comes back at once while no socket is behind") {
  auto execution = sys.spawn(fake_execution, probe);
  auto credit = std::make_shared<output_credit>(100);
  self->send(registry, atom::track_v, std::string{"c1"}, std::string{"e1"}, execution, credit);
  auto reader = session();
  attach("c1", reader);
  credit->take(60);
  self->send(registry, atom::publish_v, std::string{"c1"}, std::string{"e1"},
             message(std::string(60, 'x')), std::uint64_t{60});
  sync();
  CHECK(credit->out() == 0);
  self->send_exit(reader, caf::exit_reason::user_shutdown);
  self->send_exit(execution, caf::exit_reason::user_shutdown);
}

TEST_CASE_FIXTURE(registry_fixture,
                  "credit is held while a socket is more than lag_limit behind, until it reports") {
  auto s = settings();
  s.lag_limit = 1000;
  auto held = sys.spawn(client_registry, s);
  auto execution = sys.spawn(fake_execution, probe);
  auto credit = std::make_shared<output_credit>(10000);
  self->send(held, atom::track_v, std::string{"c1"}, std::string{"e1"}, execution, credit);
  auto reader = session();
  self->send(held, atom::attach_v, std::string{"c1"}, reader, false, std::uint64_t{0});
  next_caught_up();
  // The fake session never reports: its cursor stays at 0 while the log grows.
  for (int i = 0; i < 4; ++i) {
    credit->take(500);
    self->send(held, atom::publish_v, std::string{"c1"}, std::string{"e1"},
               message(std::string(500, 'x')), std::uint64_t{500});
  }
  for (int i = 0; i < 4; ++i) next_delivery();
  self->request(held, deadline, atom::get_v)
      .receive([](std::uint64_t, std::uint64_t) {},
               [](caf::error& err) { FAIL(caf::to_string(err)); });
  // The first message or two went back; the rest waits for the reader.
  CHECK(credit->out() >= 1000);
  // It reports having sent everything: all comes back.
  self->send(held, atom::pressure_v, std::string{"c1"}, reader, false, std::uint64_t{4});
  self->request(held, deadline, atom::get_v)
      .receive([](std::uint64_t, std::uint64_t) {},
               [](caf::error& err) { FAIL(caf::to_string(err)); });
  CHECK(credit->out() == 0);
  self->send_exit(reader, caf::exit_reason::user_shutdown);
  self->send_exit(execution, caf::exit_reason::user_shutdown);
  self->send_exit(held, caf::exit_reason::user_shutdown);
}
