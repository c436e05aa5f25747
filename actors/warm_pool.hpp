// The warm pool: sandboxes started ahead of time, per language, with the default
// limits, so that a one-shot execution or a new stateful sandbox does not wait for
// namespaces and the interpreter. A thread of its own refills it, one launch at a
// time, and never into the last free sandbox slot.
#pragma once

#include "actors/actors.hpp"
#include "actors/local_sandbox.hpp"

#include <caf/actor_system.hpp>

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace codeexec {

class warm_pool {
 public:
  /// Keeps `size` sandboxes of each of `languages`; `has_room()` says whether one more
  /// sandbox may start now (the live-sandbox maximum).
  warm_pool(caf::actor_system& system, sandbox_environment env, resource_limits defaults,
            std::size_t size, std::vector<language> languages, std::function<bool()> has_room);
  /// Stops the refill thread and kills every pooled sandbox.
  ~warm_pool();
  warm_pool(const warm_pool&) = delete;
  warm_pool& operator=(const warm_pool&) = delete;

  /// A started sandbox of `lang` with the default limits, if one is pooled. A
  /// replacement starts in the background.
  std::optional<sandbox_actor> take(language lang);

  /// Pooled sandboxes now, all languages.
  std::size_t size() const;
  /// Whether a sandbox of `lang` is pooled now.
  bool has(language lang) const;

  /// Removes a pooled sandbox of a language other than `keep` (to make room for
  /// another sandbox) and returns it; the caller ends it.
  std::optional<sandbox_actor> evict(language keep);

  /// Kills the pooled sandboxes and refills no more (service shutdown).
  void drain();

 private:
  struct shared;
  void run();

  caf::actor_system& system_;
  sandbox_environment env_;
  resource_limits defaults_;
  std::size_t target_;
  std::vector<language> languages_;
  std::function<bool()> has_room_;
  std::shared_ptr<shared> shared_;
  std::thread refiller_;
};

}  // namespace codeexec
