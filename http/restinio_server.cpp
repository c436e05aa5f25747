// The only translation unit that includes RESTinio (it dominates build time).
#include "http/routes.hpp"
#include "http/server.hpp"

#include "core/json_mapping.hpp"
#include "core/log.hpp"

#include <restinio/all.hpp>
#include <restinio/websocket/websocket.hpp>

#include <algorithm>
#include <cctype>
#include <map>
#include <mutex>

namespace codeexec::http {
namespace {

namespace rws = restinio::websocket::basic;

// default_traits_t gives every connection its own strand, so responses and
// WebSocket frames may be sent from actor threads (cpp-stack.md §4).
using traits = restinio::default_traits_t;

/// Largest WebSocket message a client may send (frames are reassembled up to this).
constexpr std::size_t max_ws_message_bytes = 1 << 20;

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

bool contains_token(std::string_view header, std::string_view token) {
  std::size_t pos = 0;
  while (pos <= header.size()) {
    auto end = header.find(',', pos);
    if (end == std::string_view::npos) end = header.size();
    auto item = header.substr(pos, end - pos);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (iequals(item, token)) return true;
    pos = end + 1;
  }
  return false;
}

restinio::http_status_line_t status_line(int status) {
  const char* reason = "OK";
  switch (status) {
    case 200:
      reason = "OK";
      break;
    case 400:
      reason = "Bad Request";
      break;
    case 401:
      reason = "Unauthorized";
      break;
    case 404:
      reason = "Not Found";
      break;
    case 405:
      reason = "Method Not Allowed";
      break;
    case 413:
      reason = "Payload Too Large";
      break;
    case 429:
      reason = "Too Many Requests";
      break;
    case 503:
      reason = "Service Unavailable";
      break;
    default:
      reason = status < 400 ? "OK" : "Error";
      break;
  }
  return restinio::http_status_line_t{
      restinio::http_status_code_t{static_cast<std::uint16_t>(status)}, reason};
}

void send_reply(const restinio::request_handle_t& req, const reply& r) {
  auto response = req->create_response(status_line(r.status));
  response.append_header(restinio::http_field::content_type, "application/json; charset=utf-8");
  for (const auto& [name, value] : r.headers) response.append_header(name, value);
  response.set_body(r.body);
  response.done();
}

/// A WebSocket as actors see it. Only the owning session actor sends or closes
/// through it, so close never races with a send (cpp-stack.md §4.2).
class ws_connection final : public client_connection {
 public:
  explicit ws_connection(rws::ws_handle_t ws) : ws_(std::move(ws)) {}

  ~ws_connection() override {
    // Dropping the last handle shuts the socket down; do it inside a try because
    // the peer may be gone already.
    try {
      ws_.reset();
    } catch (...) {
    }
  }

  void send_text(std::string message) override {
    try {
      ws_->send_message(rws::final_frame, rws::opcode_t::text_frame, std::move(message));
    } catch (const std::exception&) {
      // Our side closed already: nothing more to send.
    }
  }

  void close(std::uint16_t code, std::string reason) override {
    try {
      ws_->send_message(rws::final_frame, rws::opcode_t::connection_close_frame,
                        rws::status_code_to_bin(static_cast<rws::status_code_t>(code)) + reason);
    } catch (const std::exception&) {
    }
  }

 private:
  rws::ws_handle_t ws_;
};

class restinio_server final : public server {
 public:
  restinio_server(const config& cfg, service& svc) : cfg_(cfg), service_(svc), routes_(cfg, svc) {
    const auto request_timeout =
        std::chrono::duration_cast<std::chrono::steady_clock::duration>(cfg.max_timeout) +
        std::chrono::seconds(60);
    auto settings =
        restinio::server_settings_t<traits>{}
            .address(cfg.host)
            .port(cfg.port)
            .request_handler(
                [this](restinio::request_handle_t req) { return on_request(std::move(req)); })
            .incoming_http_msg_limits(
                restinio::incoming_http_msg_limits_t{}.max_body_size(cfg.max_body_bytes))
            .handle_request_timeout(request_timeout)
            .acceptor_post_bind_hook([this](restinio::asio_ns::ip::tcp::acceptor& a) {
              bound_port_ = a.local_endpoint().port();
            })
            .cleanup_func([this] {
              std::lock_guard lock{mutex_};
              sockets_.clear();
            });
    running_ = restinio::run_async<traits>(restinio::own_io_context(), std::move(settings),
                                           cfg.http_threads);
    log::info("listening", {{"host", cfg.host}, {"port", bound_port_}});
  }

  ~restinio_server() override { stop(); }

  std::uint16_t port() const override { return bound_port_; }

  void stop() override {
    std::lock_guard lock{stop_mutex_};
    if (!running_) return;
    running_->stop();
    running_->wait();
    running_.reset();
  }

 private:
  /// Per-socket state kept by the server: the link to its session actor and the
  /// fragments of a message being reassembled.
  struct socket_entry {
    std::shared_ptr<client_link> link;
    std::string partial;
  };

  restinio::request_handling_status_t on_request(restinio::request_handle_t req) {
    const auto& header = req->header();
    const auto path = std::string{header.path()};
    if (header.has_field(restinio::http_field::upgrade) &&
        contains_token(header.get_field(restinio::http_field::upgrade), "websocket"))
      return on_upgrade(std::move(req), path);

    routes_.handle(header.method().c_str(), path, req->body(),
                   [req](reply r) { send_reply(req, r); });
    return restinio::request_accepted();
  }

  restinio::request_handling_status_t on_upgrade(restinio::request_handle_t req,
                                                 const std::string& path) {
    std::optional<std::string> client_id;
    try {
      const auto query = restinio::parse_query(req->header().query());
      if (query.has("clientId")) client_id = std::string{query["clientId"]};
    } catch (const std::exception&) {
      send_reply(req, error_reply(api_error::bad_request("The query string is malformed")));
      return restinio::request_accepted();
    }
    auto decision = routes_.accept_websocket(path, client_id ? &*client_id : nullptr);
    if (auto* err = std::get_if<api_error>(&decision)) {
      send_reply(req, error_reply(*err));
      return restinio::request_accepted();
    }
    if (!req->header().has_field(restinio::http_field::sec_websocket_key)) {
      send_reply(req, error_reply(api_error::bad_request("Missing Sec-WebSocket-Key")));
      return restinio::request_accepted();
    }

    auto ws = rws::upgrade<traits>(
        *req, rws::activation_t::immediate,
        [this](rws::ws_handle_t wsh, rws::message_handle_t m) { on_ws_message(wsh, m); });
    const auto id = ws->connection_id();
    auto link = service_.connect_client(std::get<std::string>(decision),
                                        std::make_shared<ws_connection>(ws));
    std::lock_guard lock{mutex_};
    sockets_[id] = socket_entry{std::move(link), {}};
    return restinio::request_accepted();
  }

  // Runs on the connection's strand: frames of one socket arrive one at a time.
  void on_ws_message(const rws::ws_handle_t& wsh, const rws::message_handle_t& m) {
    const auto id = wsh->connection_id();
    switch (m->opcode()) {
      case rws::opcode_t::ping_frame:
        try {
          wsh->send_message(rws::final_frame, rws::opcode_t::pong_frame, m->payload());
        } catch (const std::exception&) {
        }
        return;
      case rws::opcode_t::connection_close_frame:
        forget_socket(id);
        return;
      case rws::opcode_t::text_frame:
      case rws::opcode_t::binary_frame:
      case rws::opcode_t::continuation_frame: {
        std::shared_ptr<client_link> link;
        std::string message;
        {
          std::lock_guard lock{mutex_};
          const auto it = sockets_.find(id);
          if (it == sockets_.end()) return;
          auto& entry = it->second;
          if (entry.partial.size() + m->payload().size() > max_ws_message_bytes) {
            entry.partial.clear();
            return;  // oversized messages are dropped; limits come with operations hardening
          }
          entry.partial += m->payload();
          if (m->final_flag() != rws::final_frame) return;
          message = std::move(entry.partial);
          entry.partial.clear();
          link = entry.link;
        }
        service_.client_message(*link, std::move(message));
        return;
      }
      default:
        return;
    }
  }

  void forget_socket(std::uint64_t id) {
    std::shared_ptr<client_link> link;
    {
      std::lock_guard lock{mutex_};
      const auto it = sockets_.find(id);
      if (it == sockets_.end()) return;
      link = std::move(it->second.link);
      sockets_.erase(it);
    }
    service_.client_closed(*link);
  }

  const config& cfg_;
  service& service_;
  routes routes_;
  std::uint16_t bound_port_ = 0;
  std::mutex mutex_;
  std::map<std::uint64_t, socket_entry> sockets_;  // guarded by mutex_
  std::mutex stop_mutex_;
  restinio::running_server_handle_t<traits> running_;
};

}  // namespace

std::unique_ptr<server> start_server(const config& cfg, service& svc) {
  return std::make_unique<restinio_server>(cfg, svc);
}

}  // namespace codeexec::http
