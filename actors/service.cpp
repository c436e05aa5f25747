#include "actors/service.hpp"

#include "actors/ask.hpp"
#include "actors/client_registry.hpp"
#include "actors/client_session.hpp"
#include "actors/execution.hpp"
#include "actors/sandbox_backend.hpp"
#include "actors/sandbox_directory.hpp"
#include "actors/sandbox_errors.hpp"
#include "actors/terminator.hpp"
#include "core/ids.hpp"
#include "core/json_mapping.hpp"
#include "core/log.hpp"
#include "core/metrics.hpp"

#include <caf/all.hpp>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <utility>

namespace codeexec {

struct client_link {
  std::string client_id;
  client_session_actor session;
};

namespace {

caf::actor_system_config make_actor_config() {
  caf::actor_system_config cfg;
  cfg.set("scheduler.max-threads", std::max(2u, std::thread::hardware_concurrency()));
  // Work sharing (one queue, idle workers block on it) rather than CAF's default work
  // stealing, whose idle workers poll for ~25 ms after each burst: measured 25 ms of
  // CPU and ~1,350 context switches per isolated execution, taken from the kernels on a
  // 2-core host, and a slower warm execute (0.64 vs 1.05 ms median back to back).
  cfg.set("scheduler.policy", caf::atom("sharing"));
  return cfg;
}

/// How long a kernel may take to start (a JVM takes a second or two).
constexpr auto kernel_start_timeout = std::chrono::seconds(60);
/// How long a sandbox may take to answer a question about its contexts.
constexpr auto sandbox_answer_timeout = std::chrono::seconds(10);
/// After a kill at shutdown, how long before an actor that still lives is reported.
constexpr auto kill_timeout = std::chrono::seconds(2);

std::int64_t unix_ms(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

sandbox_info describe(const sandbox_record& r) {
  return {r.id,
          r.lang,
          r.created,
          std::chrono::system_clock::time_point{std::chrono::milliseconds{r.expires_at_ms.load()}},
          r.metadata,
          r.limits};
}

service_error sandbox_not_found(const std::string& id) {
  return {ec::sandbox_not_found, "No sandbox '" + id + "'", 0};
}

service_error key_sandbox_limit(std::size_t per_key) {
  return {ec::key_sandbox_limit,
          "This API key already has " + std::to_string(per_key) + " sandboxes; delete one first",
          0};
}

service_error shutting_down_error() {
  return {ec::shutting_down, "The service is shutting down", 0};
}

/// The service's code for each files API error.
constexpr std::pair<sandbox::file_errc, ec> file_codes[] = {
    {sandbox::file_errc::invalid_path, ec::invalid_path},
    {sandbox::file_errc::outside_workspace, ec::outside_workspace},
    {sandbox::file_errc::not_found, ec::file_not_found},
    {sandbox::file_errc::not_a_file, ec::not_a_file},
    {sandbox::file_errc::not_a_directory, ec::not_a_directory},
    {sandbox::file_errc::is_directory, ec::is_directory},
    {sandbox::file_errc::too_large, ec::file_too_large},
    {sandbox::file_errc::no_space, ec::no_space},
    {sandbox::file_errc::permission_denied, ec::permission_denied},
    {sandbox::file_errc::sandbox_gone, ec::sandbox_ended},
    {sandbox::file_errc::io_error, ec::io_error},
};

service_error file_error(const sandbox::file_error& err) {
  auto code = ec::io_error;
  for (const auto& [file_code, ours] : file_codes)
    if (file_code == err.code) code = ours;
  return {code, err.message, 0};
}

}  // namespace

struct service::impl {
  explicit impl(const config& c)
      : cfg(c),
        actor_config(make_actor_config()),
        system(actor_config),
        backend(make_sandbox_backend(c)) {
    registry = system.spawn(
        client_registry,
        caf::timespan{std::chrono::duration_cast<caf::timespan>(cfg.stream_replay_window)});
    backend->start_pool(system);
  }

  ~impl() {
    // stop() bounds the wait; without it (tests, a failed start) or after it left
    // stragglers, the system must still not end under running actors.
    if (!stopped) stop();
    system.await_all_actors_done();
  }

  /// service::stop(): the terminator ends what the service knows; the rest (one-shot
  /// sandboxes, pooled ones, sessions) ends with its owner.
  std::map<std::string, std::uint64_t> stop() {
    stopped = true;
    backend->drain_pool();
    std::vector<caf::actor> targets;
    for (const auto& record : directory.all())
      targets.push_back(caf::actor_cast<caf::actor>(record->actor));
    {
      std::lock_guard lock{mutex};
      for (const auto& [id, execution] : running)
        targets.push_back(caf::actor_cast<caf::actor>(execution.actor));
    }
    targets.push_back(caf::actor_cast<caf::actor>(registry));
    const auto grace = std::chrono::duration_cast<caf::timespan>(cfg.shutdown_kill_after);
    const auto deadline = std::chrono::steady_clock::now() + grace + 2 * kill_timeout;
    {
      auto term = system.spawn<caf::hidden>(terminator, grace, caf::timespan{kill_timeout});
      caf::scoped_actor self{system, true};
      self->request(term, grace + 2 * kill_timeout, atom::shutdown_v, std::move(targets))
          .receive([](std::uint64_t) {},
                   [](const caf::error& err) {
                     log::warn("the terminator did not answer", {{"error", caf::to_string(err)}});
                   });
    }
    // What nobody holds a handle to here ends with its owner, within the same bound.
    while (system.registry().running() > 0 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (system.registry().running() == 0) return {};
    auto left = metrics::live_actors();
    if (left.empty()) left.emplace("other", system.registry().running());
    return left;
  }

  /// The sandbox an execution runs in: its stateful sandbox, or a one-shot one.
  result<sandbox_source> source_for(execution_request& request) {
    if (request.sandbox_id.empty()) {
      return sandbox_source{[this](caf::actor_system& sys, const execution_request& r) {
        return sandbox_lease{backend->acquire(sys, r.lang, r.limits), true};
      }};
    }
    auto record = directory.find(request.owner, request.sandbox_id);
    if (!record) return sandbox_not_found(request.sandbox_id);
    // The sandbox's variables, unless the execution sets its own.
    for (const auto& [key, value] : record->env) request.env.emplace(key, value);
    if (!request.lang_given && request.context_id.empty()) request.lang = record->lang;
    // The sandbox's output limit, unless the execution asks for its own.
    if (request.limits.output_bytes == cfg.default_limits.output_bytes)
      request.limits.output_bytes = record->limits.output_bytes;
    const auto grace = 2 * cfg.interrupt_grace + std::chrono::seconds(5);
    return sandbox_source{
        [actor = record->actor, grace](caf::actor_system&, const execution_request&) {
          return sandbox_lease{actor, false, grace};
        }};
  }

  /// Runs `then` once a sandbox of `lang` with `limits` can start: now, or after a
  /// pooled sandbox of another language has given way (ended; nothing blocks
  /// meanwhile). Else the 503, and `then` never runs.
  template <class Then>
  std::optional<service_error> when_room_for(language lang, const resource_limits& limits,
                                             Then then) {
    if (backend->has_room(lang, limits)) {
      then();
      return std::nullopt;
    }
    if (auto victim = backend->evict_pooled(lang)) {
      when_gone(*victim, std::move(then));
      caf::anon_send(*victim, atom::kill_v);
      return std::nullopt;
    }
    return service_error{ec::sandbox_limit,
                         "The server runs its maximum of " + std::to_string(cfg.max_sandboxes) +
                             " sandboxes; retry shortly",
                         0};
  }

  /// Asks the sandbox `id` of `owner`; `on_reply` gets the answer, `done` any error
  /// (including an unknown sandbox).
  template <class Done, class OnReply, class... Args>
  void ask_sandbox(const std::string& owner, const std::string& id, caf::timespan timeout,
                   const Done& done, OnReply on_reply, Args... args) {
    auto record = directory.find(owner, id);
    if (!record) return done(sandbox_not_found(id));
    ask(
        system, record->actor, timeout, std::move(on_reply),
        [done](const caf::error& err) { done(to_service_error(err)); }, std::move(args)...);
  }

  /// The files of the sandbox `id` of `owner`, counted as activity of the sandbox.
  result<std::shared_ptr<sandbox::sandbox_files>> files_of(const std::string& owner,
                                                           const std::string& id) const {
    auto record = directory.find(owner, id);
    if (!record) return sandbox_not_found(id);
    if (!record->files)
      return service_error{ec::files_not_supported,
                           "The files API is not available with SANDBOX_BACKEND=e2b", 0};
    caf::anon_send(record->actor, atom::touch_v);
    return record->files;
  }

  std::optional<service_error> check_available(language lang) const {
    auto reason = backend->unavailable(lang);
    if (!reason) return std::nullopt;
    return service_error{ec::unavailable_language, std::move(*reason), 0};
  }

  result<std::string> start(execution_request request, execution_target target) {
    if (shutting_down) return shutting_down_error();
    if (request.sandbox_id.empty())
      if (auto err = check_available(request.lang)) return *err;
    if (auto reason = backend->unsupported(request))
      return service_error{ec::not_supported_by_backend, std::move(*reason), 0};
    auto source = source_for(request);
    if (auto* err = std::get_if<service_error>(&source)) return *err;
    std::unique_lock lock{mutex};
    if (running.size() >= cfg.max_concurrent_executions)
      return service_error{ec::overloaded,
                           "Too many executions are running (" +
                               std::to_string(cfg.max_concurrent_executions) + "); retry shortly",
                           0};
    const auto owner = request.owner;
    if (!owner.empty() && running_by_owner[owner] >= cfg.key_max_concurrent_executions)
      return service_error{ec::key_execution_limit,
                           "This API key already runs " +
                               std::to_string(cfg.key_max_concurrent_executions) +
                               " executions; retry when one has finished",
                           0};
    lock.unlock();
    auto id = make_uuid();
    const bool one_shot = request.sandbox_id.empty();
    const auto lang = request.lang;
    const auto limits = request.limits;
    auto spawn = [this, id, request = std::move(request), target = std::move(target),
                  source = std::move(std::get<sandbox_source>(source))]() mutable {
      spawn_execution(id, std::move(request), std::move(target), std::move(source));
    };
    if (!one_shot) {
      spawn();
      return id;
    }
    if (auto err = when_room_for(lang, limits, std::move(spawn))) return *err;
    return id;
  }

  /// Starts an execution and counts it as running until it ends.
  void spawn_execution(const std::string& id, execution_request request, execution_target target,
                       sandbox_source source) {
    const auto owner = request.owner;
    const bool interactive = request.stdin_open;
    std::unique_lock lock{mutex};
    auto handle =
        system.spawn(execution, id, std::move(request), std::move(target), std::move(source));
    running.emplace(id, running_execution{handle, owner, interactive});
    ++running_by_owner[owner];
    lock.unlock();  // the functor locks: it runs at once if the execution already ended
    handle->attach_functor([this, id, owner](const caf::error&) {
      std::lock_guard guard{mutex};
      running.erase(id);
      if (--running_by_owner[owner] == 0) running_by_owner.erase(owner);
      if (running.empty()) all_done.notify_all();
    });
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
    for (const auto& [id, entry] : running) caf::anon_send(entry.actor, atom::cancel_v, reason);
  }

  config cfg;
  caf::actor_system_config actor_config;
  caf::actor_system system;
  std::unique_ptr<sandbox_backend> backend;
  sandbox_directory directory;
  client_registry_actor registry;
  std::atomic<bool> shutting_down{false};
  /// stop() ran (main thread only).
  bool stopped = false;
  std::atomic<std::uint64_t> connected_clients{0};
  mutable std::mutex mutex;
  std::condition_variable all_done;
  struct running_execution {
    execution_actor actor;
    std::string owner;
    bool interactive = false;
  };
  std::unordered_map<std::string, running_execution> running;     // guarded by mutex
  std::unordered_map<std::string, std::size_t> running_by_owner;  // guarded by mutex
  bool forced = false;                                            // guarded by mutex
};

service::service(const config& cfg) : impl_(std::make_unique<impl>(cfg)) {}

service::~service() = default;

result<std::string> service::execute(execution_request request,
                                     std::function<void(execution_report)> done) {
  execution_target target;
  target.on_done = std::move(done);
  return impl_->start(std::move(request), std::move(target));
}

result<std::string> service::execute_stream(execution_request request) {
  // A clientId belongs to the key that uses it: no key can read another key's stream.
  request.client_id = scoped_client_id(request.owner, request.client_id);
  execution_target target;
  target.registry = impl_->registry;
  return impl_->start(std::move(request), std::move(target));
}

result<std::string> service::execute_events(execution_request request,
                                            std::function<void(const kernel_event&)> on_event,
                                            std::function<void(execution_report)> done) {
  execution_target target;
  target.on_event = std::move(on_event);
  target.on_done = std::move(done);
  return impl_->start(std::move(request), std::move(target));
}

void service::cancel_execution(const std::string& owner, const std::string& execution_id,
                               std::string reason) {
  std::lock_guard lock{impl_->mutex};
  auto it = impl_->running.find(execution_id);
  if (it == impl_->running.end() || it->second.owner != owner) return;
  caf::anon_send(it->second.actor, atom::cancel_v, std::move(reason));
}

std::optional<service_error> service::send_stdin(const std::string& owner,
                                                 const std::string& execution_id,
                                                 stdin_request input) {
  std::lock_guard lock{impl_->mutex};
  auto it = impl_->running.find(execution_id);
  if (it == impl_->running.end() || it->second.owner != owner)
    return service_error{ec::execution_not_found, "No running execution '" + execution_id + "'", 0};
  if (!it->second.interactive)
    return service_error{ec::stdin_closed,
                         "The execution's stdin is not open: start it with \"interactive\": true",
                         0};
  caf::anon_send(it->second.actor, atom::input_v, std::move(input.data), input.eof);
  return std::nullopt;
}

void service::create_sandbox(sandbox_request request, reply_callback<sandbox_info> done) {
  auto& im = *impl_;
  if (im.shutting_down) return done(shutting_down_error());
  if (im.directory.count(request.owner) >= im.cfg.key_max_sandboxes)
    return done(key_sandbox_limit(im.cfg.key_max_sandboxes));
  if (auto err = im.check_available(request.lang)) return done(*err);
  auto record = std::make_shared<sandbox_record>();
  record->id = make_short_id();
  record->owner = std::move(request.owner);
  record->lang = request.lang;
  record->env = std::move(request.env);
  record->metadata = std::move(request.metadata);
  record->limits = request.limits;
  record->e2b = std::move(request.e2b);
  record->created = std::chrono::system_clock::now();
  record->expires_at_ms = unix_ms(record->created) + request.idle_timeout.count();
  auto start = [this, record, idle_timeout = request.idle_timeout, done] {
    start_sandbox(record, idle_timeout, done);
  };
  if (auto err = im.when_room_for(record->lang, record->limits, std::move(start))) done(*err);
}

void service::start_sandbox(std::shared_ptr<sandbox_record> record,
                            std::chrono::milliseconds idle_timeout,
                            reply_callback<sandbox_info> done) {
  auto& im = *impl_;
  record->actor = im.backend->acquire(im.system, record->lang, record->limits);
  // The directory outlives every actor (the impl awaits them before its members go).
  record->actor->attach_functor(
      [directory = &im.directory, id = record->id](const caf::error&) { directory->remove(id); });
  sandbox_settings settings{record, idle_timeout, im.cfg.sandbox_max_lifetime};
  const auto per_key = im.cfg.key_max_sandboxes;
  ask(
      im.system, record->actor, kernel_start_timeout,
      [this, record, per_key, done](bool) {
        if (!impl_->directory.add(record, per_key)) {
          caf::anon_send_exit(record->actor, caf::exit_reason::user_shutdown);
          return done(key_sandbox_limit(per_key));
        }
        log::info("sandbox created",
                  {{"sandboxId", record->id}, {"language", to_string(record->lang)}});
        done(describe(*record));
      },
      [record, done](const caf::error& err) {
        caf::anon_send_exit(record->actor, caf::exit_reason::user_shutdown);
        auto failure = to_service_error(err);
        if (failure.code == ec::sandbox_ended)
          failure = {ec::sandbox_start_failed, "The sandbox ended while starting", 0};
        done(failure);
      },
      atom::adopt_v, std::move(settings));
}

std::vector<sandbox_info> service::list_sandboxes(const std::string& owner) const {
  std::vector<sandbox_info> out;
  for (const auto& record : impl_->directory.list(owner)) out.push_back(describe(*record));
  return out;
}

result<sandbox_info> service::get_sandbox(const std::string& owner, const std::string& id) const {
  auto record = impl_->directory.find(owner, id);
  if (!record) return sandbox_not_found(id);
  return describe(*record);
}

bool service::has_sandbox(const std::string& owner, const std::string& id) const {
  return impl_->directory.find(owner, id) != nullptr;
}

std::shared_ptr<e2b_extension> service::extend_sandbox(
    const std::string& owner, const std::string& id,
    const std::function<std::shared_ptr<e2b_extension>()>& make) {
  return impl_->directory.extend(owner, id, make);
}

std::optional<extended_sandbox> service::find_extended(const std::string& id) const {
  return impl_->directory.find_extended(id);
}

void service::delete_sandbox(const std::string& owner, const std::string& id, done_callback done) {
  auto record = impl_->directory.find(owner, id);
  if (!record) return done(sandbox_not_found(id));
  impl_->directory.remove(id);
  log::info("sandbox deleted", {{"sandboxId", id}});
  // Running cells are answered ("killed") before the actor ends; the reply waits until
  // its processes are gone, so the slot is free for the next sandbox.
  caf::anon_send(record->actor, atom::kill_v);
  when_gone(record->actor, [done] { done(std::nullopt); });
}

result<sandbox_info> service::set_sandbox_timeout(const std::string& owner, const std::string& id,
                                                  std::chrono::milliseconds timeout) {
  auto record = impl_->directory.find(owner, id);
  if (!record) return sandbox_not_found(id);
  // Shown at once; the actor keeps it current from then on.
  record->expires_at_ms = unix_ms(std::chrono::system_clock::now()) + timeout.count();
  caf::anon_send(record->actor, atom::timeout_v, timeout);
  return describe(*record);
}

void service::interrupt_sandbox(const std::string& owner, const std::string& id,
                                const std::string& context_id, reply_callback<std::uint64_t> done) {
  impl_->ask_sandbox(
      owner, id, sandbox_answer_timeout, done, [done](std::uint64_t count) { done(count); },
      atom::interrupt_v, context_id);
}

void service::create_context(const std::string& owner, const std::string& id,
                             context_request request, reply_callback<context_info> done) {
  impl_->ask_sandbox(
      owner, id, kernel_start_timeout, done, [done](context_info& info) { done(std::move(info)); },
      atom::create_v, std::move(request));
}

void service::list_contexts(const std::string& owner, const std::string& id,
                            reply_callback<std::vector<context_info>> done) {
  impl_->ask_sandbox(
      owner, id, sandbox_answer_timeout, done,
      [done](std::vector<context_info>& contexts) { done(std::move(contexts)); }, atom::get_v);
}

void service::delete_context(const std::string& owner, const std::string& id,
                             const std::string& context_id, done_callback done) {
  impl_->ask_sandbox(
      owner, id, sandbox_answer_timeout, done, [done](bool) { done(std::nullopt); }, atom::remove_v,
      context_id);
}

void service::restart_context(const std::string& owner, const std::string& id,
                              const std::string& context_id, reply_callback<context_info> done) {
  impl_->ask_sandbox(
      owner, id, kernel_start_timeout, done, [done](context_info& info) { done(std::move(info)); },
      atom::restart_v, context_id);
}

result<std::string> service::read_file(const std::string& owner, const std::string& id,
                                       const std::string& path) const {
  auto files = impl_->files_of(owner, id);
  if (auto* err = std::get_if<service_error>(&files)) return *err;
  auto read = std::get<0>(files)->read(path, impl_->cfg.max_body_bytes);
  if (!read) return file_error(read.error());
  return std::move(read).value();
}

result<std::uint64_t> service::write_file(const std::string& owner, const std::string& id,
                                          const std::string& path, std::string_view data) const {
  auto files = impl_->files_of(owner, id);
  if (auto* err = std::get_if<service_error>(&files)) return *err;
  auto written = std::get<0>(files)->write(path, data);
  if (!written) return file_error(written.error());
  return static_cast<std::uint64_t>(written.value());
}

result<sandbox::dir_listing> service::list_files(const std::string& owner, const std::string& id,
                                                 const std::string& path) const {
  auto files = impl_->files_of(owner, id);
  if (auto* err = std::get_if<service_error>(&files)) return *err;
  auto listed = std::get<0>(files)->list(path);
  if (!listed) return file_error(listed.error());
  return std::move(listed).value();
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
  auto backend = impl_->backend->describe();
  nlohmann::json body = {
      {"status", impl_->shutting_down ? "shutting_down" : "ok"},
      {"backend", backend["backend"]},
      {"sandboxes",
       {{"live", impl_->backend->live()},
        {"stateful", impl_->directory.size()},
        {"pooled", impl_->backend->pooled()}}},
      {"languages", backend["languages"]},
      {"executions", {{"running", running}}},
      {"clients", {{"connected", impl_->connected_clients.load()}}},
      {"capabilities", backend["capabilities"]},
  };
  if (backend.contains("zygote")) body["zygote"] = backend["zygote"];
  // The E2B backend's calls still under way: a sandbox being made or killed.
  if (backend.contains("requestsInFlight"))
    body["e2b"] = {{"requestsInFlight", backend["requestsInFlight"]}};
  return body;
}

nlohmann::json service::readiness() const {
  std::vector<std::string> reasons;
  if (impl_->shutting_down) reasons.emplace_back("the service is shutting down");
  {
    std::lock_guard lock{impl_->mutex};
    if (impl_->running.size() >= impl_->cfg.max_concurrent_executions)
      reasons.emplace_back("the maximum of concurrent executions is reached");
  }
  if (impl_->backend->live() >= impl_->cfg.max_sandboxes)
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
  // Stateful sandboxes and the warm pool end with the service.
  impl_->backend->drain_pool();
  for (const auto& record : impl_->directory.all()) {
    impl_->directory.remove(record->id);
    caf::anon_send(record->actor, atom::kill_v);
  }
  caf::scoped_actor self{impl_->system, /*hide=*/true};
  self->request(impl_->registry, std::chrono::seconds(5), atom::shutdown_v)
      .receive([](bool) {},
               [](const caf::error& err) {
                 log::warn("closing websockets failed", {{"error", caf::to_string(err)}});
               });
}

std::map<std::string, std::uint64_t> service::stop() {
  return impl_->stop();
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
