#include "actors/local_backend.hpp"

#include "actors/local_sandbox.hpp"
#include "core/log.hpp"

#include <caf/all.hpp>

#include <filesystem>
#include <stdexcept>

namespace codeexec {
namespace fs = std::filesystem;

std::string find_runner_dir(const config& cfg) {
  if (!cfg.runner_dir.empty()) return cfg.runner_dir;
  std::error_code ec;
  const auto exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    for (const auto& candidate :
         {exe.parent_path() / "runners", exe.parent_path() / "../lib/codeexec/runners"}) {
      if (fs::exists(candidate / "python_runner.py", ec)) return fs::weakly_canonical(candidate);
    }
  }
  return CODEEXEC_SOURCE_RUNNER_DIR;
}

local_backend::local_backend(const config& cfg) : cfg_(cfg), runner_dir_(find_runner_dir(cfg)) {
  std::error_code ec;
  if (!fs::exists(fs::path{runner_dir_} / "python_runner.py", ec))
    throw std::runtime_error("the sandbox runners are missing from " + runner_dir_ +
                             "; set RUNNER_DIR to the directory holding python_runner.py");
  sandbox::launcher_config lc;
  lc.runner_dir = runner_dir_;
  lc.uid_base = cfg.sandbox_uid_base;
  lc.uid_count = cfg.max_sandboxes;
  const auto removed = sandbox::sweep_stale(lc);
  if (removed > 0) log::warn("removed sandboxes left by a previous run", {{"count", removed}});
  auto made = sandbox::make_launcher(lc);
  if (!made.value) throw std::runtime_error(made.error);
  launcher_ = std::move(made.value);
  for (const auto& cap : launcher_->capabilities())
    log::info("sandbox capability",
              {{"mechanism", cap.name}, {"available", cap.available}, {"detail", cap.detail}});
  log::info("local sandbox backend ready", {{"runnerDir", runner_dir_}});
}

sandbox::launch_spec local_backend::runner_spec(language lang,
                                                const resource_limits& limits) const {
  sandbox::launch_spec spec;
  spec.lim.memory_bytes = limits.memory_bytes;
  spec.lim.pids = limits.pids;
  spec.lim.workspace_bytes = limits.workspace_bytes;
  spec.lim.file_size_bytes = limits.file_size_bytes;
  spec.lim.open_files = limits.open_files;
  spec.env = {
      {"PATH", "/usr/local/bin:/usr/bin:/bin"},
      {"HOME", "/home/user"},
      {"USER", "user"},
      {"LOGNAME", "user"},
      {"LANG", "C.UTF-8"},
      {"TERM", "dumb"},
      {"MPLBACKEND", "Agg"},
      {"MPLCONFIGDIR", "/tmp/.matplotlib"},
  };
  switch (lang) {
    case language::python:
      spec.argv = {"/usr/bin/python3", "-I", "-u", "/opt/runner/python_runner.py"};
      break;
    case language::javascript: {
      // V8 must fail with its own heap error before the memory cgroup kills it.
      const auto heap_mib = std::max<std::uint64_t>(64, (limits.memory_bytes >> 20) * 3 / 4);
      spec.argv = {"/usr/bin/node", "--max-old-space-size=" + std::to_string(heap_mib),
                   "/opt/runner/node_runner.js"};
      break;
    }
    case language::bash:
      spec.argv = {"/usr/bin/python3", "-I", "-u", "/opt/runner/bash_runner.py"};
      break;
  }
  return spec;
}

sandbox_factory local_backend::factory() {
  return [this](caf::actor_system& sys, language lang,
                const resource_limits& limits) -> sandbox_actor {
    return sys.spawn(local_sandbox, launcher_.get(), runner_spec(lang, limits),
                     limits.output_bytes);
  };
}

nlohmann::json local_backend::describe() const {
  nlohmann::json caps = nlohmann::json::array();
  for (const auto& cap : launcher_->capabilities())
    caps.push_back({{"mechanism", cap.name}, {"available", cap.available}, {"detail", cap.detail}});
  return {{"backend", "local"}, {"capabilities", caps}, {"live", launcher_->live()}};
}

}  // namespace codeexec
