#include "actors/execution.hpp"

#include "actors/actor_metrics.hpp"
#include "core/json_mapping.hpp"
#include "core/log.hpp"

#include <caf/all.hpp>

namespace codeexec {
namespace {

void set_error(execution_result& result, verdict status, std::string name, std::string value) {
  result.status = status;
  result.error = execution_error{std::move(name), std::move(value), ""};
}

}  // namespace

execution_state::~execution_state() {
  if (finished || !target.on_done) return;
  execution_report report{id, std::move(result), {}, std::nullopt};
  report.result.status = verdict::sandbox_error;
  report.result.error = execution_error{"SandboxError", "the execution ended unexpectedly", ""};
  target.on_done(std::move(report));
}

void execution_state::publish(std::string message) {
  if (target.registry)
    caf::anon_send(target.registry, atom::publish_v, request.client_id, id, std::move(message));
}

void execution_state::emit(const kernel_event& event) {
  // Messages only for WebSocket subscribers: a plain /execute has none to build for.
  if (target.registry)
    if (auto message = output_message(id, event)) publish(std::move(*message));
  if (target.on_event) target.on_event(event);
}

void apply_outcome(execution_result& result, const cell_outcome& outcome,
                   std::optional<verdict> forced, const std::string& forced_reason) {
  result.usage.cpu_ms = static_cast<std::int64_t>(outcome.cpu_ms);
  result.usage.peak_memory_bytes = outcome.peak_memory_bytes;
  result.stdout_truncated = outcome.stdout_truncated;
  result.stderr_truncated = outcome.stderr_truncated;
  result.exit_code = outcome.exit_code;
  result.signal = outcome.signal;
  // What became of a stateful sandbox's kernel when the service stopped its cell.
  std::string state_note;
  if (outcome.state_kept.value_or(outcome.how == cell_end::interrupted))
    state_note = " (the cell was interrupted; the sandbox's state is kept)";
  else if (!outcome.state_kept.value_or(outcome.how != cell_end::restarted))
    state_note =
        " (the cell did not stop on interrupt: its kernel was restarted, its state is lost)";
  if (forced == verdict::timeout) {
    set_error(result, verdict::timeout, "TimeoutError", forced_reason + state_note);
    return;
  }
  if (forced) {
    set_error(result, *forced, "ExecutionCancelled", forced_reason + state_note);
    return;
  }
  switch (outcome.how) {
    case cell_end::finished:
    case cell_end::interrupted:
      if (outcome.oom_killed) {
        // The kernel survived, but something of the cell was killed by the memory limit.
        set_error(result, verdict::memory_limit, "MemoryError",
                  "The execution exceeded its memory limit and was killed");
        break;
      }
      // The kernel reported the cell's own error (if any) as an event.
      result.status = result.error ? verdict::error : verdict::ok;
      result.exit_code.reset();
      result.signal.reset();
      break;
    case cell_end::output_limit:
      set_error(result, verdict::output_limit, "OutputLimitExceeded",
                "The output exceeded the limit; the execution was stopped" + state_note);
      break;
    case cell_end::cpu_limit:
      set_error(result, verdict::timeout, "TimeoutError", outcome.detail + state_note);
      break;
    case cell_end::killed:
      set_error(result, verdict::killed, "ExecutionKilled", outcome.detail);
      break;
    case cell_end::restarted:
      set_error(result, verdict::killed, "KernelRestarted", outcome.detail);
      break;
    case cell_end::refused:
      set_error(result, verdict::sandbox_error, "ExecutionRefused", outcome.detail);
      break;
    case cell_end::died:
      if (outcome.oom_killed)
        set_error(result, verdict::memory_limit, "MemoryError",
                  "The execution exceeded its memory limit and was killed");
      else if (outcome.signal)
        set_error(result, verdict::killed, "ProcessKilled", outcome.detail);
      else
        set_error(result, verdict::error, "ProcessExited", outcome.detail);
      break;
    case cell_end::start_failed:
    case cell_end::broken:
      set_error(result, verdict::sandbox_error, "SandboxError", outcome.detail);
      break;
  }
}

namespace {

using execution_pointer = execution_actor::stateful_pointer<execution_state>;

/// Publishes the final events, answers the requester and ends the execution.
void finish(execution_pointer self, const cell_outcome& outcome) {
  auto& st = self->state;
  if (st.finished) return;
  st.finished = true;
  const bool had_error = st.result.error.has_value();
  apply_outcome(st.result, outcome, st.forced, st.forced_reason);
  const auto wall_time = std::chrono::steady_clock::now() - st.started;
  const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(wall_time);
  st.result.usage.wall_ms = elapsed.count();
  execution_report report{st.id, std::move(st.result), elapsed, outcome.refusal};
  // An error the service decided on (timeout, limit…) reaches stream clients too.
  if (!had_error && report.result.error) {
    kernel_event ev;
    ev.type = kernel_event::kind::error;
    ev.error = *report.result.error;
    st.emit(ev);
  }
  if (st.target.registry) {
    st.publish(result_message(report));
    const bool ok = !report.result.error;
    st.publish(status_message(
        st.id, ok ? "completed" : "failed",
        ok ? "Execution completed" : "Execution failed: " + report.result.error->name));
  }
  log::info("execution finished", {{"executionId", st.id},
                                   {"language", to_string(st.request.lang)},
                                   {"status", to_string(report.result.status)},
                                   {"durationMs", elapsed.count()}});
  metrics::execution_finished(st.request.lang, report.result.status, wall_time);
  if (st.target.on_done) st.target.on_done(std::move(report));
  // A monitor stays attached to the monitored actor after the observer is gone, and
  // it pins the observer's memory: a stateful sandbox lives through thousands of
  // executions (the soak's service RSS grew 15 → 109 MiB in 10 min without this).
  self->demonitor(st.lease.sandbox.address());
  self->quit();  // destroys the state (stateful_actor::on_exit), its sandbox handle too
}

/// Ends the run early: kills a one-shot sandbox, or interrupts the cell of a stateful
/// one, and waits (bounded) for its report.
void stop(execution_pointer self, verdict why, std::string reason) {
  auto& st = self->state;
  if (st.finished || st.forced) return;
  st.forced = why;
  st.forced_reason = std::move(reason);
  if (st.lease.owned)
    self->send(st.lease.sandbox, atom::kill_v);
  else
    self->send(st.lease.sandbox, atom::stop_v, st.id);
  self->delayed_send(self, st.lease.stop_grace, atom::finish_v);
}

}  // namespace

execution_actor::behavior_type execution(execution_actor::stateful_pointer<execution_state> self,
                                         std::string id, execution_request request,
                                         execution_target target, sandbox_source source) {
  count_exit(self, metrics::actor_kind::execution);
  auto& st = self->state;
  st.id = std::move(id);
  st.request = std::move(request);
  st.target = std::move(target);
  st.started = std::chrono::steady_clock::now();
  log::debug("execution started", {{"executionId", st.id},
                                   {"language", to_string(st.request.lang)},
                                   {"clientId", st.request.client_id}});

  st.lease = source(self->system(), st.request);
  self->monitor(st.lease.sandbox);
  self->set_down_handler([self](caf::down_msg& msg) {
    if (msg.source != self->state.lease.sandbox.address()) return;
    cell_outcome out;
    out.how = cell_end::broken;
    out.detail = "the sandbox ended unexpectedly";
    finish(self, out);
  });
  // A one-shot sandbox lives exactly as long as its execution.
  if (st.lease.owned)
    self->attach_functor([sandbox = st.lease.sandbox](const caf::error&) {
      caf::anon_send_exit(sandbox, caf::exit_reason::user_shutdown);
    });
  if (st.target.registry) {
    self->send(st.target.registry, atom::track_v, st.request.client_id, st.id,
               caf::actor_cast<execution_actor>(self));
    st.publish(status_message(st.id, "running", "Execution started"));
  }
  self->delayed_send(self, st.request.timeout, atom::timeout_v);
  // CPU time defaults to the wall-clock timeout: a cell can never use more than it ran.
  const auto cpu_limit_ms = st.request.limits.cpu_ms != 0
                                ? st.request.limits.cpu_ms
                                : static_cast<std::uint64_t>(st.request.timeout.count());
  run_cell cell;
  cell.id = st.id;
  cell.code = st.request.code;
  cell.env = st.request.env;
  cell.cpu_limit_ms = cpu_limit_ms;
  cell.max_output_bytes = st.request.limits.output_bytes;
  cell.context_id = st.request.context_id;
  cell.lang = st.request.lang;
  cell.lang_given = st.lease.owned || st.request.lang_given;
  cell.stdin_data = st.request.stdin_data;
  cell.stdin_open = st.request.stdin_open;
  self->request(st.lease.sandbox, caf::infinite, atom::run_v, std::move(cell),
                caf::actor_cast<event_sink_actor>(self))
      .then([self](cell_outcome& outcome) { finish(self, outcome); },
            [self](caf::error& err) {
              cell_outcome out;
              out.how = cell_end::broken;
              out.detail = "the sandbox did not answer: " + caf::to_string(err);
              finish(self, out);
            });

  return {
      [self](atom::event, kernel_event& ev) {
        auto& st = self->state;
        if (st.finished) return;
        st.emit(ev);
        st.result.add(ev);
      },
      [self](atom::cancel, std::string& reason) {
        log::info("execution cancelled", {{"executionId", self->state.id}, {"reason", reason}});
        stop(self, verdict::killed, std::move(reason));
      },
      [self](atom::timeout) {
        stop(self, verdict::timeout,
             "Execution exceeded the timeout of " +
                 std::to_string(self->state.request.timeout.count()) + " ms");
      },
      [self](atom::input, std::string& data, bool eof) {
        auto& st = self->state;
        if (st.finished) return;
        self->send(st.lease.sandbox, atom::input_v, st.id, std::move(data), eof);
      },
      [self](atom::finish) {
        cell_outcome out;
        out.how = cell_end::killed;
        out.detail = "the sandbox did not confirm the kill in time";
        finish(self, out);
      },
  };
}

}  // namespace codeexec
