#include "actors/local_sandbox.hpp"

#include "actors/actor_metrics.hpp"
#include "core/json_mapping.hpp"
#include "core/log.hpp"

#include <caf/all.hpp>

#include <csignal>
#include <cstring>

namespace codeexec {
namespace {

/// How often a running cell's CPU time is checked against its limit.
constexpr auto cpu_check_interval = std::chrono::milliseconds(50);

std::string describe_signal(int sig) {
  const char* name = sigabbrev_np(sig);
  return "signal " + std::to_string(sig) + (name ? std::string{" (SIG"} + name + ")" : "");
}

}  // namespace

bool local_sandbox_state::send_current_if_ready() {
  if (!ready || !current || current->sent || !channel) return false;
  current->sent = true;
  const auto usage = process->read_usage();
  current->cpu_start_ns = usage.cpu_ns;
  current->oom_kills_start = usage.oom_kills;
  nlohmann::json request = {{"op", "exec"}, {"id", current->id}, {"code", current->request.code}};
  if (!current->request.env.empty()) request["env"] = current->request.env;
  channel->reset_output_counters();
  stdout_capped = stderr_capped = results_capped = false;
  channel->send(request);
  return true;
}

std::uint64_t local_sandbox_state::current_cpu_ms() const {
  if (!current || !process) return 0;
  const auto now = process->read_cpu_ns();
  return now > current->cpu_start_ns ? (now - current->cpu_start_ns) / 1'000'000 : 0;
}

void local_sandbox_state::finish_current(cell_outcome outcome) {
  if (!current) return;
  if (process) {
    const auto u = process->read_usage();
    outcome.peak_memory_bytes = u.peak_memory_bytes;
    outcome.cpu_ms = current_cpu_ms();
    // An OOM kill during this cell (the kernel may survive it: bash restarts its shell).
    outcome.oom_killed = outcome.oom_killed || u.oom_kills > current->oom_kills_start;
  }
  outcome.stdout_truncated = stdout_capped;
  outcome.stderr_truncated = stderr_capped;
  current->promise.deliver(std::move(outcome));
  current.reset();
}

sandbox_actor::behavior_type local_sandbox(
    sandbox_actor::stateful_pointer<local_sandbox_state> self, sandbox::launcher* launcher,
    sandbox::launch_spec spec, std::uint64_t max_output_bytes) {
  count_exit(self, metrics::actor_kind::sandbox);
  self->state.launched_at = std::chrono::steady_clock::now();
  auto launched = launcher->launch(spec);
  if (!launched.process) {
    self->state.start_error = launched.error;
    log::error("sandbox failed to start", {{"reason", launched.error}});
  } else {
    auto& st = self->state;
    st.process = std::move(launched.process);
    // Nothing feeds a cell's stdin yet: code that reads it sees end-of-file at once
    // instead of waiting for its deadline.
    st.process->close_stdin();
    st.live_sandbox.emplace(metrics::live_gauge::sandboxes);
    // The I/O thread reports to this actor by message; the handle it holds is
    // released when the state (and with it the channel) is destroyed.
    auto handle = caf::actor_cast<sandbox_actor>(self);
    sandbox::channel_callbacks callbacks;
    callbacks.on_event = [handle](nlohmann::json event) {
      caf::anon_send(handle, atom::runner_v, std::move(event));
    };
    callbacks.on_output_limit = [handle](std::string_view stream) {
      caf::anon_send(handle, atom::limit_v, std::string{stream});
    };
    callbacks.on_protocol_error = [handle](std::string reason) {
      caf::anon_send(handle, atom::broken_v, std::move(reason));
    };
    callbacks.on_exit = [handle](sandbox::exit_status status, std::string setup_error) {
      sandbox_exit exit;
      // A pid-namespace init cannot re-raise its runner's fatal signal, so it exits
      // with 128 + signal, as shells do; read it back the same way.
      if (status.signal != 0)
        exit.signal = status.signal;
      else if (status.exit_code > 128 && status.exit_code < 128 + NSIG)
        exit.signal = status.exit_code - 128;
      else if (status.exit_code >= 0)
        exit.exit_code = status.exit_code;
      exit.setup_error = std::move(setup_error);
      caf::anon_send(handle, atom::exited_v, std::move(exit));
    };
    st.channel = std::make_unique<sandbox::kernel_channel>(*st.process, max_output_bytes,
                                                           std::move(callbacks));
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
        if (st.current) {
          cell_outcome out;
          out.how = cell_end::broken;
          out.detail = "the sandbox is already running a cell";
          return out;
        }
        auto promise = self->make_response_promise<cell_outcome>();
        st.current = local_sandbox_state::cell{"cell-" + std::to_string(++st.cells_run),
                                               std::move(request), std::move(sink), promise};
        if (st.send_current_if_ready()) self->delayed_send(self, cpu_check_interval, atom::tick_v);
        return promise;
      },
      [self](atom::kill) {
        auto& st = self->state;
        st.kill_requested = true;
        if (st.process) st.process->kill();
      },
      [self](atom::runner, nlohmann::json& event) {
        auto& st = self->state;
        const auto type = string_field(event, "type");
        if (type == "ready") {
          if (!st.ready)
            metrics::sandbox_started(std::chrono::steady_clock::now() - st.launched_at);
          st.ready = true;
          if (st.send_current_if_ready())
            self->delayed_send(self, cpu_check_interval, atom::tick_v);
        } else if (type == "end") {
          if (!st.current) return;
          cell_outcome out;
          if (string_field(event, "status") == "interrupted") {
            out.how = cell_end::interrupted;
            out.detail = "the cell was interrupted";
          }
          st.finish_current(std::move(out));
        } else if (auto ev = parse_kernel_event(event)) {
          if (st.current) self->send(st.current->sink, atom::event_v, std::move(*ev));
        }
      },
      [self](atom::broken, const std::string& reason) {
        auto& st = self->state;
        log::error("kernel broke the runner protocol", {{"reason", reason}});
        cell_outcome out;
        out.how = cell_end::broken;
        out.detail = "the kernel broke the protocol: " + reason;
        st.finish_current(std::move(out));
        if (st.process) st.process->kill();
      },
      [self](atom::limit, const std::string& stream) {
        auto& st = self->state;
        if (stream == "stdout")
          st.stdout_capped = true;
        else if (stream == "stderr")
          st.stderr_capped = true;
        else
          st.results_capped = true;
        log::info("output limit reached: killing the sandbox", {{"stream", stream}});
        if (st.process) st.process->kill();
      },
      [self](atom::exited, sandbox_exit& exit) {
        auto& st = self->state;
        cell_outcome out;
        out.exit_code = exit.exit_code;
        out.signal = exit.signal;
        if (st.stdout_capped || st.stderr_capped || st.results_capped) {
          out.how = cell_end::output_limit;
          out.detail = "output exceeded the limit";
        } else if (st.cpu_exceeded && st.current) {
          out.how = cell_end::cpu_limit;
          out.detail = "The execution used more than its CPU time limit of " +
                       std::to_string(st.current->request.cpu_limit_ms) + " ms";
        } else if (st.kill_requested) {
          out.how = cell_end::killed;
          out.detail = "the sandbox was killed";
        } else if (!st.ready) {
          out.how = cell_end::start_failed;
          out.detail =
              exit.setup_error.empty() ? "the kernel exited before it was ready" : exit.setup_error;
        } else {
          out.how = cell_end::died;
          out.detail = exit.signal ? "the kernel was killed by " + describe_signal(*exit.signal)
                                   : "the kernel exited with code " +
                                         std::to_string(exit.exit_code.value_or(-1));
        }
        if (!st.current && out.how == cell_end::start_failed)
          log::error("sandbox failed to start", {{"reason", out.detail}});
        st.finish_current(std::move(out));
        // The sandbox is gone; so is this actor.
        self->quit();
      },
      [self](atom::tick) {
        auto& st = self->state;
        if (!st.current || !st.current->sent || st.cpu_exceeded) return;
        const auto limit = st.current->request.cpu_limit_ms;
        if (limit != 0 && st.current_cpu_ms() > limit) {
          st.cpu_exceeded = true;
          log::info("CPU time limit reached: killing the sandbox", {{"limitMs", limit}});
          st.process->kill();
          return;
        }
        self->delayed_send(self, cpu_check_interval, atom::tick_v);
      },
  };
}

}  // namespace codeexec
