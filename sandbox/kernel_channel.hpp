// Moves bytes between the service and a sandbox's runner on a thread of its own,
// so that no blocking read or write ever holds an actor's scheduler thread.
#pragma once

#include "sandbox/launcher.hpp"
#include "sandbox/unique_fd.hpp"

#include <nlohmann/json.hpp>

#include <atomic>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

namespace codeexec::sandbox {

struct channel_callbacks {
  /// A runner event (ready, stdout, stderr, result, error, end, …). Raw output of
  /// fds 1 and 2 arrives as {"type": "stdout"|"stderr", "text"} too. In order.
  std::function<void(nlohmann::json event)> on_event;
  /// A stream ("stdout", "stderr" or "results": rich results and errors) passed
  /// the output cap; what exceeds it is dropped.
  std::function<void(std::string_view stream)> on_output_limit;
  /// The runner broke the protocol (bad frame or JSON); the channel stops reading events.
  std::function<void(std::string reason)> on_protocol_error;
  /// The sandbox's init exited. Everything it wrote was delivered before this.
  std::function<void(exit_status status, std::string setup_error)> on_exit;
};

/// Owns the I/O thread of one sandbox. Callbacks run on that thread and must not block.
class kernel_channel {
 public:
  kernel_channel(sandbox_process& process, std::uint64_t max_output_bytes,
                 channel_callbacks callbacks);
  kernel_channel(const kernel_channel&) = delete;
  kernel_channel& operator=(const kernel_channel&) = delete;
  /// Stops the thread; no callback runs after this returns.
  ~kernel_channel();

  /// Queues a request frame for the runner.
  void send(const nlohmann::json& request);

  /// Starts counting output caps anew (a new cell).
  void reset_output_counters();

 private:
  struct stream_state;
  void run();
  void run_loop();
  void wake();

  sandbox_process& process_;
  std::uint64_t max_output_bytes_;
  channel_callbacks callbacks_;
  unique_fd wake_fd_;
  std::mutex mutex_;
  std::deque<std::string> outbox_;  // guarded by mutex_
  std::atomic<bool> stopping_{false};
  std::atomic<bool> reset_counters_{false};
  std::thread thread_;
};

}  // namespace codeexec::sandbox
