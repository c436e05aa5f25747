// Which kernels this host can start, and how: the runner command, environment and
// working directory per language.
#pragma once

#include "core/language.hpp"
#include "core/limits.hpp"
#include "sandbox/launcher.hpp"

#include <nlohmann/json.hpp>

#include <array>
#include <string>
#include <variant>
#include <vector>

namespace codeexec {

class runner_catalog {
 public:
  /// Probes the host once: an interpreter missing here makes its language unavailable,
  /// as does one left out of `enabled` (the LANGUAGES setting).
  explicit runner_catalog(std::string runner_dir, const std::vector<language>& enabled = {
                                                      all_languages.begin(), all_languages.end()});

  /// The runner of `lang` with working directory `cwd`, or why this host cannot run it.
  std::variant<sandbox::runner_spec, std::string> spec(language lang, const resource_limits& limits,
                                                       const std::string& cwd = "/home/user") const;

  bool available(language lang) const { return missing_[index(lang)].empty(); }

  /// For /health: every language and whether it is available (and why not).
  nlohmann::json describe() const;

  const std::string& runner_dir() const { return runner_dir_; }

 private:
  static std::size_t index(language lang) { return static_cast<std::size_t>(lang); }

  std::string runner_dir_;
  /// The JDK's java launcher, "" if none fits.
  std::string java_;
  /// Per language: empty if available, else what is missing and how to get it.
  std::array<std::string, all_languages.size()> missing_;
};

}  // namespace codeexec
