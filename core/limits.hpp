// Per-execution resource limits: server-wide defaults and maximums in the config,
// optional overrides in a request's "limits" object.
#pragma once

#include <cstdint>

namespace codeexec {

struct resource_limits {
  std::uint64_t memory_bytes = 512ull << 20;    ///< whole process tree, swap included
  std::uint64_t pids = 128;                     ///< tasks in the tree
  std::uint64_t workspace_bytes = 64ull << 20;  ///< size of /home/user and of /tmp
  std::uint64_t file_size_bytes = 64ull << 20;  ///< largest file a process may write
  std::uint64_t open_files = 256;               ///< per process
  std::uint64_t output_bytes = 16ull << 20;     ///< kept per stream (stdout, stderr)
  std::uint64_t cpu_ms = 0;                     ///< CPU time of the tree; 0: the timeout
};

}  // namespace codeexec
