// The local sandbox backend: the launcher, the runner command per language, and the
// factory that gives each execution a sandbox actor.
#pragma once

#include "actors/execution.hpp"
#include "core/config.hpp"
#include "sandbox/launcher.hpp"

#include <nlohmann/json.hpp>

#include <memory>
#include <string>

namespace codeexec {

class local_backend {
 public:
  /// Probes the host; throws std::runtime_error with the reason and the fix.
  explicit local_backend(const config& cfg);

  /// Spawns a SANDBOX actor running the runner of a language.
  sandbox_factory factory();

  /// The runner command, environment and limits for a language.
  sandbox::launch_spec runner_spec(language lang, const resource_limits& limits) const;

  /// For /health: what is enforced here and how many sandboxes live.
  nlohmann::json describe() const;
  std::size_t live() const { return launcher_->live(); }

 private:
  config cfg_;
  std::string runner_dir_;
  std::unique_ptr<sandbox::launcher> launcher_;
};

/// The directory of the in-sandbox runners: RUNNER_DIR, else next to the binary,
/// else the source tree's sandbox/runners.
std::string find_runner_dir(const config& cfg);

}  // namespace codeexec
