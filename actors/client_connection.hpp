// What actors see of a WebSocket: a way to send text, watch the send queue, ping and
// close. The HTTP layer implements it; actors never see RESTinio types.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

namespace codeexec {

class client_connection {
 public:
  virtual ~client_connection() = default;
  /// Queues one text message without blocking (a large one in fragments, so that a
  /// slow client's progress shows while it reads it). False when the socket is gone.
  virtual bool send_text(std::string message) = 0;
  /// Bytes queued and not yet written to the socket.
  virtual std::size_t queued_bytes() const = 0;
  /// Time since the socket last wrote something or, if nothing was queued since, since
  /// it was last given something to write.
  virtual std::chrono::milliseconds since_progress() const = 0;
  /// Calls `drained` once, when at most `bytes` are queued: from an I/O thread, or at
  /// once (on the caller's thread) if that is already so. Replaces an earlier one.
  virtual void when_drained(std::size_t bytes, std::function<void()> drained) = 0;
  /// Sends a ping frame.
  virtual void ping() = 0;
  /// Time since the client last answered a ping (or since the socket opened).
  virtual std::chrono::milliseconds since_last_pong() const = 0;
  /// Sends a close frame with `code` and `reason`, then releases the socket.
  virtual void close(std::uint16_t code, std::string reason) = 0;
};

}  // namespace codeexec
