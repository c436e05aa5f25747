#include "sandbox/cgroups.hpp"

#include "sandbox/unique_fd.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

namespace codeexec::sandbox {
namespace {

using namespace std::chrono_literals;

std::string errno_text(int err) {
  return std::strerror(err);
}

/// Writes `value` with one write(2), as cgroupfs expects. Returns 0 or an errno.
int write_text(const std::string& path, std::string_view value) {
  unique_fd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return errno;
  const ssize_t n = ::write(fd.get(), value.data(), value.size());
  if (n < 0) return errno;
  return static_cast<std::size_t>(n) == value.size() ? 0 : EIO;
}

bool exists(const std::string& path) {
  return ::access(path.c_str(), F_OK) == 0;
}

/// mkdir that accepts an existing directory. Returns 0 or an errno.
int make_dir(const std::string& path) {
  if (::mkdir(path.c_str(), 0755) == 0 || errno == EEXIST) return 0;
  return errno;
}

/// The whole content of an open cgroup file, read from its start again: kernfs
/// regenerates it for a read at offset 0.
std::optional<std::string> reread(const unique_fd& fd) {
  if (!fd) return std::nullopt;
  std::string text;
  char buf[4096];
  off_t offset = 0;
  for (;;) {
    const ssize_t n = ::pread(fd.get(), buf, sizeof buf, offset);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return std::nullopt;
    if (n == 0) break;
    text.append(buf, static_cast<std::size_t>(n));
    offset += n;
  }
  return text;
}

std::optional<std::string> read_text(const std::string& path) {
  return reread(unique_fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC)));
}

/// "key value" lines (memory.events, pids.events, cpu.stat, memory.oom_control).
std::uint64_t read_keyed(const unique_fd& fd, std::string_view key) {
  const auto text = reread(fd);
  if (!text) return 0;
  std::istringstream in(*text);
  std::string k;
  std::uint64_t v = 0;
  while (in >> k >> v)
    if (k == key) return v;
  return 0;
}

std::uint64_t read_number(const unique_fd& fd) {
  const auto text = reread(fd);
  if (!text) return 0;
  try {
    return std::stoull(*text);
  } catch (...) {
    return 0;
  }
}

/// A cgroup file kept open for reading; an invalid fd if it cannot be opened (it then
/// reads as 0, as a missing file always did).
unique_fd open_for_reading(const std::string& path) {
  return unique_fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
}

bool has_word(std::string_view list, std::string_view word, char sep) {
  std::size_t pos = 0;
  while (pos <= list.size()) {
    std::size_t end = list.find(sep, pos);
    if (end == std::string_view::npos) end = list.size();
    std::string_view item = list.substr(pos, end - pos);
    while (!item.empty() && (item.back() == '\n' || item.back() == ' ')) item.remove_suffix(1);
    if (item == word) return true;
    pos = end + 1;
  }
  return false;
}

/// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string unescape_mountinfo(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      const char a = s[i + 1], b = s[i + 2], c = s[i + 3];
      if (a >= '0' && a <= '7' && b >= '0' && b <= '7' && c >= '0' && c <= '7') {
        out.push_back(static_cast<char>((a - '0') * 64 + (b - '0') * 8 + (c - '0')));
        i += 3;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

struct cgroup_mount {
  dev_t dev = 0;     ///< major:minor of the mounted filesystem
  std::string root;  ///< the cgroup path mounted there
  std::string mount_point;
  std::string fstype;  ///< "cgroup" or "cgroup2"
  std::string super_options;
};

std::vector<cgroup_mount> cgroup_mounts() {
  std::vector<cgroup_mount> mounts;
  const auto text = read_text("/proc/self/mountinfo");
  if (!text) return mounts;
  std::istringstream lines(*text);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream fields(line);
    std::vector<std::string> f;
    std::string w;
    while (fields >> w) f.push_back(w);
    const auto dash = std::find(f.begin(), f.end(), "-");
    if (f.size() < 5 || dash == f.end() || std::distance(dash, f.end()) < 4) continue;
    const std::string& fstype = *(dash + 1);
    if (fstype != "cgroup" && fstype != "cgroup2") continue;
    unsigned major = 0, minor = 0;
    if (std::sscanf(f[2].c_str(), "%u:%u", &major, &minor) != 2) continue;
    cgroup_mount m{makedev(major, minor), unescape_mountinfo(f[3]), unescape_mountinfo(f[4]),
                   fstype, *(dash + 3)};
    // mountinfo also lists mounts hidden under later ones (e.g. a cgroup2 mounted over
    // /sys/fs/cgroup): only the one visible at its mount point is usable.
    struct stat st {};
    if (::stat(m.mount_point.c_str(), &st) != 0 || st.st_dev != m.dev) continue;
    mounts.push_back(std::move(m));
  }
  return mounts;
}

/// Our own cgroup path in hierarchy `key`: "" for v2 ("0::/path"), else a controller.
std::optional<std::string> own_cgroup_path(std::string_view controller) {
  const auto text = read_text("/proc/self/cgroup");
  if (!text) return std::nullopt;
  std::istringstream lines(*text);
  std::string line;
  while (std::getline(lines, line)) {
    const auto c1 = line.find(':');
    const auto c2 = line.find(':', c1 + 1);
    if (c1 == std::string::npos || c2 == std::string::npos) continue;
    const std::string_view controllers = std::string_view(line).substr(c1 + 1, c2 - c1 - 1);
    const std::string path = line.substr(c2 + 1);
    if (controller.empty() ? (line.compare(0, c1, "0") == 0 && controllers.empty())
                           : has_word(controllers, controller, ','))
      return path;
  }
  return std::nullopt;
}

/// The v2 leaf the service moves itself into when it must enable controllers (see
/// enable_v2_controller); the service's cgroup is then that leaf's parent.
std::string service_leaf_name(const std::string& prefix) {
  return prefix + "-service";
}

/// Host directory of our own cgroup in the hierarchy of `controller` ("" = cgroup2).
std::optional<std::string> own_cgroup_dir(std::string_view controller, const std::string& prefix) {
  auto own = own_cgroup_path(controller);
  if (!own) return std::nullopt;
  const std::string leaf = "/" + service_leaf_name(prefix);
  if (controller.empty() && own->size() > leaf.size() &&
      own->compare(own->size() - leaf.size(), leaf.size(), leaf) == 0)
    own->resize(own->size() - leaf.size());
  for (const auto& m : cgroup_mounts()) {
    const bool match = controller.empty()
                           ? m.fstype == "cgroup2"
                           : m.fstype == "cgroup" && has_word(m.super_options, controller, ',');
    if (!match) continue;
    // The mount shows the subtree below m.root; our path must be inside it.
    if (m.root == "/") return m.mount_point + (*own == "/" ? "" : *own);
    if (own->compare(0, m.root.size(), m.root) == 0 &&
        (own->size() == m.root.size() || (*own)[m.root.size()] == '/'))
      return m.mount_point + own->substr(m.root.size());
  }
  return std::nullopt;
}

/// Creates and removes `<parent>/sbx-<probe_id>`, writing `file` = `value` in it.
int probe_writable(const std::string& parent, const std::string& probe_id, const std::string& file,
                   std::string_view value) {
  if (int err = make_dir(parent)) return err;
  const std::string dir = parent + "/sbx-" + probe_id;
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return errno;
  int err = file.empty() ? 0 : write_text(dir + "/" + file, value);
  ::rmdir(dir.c_str());
  return err;
}

/// Enables `controller` for children of `dir`; on EBUSY (processes in `dir`, the v2
/// no-internal-process rule) moves them into `dir/<leaf_name>` first (if given).
int enable_v2_controller(const std::string& dir, const std::string& controller,
                         const std::string& leaf_name, std::string* note) {
  if (has_word(read_text(dir + "/cgroup.subtree_control").value_or(""), controller, ' ')) return 0;
  int err = write_text(dir + "/cgroup.subtree_control", "+" + controller);
  if (err != EBUSY || leaf_name.empty()) return err;
  const std::string leaf = dir + "/" + leaf_name;
  if (int e = make_dir(leaf)) return e;
  for (int round = 0; round < 3; ++round) {  // processes may fork while we move them
    std::istringstream pids(read_text(dir + "/cgroup.procs").value_or(""));
    std::string pid;
    while (pids >> pid) write_text(leaf + "/cgroup.procs", pid);  // gone pids: ignore
    err = write_text(dir + "/cgroup.subtree_control", "+" + controller);
    if (err != EBUSY) break;
  }
  if (err == 0) *note = " (moved the service's processes into " + leaf + ")";
  return err;
}

void prepare_v2(cgroup_layout& layout, const std::string& prefix, const std::string& probe_id) {
  const auto own = own_cgroup_dir("", prefix);
  if (!own) {
    layout.v2_detail = "cgroup2 is not mounted";
    return;
  }
  const std::string parent = *own + "/" + prefix;
  if (int err = probe_writable(parent, probe_id, "", "")) {
    layout.v2_detail = "cgroup2 at " + *own + " is not writable: " + errno_text(err);
    return;
  }
  // cgroup.kill only exists in non-root cgroups; look at a probe child.
  {
    const std::string dir = parent + "/sbx-" + probe_id;
    if (::mkdir(dir.c_str(), 0755) == 0 || errno == EEXIST) {
      layout.v2_kill = exists(dir + "/cgroup.kill");
      ::rmdir(dir.c_str());
    }
  }
  layout.v2_parent = parent;
  layout.v2_detail = "tracking cgroup " + parent + "/sbx-<id>" +
                     (layout.v2_kill ? ", cgroup.kill" : ", no cgroup.kill (kernel < 5.14)");

  const std::string available = read_text(*own + "/cgroup.controllers").value_or("");
  std::string note;
  for (const char* controller : {"memory", "pids"}) {
    std::string& detail =
        std::string_view(controller) == "memory" ? layout.memory_detail : layout.pids_detail;
    if (!has_word(available, controller, ' ')) {
      detail = std::string("v2 ") + controller + ": not in " + *own + "/cgroup.controllers";
      continue;
    }
    int err = enable_v2_controller(*own, controller, service_leaf_name(prefix), &note);
    if (err == 0) err = enable_v2_controller(parent, controller, "", &note);
    const std::string file = std::string_view(controller) == "memory" ? "memory.max" : "pids.max";
    if (err == 0) err = probe_writable(parent, probe_id, file, "max");
    if (err != 0) {
      detail = std::string("v2 ") + controller + " not usable: " + errno_text(err);
      continue;
    }
    (std::string_view(controller) == "memory" ? layout.v2_memory : layout.v2_pids) = true;
    detail = std::string("v2 ") + file + (file == "memory.max" ? " + memory.swap.max=0" : "") +
             " in " + parent + "/sbx-<id>" + note;
  }
}

void prepare_v1(cgroup_layout& layout, const std::string& prefix, const std::string& probe_id) {
  if (!layout.v2_memory) {
    std::string why = layout.memory_detail.empty() ? "" : layout.memory_detail + "; ";
    const auto own = own_cgroup_dir("memory", prefix);
    if (!own) {
      layout.memory_detail = why + "no v1 memory hierarchy";
    } else {
      const std::string parent = *own + "/" + prefix;
      if (int err = probe_writable(parent, probe_id, "memory.limit_in_bytes", "268435456")) {
        layout.memory_detail = why + "v1 memory at " + *own + " not writable: " + errno_text(err);
      } else {
        layout.v1_memory_parent = parent;
        layout.v1_memsw = exists(*own + "/memory.memsw.limit_in_bytes");
        layout.memory_detail =
            "v1 memory.limit_in_bytes" +
            std::string(layout.v1_memsw ? " + memory.memsw.limit_in_bytes" : "") + " in " + parent +
            "/sbx-<id>";
      }
    }
  }
  if (!layout.v2_pids) {
    std::string why = layout.pids_detail.empty() ? "" : layout.pids_detail + "; ";
    const auto own = own_cgroup_dir("pids", prefix);
    if (!own) {
      layout.pids_detail = why + "no v1 pids hierarchy";
    } else {
      const std::string parent = *own + "/" + prefix;
      if (int err = probe_writable(parent, probe_id, "pids.max", "max")) {
        layout.pids_detail = why + "v1 pids at " + *own + " not writable: " + errno_text(err);
      } else {
        layout.v1_pids_parent = parent;
        layout.pids_detail = "v1 pids.max in " + parent + "/sbx-<id>";
      }
    }
  }
}

/// SIGKILLs every process listed in `dir`/cgroup.procs (v1 has no cgroup.kill). A pidfd
/// plus a second membership check avoids signalling a recycled pid.
void kill_listed_processes(const std::string& dir) {
  std::istringstream pids(read_text(dir + "/cgroup.procs").value_or(""));
  pid_t pid = 0;
  while (pids >> pid) {
    unique_fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    if (!pidfd) continue;
    std::istringstream again(read_text(dir + "/cgroup.procs").value_or(""));
    pid_t p = 0;
    bool still_member = false;
    while (again >> p) still_member |= p == pid;
    if (still_member) ::syscall(SYS_pidfd_send_signal, pidfd.get(), SIGKILL, nullptr, 0);
  }
}

/// rmdir with retries; kills what is still inside between attempts.
bool remove_dir_retrying(const std::string& dir, std::chrono::steady_clock::time_point deadline) {
  auto pause = 500us;
  for (;;) {
    if (::rmdir(dir.c_str()) == 0 || errno == ENOENT) return true;
    if (errno != EBUSY && errno != EAGAIN) return false;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    if (exists(dir + "/cgroup.kill"))
      write_text(dir + "/cgroup.kill", "1");
    else
      kill_listed_processes(dir);
    std::this_thread::sleep_for(pause);
    pause = std::min<std::chrono::microseconds>(pause * 2, 20ms);
  }
}

}  // namespace

cgroup_layout prepare_cgroup_layout(const std::string& prefix, const std::string& probe_id) {
  cgroup_layout layout;
  prepare_v2(layout, prefix, probe_id);
  prepare_v1(layout, prefix, probe_id);
  if (!layout.limits_memory()) layout.memory_detail += "; falling back to RLIMIT_AS";
  if (!layout.limits_pids()) layout.pids_detail += "; RLIMIT_NPROC only";
  return layout;
}

std::vector<std::string> existing_cgroup_parents(const std::string& prefix) {
  std::vector<std::string> parents;
  for (std::string_view controller : {"", "memory", "pids"}) {
    const auto own = own_cgroup_dir(controller, prefix);
    if (!own) continue;
    const std::string parent = *own + "/" + prefix;
    struct stat st {};
    if (::stat(parent.c_str(), &st) == 0 && S_ISDIR(st.st_mode) &&
        std::find(parents.begin(), parents.end(), parent) == parents.end())
      parents.push_back(parent);
  }
  return parents;
}

sandbox_cgroups& sandbox_cgroups::operator=(sandbox_cgroups&& other) noexcept {
  if (this != &other) {
    remove(200ms);
    files_ = std::move(other.files_);
    dirs_ = std::move(other.dirs_);
    other.dirs_.clear();
    v2_dir_ = std::move(other.v2_dir_);
    v2_kill_ = other.v2_kill_;
    memory_dir_ = std::move(other.memory_dir_);
    memory_v2_ = other.memory_v2_;
    pids_dir_ = std::move(other.pids_dir_);
  }
  return *this;
}

sandbox_cgroups::~sandbox_cgroups() {
  remove(200ms);
}

sandbox_cgroups sandbox_cgroups::create(const cgroup_layout& layout, const std::string& id,
                                        std::uint64_t memory_bytes, std::uint64_t pids,
                                        std::string* error) {
  sandbox_cgroups cg;
  const std::string name = "/sbx-" + id;
  auto make = [&](const std::string& parent) -> std::optional<std::string> {
    const std::string dir = parent + name;
    // An operator may have removed the (empty) <prefix> directory: recreate it once.
    if (::mkdir(dir.c_str(), 0755) != 0 &&
        !(errno == ENOENT && make_dir(parent) == 0 && ::mkdir(dir.c_str(), 0755) == 0)) {
      *error = "cgroup mkdir " + dir + ": " + errno_text(errno);
      return std::nullopt;
    }
    cg.dirs_.push_back(dir);
    return dir;
  };
  auto set = [&](const std::string& file, const std::string& value, bool optional) {
    const int err = write_text(file, value);
    if (err == 0 || (optional && err == ENOENT)) return true;
    *error = "cgroup write " + value + " > " + file + ": " + errno_text(err);
    return false;
  };
  const std::string mem = memory_bytes ? std::to_string(memory_bytes) : "";
  const std::string max_pids = pids ? std::to_string(pids) : "";

  if (!layout.v2_parent.empty()) {
    auto dir = make(layout.v2_parent);
    if (!dir) return {};
    cg.v2_dir_ = *dir;
    cg.v2_kill_ = layout.v2_kill;
    if (layout.v2_memory) {
      cg.memory_dir_ = *dir;
      cg.memory_v2_ = true;
      // "whole tree, swap included": no swap at all, so memory.max is the total.
      if (!mem.empty() &&
          (!set(*dir + "/memory.max", mem, false) || !set(*dir + "/memory.swap.max", "0", true)))
        return {};
    }
    if (layout.v2_pids) {
      cg.pids_dir_ = *dir;
      if (!max_pids.empty() && !set(*dir + "/pids.max", max_pids, false)) return {};
    }
  }
  if (!layout.v2_memory && !layout.v1_memory_parent.empty()) {
    auto dir = make(layout.v1_memory_parent);
    if (!dir) return {};
    cg.memory_dir_ = *dir;
    // limit_in_bytes first: memsw must never be below it.
    if (!mem.empty() &&
        (!set(*dir + "/memory.limit_in_bytes", mem, false) ||
         (layout.v1_memsw && !set(*dir + "/memory.memsw.limit_in_bytes", mem, false))))
      return {};
  }
  if (!layout.v2_pids && !layout.v1_pids_parent.empty()) {
    auto dir = make(layout.v1_pids_parent);
    if (!dir) return {};
    cg.pids_dir_ = *dir;
    if (!max_pids.empty() && !set(*dir + "/pids.max", max_pids, false)) return {};
  }
  cg.open_usage_files();
  return cg;
}

bool sandbox_cgroups::add_process(pid_t pid, bool already_in_v2, std::string* error) const {
  const std::string value = std::to_string(pid);
  for (const auto& dir : dirs_) {
    if (already_in_v2 && dir == v2_dir_) continue;
    if (int err = write_text(dir + "/cgroup.procs", value)) {
      *error = "cgroup join " + dir + ": " + errno_text(err);
      return false;
    }
  }
  return true;
}

bool sandbox_cgroups::kill() const noexcept {
  if (v2_dir_.empty() || !v2_kill_) return false;
  return write_text(v2_dir_ + "/cgroup.kill", "1") == 0;
}

void sandbox_cgroups::open_usage_files() {
  if (!memory_dir_.empty()) {
    files_.peak = open_for_reading(memory_dir_ +
                                   (memory_v2_ ? "/memory.peak" : "/memory.max_usage_in_bytes"));
    files_.oom =
        open_for_reading(memory_dir_ + (memory_v2_ ? "/memory.events" : "/memory.oom_control"));
  }
  if (!pids_dir_.empty()) files_.pids_events = open_for_reading(pids_dir_ + "/pids.events");
  // cpu.stat's usage_usec is a core v2 file: present even without the cpu controller.
  if (!v2_dir_.empty()) files_.cpu_stat = open_for_reading(v2_dir_ + "/cpu.stat");
}

usage sandbox_cgroups::read_usage() const {
  usage u;
  u.peak_memory_bytes = read_number(files_.peak);
  u.oom_kills = read_keyed(files_.oom, "oom_kill");
  u.pids_limit_hits = read_keyed(files_.pids_events, "max");
  u.cpu_ns = read_cpu_ns();
  return u;
}

std::uint64_t sandbox_cgroups::read_cpu_ns() const {
  return read_keyed(files_.cpu_stat, "usage_usec") * 1000;
}

bool sandbox_cgroups::remove(std::chrono::milliseconds budget) noexcept {
  files_ = {};
  if (dirs_.empty()) return true;
  try {
    const auto deadline = std::chrono::steady_clock::now() + budget;
    std::vector<std::string> left;
    for (const auto& dir : dirs_)
      if (!remove_dir_retrying(dir, deadline)) left.push_back(dir);
    dirs_ = std::move(left);
  } catch (...) {
    return false;  // allocation failure: keep the dirs for sweep_stale
  }
  return dirs_.empty();
}

std::vector<std::string> sweep_sandbox_cgroups(
    const std::string& prefix, const std::function<bool(std::string_view name)>& is_stale) {
  std::set<std::string> removed;
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  for (const auto& parent : existing_cgroup_parents(prefix)) {
    std::vector<std::string> names;
    if (DIR* d = ::opendir(parent.c_str())) {
      while (const dirent* e = ::readdir(d)) {
        const std::string_view name = e->d_name;
        if (e->d_type == DT_DIR && name.substr(0, 4) == "sbx-" && is_stale(name))
          names.emplace_back(name);
      }
      ::closedir(d);
    }
    for (const auto& name : names) {
      const std::string dir = parent + "/" + name;
      if (exists(dir + "/cgroup.kill"))
        write_text(dir + "/cgroup.kill", "1");
      else
        kill_listed_processes(dir);
      if (remove_dir_retrying(dir, deadline)) removed.insert(name);
    }
  }
  return {removed.begin(), removed.end()};
}

}  // namespace codeexec::sandbox
