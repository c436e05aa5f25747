// A WebSocket as the actors see it (client_connection) over RESTinio's handle, and
// the close frames still being written. Included only by restinio_server.cpp, the one
// RESTinio translation unit (RESTinio dominates build time).
#pragma once

#include "actors/client_connection.hpp"

#include <restinio/all.hpp>
#include <restinio/websocket/websocket.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
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
  ws_connection(rws::ws_handle_t ws, std::shared_ptr<close_tracker> closing)
      : ws_(std::move(ws)),
        closing_(std::move(closing)),
        queue_(std::make_shared<send_queue>()),
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
    // Frames of at most `fragment_bytes`: a write completes per frame, so a slow client
    // that reads a large message shows progress (and is not taken for a stalled one).
    auto opcode = rws::opcode_t::text_frame;
    std::size_t offset = 0;
    do {
      const auto size = std::min(fragment_bytes, message.size() - offset);
      const bool last = offset + size == message.size();
      std::string frame = offset == 0 && last ? std::move(message) : message.substr(offset, size);
      queue_->queued(size);
      try {
        ws_->send_message(
            last ? rws::final_frame : rws::not_final_frame, opcode, std::move(frame),
            [queue = queue_, size](const restinio::asio_ns::error_code&) { queue->written(size); });
      } catch (const std::exception&) {
        queue_->written(size);
        return false;  // our side closed already
      }
      opcode = rws::opcode_t::continuation_frame;
      offset += size;
    } while (offset < message.size());
    return true;
  }

  std::size_t queued_bytes() const override { return queue_->bytes.load(); }

  std::chrono::milliseconds since_progress() const override {
    const auto last = clock::time_point{clock::duration{queue_->last_progress.load()}};
    return std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - last);
  }

  void when_drained(std::size_t bytes, std::function<void()> drained) override {
    {
      std::lock_guard lock{queue_->mutex};
      queue_->drain_at = bytes;
      queue_->drained = std::move(drained);
      queue_->waiting = true;
      // A write may have completed before `waiting` was set: check after setting it.
      if (queue_->bytes.load() > bytes) return;
      queue_->waiting = false;
      drained = std::move(queue_->drained);
      queue_->drained = nullptr;
    }
    drained();
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
  static constexpr std::size_t fragment_bytes = 64 << 10;

  /// Bytes handed to RESTinio and not yet written; shared with the write callbacks,
  /// which run on the I/O threads.
  struct send_queue {
    std::atomic<std::size_t> bytes{0};
    std::atomic<clock::rep> last_progress{clock::now().time_since_epoch().count()};
    std::atomic<bool> waiting{false};
    std::mutex mutex;
    std::size_t drain_at = 0;       // guarded by mutex
    std::function<void()> drained;  // guarded by mutex

    void queued(std::size_t size) {
      // Writing starts now: a queue that was empty has not been stalling.
      if (bytes.fetch_add(size) == 0) last_progress = clock::now().time_since_epoch().count();
    }
    void written(std::size_t size) {
      bytes.fetch_sub(size);
      last_progress = clock::now().time_since_epoch().count();
      if (!waiting.load()) return;
      std::function<void()> fn;
      {
        std::lock_guard lock{mutex};
        if (!waiting.load() || bytes.load() > drain_at) return;
        waiting = false;
        fn = std::move(drained);
        drained = nullptr;
      }
      fn();
    }
  };

  rws::ws_handle_t ws_;
  std::shared_ptr<close_tracker> closing_;
  std::shared_ptr<send_queue> queue_;
  std::atomic<clock::rep> last_pong_;
};

}  // namespace codeexec::http
