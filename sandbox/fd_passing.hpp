// Sending fds over a unix socket (SCM_RIGHTS): the sandbox agent's SPAWN requests
// (sandbox_channel.cpp) and the zygote's requests and replies (zygote.cpp,
// zygote_server.cpp).
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <span>

namespace codeexec::sandbox {

/// The most fds one send_with_fds carries.
inline constexpr std::size_t kMaxSentFds = 16;

/// One sendmsg(2) of `size` bytes with `fds` attached (none: no control message).
/// Returns what sendmsg returned, with its errno; EINVAL for more than kMaxSentFds.
inline ssize_t send_with_fds(int sock, const void* bytes, std::size_t size,
                             std::span<const int> fds, int flags) {
  if (fds.size() > kMaxSentFds) {
    errno = EINVAL;
    return -1;
  }
  iovec iov{const_cast<void*>(bytes), size};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxSentFds)] = {};
  if (!fds.empty()) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  return ::sendmsg(sock, &msg, flags);
}

}  // namespace codeexec::sandbox
