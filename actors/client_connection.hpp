// What actors see of a WebSocket: a way to send text and to close. The HTTP layer
// implements it; actors never see RESTinio types.
#pragma once

#include <cstdint>
#include <string>

namespace codeexec {

class client_connection {
 public:
  virtual ~client_connection() = default;
  /// Queues one text message. Never blocks; a message to a closed peer is dropped.
  virtual void send_text(std::string message) = 0;
  /// Sends a close frame with `code` and `reason`, then releases the socket.
  virtual void close(std::uint16_t code, std::string reason) = 0;
};

}  // namespace codeexec
