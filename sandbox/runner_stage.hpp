// The runners as the sandbox sees them: a root-owned, world-readable copy that the
// service makes at start-up under a directory it controls (RUNTIME_DIR, default
// /run/codeexec), and removes when it stops.
//
// Why a copy: the sandbox binds the runner directory read-only at /opt/runner, and
// its mount is made by the sandbox's own root, which is an unprivileged uid on the
// host. It can only reach a host path whose every directory is searchable by others;
// a clone under /root (0700 on Debian) or a home directory is not. The copy's path is
// chosen by the service, so where the checkout or the build lives never matters.
#pragma once

#include "sandbox/unique_fd.hpp"

#include <string>

namespace codeexec::sandbox {

class runner_stage {
 public:
  /// Copies `source` (a directory of runners) into a new instance directory under
  /// `runtime_dir`; every directory on the way is made or checked to be searchable by
  /// the sandbox's user. Instance directories left by services that died without
  /// removing theirs are swept first. Throws std::runtime_error with a message that
  /// names the path and what to change.
  runner_stage(const std::string& source, const std::string& runtime_dir);
  runner_stage(const runner_stage&) = delete;
  runner_stage& operator=(const runner_stage&) = delete;
  /// Removes the instance directory.
  ~runner_stage();

  /// The staged copy, e.g. /run/codeexec/instance-Ab12Cd/runners.
  const std::string& path() const { return runners_; }

  /// Removes instance directories under `runtime_dir` whose service is gone (their
  /// lock is not held); returns how many.
  static int sweep_stale(const std::string& runtime_dir);

 private:
  std::string instance_;
  std::string runners_;
  unique_fd lock_;  ///< flock'd while this service runs: tells sweep_stale it is alive
};

/// Empty if a process with no relation to the owner of `path` (neither its uid nor its
/// gid) can reach it: every directory from / down is searchable by others and `path`
/// itself readable (and searchable, for a directory). Otherwise the first obstacle,
/// e.g. "/root is mode 0700: others cannot search it".
std::string unreachable_by_others(const std::string& path);

}  // namespace codeexec::sandbox
