#include "actors/local_backend.hpp"

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

namespace {

/// The zygote's module: next to the binary (the build tree), or in
/// ../lib/codeexec (an installed tree); empty if neither has it.
std::string find_zygote_library() {
  std::error_code ec;
  const auto exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return {};
  for (const auto& candidate : {exe.parent_path() / "libcodeexec_zygote.so",
                                exe.parent_path() / "../lib/codeexec/libcodeexec_zygote.so"})
    if (fs::exists(candidate, ec)) return fs::weakly_canonical(candidate).string();
  return {};
}

}  // namespace

local_backend::local_backend(const config& cfg) : cfg_(cfg) {
  const auto source_dir = find_runner_dir(cfg);
  std::error_code ec;
  if (!fs::exists(fs::path{source_dir} / "python_runner.py", ec))
    throw std::runtime_error("the sandbox runners are missing from " + source_dir +
                             "; set RUNNER_DIR to the directory holding python_runner.py");
  runners_ = std::make_unique<sandbox::runner_stage>(source_dir, cfg.runtime_dir);
  const auto& runner_dir = runners_->path();
  sandbox::launcher_config lc;
  lc.runner_dir = runner_dir;
  lc.uid_base = cfg.sandbox_uid_base;
  lc.uid_count = cfg.max_sandboxes;
  catalog_ = std::make_shared<runner_catalog>(runner_dir, cfg.languages);
  if (cfg.zygote && catalog_->available(language::python)) {
    const auto library = find_zygote_library();
    if (library.empty()) {
      log::warn(
          "ZYGOTE=auto but libcodeexec_zygote.so is not next to the binary nor in "
          "../lib/codeexec: every Python kernel is exec'd");
    } else {
      const auto python =
          std::get<sandbox::runner_spec>(catalog_->spec(language::python, cfg.default_limits));
      sandbox::zygote_config z;
      z.runner_argv = python.argv;
      z.env = python.env;
      z.script = runner_dir + "/python_zygote.py";
      z.library = library;
      z.runner_dir = runner_dir;
      lc.zygote = std::move(z);
    }
  }
  const auto removed = sandbox::sweep_stale(lc);
  if (removed > 0) log::warn("removed sandboxes left by a previous run", {{"count", removed}});
  auto made = sandbox::make_launcher(lc);
  if (!made.value) throw std::runtime_error(made.error);
  launcher_ = std::move(made.value);
  for (const auto& cap : launcher_->capabilities())
    log::info("sandbox capability",
              {{"mechanism", cap.name}, {"available", cap.available}, {"detail", cap.detail}});
  for (const auto& entry : catalog_->describe())
    if (!entry["available"].get<bool>())
      log::info("language not available",
                {{"language", entry["language"]}, {"reason", entry["reason"]}});
  env_.launcher = launcher_.get();
  env_.catalog = catalog_;
  env_.max_contexts = cfg.max_contexts_per_sandbox;
  env_.interrupt_grace = cfg.interrupt_grace;
  log::info("local sandbox backend ready", {{"runnerDir", source_dir}, {"stagedAt", runner_dir}});
}

local_backend::~local_backend() = default;

void local_backend::start_pool(caf::actor_system& system) {
  if (cfg_.warm_pool_size == 0 || cfg_.warm_pool_languages.empty()) return;
  pool_ = std::make_unique<warm_pool>(
      system, env_, cfg_.default_limits, cfg_.warm_pool_size, cfg_.warm_pool_languages,
      // The pool never takes the last free slot: a sandbox asked for now always fits.
      [this] { return launcher_->live() + 1 < cfg_.max_sandboxes; });
}

void local_backend::drain_pool() {
  if (pool_) pool_->drain();
}

bool local_backend::poolable(const resource_limits& limits) const {
  const auto& d = cfg_.default_limits;
  return limits.memory_bytes == d.memory_bytes && limits.pids == d.pids &&
         limits.workspace_bytes == d.workspace_bytes &&
         limits.file_size_bytes == d.file_size_bytes && limits.open_files == d.open_files;
}

bool local_backend::has_room(language lang, const resource_limits& limits) const {
  if (launcher_->live() < cfg_.max_sandboxes) return true;
  return pool_ && poolable(limits) && pool_->has(lang);
}

std::optional<sandbox_actor> local_backend::evict_pooled(language keep) {
  if (!pool_) return std::nullopt;
  return pool_->evict(keep);
}

sandbox_actor local_backend::acquire(caf::actor_system& system, language lang,
                                     const resource_limits& limits) {
  if (pool_ && poolable(limits))
    if (auto sandbox = pool_->take(lang)) return std::move(*sandbox);
  return spawn_local_sandbox(system, env_, lang, limits);
}

std::optional<std::string> local_backend::unavailable(language lang) const {
  if (catalog_->available(lang)) return std::nullopt;
  return std::get<std::string>(catalog_->spec(lang, cfg_.default_limits));
}

nlohmann::json local_backend::describe() const {
  nlohmann::json caps = nlohmann::json::array();
  for (const auto& cap : launcher_->capabilities())
    caps.push_back({{"mechanism", cap.name}, {"available", cap.available}, {"detail", cap.detail}});
  nlohmann::json out = {{"backend", "local"},
                        {"capabilities", caps},
                        {"languages", catalog_->describe()},
                        {"live", launcher_->live()}};
  if (auto z = launcher_->zygote_state())
    out["zygote"] = {
        {"profile", "python-kernel"}, {"state", z->state},         {"pid", z->pid},
        {"forks", z->forks},          {"fallbacks", z->fallbacks}, {"starts", z->starts},
        {"lastError", z->last_error}};
  return out;
}

}  // namespace codeexec
