// The local sandbox backend: the launcher, the kernels this host can run, the warm
// pool, and the sandboxes it gives executions and stateful sandboxes.
#pragma once

#include "actors/execution.hpp"
#include "actors/local_sandbox.hpp"
#include "actors/runner_catalog.hpp"
#include "actors/sandbox_backend.hpp"
#include "actors/warm_pool.hpp"
#include "core/config.hpp"
#include "sandbox/launcher.hpp"
#include "sandbox/runner_stage.hpp"

#include <nlohmann/json.hpp>

#include <memory>
#include <optional>
#include <string>

namespace codeexec {

class local_backend final : public sandbox_backend {
 public:
  /// Probes the host; throws std::runtime_error with the reason and the fix.
  explicit local_backend(const config& cfg);
  ~local_backend() override;

  /// Starts filling the warm pool (needs the actor system the sandboxes run in).
  void start_pool(caf::actor_system& system) override;
  /// Kills the pooled sandboxes and stops refilling (shutdown).
  void drain_pool() override;

  /// A sandbox for one execution of `lang`: a pooled one when the limits are the
  /// defaults, else a fresh one.
  sandbox_actor acquire(caf::actor_system& system, language lang,
                        const resource_limits& limits) override;

  /// Whether a sandbox of `lang` with `limits` can start now: a pooled one fits, or
  /// fewer than MAX_SANDBOXES live.
  bool has_room(language lang, const resource_limits& limits) const override;
  std::optional<sandbox_actor> evict_pooled(language keep) override;

  /// This host's kernels: a language is missing when its interpreter is.
  std::optional<std::string> unavailable(language lang) const override;
  /// The local sandbox runs every request its language can.
  std::optional<std::string> unsupported(const execution_request&) const override {
    return std::nullopt;
  }

  /// For /health: what is enforced here, the languages, and how many sandboxes live.
  nlohmann::json describe() const override;
  std::size_t live() const override { return launcher_->live(); }
  std::size_t pooled() const override { return pool_ ? pool_->size() : 0; }

 private:
  config cfg_;
  /// The runners' copy the sandboxes bind; outlives every sandbox (declared first).
  std::unique_ptr<sandbox::runner_stage> runners_;
  std::unique_ptr<sandbox::launcher> launcher_;
  std::shared_ptr<const runner_catalog> catalog_;
  sandbox_environment env_;
  std::unique_ptr<warm_pool> pool_;

  /// Whether `limits` are the pool's (the defaults; output and CPU caps are per cell).
  bool poolable(const resource_limits& limits) const;
};

/// The directory of the in-sandbox runners: RUNNER_DIR, else next to the binary,
/// else the source tree's sandbox/runners.
std::string find_runner_dir(const config& cfg);

}  // namespace codeexec
