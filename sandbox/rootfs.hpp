// The sandbox's root filesystem, planned in the parent.
//
// The clone child may not allocate, so every path, mount option string and generated
// file is prepared here as a flat list of steps; the child only walks the list
// (clone_child.cpp). Paths in the steps are as the child sees them between the two
// pivots: the host root at /oldroot, the sandbox root being built at /newroot.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

namespace codeexec::sandbox {

/// Host view of the sandbox's root, mounted by the child before the plan runs.
inline constexpr const char* kHostRootInSetup = "/oldroot";
inline constexpr const char* kSandboxRootInSetup = "/newroot";

enum class mount_op : unsigned char {
  make_dir,       ///< mkdir(target, mode); an existing directory is fine
  make_file,      ///< create an empty file (a bind-mount target)
  make_symlink,   ///< symlink(source, target)
  write_file,     ///< create target (mode) containing source[0, size)
  mount,          ///< mount(source, target, fstype, flags, data)
  bind_readonly,  ///< recursive bind source → target, then read-only+nosuid+nodev
};

struct mount_step {
  mount_op op = mount_op::make_dir;
  const char* what = "";  ///< for setup-error messages (sandbox paths)
  const char* source = nullptr;
  const char* target = nullptr;
  const char* fstype = nullptr;
  unsigned long flags = 0;  ///< mount flags; for bind_readonly the MS_REMOUNT fallback flags
  const char* data = nullptr;
  std::size_t size = 0;
  unsigned mode = 0;
  bool optional = false;  ///< ENOENT (missing source or target) is not an error
};

/// What of the host goes into every sandbox; probed once (lstat/readlink/statvfs).
struct rootfs_layout {
  enum class kind : unsigned char { directory, file, symlink };
  struct entry {
    kind type = kind::directory;
    std::string path;         ///< same path on the host and in the sandbox
    std::string link_target;  ///< for symlinks: recreated, not bound
    unsigned long remount_flags = 0;
  };
  /// Existing host directory the child mounts its setup tmpfs on (in its own mount ns).
  std::string setup_base;
  std::vector<entry> entries;
  std::vector<std::string> dev_nodes;  ///< names under /dev, bound from the host
  std::string runner_dir;              ///< host directory → /opt/runner (may be empty)
  unsigned long runner_remount_flags = 0;
};

/// Probes the host. On failure (no /usr, runner_dir missing, ...) sets *error.
rootfs_layout probe_rootfs_layout(const std::string& runner_dir, std::string* error);

/// Sizes and names that vary per sandbox.
struct rootfs_options {
  std::uint64_t workspace_bytes = 0;  ///< /home/user and /tmp, each (0 = tmpfs default)
  std::uint64_t shm_bytes = 0;        ///< /dev/shm
  std::string hostname;               ///< for /etc/hosts
  unsigned sandbox_uid = 1000;
  unsigned sandbox_gid = 1000;
};

/// The steps for one sandbox. Owns every string the steps point to; not copyable
/// (the pointers would dangle), movable (deque elements do not relocate).
class rootfs_plan {
 public:
  rootfs_plan(const rootfs_layout& layout, const rootfs_options& options);
  rootfs_plan(rootfs_plan&&) = default;
  rootfs_plan& operator=(rootfs_plan&&) = default;
  rootfs_plan(const rootfs_plan&) = delete;
  rootfs_plan& operator=(const rootfs_plan&) = delete;

  const mount_step* steps() const noexcept { return steps_.data(); }
  std::size_t size() const noexcept { return steps_.size(); }

 private:
  const char* keep(std::string s);
  void make_dirs(const std::string& sandbox_path, unsigned mode);
  void add(mount_step step) { steps_.push_back(step); }

  std::deque<std::string> strings_;
  std::vector<std::string> made_dirs_;
  std::vector<mount_step> steps_;
};

}  // namespace codeexec::sandbox
