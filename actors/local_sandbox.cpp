#include "actors/local_sandbox.hpp"

#include "actors/actor_metrics.hpp"
#include "actors/kernel_exit.hpp"
#include "actors/sandbox_directory.hpp"
#include "actors/sandbox_errors.hpp"
#include "core/ids.hpp"
#include "core/json_mapping.hpp"
#include "core/log.hpp"

#include <caf/all.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>

namespace codeexec {
namespace {

using pointer = local_sandbox_actor::stateful_pointer<local_sandbox_state>;
using state = local_sandbox_state;
using context = local_sandbox_state::context;
using cell = local_sandbox_state::cell;
using kernel_state = local_sandbox_state::kernel_state;

/// How often running cells' CPU time is checked against their limits.
constexpr auto cpu_check_interval = std::chrono::milliseconds(50);
/// How often an interrupt is repeated while a cell does not stop (a runner can miss
/// one SIGINT at a few instants, see PROTOCOL.md).
constexpr auto interrupt_repeat = std::chrono::milliseconds(250);
/// How soon buffered stdin is offered again when the FIFO is full.
constexpr auto stdin_retry = std::chrono::milliseconds(5);

// ---- stdin ---------------------------------------------------------------------------

/// Writes what the cell's stdin FIFO takes now; a full FIFO is offered more later.
void pump_stdin(pointer self, cell& c) {
  if (c.in.pump() && !c.drain_scheduled) {
    c.drain_scheduled = true;
    self->delayed_send(self, stdin_retry, atom::drain_v, c.request.id);
  }
}

/// A FIFO for the cell's stdin when the request gives input or keeps stdin open.
/// Returns the path the kernel opens, or "" (stdin stays at end-of-file).
std::string open_stdin(pointer self, cell& c) {
  if (!self->state.files) return {};
  auto path = c.in.open(*self->state.files, std::move(c.request.stdin_data), c.request.stdin_open);
  pump_stdin(self, c);
  return path;
}

void close_stdin(pointer self, cell& c) {
  c.in.close(self->state.files.get());
}

// ---- kernels -------------------------------------------------------------------------

/// Starts the kernel of `ctx` in its slot (context 0's kernel starts with the sandbox).
void start_kernel(pointer self, context& ctx) {
  auto& st = self->state;
  ctx.state = kernel_state::starting;
  ctx.start_error.clear();
  ctx.restart_on_exit = false;
  ctx.started = state::clock::now();
  auto spec = st.env.catalog->spec(ctx.lang, st.limits, ctx.cwd);
  std::string error;
  if (auto* why = std::get_if<std::string>(&spec))
    error = *why;
  else if (!st.channel)
    error = st.start_error;
  else
    error = st.channel->start_kernel(ctx.slot, std::get<sandbox::runner_spec>(spec));
  if (error.empty()) return;
  ctx.state = kernel_state::dead;
  ctx.start_error = error;
  log::warn("kernel failed to start", {{"language", to_string(ctx.lang)}, {"reason", error}});
}

/// Creates a context in a free slot and starts its kernel; nullptr and `err` if not.
context* add_context(pointer self, language lang, std::string cwd, bool is_default,
                     caf::error& err) {
  auto& st = self->state;
  if (!st.env.catalog->available(lang)) {
    auto spec = st.env.catalog->spec(lang, st.limits, cwd);
    err = make_error(ec::unavailable_language, std::get<std::string>(spec));
    return nullptr;
  }
  std::size_t live = 0;
  for (const auto& [id, c] : st.contexts)
    if (!c.removed) ++live;
  std::uint32_t slot = 0;
  while (slot < max_kernel_slots && !st.slot_owner[slot].empty()) ++slot;
  if (live >= st.env.max_contexts || slot == max_kernel_slots) {
    err =
        make_error(ec::too_many_contexts, "This sandbox already has " + std::to_string(live) +
                                              " contexts, the most it may have; delete one first");
    return nullptr;
  }
  auto id = make_uuid();
  auto& ctx = st.contexts[id];
  ctx.id = id;
  ctx.lang = lang;
  ctx.cwd = std::move(cwd);
  ctx.is_default = is_default;
  ctx.created = ++st.contexts_created;
  ctx.slot = slot;
  st.slot_owner[slot] = id;
  start_kernel(self, ctx);
  return &ctx;
}

/// Kills a context's kernel (the runner's whole process group: the cell's children too).
void kill_kernel(pointer self, context& ctx) {
  if (self->state.channel && ctx.state != kernel_state::dead)
    self->state.channel->signal(ctx.slot, SIGKILL, true);
}

// ---- cells ---------------------------------------------------------------------------

void schedule_cpu_tick(pointer self) {
  if (self->state.tick_scheduled) return;
  self->state.tick_scheduled = true;
  self->delayed_send(self, cpu_check_interval, atom::tick_v);
}

/// The CPU time the sandbox used since `c` started, given its CPU time now.
std::uint64_t cpu_ms_since(const cell& c, std::uint64_t now_ns) {
  return now_ns > c.cpu_start_ns ? (now_ns - c.cpu_start_ns) / 1'000'000 : 0;
}

/// Answers every queued cell of `ctx` with `how` (they never ran).
void fail_queue(context& ctx, cell_end how, const std::string& detail) {
  for (auto& c : ctx.queue) {
    cell_outcome out;
    out.how = how;
    out.detail = detail;
    out.context_id = ctx.id;
    c.promise.deliver(std::move(out));
  }
  ctx.queue.clear();
}

/// The kernel of `ctx` could not start: everything waiting for it fails (else each
/// queued cell would start, and lose, the kernel again).
void kernel_failed(pointer self, context& ctx) {
  auto& st = self->state;
  fail_queue(ctx, cell_end::start_failed, ctx.start_error);
  for (auto& p : ctx.on_ready) p.deliver(make_error(ec::sandbox_start_failed, ctx.start_error));
  ctx.on_ready.clear();
  if (ctx.slot == 0 && st.adopt_promise) {
    st.adopt_promise->deliver(make_error(ec::sandbox_start_failed, ctx.start_error));
    st.adopt_promise.reset();
  }
}

/// Sends the next queued cell of `ctx` to its kernel, starting the kernel if needed.
void send_next(pointer self, context& ctx) {
  auto& st = self->state;
  if (ctx.current || ctx.queue.empty() || ctx.removed) return;
  if (ctx.state == kernel_state::dead) {
    // A kernel that died (or was restarted) starts again for the next cell.
    start_kernel(self, ctx);
    if (ctx.state == kernel_state::dead) {
      kernel_failed(self, ctx);
      return;
    }
  }
  if (ctx.state != kernel_state::ready) return;
  ctx.current.emplace(std::move(ctx.queue.front()));
  ctx.queue.pop_front();
  auto& c = *ctx.current;
  c.sent = true;
  const auto usage = st.process->read_usage();
  c.cpu_start_ns = usage.cpu_ns;
  c.oom_kills_start = usage.oom_kills;
  nlohmann::json request = {{"op", "exec"}, {"id", c.request.id}, {"code", c.request.code}};
  if (!c.request.env.empty()) request["env"] = c.request.env;
  if (auto path = open_stdin(self, c); !path.empty()) request["stdin"] = path;
  st.channel->reset_output_counters(ctx.slot, c.request.max_output_bytes);
  st.channel->send(ctx.slot, request);
  if (c.request.cpu_limit_ms != 0) schedule_cpu_tick(self);
}

/// Answers the running cell of `ctx` with `outcome` (usage filled in); the context's
/// next cell is not started yet.
void answer_current(pointer self, context& ctx, cell_outcome outcome) {
  auto& st = self->state;
  if (!ctx.current) return;
  auto& c = *ctx.current;
  if (st.process) {
    const auto u = st.process->read_usage();
    outcome.peak_memory_bytes = u.peak_memory_bytes;
    outcome.cpu_ms = cpu_ms_since(c, u.cpu_ns);
    // An OOM kill during this cell (the kernel may survive it: bash restarts its shell).
    outcome.oom_killed = outcome.oom_killed || u.oom_kills > c.oom_kills_start;
  }
  outcome.stdout_truncated = outcome.stdout_truncated || c.stdout_capped;
  outcome.stderr_truncated = outcome.stderr_truncated || c.stderr_capped;
  outcome.context_id = ctx.id;
  if (c.stopping) outcome.state_kept = !c.kernel_killed;
  close_stdin(self, c);
  c.promise.deliver(std::move(outcome));
  ctx.current.reset();
  st.touch();
}

/// Answers the running cell of `ctx`, then starts its next one.
void finish_cell(pointer self, context& ctx, cell_outcome outcome) {
  answer_current(self, ctx, std::move(outcome));
  send_next(self, ctx);
}

/// What kernel_exit's rules need to know of the running cell `c` whose kernel ended;
/// `restarts`: the kernel starts again for the next cell.
ended_cell_facts facts(const state& st, const cell& c, bool restarts) {
  return {c.forced, c.kernel_killed, st.kill_requested, restarts};
}

/// Ends a cell early. A one-shot sandbox is simply killed; a stateful one interrupts
/// the cell (its state survives), escalating to a kernel restart, then to the sandbox.
void stop_cell(pointer self, context& ctx, std::optional<cell_end> why, std::string detail) {
  auto& st = self->state;
  if (!ctx.current) return;
  auto& c = *ctx.current;
  if (why) decide_stop(c.forced, *why, std::move(detail));
  if (!st.life.stateful) {
    if (st.process) st.process->kill();
    return;
  }
  if (c.stopping) return;  // one escalation per cell
  c.stopping = true;
  if (st.channel) st.channel->signal(ctx.slot, SIGINT);
  self->delayed_send(self, interrupt_repeat, atom::escalate_v, c.request.id, std::uint32_t{1});
}

// ---- lifetime ------------------------------------------------------------------------

/// Replies to everything still waiting and ends the actor (the state's destructor
/// kills and reaps the sandbox).
void end_sandbox(pointer self, cell_end how, const std::string& detail) {
  auto& st = self->state;
  for (auto& [id, ctx] : st.contexts) {
    auto fail = [&](cell& c) {
      auto out = ended_cell(c.forced, how, detail);
      out.context_id = id;
      close_stdin(self, c);
      c.promise.deliver(std::move(out));
    };
    if (ctx.current) fail(*ctx.current);
    ctx.current.reset();
    for (auto& c : ctx.queue) fail(c);
    ctx.queue.clear();
    for (auto& p : ctx.on_ready) p.deliver(make_error(ec::sandbox_ended, detail));
    ctx.on_ready.clear();
  }
  if (st.adopt_promise) st.adopt_promise->deliver(make_error(ec::sandbox_start_failed, detail));
  st.adopt_promise.reset();
  self->quit();
}

void start_sandbox(pointer self) {
  auto& st = self->state;
  st.launched_at = state::clock::now();
  auto spec = st.env.catalog->spec(st.lang, st.limits);
  if (auto* why = std::get_if<std::string>(&spec)) {
    st.start_error = *why;
    return;
  }
  auto& runner = std::get<sandbox::runner_spec>(spec);
  sandbox::launch_spec launch;
  launch.argv = runner.argv;
  launch.env = runner.env;
  launch.persistent = true;
  launch.lim.memory_bytes = st.limits.memory_bytes;
  launch.lim.pids = st.limits.pids;
  launch.lim.workspace_bytes = st.limits.workspace_bytes;
  launch.lim.file_size_bytes = st.limits.file_size_bytes;
  launch.lim.open_files = st.limits.open_files;
  auto launched = st.env.launcher->launch(launch);
  if (!launched.process) {
    st.start_error = launched.error;
    log::error("sandbox failed to start", {{"reason", launched.error}});
    return;
  }
  st.process = std::move(launched.process);
  st.live_sandbox.emplace(metrics::live_gauge::sandboxes);
  // Only the kernels' own stdin FIFOs feed code; the first runner's fd 0 stays at EOF.
  st.process->close_stdin();
  st.files = std::make_shared<sandbox::sandbox_files>(
      st.process->init_pid(),
      sandbox::unique_fd(::fcntl(st.process->exit_fd(), F_DUPFD_CLOEXEC, 3)),
      st.process->host_uid(), st.process->host_uid());
  // The I/O thread reports by message; the handle it holds is released when the
  // state (and with it the channel) is destroyed.
  auto handle = caf::actor_cast<local_sandbox_actor>(self);
  sandbox::sandbox_callbacks callbacks;
  callbacks.on_event = [handle](unsigned kernel, nlohmann::json event) {
    caf::anon_send(handle, atom::runner_v, std::uint32_t{kernel}, std::move(event));
  };
  callbacks.on_output_limit = [handle](unsigned kernel, std::string_view stream) {
    caf::anon_send(handle, atom::limit_v, std::uint32_t{kernel}, std::string{stream});
  };
  callbacks.on_protocol_error = [handle](unsigned kernel, std::string reason) {
    caf::anon_send(handle, atom::broken_v, std::uint32_t{kernel}, std::move(reason));
  };
  callbacks.on_kernel_exit = [handle](unsigned kernel, sandbox::exit_status status,
                                      std::string setup_error) {
    caf::anon_send(handle, atom::ended_v, std::uint32_t{kernel},
                   to_sandbox_exit(status, std::move(setup_error)));
  };
  callbacks.on_exit = [handle](sandbox::exit_status status, std::string setup_error) {
    caf::anon_send(handle, atom::exited_v, to_sandbox_exit(status, std::move(setup_error)));
  };
  st.channel = std::make_unique<sandbox::sandbox_channel>(*st.process, st.limits.output_bytes,
                                                          std::move(callbacks));
}

}  // namespace

// ---- state helpers -------------------------------------------------------------------

context* local_sandbox_state::find(const std::string& id) {
  auto it = contexts.find(id);
  return it == contexts.end() || it->second.removed ? nullptr : &it->second;
}

context* local_sandbox_state::in_slot(std::uint32_t slot) {
  if (slot >= max_kernel_slots || slot_owner[slot].empty()) return nullptr;
  auto it = contexts.find(slot_owner[slot]);
  return it == contexts.end() ? nullptr : &it->second;
}

context* local_sandbox_state::default_context(language l) {
  for (auto& [id, ctx] : contexts)
    if (ctx.is_default && ctx.lang == l && !ctx.removed) return &ctx;
  return nullptr;
}

std::pair<context*, cell*> local_sandbox_state::find_cell(const std::string& cell_id) {
  for (auto& [id, ctx] : contexts) {
    if (ctx.current && ctx.current->request.id == cell_id) return {&ctx, &*ctx.current};
    for (auto& c : ctx.queue)
      if (c.request.id == cell_id) return {&ctx, &c};
  }
  return {nullptr, nullptr};
}

context_info local_sandbox_state::info(const context& ctx) const {
  return {ctx.id, ctx.lang, ctx.cwd, ctx.is_default, ctx.current ? 1u : 0u, ctx.queue.size()};
}

bool local_sandbox_state::busy() const {
  for (const auto& [id, ctx] : contexts)
    if (ctx.current || !ctx.queue.empty()) return true;
  return false;
}

// ---- behavior ------------------------------------------------------------------------

local_sandbox_actor::behavior_type local_sandbox(pointer self, sandbox_environment env,
                                                 language lang, resource_limits limits) {
  count_exit(self, metrics::actor_kind::sandbox);
  auto& st = self->state;
  st.env = std::move(env);
  st.lang = lang;
  st.limits = limits;
  start_sandbox(self);
  {
    // Context 0: the runner the sandbox was launched with.
    auto id = make_uuid();
    auto& ctx = st.contexts[id];
    ctx.id = id;
    ctx.lang = lang;
    ctx.is_default = true;
    ctx.created = ++st.contexts_created;
    ctx.slot = 0;
    ctx.started = st.launched_at;
    st.slot_owner[0] = id;
    if (!st.process) {
      ctx.state = kernel_state::dead;
      ctx.start_error = st.start_error;
      if (st.env.end_if_launch_fails) self->quit();
    }
  }
  return {
      [self](atom::run, run_cell& request, event_sink_actor sink) -> caf::result<cell_outcome> {
        auto& st = self->state;
        if (!st.process) {
          cell_outcome out;
          out.how = cell_end::start_failed;
          out.detail = st.start_error;
          return out;
        }
        context* ctx = nullptr;
        if (!request.context_id.empty()) {
          ctx = st.find(request.context_id);
          if (!ctx) return refused_cell(unknown_context_error(request.context_id));
          if (request.lang_given && request.lang != ctx->lang)
            return refused_cell({ec::invalid_request,
                                 "Context '" + ctx->id + "' runs " +
                                     std::string{to_string(ctx->lang)} + ", not " +
                                     std::string{to_string(request.lang)},
                                 0});
        } else {
          const auto lang = request.lang_given ? request.lang : st.lang;
          ctx = st.default_context(lang);
          if (!ctx) {
            caf::error err;
            ctx = add_context(self, lang, "/home/user", true, err);
            if (!ctx) return refused_cell(to_service_error(err));
          }
        }
        auto promise = self->make_response_promise<cell_outcome>();
        cell c;
        c.request = std::move(request);
        c.sink = std::move(sink);
        c.promise = promise;
        ctx->queue.push_back(std::move(c));
        st.touch();
        send_next(self, *ctx);
        return promise;
      },
      [self](atom::stop, const std::string& cell_id) {
        auto& st = self->state;
        auto [ctx, c] = st.find_cell(cell_id);
        if (!ctx) return;
        if (ctx->current && &*ctx->current == c) {
          stop_cell(self, *ctx, std::nullopt, {});
          return;
        }
        // Still queued: it never ran.
        cell_outcome out;
        out.how = cell_end::interrupted;
        out.detail = "the execution was stopped before it started";
        out.context_id = ctx->id;
        c->promise.deliver(std::move(out));
        auto& q = ctx->queue;
        for (auto it = q.begin(); it != q.end(); ++it)
          if (&*it == c) {
            q.erase(it);
            break;
          }
      },
      [self](atom::input, const std::string& cell_id, std::string& data, bool eof) {
        auto [ctx, c] = self->state.find_cell(cell_id);
        if (!c) return;
        if (!c->sent) {
          // Queued: the input waits with the request.
          c->request.stdin_data += data;
          if (eof) c->request.stdin_open = false;
          return;
        }
        c->in.feed(data, eof);
        pump_stdin(self, *c);
      },
      [self](atom::drain, const std::string& cell_id) {
        auto [ctx, c] = self->state.find_cell(cell_id);
        if (!c) return;
        c->drain_scheduled = false;
        pump_stdin(self, *c);
      },
      [self](atom::interrupt, const std::string& context_id) -> std::uint64_t {
        auto& st = self->state;
        std::uint64_t count = 0;
        for (auto& [id, ctx] : st.contexts) {
          if (!context_id.empty() && id != context_id) continue;
          if (!ctx.current || !st.channel) continue;
          st.channel->signal(ctx.slot, SIGINT);
          ++count;
        }
        st.touch();
        return count;
      },
      [self](atom::create, context_request& request) -> caf::result<context_info> {
        auto& st = self->state;
        if (!st.process) return make_error(ec::sandbox_start_failed, st.start_error);
        if (request.as_default)
          if (auto* existing = st.default_context(request.lang)) return st.info(*existing);
        caf::error err;
        auto* ctx =
            add_context(self, request.lang, std::move(request.cwd), request.as_default, err);
        if (!ctx) return err;
        st.touch();
        if (ctx->state == kernel_state::dead)
          return make_error(ec::sandbox_start_failed, ctx->start_error);
        if (request.as_default) return st.info(*ctx);  // cells wait in its queue meanwhile
        auto promise = self->make_response_promise<context_info>();
        ctx->on_ready.push_back(promise);
        return promise;
      },
      [self](atom::get) {
        std::vector<const context*> live;
        for (const auto& [id, ctx] : self->state.contexts)
          if (!ctx.removed) live.push_back(&ctx);
        std::sort(live.begin(), live.end(),
                  [](const context* a, const context* b) { return a->created < b->created; });
        std::vector<context_info> out;
        for (const auto* ctx : live) out.push_back(self->state.info(*ctx));
        return out;
      },
      [self](atom::remove, const std::string& context_id) -> caf::result<bool> {
        auto& st = self->state;
        auto* ctx = st.find(context_id);
        if (!ctx) return unknown_context(context_id);
        ctx->removed = true;
        if (ctx->current) stop_cell(self, *ctx, cell_end::killed, "the context was deleted");
        fail_queue(*ctx, cell_end::killed, "the context was deleted");
        if (ctx->state == kernel_state::dead && !ctx->current) {
          st.slot_owner[ctx->slot].clear();
          st.contexts.erase(context_id);
        } else {
          kill_kernel(self, *ctx);
        }
        st.touch();
        return true;
      },
      [self](atom::restart, const std::string& context_id) -> caf::result<context_info> {
        auto& st = self->state;
        auto* ctx = st.find(context_id);
        if (!ctx) return unknown_context(context_id);
        auto promise = self->make_response_promise<context_info>();
        ctx->on_ready.push_back(promise);
        if (ctx->current) {
          ctx->current->forced =
              stop_reason{cell_end::restarted, "the context was restarted: its state is lost"};
          ctx->current->kernel_killed = true;
        }
        if (ctx->state == kernel_state::dead) {
          start_kernel(self, *ctx);
          if (ctx->state == kernel_state::dead) {
            ctx->on_ready.pop_back();
            return make_error(ec::sandbox_start_failed, ctx->start_error);
          }
        } else {
          ctx->restart_on_exit = true;
          kill_kernel(self, *ctx);
        }
        st.touch();
        return promise;
      },
      [self](atom::adopt, sandbox_settings& settings) -> caf::result<bool> {
        auto& st = self->state;
        if (!st.process) return make_error(ec::sandbox_start_failed, st.start_error);
        // Visible to the HTTP layer once the adopting request has its reply.
        settings.record->files = st.files;
        schedule_expiry(self, st.life.adopt(std::move(settings)));
        auto* first = st.in_slot(0);
        if (first && first->state == kernel_state::ready) return true;
        if (first && first->state == kernel_state::dead)
          return make_error(ec::sandbox_start_failed, first->start_error);
        st.adopt_promise = self->make_response_promise<bool>();
        return *st.adopt_promise;
      },
      [self](atom::timeout, std::chrono::milliseconds idle_timeout) {
        self->state.life.set_idle_timeout(idle_timeout);
      },
      [self](atom::touch) { self->state.touch(); },
      [self](atom::expire) {
        auto& st = self->state;
        if (!st.life.stateful) return;
        auto check = st.life.expire(st.busy());
        if (!check.end_reason.empty())
          end_sandbox(self, cell_end::killed, check.end_reason);
        else
          schedule_expiry(self, check.next);
      },
      [self](atom::kill) {
        auto& st = self->state;
        st.kill_requested = true;
        if (st.process)
          st.process->kill();
        else
          end_sandbox(self, cell_end::killed, "the sandbox was killed");
      },
      [self](atom::escalate, const std::string& cell_id, std::uint32_t step) {
        auto& st = self->state;
        auto [ctx, c] = st.find_cell(cell_id);
        if (!ctx || !ctx->current || &*ctx->current != c) return;  // it ended meanwhile
        const auto elapsed = interrupt_repeat * step;
        const auto grace = st.env.interrupt_grace;
        if (elapsed < grace) {
          // Repeat: a runner can miss a SIGINT at a few instants.
          if (st.channel) st.channel->signal(ctx->slot, SIGINT);
          self->delayed_send(self, interrupt_repeat, atom::escalate_v, cell_id, step + 1);
        } else if (!c->kernel_killed) {
          log::info("cell did not stop on interrupt: restarting its kernel",
                    {{"executionId", cell_id}, {"language", to_string(ctx->lang)}});
          c->kernel_killed = true;
          ctx->restart_on_exit = true;
          kill_kernel(self, *ctx);
          self->delayed_send(self, grace, atom::escalate_v, cell_id, step + 1);
        } else {
          log::error("kernel did not die on SIGKILL: killing the sandbox",
                     {{"executionId", cell_id}});
          if (st.process) st.process->kill();
        }
      },
      [self](atom::runner, std::uint32_t slot, nlohmann::json& event) {
        auto& st = self->state;
        auto* ctx = st.in_slot(slot);
        if (!ctx) return;
        const auto type = string_field(event, "type");
        if (type == "ready") {
          if (ctx->state == kernel_state::ready) return;
          ctx->state = kernel_state::ready;
          if (!st.first_ready_reported) {
            st.first_ready_reported = true;
            metrics::sandbox_started(state::clock::now() - st.launched_at);
          }
          for (auto& p : ctx->on_ready) p.deliver(st.info(*ctx));
          ctx->on_ready.clear();
          if (slot == 0 && st.adopt_promise) {
            st.adopt_promise->deliver(true);
            st.adopt_promise.reset();
          }
          send_next(self, *ctx);
        } else if (type == "end") {
          if (!ctx->current || !ctx->current->sent) return;
          auto& c = *ctx->current;
          cell_outcome out;
          if (c.forced) {
            out.how = c.forced->how;
            out.detail = c.forced->detail;
          } else if (string_field(event, "status") == "interrupted") {
            out.how = cell_end::interrupted;
            out.detail = "the cell was interrupted";
          }
          finish_cell(self, *ctx, std::move(out));
        } else if (auto ev = parse_kernel_event(event)) {
          if (ctx->current) self->send(ctx->current->sink, atom::event_v, std::move(*ev));
        }
      },
      [self](atom::broken, std::uint32_t slot, const std::string& reason) {
        auto& st = self->state;
        log::error("kernel broke the runner protocol", {{"reason", reason}});
        auto* ctx = st.in_slot(slot);
        if (!ctx) return;
        if (!st.life.stateful) {
          cell_outcome out;
          out.how = cell_end::broken;
          out.detail = "the kernel broke the protocol: " + reason;
          finish_cell(self, *ctx, std::move(out));
          if (st.process) st.process->kill();
          return;
        }
        if (ctx->current) {
          ctx->current->forced =
              stop_reason{cell_end::broken, "the kernel broke the protocol: " + reason};
          ctx->current->kernel_killed = true;
        }
        kill_kernel(self, *ctx);
      },
      [self](atom::limit, std::uint32_t slot, const std::string& stream) {
        auto& st = self->state;
        auto* ctx = st.in_slot(slot);
        if (!ctx || !ctx->current) return;
        auto& c = *ctx->current;
        if (stream == "stdout")
          c.stdout_capped = true;
        else if (stream == "stderr")
          c.stderr_capped = true;
        else
          c.results_capped = true;
        log::info("output limit reached: stopping the cell", {{"stream", stream}});
        stop_cell(self, *ctx, cell_end::output_limit, "output exceeded the limit");
      },
      [self](atom::ended, std::uint32_t slot, sandbox_exit& exit) {
        auto& st = self->state;
        auto* ctx = st.in_slot(slot);
        if (!ctx) return;
        const bool was_ready = ctx->state == kernel_state::ready;
        ctx->state = kernel_state::dead;
        if (!was_ready && !ctx->restart_on_exit)
          ctx->start_error = !exit.setup_error.empty() ? exit.setup_error
                                                       : "the kernel exited before it was ready";
        if (ctx->removed) {
          if (ctx->current)
            answer_current(self, *ctx, ended_outcome(facts(st, *ctx->current, false), exit));
          st.slot_owner[slot].clear();
          st.contexts.erase(ctx->id);
          return;
        }
        // A sandbox being killed loses its kernels for good: no restart to fail.
        const bool restart =
            !st.kill_requested && (ctx->restart_on_exit || (st.life.stateful && was_ready));
        if (ctx->current) {
          auto out = ended_outcome(facts(st, *ctx->current, st.life.stateful), exit);
          if (!was_ready && !ctx->current->kernel_killed && !ctx->current->forced) {
            out.how = cell_end::start_failed;
            out.detail = ctx->start_error;
          }
          if (st.life.stateful && was_ready)
            ctx->current->kernel_killed = true;  // its state is lost
          answer_current(self, *ctx, std::move(out));
        }
        if (!was_ready && !ctx->restart_on_exit) {
          log::warn("kernel failed to start",
                    {{"language", to_string(ctx->lang)}, {"reason", ctx->start_error}});
          kernel_failed(self, *ctx);
        }
        if (restart && ctx->state == kernel_state::dead) {
          start_kernel(self, *ctx);
          if (ctx->state == kernel_state::dead) kernel_failed(self, *ctx);
        }
        send_next(self, *ctx);
      },
      [self](atom::exited, sandbox_exit& exit) {
        auto& st = self->state;
        // Cells still running when the whole sandbox went (kill, memory, limits).
        for (auto& [id, ctx] : st.contexts) {
          if (ctx.current) {
            auto out = ended_outcome(facts(st, *ctx.current, false), exit);
            if (ctx.state != kernel_state::ready && !ctx.current->forced && !st.kill_requested) {
              out.how = cell_end::start_failed;
              out.detail = !exit.setup_error.empty() ? exit.setup_error
                                                     : "the kernel exited before it was ready";
            }
            finish_cell(self, ctx, std::move(out));
          }
        }
        const auto why = !exit.setup_error.empty() ? exit.setup_error
                         : st.kill_requested       ? std::string{"the sandbox was killed"}
                                                   : std::string{"the sandbox ended"};
        if (!st.first_ready_reported && !st.kill_requested)
          log::error("sandbox failed to start", {{"reason", why}});
        end_sandbox(self, st.kill_requested ? cell_end::killed : cell_end::start_failed, why);
      },
      [self](atom::tick) {
        auto& st = self->state;
        st.tick_scheduled = false;
        bool any = false;
        const auto now_ns = st.process ? st.process->read_cpu_ns() : 0;  // the whole tree's
        for (auto& [id, ctx] : st.contexts) {
          if (!ctx.current || !ctx.current->sent || ctx.current->forced) continue;
          const auto limit = ctx.current->request.cpu_limit_ms;
          if (limit == 0) continue;
          if (cpu_ms_since(*ctx.current, now_ns) > limit) {
            log::info("CPU time limit reached: stopping the cell", {{"limitMs", limit}});
            stop_cell(self, ctx, cell_end::cpu_limit,
                      "The execution used more than its CPU time limit of " +
                          std::to_string(limit) + " ms");
            continue;
          }
          any = true;
        }
        if (any) schedule_cpu_tick(self);
      },
  };
}

}  // namespace codeexec

namespace codeexec {

sandbox_actor spawn_local_sandbox(caf::actor_system& system, sandbox_environment env, language lang,
                                  resource_limits limits) {
  return system.spawn<caf::detached>(local_sandbox, std::move(env), lang, limits);
}

}  // namespace codeexec
