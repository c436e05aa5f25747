#include "actors/warm_pool.hpp"

#include "core/log.hpp"
#include "core/metrics.hpp"

#include <caf/all.hpp>

namespace codeexec {

/// What the refill thread, take() and the pooled sandboxes' exit functors share.
struct warm_pool::shared {
  std::mutex mutex;
  std::condition_variable wake;
  std::map<language, std::deque<sandbox_actor>> ready;  // guarded by mutex
  bool stopping = false;                                // guarded by mutex

  std::size_t total() const {
    std::size_t n = 0;
    for (const auto& [lang, sandboxes] : ready) n += sandboxes.size();
    return n;
  }
};

namespace {

/// How long the refill thread waits before retrying when no sandbox may start.
constexpr auto full_retry = std::chrono::milliseconds(200);
/// How long a launch may take before the refill thread gives up on that sandbox.
constexpr auto launch_timeout = std::chrono::seconds(30);

}  // namespace

warm_pool::warm_pool(caf::actor_system& system, sandbox_environment env, resource_limits defaults,
                     std::size_t size, std::vector<language> languages,
                     std::function<bool()> has_room)
    : system_(system),
      env_(std::move(env)),
      defaults_(defaults),
      target_(size),
      languages_(std::move(languages)),
      has_room_(std::move(has_room)),
      shared_(std::make_shared<shared>()) {
  env_.end_if_launch_fails = true;
  std::erase_if(languages_, [this](language lang) {
    if (env_.catalog->available(lang)) return false;
    log::warn("warm pool: language not available, not pooled", {{"language", to_string(lang)}});
    return true;
  });
  if (target_ > 0 && !languages_.empty()) refiller_ = std::thread([this] { run(); });
}

warm_pool::~warm_pool() {
  drain();
}

std::optional<sandbox_actor> warm_pool::take(language lang) {
  std::optional<sandbox_actor> out;
  {
    std::lock_guard lock{shared_->mutex};
    auto& q = shared_->ready[lang];
    if (!q.empty()) {
      out = std::move(q.front());
      q.pop_front();
    }
    metrics::set_sandboxes_pooled(shared_->total());
  }
  shared_->wake.notify_one();
  return out;
}

std::optional<sandbox_actor> warm_pool::evict(language keep) {
  std::lock_guard lock{shared_->mutex};
  // The language with the most pooled sandboxes gives one up.
  std::deque<sandbox_actor>* from = nullptr;
  for (auto& [lang, q] : shared_->ready)
    if (lang != keep && !q.empty() && (!from || q.size() > from->size())) from = &q;
  if (!from) return std::nullopt;
  auto out = std::move(from->back());
  from->pop_back();
  metrics::set_sandboxes_pooled(shared_->total());
  return out;
}

bool warm_pool::has(language lang) const {
  std::lock_guard lock{shared_->mutex};
  auto it = shared_->ready.find(lang);
  return it != shared_->ready.end() && !it->second.empty();
}

std::size_t warm_pool::size() const {
  std::lock_guard lock{shared_->mutex};
  return shared_->total();
}

void warm_pool::drain() {
  {
    std::lock_guard lock{shared_->mutex};
    shared_->stopping = true;
  }
  shared_->wake.notify_all();
  // After this no sandbox can be spawned any more (the actor system may stop next).
  if (refiller_.joinable()) refiller_.join();
  std::map<language, std::deque<sandbox_actor>> pooled;
  {
    std::lock_guard lock{shared_->mutex};
    pooled.swap(shared_->ready);
    metrics::set_sandboxes_pooled(0);
  }
  for (auto& [lang, sandboxes] : pooled)
    for (auto& sandbox : sandboxes) caf::anon_send_exit(sandbox, caf::exit_reason::user_shutdown);
}

void warm_pool::run() {
  std::unique_lock lock{shared_->mutex};
  while (!shared_->stopping) {
    // The language with the fewest pooled sandboxes goes first.
    std::optional<language> next;
    std::size_t fewest = target_;
    for (const auto lang : languages_) {
      const auto have = shared_->ready[lang].size();
      if (have < fewest) {
        fewest = have;
        next = lang;
      }
    }
    if (!next) {
      shared_->wake.wait(lock);
      continue;
    }
    if (!has_room_()) {
      shared_->wake.wait_for(lock, full_retry);
      continue;
    }
    lock.unlock();
    auto sandbox = spawn_local_sandbox(system_, env_, *next, defaults_);
    std::weak_ptr<shared> weak = shared_;
    auto gone = std::make_shared<std::atomic<bool>>(false);
    // A pooled sandbox that ends (its launch or kernel failed, the service stops) leaves
    // the pool. Attached to an actor that already ended, this runs at once.
    sandbox->attach_functor(
        [weak, gone, addr = sandbox.address(), lang = *next](const caf::error&) {
          *gone = true;
          auto s = weak.lock();
          if (!s) return;
          std::lock_guard guard{s->mutex};
          auto& q = s->ready[lang];
          std::erase_if(q, [&](const sandbox_actor& a) { return a.address() == addr; });
          metrics::set_sandboxes_pooled(s->total());
          s->wake.notify_one();
        });
    // The actor launches its sandbox when it first runs (on a CAF worker). Wait for
    // that, so that the live count includes it before the next round: one launch at
    // a time, and never one beyond the room.
    {
      caf::scoped_actor self{system_, /*hide=*/true};
      self->request(sandbox, launch_timeout, atom::get_v)
          .receive([](std::vector<context_info>&) {}, [gone](caf::error&) { *gone = true; });
    }
    lock.lock();
    if (shared_->stopping) {
      caf::anon_send_exit(sandbox, caf::exit_reason::user_shutdown);
      break;
    }
    if (*gone) {
      // It could not start (another sandbox took the slot meanwhile): retry later, not
      // at the next wake-up, or failed launches would spin.
      shared_->wake.wait_for(lock, full_retry, [this] { return shared_->stopping; });
      continue;
    }
    shared_->ready[*next].push_back(std::move(sandbox));
    metrics::set_sandboxes_pooled(shared_->total());
  }
}

}  // namespace codeexec
