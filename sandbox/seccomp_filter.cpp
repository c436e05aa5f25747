#include "sandbox/seccomp_filter.hpp"

#include "sandbox/unique_fd.hpp"

#include <sched.h>
#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

namespace codeexec::sandbox {
namespace {

struct seccomp_ctx_deleter {
  void operator()(void* ctx) const noexcept { seccomp_release(ctx); }
};
using seccomp_ctx = std::unique_ptr<void, seccomp_ctx_deleter>;

// Syscalls that only serve to escape or to reach kernel surface the payload never needs
// (mounts, namespaces, tracing, keyrings, bpf, io_uring, modules, clocks, NUMA, ...).
// Names unknown on this architecture resolve to a negative pseudo number and are skipped.
constexpr const char* kDeniedWithEperm[] = {"mount",
                                            "umount2",
                                            "pivot_root",
                                            "chroot",
                                            "mount_setattr",
                                            "move_mount",
                                            "open_tree",
                                            "fsopen",
                                            "fsconfig",
                                            "fsmount",
                                            "fspick",
                                            "unshare",
                                            "setns",
                                            "ptrace",
                                            "process_vm_readv",
                                            "process_vm_writev",
                                            "kcmp",
                                            "pidfd_getfd",
                                            "process_madvise",
                                            "keyctl",
                                            "add_key",
                                            "request_key",
                                            "bpf",
                                            "perf_event_open",
                                            "userfaultfd",
                                            "io_uring_setup",
                                            "io_uring_enter",
                                            "io_uring_register",
                                            "kexec_load",
                                            "kexec_file_load",
                                            "init_module",
                                            "finit_module",
                                            "delete_module",
                                            "reboot",
                                            "swapon",
                                            "swapoff",
                                            "acct",
                                            "quotactl",
                                            "quotactl_fd",
                                            "syslog",
                                            "lookup_dcookie",
                                            "open_by_handle_at",
                                            "name_to_handle_at",
                                            "fanotify_init",
                                            "settimeofday",
                                            "clock_settime",
                                            "clock_adjtime",
                                            "adjtimex",
                                            "vhangup",
                                            "iopl",
                                            "ioperm",
                                            "uselib",
                                            "ustat",
                                            "sysfs",
                                            "_sysctl",
                                            "nfsservctl",
                                            "get_kernel_syms",
                                            "query_module",
                                            "create_module",
                                            "move_pages",
                                            "migrate_pages",
                                            "mbind",
                                            "set_mempolicy"};

// clone flags that would create a namespace; CLONE_NEWTIME has no glibc macro everywhere.
constexpr unsigned long kNamespaceCloneFlags[] = {CLONE_NEWNS,     CLONE_NEWUSER, CLONE_NEWPID,
                                                  CLONE_NEWNET,    CLONE_NEWIPC,  CLONE_NEWUTS,
                                                  CLONE_NEWCGROUP, 0x80 /* CLONE_NEWTIME */};

// socket() families above this are all refused by one >= rule.
constexpr int kFirstUncheckedFamily = 17;

int add_rule(void* ctx, std::uint32_t action, int syscall_nr, const scmp_arg_cmp* cmp,
             unsigned int cmp_count) {
  return seccomp_rule_add_array(ctx, action, syscall_nr, cmp_count, cmp);
}

std::string describe(const char* what, int rc) {
  return std::string("seccomp: ") + what + ": " + std::strerror(-rc);
}

}  // namespace

seccomp_program& seccomp_program::operator=(seccomp_program&& other) noexcept {
  instructions_ = std::move(other.instructions_);
  other.point_fprog();
  point_fprog();
  return *this;
}

void seccomp_program::point_fprog() noexcept {
  fprog_.len = static_cast<unsigned short>(instructions_.size());
  fprog_.filter = instructions_.empty() ? nullptr : instructions_.data();
}

seccomp_program seccomp_program::build_deny_list(std::string* error) {
  seccomp_program program;
  seccomp_ctx ctx(seccomp_init(SCMP_ACT_ALLOW));
  if (!ctx) {
    *error = "seccomp: seccomp_init failed";
    return program;
  }
  // i386/x32 entry points would bypass the x86_64 syscall numbers below: kill instead.
  if (int rc = seccomp_attr_set(ctx.get(), SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS)) {
    *error = describe("set bad-arch action", rc);
    return program;
  }

  for (const char* name : kDeniedWithEperm) {
    const int nr = seccomp_syscall_resolve_name(name);
    if (nr < 0) continue;
    if (int rc = add_rule(ctx.get(), SCMP_ACT_ERRNO(EPERM), nr, nullptr, 0)) {
      *error = describe(name, rc);
      return program;
    }
  }

  // clone3 passes its flags in memory, which BPF cannot inspect: ENOSYS makes glibc
  // fall back to clone(2), whose flags are checked below (Docker does the same).
  if (int rc = add_rule(ctx.get(), SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), nullptr, 0)) {
    *error = describe("clone3", rc);
    return program;
  }
  for (unsigned long flag : kNamespaceCloneFlags) {
    const scmp_arg_cmp cmp{0, SCMP_CMP_MASKED_EQ, flag, flag};
    if (int rc = add_rule(ctx.get(), SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), &cmp, 1)) {
      *error = describe("clone namespace flag", rc);
      return program;
    }
  }

  // Only unix, inet, inet6 and netlink sockets. AF_VSOCK in particular is not
  // network-namespaced and reaches the VM host.
  for (int family = 0; family < kFirstUncheckedFamily; ++family) {
    if (family == AF_UNIX || family == AF_INET || family == AF_INET6 || family == AF_NETLINK)
      continue;
    const scmp_arg_cmp cmp{0, SCMP_CMP_EQ, static_cast<scmp_datum_t>(family), 0};
    if (int rc = add_rule(ctx.get(), SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socket), &cmp, 1)) {
      *error = describe("socket family", rc);
      return program;
    }
  }
  {
    const scmp_arg_cmp cmp{0, SCMP_CMP_GE, static_cast<scmp_datum_t>(kFirstUncheckedFamily), 0};
    if (int rc = add_rule(ctx.get(), SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socket), &cmp, 1)) {
      *error = describe("socket families >= 17", rc);
      return program;
    }
  }

  // Terminal input injection.
  for (unsigned long request :
       {static_cast<unsigned long>(TIOCSTI), static_cast<unsigned long>(TIOCLINUX)}) {
    const scmp_arg_cmp cmp{1, SCMP_CMP_MASKED_EQ, 0xffffffffUL, request};
    if (int rc = add_rule(ctx.get(), SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), &cmp, 1)) {
      *error = describe("ioctl", rc);
      return program;
    }
  }

  // libseccomp 2.5 can only export to an fd; a memfd keeps it off the filesystem.
  unique_fd memfd(memfd_create("seccomp-bpf", MFD_CLOEXEC));
  if (!memfd) {
    *error = std::string("seccomp: memfd_create: ") + std::strerror(errno);
    return program;
  }
  if (int rc = seccomp_export_bpf(ctx.get(), memfd.get())) {
    *error = describe("export BPF", rc);
    return program;
  }
  const off_t bytes = lseek(memfd.get(), 0, SEEK_END);
  if (bytes <= 0 || bytes % static_cast<off_t>(sizeof(sock_filter)) != 0 ||
      bytes / static_cast<off_t>(sizeof(sock_filter)) > BPF_MAXINSNS) {
    *error = "seccomp: exported BPF program has an unexpected size";
    return program;
  }
  std::vector<sock_filter> instructions(static_cast<std::size_t>(bytes) / sizeof(sock_filter));
  if (pread(memfd.get(), instructions.data(), static_cast<std::size_t>(bytes), 0) != bytes) {
    *error = "seccomp: short read of the exported BPF program";
    return program;
  }
  program.instructions_ = std::move(instructions);
  program.point_fprog();
  return program;
}

}  // namespace codeexec::sandbox
