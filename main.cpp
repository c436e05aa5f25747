// codeexec: runs untrusted code for AI agents in local sandboxes, over REST and WebSocket.
#include "actors/service.hpp"
#include "core/config.hpp"
#include "core/log.hpp"
#include "http/server.hpp"

#include <sys/resource.h>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <exception>
#include <thread>

namespace {

/// The exit code of a stop that left actors running (0: clean; 1: cannot start;
/// 2: invalid configuration).
constexpr int exit_stragglers = 3;

/// Blocks the stop signals in every thread (threads inherit the mask), so that
/// main() alone receives them through sigwait.
sigset_t block_stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  // A client that vanishes mid-write must not kill the service.
  std::signal(SIGPIPE, SIG_IGN);
  return set;
}

/// Every WebSocket, connection and sandbox holds descriptors (a sandbox: its pipes,
/// pidfd and cgroup files), so the soft limit of 1024 some hosts start services with
/// would cap the service far below MAX_SANDBOXES and MAX_CONNECTIONS. The hard limit
/// is the operator's; sandboxes get their own (the launcher sets RLIMIT_NOFILE).
void raise_open_files_limit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0 || lim.rlim_cur >= lim.rlim_max) return;
  lim.rlim_cur = lim.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &lim) != 0)
    codeexec::log::warn("could not raise the open files limit to the hard limit",
                        {{"hard", static_cast<std::uint64_t>(lim.rlim_max)}});
}

}  // namespace

int main() {
  using namespace codeexec;
  const auto stop_signals = block_stop_signals();

  config cfg;
  try {
    cfg = load_config();
  } catch (const config_error& e) {
    log::error("invalid configuration", {{"reason", e.what()}});
    return 2;
  }
  log::set_level(cfg.log_level);
  raise_open_files_limit();
  std::unique_ptr<service> svc;
  std::unique_ptr<http::server> server;
  try {
    svc = std::make_unique<service>(cfg);
    server = http::start_server(cfg, *svc);
  } catch (const std::exception& e) {
    log::error("cannot start", {{"reason", e.what()}});
    server.reset();
    svc.reset();
    return 1;
  }

  int sig = 0;
  sigwait(&stop_signals, &sig);
  log::info("stop signal received", {{"signal", sig == SIGINT ? "SIGINT" : "SIGTERM"}});
  // Order matters: executions and WebSockets end while the I/O threads still run,
  // then the server stops, then the actors, then the actor system
  // (docs/reference/cpp-stack.md §5.8). A second
  // signal during the grace period cancels what still runs.
  std::atomic<bool> drained{false};
  std::thread drain([&] {
    svc->shutdown(cfg.shutdown_grace);
    drained = true;
  });
  while (!drained) {
    const timespec poll{0, 100'000'000};
    if (sigtimedwait(&stop_signals, nullptr, &poll) > 0) svc->force_shutdown();
  }
  drain.join();
  server->stop();
  if (auto left = svc->stop(); !left.empty()) {
    // Actors that even a kill did not end are stuck in a handler: waiting for them
    // would hang the stop forever, so the process ends without them.
    nlohmann::json by_kind = nlohmann::json::object();
    for (const auto& [kind, count] : left) by_kind[kind] = count;
    log::error("actors still running after kill; exiting without them", {{"actors", by_kind}});
    std::_Exit(exit_stragglers);
  }
  svc.reset();
  server.reset();
  log::info("stopped");
  return 0;
}
