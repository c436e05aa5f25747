// The stateful sandboxes that live now, by id: what the HTTP layer looks up
// synchronously (files, executions, listings). Each sandbox's actor owns its
// lifetime and removes its record when it ends.
#pragma once

#include "actors/actors.hpp"
#include "core/limits.hpp"
#include "sandbox/sandbox_files.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace codeexec {

/// One stateful sandbox. Shared between the directory and the sandbox's actor.
struct sandbox_record {
  std::string id;
  std::string owner;
  language lang = language::python;
  std::map<std::string, std::string> env;
  std::map<std::string, std::string> metadata;
  resource_limits limits;
  std::chrono::system_clock::time_point created;
  /// When the sandbox will be destroyed if nothing uses it (unix ms); kept current by its actor.
  std::atomic<std::int64_t> expires_at_ms{0};
  sandbox_actor actor;
  std::shared_ptr<sandbox::sandbox_files> files;
  /// What E2B's API adds; set at creation or by sandbox_directory::extend.
  std::shared_ptr<e2b_extension> e2b;  // guarded by the directory's mutex once added
};

class sandbox_directory {
 public:
  /// Adds a sandbox unless its owner already has `per_owner_max` (then false).
  bool add(std::shared_ptr<sandbox_record> record, std::size_t per_owner_max);
  void remove(const std::string& id);
  /// The sandbox `id` if it exists and belongs to `owner`.
  std::shared_ptr<sandbox_record> find(const std::string& owner, const std::string& id) const;
  std::vector<std::shared_ptr<sandbox_record>> list(const std::string& owner) const;
  std::vector<std::shared_ptr<sandbox_record>> all() const;
  std::size_t size() const;
  std::size_t count(const std::string& owner) const;
  /// The E2B extension of `owner`'s sandbox `id`, set to `make()` if it has none yet;
  /// null if there is no such sandbox.
  std::shared_ptr<e2b_extension> extend(
      const std::string& owner, const std::string& id,
      const std::function<std::shared_ptr<e2b_extension>()>& make);
  /// The sandbox `id`, whoever owns it, if it has an E2B extension.
  std::optional<extended_sandbox> find_extended(const std::string& id) const;

 private:
  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<sandbox_record>> by_id_;
};

}  // namespace codeexec
