#include "sandbox/runner_stage.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <vector>

namespace codeexec::sandbox {
namespace fs = std::filesystem;
namespace {

constexpr const char* kInstancePrefix = "instance-";
constexpr const char* kLockName = ".lock";
constexpr const char* kSweepLockName = ".sweep.lock";

std::string mode_text(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

/// An flock held for the life of the object (the descriptor's).
unique_fd lock_file(const std::string& path, int operation) {
  unique_fd fd(::open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd) return fd;
  if (::flock(fd.get(), operation) != 0) fd.reset();
  return fd;
}

[[noreturn]] void fail(const std::string& what, const std::string& path, int err) {
  throw std::runtime_error(what + " " + path + ": " + std::strerror(err));
}

/// mkdir -p, new directories 0755 (whatever the umask).
void make_searchable_dirs(const fs::path& dir) {
  fs::path at;
  for (const auto& part : dir) {
    at /= part;
    if (::mkdir(at.c_str(), 0755) == 0) {
      ::chmod(at.c_str(), 0755);
    } else if (errno != EEXIST) {
      fail("cannot create the runtime directory", at.string(), errno);
    }
  }
}

/// Copy of `from` into `to` that the sandbox's user can read: root-owned (we are),
/// directories 0755, files 0644 (0755 where the source is executable).
void copy_readable(const fs::path& from, const fs::path& to) {
  fs::copy(from, to, fs::copy_options::recursive);
  ::chmod(to.c_str(), 0755);
  for (const auto& entry : fs::recursive_directory_iterator(to)) {
    const auto& p = entry.path();
    if (entry.is_symlink()) continue;
    const bool executable = entry.is_directory() || (fs::status(p).permissions() &
                                                     fs::perms::owner_exec) != fs::perms::none;
    ::chmod(p.c_str(), executable ? 0755 : 0644);
  }
}

/// Removes the instance directories whose lock nobody holds. The caller holds the
/// sweep lock.
int remove_unlocked_instances(const std::string& runtime_dir) {
  std::vector<fs::path> stale;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(runtime_dir, ec)) {
    const auto name = entry.path().filename().string();
    if (name.rfind(kInstancePrefix, 0) != 0 || !entry.is_directory(ec) || entry.is_symlink(ec))
      continue;
    // Held by a live service, or not a lock we can take: not ours to remove.
    if (lock_file((entry.path() / kLockName).string(), LOCK_EX | LOCK_NB))
      stale.push_back(entry.path());
  }
  int removed = 0;
  for (const auto& dir : stale)
    if (fs::remove_all(dir, ec) > 0 && !ec) ++removed;
  return removed;
}

}  // namespace

std::string unreachable_by_others(const std::string& path) {
  std::error_code ec;
  const fs::path target = fs::canonical(path, ec);
  if (ec) return path + " does not exist or cannot be resolved (" + ec.message() + ")";
  fs::path at = "/";
  struct stat st {};
  for (auto it = std::next(target.begin());; ++it) {
    if (::stat(at.c_str(), &st) != 0) return at.string() + ": " + std::strerror(errno);
    const bool last = it == target.end();
    if (S_ISDIR(st.st_mode) && (st.st_mode & S_IXOTH) == 0)
      return at.string() + " is mode " + mode_text(st.st_mode) + ": others cannot search it";
    if (last) {
      if ((st.st_mode & S_IROTH) == 0)
        return at.string() + " is mode " + mode_text(st.st_mode) + ": others cannot read it";
      return {};
    }
    at /= *it;
  }
}

runner_stage::runner_stage(const std::string& source, const std::string& runtime_dir) {
  if (runtime_dir.empty() || runtime_dir.front() != '/')
    throw std::runtime_error("RUNTIME_DIR must be an absolute path, not '" + runtime_dir + "'");
  make_searchable_dirs(runtime_dir);
  if (auto obstacle = unreachable_by_others(runtime_dir); !obstacle.empty())
    throw std::runtime_error("RUNTIME_DIR " + runtime_dir +
                             " cannot hold the sandbox runners: " + obstacle +
                             ". The sandboxes' users must be able to reach it: choose a directory "
                             "whose parents are all searchable by others (the default is "
                             "/run/codeexec), or chmod o+x the directory named.");
  // Creating an instance and sweeping exclude each other: a sweep must never see an
  // instance directory between its creation and its lock.
  const auto sweep_lock = lock_file(runtime_dir + "/" + kSweepLockName, LOCK_EX);
  if (!sweep_lock) fail("cannot lock", runtime_dir + "/" + kSweepLockName, errno);
  remove_unlocked_instances(runtime_dir);
  std::string templ = runtime_dir + "/" + kInstancePrefix + "XXXXXX";
  if (::mkdtemp(templ.data()) == nullptr) fail("cannot create a directory in", runtime_dir, errno);
  instance_ = templ;
  ::chmod(instance_.c_str(), 0755);
  lock_ = lock_file(instance_ + "/" + kLockName, LOCK_EX | LOCK_NB);
  if (!lock_) {
    const int err = errno;
    std::error_code ec;
    fs::remove_all(instance_, ec);
    fail("cannot lock", instance_ + "/" + kLockName, err);
  }
  runners_ = instance_ + "/runners";
  try {
    copy_readable(source, runners_);
  } catch (const std::exception& e) {
    std::error_code ec;
    fs::remove_all(instance_, ec);
    throw std::runtime_error("cannot copy the sandbox runners from " + source + " to " + runners_ +
                             ": " + e.what());
  }
}

runner_stage::~runner_stage() {
  std::error_code ec;
  fs::remove_all(instance_, ec);  // while still holding the lock: no sweep races us
}

int runner_stage::sweep_stale(const std::string& runtime_dir) {
  const auto sweep_lock = lock_file(runtime_dir + "/" + kSweepLockName, LOCK_EX);
  return sweep_lock ? remove_unlocked_instances(runtime_dir) : 0;
}

}  // namespace codeexec::sandbox
