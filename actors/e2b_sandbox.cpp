#include "actors/e2b_sandbox.hpp"

#include "actors/actor_metrics.hpp"
#include "actors/sandbox_directory.hpp"
#include "actors/sandbox_errors.hpp"
#include "core/json_mapping.hpp"
#include "core/log.hpp"
#include "e2b/execute_stream.hpp"

#include <caf/all.hpp>

#include <random>

namespace codeexec {
namespace {

using pointer = e2b_sandbox_actor::stateful_pointer<e2b_sandbox_state>;
using state = e2b_sandbox_state;
using cell = e2b_sandbox_state::cell;
using call = e2b_sandbox_state::call;
using namespace std::chrono_literals;

/// Room above the output cap for one NDJSON line: its JSON framing and escapes.
constexpr std::uint64_t line_slack_bytes = 1 << 20;
/// Largest reply of a contexts or timeout call.
constexpr std::size_t max_reply_bytes = 1 << 20;
/// E2B's timeout is kept this far beyond the service's own idle end, and renewed when
/// less than half of this margin is left.
constexpr auto remote_timeout_margin = std::chrono::seconds(60);

const std::string& remote_id(pointer self) {
  static const std::string none;
  return self->state.remote ? self->state.remote->id() : none;
}

/// Posts the reply of a contexts or timeout call back to the actor.
std::function<void(e2b::http_response)> reply_to(pointer self, std::uint64_t call_id) {
  return [handle = caf::actor_cast<e2b_sandbox_actor>(self), call_id](e2b::http_response r) {
    caf::anon_send(handle, atom::reply_v, call_id, std::move(r));
  };
}

// ---- lifetime ------------------------------------------------------------------------

/// Answers everything still waiting and ends the actor; the state's destruction cancels
/// the streams and kills the remote sandbox.
/// Cells get `refused` if given, else `how`; a cell the service was stopping gets why.
/// Answers a contexts call with `err` (a call holds the promise of its kind only; the
/// others are unset and ignore it).
void fail_call(call& pending, const caf::error& err) {
  pending.info.deliver(err);
  pending.list.deliver(err);
  pending.removed.deliver(err);
}

void end_sandbox(pointer self, cell_end how, const std::string& detail,
                 const std::optional<service_error>& refused = std::nullopt) {
  auto& st = self->state;
  for (auto& [id, c] : st.cells) {
    c.promise.deliver(!c.forced && refused ? refused_cell(*refused)
                                           : ended_cell(c.forced, how, detail));
  }
  st.cells.clear();
  const auto gone = refused ? make_error(*refused) : make_error(ec::sandbox_ended, detail);
  for (auto& [id, pending] : st.calls) fail_call(pending, gone);
  st.calls.clear();
  if (st.adopt_promise) st.adopt_promise->deliver(make_error(ec::sandbox_start_failed, detail));
  st.adopt_promise.reset();
  self->quit();
}

/// E2B says the sandbox no longer exists: everything in it fails with that, and the
/// actor ends (the directory forgets the sandbox).
void sandbox_lost(pointer self, const e2b::http_response& response) {
  const auto err = e2b::sandbox_gone_error(remote_id(self), response);
  log::warn("E2B sandbox is gone", {{"e2bSandboxId", remote_id(self)}, {"reason", err.message}});
  end_sandbox(self, cell_end::died, err.message, err);
}

/// Keeps E2B's timeout beyond the service's idle end (and within its lifetime).
void sync_remote_timeout(pointer self) {
  auto& st = self->state;
  if (!st.remote || !st.life.stateful) return;
  const auto now = state::clock::now();
  const auto life_end = st.life.created + st.life.settings.max_lifetime + remote_timeout_margin;
  const auto wanted =
      std::min(now + st.life.settings.idle_timeout + remote_timeout_margin, life_end);
  if (st.remote_end >= wanted - remote_timeout_margin / 2 && st.remote_end <= life_end) return;
  const auto seconds = std::chrono::ceil<std::chrono::seconds>(wanted - now);
  st.remote_end = now + seconds;
  const auto id = st.next_call++;
  auto& pending = st.calls[id];
  pending.what = call::kind::timeout;
  pending.request = e2b::transfer(
      *st.env.http,
      st.env.http->submit_buffered(e2b::timeout_request(*st.env.api, remote_id(self), seconds),
                                   max_reply_bytes, reply_to(self, id)));
}

// ---- cells ---------------------------------------------------------------------------

std::uint64_t output_cap(pointer self, const cell& c) {
  return c.request.max_output_bytes != 0 ? c.request.max_output_bytes
                                         : self->state.limits.output_bytes;
}

/// Ends a running cell early by closing its stream (E2B interrupts the kernel when its
/// client goes, and the kernel keeps its state); the reply follows the stream's end.
void stop_cell(cell& c, cell_end why, std::string detail) {
  decide_stop(c.forced, why, std::move(detail));
  c.stream.cancel();
}

/// Sends a cell to E2B as one streaming POST /execute.
void send_cell(pointer self, cell& c) {
  auto& st = self->state;
  c.sent = true;
  const auto& r = c.request;
  const auto lang = r.lang_given ? r.lang : st.lang;
  auto request =
      e2b::execute_request(*st.env.api, st.remote->info(), r.code, r.context_id, lang, r.env);
  const auto max_line = static_cast<std::size_t>(output_cap(self, c) + line_slack_bytes);
  auto handle = caf::actor_cast<e2b_sandbox_actor>(self);
  auto callbacks = e2b::execute_stream_callbacks(
      max_line,
      [handle, id = r.id](kernel_event ev) {
        caf::anon_send(handle, atom::event_v, id, std::move(ev));
      },
      [handle, id = r.id](e2b::stream_end end) {
        caf::anon_send(handle, atom::ended_v, id, std::move(end));
      });
  c.stream =
      e2b::transfer(*st.env.http, st.env.http->submit(std::move(request), std::move(callbacks)));
}

/// Charges an event against the cell's output cap; false when the cap is passed (the
/// event is cut to what fits, or dropped for a result).
bool charge(pointer self, cell& c, kernel_event& ev) {
  const auto cap = output_cap(self, c);
  auto take_text = [&](std::uint64_t& used, bool& capped) {
    if (used + ev.text.size() <= cap) {
      used += ev.text.size();
      return true;
    }
    ev.text.resize(static_cast<std::size_t>(cap - std::min(cap, used)));
    used = cap;
    capped = true;
    return false;
  };
  switch (ev.type) {
    case kernel_event::kind::stdout_text:
      return take_text(c.stdout_bytes, c.stdout_capped);
    case kernel_event::kind::stderr_text:
      return take_text(c.stderr_bytes, c.stderr_capped);
    case kernel_event::kind::result: {
      const auto size =
          ev.result.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).size();
      if (c.result_bytes + size > cap) return false;
      c.result_bytes += size;
      return true;
    }
    case kernel_event::kind::error:
      return true;
  }
  return true;
}

/// The outcome of a cell whose stream ended.
cell_outcome stream_outcome(pointer self, const cell& c, const e2b::stream_end& end) {
  const auto& st = self->state;
  const auto& response = end.response;
  const auto status = response.result.status;
  cell_outcome out;
  out.stdout_truncated = c.stdout_capped;
  out.stderr_truncated = c.stderr_capped;
  out.context_id = c.request.context_id;
  if (c.forced) {
    out.how = c.forced->how;
    out.detail = c.forced->detail;
    // E2B interrupts the kernel when the stream closes; its state survives.
    if (st.life.stateful) out.state_kept = true;
    return out;
  }
  if (end.oversized) {
    out.how = cell_end::output_limit;
    out.detail = "a line of E2B's output was longer than the output limit";
    out.stdout_truncated = out.stderr_truncated = true;
    return out;
  }
  // Refused before any line: an HTTP error, or no answer at all (status 0).
  if (status != 200) {
    if (status == 404 && !c.request.context_id.empty())
      return refused_cell(unknown_context_error(c.request.context_id));
    return refused_cell(e2b::call_error("run the code", response));
  }
  if (!end.problem.empty()) {
    out.how = cell_end::broken;
    out.detail = "E2B's output stream could not be read: " + end.problem;
    return out;
  }
  if (!end.complete) {
    out.how = cell_end::broken;
    out.detail = "E2B's output stream ended before the end of the execution (after " +
                 std::to_string(end.lines) + " lines: " +
                 (response.result.completed() ? std::string{"the connection was closed"}
                                              : response.result.error) +
                 "); the output so far is kept";
    return out;
  }
  return out;  // finished
}

// ---- contexts ------------------------------------------------------------------------

std::optional<context_info> parse_context(const nlohmann::json& j) {
  if (!j.is_object()) return std::nullopt;
  context_info info;
  info.id = string_field(j, "id");
  if (info.id.empty()) return std::nullopt;
  info.lang = parse_language(string_field(j, "language")).value_or(language::python);
  info.cwd = string_field(j, "cwd");
  return info;
}

/// Starts a contexts call whose reply the `reply` handler finishes.
call& start_call(pointer self, call::kind what, e2b::http_request request) {
  auto& st = self->state;
  const auto id = st.next_call++;
  auto& pending = st.calls[id];
  pending.what = what;
  pending.request = e2b::transfer(
      *st.env.http,
      st.env.http->submit_buffered(std::move(request), max_reply_bytes, reply_to(self, id)));
  return pending;
}

/// The error of a failed contexts call.
caf::error call_error(const call& pending, const e2b::http_response& response) {
  if (response.result.status == 404 && !pending.context_id.empty())
    return unknown_context(pending.context_id);
  return make_error(e2b::call_error("manage the sandbox's contexts", response));
}

void finish_call(pointer self, call& pending, e2b::http_response& response) {
  auto& st = self->state;
  const bool ok =
      response.result.completed() && response.result.status >= 200 && response.result.status < 300;
  if (!ok && e2b::sandbox_gone(response) &&
      (pending.what == call::kind::timeout || response.result.status == 502)) {
    // The call is out of st.calls already: sandbox_lost would not answer it.
    fail_call(pending, make_error(e2b::sandbox_gone_error(remote_id(self), response)));
    sandbox_lost(self, response);
    return;
  }
  const auto body = nlohmann::json::parse(response.body, nullptr, false);
  switch (pending.what) {
    case call::kind::timeout:
      if (!ok)
        log::warn("could not set an E2B sandbox's timeout",
                  {{"e2bSandboxId", remote_id(self)},
                   {"error", e2b::call_error("set the timeout", response).message}});
      return;
    case call::kind::create_context:
    case call::kind::restart_context: {
      if (!ok) {
        pending.info.deliver(call_error(pending, response));
        return;
      }
      auto info = pending.what == call::kind::create_context ? parse_context(body) : std::nullopt;
      if (pending.what == call::kind::restart_context) {
        auto known = st.contexts.find(pending.context_id);
        info = known != st.contexts.end() ? known->second : context_info{};
        info->id = pending.context_id;
      }
      if (!info) {
        pending.info.deliver(
            make_error(ec::e2b_refused, "E2B's reply to creating a context has no context id"));
        return;
      }
      st.contexts[info->id] = *info;
      pending.info.deliver(st.info(*info));
      return;
    }
    case call::kind::list_contexts: {
      if (!ok || !body.is_array()) {
        pending.list.deliver(
            ok ? make_error(ec::e2b_refused, "E2B's list of contexts is not a list")
               : call_error(pending, response));
        return;
      }
      std::vector<context_info> out;
      std::map<language, bool> has_default;
      for (const auto& item : body) {
        auto info = parse_context(item);
        if (!info) continue;
        // E2B does not mark its per-language default contexts: the first of each
        // language is the one it created first.
        info->is_default = !has_default[info->lang];
        has_default[info->lang] = true;
        st.contexts[info->id] = *info;
        out.push_back(st.info(*info));
      }
      pending.list.deliver(std::move(out));
      return;
    }
    case call::kind::remove_context:
      if (!ok) {
        pending.removed.deliver(call_error(pending, response));
        return;
      }
      st.contexts.erase(pending.context_id);
      pending.removed.deliver(true);
      return;
  }
}

/// Whether the sandbox can take a contexts call now, else the error to reply with.
std::optional<caf::error> not_ready(pointer self) {
  auto& st = self->state;
  if (st.failure) return make_error(*st.failure);
  if (!st.remote) return make_error(ec::sandbox_start_failed, "the E2B sandbox is still starting");
  return std::nullopt;
}

// ---- creation ------------------------------------------------------------------------

void start_create(pointer self) {
  auto& st = self->state;
  auto request = e2b::create_request(*st.env.api, st.env.initial_timeout, st.env.metadata);
  auto handle = caf::actor_cast<e2b_sandbox_actor>(self);
  auto* http = st.env.http;
  const auto* api = st.env.api;
  // Never cancelled: a create cut short may still make a sandbox in E2B, whose id only
  // the reply tells. The reply always comes, and owns what it created (see below).
  http->submit_buffered(
      std::move(request), max_reply_bytes, [handle, http, api](e2b::http_response response) {
        std::shared_ptr<e2b::remote_sandbox> sandbox;
        const auto status = response.result.status;
        if (response.result.completed() && (status == 201 || status == 200)) {
          auto parsed = e2b::parse_sandbox(response.body);
          if (auto* info = std::get_if<e2b::sandbox_info>(&parsed)) {
            // Owned from here on: if the actor has ended, the message is
            // dropped and, with it, the sandbox is killed.
            sandbox = std::make_shared<e2b::remote_sandbox>(*http, *api, *info);
          } else {
            response.result.status = 502;
            response.body =
                "E2B's reply to the create has no usable sandbox: " + std::get<std::string>(parsed);
          }
        }
        caf::anon_send(handle, atom::created_v, std::move(sandbox), std::move(response));
      });
}

/// The create failed for good: every waiting request gets the error.
void creation_failed(pointer self, service_error err) {
  auto& st = self->state;
  log::error("E2B sandbox could not be created",
             {{"reason", err.message}, {"attempts", st.create_attempt + 1}});
  st.failure = err;
  for (const auto& id : st.waiting) {
    auto it = st.cells.find(id);
    if (it == st.cells.end()) continue;
    it->second.promise.deliver(refused_cell(err));
    st.cells.erase(it);
  }
  st.waiting.clear();
  if (st.adopt_promise) st.adopt_promise->deliver(make_error(err));
  st.adopt_promise.reset();
}

}  // namespace

// ---- state helpers -------------------------------------------------------------------

context_info e2b_sandbox_state::info(context_info ctx) const {
  for (const auto& [id, c] : cells) {
    const auto lang_of_cell = c.request.lang_given ? c.request.lang : lang;
    const bool here = c.request.context_id.empty() ? ctx.is_default && ctx.lang == lang_of_cell
                                                   : c.request.context_id == ctx.id;
    if (!here) continue;
    if (c.sent)
      ++ctx.running;
    else
      ++ctx.queued;
  }
  return ctx;
}

// ---- behavior ------------------------------------------------------------------------

e2b_sandbox_actor::behavior_type e2b_sandbox(pointer self, e2b_environment env, language lang,
                                             resource_limits limits) {
  count_exit(self, metrics::actor_kind::sandbox);
  auto& st = self->state;
  st.env = std::move(env);
  st.lang = lang;
  st.limits = limits;
  st.started = state::clock::now();
  start_create(self);
  return {
      [self](atom::run, run_cell& request, event_sink_actor sink) -> caf::result<cell_outcome> {
        auto& st = self->state;
        if (request.stdin_open || !request.stdin_data.empty())
          return refused_cell({ec::not_supported_by_backend, std::string{e2b_no_stdin}, 0});
        if (st.failure) return refused_cell(*st.failure);
        const auto id = request.id;
        auto [it, fresh] = st.cells.try_emplace(id);
        if (!fresh)
          return refused_cell({ec::invalid_request, "A cell '" + id + "' already runs", 0});
        auto& c = it->second;
        c.request = std::move(request);
        c.sink = std::move(sink);
        c.promise = self->make_response_promise<cell_outcome>();
        st.touch();
        if (st.remote) {
          send_cell(self, c);
          sync_remote_timeout(self);
        } else {
          st.waiting.push_back(id);
        }
        return c.promise;
      },
      [self](atom::stop, const std::string& cell_id) {
        auto& st = self->state;
        auto it = st.cells.find(cell_id);
        if (it == st.cells.end()) return;
        if (it->second.sent) {
          stop_cell(it->second, cell_end::interrupted,
                    "the cell was interrupted (its E2B stream was closed)");
          return;
        }
        cell_outcome out;
        out.how = cell_end::interrupted;
        out.detail = "the execution was stopped before it started";
        it->second.promise.deliver(std::move(out));
        std::erase(st.waiting, cell_id);
        st.cells.erase(it);
      },
      [](atom::input, const std::string&, const std::string&, bool) {
        // Cells with stdin are refused (by the service, and at `run`): nothing can be
        // waiting for input here.
      },
      [self](atom::interrupt, const std::string& context_id) -> std::uint64_t {
        auto& st = self->state;
        std::uint64_t count = 0;
        for (auto& [id, c] : st.cells) {
          if (!c.sent || c.forced) continue;
          if (!context_id.empty() && c.request.context_id != context_id) continue;
          // E2B has no interrupt call: closing the stream makes its server interrupt the
          // kernel. The cell ends as a local one would, with a KeyboardInterrupt.
          kernel_event ev;
          ev.type = kernel_event::kind::error;
          ev.error = {"KeyboardInterrupt", "the execution was interrupted", ""};
          self->send(c.sink, atom::event_v, std::move(ev));
          stop_cell(c, cell_end::interrupted, "the cell was interrupted");
          ++count;
        }
        st.touch();
        return count;
      },
      [self](atom::create, context_request& request) -> caf::result<context_info> {
        if (auto err = not_ready(self)) return std::move(*err);
        // E2B's sandboxes have their default contexts already.
        if (request.as_default) return context_info{"", request.lang, request.cwd, true, 0, 0};
        auto& st = self->state;
        st.touch();
        auto& pending = start_call(
            self, call::kind::create_context,
            e2b::create_context_request(*st.env.api, st.remote->info(), request.lang, request.cwd));
        pending.info = self->make_response_promise<context_info>();
        return pending.info;
      },
      [self](atom::get) -> caf::result<std::vector<context_info>> {
        if (auto err = not_ready(self)) return std::move(*err);
        auto& st = self->state;
        auto& pending = start_call(self, call::kind::list_contexts,
                                   e2b::list_contexts_request(*st.env.api, st.remote->info()));
        pending.list = self->make_response_promise<std::vector<context_info>>();
        return pending.list;
      },
      [self](atom::remove, const std::string& context_id) -> caf::result<bool> {
        if (auto err = not_ready(self)) return std::move(*err);
        auto& st = self->state;
        st.touch();
        auto& pending =
            start_call(self, call::kind::remove_context,
                       e2b::remove_context_request(*st.env.api, st.remote->info(), context_id));
        pending.context_id = context_id;
        pending.removed = self->make_response_promise<bool>();
        return pending.removed;
      },
      [self](atom::restart, const std::string& context_id) -> caf::result<context_info> {
        if (auto err = not_ready(self)) return std::move(*err);
        auto& st = self->state;
        st.touch();
        auto& pending =
            start_call(self, call::kind::restart_context,
                       e2b::restart_context_request(*st.env.api, st.remote->info(), context_id));
        pending.context_id = context_id;
        pending.info = self->make_response_promise<context_info>();
        return pending.info;
      },
      [self](atom::adopt, sandbox_settings& settings) -> caf::result<bool> {
        auto& st = self->state;
        if (st.failure) return make_error(*st.failure);
        schedule_expiry(self, st.life.adopt(std::move(settings)));
        if (st.remote) {
          sync_remote_timeout(self);
          return true;
        }
        st.adopt_promise = self->make_response_promise<bool>();
        return *st.adopt_promise;
      },
      [self](atom::timeout, std::chrono::milliseconds idle_timeout) {
        self->state.life.set_idle_timeout(idle_timeout);
        sync_remote_timeout(self);
      },
      [self](atom::touch) {
        self->state.touch();
        sync_remote_timeout(self);
      },
      [self](atom::expire) {
        auto& st = self->state;
        if (!st.life.stateful) return;
        auto check = st.life.expire(st.busy());
        if (!check.end_reason.empty()) {
          end_sandbox(self, cell_end::killed, check.end_reason);
          return;
        }
        sync_remote_timeout(self);  // running cells keep the sandbox, in E2B too
        schedule_expiry(self, check.next);
      },
      [self](atom::kill) { end_sandbox(self, cell_end::killed, "the sandbox was killed"); },
      [self](atom::created, std::shared_ptr<e2b::remote_sandbox>& sandbox,
             e2b::http_response& response) {
        auto& st = self->state;
        if (sandbox) {
          st.remote = std::move(sandbox);
          st.remote_end = state::clock::now() + st.env.initial_timeout;
          st.live_sandbox.emplace(metrics::live_gauge::sandboxes);
          metrics::sandbox_started(state::clock::now() - st.started);
          log::info("E2B sandbox created",
                    {{"e2bSandboxId", st.remote->id()}, {"attempts", st.create_attempt + 1}});
          for (const auto& id : st.waiting)
            if (auto it = st.cells.find(id); it != st.cells.end()) send_cell(self, it->second);
          st.waiting.clear();
          if (st.adopt_promise) st.adopt_promise->deliver(true);
          st.adopt_promise.reset();
          sync_remote_timeout(self);
          return;
        }
        if (e2b::transient(response) && st.create_attempt < st.env.api->create_retries) {
          static thread_local std::minstd_rand jitter_source{std::random_device{}()};
          const double jitter = std::uniform_real_distribution<double>{0.5, 1.0}(jitter_source);
          const auto delay =
              e2b::retry_delay(st.create_attempt, e2b::retry_after(response.headers), jitter);
          log::warn("E2B sandbox create failed: retrying",
                    {{"attempt", st.create_attempt + 1},
                     {"delayMs", delay.count()},
                     {"reason", e2b::call_error("create a sandbox", response).message}});
          self->delayed_send(self, delay, atom::retry_v, st.create_attempt + 1);
          return;
        }
        creation_failed(self, e2b::call_error("create a sandbox", response));
      },
      [self](atom::retry, std::uint32_t attempt) {
        self->state.create_attempt = attempt;
        start_create(self);
      },
      [self](atom::reply, std::uint64_t call_id, e2b::http_response& response) {
        auto& st = self->state;
        auto it = st.calls.find(call_id);
        if (it == st.calls.end()) return;
        auto pending = std::move(it->second);
        st.calls.erase(it);
        pending.request.release();
        finish_call(self, pending, response);
      },
      [self](atom::event, const std::string& cell_id, kernel_event& ev) {
        auto& st = self->state;
        auto it = st.cells.find(cell_id);
        if (it == st.cells.end() || it->second.forced) return;
        auto& c = it->second;
        const bool fits = charge(self, c, ev);
        // What passes the cap goes on: a whole result, or the part of a text that fits.
        const bool forward = ev.type == kernel_event::kind::result  ? fits
                             : ev.type == kernel_event::kind::error ? true
                                                                    : !ev.text.empty();
        if (forward) self->send(c.sink, atom::event_v, std::move(ev));
        if (!fits) {
          log::info("output limit reached: stopping the cell", {{"executionId", cell_id}});
          stop_cell(c, cell_end::output_limit, "output exceeded the limit");
        }
      },
      [self](atom::ended, const std::string& cell_id, e2b::stream_end& end) {
        auto& st = self->state;
        auto it = st.cells.find(cell_id);
        if (it == st.cells.end()) return;
        auto& c = it->second;
        c.stream.release();
        if (!c.forced && e2b::sandbox_gone(end.response) && end.response.result.status == 502) {
          sandbox_lost(self, end.response);
          return;
        }
        auto out = stream_outcome(self, c, end);
        c.promise.deliver(std::move(out));
        st.cells.erase(it);
        st.touch();
      },
  };
}

}  // namespace codeexec
