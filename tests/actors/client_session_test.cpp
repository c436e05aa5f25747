// A CLIENT SESSION's pings on the test's clock: no real interval passes.
#include "actors/client_session.hpp"
#include "actors/client_registry.hpp"

#include "deterministic_fixture.hpp"

#include <doctest/doctest.h>

#include <memory>

using namespace codeexec;
using namespace std::chrono_literals;

namespace {

/// A socket whose peer the test plays: it counts pings and answers them, or not.
class fake_connection : public client_connection {
 public:
  bool send_text(std::string message) override {
    sent.push_back(std::move(message));
    return true;
  }
  void ping() override { ++pings; }
  std::chrono::milliseconds since_last_pong() const override { return silence; }
  void close(std::uint16_t code, std::string reason) override {
    close_code = code;
    close_reason = std::move(reason);
  }

  std::vector<std::string> sent;
  int pings = 0;
  std::chrono::milliseconds silence{0};
  std::uint16_t close_code = 0;
  std::string close_reason;
};

struct session_fixture : test::deterministic_fixture {
  static constexpr std::chrono::milliseconds interval = 20s;
  client_registry_actor registry = sys.spawn(client_registry, caf::timespan{10s});
  std::shared_ptr<fake_connection> socket = std::make_shared<fake_connection>();
  client_session_actor session =
      sys.spawn(client_session, std::string{"c1"}, socket, registry, interval);

  session_fixture() { run(); }
  ~session_fixture() {
    caf::anon_send_exit(session, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(registry, caf::exit_reason::user_shutdown);
  }
};

}  // namespace

TEST_CASE_FIXTURE(session_fixture, "a session pings its client once per interval") {
  CHECK(socket->pings == 0);
  advance(interval - 1ms);
  CHECK(socket->pings == 0);
  advance(1ms);
  CHECK(socket->pings == 1);
  advance(interval);
  CHECK(socket->pings == 2);
  CHECK(socket->close_code == 0);
}

TEST_CASE_FIXTURE(session_fixture, "a client silent for two intervals is closed with 1001") {
  advance(interval);
  CHECK(socket->pings == 1);
  // The pong never came.
  socket->silence = 2 * interval + 1ms;
  advance(interval);
  CHECK(socket->close_code == 1001);
  CHECK(socket->close_reason == "ping timeout");
  CHECK(socket->pings == 1);
  // Closed for good: no more pings.
  advance(interval);
  CHECK(socket->pings == 1);
}
