// A WebSocket as the actors see it (client_connection) over RESTinio's handle, and
// the close frames still being written. Included only by restinio_server.cpp, the one
// RESTinio translation unit (RESTinio dominates build time).
#pragma once

#include "actors/client_connection.hpp"

#include <restinio/all.hpp>
#include <restinio/websocket/websocket.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>

namespace codeexec::http {

namespace rws = restinio::websocket::basic;

/// Close frames handed to RESTinio and not yet written (stop() waits for them).
struct close_tracker {
  std::mutex mutex;
  std::condition_variable written;
  std::size_t pending = 0;  // guarded by mutex
};

/// A WebSocket as actors see it. Only the owning session actor sends or closes
/// through it, so close never races with a send (cpp-stack.md §4.2); the I/O
/// threads only record pongs and count written bytes.
class ws_connection final : public client_connection {
 public:
  ws_connection(rws::ws_handle_t ws, std::size_t send_buffer_bytes,
                std::shared_ptr<close_tracker> closing)
      : ws_(std::move(ws)),
        send_buffer_bytes_(send_buffer_bytes),
        closing_(std::move(closing)),
        queued_(std::make_shared<std::atomic<std::size_t>>(0)),
        last_pong_(clock::now().time_since_epoch().count()) {}

  ~ws_connection() override {
    // Dropping the last handle shuts the socket down; do it inside a try because
    // the peer may be gone already.
    try {
      ws_.reset();
    } catch (...) {
    }
  }

  bool send_text(std::string message) override {
    if (!ws_) return false;
    const auto size = message.size();
    if (queued_->load() + size > send_buffer_bytes_) {
      // The client reads slower than we write: a bounded buffer, then a clear close.
      close(1008, "client too slow: send buffer full");
      return false;
    }
    *queued_ += size;
    try {
      ws_->send_message(
          rws::final_frame, rws::opcode_t::text_frame, std::move(message),
          [queued = queued_, size](const restinio::asio_ns::error_code&) { *queued -= size; });
      return true;
    } catch (const std::exception&) {
      *queued_ -= size;
      return false;  // our side closed already
    }
  }

  void ping() override {
    if (!ws_) return;
    try {
      ws_->send_message(rws::final_frame, rws::opcode_t::ping_frame, std::string{});
    } catch (const std::exception&) {
    }
  }

  std::chrono::milliseconds since_last_pong() const override {
    const auto last = clock::time_point{clock::duration{last_pong_.load()}};
    return std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - last);
  }

  /// Called on the I/O thread when a pong arrives.
  void pong_received() { last_pong_ = clock::now().time_since_epoch().count(); }

  void close(std::uint16_t code, std::string reason) override {
    if (!ws_) return;
    {
      std::lock_guard lock{closing_->mutex};
      ++closing_->pending;
    }
    auto done = [closing = closing_](const restinio::asio_ns::error_code&) {
      std::lock_guard lock{closing->mutex};
      if (--closing->pending == 0) closing->written.notify_all();
    };
    try {
      ws_->send_message(rws::final_frame, rws::opcode_t::connection_close_frame,
                        rws::status_code_to_bin(static_cast<rws::status_code_t>(code)) + reason,
                        done);
    } catch (const std::exception&) {
      done({});
    }
    ws_.reset();
  }

 private:
  using clock = std::chrono::steady_clock;
  rws::ws_handle_t ws_;
  std::size_t send_buffer_bytes_;
  /// Bytes handed to RESTinio and not yet written; shared with write callbacks.
  std::shared_ptr<close_tracker> closing_;
  std::shared_ptr<std::atomic<std::size_t>> queued_;
  std::atomic<clock::rep> last_pong_;
};

}  // namespace codeexec::http
