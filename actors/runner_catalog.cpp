#include "actors/runner_catalog.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>

namespace codeexec {
namespace fs = std::filesystem;

namespace {

constexpr const char* python = "/usr/bin/python3";
constexpr const char* node = "/usr/bin/node";
constexpr const char* rscript = "/usr/bin/Rscript";
/// Debian's node-typescript: the compiler the TypeScript kernel strips types with.
constexpr const char* typescript_module = "/usr/share/nodejs/typescript";

bool executable(const fs::path& path) {
  return ::access(path.c_str(), X_OK) == 0;
}

bool exists(const std::string& path) {
  std::error_code ec;
  return fs::exists(path, ec);
}

/// The newest Debian OpenJDK (17 or later, the Java kernel's class version) with jshell:
/// its `java`, by its real path (/usr/bin/java goes through /etc/alternatives, which may
/// name another JDK).
std::string find_java() {
  std::string best;
  int best_version = 0;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/usr/lib/jvm", ec)) {
    const auto name = entry.path().filename().string();
    int version = 0;
    if (entry.is_symlink(ec) || std::sscanf(name.c_str(), "java-%d-openjdk", &version) != 1)
      continue;
    const auto bin = entry.path() / "bin";
    if (version >= 17 && version > best_version && executable(bin / "java") &&
        executable(bin / "jshell")) {
      best_version = version;
      best = (bin / "java").string();
    }
  }
  return best;
}

}  // namespace

runner_catalog::runner_catalog(std::string runner_dir, const std::vector<language>& enabled)
    : runner_dir_(std::move(runner_dir)), java_(find_java()) {
  auto need = [&](language lang, bool ok, std::string what) {
    if (!ok && missing_[index(lang)].empty()) missing_[index(lang)] = std::move(what);
  };
  for (const auto lang : all_languages)
    need(lang, std::find(enabled.begin(), enabled.end(), lang) != enabled.end(),
         "the operator turned it off (the LANGUAGES setting does not list it)");
  need(language::python, executable(python), "python3 is not installed (apt install python3)");
  need(language::javascript, executable(node), "node is not installed (apt install nodejs)");
  need(language::typescript, executable(node), "node is not installed (apt install nodejs)");
  need(language::typescript, exists(typescript_module),
       "the TypeScript compiler is not installed (apt install node-typescript)");
  need(language::bash, executable(python) && executable("/bin/bash"),
       "bash and python3 are needed (apt install bash python3)");
  need(language::java, !java_.empty(),
       "no OpenJDK 17 or later with jshell is installed (apt install default-jdk-headless)");
  need(language::java, exists(runner_dir_ + "/java/JavaRunner.class"),
       "the Java kernel was not built (a JDK was missing at build time)");
  need(language::r, executable(rscript), "R is not installed (apt install r-base-core)");
}

std::variant<sandbox::runner_spec, std::string> runner_catalog::spec(language lang,
                                                                     const resource_limits& limits,
                                                                     const std::string& cwd) const {
  if (!available(lang))
    return "language '" + std::string{to_string(lang)} +
           "' is not available on this server: " + missing_[index(lang)];
  sandbox::runner_spec spec;
  spec.workdir = cwd;
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
  // Interpreters with their own heap must fail with their own error before the
  // memory cgroup kills them: three quarters of the sandbox's memory.
  const auto heap_mib = std::max<std::uint64_t>(64, (limits.memory_bytes >> 20) * 3 / 4);
  switch (lang) {
    case language::python:
      spec.argv = {python, "-I", "-u", "/opt/runner/python_runner.py"};
      break;
    case language::javascript:
    case language::typescript:
      // --experimental-vm-modules: on Node 18 (Debian 12's), a cell's import() reaches
      // the kernel's resolver only with it (PROTOCOL.md "Runner start"); harmless on
      // newer Node, which uses the main context's loader instead.
      spec.argv = {node, "--max-old-space-size=" + std::to_string(heap_mib),
                   "--experimental-vm-modules", "/opt/runner/node_runner.js"};
      if (lang == language::typescript) spec.argv.emplace_back("--typescript");
      break;
    case language::bash:
      spec.argv = {python, "-I", "-u", "/opt/runner/bash_runner.py"};
      break;
    case language::java:
      // C1 only and the serial collector: the first result comes 3x sooner (PROTOCOL.md).
      spec.argv = {java_,
                   "-Xmx" + std::to_string(heap_mib / 2) + "m",
                   "-Xshare:auto",
                   "-XX:TieredStopAtLevel=1",
                   "-XX:+UseSerialGC",
                   "--add-opens",
                   "java.base/java.io=ALL-UNNAMED",
                   "--add-opens",
                   "java.base/java.lang=ALL-UNNAMED",
                   "--add-opens",
                   "java.base/java.util=ALL-UNNAMED",
                   "-cp",
                   "/opt/runner/java",
                   "JavaRunner"};
      break;
    case language::r:
      spec.argv = {rscript, "--vanilla", "/opt/runner/r_runner.R"};
      break;
  }
  return spec;
}

nlohmann::json runner_catalog::describe() const {
  nlohmann::json out = nlohmann::json::array();
  for (const auto lang : all_languages) {
    nlohmann::json entry = {{"language", to_string(lang)}, {"available", available(lang)}};
    if (!available(lang)) entry["reason"] = missing_[index(lang)];
    out.push_back(std::move(entry));
  }
  return out;
}

}  // namespace codeexec
