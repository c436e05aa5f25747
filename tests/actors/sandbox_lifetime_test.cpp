// Idle timeout and lifetime of a stateful sandbox, with time moved by hand: the
// struct keeps its time points in the open, so no test waits for one to pass.
#include "actors/sandbox_lifetime.hpp"

#include "actors/sandbox_directory.hpp"

#include <doctest/doctest.h>

using namespace codeexec;
using namespace std::chrono_literals;

namespace {

sandbox_settings settings(std::chrono::milliseconds idle, std::chrono::milliseconds life) {
  auto record = std::make_shared<sandbox_record>();
  record->id = "s1";
  return {record, idle, life};
}

/// Moves the lifetime's clock readings `d` into the past: as if `d` had passed.
void age(sandbox_lifetime& l, std::chrono::milliseconds d) {
  l.created -= d;
  l.last_activity -= d;
}

}  // namespace

TEST_CASE("a sandbox lives until it has been idle for its timeout") {
  sandbox_lifetime l;
  const auto first = l.adopt(settings(60s, 24h));
  CHECK(first == sandbox_lifetime::check_interval);  // checks at most every 2 s
  age(l, 59s);
  auto c = l.expire(false);
  CHECK(c.end_reason.empty());
  CHECK(c.next <= 1s);
  age(l, 1s);
  CHECK(l.expire(false).end_reason == "the sandbox expired");
}

TEST_CASE("running cells keep a sandbox from idling out, not past its lifetime") {
  sandbox_lifetime l;
  l.adopt(settings(60s, 10min));
  age(l, 5min);
  CHECK(l.expire(true).end_reason.empty());  // busy: idle time starts anew
  CHECK(l.expire(false).end_reason.empty());
  age(l, 5min);
  CHECK(l.expire(true).end_reason == "the sandbox reached its maximum lifetime");
}

TEST_CASE("a touch or a new timeout restarts the idle time and moves the shown end") {
  sandbox_lifetime l;
  auto s = settings(60s, 24h);
  auto record = s.record;
  l.adopt(std::move(s));
  const auto shown = record->expires_at_ms.load();
  age(l, 50s);
  l.touch();
  CHECK(record->expires_at_ms.load() >= shown);
  age(l, 50s);
  CHECK(l.expire(false).end_reason.empty());
  l.set_idle_timeout(10s);
  age(l, 10s);
  CHECK(l.expire(false).end_reason == "the sandbox expired");
}
