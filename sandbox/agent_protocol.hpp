// The agent channel of a persistent sandbox (launch_spec::persistent): one
// SOCK_SEQPACKET socketpair between the service and the sandbox's init (pid 1).
//
// Every message is one record: a fixed 24-byte `agent_message` header in host byte
// order (both ends run on the same machine), then, for SPAWN only, a payload of
// NUL-terminated strings. SEQPACKET keeps records whole, so neither side needs framing.
//
//   host → init  SPAWN    slot, detail = argc, envc, payload = workdir\0 argv…\0 env…\0
//                         ("K=V"), SCM_RIGHTS = exactly kSpawnFdCount fds: the runner's
//                         fds 0..4, then the write end of its setup-error pipe (CLOEXEC:
//                         EOF at execve = started, else one line "sandbox setup failed:
//                         <step>: <reason> (<ENAME>)").
//   host → init  SIGNAL   slot, value = signo, detail = 1: to the runner's process group
//                         (a runner is its own session and group leader).
//   init → host  SPAWNED  slot, value = pid inside the sandbox, or -errno when the init
//                         could not fork (it then wrote the reason to the setup-error pipe).
//   init → host  EXITED   slot, value = exit code as a non-persistent init would exit with
//                         (0-255, 128 + N for signal N), detail = N when killed by signal
//                         N, else 0. The init frees the slot and SIGKILLs the runner's
//                         process group (what it left running) before it sends this.
//
// The init ignores malformed messages (closing any fds they carried); SPAWN into a busy
// or invalid slot is answered with SPAWNED -EBUSY / -EINVAL. It exits when the host
// shuts its end down (end-of-file), and, as without an agent, when the lifeline closes.
//
// Used by clone_child.cpp, which may only touch stack memory: plain PODs and constants.
#pragma once

#include <cstddef>
#include <cstdint>

namespace codeexec::sandbox::agent {

/// Kernel slots per sandbox; slot 0 is the launch's own runner.
inline constexpr unsigned kMaxKernels = 64;
/// Largest record either side sends (header + payload); the init's receive buffer.
inline constexpr std::size_t kMaxMessageBytes = 64 * 1024;
/// Most argv strings, and most environment strings, of a SPAWN.
inline constexpr unsigned kMaxStrings = 256;
/// fds carried by a SPAWN: runner fds 0..4 and the setup-error pipe's write end.
inline constexpr unsigned kSpawnFdCount = 6;

enum message_type : std::uint32_t {
  kSpawn = 1,
  kSignal = 2,
  kSpawned = 3,
  kExited = 4,
};

inline constexpr std::uint32_t kSignalGroup = 1;  ///< SIGNAL detail: the whole process group

struct agent_message {
  std::uint32_t type = 0;           ///< message_type
  std::uint32_t slot = 0;           ///< kernel slot, < kMaxKernels
  std::int32_t value = 0;           ///< signo / pid or -errno / exit code
  std::uint32_t detail = 0;         ///< kSignalGroup / terminating signal / SPAWN argc
  std::uint32_t envc = 0;           ///< SPAWN: environment strings
  std::uint32_t payload_bytes = 0;  ///< SPAWN: bytes after the header
};
static_assert(sizeof(agent_message) == 24);

}  // namespace codeexec::sandbox::agent
