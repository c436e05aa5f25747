// The Model Context Protocol server at /mcp: MCP's Streamable HTTP transport
// (revisions 2025-03-26 to 2025-11-25), JSON-RPC 2.0 messages, sessions
// (Mcp-Session-Id) and the MCP-Protocol-Version header. Every reply is one JSON body
// (the transport's application/json mode); GET offers no server stream (405). The
// caller is authenticated by the routes (API key as Authorization: Bearer); a session
// belongs to that key. The tools are http/mcp_tools.
#pragma once

#include "actors/service.hpp"
#include "core/config.hpp"
#include "http/mcp_tools.hpp"

#include <chrono>
#include <cstddef>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace codeexec::http {

struct reply;
struct request_info;

class mcp_server {
 public:
  /// Largest JSON-RPC message accepted (413 over it).
  static constexpr std::size_t max_message_bytes = 8 << 20;
  /// Most sessions kept at once; the least recently used goes first.
  static constexpr std::size_t max_sessions = 1024;
  /// A session unused this long is ended.
  static constexpr std::chrono::minutes session_idle_timeout{60};

  mcp_server(const config& cfg, service& svc);

  /// POST or DELETE /mcp from the key identity `owner`; `respond` is called exactly once.
  void handle(const request_info& req, const std::string& owner, std::string body,
              std::function<void(reply)> respond);

 private:
  struct session {
    std::string owner;
    std::string protocol_version;
    std::chrono::steady_clock::time_point last_used;
  };

  /// The session's protocol version if `id` is a live session of `owner` (and touches it).
  std::optional<std::string> use_session(const std::string& id, const std::string& owner);
  std::string open_session(const std::string& owner, const std::string& protocol_version);
  bool close_session(const std::string& id, const std::string& owner);

  mcp_tools tools_;
  std::mutex mutex_;
  std::unordered_map<std::string, session> sessions_;
};

}  // namespace codeexec::http
