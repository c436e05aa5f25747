#include "core/stream_log.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <thread>
#include <vector>

using namespace codeexec;
using namespace std::chrono_literals;

namespace {

std::string message(const std::string& data) {
  return nlohmann::json{{"type", "stdout"}, {"executionId", "e"}, {"data", data}}.dump();
}

std::uint64_t event_id(const std::string& text) {
  return nlohmann::json::parse(text).at("eventId").get<std::uint64_t>();
}

}  // namespace

TEST_CASE("with_event_id adds the id as the object's last member") {
  CHECK(with_event_id(R"({"type":"stdout"})", 7) == R"({"type":"stdout","eventId":7})");
  CHECK(with_event_id("{}", 1) == R"({"eventId":1})");
}

TEST_CASE("ids are consecutive per clientId and a read resumes exactly after a cursor") {
  auto log = make_memory_stream_log({60s, 1 << 20});
  for (int i = 1; i <= 5; ++i) {
    auto m = message(std::to_string(i));
    CHECK(log->append("a", "e", m) == static_cast<std::uint64_t>(i));
    CHECK(event_id(m) == static_cast<std::uint64_t>(i));
  }
  auto other = message("x");
  CHECK(log->append("b", "e", other) == 1);
  const auto read = log->read("a", 2, 1 << 20);
  CHECK_FALSE(read.incomplete);
  CHECK(read.head == 5);
  REQUIRE(read.entries.size() == 3);
  CHECK(read.entries.front().id == 3);
  CHECK(read.entries.back().id == 5);
  // A byte budget still returns at least one message.
  CHECK(log->read("a", 0, 1).entries.size() == 1);
  CHECK(log->read("a", 5, 1 << 20).entries.empty());
}

TEST_CASE("trimming keeps the retention and what a reader has not sent yet") {
  const auto size = message("1").size() + std::string(R"(,"eventId":1)").size();
  auto log = make_memory_stream_log({60s, 2 * size});
  for (int i = 1; i <= 5; ++i) {
    auto m = message(std::to_string(i));
    log->append("a", "e" + std::to_string(i), m);
  }
  // A reader still at 1 holds everything after it.
  CHECK_FALSE(log->trim("a", 1));
  CHECK(log->read("a", 1, 1 << 20).entries.size() == 4);
  CHECK_FALSE(log->trim("a", 100));
  const auto read = log->read("a", 1, 1 << 20);
  REQUIRE(read.incomplete);
  const auto notice = nlohmann::json::parse(*read.incomplete);
  CHECK(notice["status"] == "replay_incomplete");
  CHECK(notice["firstEventId"] == 4);
  CHECK(notice["executions"] == nlohmann::json::array({"e2", "e3"}));
  REQUIRE(read.entries.size() == 2);
  CHECK(read.entries.front().id == 4);
}

TEST_CASE("a cursor newer than the stream gets the notice and everything kept") {
  auto log = make_memory_stream_log({60s, 1 << 20});
  auto m = message("1");
  log->append("a", "e", m);
  const auto read = log->read("a", 42, 1 << 20);
  REQUIRE(read.incomplete);
  CHECK(read.entries.size() == 1);
  CHECK(log->read("nobody", 3, 1 << 20).incomplete.has_value());
  CHECK_FALSE(log->read("nobody", 0, 1 << 20).incomplete.has_value());
}

TEST_CASE("old messages expire by age") {
  auto log = make_memory_stream_log({std::chrono::milliseconds(1), 1 << 20});
  auto m = message("1");
  log->append("a", "e", m);
  std::this_thread::sleep_for(5ms);  // the behaviour under test is an age
  log->trim("a", 100);
  CHECK(log->bytes() == 0);
}

TEST_CASE("bytes_after is how far a cursor is behind the stream") {
  auto log = make_memory_stream_log({60s, 1 << 20});
  std::vector<std::size_t> sizes;
  for (int i = 1; i <= 3; ++i) {
    auto m = message(std::string(static_cast<std::size_t>(i) * 10, 'x'));
    log->append("c", "e", m);
    sizes.push_back(m.size());
  }
  CHECK(log->bytes_after("c", 3) == 0);
  CHECK(log->bytes_after("c", 2) == sizes[2]);
  CHECK(log->bytes_after("c", 1) == sizes[1] + sizes[2]);
  CHECK(log->bytes_after("c", 0) == sizes[0] + sizes[1] + sizes[2]);
  CHECK(log->bytes_after("c", 99) == 0);
  CHECK(log->bytes_after("unknown", 0) == 0);
}
