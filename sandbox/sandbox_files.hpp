// Files of a live sandbox, seen from the host: read, write, list, and stdin FIFOs.
//
// The service runs as host root, the sandbox's code is hostile: it may plant symlinks,
// FIFOs, deep trees or race renames in its workspace. Every access therefore goes
// through the sandbox init's root (/proc/<init>/root, i.e. the sandbox's own mount
// namespace), into one of the two workspace trees (/home/user, /tmp) only, and from
// there the kernel resolves the rest with openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS
// | RESOLVE_NO_XDEV): `..`, absolute symlinks, magic links and mounts cannot lead out.
// Nothing here depends on CAF or RESTinio.
#pragma once

#include "sandbox/unique_fd.hpp"

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace codeexec::sandbox {

enum class file_errc {
  invalid_path,       ///< empty, NUL byte, too long, symlink loop
  outside_workspace,  ///< not under /home/user or /tmp, or resolving it leaves the tree
  not_found,
  not_a_file,  ///< read/write of a directory, FIFO, socket, device or a symlink (write)
  not_a_directory,
  is_directory,  ///< write to a directory
  too_large,     ///< read: larger than max_bytes
  no_space,      ///< write: the workspace (tmpfs size) is full
  permission_denied,
  sandbox_gone,  ///< the sandbox's init has exited
  io_error,
};

/// Stable lowercase name of a code ("not_found"), for logs and API error bodies.
std::string_view to_string(file_errc code) noexcept;

struct file_error {
  file_errc code = file_errc::io_error;
  std::string message;  ///< client-facing, e.g. "/home/user/x: no such file or directory"
};

/// A value or a file_error (a tiny std::expected).
template <class T>
class file_result {
 public:
  file_result(T value) : v_(std::in_place_index<0>, std::move(value)) {}
  file_result(file_error error) : v_(std::in_place_index<1>, std::move(error)) {}

  bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }
  /// The value; throws std::bad_variant_access on an error.
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  /// The error; throws std::bad_variant_access on a value.
  const file_error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, file_error> v_;
};

enum class entry_type { file, dir, symlink, other };

struct dir_entry {
  std::string name;
  std::string path;  ///< absolute inside the sandbox, e.g. "/home/user/data/a.csv"
  entry_type type = entry_type::other;
  std::uint64_t size = 0;  ///< bytes (for a symlink: length of its target)
  std::uint32_t mode = 0;  ///< permission bits (st_mode & 07777)
};

struct dir_listing {
  std::vector<dir_entry> entries;  ///< sorted by name
  /// More than kMaxListEntries entries: `entries` holds kMaxListEntries of them (the
  /// first read from the directory, then sorted, not the first by name).
  bool truncated = false;
};

/// A FIFO in the sandbox's /tmp for a runner's stdin. The host holds it O_RDWR, so the
/// runner's open(O_RDONLY) never blocks; once `writer` is closed (and nothing else in
/// the sandbox holds it for writing) the runner reads EOF. The runner is expected to
/// open and unlink it; sandbox_files::remove() cleans up when it never did.
struct stdin_fifo {
  std::string path;  ///< inside the sandbox: /tmp/.stdin-<16 hex>
  unique_fd writer;  ///< O_RDWR | O_NONBLOCK | O_CLOEXEC: poll for POLLOUT when full
};

/// Access to the files of one live sandbox. Thread-safe: every call opens its own
/// descriptors (nothing of the sandbox is cached: a held fd would pin its mounts).
///
/// Paths: a relative path is relative to /home/user; an absolute path must lie under
/// /home/user or /tmp. Only splitting on '/' is done here; `..`, symlinks and the rest
/// are left to the kernel, which refuses any that leave the tree.
class sandbox_files {
 public:
  static constexpr std::size_t kMaxListEntries = 10'000;

  /// Files of the sandbox whose init is `init_pid` (host pid), given a dup of its pidfd
  /// and the sandbox user's host uid/gid (owner of everything written).
  sandbox_files(pid_t init_pid, unique_fd pidfd, std::uint32_t host_uid, std::uint32_t host_gid);

  /// Contents of a regular file (symlinks inside the tree are followed) of at most
  /// `max_bytes` bytes. Never blocks on a FIFO.
  file_result<std::string> read(std::string_view path, std::uint64_t max_bytes) const;
  /// Creates or truncates a regular file (not through a symlink) with `data`, creating
  /// missing parent directories; all owned by the sandbox user (files 0644, dirs 0755).
  /// Returns the bytes written. On no_space the partial file is removed.
  file_result<std::uint64_t> write(std::string_view path, std::string_view data) const;
  /// The entries of a directory (symlinks inside the tree are followed for `path`
  /// itself, never for the entries).
  file_result<dir_listing> list(std::string_view path) const;
  /// Creates a fresh FIFO in the sandbox's /tmp, owned by the sandbox user, mode 0600.
  file_result<stdin_fifo> make_stdin_fifo() const;
  /// Unlinks a non-directory (best effort: errors are ignored).
  void remove(std::string_view path) const;

 private:
  pid_t init_pid_;
  unique_fd pidfd_;
  std::uint32_t host_uid_;
  std::uint32_t host_gid_;
};

}  // namespace codeexec::sandbox
