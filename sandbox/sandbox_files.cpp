#include "sandbox/sandbox_files.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <poll.h>
#include <signal.h>
#include <sys/fsuid.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <optional>
#include <system_error>

namespace codeexec::sandbox {
namespace {

/// How everything below a workspace tree is resolved: never above the tree's base
/// (`..`, absolute symlinks), never through /proc magic links, never across a mount.
constexpr std::uint64_t kBeneath = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;

/// openat2 fails with EAGAIN when a rename or mount raced with a RESOLVE_BENEATH walk
/// (and O_NONBLOCK opens with EWOULDBLOCK when code holds a lease): a few retries, then
/// the caller reports "busy".
constexpr int kOpenAttempts = 8;

enum class tree { home, tmp };

constexpr std::string_view kHome = "/home/user";
constexpr std::string_view kTmp = "/tmp";

std::string describe(int err) {
  return std::generic_category().message(err);
}

file_error make_error(file_errc code, std::string message) {
  return {code, std::move(message)};
}

/// A path split into its tree and the components below it. Nothing is normalised: the
/// components (`.`, `..` included) go to the kernel as given.
struct split_path {
  tree where = tree::home;
  std::vector<std::string> parts;

  std::string_view base() const { return where == tree::home ? kHome : kTmp; }
  /// Components [0, n) joined, relative to the tree's base ("." for none).
  std::string relative(std::size_t n) const {
    if (n == 0) return ".";
    std::string out;
    for (std::size_t i = 0; i < n; ++i) {
      if (i) out += '/';
      out += parts[i];
    }
    return out;
  }
  std::string relative() const { return relative(parts.size()); }
  /// Absolute path inside the sandbox of components [0, n), for messages and listings.
  std::string display(std::size_t n) const {
    std::string out(base());
    for (std::size_t i = 0; i < n; ++i) out += '/' + parts[i];
    return out;
  }
  std::string display() const { return display(parts.size()); }
};

file_result<split_path> parse(std::string_view path) {
  if (path.empty()) return make_error(file_errc::invalid_path, "the path is empty");
  if (path.find('\0') != std::string_view::npos)
    return make_error(file_errc::invalid_path, "the path contains a NUL byte");
  if (path.size() >= PATH_MAX)
    return make_error(file_errc::invalid_path,
                      "the path is longer than " + std::to_string(PATH_MAX - 1) + " bytes");
  std::vector<std::string> parts;
  for (std::size_t pos = 0; pos < path.size();) {
    const auto slash = path.find('/', pos);
    const auto end = slash == std::string_view::npos ? path.size() : slash;
    if (end > pos) parts.emplace_back(path.substr(pos, end - pos));
    pos = end + 1;
  }
  split_path out;
  if (path.front() != '/') {
    out.parts = std::move(parts);  // relative to /home/user
  } else if (parts.size() >= 2 && parts[0] == "home" && parts[1] == "user") {
    out.parts.assign(std::make_move_iterator(parts.begin() + 2),
                     std::make_move_iterator(parts.end()));
  } else if (!parts.empty() && parts[0] == "tmp") {
    out.where = tree::tmp;
    out.parts.assign(std::make_move_iterator(parts.begin() + 1),
                     std::make_move_iterator(parts.end()));
  } else {
    return make_error(file_errc::outside_workspace,
                      std::string(path) + ": outside the workspace (/home/user and /tmp)");
  }
  return out;
}

/// The client-facing error for an errno met while resolving or using `what`.
file_error errno_error(int err, const std::string& what) {
  auto error = [&](file_errc code, std::string_view text) {
    return make_error(code, what + ": " + std::string(text));
  };
  switch (err) {
    case ENOENT:
      return error(file_errc::not_found, "no such file or directory");
    case ENOTDIR:
      return error(file_errc::not_a_directory, "not a directory");
    case EXDEV:
      return error(file_errc::outside_workspace, "leads outside the workspace");
    case ELOOP:
      return error(file_errc::invalid_path, "too many levels of symbolic links");
    case EACCES:
    case EPERM:
      return error(file_errc::permission_denied, "permission denied");
    case ETXTBSY:
      return error(file_errc::permission_denied, "file is busy");
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
      return error(file_errc::no_space, "no space left in the workspace");
    case EISDIR:
      return error(file_errc::is_directory, "is a directory");
    case ENAMETOOLONG:
      return error(file_errc::invalid_path, "file name too long");
    case ENXIO:
    case ENODEV:
      return error(file_errc::not_a_file, "not a regular file");
    case EAGAIN:
      return error(file_errc::io_error, "busy, try again");
    case ENOSYS:
      return error(file_errc::io_error, "openat2 is not available (Linux 5.6 or later is needed)");
    default:
      return error(file_errc::io_error, describe(err));
  }
}

/// openat2(dirfd, path) with `resolve`; on failure returns an empty fd and sets *err.
unique_fd open2(int dirfd, const std::string& path, std::uint64_t flags, std::uint64_t mode,
                std::uint64_t resolve, int* err) {
  open_how how{};
  how.flags = flags | O_CLOEXEC;
  how.mode = mode;  // must be 0 unless O_CREAT
  how.resolve = resolve;
  for (int attempt = 0; attempt < kOpenAttempts; ++attempt) {
    const long fd = ::syscall(SYS_openat2, dirfd, path.c_str(), &how, sizeof how);
    if (fd >= 0) return unique_fd(static_cast<int>(fd));
    *err = errno;
    if (*err != EAGAIN && *err != EINTR) break;
  }
  return unique_fd();
}

unique_fd open_beneath(int dirfd, const std::string& path, std::uint64_t flags, int* err,
                       std::uint64_t mode = 0) {
  return open2(dirfd, path, flags, mode, kBeneath, err);
}

file_error gone() {
  return make_error(file_errc::sandbox_gone, "the sandbox has exited");
}

/// Whether the process of `pidfd` still runs: signal 0 fails once it is reaped, and the
/// pidfd turns readable as soon as it exits (a zombie still accepts signal 0).
bool alive(int pidfd) {
  if (::syscall(SYS_pidfd_send_signal, pidfd, 0, nullptr, 0) != 0) return false;
  pollfd pfd{pidfd, POLLIN, 0};
  int ready;
  while ((ready = ::poll(&pfd, 1, 0)) < 0 && errno == EINTR) {
  }
  return ready == 0;
}

/// The base directory of a workspace tree, as the sandbox's init sees it.
file_result<unique_fd> open_tree(pid_t init_pid, int pidfd, tree where) {
  // The init's root is the sandbox's root in the sandbox's mount namespace.
  const std::string root_link = "/proc/" + std::to_string(init_pid) + "/root";
  unique_fd root(::open(root_link.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root) {
    const int err = errno;
    // ENOENT: no such pid any more, or a zombie (its fs is gone).
    if (err == ENOENT || err == ESRCH || !alive(pidfd)) return gone();
    return make_error(file_errc::io_error, "cannot open the sandbox's root: " + describe(err));
  }
  // The tree's base is a mount point (its own tmpfs): crossing into it is intended,
  // but no symlink may be on the way (the root and /home are read-only, so none is).
  int err = 0;
  unique_fd base =
      open2(root.get(), where == tree::home ? "home/user" : "tmp", O_PATH | O_DIRECTORY, 0,
            RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS, &err);
  // Only now: if the init is still alive, `root` was its root (a pid is not reused
  // while its process lives), not that of a process that got the pid after it died.
  if (!alive(pidfd)) return gone();
  const std::string name(where == tree::home ? kHome : kTmp);
  if (!base) return errno_error(err, name);
  struct statfs fs {};
  if (::fstatfs(base.get(), &fs) != 0 || fs.f_type != TMPFS_MAGIC)
    return make_error(file_errc::io_error, name + ": the workspace is not mounted");
  return base;
}

/// Switches the calling thread's filesystem ids to the sandbox user's for one call.
///
/// Why: the workspace tmpfs belongs to the sandbox's user namespace, where host root is
/// not mapped, so the kernel refuses (EOVERFLOW) to create anything there as root. As
/// the sandbox user, what we create is the user's from birth, and the service can do in
/// the workspace exactly what the code can and no more: moving fsuid away from 0 also
/// clears CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_CHOWN... from the effective set until it is
/// moved back. setfsuid/setfsgid act on the calling thread only (glibc does not
/// broadcast them to every thread as it does setuid), so other threads keep root.
class as_user {
 public:
  as_user(uid_t uid, gid_t gid) noexcept
      : old_gid_(static_cast<gid_t>(::setfsgid(gid))),
        old_uid_(static_cast<uid_t>(::setfsuid(uid))),
        // setfsuid(-1) changes nothing and returns the current id: the only way to
        // learn whether the switch took.
        ok_(static_cast<uid_t>(::setfsuid(static_cast<uid_t>(-1))) == uid &&
            static_cast<gid_t>(::setfsgid(static_cast<gid_t>(-1))) == gid) {}
  ~as_user() {
    ::setfsuid(old_uid_);  // back to 0 first: restores the capabilities
    ::setfsgid(old_gid_);
  }
  as_user(const as_user&) = delete;
  as_user& operator=(const as_user&) = delete;

  explicit operator bool() const noexcept { return ok_; }

 private:
  gid_t old_gid_;
  uid_t old_uid_;
  bool ok_;
};

file_error identity_error() {
  return make_error(file_errc::io_error, "cannot switch to the sandbox user's file ids");
}

/// Writes all of `data` (a regular file: no short writes but at ENOSPC/EFBIG); returns 0
/// or the errno.
int write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) return EIO;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return 0;
}

bool same_inode(const struct stat& a, const struct stat& b) {
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

struct dir_closer {
  void operator()(DIR* d) const noexcept { ::closedir(d); }
};

entry_type type_of(mode_t mode) {
  if (S_ISREG(mode)) return entry_type::file;
  if (S_ISDIR(mode)) return entry_type::dir;
  if (S_ISLNK(mode)) return entry_type::symlink;
  return entry_type::other;
}

}  // namespace

std::string_view to_string(file_errc code) noexcept {
  switch (code) {
    case file_errc::invalid_path:
      return "invalid_path";
    case file_errc::outside_workspace:
      return "outside_workspace";
    case file_errc::not_found:
      return "not_found";
    case file_errc::not_a_file:
      return "not_a_file";
    case file_errc::not_a_directory:
      return "not_a_directory";
    case file_errc::is_directory:
      return "is_directory";
    case file_errc::too_large:
      return "too_large";
    case file_errc::no_space:
      return "no_space";
    case file_errc::permission_denied:
      return "permission_denied";
    case file_errc::sandbox_gone:
      return "sandbox_gone";
    case file_errc::io_error:
      return "io_error";
  }
  return "io_error";
}

sandbox_files::sandbox_files(pid_t init_pid, unique_fd pidfd, std::uint32_t host_uid,
                             std::uint32_t host_gid)
    : init_pid_(init_pid), pidfd_(std::move(pidfd)), host_uid_(host_uid), host_gid_(host_gid) {}

file_result<std::string> sandbox_files::read(std::string_view path, std::uint64_t max_bytes) const {
  auto parsed = parse(path);
  if (!parsed) return parsed.error();
  const split_path& p = parsed.value();
  auto base = open_tree(init_pid_, pidfd_.get(), p.where);
  if (!base) return base.error();
  const as_user user(host_uid_, host_gid_);
  if (!user) return identity_error();

  // O_NONBLOCK: opening a FIFO planted by the code must not wait for a writer (nor an
  // open wait for a lease break); the fstat below refuses it before any read.
  int err = 0;
  unique_fd fd =
      open_beneath(base.value().get(), p.relative(), O_RDONLY | O_NONBLOCK | O_NOCTTY, &err);
  if (!fd) return errno_error(err, p.display());
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return errno_error(errno, p.display());
  if (S_ISDIR(st.st_mode))
    return make_error(file_errc::not_a_file, p.display() + ": is a directory");
  if (!S_ISREG(st.st_mode))
    return make_error(file_errc::not_a_file, p.display() + ": not a regular file");
  auto too_large = [&] {
    return make_error(file_errc::too_large,
                      p.display() + ": larger than " + std::to_string(max_bytes) + " bytes");
  };
  if (static_cast<std::uint64_t>(st.st_size) > max_bytes) return too_large();

  // The code may still be appending: read to EOF, but never past max_bytes.
  std::string out;
  out.reserve(static_cast<std::size_t>(st.st_size));
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_error(errno, p.display());
    }
    if (n == 0) break;
    if (out.size() + static_cast<std::uint64_t>(n) > max_bytes) return too_large();
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

file_result<std::uint64_t> sandbox_files::write(std::string_view path,
                                                std::string_view data) const {
  auto parsed = parse(path);
  if (!parsed) return parsed.error();
  const split_path& p = parsed.value();
  if (p.parts.empty()) return make_error(file_errc::is_directory, p.display() + ": is a directory");
  auto base = open_tree(init_pid_, pidfd_.get(), p.where);
  if (!base) return base.error();
  const as_user user(host_uid_, host_gid_);
  if (!user) return identity_error();
  const int base_fd = base.value().get();

  // mkdir -p of the parents. Each prefix is resolved from the base (so a symlink the
  // code planted among them is followed only while it stays inside the tree), and a
  // missing directory is made in the beneath-resolved parent, then owned by the user.
  int err = 0;
  unique_fd dir = open_beneath(base_fd, ".", O_PATH | O_DIRECTORY, &err);
  if (!dir) return errno_error(err, p.display(0));
  for (std::size_t i = 0; i + 1 < p.parts.size(); ++i) {
    unique_fd next = open_beneath(base_fd, p.relative(i + 1), O_PATH | O_DIRECTORY, &err);
    if (!next && err == ENOENT) {
      if (::mkdirat(dir.get(), p.parts[i].c_str(), 0755) == 0) {
        unique_fd made = open_beneath(dir.get(), p.parts[i],
                                      O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK, &err);
        if (!made) return errno_error(err, p.display(i + 1));
        // Already the user's (as_user); the fchown is a no-op kept in case it was not.
        // fchmod: the service's umask must not decide what the code may do.
        if (::fchown(made.get(), host_uid_, host_gid_) != 0 || ::fchmod(made.get(), 0755) != 0)
          return errno_error(errno, p.display(i + 1));
      } else if (errno != EEXIST) {  // EEXIST: made concurrently, or a dangling symlink
        return errno_error(errno, p.display(i + 1));
      }
      next = open_beneath(base_fd, p.relative(i + 1), O_PATH | O_DIRECTORY, &err);
    }
    if (!next) return errno_error(err, p.display(i + 1));
    dir = std::move(next);
  }

  // The file itself: never through a symlink (O_NOFOLLOW), never a FIFO or device
  // (O_NONBLOCK: a FIFO without a reader fails with ENXIO instead of waiting; with a
  // reader the fstat refuses it). Open an existing file first so that we know whether
  // we created it.
  const std::string& name = p.parts.back();
  constexpr std::uint64_t kWrite = O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY;
  unique_fd fd;
  bool created = false;
  for (int attempt = 0; attempt < kOpenAttempts && !fd; ++attempt) {
    fd = open_beneath(dir.get(), name, kWrite | O_TRUNC, &err);
    if (fd || err != ENOENT) break;
    fd = open_beneath(dir.get(), name, kWrite | O_CREAT | O_EXCL, &err, 0644);
    created = static_cast<bool>(fd);
    if (!fd && err != EEXIST) break;  // EEXIST: created meanwhile, open it again
  }
  if (!fd) {
    if (err == ELOOP)
      return make_error(file_errc::not_a_file,
                        p.display() + ": is a symbolic link (not followed when writing)");
    return errno_error(err, p.display());
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return errno_error(errno, p.display());
  if (!S_ISREG(st.st_mode))
    return make_error(file_errc::not_a_file, p.display() + ": not a regular file");
  // An existing file keeps its owner and mode (we could open it, so the user may write
  // it; as the user we could not chown it anyway).
  if (created && (::fchown(fd.get(), host_uid_, host_gid_) != 0 || ::fchmod(fd.get(), 0644) != 0))
    return errno_error(errno, p.display());

  if (const int werr = write_all(fd.get(), data); werr != 0) {
    // A partial file is worse than none: drop it, if the name still is our file.
    if (::ftruncate(fd.get(), 0) != 0) {
      // Nothing more to do: the unlink below frees the space anyway.
    }
    struct stat now {};
    if (::fstatat(dir.get(), name.c_str(), &now, AT_SYMLINK_NOFOLLOW) == 0 && same_inode(now, st))
      ::unlinkat(dir.get(), name.c_str(), 0);
    return errno_error(werr, p.display());
  }
  return static_cast<std::uint64_t>(data.size());
}

file_result<dir_listing> sandbox_files::list(std::string_view path) const {
  auto parsed = parse(path);
  if (!parsed) return parsed.error();
  const split_path& p = parsed.value();
  auto base = open_tree(init_pid_, pidfd_.get(), p.where);
  if (!base) return base.error();
  const as_user user(host_uid_, host_gid_);
  if (!user) return identity_error();

  int err = 0;
  unique_fd fd = open_beneath(base.value().get(), p.relative(),
                              O_RDONLY | O_DIRECTORY | O_NONBLOCK | O_NOCTTY, &err);
  if (!fd) return errno_error(err, p.display());
  std::unique_ptr<DIR, dir_closer> dir(::fdopendir(fd.get()));
  if (!dir) return errno_error(errno, p.display());
  fd.release();  // owned by `dir` now
  const int dfd = ::dirfd(dir.get());

  dir_listing out;
  const std::string prefix = p.display() + '/';
  for (;;) {
    errno = 0;  // readdir reports errors only through errno
    const dirent* e = ::readdir(dir.get());
    if (!e) {
      if (errno != 0) return errno_error(errno, p.display());
      break;
    }
    const std::string_view name = e->d_name;
    if (name == "." || name == "..") continue;
    if (out.entries.size() == kMaxListEntries) {
      out.truncated = true;
      break;
    }
    // One component, not followed: cannot leave the directory.
    struct stat st {};
    if (::fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;  // removed meanwhile
    out.entries.push_back({.name = std::string(name),
                           .path = prefix + std::string(name),
                           .type = type_of(st.st_mode),
                           .size = static_cast<std::uint64_t>(st.st_size),
                           .mode = static_cast<std::uint32_t>(st.st_mode & 07777)});
  }
  std::sort(out.entries.begin(), out.entries.end(),
            [](const dir_entry& a, const dir_entry& b) { return a.name < b.name; });
  return out;
}

file_result<stdin_fifo> sandbox_files::make_stdin_fifo() const {
  auto base = open_tree(init_pid_, pidfd_.get(), tree::tmp);
  if (!base) return base.error();
  const as_user user(host_uid_, host_gid_);
  if (!user) return identity_error();
  const int tmp = base.value().get();
  for (int attempt = 0; attempt < kOpenAttempts; ++attempt) {
    // Unpredictable, so the code cannot plant something under the name beforehand.
    unsigned char random[8];
    if (::getrandom(random, sizeof random, 0) != static_cast<ssize_t>(sizeof random))
      return make_error(file_errc::io_error, "getrandom: " + describe(errno));
    std::string name = ".stdin-";
    for (unsigned char b : random) {
      name += "0123456789abcdef"[b >> 4];
      name += "0123456789abcdef"[b & 15];
    }
    const std::string shown = std::string(kTmp) + '/' + name;
    // Made as the user, so the code could swap it before our open: the fstat below
    // checks it is still a FIFO, and any other swap only touches the code's own stdin.
    if (::mknodat(tmp, name.c_str(), S_IFIFO | 0600, 0) != 0) {
      if (errno == EEXIST) continue;
      return errno_error(errno, shown);
    }
    auto fail = [&](file_error error) {
      ::unlinkat(tmp, name.c_str(), 0);
      return error;
    };
    // O_RDWR: opening does not wait for a reader, and the runner's open(O_RDONLY) will
    // not wait for a writer; once the host closes it, the runner reads EOF.
    int err = 0;
    unique_fd fd = open_beneath(tmp, name, O_RDWR | O_NONBLOCK | O_NOFOLLOW, &err);
    if (!fd) return fail(errno_error(err, shown));
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return fail(errno_error(errno, shown));
    if (!S_ISFIFO(st.st_mode)) return fail(make_error(file_errc::io_error, shown + ": not a FIFO"));
    if (::fchown(fd.get(), host_uid_, host_gid_) != 0 || ::fchmod(fd.get(), 0600) != 0)
      return fail(errno_error(errno, shown));
    return stdin_fifo{shown, std::move(fd)};
  }
  return make_error(file_errc::io_error, "cannot find a free name for a FIFO in /tmp");
}

void sandbox_files::remove(std::string_view path) const {
  auto parsed = parse(path);
  if (!parsed || parsed.value().parts.empty()) return;
  const split_path& p = parsed.value();
  auto base = open_tree(init_pid_, pidfd_.get(), p.where);
  if (!base) return;
  const as_user user(host_uid_, host_gid_);
  if (!user) return;
  int err = 0;
  unique_fd dir =
      open_beneath(base.value().get(), p.relative(p.parts.size() - 1), O_PATH | O_DIRECTORY, &err);
  // One component in a beneath-resolved directory: unlinks a symlink, never its target.
  if (dir) ::unlinkat(dir.get(), p.parts.back().c_str(), 0);
}

}  // namespace codeexec::sandbox
