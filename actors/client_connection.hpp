// What actors see of a WebSocket: a way to send text, ping and close. The HTTP
// layer implements it; actors never see RESTinio types.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace codeexec {

class client_connection {
 public:
  virtual ~client_connection() = default;
  /// Queues one text message without blocking. False when the client cannot take
  /// it: the socket is gone, or so much is queued for a slow client that the
  /// connection was closed (1008).
  virtual bool send_text(std::string message) = 0;
  /// Sends a ping frame.
  virtual void ping() = 0;
  /// Time since the client last answered a ping (or since the socket opened).
  virtual std::chrono::milliseconds since_last_pong() const = 0;
  /// Sends a close frame with `code` and `reason`, then releases the socket.
  virtual void close(std::uint16_t code, std::string reason) = 0;
};

}  // namespace codeexec
