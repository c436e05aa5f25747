// The sandbox's seccomp policy (sandbox-design.md §7 and Appendix A): a default-allow
// deny-list with argument filters, pinned to the native architecture.
//
// It is compiled ONCE in the parent with libseccomp and exported as a raw BPF program;
// the clone child only has to hand the ready program to the kernel (libseccomp
// allocates, so it must not be called between clone and execve).
#pragma once

#include <linux/filter.h>

#include <string>
#include <vector>

namespace codeexec::sandbox {

class seccomp_program {
 public:
  /// Builds the Appendix A deny-list. On failure returns an empty program and sets *error.
  static seccomp_program build_deny_list(std::string* error);

  bool empty() const noexcept { return instructions_.empty(); }
  std::size_t size() const noexcept { return instructions_.size(); }

  /// The program in the form prctl(PR_SET_SECCOMP) / seccomp(2) expect. Points into
  /// this object; valid as long as it lives and is not moved.
  const sock_fprog* fprog() const noexcept { return &fprog_; }

  seccomp_program() = default;
  seccomp_program(seccomp_program&& other) noexcept { *this = std::move(other); }
  seccomp_program& operator=(seccomp_program&& other) noexcept;
  seccomp_program(const seccomp_program&) = delete;
  seccomp_program& operator=(const seccomp_program&) = delete;

 private:
  void point_fprog() noexcept;

  std::vector<sock_filter> instructions_;
  sock_fprog fprog_{};
};

}  // namespace codeexec::sandbox
