#include "sandbox/rootfs.hpp"

#include <glob.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace codeexec::sandbox {
namespace {

// Merged-/usr symlinks (or real directories on older layouts).
constexpr const char* kTopLevelLinks[] = {"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"};

// /etc files the interpreters need; the rest of the host's /etc stays invisible.
// /etc/alternatives: /usr/bin entries such as awk, pager and editor point into it.
constexpr const char* kEtcEntries[] = {
    "/etc/ld.so.cache",  "/etc/alternatives", "/etc/localtime",       "/etc/fonts",
    "/etc/matplotlibrc", "/etc/ssl/certs",    "/etc/ssl/openssl.cnf", "/etc/nsswitch.conf"};

// Debian's python3.X reads /etc/python3.X/sitecustomize.py (a symlink from /usr/lib);
// the JDK's lib/jvm.cfg and conf/ and R's ldpaths and Renviron are symlinks into /etc.
constexpr const char* kEtcGlobs[] = {"/etc/python3*", "/etc/java-*-openjdk", "/etc/R"};

constexpr const char* kDevNodes[] = {"null", "zero", "full", "random", "urandom", "tty"};

constexpr unsigned long kNoSuidDev = MS_NOSUID | MS_NODEV;

/// Flags for the MS_REMOUNT fallback of a read-only bind: a mount copied into a user
/// namespace keeps its nosuid/nodev/noexec/atime flags locked, so a remount that
/// dropped one of them would fail with EPERM.
unsigned long readonly_remount_flags(const std::string& host_path) {
  unsigned long flags = MS_REMOUNT | MS_BIND | MS_RDONLY | kNoSuidDev;
  struct statvfs st {};
  if (::statvfs(host_path.c_str(), &st) != 0) return flags;
  if (st.f_flag & ST_NOEXEC) flags |= MS_NOEXEC;
  if (st.f_flag & ST_NOATIME) flags |= MS_NOATIME;
  if (st.f_flag & ST_NODIRATIME) flags |= MS_NODIRATIME;
  if (st.f_flag & ST_RELATIME) flags |= MS_RELATIME;
  if (!(st.f_flag & (ST_NOATIME | ST_RELATIME))) flags |= MS_STRICTATIME;
  return flags;
}

bool add_host_entry(rootfs_layout& layout, const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return false;
  rootfs_layout::entry e;
  e.path = path;
  if (S_ISLNK(st.st_mode)) {
    char buf[4096];
    const ssize_t n = ::readlink(path.c_str(), buf, sizeof buf);
    if (n <= 0 || static_cast<std::size_t>(n) >= sizeof buf) return false;
    e.type = rootfs_layout::kind::symlink;
    e.link_target.assign(buf, static_cast<std::size_t>(n));
  } else if (S_ISDIR(st.st_mode)) {
    e.type = rootfs_layout::kind::directory;
    e.remount_flags = readonly_remount_flags(path);
  } else if (S_ISREG(st.st_mode)) {
    e.type = rootfs_layout::kind::file;
    e.remount_flags = readonly_remount_flags(path);
  } else {
    return false;
  }
  layout.entries.push_back(std::move(e));
  return true;
}

std::string parent_of(const std::string& path) {
  const auto slash = path.rfind('/');
  return slash == 0 || slash == std::string::npos ? std::string("/") : path.substr(0, slash);
}

}  // namespace

rootfs_layout probe_rootfs_layout(const std::string& runner_dir, std::string* error) {
  rootfs_layout layout;
  for (const char* base : {"/tmp", "/mnt", "/var/tmp"}) {
    struct stat st {};
    if (::lstat(base, &st) == 0 && S_ISDIR(st.st_mode)) {
      layout.setup_base = base;
      break;
    }
  }
  if (layout.setup_base.empty()) {
    *error = "no /tmp, /mnt or /var/tmp directory to build the sandbox root on";
    return layout;
  }
  struct stat st {};
  if (::stat("/usr", &st) != 0 || !S_ISDIR(st.st_mode)) {
    *error = "/usr is not a directory";
    return layout;
  }
  add_host_entry(layout, "/usr");
  for (const char* path : kTopLevelLinks) add_host_entry(layout, path);
  for (const char* path : kEtcEntries) add_host_entry(layout, path);
  for (const char* pattern : kEtcGlobs) {
    glob_t g{};
    if (::glob(pattern, GLOB_NOSORT, nullptr, &g) == 0)
      for (std::size_t i = 0; i < g.gl_pathc; ++i) add_host_entry(layout, g.gl_pathv[i]);
    ::globfree(&g);
  }
  for (const char* name : kDevNodes) {
    const std::string path = std::string("/dev/") + name;
    if (::stat(path.c_str(), &st) == 0 && S_ISCHR(st.st_mode)) layout.dev_nodes.push_back(name);
  }
  if (!runner_dir.empty()) {
    if (runner_dir.front() != '/' || ::stat(runner_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      *error = "runner_dir '" + runner_dir + "' is not an absolute path to a directory";
      return layout;
    }
    layout.runner_dir = runner_dir;
    layout.runner_remount_flags = readonly_remount_flags(runner_dir);
  }
  return layout;
}

const char* rootfs_plan::keep(std::string s) {
  strings_.push_back(std::move(s));
  return strings_.back().c_str();
}

/// mkdir -p below the sandbox root, each directory once.
void rootfs_plan::make_dirs(const std::string& sandbox_path, unsigned mode) {
  if (sandbox_path == "/" || sandbox_path.empty()) return;
  if (std::find(made_dirs_.begin(), made_dirs_.end(), sandbox_path) != made_dirs_.end()) return;
  make_dirs(parent_of(sandbox_path), 0755);
  made_dirs_.push_back(sandbox_path);
  add({.op = mount_op::make_dir,
       .what = keep("mkdir " + sandbox_path),
       .target = keep(kSandboxRootInSetup + sandbox_path),
       .mode = mode});
}

rootfs_plan::rootfs_plan(const rootfs_layout& layout, const rootfs_options& options) {
  const std::string root = kSandboxRootInSetup;
  const std::string host = kHostRootInSetup;
  auto size_option = [](std::uint64_t bytes) {
    return bytes ? "size=" + std::to_string(bytes) + "," : std::string();
  };
  auto tmpfs = [&](const std::string& path, const std::string& data, unsigned long flags) {
    add({.op = mount_op::mount,
         .what = keep("mount tmpfs on " + path),
         .source = "tmpfs",
         .target = keep(root + (path == "/" ? "" : path)),
         .fstype = "tmpfs",
         .flags = flags,
         .data = keep(data)});
  };
  auto bind_readonly = [&](const std::string& host_path, const std::string& sandbox_path,
                           unsigned long remount_flags, bool optional) {
    add({.op = mount_op::bind_readonly,
         .what = keep("bind " + sandbox_path + " read-only"),
         .source = keep(host_path),
         .target = keep(root + sandbox_path),
         .flags = remount_flags,
         .optional = optional});
  };
  auto write_file = [&](const std::string& path, std::string content) {
    const char* data = keep(std::move(content));
    add({.op = mount_op::write_file,
         .what = keep("write " + path),
         .source = data,
         .target = keep(root + path),
         .size = std::strlen(data),
         .mode = 0644});
  };

  // The root itself: a small tmpfs holding only mount points and generated files;
  // remounted read-only once everything is in place.
  tmpfs("/", "size=1m,mode=0755", kNoSuidDev);

  // Read-only host pieces: /usr, the merged-/usr symlinks, a few /etc files.
  for (const auto& e : layout.entries) {
    make_dirs(parent_of(e.path), 0755);
    switch (e.type) {
      case rootfs_layout::kind::symlink:
        add({.op = mount_op::make_symlink,
             .what = keep("symlink " + e.path),
             .source = keep(e.link_target),
             .target = keep(root + e.path)});
        break;
      case rootfs_layout::kind::directory:
        make_dirs(e.path, 0755);
        bind_readonly(host + e.path, e.path, e.remount_flags, false);
        break;
      case rootfs_layout::kind::file:
        add({.op = mount_op::make_file,
             .what = keep("create " + e.path),
             .target = keep(root + e.path),
             .mode = 0644});
        bind_readonly(host + e.path, e.path, e.remount_flags, false);
        break;
    }
  }

  // Generated identity files: only `user` (1000), root (0 = host 65534) and nobody.
  const std::string uid = std::to_string(options.sandbox_uid);
  const std::string gid = std::to_string(options.sandbox_gid);
  make_dirs("/etc", 0755);
  write_file("/etc/passwd",
             "root:x:0:0:root:/root:/usr/sbin/nologin\n"
             "user:x:" +
                 uid + ":" + gid +
                 ":user:/home/user:/bin/bash\n"
                 "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n");
  write_file("/etc/group", "root:x:0:\nuser:x:" + gid + ":\nnogroup:x:65534:\n");
  write_file("/etc/hosts",
             "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
             "127.0.1.1\t" +
                 options.hostname + "\n");

  // A fresh procfs of the sandbox's pid namespace; the kernel knobs under it read-only.
  make_dirs("/proc", 0555);
  add({.op = mount_op::mount,
       .what = "mount proc on /proc",
       .source = "proc",
       .target = keep(root + "/proc"),
       .fstype = "proc",
       .flags = kNoSuidDev | MS_NOEXEC});
  for (const char* path : {"/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus"})
    bind_readonly(root + path, path, MS_REMOUNT | MS_BIND | MS_RDONLY | kNoSuidDev | MS_NOEXEC,
                  true);

  // Minimal /dev: a few host character devices bound onto a read-only tmpfs.
  make_dirs("/dev", 0755);
  tmpfs("/dev", "size=64k,mode=0755", MS_NOSUID | MS_NOEXEC);
  for (const auto& name : layout.dev_nodes) {
    const std::string path = "/dev/" + name;
    add({.op = mount_op::make_file,
         .what = keep("create " + path),
         .target = keep(root + path),
         .mode = 0666});
    add({.op = mount_op::mount,
         .what = keep("bind " + path),
         .source = keep(host + path),
         .target = keep(root + path),
         .flags = MS_BIND});
  }
  for (const auto& [name, target] :
       {std::pair{"fd", "/proc/self/fd"}, std::pair{"stdin", "/proc/self/fd/0"},
        std::pair{"stdout", "/proc/self/fd/1"}, std::pair{"stderr", "/proc/self/fd/2"}})
    add({.op = mount_op::make_symlink,
         .what = keep(std::string("symlink /dev/") + name),
         .source = target,
         .target = keep(root + "/dev/" + name)});
  make_dirs("/dev/shm", 01777);
  tmpfs("/dev/shm", size_option(options.shm_bytes) + "mode=1777", kNoSuidDev);
  add({.op = mount_op::mount,
       .what = "remount /dev read-only",
       .target = keep(root + "/dev"),
       .flags = MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NOEXEC});

  // Writable, size-limited: the workspace (owned by user) and /tmp.
  make_dirs("/home/user", 0755);
  tmpfs("/home/user", size_option(options.workspace_bytes) + "mode=0755,uid=" + uid + ",gid=" + gid,
        kNoSuidDev);
  make_dirs("/tmp", 01777);
  tmpfs("/tmp", size_option(options.workspace_bytes) + "mode=1777", kNoSuidDev);

  if (!layout.runner_dir.empty()) {
    make_dirs("/opt/runner", 0755);
    bind_readonly(host + layout.runner_dir, "/opt/runner", layout.runner_remount_flags, false);
  }
}

}  // namespace codeexec::sandbox
