#include "e2b/http_client.hpp"

#include "core/log.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <unordered_map>

namespace codeexec::e2b {
namespace {

using clock = std::chrono::steady_clock;

struct easy_deleter {
  void operator()(CURL* h) const { curl_easy_cleanup(h); }
};
struct multi_deleter {
  void operator()(CURLM* h) const { curl_multi_cleanup(h); }
};
struct slist_deleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
using easy_ptr = std::unique_ptr<CURL, easy_deleter>;
using multi_ptr = std::unique_ptr<CURLM, multi_deleter>;
using slist_ptr = std::unique_ptr<curl_slist, slist_deleter>;

/// Biggest read buffer libcurl allows: fewer, larger chunks for multi-MiB NDJSON lines.
constexpr long read_buffer_bytes = 512 * 1024;
/// How long the thread sleeps in curl_multi_poll when nothing happens (a wakeup ends it).
constexpr auto idle_poll = std::chrono::milliseconds(1000);

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
      throw std::runtime_error("libcurl could not be initialised (curl_global_init)");
  });
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::string trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
    s.remove_suffix(1);
  return std::string{s};
}

/// One request from submission to on_done.
struct transfer_state {
  http_client::request_id id = 0;
  http_request request;
  http_callbacks callbacks;
  // libcurl uses the header list and the error buffer until the easy handle is
  // cleaned up: declared before it, they are destroyed after it.
  slist_ptr header_list;
  char error_buffer[CURL_ERROR_SIZE] = {};
  easy_ptr easy;
  clock::time_point start_at;
  bool in_multi = false;
  // The response as its headers arrive (the last response wins over 1xx ones).
  long status = 0;
  header_map headers;
  bool headers_delivered = false;
  bool aborted_by_reader = false;

  void deliver_headers() {
    if (headers_delivered || status < 200) return;
    headers_delivered = true;
    if (callbacks.on_headers) callbacks.on_headers(status, headers);
  }
};

std::size_t on_header_line(char* data, std::size_t size, std::size_t count, void* user) {
  auto& t = *static_cast<transfer_state*>(user);
  const std::string_view line{data, size * count};
  if (line.starts_with("HTTP/")) {
    // A new response (after a 100 Continue or a redirect): start over.
    t.headers.clear();
    t.headers_delivered = false;
    const auto space = line.find(' ');
    t.status = space == std::string_view::npos
                   ? 0
                   : std::atol(std::string{line.substr(space + 1, 3)}.c_str());
  } else if (line == "\r\n" || line == "\n") {
    t.deliver_headers();
  } else if (const auto colon = line.find(':'); colon != std::string_view::npos) {
    t.headers[lower(std::string{line.substr(0, colon)})] = trim(line.substr(colon + 1));
  }
  return size * count;
}

std::size_t on_body(char* data, std::size_t size, std::size_t count, void* user) {
  auto& t = *static_cast<transfer_state*>(user);
  t.deliver_headers();
  const std::string_view chunk{data, size * count};
  if (t.callbacks.on_data && !t.callbacks.on_data(chunk)) {
    t.aborted_by_reader = true;
    return 0;  // libcurl ends the transfer with CURLE_WRITE_ERROR
  }
  return chunk.size();
}

easy_ptr make_easy(transfer_state& t) {
  easy_ptr easy{curl_easy_init()};
  if (!easy) return easy;
  auto* h = easy.get();
  const auto& r = t.request;
  for (const auto& line : r.headers) {
    auto* appended = curl_slist_append(t.header_list.get(), line.c_str());
    if (!appended) return nullptr;
    (void)t.header_list.release();
    t.header_list.reset(appended);
  }
  // No "Expect: 100-continue" round trip before a body.
  if (auto* appended = curl_slist_append(t.header_list.get(), "Expect:")) {
    (void)t.header_list.release();
    t.header_list.reset(appended);
  }
  curl_easy_setopt(h, CURLOPT_URL, r.url.c_str());
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, t.header_list.get());
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(h, CURLOPT_BUFFERSIZE, read_buffer_bytes);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, t.error_buffer);
  curl_easy_setopt(h, CURLOPT_PRIVATE, &t);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header_line);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(r.connect_timeout.count()));
  if (r.timeout.count() > 0)
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(r.timeout.count()));
  if (r.stall_timeout.count() > 0) {
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME,
                     std::max(1L, static_cast<long>(r.stall_timeout.count() / 1000)));
  }
  if (r.method == "GET") {
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  } else {
    if (r.method != "POST") curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, r.method.c_str());
    if (r.method == "POST" || !r.body.empty()) {
      // The body lives in the transfer's state until the transfer ends.
      curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(r.body.size()));
      curl_easy_setopt(h, CURLOPT_POSTFIELDS, r.body.data());
    }
  }
  return easy;
}

}  // namespace

struct http_client::impl {
  multi_ptr multi;
  std::thread thread;

  mutable std::mutex mutex;
  std::deque<std::unique_ptr<transfer_state>> submitted;  // guarded by mutex
  std::vector<request_id> cancelled;                      // guarded by mutex
  bool stopping = false;                                  // guarded by mutex
  clock::time_point drain_deadline;                       // guarded by mutex
  std::chrono::milliseconds drain{0};                     // guarded by mutex
  std::atomic<request_id> next_id{1};
  std::atomic<std::size_t> outstanding{0};

  // Only the thread touches these.
  std::unordered_map<request_id, std::unique_ptr<transfer_state>> transfers;

  void wakeup() { curl_multi_wakeup(multi.get()); }

  /// Hands the transfer's end to its owner and forgets it.
  void finish(transfer_state& t, http_result result) {
    if (t.in_multi) curl_multi_remove_handle(multi.get(), t.easy.get());
    t.in_multi = false;
    if (result.status == 0) result.status = t.status;
    try {
      if (t.callbacks.on_done) t.callbacks.on_done(result);
    } catch (const std::exception& e) {
      log::error("HTTP completion handler failed", {{"url", t.request.url}, {"error", e.what()}});
    }
    transfers.erase(t.id);
    --outstanding;
  }

  void cancel(transfer_state& t) {
    http_result result;
    result.cancelled = true;
    result.error = "cancelled";
    finish(t, std::move(result));
  }

  void start(transfer_state& t) {
    t.easy = make_easy(t);
    if (!t.easy || curl_multi_add_handle(multi.get(), t.easy.get()) != CURLM_OK) {
      http_result result;
      result.curl_code = CURLE_FAILED_INIT;
      result.error = "libcurl could not start the request";
      finish(t, std::move(result));
      return;
    }
    t.in_multi = true;
  }

  void completed(CURLMsg* msg) {
    transfer_state* t = nullptr;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &t);
    if (!t) return;
    http_result result;
    result.curl_code = static_cast<int>(msg->data.result);
    if (msg->data.result == CURLE_OK) {
      curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &result.status);
      t->deliver_headers();  // a response without body and without a final blank line
    } else {
      result.error = t->aborted_by_reader ? std::string{"aborted by the reader"}
                     : t->error_buffer[0] ? std::string{t->error_buffer}
                                          : std::string{curl_easy_strerror(msg->data.result)};
    }
    finish(*t, std::move(result));
  }

  void run() {
    for (;;) {
      std::deque<std::unique_ptr<transfer_state>> fresh;
      std::vector<request_id> to_cancel;
      bool stop = false;
      clock::time_point deadline;
      {
        std::lock_guard lock{mutex};
        fresh.swap(submitted);
        to_cancel.swap(cancelled);
        stop = stopping;
        deadline = drain_deadline;
      }
      const auto now = clock::now();
      for (auto& t : fresh) {
        auto& ref = *t;
        transfers.emplace(ref.id, std::move(t));
        if (ref.start_at <= now) start(ref);
      }
      for (const auto id : to_cancel)
        if (auto it = transfers.find(id); it != transfers.end()) cancel(*it->second);
      // Delayed requests whose time has come, and the next one's time.
      auto next_start = clock::time_point::max();
      std::vector<transfer_state*> due;
      for (auto& [id, t] : transfers) {
        if (t->in_multi || t->easy) continue;
        if (t->start_at <= now)
          due.push_back(t.get());
        else
          next_start = std::min(next_start, t->start_at);
      }
      for (auto* t : due) start(*t);

      int running = 0;
      curl_multi_perform(multi.get(), &running);
      int left = 0;
      while (CURLMsg* msg = curl_multi_info_read(multi.get(), &left))
        if (msg->msg == CURLMSG_DONE) completed(msg);

      if (stop) {
        bool idle = transfers.empty();
        {
          std::lock_guard lock{mutex};
          idle = idle && submitted.empty();
        }
        if (idle) break;
        if (clock::now() >= deadline) {
          log::warn("HTTP requests still running at shutdown: cancelled",
                    {{"count", transfers.size()}});
          while (!transfers.empty()) cancel(*transfers.begin()->second);
          continue;  // the cancellations' handlers may have submitted more
        }
      }
      auto wait = idle_poll;
      const auto now2 = clock::now();
      if (next_start != clock::time_point::max())
        wait = std::min(wait, std::chrono::ceil<std::chrono::milliseconds>(next_start - now2));
      if (stop)
        wait = std::min(wait, std::chrono::ceil<std::chrono::milliseconds>(deadline - now2));
      wait = std::max(wait, std::chrono::milliseconds(0));
      curl_multi_poll(multi.get(), nullptr, 0, static_cast<int>(wait.count()), nullptr);
    }
  }
};

http_client::http_client() : impl_(std::make_unique<impl>()) {
  global_init();
  impl_->multi.reset(curl_multi_init());
  if (!impl_->multi) throw std::runtime_error("libcurl could not create a multi handle");
  impl_->thread = std::thread([this] { impl_->run(); });
}

http_client::~http_client() {
  {
    std::lock_guard lock{impl_->mutex};
    impl_->stopping = true;
    impl_->drain_deadline = clock::now() + impl_->drain;
  }
  impl_->wakeup();
  impl_->thread.join();
}

http_client::request_id http_client::submit(http_request request, http_callbacks callbacks) {
  auto t = std::make_unique<transfer_state>();
  t->id = impl_->next_id++;
  t->start_at = clock::now() + request.start_after;
  t->request = std::move(request);
  t->callbacks = std::move(callbacks);
  const auto id = t->id;
  ++impl_->outstanding;
  {
    std::lock_guard lock{impl_->mutex};
    impl_->submitted.push_back(std::move(t));
  }
  impl_->wakeup();
  return id;
}

http_client::request_id http_client::submit_buffered(http_request request, std::size_t max_body,
                                                     std::function<void(http_response)> done) {
  // Shared by the callbacks, which all run on the client's thread.
  auto response = std::make_shared<http_response>();
  http_callbacks callbacks;
  callbacks.on_headers = [response](long, const header_map& headers) {
    response->headers = headers;
  };
  callbacks.on_data = [response, max_body](std::string_view chunk) {
    if (response->body.size() + chunk.size() > max_body) return false;
    response->body.append(chunk);
    return true;
  };
  callbacks.on_done = [response, done = std::move(done)](const http_result& result) {
    response->result = result;
    done(std::move(*response));
  };
  return submit(std::move(request), std::move(callbacks));
}

void http_client::cancel(request_id id) {
  {
    std::lock_guard lock{impl_->mutex};
    impl_->cancelled.push_back(id);
  }
  impl_->wakeup();
}

void http_client::drain_on_exit(std::chrono::milliseconds drain) {
  std::lock_guard lock{impl_->mutex};
  impl_->drain = drain;
}

std::size_t http_client::active() const {
  return impl_->outstanding.load();
}

}  // namespace codeexec::e2b
