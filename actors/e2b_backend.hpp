// The E2B cloud backend: every sandbox is a sandbox in E2B (an E2B SANDBOX actor),
// reached through one libcurl client whose thread serves all of them.
#pragma once

#include "actors/e2b_sandbox.hpp"
#include "actors/sandbox_backend.hpp"
#include "core/config.hpp"
#include "e2b/api.hpp"
#include "e2b/http_client.hpp"

#include <nlohmann/json.hpp>

#include <atomic>
#include <memory>
#include <optional>
#include <string>

namespace codeexec {

class e2b_backend final : public sandbox_backend {
 public:
  /// Throws std::runtime_error with the reason if E2B cannot be used (no E2B_API_KEY).
  explicit e2b_backend(const config& cfg);
  /// Lets the DELETEs of the last sandboxes finish (bounded) before the process goes.
  /// Every E2B SANDBOX actor must have ended before (the service awaits them).
  ~e2b_backend() override;

  /// E2B starts sandboxes in a few hundred ms: no warm pool (it would pay for idle
  /// cloud sandboxes).
  void start_pool(caf::actor_system&) override {}
  void drain_pool() override {}

  /// A new E2B sandbox for `lang`; it is created in E2B as the actor starts.
  sandbox_actor acquire(caf::actor_system& system, language lang,
                        const resource_limits& limits) override;
  /// Fewer than MAX_SANDBOXES live (E2B's own concurrency limit answers 429 beyond).
  bool has_room(language lang, const resource_limits& limits) const override;
  std::optional<sandbox_actor> evict_pooled(language) override { return std::nullopt; }

  /// Every language of the service is a kernel of code-interpreter-v1.
  std::optional<std::string> unavailable(language) const override { return std::nullopt; }
  /// E2B's Code Interpreter gives code no stdin.
  std::optional<std::string> unsupported(const execution_request& request) const override;

  nlohmann::json describe() const override;
  std::size_t live() const override { return live_->load(); }
  std::size_t pooled() const override { return 0; }

 private:
  config cfg_;
  // Order matters: the client (and its thread) goes before the settings its requests use.
  e2b::settings settings_;
  e2b::http_client http_;
  e2b_environment env_;
  /// E2B SANDBOX actors alive (each counts from acquire to its exit); shared with
  /// their exit handlers.
  std::shared_ptr<std::atomic<std::size_t>> live_ = std::make_shared<std::atomic<std::size_t>>(0);
};

}  // namespace codeexec
