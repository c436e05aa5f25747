// The service ↔ zygote protocol (zygote.hpp): one SOCK_SEQPACKET socketpair, fixed
// binary records, fds by SCM_RIGHTS. The zygote never sees user input: only sizes,
// limits, a hostname and the runner's environment, all from the service.
#pragma once

#include <cstddef>
#include <cstdint>

namespace codeexec::sandbox::zygote_wire {

inline constexpr std::uint32_t kMagic = 0x7a79676f;  // "zygo"
inline constexpr unsigned kMaxRlimits = 16;
inline constexpr unsigned kMaxEnv = 256;
inline constexpr std::size_t kMaxMessageBytes = 64 * 1024;

/// Request flags.
inline constexpr std::uint32_t kPersistent = 1;  ///< an agent fd follows the runner fds
inline constexpr std::uint32_t kIntoCgroup = 2;  ///< a cgroup2 directory fd comes last

/// fds of a request, in this order: release read end, lifeline read end, setup-error
/// write end, the runner's fds 0-4, then the agent's end (kPersistent) and the cgroup
/// directory (kIntoCgroup).
inline constexpr unsigned kFixedFds = 8;
inline constexpr unsigned kMaxFds = kFixedFds + 2;

struct rlimit_entry {
  std::int32_t resource = 0;
  std::uint32_t reserved = 0;
  std::uint64_t soft = 0;
  std::uint64_t hard = 0;
};

/// One sandbox to fork; followed by `envc` NUL-terminated "NAME=value" strings.
struct request {
  std::uint32_t magic = kMagic;
  std::uint32_t flags = 0;
  std::uint64_t workspace_bytes = 0;
  std::uint64_t shm_bytes = 0;
  std::uint32_t rlimit_count = 0;
  std::uint32_t envc = 0;
  rlimit_entry rlimits[kMaxRlimits];
  char hostname[72] = {};  ///< NUL-terminated
};

/// The zygote's answer; a forked sandbox's pidfd travels with it.
struct reply {
  std::int32_t pid = 0;         ///< > 0, or -errno
  std::uint32_t in_cgroup = 0;  ///< placed by CLONE_INTO_CGROUP
  char error[240] = {};         ///< why not, when pid <= 0
};

/// The zygote's first message: its interpreter has loaded its profile.
struct ready {
  std::uint32_t magic = kMagic;
  std::uint32_t pid = 0;
};

}  // namespace codeexec::sandbox::zygote_wire
