// The HTTP and WebSocket server. RESTinio lives behind this interface, in one
// translation unit (restinio_server.cpp), to keep it out of every other build.
#pragma once

#include "actors/service.hpp"
#include "core/config.hpp"

#include <cstdint>
#include <memory>

namespace codeexec::http {

class server {
 public:
  virtual ~server() = default;
  /// The bound port (useful when PORT=0 asked for an ephemeral one).
  virtual std::uint16_t port() const = 0;
  /// Stops accepting, closes connections and joins the I/O threads. Idempotent.
  virtual void stop() = 0;
};

/// Binds HOST:PORT and serves on cfg.http_threads threads; throws if it cannot bind.
std::unique_ptr<server> start_server(const config& cfg, service& svc);

}  // namespace codeexec::http
