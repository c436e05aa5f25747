#include "actors/ask.hpp"

#include "actor_fixture.hpp"

#include <doctest/doctest.h>

#include <future>

using namespace codeexec;

TEST_CASE_FIXTURE(test::actor_fixture, "when_gone runs once the actor has terminated") {
  auto target = sys.spawn([](caf::event_based_actor*) { return caf::behavior{[](int) {}}; });
  std::promise<void> gone;
  when_gone(target, [&gone] { gone.set_value(); });
  auto fut = gone.get_future();
  CHECK(fut.wait_for(std::chrono::milliseconds(100)) == std::future_status::timeout);
  caf::anon_send_exit(target, caf::exit_reason::user_shutdown);
  CHECK(fut.wait_for(deadline) == std::future_status::ready);
}

TEST_CASE_FIXTURE(test::actor_fixture, "when_gone runs at once for an actor already gone") {
  auto target = sys.spawn([](caf::event_based_actor* self) { self->quit(); });
  std::promise<void> gone;
  when_gone(target, [&gone] { gone.set_value(); });
  CHECK(gone.get_future().wait_for(deadline) == std::future_status::ready);
}

TEST_CASE_FIXTURE(test::actor_fixture, "ask hands the reply or the error to a callback") {
  auto adder = sys.spawn(
      [](caf::event_based_actor*) { return caf::behavior{[](int x, int y) { return x + y; }}; });
  std::promise<int> sum;
  ask(
      sys, adder, std::chrono::seconds(5), [&sum](int z) { sum.set_value(z); },
      [&sum](const caf::error&) { sum.set_value(-1); }, 1, 2);
  auto fut = sum.get_future();
  REQUIRE(fut.wait_for(deadline) == std::future_status::ready);
  CHECK(fut.get() == 3);
  caf::anon_send_exit(adder, caf::exit_reason::user_shutdown);
}
