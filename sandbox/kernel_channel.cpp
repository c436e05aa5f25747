#include "sandbox/kernel_channel.hpp"

#include "sandbox/frame.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <system_error>

namespace codeexec::sandbox {
namespace {

constexpr std::size_t read_chunk = 64 * 1024;

/// The least an event costs of an output budget, whatever its text: a flood of
/// one-byte writes cannot make the service keep an event per byte.
constexpr std::uint64_t min_event_cost = 16;

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

}  // namespace

/// One output stream (raw pipe or event text) and its cap.
struct kernel_channel::stream_state {
  explicit stream_state(const char* stream_name) : name(stream_name) {}

  const char* name;
  std::uint64_t delivered = 0;
  bool capped = false;
  std::string pending_utf8;  // raw bytes ending inside a UTF-8 sequence

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

kernel_channel::kernel_channel(sandbox_process& process, std::uint64_t max_output_bytes,
                               channel_callbacks callbacks)
    : process_(process),
      max_output_bytes_(max_output_bytes),
      callbacks_(std::move(callbacks)),
      wake_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  if (!wake_fd_) throw std::system_error(errno, std::generic_category(), "eventfd");
  for (int fd : {process_.events_fd(), process_.stdout_fd(), process_.stderr_fd(),
                 process_.control_fd(), process_.setup_error_fd()})
    set_nonblocking(fd);
  thread_ = std::thread([this] { run(); });
}

kernel_channel::~kernel_channel() {
  stopping_ = true;
  wake();
  if (thread_.joinable()) thread_.join();
}

void kernel_channel::send(const nlohmann::json& request) {
  {
    std::lock_guard lock{mutex_};
    outbox_.push_back(
        encode_frame(request.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)));
  }
  wake();
}

void kernel_channel::reset_output_counters() {
  reset_counters_ = true;
  wake();
}

void kernel_channel::wake() {
  const std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(wake_fd_.get(), &one, sizeof one);
}

void kernel_channel::run() {
  try {
    run_loop();
  } catch (const std::exception& e) {
    // Nothing a runner sends may take the service down: end this sandbox instead.
    if (callbacks_.on_protocol_error)
      callbacks_.on_protocol_error(std::string{"the kernel channel failed: "} + e.what());
    process_.kill();
    pollfd pfd{process_.exit_fd(), POLLIN, 0};
    ::poll(&pfd, 1, 5000);
    exit_status status;
    if (auto s = process_.try_wait()) status = *s;
    if (callbacks_.on_exit) callbacks_.on_exit(status, {});
  }
}

void kernel_channel::run_loop() {
  stream_state out{"stdout"};
  stream_state err{"stderr"};
  stream_state results{"results"};
  frame_decoder decoder;
  std::string outgoing;  // the frame being written, possibly partially
  bool events_open = process_.events_fd() >= 0;
  bool out_open = process_.stdout_fd() >= 0;
  bool err_open = process_.stderr_fd() >= 0;

  auto deliver_text = [&](stream_state& s, std::string text) {
    bool newly_capped = false;
    auto admitted = s.admit(std::move(text), max_output_bytes_, newly_capped);
    if (!admitted.empty()) callbacks_.on_event({{"type", s.name}, {"text", std::move(admitted)}});
    if (newly_capped && callbacks_.on_output_limit) callbacks_.on_output_limit(s.name);
  };

  // Raw pipe bytes may end inside a UTF-8 sequence; hold that tail back.
  auto drain_pipe = [&](int fd, stream_state& s, bool& open, bool final) {
    if (!open) return;
    std::string bytes = std::move(s.pending_utf8);
    s.pending_utf8.clear();
    if (!read_available(fd, bytes)) open = false;
    const bool flush_all = final || !open;
    const std::size_t keep = flush_all ? bytes.size() : complete_utf8_prefix(bytes);
    s.pending_utf8 = bytes.substr(keep);
    bytes.resize(keep);
    if (!bytes.empty()) deliver_text(s, std::move(bytes));
  };

  auto protocol_error = [&](const char* reason) {
    events_open = false;
    if (callbacks_.on_protocol_error) callbacks_.on_protocol_error(reason);
  };

  // Consecutive output of one stream is merged into one event: a flood of tiny
  // writes costs one message per read, not one per write.
  stream_state* merging = nullptr;
  std::string merged;
  auto flush_merged = [&] {
    if (merging && !merged.empty()) deliver_text(*merging, std::move(merged));
    merged.clear();
    merging = nullptr;
  };

  auto handle_frame = [&](const std::string& payload) {
    auto event = nlohmann::json::parse(payload, nullptr, false);
    if (event.is_discarded() || !event.is_object()) {
      flush_merged();
      protocol_error("runner sent invalid JSON");
      return;
    }
    const auto type = string_field(event, "type");
    if (type == "stdout" || type == "stderr") {
      auto& stream = type == "stdout" ? out : err;
      if (merging != &stream) flush_merged();
      merging = &stream;
      merged += string_field(event, "text");
      return;
    }
    flush_merged();
    if (type == "end") {
      // Whatever the cell wrote to fds 1/2 is in the pipes by now: deliver it first.
      drain_pipe(process_.stdout_fd(), out, out_open, true);
      drain_pipe(process_.stderr_fd(), err, err_open, true);
    } else if (type != "ready") {
      // Results and errors are output too, with a budget of their own.
      bool newly_capped = false;
      if (!results.admit_event(payload.size(), max_output_bytes_, newly_capped)) {
        if (newly_capped && callbacks_.on_output_limit) callbacks_.on_output_limit(results.name);
        return;
      }
    }
    callbacks_.on_event(std::move(event));
  };

  auto read_events = [&] {
    std::string bytes;
    const bool open = read_available(process_.events_fd(), bytes);
    decoder.feed(bytes);
    // After a protocol error the channel stops reading events (events_open false).
    while (events_open) {
      auto payload = decoder.next();
      if (!payload) break;
      handle_frame(*payload);
    }
    flush_merged();
    if (decoder.failed() && events_open) protocol_error("runner sent an oversized frame");
    if (!open) events_open = false;
  };

  auto write_requests = [&] {
    for (;;) {
      if (outgoing.empty()) {
        std::lock_guard lock{mutex_};
        if (outbox_.empty()) return;
        outgoing = std::move(outbox_.front());
        outbox_.pop_front();
      }
      const ssize_t n = ::write(process_.control_fd(), outgoing.data(), outgoing.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
          // The runner is gone; its exit is reported through the pidfd.
          std::lock_guard lock{mutex_};
          outbox_.clear();
          outgoing.clear();
        }
        return;
      }
      outgoing.erase(0, static_cast<std::size_t>(n));
    }
  };

  while (!stopping_) {
    if (reset_counters_.exchange(false)) {
      for (auto* s : {&out, &err, &results}) {
        s->delivered = 0;
        s->capped = false;
      }
    }
    bool want_write = !outgoing.empty();
    if (!want_write) {
      std::lock_guard lock{mutex_};
      want_write = !outbox_.empty();
    }
    std::array<pollfd, 6> fds{{
        {wake_fd_.get(), POLLIN, 0},
        {process_.exit_fd(), POLLIN, 0},
        {events_open ? process_.events_fd() : -1, POLLIN, 0},
        {out_open ? process_.stdout_fd() : -1, POLLIN, 0},
        {err_open ? process_.stderr_fd() : -1, POLLIN, 0},
        {want_write ? process_.control_fd() : -1, POLLOUT, 0},
    }};
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[0].revents) {
      std::uint64_t count;
      [[maybe_unused]] auto n = ::read(wake_fd_.get(), &count, sizeof count);
    }
    // Events first: the common mix is interpreter output (events) followed by a
    // child process's raw output (print, then subprocess.run), and the runners write
    // their events before anything they start can. Raw output written before an
    // event in the same wake-up may come after it: order across fds is best effort.
    if (fds[2].revents) read_events();
    if (fds[3].revents) drain_pipe(process_.stdout_fd(), out, out_open, false);
    if (fds[4].revents) drain_pipe(process_.stderr_fd(), err, err_open, false);
    if (fds[5].revents) write_requests();

    if (fds[1].revents) {
      // The init exited and the kernel killed the rest of its pid namespace:
      // drain what they wrote, then report.
      if (events_open) read_events();
      drain_pipe(process_.stdout_fd(), out, out_open, true);
      drain_pipe(process_.stderr_fd(), err, err_open, true);
      std::string setup_error;
      if (process_.setup_error_fd() >= 0) {
        read_available(process_.setup_error_fd(), setup_error);
        while (!setup_error.empty() && (setup_error.back() == '\n' || setup_error.back() == '\0'))
          setup_error.pop_back();
      }
      exit_status status;
      if (auto s = process_.try_wait()) status = *s;
      if (callbacks_.on_exit) callbacks_.on_exit(status, std::move(setup_error));
      return;
    }
  }
}

}  // namespace codeexec::sandbox
