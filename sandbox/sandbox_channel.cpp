#include "sandbox/sandbox_channel.hpp"

#include "sandbox/agent_protocol.hpp"
#include "sandbox/clone_child.hpp"
#include "sandbox/fd_passing.hpp"
#include "sandbox/frame.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <system_error>
#include <utility>

namespace codeexec::sandbox {
namespace {

constexpr std::size_t read_chunk = 64 * 1024;

/// The least an event costs of an output budget, whatever its text: a flood of
/// one-byte writes cannot make the service keep an event per byte.
constexpr std::uint64_t min_event_cost = 16;

/// How long a failed channel waits for the sandbox it killed to exit.
constexpr int kill_wait_ms = 5000;

/// A string member of a runner event; empty when absent or not a string (the
/// runner is untrusted: a wrong type must never throw).
std::string string_field(const nlohmann::json& event, const char* key) {
  const auto it = event.find(key);
  return it != event.end() && it->is_string() ? it->get<std::string>() : std::string{};
}

/// Reads what is available now. Returns false on EOF or a hard error.
bool read_available(int fd, std::string& into) {
  std::array<char, read_chunk> buf;
  for (;;) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n > 0) {
      into.append(buf.data(), static_cast<std::size_t>(n));
      if (static_cast<std::size_t>(n) < buf.size()) return true;
      continue;
    }
    if (n == 0) return false;
    if (errno == EINTR) continue;
    return errno == EAGAIN || errno == EWOULDBLOCK;
  }
}

void set_nonblocking(int fd) {
  if (fd < 0) return;
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0) ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

/// What a setup-error pipe holds (the runner has exited, so it is all there).
std::string read_setup_error(int fd) {
  std::string text;
  if (fd >= 0) read_available(fd, text);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\0')) text.pop_back();
  return text;
}

/// A non-persistent init exits with its runner's code, 128 + N for a fatal signal N (it
/// cannot re-raise it): the kernel's status, read back as well as it can be.
exit_status kernel_status_from_init(exit_status init) {
  if (init.signal == 0 && init.exit_code > 128 && init.exit_code < 128 + NSIG)
    return {-1, init.exit_code - 128};
  return init;
}

exit_status killed_with_the_sandbox() {
  return {-1, SIGKILL};
}

std::string encode_spawn(unsigned slot, const runner_spec& spec) {
  std::string payload = spec.workdir;
  payload.push_back('\0');
  for (const auto& a : spec.argv) payload.append(a).push_back('\0');
  for (const auto& [k, v] : spec.env) payload.append(k).append("=").append(v).push_back('\0');
  agent::agent_message m;
  m.type = agent::kSpawn;
  m.slot = slot;
  m.detail = static_cast<std::uint32_t>(spec.argv.size());
  m.envc = static_cast<std::uint32_t>(spec.env.size());
  m.payload_bytes = static_cast<std::uint32_t>(payload.size());
  std::string bytes(reinterpret_cast<const char*>(&m), sizeof m);
  return bytes + payload;
}

std::string encode_signal(unsigned slot, int sig, bool whole_group) {
  agent::agent_message m;
  m.type = agent::kSignal;
  m.slot = slot;
  m.value = sig;
  m.detail = whole_group ? agent::kSignalGroup : 0;
  return std::string(reinterpret_cast<const char*>(&m), sizeof m);
}

/// One output stream (raw pipe or event text) of a kernel and its cap.
struct stream_state {
  explicit stream_state(const char* stream_name) : name(stream_name) {}

  const char* name;
  std::uint64_t delivered = 0;
  bool capped = false;
  std::string pending_utf8;  // raw bytes ending inside a UTF-8 sequence

  void reset() {
    delivered = 0;
    capped = false;
  }

  /// Applies the cap to `text`; returns what may be delivered. An event costs at
  /// least `min_event_cost` bytes of the budget, so a flood of tiny writes is
  /// bounded by what it costs the service, not only by its text.
  std::string admit(std::string text, std::uint64_t cap, bool& newly_capped) {
    newly_capped = false;
    if (capped) return {};
    const std::uint64_t cost = std::max<std::uint64_t>(text.size(), min_event_cost);
    if (delivered + cost > cap) {
      const std::uint64_t room = cap - std::min(cap, delivered);
      text.resize(complete_utf8_prefix(std::string_view{text}.substr(0, room)));
      capped = newly_capped = true;
    }
    delivered += std::max<std::uint64_t>(text.size(), min_event_cost);
    return text;
  }

  /// Charges a whole non-text event (a result) of `size` bytes; false once over the cap.
  bool admit_event(std::size_t size, std::uint64_t cap, bool& newly_capped) {
    newly_capped = false;
    if (capped) return false;
    const std::uint64_t cost = std::max<std::uint64_t>(size, min_event_cost);
    if (delivered + cost > cap) {
      capped = newly_capped = true;
      return false;
    }
    delivered += cost;
    return true;
  }
};

}  // namespace

struct sandbox_channel::command {
  enum class kind { start, send, signal, reset } what = kind::send;
  unsigned kernel = 0;
  runner_spec spec;   // start
  std::string frame;  // send
  int sig = 0;        // signal
  bool whole_group = false;
  std::uint64_t cap = 0;  // reset: the new cell's output cap (0: the channel's)
};

/// A record for the init and the fds it carries (the host's copies close once sent).
struct sandbox_channel::agent_request {
  std::string bytes;
  std::vector<unique_fd> fds;
  int spawn_slot = -1;  ///< a SPAWN's slot: fails if the record cannot be sent
};

/// The I/O thread's view of one kernel.
struct sandbox_channel::kernel {
  unsigned slot = 0;
  /// The launch's runner: its fds belong to the sandbox_process, and its setup error
  /// may be the sandbox's own.
  bool original = false;
  runner_fds owned;  ///< a started runner's host ends
  int fd[5] = {-1, -1, -1, -1, -1};
  int setup_error_fd = -1;
  bool events_open = false;
  bool out_open = false;
  bool err_open = false;
  stream_state out{"stdout"};
  stream_state err{"stderr"};
  stream_state results{"results"};
  /// The running cell's output cap per stream; 0: the channel's.
  std::uint64_t cap = 0;
  frame_decoder decoder;
  std::deque<std::string> outbox;
  std::string outgoing;  // the frame being written, possibly partially
  // Consecutive output of one stream is merged into one event: a flood of tiny writes
  // costs one message per read, not one per write.
  stream_state* merging = nullptr;
  std::string merged;

  void watch(const int (&fds)[5], int setup_error) {
    for (int i = 0; i < 5; ++i) fd[i] = fds[i];
    setup_error_fd = setup_error;
    for (int f : {fd[1], fd[2], fd[3], fd[4], setup_error_fd}) set_nonblocking(f);
    events_open = fd[4] >= 0;
    out_open = fd[1] >= 0;
    err_open = fd[2] >= 0;
  }
};

/// The loop of the channel's thread: everything here runs on that thread only.
class sandbox_channel::io_loop {
 public:
  explicit io_loop(sandbox_channel& channel)
      : ch_(channel), process_(channel.process_), agent_open_(process_.persistent()) {
    set_nonblocking(process_.agent_fd());
    auto first = std::make_unique<kernel>();
    first->original = true;
    const int fds[5] = {process_.stdin_fd(), process_.stdout_fd(), process_.stderr_fd(),
                        process_.control_fd(), process_.events_fd()};
    first->watch(fds, process_.setup_error_fd());
    kernels_[0] = std::move(first);
  }

  /// Until the init exits (true: on_exit was called) or the channel stops.
  bool run();
  /// The channel failed: kill the sandbox and end every kernel, then the sandbox.
  void fail(const std::string& reason) noexcept;

 private:
  void apply_commands();
  void start_runner(unsigned slot, const runner_spec& spec);
  void flush_agent();
  void read_agent();
  void on_agent_message(const agent::agent_message& m);
  void agent_gone(const std::string& why);
  void end_kernel(unsigned slot, exit_status status, std::string setup_error);
  std::string drain_kernel(kernel& k);
  void finish(exit_status init_status);

  void deliver_text(kernel& k, stream_state& s, std::string text);
  void drain_pipe(kernel& k, int fd, stream_state& s, bool& open, bool final);
  void protocol_error(kernel& k, const char* reason);
  void flush_merged(kernel& k);
  void handle_frame(kernel& k, const std::string& payload);
  void read_events(kernel& k);
  void write_requests(kernel& k);

  const sandbox_callbacks& callbacks() const { return ch_.callbacks_; }

  sandbox_channel& ch_;
  sandbox_process& process_;
  std::array<std::unique_ptr<kernel>, max_kernels> kernels_;
  std::deque<agent_request> agent_out_;
  bool agent_open_;
  std::string agent_error_;  ///< why the agent is gone, once it is
  bool finished_ = false;
};

// ---- kernel output ---------------------------------------------------------------------

void sandbox_channel::io_loop::deliver_text(kernel& k, stream_state& s, std::string text) {
  bool newly_capped = false;
  auto admitted = s.admit(std::move(text), k.cap ? k.cap : ch_.max_output_bytes_, newly_capped);
  if (!admitted.empty() && callbacks().on_event)
    callbacks().on_event(k.slot, {{"type", s.name}, {"text", std::move(admitted)}});
  if (newly_capped && callbacks().on_output_limit) callbacks().on_output_limit(k.slot, s.name);
}

// Raw pipe bytes may end inside a UTF-8 sequence; hold that tail back.
void sandbox_channel::io_loop::drain_pipe(kernel& k, int fd, stream_state& s, bool& open,
                                          bool final) {
  if (!open) return;
  std::string bytes = std::move(s.pending_utf8);
  s.pending_utf8.clear();
  if (!read_available(fd, bytes)) open = false;
  const bool flush_all = final || !open;
  const std::size_t keep = flush_all ? bytes.size() : complete_utf8_prefix(bytes);
  s.pending_utf8 = bytes.substr(keep);
  bytes.resize(keep);
  if (!bytes.empty()) deliver_text(k, s, std::move(bytes));
}

void sandbox_channel::io_loop::protocol_error(kernel& k, const char* reason) {
  k.events_open = false;
  if (callbacks().on_protocol_error) callbacks().on_protocol_error(k.slot, reason);
}

void sandbox_channel::io_loop::flush_merged(kernel& k) {
  if (k.merging && !k.merged.empty()) deliver_text(k, *k.merging, std::move(k.merged));
  k.merged.clear();
  k.merging = nullptr;
}

void sandbox_channel::io_loop::handle_frame(kernel& k, const std::string& payload) {
  auto event = nlohmann::json::parse(payload, nullptr, false);
  if (event.is_discarded() || !event.is_object()) {
    flush_merged(k);
    protocol_error(k, "runner sent invalid JSON");
    return;
  }
  const auto type = string_field(event, "type");
  if (type == "stdout" || type == "stderr") {
    auto& stream = type == "stdout" ? k.out : k.err;
    if (k.merging != &stream) flush_merged(k);
    k.merging = &stream;
    k.merged += string_field(event, "text");
    return;
  }
  flush_merged(k);
  if (type == "end") {
    // Whatever the cell wrote to fds 1/2 is in the pipes by now: deliver it first.
    drain_pipe(k, k.fd[1], k.out, k.out_open, true);
    drain_pipe(k, k.fd[2], k.err, k.err_open, true);
  } else if (type != "ready") {
    // Results and errors are output too, with a budget of their own.
    bool newly_capped = false;
    if (!k.results.admit_event(payload.size(), k.cap ? k.cap : ch_.max_output_bytes_,
                               newly_capped)) {
      if (newly_capped && callbacks().on_output_limit)
        callbacks().on_output_limit(k.slot, k.results.name);
      return;
    }
  }
  if (callbacks().on_event) callbacks().on_event(k.slot, std::move(event));
}

void sandbox_channel::io_loop::read_events(kernel& k) {
  if (!k.events_open) return;
  std::string bytes;
  const bool open = read_available(k.fd[4], bytes);
  k.decoder.feed(bytes);
  // After a protocol error the channel stops reading events (events_open false).
  while (k.events_open) {
    auto payload = k.decoder.next();
    if (!payload) break;
    handle_frame(k, *payload);
  }
  flush_merged(k);
  if (k.decoder.failed() && k.events_open) protocol_error(k, "runner sent an oversized frame");
  if (!open) k.events_open = false;
}

void sandbox_channel::io_loop::write_requests(kernel& k) {
  for (;;) {
    if (k.outgoing.empty()) {
      if (k.outbox.empty()) return;
      k.outgoing = std::move(k.outbox.front());
      k.outbox.pop_front();
    }
    const ssize_t n = ::send(k.fd[3], k.outgoing.data(), k.outgoing.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        // The runner is gone; its exit is reported by the init.
        k.outbox.clear();
        k.outgoing.clear();
      }
      return;
    }
    k.outgoing.erase(0, static_cast<std::size_t>(n));
  }
}

// ---- kernels: start and end --------------------------------------------------------------

void sandbox_channel::io_loop::start_runner(unsigned slot, const runner_spec& spec) {
  if (!agent_open_) {
    end_kernel(slot, {kSetupFailedExitCode, 0}, "sandbox setup failed: " + agent_error_);
    return;
  }
  runner_fds host, runner;
  if (auto bad = process_.make_runner_fds(host, runner); !bad.empty()) {
    end_kernel(slot, {kSetupFailedExitCode, 0}, "sandbox setup failed: " + bad);
    return;
  }
  // Nothing feeds a started runner's fd 0: code that reads it sees end-of-file.
  host.fd[0].reset();
  auto k = std::make_unique<kernel>();
  k->slot = slot;
  k->owned = std::move(host);
  const int fds[5] = {-1, k->owned.fd[1].get(), k->owned.fd[2].get(), k->owned.fd[3].get(),
                      k->owned.fd[4].get()};
  k->watch(fds, k->owned.setup_error.get());
  kernels_[slot] = std::move(k);

  agent_request request;
  request.bytes = encode_spawn(slot, spec);
  for (auto& f : runner.fd) request.fds.push_back(std::move(f));
  request.fds.push_back(std::move(runner.setup_error));
  request.spawn_slot = static_cast<int>(slot);
  agent_out_.push_back(std::move(request));
}

/// Output first (what the runner wrote before it exited is in its pipes by now), then
/// the setup error; closes the kernel's reading.
std::string sandbox_channel::io_loop::drain_kernel(kernel& k) {
  read_events(k);
  drain_pipe(k, k.fd[1], k.out, k.out_open, true);
  drain_pipe(k, k.fd[2], k.err, k.err_open, true);
  return read_setup_error(k.setup_error_fd);
}

/// Frees the slot (a restart may follow at once, even from the callback) and reports.
void sandbox_channel::io_loop::end_kernel(unsigned slot, exit_status status,
                                          std::string setup_error) {
  kernels_[slot].reset();
  {
    std::lock_guard lock{ch_.mutex_};
    ch_.busy_[slot] = false;
  }
  if (callbacks().on_kernel_exit) callbacks().on_kernel_exit(slot, status, std::move(setup_error));
}

// ---- the agent ---------------------------------------------------------------------------

void sandbox_channel::io_loop::agent_gone(const std::string& why) {
  if (!agent_open_) return;
  agent_open_ = false;
  agent_error_ = why;
  // SPAWNs not sent will never be answered.
  for (auto& request : agent_out_)
    if (request.spawn_slot >= 0 && kernels_[static_cast<unsigned>(request.spawn_slot)])
      end_kernel(static_cast<unsigned>(request.spawn_slot), {kSetupFailedExitCode, 0},
                 "sandbox setup failed: " + why);
  agent_out_.clear();
}

void sandbox_channel::io_loop::flush_agent() {
  while (agent_open_ && !agent_out_.empty()) {
    auto& request = agent_out_.front();
    static_assert(agent::kSpawnFdCount <= kMaxSentFds);
    std::vector<int> fds;
    for (const auto& fd : request.fds) fds.push_back(fd.get());
    if (send_with_fds(process_.agent_fd(), request.bytes.data(), request.bytes.size(), fds,
                      MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;  // POLLOUT
      agent_gone(std::string("the sandbox agent is gone: ") + std::strerror(errno));
      return;
    }
    agent_out_.pop_front();  // the host's copies of the runner's ends close here
  }
}

void sandbox_channel::io_loop::read_agent() {
  while (agent_open_) {
    // Larger than any record the init sends: a longer one is truncated and ignored.
    alignas(agent::agent_message) char buf[2 * sizeof(agent::agent_message)];
    // No control buffer: fds sent to us (the init never does) are discarded by the kernel.
    const ssize_t n = ::recv(process_.agent_fd(), buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      agent_gone(std::string("the sandbox agent is gone: ") + std::strerror(errno));
      return;
    }
    if (n == 0) {
      agent_gone("the sandbox agent has closed");
      return;
    }
    if (static_cast<std::size_t>(n) != sizeof(agent::agent_message)) continue;
    agent::agent_message m;
    std::memcpy(&m, buf, sizeof m);
    on_agent_message(m);
  }
}

void sandbox_channel::io_loop::on_agent_message(const agent::agent_message& m) {
  if (m.slot >= max_kernels || !kernels_[m.slot]) return;
  kernel& k = *kernels_[m.slot];
  if (m.type == agent::kSpawned && m.value < 0) {
    // The init could not fork: it wrote why to the setup-error pipe.
    auto setup_error = drain_kernel(k);
    if (setup_error.empty())
      setup_error = std::string("sandbox setup failed: start runner: ") + std::strerror(-m.value);
    end_kernel(m.slot, {kSetupFailedExitCode, 0}, std::move(setup_error));
  } else if (m.type == agent::kExited) {
    auto setup_error = drain_kernel(k);
    const exit_status status =
        m.detail != 0 ? exit_status{-1, static_cast<int>(m.detail)} : exit_status{m.value, 0};
    end_kernel(m.slot, status, std::move(setup_error));
  }
}

// ---- the loop ------------------------------------------------------------------------------

void sandbox_channel::io_loop::apply_commands() {
  std::vector<command> commands;
  {
    std::lock_guard lock{ch_.mutex_};
    commands.swap(ch_.commands_);
  }
  for (auto& c : commands) {
    kernel* k = kernels_[c.kernel].get();
    switch (c.what) {
      case command::kind::start:
        start_runner(c.kernel, c.spec);
        break;
      case command::kind::send:
        if (k) k->outbox.push_back(std::move(c.frame));
        break;
      case command::kind::signal:
        if (k && agent_open_) {
          agent_request request;
          request.bytes = encode_signal(c.kernel, c.sig, c.whole_group);
          agent_out_.push_back(std::move(request));
        }
        break;
      case command::kind::reset:
        if (k) {
          for (auto* s : {&k->out, &k->err, &k->results}) s->reset();
          k->cap = c.cap;
        }
        break;
    }
  }
}

/// The init has exited and the kernel killed the rest of its pid namespace: deliver
/// what is left, end every kernel, then the sandbox.
void sandbox_channel::io_loop::finish(exit_status init_status) {
  {
    std::lock_guard lock{ch_.mutex_};
    ch_.ended_ = true;
  }
  read_agent();  // the exits it reported before it ended
  agent_gone("the sandbox has ended");
  const bool persistent = process_.persistent();
  std::string sandbox_setup_error;
  for (unsigned slot = 0; slot < max_kernels; ++slot) {
    if (!kernels_[slot]) continue;
    auto setup_error = drain_kernel(*kernels_[slot]);
    exit_status status = killed_with_the_sandbox();
    if (!persistent)
      status = kernel_status_from_init(init_status);
    else if (!setup_error.empty())
      status = {kSetupFailedExitCode, 0};
    // The launch's runner never reported: the sandbox's own setup may have failed.
    if (kernels_[slot]->original) sandbox_setup_error = setup_error;
    end_kernel(slot, status, std::move(setup_error));
  }
  finished_ = true;
  if (callbacks().on_exit) callbacks().on_exit(init_status, std::move(sandbox_setup_error));
}

bool sandbox_channel::io_loop::run() {
  enum class what { events, out, err, control };
  std::vector<pollfd> fds;
  std::vector<std::pair<kernel*, what>> tags;
  while (!ch_.stopping_) {
    apply_commands();
    flush_agent();
    fds.clear();
    tags.clear();
    const bool agent_writes = agent_open_ && !agent_out_.empty();
    fds.push_back({ch_.wake_fd_.get(), POLLIN, 0});
    fds.push_back({process_.exit_fd(), POLLIN, 0});
    fds.push_back({agent_open_ ? process_.agent_fd() : -1,
                   static_cast<short>(POLLIN | (agent_writes ? POLLOUT : 0)), 0});
    for (auto& k : kernels_) {
      if (!k) continue;
      auto watch = [&](bool on, int fd, short events, what w) {
        if (!on || fd < 0) return;
        fds.push_back({fd, events, 0});
        tags.emplace_back(k.get(), w);
      };
      // Events before the raw pipes of the same kernel: the common mix is interpreter
      // output (events) followed by a child process's raw output (print, then
      // subprocess.run), and the runners write their events before anything they start
      // can. Raw output written before an event in the same wake-up may come after it.
      watch(k->events_open, k->fd[4], POLLIN, what::events);
      watch(k->out_open, k->fd[1], POLLIN, what::out);
      watch(k->err_open, k->fd[2], POLLIN, what::err);
      watch(!k->outgoing.empty() || !k->outbox.empty(), k->fd[3], POLLOUT, what::control);
    }
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      throw std::system_error(errno, std::generic_category(), "poll");
    }
    if (fds[0].revents) {
      std::uint64_t count;
      [[maybe_unused]] auto n = ::read(ch_.wake_fd_.get(), &count, sizeof count);
    }
    for (std::size_t i = 0; i < tags.size(); ++i) {
      if (fds[3 + i].revents == 0) continue;
      kernel& k = *tags[i].first;
      switch (tags[i].second) {
        case what::events:
          read_events(k);
          break;
        case what::out:
          drain_pipe(k, k.fd[1], k.out, k.out_open, false);
          break;
        case what::err:
          drain_pipe(k, k.fd[2], k.err, k.err_open, false);
          break;
        case what::control:
          write_requests(k);
          break;
      }
    }
    // After the kernels' output: an EXITED drains the rest and ends the kernel.
    if (fds[2].revents & POLLOUT) flush_agent();
    if (fds[2].revents & (POLLIN | POLLHUP | POLLERR)) read_agent();
    if (fds[1].revents) {
      exit_status status;
      if (auto s = process_.try_wait()) status = *s;
      finish(status);
      return true;
    }
  }
  return false;
}

void sandbox_channel::io_loop::fail(const std::string& reason) noexcept {
  if (finished_) return;
  try {
    // Nothing a runner sends may take the service down: end this sandbox instead.
    if (callbacks().on_protocol_error) callbacks().on_protocol_error(0, reason);
    process_.kill();
    pollfd pfd{process_.exit_fd(), POLLIN, 0};
    ::poll(&pfd, 1, kill_wait_ms);
    exit_status status;
    if (auto s = process_.try_wait()) status = *s;
    {
      std::lock_guard lock{ch_.mutex_};
      ch_.ended_ = true;
    }
    for (unsigned slot = 0; slot < max_kernels; ++slot)
      if (kernels_[slot]) end_kernel(slot, killed_with_the_sandbox(), {});
    finished_ = true;
    if (callbacks().on_exit) callbacks().on_exit(status, {});
  } catch (...) {
    // A callback failed again: nothing more can be reported.
  }
}

// ---- the public side (any thread) -------------------------------------------------------------

sandbox_channel::sandbox_channel(sandbox_process& process, std::uint64_t max_output_bytes,
                                 sandbox_callbacks callbacks)
    : process_(process),
      max_output_bytes_(max_output_bytes),
      callbacks_(std::move(callbacks)),
      wake_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  if (!wake_fd_) throw std::system_error(errno, std::generic_category(), "eventfd");
  busy_[0] = true;
  thread_ = std::thread([this] { run(); });
}

sandbox_channel::~sandbox_channel() {
  stopping_ = true;
  wake();
  if (thread_.joinable()) thread_.join();
}

void sandbox_channel::run() {
  std::unique_ptr<io_loop> loop;
  try {
    loop = std::make_unique<io_loop>(*this);
    loop->run();
  } catch (const std::exception& e) {
    if (loop) loop->fail(std::string{"the sandbox channel failed: "} + e.what());
  }
}

void sandbox_channel::push(command c) {
  {
    std::lock_guard lock{mutex_};
    if (ended_) return;
    commands_.push_back(std::move(c));
  }
  wake();
}

void sandbox_channel::wake() {
  const std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(wake_fd_.get(), &one, sizeof one);
}

std::string sandbox_channel::start_kernel(unsigned kernel, const runner_spec& spec) {
  if (!process_.persistent())
    return "the sandbox is not persistent: it runs only the runner it was launched with";
  if (kernel >= max_kernels)
    return "kernel slot " + std::to_string(kernel) + " does not exist (0 to " +
           std::to_string(max_kernels - 1) + ")";
  if (auto bad = validate_runner_spec(spec); !bad.empty()) return "invalid runner_spec: " + bad;
  {
    std::lock_guard lock{mutex_};
    if (ended_) return "the sandbox has ended";
    if (busy_[kernel]) return "kernel slot " + std::to_string(kernel) + " is busy";
    busy_[kernel] = true;
    command c;
    c.what = command::kind::start;
    c.kernel = kernel;
    c.spec = spec;
    commands_.push_back(std::move(c));
  }
  wake();
  return {};
}

void sandbox_channel::send(unsigned kernel, const nlohmann::json& request) {
  if (kernel >= max_kernels) return;
  command c;
  c.what = command::kind::send;
  c.kernel = kernel;
  c.frame = encode_frame(request.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  push(std::move(c));
}

void sandbox_channel::signal(unsigned kernel, int sig, bool whole_group) {
  if (kernel >= max_kernels) return;
  if (!process_.persistent()) {
    // Without an agent only the init's SIGINT relay reaches the runner, and the
    // runner's death is the sandbox's.
    if (kernel != 0) return;
    if (sig == SIGKILL)
      process_.kill();
    else if (sig == SIGINT)
      process_.interrupt();
    return;
  }
  command c;
  c.what = command::kind::signal;
  c.kernel = kernel;
  c.sig = sig;
  c.whole_group = whole_group;
  push(std::move(c));
}

void sandbox_channel::reset_output_counters(unsigned kernel, std::uint64_t max_output_bytes) {
  if (kernel >= max_kernels) return;
  command c;
  c.what = command::kind::reset;
  c.kernel = kernel;
  c.cap = max_output_bytes;
  push(std::move(c));
}

}  // namespace codeexec::sandbox
