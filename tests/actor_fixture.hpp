// A real actor system for tests, plus a hidden scoped actor to drive it.
#pragma once

#include "actors/actors.hpp"

#include <caf/all.hpp>

#include <chrono>

namespace codeexec::test {

struct actor_fixture {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  /// The test's driver. (CAF 0.17 still counts it in registry().running().)
  caf::scoped_actor self{sys, true};

  static constexpr auto deadline = std::chrono::seconds(5);
};

}  // namespace codeexec::test
