// Ownership of one sandbox in the E2B cloud: it is killed (DELETE /sandboxes/{id})
// when its owner lets go of it, on every path: the actor's end, a create reply that
// arrives after its actor ended (the message is dropped and, with it, this object),
// or the service's shutdown.
#pragma once

#include "e2b/api.hpp"
#include "e2b/http_client.hpp"

namespace codeexec::e2b {

class remote_sandbox {
 public:
  /// `http` and `s` must outlive this object and every retry of its DELETE (the
  /// backend owns both; the client drains its requests before it goes).
  remote_sandbox(http_client& http, const settings& s, sandbox_info info)
      : http_(http), settings_(s), info_(std::move(info)) {}
  ~remote_sandbox();
  remote_sandbox(const remote_sandbox&) = delete;
  remote_sandbox& operator=(const remote_sandbox&) = delete;

  const sandbox_info& info() const { return info_; }
  const std::string& id() const { return info_.id; }

 private:
  http_client& http_;
  const settings& settings_;
  sandbox_info info_;
};

/// Sends DELETE /sandboxes/{id}, retrying transient failures a few times with backoff;
/// logs the outcome. Nothing waits for it but the client's drain at shutdown.
void kill_sandbox(http_client& http, const settings& s, std::string sandbox_id,
                  std::uint32_t attempt = 0);

}  // namespace codeexec::e2b
