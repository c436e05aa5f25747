// A chunked HTTP response fed from actor threads (chunked_reply over RESTinio), and
// the one thread that writes keepalive parts into idle ones. Included only by
// restinio_server.cpp, the one RESTinio translation unit (RESTinio dominates build
// time).
#pragma once

#include "http/chunked_reply.hpp"
#include "http/restinio_reply.hpp"

#include <restinio/all.hpp>

#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace codeexec::http {

/// A chunked HTTP response fed from actor threads (E2B's NDJSON /execute).
class restinio_chunked_reply final : public chunked_reply,
                                     public std::enable_shared_from_this<restinio_chunked_reply> {
 public:
  using clock = std::chrono::steady_clock;

  restinio_chunked_reply(const restinio::request_handle_t& req, chunked_start start)
      : response_(req->create_response<restinio::chunked_output_t>(status_line(start.status))),
        peer_(req->remote_endpoint()),
        keepalive_(std::move(start.keepalive)),
        keepalive_every_(start.keepalive_every),
        on_gone_(std::move(start.on_gone)) {
    if (!start.content_type.empty())
      response_.append_header(restinio::http_field::content_type, start.content_type);
    for (const auto& [name, value] : start.headers) response_.append_header(name, value);
  }

  /// Sends the status line and headers (before any part: the client sees the response
  /// start while the code runs).
  void begin() {
    std::lock_guard lock{mutex_};
    send_locked(nullptr);
  }

  void write(std::string part) override {
    std::lock_guard lock{mutex_};
    send_locked(&part);
  }

  void finish() override {
    std::lock_guard lock{mutex_};
    if (finished_) return;
    finished_ = true;
    try {
      response_.done(after_write());
    } catch (const std::exception&) {
    }
  }

  void abort() override {
    std::lock_guard lock{mutex_};
    if (finished_ || gone_) return;
    finished_ = true;
    gone_ = true;
    // RESTinio can only end a chunked response properly; the connection's socket is
    // found by its peer (unique per connection) and shut down. RESTinio's own pending
    // I/O then fails and it closes the socket itself.
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd", ec)) {
      int fd = -1;
      try {
        fd = std::stoi(entry.path().filename().string());
      } catch (const std::exception&) {
        continue;
      }
      sockaddr_storage address{};
      socklen_t size = sizeof address;
      if (::getpeername(fd, reinterpret_cast<sockaddr*>(&address), &size) != 0) continue;
      restinio::asio_ns::ip::tcp::endpoint endpoint;
      if (size > endpoint.capacity()) continue;
      std::memcpy(endpoint.data(), &address, size);
      endpoint.resize(size);
      if (endpoint == peer_) {
        ::shutdown(fd, SHUT_RDWR);
        return;
      }
    }
  }

  /// From the ticker: a keepalive part if nothing was written for a while.
  void tick(clock::time_point now) {
    std::lock_guard lock{mutex_};
    if (keepalive_.empty() || now - last_write_ < keepalive_every_) return;
    auto part = keepalive_;
    send_locked(&part);
  }

  bool finished() const {
    std::lock_guard lock{mutex_};
    return finished_ || gone_;
  }

 private:
  void send_locked(std::string* part) {
    if (finished_ || gone_) return;
    last_write_ = clock::now();
    try {
      if (part) response_.append_chunk(std::move(*part));
      response_.flush(after_write());
    } catch (const std::exception&) {
      gone_ = true;
    }
  }

  /// The write's outcome, on an I/O thread (possibly inline, within flush: so it must
  /// not take mutex_). A failed write means the client is gone.
  restinio::write_status_cb_t after_write() {
    return [weak = weak_from_this()](const restinio::asio_ns::error_code& ec) {
      if (!ec) return;
      if (auto self = weak.lock()) self->client_gone();
    };
  }

  void client_gone() {
    if (gone_notified_.exchange(true)) return;
    gone_ = true;
    if (on_gone_) on_gone_();
  }

  mutable std::mutex mutex_;
  restinio::response_builder_t<restinio::chunked_output_t> response_;  // guarded by mutex_
  const restinio::asio_ns::ip::tcp::endpoint peer_;
  const std::string keepalive_;
  const std::chrono::milliseconds keepalive_every_;
  const std::function<void()> on_gone_;
  clock::time_point last_write_ = clock::now();  // guarded by mutex_
  bool finished_ = false;                        // guarded by mutex_
  std::atomic<bool> gone_{false};
  std::atomic<bool> gone_notified_{false};
};

/// One thread that writes keepalive parts into idle chunked replies.
class keepalive_ticker {
 public:
  keepalive_ticker() : thread_([this] { run(); }) {}
  ~keepalive_ticker() {
    {
      std::lock_guard lock{mutex_};
      stopping_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }
  keepalive_ticker(const keepalive_ticker&) = delete;
  keepalive_ticker& operator=(const keepalive_ticker&) = delete;

  void watch(const std::shared_ptr<restinio_chunked_reply>& reply) {
    {
      std::lock_guard lock{mutex_};
      replies_.push_back(reply);
    }
    wake_.notify_all();  // the thread sleeps while there is nothing to watch
  }

 private:
  static constexpr auto period = std::chrono::milliseconds(250);

  void run() {
    std::unique_lock lock{mutex_};
    for (;;) {
      wake_.wait(lock, [this] { return stopping_ || !replies_.empty(); });
      if (stopping_ || wake_.wait_for(lock, period, [this] { return stopping_; })) return;
      std::vector<std::shared_ptr<restinio_chunked_reply>> live;
      std::erase_if(replies_, [&](const auto& weak) {
        auto reply = weak.lock();
        if (!reply || reply->finished()) return true;
        live.push_back(std::move(reply));
        return false;
      });
      lock.unlock();
      const auto now = restinio_chunked_reply::clock::now();
      for (const auto& reply : live) reply->tick(now);
      live.clear();
      lock.lock();
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;                                       // guarded by mutex_
  std::vector<std::weak_ptr<restinio_chunked_reply>> replies_;  // guarded by mutex_
  std::thread thread_;
};

}  // namespace codeexec::http
