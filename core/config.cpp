#include "core/config.hpp"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <fstream>
#include <limits>

namespace codeexec {
namespace {

std::string trim(std::string s) {
  const auto first = s.find_first_not_of(" \t\r");
  if (first == std::string::npos) return {};
  const auto last = s.find_last_not_of(" \t\r");
  return s.substr(first, last - first + 1);
}

template <class Int>
Int parse_int(const std::string& name, const std::string& text, Int min, Int max) {
  long long value = 0;
  const auto* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc{} || ptr != end || value < static_cast<long long>(min) ||
      static_cast<unsigned long long>(value) > static_cast<unsigned long long>(max)) {
    throw config_error(name + "=" + text + ": expected an integer from " + std::to_string(min) +
                       " to " + std::to_string(max));
  }
  return static_cast<Int>(value);
}

}  // namespace

std::map<std::string, std::string> read_env_file(const std::string& path) {
  std::map<std::string, std::string> vars;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    line = trim(line);
    if (line.empty() || line.front() == '#') continue;
    if (line.rfind("export ", 0) == 0) line = trim(line.substr(7));
    const auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    auto key = trim(line.substr(0, eq));
    auto value = trim(line.substr(eq + 1));
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') &&
        value.back() == value.front()) {
      value = value.substr(1, value.size() - 2);
    }
    vars[key] = value;
  }
  return vars;
}

config make_config(const std::function<std::optional<std::string>(const std::string&)>& lookup) {
  config cfg;
  auto get = [&](const char* name) { return lookup(name); };
  auto integer = [&](const char* name, auto& field, auto min, auto max) {
    using field_type = std::remove_reference_t<decltype(field)>;
    if (auto v = get(name); v && !v->empty())
      field = parse_int<field_type>(name, *v, static_cast<field_type>(min),
                                    static_cast<field_type>(max));
  };
  auto millis = [&](const char* name, std::chrono::milliseconds& field, std::int64_t min) {
    std::int64_t ms = field.count();
    integer(name, ms, min, std::int64_t{24} * 3600 * 1000);
    field = std::chrono::milliseconds{ms};
  };
  constexpr auto u64_max = std::numeric_limits<std::int64_t>::max();

  if (auto v = get("HOST"); v && !v->empty()) cfg.host = *v;
  integer("PORT", cfg.port, 0, 65535);
  integer("HTTP_THREADS", cfg.http_threads, 1, 64);
  if (auto v = get("SANDBOX_BACKEND"); v && !v->empty()) {
    if (*v == "local")
      cfg.backend = backend_kind::local;
    else if (*v == "e2b")
      cfg.backend = backend_kind::e2b;
    else
      throw config_error("SANDBOX_BACKEND=" + *v + ": expected local or e2b");
  }
  if (auto v = get("E2B_API_KEY")) cfg.e2b_api_key = *v;
  if (auto v = get("E2B_DOMAIN"); v && !v->empty()) cfg.e2b_domain = *v;
  if (auto v = get("E2B_API_URL")) cfg.e2b_api_url = *v;
  if (auto v = get("E2B_SANDBOX_URL")) cfg.e2b_sandbox_url = *v;
  if (auto v = get("E2B_TEMPLATE_ID"); v && !v->empty()) cfg.e2b_template_id = *v;
  millis("E2B_REQUEST_TIMEOUT_MS", cfg.e2b_request_timeout, 1000);
  integer("E2B_CREATE_RETRIES", cfg.e2b_create_retries, 0, 20);
  integer("E2B_COMPAT_PORT", cfg.e2b_compat_port, 0, 65535);
  if (auto v = get("E2B_COMPAT_DEBUG_PORTS"); v && !v->empty()) {
    if (*v == "true" || *v == "1")
      cfg.e2b_compat_debug_ports = true;
    else if (*v == "false" || *v == "0")
      cfg.e2b_compat_debug_ports = false;
    else
      throw config_error("E2B_COMPAT_DEBUG_PORTS=" + *v + ": expected true or false");
  }
  if (auto v = get("LOG_LEVEL"); v && !v->empty()) {
    if (*v != "debug" && *v != "info" && *v != "warn" && *v != "error")
      throw config_error("LOG_LEVEL=" + *v + ": expected debug, info, warn or error");
    cfg.log_level = *v;
  }
  millis("DEFAULT_TIMEOUT_MS", cfg.default_timeout, 1);
  millis("MAX_TIMEOUT_MS", cfg.max_timeout, 1);
  if (cfg.default_timeout > cfg.max_timeout)
    throw config_error("DEFAULT_TIMEOUT_MS must not exceed MAX_TIMEOUT_MS");
  integer("MAX_CODE_BYTES", cfg.max_code_bytes, 1, std::size_t{1} << 30);
  integer("MAX_BODY_BYTES", cfg.max_body_bytes, 1024, std::size_t{1} << 30);
  millis("STREAM_REPLAY_WINDOW_MS", cfg.stream_replay_window, 0);
  integer("MAX_CONCURRENT_EXECUTIONS", cfg.max_concurrent_executions, 1, 100000);
  millis("SHUTDOWN_GRACE_MS", cfg.shutdown_grace, 0);
  millis("SHUTDOWN_KILL_MS", cfg.shutdown_kill_after, 0);
  if (auto v = get("API_KEYS")) cfg.api_keys = *v;
  if (auto v = get("API_KEYS_FILE")) cfg.api_keys_file = *v;
  integer("KEY_MAX_CONCURRENT_EXECUTIONS", cfg.key_max_concurrent_executions, 1, 100000);
  integer("KEY_RATE_LIMIT_RPS", cfg.key_rate_limit_rps, 0, 1000000);
  integer("KEY_RATE_LIMIT_BURST", cfg.key_rate_limit_burst, 1, 1000000);
  if (auto v = get("CORS_ORIGINS")) cfg.cors_origins = *v;
  if (auto v = get("PLAYGROUND"); v && !v->empty()) {
    if (*v != "auto" && *v != "on" && *v != "off")
      throw config_error("PLAYGROUND=" + *v + ": expected auto (loopback clients only), on or off");
    cfg.playground = *v;
  }
  integer("MAX_CONNECTIONS", cfg.max_connections, 1, 1000000);
  integer("MAX_HEADER_BYTES", cfg.max_header_bytes, 1024, std::size_t{1} << 20);
  millis("IDLE_TIMEOUT_MS", cfg.idle_timeout, 1000);
  integer("WS_MAX_MESSAGE_BYTES", cfg.ws_max_message_bytes, 1024, std::size_t{64} << 20);
  integer("WS_MAX_MESSAGES_PER_SECOND", cfg.ws_max_messages_per_second, 1, 1000000);
  integer("WS_SEND_BUFFER_BYTES", cfg.ws_send_buffer_bytes, 65536, std::size_t{1} << 30);
  millis("WS_PING_INTERVAL_MS", cfg.ws_ping_interval, 0);
  if (auto v = get("RUNNER_DIR")) cfg.runner_dir = *v;
  if (auto v = get("RUNTIME_DIR")) cfg.runtime_dir = *v;
  integer("SANDBOX_UID_BASE", cfg.sandbox_uid_base, 1000, 4000000000u);
  integer("MAX_SANDBOXES", cfg.max_sandboxes, 1, 65536);
  millis("SANDBOX_IDLE_TIMEOUT_MS", cfg.sandbox_idle_timeout, 1000);
  millis("SANDBOX_IDLE_TIMEOUT_MAX_MS", cfg.sandbox_idle_timeout_max, 1000);
  if (cfg.sandbox_idle_timeout > cfg.sandbox_idle_timeout_max)
    throw config_error("SANDBOX_IDLE_TIMEOUT_MS must not exceed SANDBOX_IDLE_TIMEOUT_MAX_MS");
  millis("SANDBOX_MAX_LIFETIME_MS", cfg.sandbox_max_lifetime, 1000);
  integer("KEY_MAX_SANDBOXES", cfg.key_max_sandboxes, 1, 65536);
  integer("MAX_CONTEXTS_PER_SANDBOX", cfg.max_contexts_per_sandbox, 1, 63);
  millis("INTERRUPT_GRACE_MS", cfg.interrupt_grace, 100);
  if (auto v = get("ZYGOTE")) {
    if (*v != "auto" && *v != "off") throw config_error("ZYGOTE=" + *v + ": expected auto or off");
    cfg.zygote = *v == "auto";
  }
  integer("WARM_POOL_SIZE", cfg.warm_pool_size, 0, 1024);
  // A comma-separated list of language names (or aliases: ts, js, …).
  auto languages = [&](const char* name, const std::string& value) {
    std::vector<language> out;
    std::size_t start = 0;
    while (start <= value.size()) {
      auto end = value.find(',', start);
      if (end == std::string::npos) end = value.size();
      const auto item = trim(value.substr(start, end - start));
      start = end + 1;
      if (item.empty()) continue;
      const auto lang = parse_language(item);
      if (!lang)
        throw config_error(std::string{name} + "=" + value + ": unknown language '" + item +
                           "'; known: " + std::string{supported_languages});
      if (std::find(out.begin(), out.end(), *lang) == out.end()) out.push_back(*lang);
    }
    return out;
  };
  if (auto v = get("LANGUAGES"); v && !trim(*v).empty()) {
    cfg.languages = languages("LANGUAGES", *v);
    if (cfg.languages.empty())
      throw config_error("LANGUAGES=" + *v + " names no language: name at least one (known: " +
                         std::string{supported_languages} + "), or leave it empty for all");
  }
  auto enabled = [&](language lang) {
    return std::find(cfg.languages.begin(), cfg.languages.end(), lang) != cfg.languages.end();
  };
  if (auto v = get("WARM_POOL_LANGUAGES")) {
    cfg.warm_pool_languages = languages("WARM_POOL_LANGUAGES", *v);
    for (const auto lang : cfg.warm_pool_languages)
      if (!enabled(lang))
        throw config_error("WARM_POOL_LANGUAGES=" + *v + ": '" + std::string{to_string(lang)} +
                           "' is not in LANGUAGES, so it cannot be pooled");
  } else {
    // The default pool keeps only what this server runs.
    std::erase_if(cfg.warm_pool_languages, [&](language lang) { return !enabled(lang); });
  }
  // Each limit has a default (LIMIT_X) and a maximum a request may ask for (LIMIT_X_MAX).
  auto limit = [&](const std::string& name, std::uint64_t resource_limits::*field,
                   std::uint64_t unit, std::uint64_t min, std::uint64_t max) {
    std::uint64_t value = cfg.default_limits.*field / unit;
    integer(name.c_str(), value, min, max);
    std::uint64_t top = std::max(value, cfg.max_limits.*field / unit);
    integer((name + "_MAX").c_str(), top, min, max);
    if (top < value) throw config_error(name + "_MAX must not be below " + name);
    cfg.default_limits.*field = value * unit;
    cfg.max_limits.*field = top * unit;
  };
  constexpr std::uint64_t mib = 1 << 20;
  limit("LIMIT_MEMORY_MB", &resource_limits::memory_bytes, mib, 16, 1 << 20);
  limit("LIMIT_PIDS", &resource_limits::pids, 1, 8, 1 << 20);
  limit("LIMIT_WORKSPACE_MB", &resource_limits::workspace_bytes, mib, 1, 1 << 20);
  limit("LIMIT_FILE_SIZE_MB", &resource_limits::file_size_bytes, mib, 1, 1 << 20);
  limit("LIMIT_OPEN_FILES", &resource_limits::open_files, 1, 32, 1 << 20);
  limit("LIMIT_OUTPUT_BYTES", &resource_limits::output_bytes, 1, 1024, u64_max);
  limit("LIMIT_CPU_MS", &resource_limits::cpu_ms, 1, 0, 24ull * 3600 * 1000);

  if (cfg.backend == backend_kind::e2b && cfg.e2b_api_key.empty())
    throw config_error("SANDBOX_BACKEND=e2b needs E2B_API_KEY");
  return cfg;
}

config load_config() {
  const char* env_file = std::getenv("ENV_FILE");
  const auto file_vars = read_env_file(env_file ? env_file : ".env");
  return make_config([&](const std::string& name) -> std::optional<std::string> {
    if (const char* v = std::getenv(name.c_str())) return std::string{v};
    if (auto it = file_vars.find(name); it != file_vars.end()) return it->second;
    return std::nullopt;
  });
}

}  // namespace codeexec
