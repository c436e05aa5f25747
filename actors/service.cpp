#include "actors/service.hpp"

#include "actors/client_registry.hpp"
#include "actors/client_session.hpp"
#include "actors/execution.hpp"
#include "actors/local_backend.hpp"
#include "core/ids.hpp"
#include "core/log.hpp"

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
    auto id = make_uuid();
    auto handle =
        system.spawn(execution, id, std::move(request), std::move(target), backend.factory());
    running.emplace(id, handle);
    lock.unlock();
    handle->attach_functor([this, id](const caf::error&) {
      std::lock_guard guard{mutex};
      running.erase(id);
      if (running.empty()) all_done.notify_all();
    });
    return id;
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
  std::unordered_map<std::string, execution_actor> running;  // guarded by mutex
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
  execution_target target;
  target.registry = impl_->registry;
  return impl_->start(std::move(request), std::move(target));
}

std::shared_ptr<client_link> service::connect_client(
    std::string client_id, std::shared_ptr<client_connection> connection) {
  auto link = std::make_shared<client_link>();
  link->client_id = client_id;
  link->session = impl_->system.spawn(client_session, std::move(client_id), std::move(connection),
                                      impl_->registry);
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

void service::shutdown(std::chrono::milliseconds grace) {
  if (impl_->shutting_down.exchange(true)) return;
  std::unique_lock lock{impl_->mutex};
  log::info("shutting down", {{"runningExecutions", impl_->running.size()}});
  for (const auto& [id, execution] : impl_->running)
    caf::anon_send(execution, atom::cancel_v, std::string{"the service is shutting down"});
  impl_->all_done.wait_for(lock, grace, [this] { return impl_->running.empty(); });
  lock.unlock();
  caf::scoped_actor self{impl_->system, /*hide=*/true};
  self->request(impl_->registry, std::chrono::seconds(5), atom::shutdown_v)
      .receive([](bool) {},
               [](const caf::error& err) {
                 log::warn("closing websockets failed", {{"error", caf::to_string(err)}});
               });
}

}  // namespace codeexec
