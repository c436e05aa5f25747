// Where sandboxes come from: the local launcher (namespaces, seccomp, cgroups) or the
// E2B cloud. The service asks its backend for sandboxes and never knows which it has;
// either way a sandbox is a SANDBOX actor (actors.hpp).
#pragma once

#include "actors/actors.hpp"
#include "core/config.hpp"
#include "core/execution.hpp"
#include "core/language.hpp"
#include "core/limits.hpp"

#include <caf/fwd.hpp>
#include <nlohmann/json.hpp>

#include <cstddef>
#include <memory>
#include <optional>
#include <string>

namespace codeexec {

class sandbox_backend {
 public:
  virtual ~sandbox_backend() = default;

  /// Starts keeping sandboxes ready (the warm pool), if the backend has one.
  virtual void start_pool(caf::actor_system& system) = 0;
  /// Ends the ready sandboxes and stops making more (shutdown).
  virtual void drain_pool() = 0;

  /// A sandbox for `lang` with `limits`: a ready one if it fits, else a new one.
  virtual sandbox_actor acquire(caf::actor_system& system, language lang,
                                const resource_limits& limits) = 0;
  /// Whether a sandbox of `lang` with `limits` can start now (MAX_SANDBOXES).
  virtual bool has_room(language lang, const resource_limits& limits) const = 0;
  /// Takes a ready sandbox of another language than `keep` out of the pool (to end
  /// it and make room), if there is one.
  virtual std::optional<sandbox_actor> evict_pooled(language keep) = 0;

  /// Why `lang` cannot run on this backend, or nothing when it can.
  virtual std::optional<std::string> unavailable(language lang) const = 0;
  /// Why this backend cannot run `request` at all (a feature it lacks), or nothing.
  /// Asked before any sandbox is made, so a refused request costs none.
  virtual std::optional<std::string> unsupported(const execution_request& request) const = 0;

  /// For /health: {"backend", "languages", "capabilities"}.
  virtual nlohmann::json describe() const = 0;
  /// Sandboxes that exist now, pooled ones included.
  virtual std::size_t live() const = 0;
  /// Sandboxes waiting in the pool.
  virtual std::size_t pooled() const = 0;
};

/// The backend SANDBOX_BACKEND names; throws std::runtime_error with the reason (and
/// the fix) if it cannot work here.
std::unique_ptr<sandbox_backend> make_sandbox_backend(const config& cfg);

}  // namespace codeexec
