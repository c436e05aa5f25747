// An actor system whose scheduler and clock the test drives (CAF's test_coordinator):
// no thread runs an actor unless run() is called, and time moves only by advance().
// Timer-driven behaviour (timeouts, replay expiry, pings) is tested without waiting.
// Detached actors run on their own threads even here: test them with actor_fixture.
#pragma once

#include "actors/actors.hpp"

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include <chrono>

namespace codeexec::test {

struct deterministic_fixture {
  static caf::actor_system_config& configure(caf::actor_system_config& cfg) {
    cfg.set("scheduler.policy", caf::atom("testing"));
    cfg.set("logger.inline-output", true);
    return cfg;
  }

  caf::actor_system_config cfg;
  caf::actor_system sys{configure(cfg)};
  caf::scheduler::test_coordinator& sched =
      dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler());
  /// The test's driver: what actors send it waits in its mailbox for receive().
  caf::scoped_actor self{sys, true};

  /// The system's destructor awaits every actor, and a pending timer keeps its actor
  /// alive: deliver what is pending and fire the timers left (a test ends the actors
  /// that re-arm theirs forever, such as a session's pings, before this runs).
  ~deterministic_fixture() {
    for (int round = 0; round < 1000; ++round) {
      const auto ran = sched.run();
      if (ran == 0 && sched.trigger_timeouts() == 0) break;
    }
  }

  /// Runs every message that can be handled now; returns how many.
  std::size_t run() { return sched.run(); }

  /// Moves the clock forward by `d`, fires the timers due, then runs what they sent.
  std::size_t advance(caf::timespan d) {
    const auto fired = sched.advance_time(d);
    run();
    return fired;
  }

  /// Whether a message waits in the driver's mailbox (after run()).
  bool has_message() { return self->mailbox().size() > 0; }
};

}  // namespace codeexec::test
