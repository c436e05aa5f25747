// Service configuration: from the environment and an optional .env file.
// Every variable is documented in .env.example.
#pragma once

#include "core/language.hpp"
#include "core/limits.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace codeexec {

/// A variable has a value the service cannot use; what() names it and says why.
struct config_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

enum class backend_kind { local, e2b };

struct config {
  std::string host = "0.0.0.0";
  std::uint16_t port = 4000;
  std::size_t http_threads = 2;
  backend_kind backend = backend_kind::local;
  std::string e2b_api_key;
  // The E2B cloud backend (SANDBOX_BACKEND=e2b), resolved as E2B's SDK resolves them.
  std::string e2b_domain = "e2b.app";  ///< E2B_DOMAIN: API and sandbox hosts live under it
  std::string e2b_api_url;             ///< E2B_API_URL; empty: https://api.{E2B_DOMAIN}
  std::string e2b_sandbox_url;         ///< E2B_SANDBOX_URL; empty: https://{port}-{id}.{domain}
  std::string e2b_template_id = "code-interpreter-v1";  ///< E2B_TEMPLATE_ID
  /// E2B_REQUEST_TIMEOUT_MS: control-plane and contexts calls.
  std::chrono::milliseconds e2b_request_timeout{60000};
  /// E2B_CREATE_RETRIES: retries of a create that failed transiently (429, 5xx, network).
  std::uint32_t e2b_create_retries = 4;
  /// E2B-compatible API (the official SDKs): one listener for the control and data
  /// planes on this port (0: off).
  std::uint16_t e2b_compat_port = 0;
  /// Also serve the SDK's debug mode (E2B_DEBUG=true): the code interpreter on
  /// 127.0.0.1:49999 and envd on 127.0.0.1:49983, unauthenticated.
  bool e2b_compat_debug_ports = false;
  std::string log_level = "info";

  std::chrono::milliseconds default_timeout{30000};
  std::chrono::milliseconds max_timeout{300000};
  std::size_t max_code_bytes = 1 << 20;
  std::size_t max_body_bytes = 16 << 20;
  std::chrono::milliseconds stream_replay_window{10000};
  std::size_t max_concurrent_executions = 64;
  std::chrono::milliseconds shutdown_grace{10000};
  /// At the end of a shutdown, how long actors may take to end before they are killed.
  std::chrono::milliseconds shutdown_kill_after{5000};

  // Who may call, and how much.
  std::string api_keys;       ///< comma-separated; empty with no file: no auth
  std::string api_keys_file;  ///< one key per line
  std::size_t key_max_concurrent_executions = 16;
  std::size_t key_rate_limit_rps = 20;  ///< 0: no rate limit
  std::size_t key_rate_limit_burst = 40;
  std::string cors_origins;  ///< empty: CORS off; "*" or a comma-separated list
  /// The playground page (GET /): "auto" serves it to loopback clients only, "on" to
  /// every client, "off" to none.
  std::string playground = "auto";

  // Connection limits.
  std::size_t max_connections = 1024;
  std::size_t max_header_bytes = 16 << 10;
  std::chrono::milliseconds idle_timeout{60000};
  std::size_t ws_max_message_bytes = 1 << 20;
  std::size_t ws_max_messages_per_second = 50;
  std::size_t ws_send_buffer_bytes = 8 << 20;
  std::chrono::milliseconds ws_ping_interval{30000};

  std::string runner_dir;  ///< empty: found next to the binary or in the source tree
  /// Root-owned directory the service controls; the sandboxes bind their runners from a
  /// copy made here (sandbox/runner_stage.hpp).
  std::string runtime_dir = "/run/codeexec";
  std::uint32_t sandbox_uid_base = 200000;
  std::uint32_t max_sandboxes = 1024;

  // Stateful sandboxes (POST /sandboxes).
  /// Idle time after which a sandbox is destroyed, when its request gives none.
  std::chrono::milliseconds sandbox_idle_timeout{300000};
  /// The longest idle timeout a request may ask for.
  std::chrono::milliseconds sandbox_idle_timeout_max{3600000};
  /// A sandbox is destroyed this long after its creation, busy or not.
  std::chrono::milliseconds sandbox_max_lifetime{86400000};
  /// Live stateful sandboxes per API key.
  std::size_t key_max_sandboxes = 16;
  /// Kernels (contexts) per sandbox, defaults included (each idle kernel costs its
  /// memory: README "Contexts"); the sandbox's agent has 64 kernel slots.
  std::size_t max_contexts_per_sandbox = 32;
  /// How long an interrupted cell may take to stop before its kernel is restarted.
  std::chrono::milliseconds interrupt_grace{2000};
  /// ZYGOTE=auto: Python kernels are forked from a pre-initialised zygote process
  /// whenever it is ready (sandbox/zygote.hpp); off: every kernel is exec'd.
  bool zygote = false;
  /// The languages this server runs (LANGUAGES; default all): the others answer
  /// unavailable_language, as a runtime missing from the host does.
  std::vector<language> languages{all_languages.begin(), all_languages.end()};
  /// Ready sandboxes kept per pooled language (never above MAX_SANDBOXES).
  std::size_t warm_pool_size = 2;
  std::vector<language> warm_pool_languages{language::python, language::javascript};
  /// What an execution gets when its request names no limit.
  resource_limits default_limits;
  /// The most a request may ask for.
  resource_limits max_limits = {
      .memory_bytes = 4096ull << 20,
      .pids = 1024,
      .workspace_bytes = 1024ull << 20,
      .file_size_bytes = 1024ull << 20,
      .open_files = 4096,
      .output_bytes = 64ull << 20,
      .cpu_ms = 3'600'000,
  };
};

/// Reads `KEY=VALUE` lines (comments with #, optional quotes). Missing file → empty.
std::map<std::string, std::string> read_env_file(const std::string& path);

/// Builds the configuration. `lookup` returns a variable's value if set; the
/// process environment wins over the .env file (see load_config).
config make_config(const std::function<std::optional<std::string>(const std::string&)>& lookup);

/// make_config over the process environment and the file named by ENV_FILE (default ".env").
config load_config();

}  // namespace codeexec
