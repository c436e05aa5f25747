// The terminator on a clock the test moves: no real waiting for its grace or timeout.
#include "actors/terminator.hpp"

#include "deterministic_fixture.hpp"

#include <doctest/doctest.h>

#include <optional>

using namespace codeexec;
using namespace std::chrono_literals;

namespace {

constexpr caf::timespan grace = 5s;
constexpr caf::timespan kill_timeout = 2s;

/// An actor that ignores user_shutdown (as one busy finishing would), not kill.
caf::behavior stubborn(caf::event_based_actor* self) {
  self->set_exit_handler([](caf::exit_msg&) {});
  return {[](int) {}};
}

struct terminator_fixture : test::deterministic_fixture {
  terminator_actor term = sys.spawn(terminator, grace, kill_timeout);

  void shut_down(std::vector<caf::actor> actors) {
    self->send(term, atom::shutdown_v, std::move(actors));
    run();
  }

  /// The terminator's answer if it has given one: how many actors still live.
  std::optional<std::uint64_t> answer() {
    std::optional<std::uint64_t> out;
    self->receive([&](std::uint64_t left) { out = left; }, caf::after(0s) >> [] {});
    return out;
  }
};

}  // namespace

TEST_CASE_FIXTURE(terminator_fixture,
                  "terminator: actors that end on user_shutdown end it at once") {
  auto a = sys.spawn([]() -> caf::behavior { return {[](int) {}}; });
  auto b = sys.spawn([]() -> caf::behavior { return {[](int) {}}; });
  shut_down({a, b});
  CHECK(answer() == 0u);
}

TEST_CASE_FIXTURE(terminator_fixture, "terminator: nothing to end is answered at once") {
  shut_down({});
  CHECK(answer() == 0u);
}

TEST_CASE_FIXTURE(terminator_fixture,
                  "terminator: kills what ignores user_shutdown after the grace") {
  shut_down({sys.spawn(stubborn)});
  CHECK_FALSE(answer());
  advance(grace - 1s);
  CHECK_FALSE(answer());
  advance(1s);
  CHECK(answer() == 0u);
}

TEST_CASE_FIXTURE(terminator_fixture, "terminator: reports what even kill does not end") {
  // A blocking actor that never receives stands for one stuck in a handler.
  caf::scoped_actor stuck{sys, true};
  shut_down({caf::actor_cast<caf::actor>(stuck), sys.spawn(stubborn)});
  advance(grace);
  CHECK_FALSE(answer());
  advance(kill_timeout);
  CHECK(answer() == 1u);
}
