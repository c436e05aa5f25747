#include "core/config.hpp"

#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <set>

using namespace codeexec;

namespace {

config from(std::map<std::string, std::string> vars) {
  return make_config([&](const std::string& name) -> std::optional<std::string> {
    if (auto it = vars.find(name); it != vars.end()) return it->second;
    return std::nullopt;
  });
}

}  // namespace

TEST_CASE("defaults match the service we replace") {
  const auto cfg = from({});
  CHECK(cfg.port == 4000);
  CHECK(cfg.host == "0.0.0.0");
  CHECK(cfg.backend == backend_kind::local);
  CHECK(cfg.default_timeout == std::chrono::milliseconds{30000});
  CHECK(cfg.max_code_bytes == 1u << 20);
  CHECK(cfg.stream_replay_window == std::chrono::milliseconds{10000});
}

TEST_CASE("variables override the defaults") {
  const auto cfg = from({{"PORT", "8080"},
                         {"HOST", "127.0.0.1"},
                         {"MAX_TIMEOUT_MS", "60000"},
                         {"LIMIT_MEMORY_MB", "256"},
                         {"LOG_LEVEL", "debug"}});
  CHECK(cfg.port == 8080);
  CHECK(cfg.host == "127.0.0.1");
  CHECK(cfg.max_timeout == std::chrono::milliseconds{60000});
  CHECK(cfg.default_limits.memory_bytes == 256ull << 20);
  CHECK(cfg.max_limits.memory_bytes == 4096ull << 20);
  CHECK(cfg.log_level == "debug");
}

TEST_CASE("bad values are refused with the variable's name") {
  CHECK_THROWS_WITH_AS(from({{"PORT", "http"}}), doctest::Contains("PORT"), config_error);
  CHECK_THROWS_AS(from({{"PORT", "70000"}}), config_error);
  CHECK_THROWS_AS(from({{"PORT", "-1"}}), config_error);
  CHECK_THROWS_AS(from({{"SANDBOX_BACKEND", "docker"}}), config_error);
  CHECK_THROWS_AS(from({{"LOG_LEVEL", "loud"}}), config_error);
  CHECK_THROWS_AS(from({{"DEFAULT_TIMEOUT_MS", "9000"}, {"MAX_TIMEOUT_MS", "1000"}}), config_error);
}

TEST_CASE("sandbox lifetimes and the warm pool are configurable") {
  const auto cfg = from({{"SANDBOX_IDLE_TIMEOUT_MS", "5000"},
                         {"WARM_POOL_SIZE", "3"},
                         {"WARM_POOL_LANGUAGES", "bash, ts"},
                         {"MAX_CONTEXTS_PER_SANDBOX", "4"}});
  CHECK(cfg.sandbox_idle_timeout == std::chrono::milliseconds{5000});
  CHECK(cfg.warm_pool_size == 3);
  CHECK(cfg.warm_pool_languages == std::vector{language::bash, language::typescript});
  CHECK(cfg.max_contexts_per_sandbox == 4);
  CHECK(from({{"WARM_POOL_LANGUAGES", ""}}).warm_pool_languages.empty());
  CHECK_THROWS_WITH_AS(from({{"WARM_POOL_LANGUAGES", "python,cobol"}}), doctest::Contains("cobol"),
                       config_error);
  CHECK_THROWS_AS(from({{"MAX_CONTEXTS_PER_SANDBOX", "64"}}), config_error);
  CHECK_THROWS_AS(
      from({{"SANDBOX_IDLE_TIMEOUT_MS", "9000"}, {"SANDBOX_IDLE_TIMEOUT_MAX_MS", "5000"}}),
      config_error);
}

TEST_CASE("LANGUAGES chooses the languages served, and the default pool follows it") {
  CHECK(from({}).languages.size() == all_languages.size());
  const auto cfg = from({{"LANGUAGES", "python, ts,python"}});
  CHECK(cfg.languages == std::vector{language::python, language::typescript});
  CHECK(cfg.warm_pool_languages == std::vector{language::python});
  CHECK(from({{"LANGUAGES", ""}}).languages.size() == all_languages.size());
  CHECK_THROWS_WITH_AS(from({{"LANGUAGES", " , "}}), doctest::Contains("at least one"),
                       config_error);
  CHECK_THROWS_WITH_AS(from({{"LANGUAGES", "python,cobol"}}), doctest::Contains("cobol"),
                       config_error);
  CHECK_THROWS_WITH_AS(from({{"LANGUAGES", "python"}, {"WARM_POOL_LANGUAGES", "javascript"}}),
                       doctest::Contains("not in LANGUAGES"), config_error);
}

TEST_CASE("the e2b backend needs an API key") {
  CHECK_THROWS_WITH_AS(from({{"SANDBOX_BACKEND", "e2b"}}), doctest::Contains("E2B_API_KEY"),
                       config_error);
  CHECK(from({{"SANDBOX_BACKEND", "e2b"}, {"E2B_API_KEY", "e2b_x"}}).backend == backend_kind::e2b);
}

TEST_CASE("the e2b backend's endpoints, template and retries are configurable") {
  const auto defaults = from({});
  CHECK(defaults.e2b_domain == "e2b.app");
  CHECK(defaults.e2b_api_url.empty());
  CHECK(defaults.e2b_sandbox_url.empty());
  CHECK(defaults.e2b_template_id == "code-interpreter-v1");
  CHECK(defaults.e2b_request_timeout == std::chrono::milliseconds{60000});
  CHECK(defaults.e2b_create_retries == 4);
  const auto cfg = from({{"E2B_DOMAIN", "example.dev"},
                         {"E2B_API_URL", "http://127.0.0.1:3000"},
                         {"E2B_SANDBOX_URL", "http://127.0.0.1:3001"},
                         {"E2B_TEMPLATE_ID", "mine"},
                         {"E2B_REQUEST_TIMEOUT_MS", "5000"},
                         {"E2B_CREATE_RETRIES", "0"}});
  CHECK(cfg.e2b_domain == "example.dev");
  CHECK(cfg.e2b_api_url == "http://127.0.0.1:3000");
  CHECK(cfg.e2b_sandbox_url == "http://127.0.0.1:3001");
  CHECK(cfg.e2b_template_id == "mine");
  CHECK(cfg.e2b_request_timeout == std::chrono::milliseconds{5000});
  CHECK(cfg.e2b_create_retries == 0);
  CHECK_THROWS_AS(from({{"E2B_CREATE_RETRIES", "-1"}}), config_error);
  CHECK_THROWS_AS(from({{"E2B_REQUEST_TIMEOUT_MS", "10"}}), config_error);
}

TEST_CASE("the E2B-compatible listener is off unless a port is given") {
  const auto defaults = from({});
  CHECK(defaults.e2b_compat_port == 0);
  CHECK_FALSE(defaults.e2b_compat_debug_ports);
  const auto on = from({{"E2B_COMPAT_PORT", "3000"}, {"E2B_COMPAT_DEBUG_PORTS", "true"}});
  CHECK(on.e2b_compat_port == 3000);
  CHECK(on.e2b_compat_debug_ports);
  CHECK_THROWS_WITH_AS(from({{"E2B_COMPAT_DEBUG_PORTS", "yes"}}),
                       doctest::Contains("expected true or false"), config_error);
  CHECK_THROWS_AS(from({{"E2B_COMPAT_PORT", "70000"}}), config_error);
}

TEST_CASE("a .env file is parsed with comments quotes and export") {
  const std::string path = "/tmp/codeexec-config-test.env";
  {
    std::ofstream out(path);
    out << "# comment\nPORT=5001\nexport HOST = \"127.0.0.2\"\nE2B_API_KEY='k=v'\n\nbroken line\n";
  }
  const auto vars = read_env_file(path);
  std::remove(path.c_str());
  CHECK(vars.at("PORT") == "5001");
  CHECK(vars.at("HOST") == "127.0.0.2");
  CHECK(vars.at("E2B_API_KEY") == "k=v");
  CHECK(vars.size() == 3);
  CHECK(read_env_file("/nonexistent/.env").empty());
}

TEST_CASE(".env.example documents exactly the variables the service reads") {
  const auto documented = read_env_file(CODEEXEC_SOURCE_DIR "/.env.example");
  REQUIRE_FALSE(documented.empty());
  std::set<std::string> read;
  const auto cfg = make_config([&](const std::string& name) -> std::optional<std::string> {
    read.insert(name);
    if (auto it = documented.find(name); it != documented.end()) return it->second;
    return std::nullopt;
  });
  for (const auto& [name, value] : documented)
    CHECK_MESSAGE(read.count(name) == 1, name << " is documented but never read");
  for (const auto& name : read)
    CHECK_MESSAGE(documented.count(name) == 1, name << " is read but not documented");
  // The documented values are the defaults.
  const auto defaults = from({});
  CHECK(cfg.port == defaults.port);
  CHECK(cfg.default_limits.memory_bytes == defaults.default_limits.memory_bytes);
  CHECK(cfg.max_limits.output_bytes == defaults.max_limits.output_bytes);
}
