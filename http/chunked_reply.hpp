// A response sent in parts as they are produced (HTTP/1.1 chunked transfer), for the
// E2B Code Interpreter's NDJSON /execute. Library-free: restinio_server.cpp implements it.
#pragma once

#include "http/routes.hpp"

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace codeexec::http {

class chunked_reply {
 public:
  virtual ~chunked_reply() = default;
  /// Sends one part now; thread-safe. Dropped once finished or once the client is gone.
  virtual void write(std::string part) = 0;
  /// Ends the response; thread-safe and idempotent.
  virtual void finish() = 0;
  /// Cuts the connection instead of ending the response, so the client's read fails
  /// as when a server dies mid-transfer (E2B, when a sandbox is killed during a cell);
  /// thread-safe, does nothing once finished.
  virtual void abort() = 0;
};

/// How a chunked reply starts, and how it notices a client that left.
struct chunked_start {
  int status = 200;
  std::string content_type;
  std::vector<std::pair<std::string, std::string>> headers;
  /// Written after `keepalive_every` without a part: besides keeping proxies from
  /// timing out, it is how a client that left is noticed (the write fails).
  std::string keepalive;
  std::chrono::milliseconds keepalive_every{1000};
  /// Called once, from an I/O thread, when a write fails: the client is gone.
  std::function<void()> on_gone;
};

/// How a route answers: with a whole reply, or by starting a chunked one.
struct responder {
  reply_fn reply;
  std::function<std::shared_ptr<chunked_reply>(chunked_start)> stream;
};

}  // namespace codeexec::http
