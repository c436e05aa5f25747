// Per-sandbox cgroups.
//
// Layout (sandbox-design.md §2, §5, §9): under the service's own cgroup of each
// hierarchy, a `<prefix>` directory holds one `sbx-<id>` directory per sandbox.
//  - cgroup2 (when mounted): always, for tracking and cgroup.kill (works without any
//    controller, e.g. on this hybrid host), plus memory/pids when those controllers
//    can be enabled for our subtree (pure v2 hosts).
//  - cgroup v1 memory / pids: used for a limit that v2 cannot provide.
//  - neither writable (default Docker): no cgroup limits; the caller falls back to rlimits.
#pragma once

#include "sandbox/launcher.hpp"
#include "sandbox/unique_fd.hpp"

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace codeexec::sandbox {

/// Where sandbox cgroups go on this host. Probed once by prepare_cgroup_layout().
struct cgroup_layout {
  std::string v2_parent;  ///< <cgroup2 mount><own path>/<prefix>; empty if unusable
  bool v2_kill = false;   ///< cgroup.kill exists (kernel >= 5.14)
  bool v2_memory = false;
  bool v2_pids = false;
  std::string v1_memory_parent;  ///< empty unless v1 memory is used
  bool v1_memsw = false;         ///< memory.memsw.* exists (swap accounting)
  std::string v1_pids_parent;    ///< empty unless v1 pids is used

  std::string v2_detail;  ///< human-readable: what works and why not
  std::string memory_detail;
  std::string pids_detail;

  bool limits_memory() const noexcept { return v2_memory || !v1_memory_parent.empty(); }
  bool limits_pids() const noexcept { return v2_pids || !v1_pids_parent.empty(); }
};

/// Finds the service's own cgroups, creates the `<prefix>` directories, enables v2
/// controllers if possible, and checks writability with a throw-away `sbx-<probe_id>`.
/// On a pure v2 host whose own cgroup still holds processes this moves them into a
/// `<own>/<prefix>-service` leaf (the no-internal-process rule), as nsjail and dind do.
cgroup_layout prepare_cgroup_layout(const std::string& prefix, const std::string& probe_id);

/// The `<prefix>` directories that exist now (all hierarchies); creates nothing.
std::vector<std::string> existing_cgroup_parents(const std::string& prefix);

/// The cgroups of one sandbox. Move-only; the destructor removes what is left.
class sandbox_cgroups {
 public:
  sandbox_cgroups() = default;
  sandbox_cgroups(sandbox_cgroups&& other) noexcept = default;
  sandbox_cgroups& operator=(sandbox_cgroups&& other) noexcept;
  sandbox_cgroups(const sandbox_cgroups&) = delete;
  sandbox_cgroups& operator=(const sandbox_cgroups&) = delete;
  ~sandbox_cgroups();

  /// Creates `sbx-<id>` wherever the layout allows and writes the limits (0 = none).
  /// On failure removes what it created and sets *error.
  static sandbox_cgroups create(const cgroup_layout& layout, const std::string& id,
                                std::uint64_t memory_bytes, std::uint64_t pids, std::string* error);

  /// The sandbox's cgroup2 directory, or "" (for CLONE_INTO_CGROUP).
  const std::string& v2_dir() const noexcept { return v2_dir_; }
  /// Moves `pid` (the blocked clone child) into every cgroup of the sandbox; into the
  /// v2 one only unless it was born there.
  bool add_process(pid_t pid, bool already_in_v2, std::string* error) const;
  /// Writes cgroup.kill (v2). Returns false if that is not available.
  bool kill() const noexcept;
  /// Peak memory, CPU time, OOM kills and pids-limit hits (0 where unknown).
  usage read_usage() const;
  /// CPU time of the tree only: what a periodic CPU-limit check needs.
  std::uint64_t read_cpu_ns() const;
  /// rmdir of every directory, retrying while the kernel still reports it busy.
  /// Returns true when all are gone.
  bool remove(std::chrono::milliseconds budget) noexcept;

  const std::vector<std::string>& dirs() const noexcept { return dirs_; }

 private:
  /// The files read_usage() reads, opened once at create: a read is a pread from
  /// offset 0, not a path walk through /sys/fs/cgroup on every cell.
  struct usage_files {
    unique_fd peak;         ///< memory.peak (v2) or memory.max_usage_in_bytes (v1)
    unique_fd oom;          ///< memory.events (v2) or memory.oom_control (v1)
    unique_fd pids_events;  ///< pids.events
    unique_fd cpu_stat;     ///< cpu.stat (v2)
  };
  void open_usage_files();

  usage_files files_;
  std::vector<std::string> dirs_;  ///< every created directory
  std::string v2_dir_;
  bool v2_kill_ = false;
  std::string memory_dir_;
  bool memory_v2_ = false;
  std::string pids_dir_;
};

/// Kills the processes in, and removes, every `sbx-*` directory under the `<prefix>`
/// parents whose name `is_stale` accepts. Returns the names removed (deduplicated
/// across hierarchies).
std::vector<std::string> sweep_sandbox_cgroups(
    const std::string& prefix, const std::function<bool(std::string_view name)>& is_stale);

}  // namespace codeexec::sandbox
