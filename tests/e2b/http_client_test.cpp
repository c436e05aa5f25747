#include "e2b/http_client.hpp"

#include "tiny_server.hpp"

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

using namespace codeexec::e2b;
using codeexec::test::tiny_server;
using namespace std::chrono_literals;

namespace {

http_request get(const std::string& url) {
  http_request r;
  r.url = url;
  r.timeout = 10s;
  return r;
}

}  // namespace

TEST_CASE("e2b http client: a buffered request gets status, lower-case headers and body") {
  tiny_server server{[](int fd, const std::string& head) {
    CHECK(head.rfind("POST /v2/sandboxes HTTP/1.1", 0) == 0);
    CHECK(head.find("X-API-Key: k") != std::string::npos);
    tiny_server::write_all(fd,
                           "HTTP/1.1 201 Created\r\nContent-Length: 2\r\nRetry-After: 3\r\n"
                           "Connection: close\r\n\r\n{}");
  }};
  http_client client;
  std::promise<http_response> reply;
  auto request = get(server.url("/v2/sandboxes"));
  request.method = "POST";
  request.body = "{\"templateID\":\"t\"}";
  request.headers = {"X-API-Key: k"};
  client.submit_buffered(std::move(request), 1024,
                         [&](http_response r) { reply.set_value(std::move(r)); });
  auto future = reply.get_future();
  REQUIRE(future.wait_for(10s) == std::future_status::ready);
  const auto r = future.get();
  CHECK(r.result.completed());
  CHECK(r.result.status == 201);
  CHECK(r.headers.at("retry-after") == "3");
  CHECK(r.body == "{}");
}

TEST_CASE("e2b http client: a stream's chunks arrive as they are sent") {
  std::promise<void> first_seen;
  auto first_seen_future = first_seen.get_future().share();
  tiny_server server{[first_seen_future](int fd, const std::string&) {
    tiny_server::write_all(fd, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nline1\n");
    // The second chunk only once the client has seen the first: no buffering.
    CHECK(first_seen_future.wait_for(10s) == std::future_status::ready);
    tiny_server::write_all(fd, "line2\n");
  }};
  http_client client;
  std::string received;
  std::promise<http_result> done;
  bool told = false;
  http_callbacks callbacks;
  callbacks.on_headers = [](long status, const header_map&) { CHECK(status == 200); };
  callbacks.on_data = [&](std::string_view chunk) {
    received.append(chunk);
    if (!told && received.find("line1\n") != std::string::npos) {
      told = true;
      first_seen.set_value();
    }
    return true;
  };
  callbacks.on_done = [&](const http_result& r) { done.set_value(r); };
  client.submit(get(server.url("/execute")), std::move(callbacks));
  auto future = done.get_future();
  REQUIRE(future.wait_for(10s) == std::future_status::ready);
  CHECK(future.get().completed());
  CHECK(received == "line1\nline2\n");
}

TEST_CASE("e2b http client: cancel ends a hanging transfer and closes its connection") {
  std::atomic<bool> closed{false};
  tiny_server server{[&](int fd, const std::string&) {
    tiny_server::write_all(fd,
                           "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{\"type\":\"stdout\"}\n");
    tiny_server::wait_for_close(fd);
    closed = true;
  }};
  http_client client;
  std::promise<void> started;
  std::promise<http_result> done;
  bool once = false;
  http_callbacks callbacks;
  callbacks.on_data = [&](std::string_view) {
    if (!std::exchange(once, true)) started.set_value();
    return true;
  };
  callbacks.on_done = [&](const http_result& r) { done.set_value(r); };
  auto request = get(server.url("/execute"));
  request.timeout = 0ms;
  {
    transfer t{client, client.submit(std::move(request), std::move(callbacks))};
    REQUIRE(started.get_future().wait_for(10s) == std::future_status::ready);
  }  // the transfer's destruction cancels it
  auto future = done.get_future();
  REQUIRE(future.wait_for(10s) == std::future_status::ready);
  const auto r = future.get();
  CHECK(r.cancelled);
  CHECK_FALSE(r.completed());
  for (int i = 0; i < 200 && !closed; ++i) std::this_thread::sleep_for(10ms);
  CHECK(closed);
}

TEST_CASE("e2b http client: no server, a timeout and a delayed start") {
  http_client client;
  // A port nobody listens on: bind one, then close it.
  std::string refused_url;
  {
    tiny_server gone{[](int, const std::string&) {}};
    refused_url = gone.url("/");
  }
  std::promise<http_response> refused;
  client.submit_buffered(get(refused_url), 1024,
                         [&](http_response r) { refused.set_value(std::move(r)); });
  auto r = refused.get_future().get();
  CHECK(r.result.status == 0);
  CHECK(r.result.curl_code != 0);
  CHECK_FALSE(r.result.error.empty());

  tiny_server silent{[](int fd, const std::string&) { tiny_server::wait_for_close(fd); }};
  auto slow = get(silent.url("/"));
  slow.timeout = 200ms;
  std::promise<http_response> timed_out;
  client.submit_buffered(std::move(slow), 1024,
                         [&](http_response x) { timed_out.set_value(std::move(x)); });
  auto t = timed_out.get_future();
  REQUIRE(t.wait_for(10s) == std::future_status::ready);
  CHECK(t.get().result.curl_code == 28);  // CURLE_OPERATION_TIMEDOUT

  tiny_server ok{[](int fd, const std::string&) {
    tiny_server::write_all(fd, "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
  }};
  auto later = get(ok.url("/"));
  later.start_after = 300ms;
  std::promise<http_response> delayed;
  const auto start = std::chrono::steady_clock::now();
  client.submit_buffered(std::move(later), 1024,
                         [&](http_response x) { delayed.set_value(std::move(x)); });
  auto d = delayed.get_future();
  REQUIRE(d.wait_for(10s) == std::future_status::ready);
  CHECK(d.get().result.status == 204);
  CHECK(std::chrono::steady_clock::now() - start >= 300ms);
}

TEST_CASE("e2b http client: its destruction lets running requests finish (bounded)") {
  tiny_server server{[](int fd, const std::string&) {
    std::this_thread::sleep_for(300ms);
    tiny_server::write_all(fd, "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
  }};
  std::optional<http_response> seen;
  {
    http_client client;
    client.drain_on_exit(5s);
    client.submit_buffered(get(server.url("/sandboxes/x")), 1024,
                           [&](http_response r) { seen = std::move(r); });
  }
  REQUIRE(seen);
  CHECK(seen->result.status == 204);

  tiny_server hanging{[](int fd, const std::string&) { tiny_server::wait_for_close(fd); }};
  std::optional<http_response> cut;
  const auto start = std::chrono::steady_clock::now();
  {
    http_client client;
    client.drain_on_exit(200ms);
    client.submit_buffered(get(hanging.url("/")), 1024,
                           [&](http_response r) { cut = std::move(r); });
  }
  REQUIRE(cut);
  CHECK(cut->result.cancelled);
  CHECK(std::chrono::steady_clock::now() - start < 5s);
}
