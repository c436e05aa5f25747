// /proc/<pid>/stat, read by the service (sandbox ids, scrub ranges) and by a zygote
// (its own scrub ranges).
#pragma once

#include "sandbox/clone_child.hpp"

#include <sys/types.h>

#include <string>
#include <vector>

namespace codeexec::sandbox {

/// Fields after "(comm)" of /proc/<pid>/stat (pid 0: this process); token i is field
/// i + 3. Empty when the process is gone.
std::vector<std::string> stat_fields(pid_t pid);

/// This process's argv and environ strings (fields 48-51 of /proc/self/stat), which
/// every sandbox's init wipes in its copy: /proc/1/cmdline is world-readable.
void find_scrub_ranges(memory_range (&ranges)[2]);

}  // namespace codeexec::sandbox
