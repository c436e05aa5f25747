// The only translation unit that includes RESTinio (it dominates build time): the
// server (listeners, routing into routes/e2b_routes, WebSocket upgrade and
// reassembly). Its parts, in headers only this file includes: restinio_reply.hpp,
// restinio_ws_connection.hpp, restinio_chunked_reply.hpp.
#include "http/e2b_routes.hpp"
#include "http/restinio_chunked_reply.hpp"
#include "http/restinio_reply.hpp"
#include "http/restinio_ws_connection.hpp"
#include "http/routes.hpp"
#include "http/server.hpp"

#include "core/json_mapping.hpp"
#include "core/log.hpp"

#include <restinio/all.hpp>
#include <restinio/websocket/websocket.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

namespace codeexec::http {
namespace {

/// How long stop() waits for close frames already sent to be written.
constexpr auto close_write_wait = std::chrono::seconds(2);

// default_traits_t gives every connection its own strand, so responses and
// WebSocket frames may be sent from actor threads (cpp-stack.md §4).
struct traits : restinio::default_traits_t {
  static constexpr bool use_connection_count_limiter = true;
};

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

class restinio_server final : public server {
 public:
  restinio_server(const config& cfg, service& svc)
      : cfg_(cfg), service_(svc), access_(cfg), routes_(cfg, svc, access_) {
    // The E2B listeners first: the main listener's "listening" line tells that all serve.
    start_e2b_listeners();
    running_ = restinio::run_async<traits>(
        restinio::own_io_context(),
        settings(cfg.host, cfg.port,
                 [this](restinio::request_handle_t req) { return on_request(std::move(req)); })
            .acceptor_post_bind_hook([this](restinio::asio_ns::ip::tcp::acceptor& a) {
              bound_port_ = a.local_endpoint().port();
            })
            .cleanup_func([this] {
              std::lock_guard lock{mutex_};
              sockets_.clear();
            }),
        cfg.http_threads);
    log::info("listening", {{"host", cfg.host}, {"port", bound_port_}});
  }

  ~restinio_server() override { stop(); }

  std::uint16_t port() const override { return bound_port_; }

  void stop() override {
    std::lock_guard lock{stop_mutex_};
    if (!running_) return;
    {
      // The sessions have sent their close frames by now (the service's shutdown
      // waits for that); let RESTinio write them before it drops the connections.
      std::unique_lock closing_lock{closing_->mutex};
      if (!closing_->written.wait_for(closing_lock, close_write_wait,
                                      [this] { return closing_->pending == 0; }))
        log::info("websocket close frames not written in time", {{"pending", closing_->pending}});
    }
    running_->stop();
    running_->wait();
    running_.reset();
    for (auto& listener : e2b_listeners_) {
      listener->stop();
      listener->wait();
    }
    e2b_listeners_.clear();
    ticker_.reset();
  }

 private:
  /// Per-socket state kept by the server: the link to its session actor, the
  /// connection (to record pongs), the fragments of a message being reassembled,
  /// and the client's message rate.
  struct socket_entry {
    std::shared_ptr<client_link> link;
    std::weak_ptr<ws_connection> connection;
    std::string partial;
    std::chrono::steady_clock::time_point window_start;
    std::size_t messages_in_window = 0;
  };

  static std::optional<std::string_view> header(const restinio::request_handle_t& req,
                                                restinio::http_field_t field) {
    if (!req->header().has_field(field)) return std::nullopt;
    return std::string_view{req->header().get_field(field)};
  }

  restinio::request_handling_status_t on_request(restinio::request_handle_t req) {
    const auto& head = req->header();
    const auto path = std::string{head.path()};
    if (head.has_field(restinio::http_field::upgrade) &&
        contains_token(head.get_field(restinio::http_field::upgrade), "websocket"))
      return on_upgrade(std::move(req), path);

    request_info info;
    info.method = head.method().c_str();
    info.path = path;
    info.authorization = header(req, restinio::http_field::authorization);
    info.origin = header(req, restinio::http_field::origin);
    info.loopback_client = req->remote_endpoint().address().is_loopback();
    if (!parse_query_into(req, info)) {
      send_reply(req, error_reply(api_error::bad_request("The query string is malformed")));
      return restinio::request_accepted();
    }
    copy_headers(req, info);
    routes_.handle(info, req->body(), [req](reply r) { send_reply(req, r); });
    return restinio::request_accepted();
  }

  /// Every header of `req` into info.headers, names in lower case.
  static void copy_headers(const restinio::request_handle_t& req, request_info& info) {
    req->header().for_each_field([&info](const restinio::http_header_field_t& field) {
      std::string name = field.name();
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
      info.headers.emplace_back(std::move(name), field.value());
    });
  }

  /// The decoded query parameters of `req`; false if the query string is malformed.
  static bool parse_query_into(const restinio::request_handle_t& req, request_info& info) {
    try {
      // Relaxed: a file path's '/' need not be percent-encoded; '+' stays '+'.
      const auto query =
          restinio::parse_query<restinio::parse_query_traits::relaxed>(req->header().query());
      for (const auto& [name, value] : query)
        info.query.emplace_back(std::string{name}, std::string{value});
      return true;
    } catch (const std::exception&) {
      return false;
    }
  }

  template <class Handler>
  restinio::server_settings_t<traits> settings(const std::string& host, std::uint16_t port,
                                               Handler handler) const {
    const auto request_timeout =
        std::chrono::duration_cast<std::chrono::steady_clock::duration>(cfg_.max_timeout) +
        std::chrono::seconds(60);
    const auto header_limit = cfg_.max_header_bytes;
    return restinio::server_settings_t<traits>{}
        .address(host)
        .port(port)
        .request_handler(std::move(handler))
        .incoming_http_msg_limits(restinio::incoming_http_msg_limits_t{}
                                      .max_body_size(cfg_.max_body_bytes)
                                      .max_url_size(header_limit)
                                      .max_field_name_size(header_limit)
                                      .max_field_value_size(header_limit)
                                      .max_field_count(100))
        .max_parallel_connections(cfg_.max_connections)
        .read_next_http_message_timelimit(cfg_.idle_timeout)
        .handle_request_timeout(request_timeout);
  }

  // ---- the E2B-compatible listeners (http/e2b_routes.hpp) ----

  void start_e2b_listeners() {
    if (cfg_.e2b_compat_port == 0 && !cfg_.e2b_compat_debug_ports) return;
    e2b_ = std::make_unique<e2b_routes>(cfg_, service_, access_);
    ticker_ = std::make_unique<keepalive_ticker>();
    if (cfg_.e2b_compat_port != 0) listen_e2b(cfg_.host, cfg_.e2b_compat_port, e2b_plane::routed);
    // The SDK's debug mode talks to these fixed ports on localhost, unauthenticated:
    // they are bound to loopback only.
    if (cfg_.e2b_compat_debug_ports) {
      listen_e2b("127.0.0.1", 49999, e2b_plane::debug_code_interpreter);
      listen_e2b("127.0.0.1", 49983, e2b_plane::debug_envd);
    }
  }

  void listen_e2b(const std::string& host, std::uint16_t port, e2b_plane plane) {
    e2b_listeners_.push_back(
        restinio::run_async<traits>(restinio::own_io_context(),
                                    settings(host, port,
                                             [this, plane](restinio::request_handle_t req) {
                                               return on_e2b_request(plane, std::move(req));
                                             }),
                                    cfg_.http_threads));
    const char* name = plane == e2b_plane::routed                   ? "e2b api"
                       : plane == e2b_plane::debug_code_interpreter ? "e2b debug code interpreter"
                                                                    : "e2b debug envd";
    log::info("e2b api listening", {{"host", host}, {"port", port}, {"api", name}});
  }

  restinio::request_handling_status_t on_e2b_request(e2b_plane plane,
                                                     restinio::request_handle_t req) {
    const auto& head = req->header();
    const auto path = std::string{head.path()};
    request_info info;
    info.method = head.method().c_str();
    info.path = path;
    if (!parse_query_into(req, info)) {
      send_reply(req, error_reply(api_error::bad_request("The query string is malformed")));
      return restinio::request_accepted();
    }
    copy_headers(req, info);
    responder respond;
    respond.reply = [req](reply r) { send_reply(req, r); };
    respond.stream = [this, req](chunked_start start) -> std::shared_ptr<chunked_reply> {
      auto reply = std::make_shared<restinio_chunked_reply>(req, std::move(start));
      reply->begin();
      ticker_->watch(reply);
      return reply;
    };
    e2b_->handle(plane, info, req->body(), std::move(respond));
    return restinio::request_accepted();
  }

  restinio::request_handling_status_t on_upgrade(restinio::request_handle_t req,
                                                 const std::string& path) {
    std::optional<std::string> client_id;
    std::optional<std::string> token;
    try {
      const auto query = restinio::parse_query(req->header().query());
      if (query.has("clientId")) client_id = std::string{query["clientId"]};
      if (query.has("token")) token = std::string{query["token"]};
    } catch (const std::exception&) {
      send_reply(req, error_reply(api_error::bad_request("The query string is malformed")));
      return restinio::request_accepted();
    }
    request_info info;
    info.method = "GET";
    info.path = path;
    info.authorization = header(req, restinio::http_field::authorization);
    if (token) info.token = *token;
    auto decision = routes_.accept_websocket(info, client_id ? &*client_id : nullptr);
    if (auto* err = std::get_if<api_error>(&decision)) {
      send_reply(req, error_reply(*err));
      return restinio::request_accepted();
    }
    if (!req->header().has_field(restinio::http_field::sec_websocket_key)) {
      send_reply(req, error_reply(api_error::bad_request("Missing Sec-WebSocket-Key")));
      return restinio::request_accepted();
    }

    // Reading starts only once the socket is registered: a client that sends right
    // after the handshake would otherwise lose its first messages (stdin, say).
    auto ws = rws::upgrade<traits>(
        *req, rws::activation_t::delayed,
        [this](rws::ws_handle_t wsh, rws::message_handle_t m) { on_ws_message(wsh, m); });
    const auto id = ws->connection_id();
    auto connection = std::make_shared<ws_connection>(ws, cfg_.ws_send_buffer_bytes, closing_);
    auto& grant = std::get<websocket_grant>(decision);
    auto link = service_.connect_client(grant.owner, grant.client_id, connection);
    {
      std::lock_guard lock{mutex_};
      sockets_[id] =
          socket_entry{std::move(link), connection, {}, std::chrono::steady_clock::now(), 0};
    }
    activate(*ws);
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
      case rws::opcode_t::pong_frame: {
        std::lock_guard lock{mutex_};
        if (auto it = sockets_.find(id); it != sockets_.end())
          if (auto c = it->second.connection.lock()) c->pong_received();
        return;
      }
      case rws::opcode_t::connection_close_frame:
        forget_socket(id);
        return;
      case rws::opcode_t::text_frame:
      case rws::opcode_t::binary_frame:
      case rws::opcode_t::continuation_frame:
        on_ws_data(id, *m);
        return;
      default:
        return;
    }
  }

  /// Reassembles a client's message, enforcing the size and rate limits. A client
  /// that breaks one is closed by its session (the only one that may close it).
  void on_ws_data(std::uint64_t id, const rws::message_t& m) {
    std::shared_ptr<client_link> link;
    std::string message;
    std::optional<std::pair<std::uint16_t, std::string>> violation;
    {
      std::lock_guard lock{mutex_};
      const auto it = sockets_.find(id);
      if (it == sockets_.end()) return;
      auto& entry = it->second;
      link = entry.link;
      if (entry.partial.size() + m.payload().size() > cfg_.ws_max_message_bytes) {
        entry.partial.clear();
        violation = {1009,
                     "message larger than " + std::to_string(cfg_.ws_max_message_bytes) + " bytes"};
      } else {
        entry.partial += m.payload();
        if (m.final_flag() != rws::final_frame) return;
        message = std::move(entry.partial);
        entry.partial.clear();
        const auto now = std::chrono::steady_clock::now();
        if (now - entry.window_start >= std::chrono::seconds(1)) {
          entry.window_start = now;
          entry.messages_in_window = 0;
        }
        if (++entry.messages_in_window > cfg_.ws_max_messages_per_second)
          violation = {1008, "more than " + std::to_string(cfg_.ws_max_messages_per_second) +
                                 " messages per second"};
      }
    }
    if (violation)
      service_.close_client(*link, violation->first, std::move(violation->second));
    else
      service_.client_message(*link, std::move(message));
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
  access_policy access_;  // one key budget for every listener
  routes routes_;
  std::uint16_t bound_port_ = 0;
  std::mutex mutex_;
  std::map<std::uint64_t, socket_entry> sockets_;  // guarded by mutex_
  std::shared_ptr<close_tracker> closing_ = std::make_shared<close_tracker>();
  std::mutex stop_mutex_;
  restinio::running_server_handle_t<traits> running_;
  std::unique_ptr<e2b_routes> e2b_;
  std::unique_ptr<keepalive_ticker> ticker_;
  std::vector<restinio::running_server_handle_t<traits>> e2b_listeners_;
};

}  // namespace

std::unique_ptr<server> start_server(const config& cfg, service& svc) {
  return std::make_unique<restinio_server>(cfg, svc);
}

}  // namespace codeexec::http
