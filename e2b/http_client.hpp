// An HTTP client on one libcurl multi handle, driven by a thread of its own: requests
// are submitted from any thread, their callbacks run on that thread. No CAF thread ever
// blocks on the network, and connections to one host are kept alive and reused.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace codeexec::e2b {

/// Response headers, names in lower case (the last value of a repeated name wins).
using header_map = std::map<std::string, std::string>;

struct http_request {
  std::string method = "GET";
  std::string url;
  /// "Name: value" lines.
  std::vector<std::string> headers;
  std::string body;
  /// The whole transfer; 0: no limit (a stream ended by its reader).
  std::chrono::milliseconds timeout{0};
  std::chrono::milliseconds connect_timeout{10000};
  /// A stream that sends nothing for this long is dead (E2B sends keepalives every 5 s);
  /// 0: not checked.
  std::chrono::milliseconds stall_timeout{0};
  /// Start no earlier than this from now (retries with backoff).
  std::chrono::milliseconds start_after{0};
};

/// How a transfer ended.
struct http_result {
  /// The HTTP status; 0 when no response arrived.
  long status = 0;
  /// libcurl's error code (CURLcode); 0 when the transfer completed.
  int curl_code = 0;
  /// libcurl's message for curl_code.
  std::string error;
  /// Ended by cancel() or by the client's shutdown, not by the network.
  bool cancelled = false;

  bool completed() const { return curl_code == 0 && !cancelled; }
};

/// Called on the client's thread; they must not block (post, e.g. caf::anon_send).
struct http_callbacks {
  /// Once, when the final (non-1xx) response's headers are complete.
  std::function<void(long status, const header_map& headers)> on_headers;
  /// Each chunk of the body as it arrives; return false to abort the transfer.
  std::function<bool(std::string_view chunk)> on_data;
  /// Exactly once, last, for every submitted request (also cancelled ones).
  std::function<void(const http_result& result)> on_done;
};

/// A whole small response (control-plane calls).
struct http_response {
  http_result result;
  header_map headers;
  std::string body;
};

class http_client {
 public:
  using request_id = std::uint64_t;

  /// Starts the thread; throws std::runtime_error if libcurl cannot be set up.
  http_client();
  /// Waits up to `drain` (see drain_on_exit) for the transfers still running, cancels the
  /// rest, and joins the thread.
  ~http_client();
  http_client(const http_client&) = delete;
  http_client& operator=(const http_client&) = delete;

  /// Queues a request; its callbacks run on the client's thread.
  request_id submit(http_request request, http_callbacks callbacks);
  /// Queues a request whose body (up to `max_body` bytes; more fails the transfer) is
  /// collected and handed to `done` with the headers.
  request_id submit_buffered(http_request request, std::size_t max_body,
                             std::function<void(http_response)> done);
  /// Ends a transfer: its on_done follows with `cancelled` set. Unknown or finished
  /// ids are ignored.
  void cancel(request_id id);

  /// How long the destructor lets running transfers (the DELETEs of sandboxes) finish.
  void drain_on_exit(std::chrono::milliseconds drain);
  /// Transfers queued or running.
  std::size_t active() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// RAII for one transfer: cancels it when destroyed, unless released or finished.
class transfer {
 public:
  transfer() = default;
  transfer(http_client& client, http_client::request_id id) : client_(&client), id_(id) {}
  transfer(const transfer&) = delete;
  transfer& operator=(const transfer&) = delete;
  transfer(transfer&& other) noexcept { *this = std::move(other); }
  transfer& operator=(transfer&& other) noexcept {
    if (this != &other) {
      cancel();
      client_ = std::exchange(other.client_, nullptr);
      id_ = other.id_;
    }
    return *this;
  }
  ~transfer() { cancel(); }

  /// Cancels the transfer now (its on_done follows).
  void cancel() {
    if (auto* client = std::exchange(client_, nullptr)) client->cancel(id_);
  }
  /// The transfer finished by itself: nothing to cancel.
  void release() { client_ = nullptr; }
  explicit operator bool() const { return client_ != nullptr; }

 private:
  http_client* client_ = nullptr;
  http_client::request_id id_ = 0;
};

}  // namespace codeexec::e2b
