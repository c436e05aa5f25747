#include "actors/service.hpp"

#include "actors/client_registry.hpp"
#include "actors/client_session.hpp"
#include "actors/execution.hpp"
#include "actors/local_backend.hpp"
#include "core/ids.hpp"
#include "core/log.hpp"
#include "core/metrics.hpp"

#include <caf/all.hpp>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <unordered_map>

namespace codeexec {

struct client_link {
  std::string client_id;
  client_session_actor session;
};

namespace {

caf::actor_system_config make_actor_config() {
  caf::actor_system_config cfg;
  cfg.set("scheduler.max-threads", std::max(2u, std::thread::hardware_concurrency()));
  return cfg;
}

}  // namespace

struct service::impl {
  explicit impl(const config& c)
      : cfg(c), actor_config(make_actor_config()), system(actor_config), backend(c) {
    registry = system.spawn(
        client_registry,
        caf::timespan{std::chrono::duration_cast<caf::timespan>(cfg.stream_replay_window)});
  }

  ~impl() {
    caf::anon_send_exit(registry, caf::exit_reason::user_shutdown);
    system.await_all_actors_done();
  }

  std::variant<std::string, api_error> start(execution_request request, execution_target target) {
    if (shutting_down) return api_error{503, "shutting_down", "The service is shutting down", 5};
    std::unique_lock lock{mutex};
    if (running.size() >= cfg.max_concurrent_executions)
      return api_error{503, "overloaded",
                       "Too many executions are running (" +
                           std::to_string(cfg.max_concurrent_executions) + "); retry shortly",
                       1};
    const auto owner = request.owner;
    if (!owner.empty() && running_by_owner[owner] >= cfg.key_max_concurrent_executions)
      return api_error{429, "too_many_executions",
                       "This API key already runs " +
                           std::to_string(cfg.key_max_concurrent_executions) +
                           " executions; retry when one has finished",
                       1};
    auto id = make_uuid();
    auto handle =
        system.spawn(execution, id, std::move(request), std::move(target), backend.factory());
    running.emplace(id, handle);
    ++running_by_owner[owner];
    lock.unlock();
    handle->attach_functor([this, id, owner](const caf::error&) {
      std::lock_guard guard{mutex};
      running.erase(id);
      if (--running_by_owner[owner] == 0) running_by_owner.erase(owner);
      if (running.empty()) all_done.notify_all();
    });
    return id;
  }

  /// Waits until no execution runs or `deadline` passes (or, if `stop_on_force`, a
  /// forced stop is asked for). True when none runs.
  bool wait_for_executions(std::chrono::steady_clock::time_point deadline, bool stop_on_force) {
    std::unique_lock lock{mutex};
    all_done.wait_until(lock, deadline, [this, stop_on_force] {
      return running.empty() || (stop_on_force && forced);
    });
    return running.empty();
  }

  void cancel_all(const std::string& reason) {
    std::lock_guard lock{mutex};
    for (const auto& [id, execution] : running) caf::anon_send(execution, atom::cancel_v, reason);
  }

  config cfg;
  caf::actor_system_config actor_config;
  caf::actor_system system;
  local_backend backend;
  client_registry_actor registry;
  std::atomic<bool> shutting_down{false};
  std::atomic<std::uint64_t> connected_clients{0};
  mutable std::mutex mutex;
  std::condition_variable all_done;
  std::unordered_map<std::string, execution_actor> running;       // guarded by mutex
  std::unordered_map<std::string, std::size_t> running_by_owner;  // guarded by mutex
  bool forced = false;                                            // guarded by mutex
};

service::service(const config& cfg) : impl_(std::make_unique<impl>(cfg)) {}

service::~service() = default;

std::variant<std::string, api_error> service::execute(execution_request request,
                                                      std::function<void(execution_report)> done) {
  execution_target target;
  target.on_done = std::move(done);
  return impl_->start(std::move(request), std::move(target));
}

std::variant<std::string, api_error> service::execute_stream(execution_request request) {
  // A clientId belongs to the key that uses it: no key can read another key's stream.
  request.client_id = scoped_client_id(request.owner, request.client_id);
  execution_target target;
  target.registry = impl_->registry;
  return impl_->start(std::move(request), std::move(target));
}

std::shared_ptr<client_link> service::connect_client(
    const std::string& owner, std::string client_id,
    std::shared_ptr<client_connection> connection) {
  auto link = std::make_shared<client_link>();
  link->client_id = scoped_client_id(owner, client_id);
  link->session = impl_->system.spawn(client_session, link->client_id, std::move(connection),
                                      impl_->registry, impl_->cfg.ws_ping_interval);
  ++impl_->connected_clients;
  return link;
}

void service::client_message(const client_link& link, std::string message) {
  caf::anon_send(link.session, atom::received_v, std::move(message));
}

void service::client_closed(const client_link& link) {
  --impl_->connected_clients;
  caf::anon_send(link.session, atom::closed_v);
}

void service::close_client(const client_link& link, std::uint16_t code, std::string reason) {
  caf::anon_send(link.session, atom::close_v, code, std::move(reason));
}

nlohmann::json service::health() const {
  std::size_t running = 0;
  {
    std::lock_guard lock{impl_->mutex};
    running = impl_->running.size();
  }
  auto backend = impl_->backend.describe();
  return {
      {"status", impl_->shutting_down ? "shutting_down" : "ok"},
      {"backend", backend["backend"]},
      {"sandboxes", {{"live", impl_->backend.live()}}},
      {"executions", {{"running", running}}},
      {"clients", {{"connected", impl_->connected_clients.load()}}},
      {"capabilities", backend["capabilities"]},
  };
}

nlohmann::json service::readiness() const {
  std::vector<std::string> reasons;
  if (impl_->shutting_down) reasons.emplace_back("the service is shutting down");
  {
    std::lock_guard lock{impl_->mutex};
    if (impl_->running.size() >= impl_->cfg.max_concurrent_executions)
      reasons.emplace_back("the maximum of concurrent executions is reached");
  }
  if (impl_->backend.live() >= impl_->cfg.max_sandboxes)
    reasons.emplace_back("the maximum of live sandboxes is reached");
  return {{"ready", reasons.empty()}, {"reasons", reasons}};
}

std::string service::metrics_text() const {
  return metrics::render_metrics();
}

void service::shutdown(std::chrono::milliseconds grace) {
  if (impl_->shutting_down.exchange(true)) return;
  const auto running = [this] {
    std::lock_guard lock{impl_->mutex};
    return impl_->running.size();
  }();
  log::info("shutting down: new work is refused",
            {{"runningExecutions", running}, {"graceMs", grace.count()}});
  if (!impl_->wait_for_executions(std::chrono::steady_clock::now() + grace, true)) {
    log::warn("cancelling the executions still running");
    impl_->cancel_all("the service is shutting down");
    // A cancelled execution reports (to its sockets too) within its kill grace (5 s).
    impl_->wait_for_executions(std::chrono::steady_clock::now() + std::chrono::seconds(6), false);
  }
  caf::scoped_actor self{impl_->system, /*hide=*/true};
  self->request(impl_->registry, std::chrono::seconds(5), atom::shutdown_v)
      .receive([](bool) {},
               [](const caf::error& err) {
                 log::warn("closing websockets failed", {{"error", caf::to_string(err)}});
               });
}

void service::force_shutdown() {
  {
    std::lock_guard lock{impl_->mutex};
    impl_->forced = true;
  }
  impl_->all_done.notify_all();
  log::warn("second stop signal: cancelling every execution now");
  impl_->cancel_all("the service is stopping now");
}

std::string scoped_client_id(const std::string& owner, const std::string& client_id) {
  return owner.empty() ? client_id : owner + "/" + client_id;
}

}  // namespace codeexec
