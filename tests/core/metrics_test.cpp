#include "core/metrics.hpp"

#include "actor_fixture.hpp"
#include "actors/actor_metrics.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>

using namespace codeexec;
using namespace std::chrono_literals;

namespace {

/// One scrape: every sample line as series ("name{labels}") -> value, and the
/// declared TYPE of every family.
struct scrape {
  std::map<std::string, double> samples;
  std::map<std::string, std::string> types;

  /// The value of a series, or NaN if it is not exported.
  double operator[](const std::string& series) const {
    const auto it = samples.find(series);
    return it == samples.end() ? std::nan("") : it->second;
  }
};

/// Parses the text exposition format strictly enough to catch malformed output:
/// every line is a HELP, a TYPE or a sample of a family declared before it.
scrape parse(const std::string& text) {
  static const std::regex help{R"re(# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) \S.*)re"};
  static const std::regex type{
      R"re(# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram))re"};
  static const std::regex sample{
      R"re(([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*",?)*\})? (\S+))re"};
  scrape result;
  std::set<std::string> helped;
  std::istringstream lines{text};
  std::string line;
  std::smatch m;
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    if (std::regex_match(line, m, help)) {
      helped.insert(m[1]);
    } else if (std::regex_match(line, m, type)) {
      if (helped.count(m[1]) == 0) FAIL_CHECK("TYPE without HELP: " << line);
      result.types[m[1]] = m[2];
    } else if (std::regex_match(line, m, sample)) {
      // A histogram's samples are <family>_bucket, _sum and _count.
      const std::string name = m[1];
      const bool declared =
          result.types.count(name) == 1 ||
          std::any_of(result.types.begin(), result.types.end(), [&](const auto& t) {
            return t.second == "histogram" &&
                   (name == t.first + "_bucket" || name == t.first + "_sum" ||
                    name == t.first + "_count");
          });
      if (!declared) FAIL_CHECK("sample of an undeclared family: " << line);
      const auto value_start = static_cast<std::size_t>(m.position(4));
      result.samples[line.substr(0, value_start - 1)] = std::stod(m[4]);
    } else {
      FAIL_CHECK("not a HELP, TYPE or sample line: " << line);
    }
  }
  return result;
}

scrape scrape_now() {
  return parse(metrics::render_metrics());
}

/// A small actor with the same metrics hooks as the service's actors.
struct probe_state {
  metrics::actor_scope scope{metrics::actor_kind::sandbox};
  static inline const char* name = "metrics_probe";
};

caf::behavior metrics_probe(caf::stateful_actor<probe_state>* self) {
  count_exit(self, metrics::actor_kind::sandbox);
  return {
      [self](int) { self->quit(); },
      // What a handler's exception ends in, without the default handler's stderr noise.
      [self](const std::string&) { self->quit(caf::make_error(caf::sec::runtime_error)); },
  };
}

/// Scrapes until `done` holds or 5 s passed: an actor's exit functors and state
/// destructor run on a CAF thread after the actor is already reported down.
template <class Predicate>
scrape scrape_until(Predicate done) {
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  auto s = scrape_now();
  while (!done(s) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
    s = scrape_now();
  }
  return s;
}

}  // namespace

TEST_CASE("metrics text has HELP and TYPE lines and parseable samples") {
  const auto s = scrape_now();
  CHECK(s.types.at("codeexec_actors_live") == "gauge");
  CHECK(s.types.at("codeexec_actor_spawns_total") == "counter");
  CHECK(s.types.at("codeexec_mailbox_depth") == "gauge");
  CHECK(s.types.at("codeexec_executions_total") == "counter");
  CHECK(s.types.at("codeexec_execution_duration_seconds") == "histogram");
  CHECK(s.types.at("codeexec_sandboxes_live") == "gauge");
  CHECK(s.types.at("codeexec_sandboxes_pooled") == "gauge");
  CHECK(s.types.at("codeexec_sandbox_start_seconds") == "histogram");
  CHECK(s.types.at("codeexec_websocket_clients_connected") == "gauge");
  CHECK(s.types.at("codeexec_websocket_messages_sent_total") == "counter");
  CHECK(s.types.at("codeexec_websocket_messages_dropped_total") == "counter");
  CHECK(s.types.at("codeexec_websocket_sent_bytes_total") == "counter");
  CHECK(s.types.at("process_cpu_seconds_total") == "counter");
  // Series of every label value the enums can take exist before their first event.
  CHECK(s["codeexec_actors_live{kind=\"client_registry\"}"] >= 0);
  CHECK(s["codeexec_executions_total{language=\"bash\",status=\"sandbox_error\"}"] >= 0);
  CHECK(s["codeexec_execution_duration_seconds_bucket{language=\"javascript\",le=\"+Inf\"}"] >= 0);
  CHECK(s["codeexec_mailbox_depth{actor=\"pool\"}"] == 0);
  CHECK(s["codeexec_sandboxes_pooled"] == 0);
}

TEST_CASE("metrics counters and histograms move when the API is called") {
  const auto before = scrape_now();
  metrics::execution_finished(language::python, verdict::timeout, 1500ms);
  metrics::sandbox_started(20ms);
  metrics::websocket_message_sent(42);
  metrics::websocket_message_sent(8);
  metrics::websocket_message_dropped();
  metrics::http_request("/execute", 200);
  metrics::http_request("/execute", 200);
  metrics::set_mailbox_depth(metrics::mailbox_owner::client_registry, 7);
  const auto after = scrape_now();

  // Families whose labels come from calls appear with their first series.
  CHECK(after.types.at("codeexec_http_requests_total") == "counter");
  const auto delta = [&](const std::string& series) { return after[series] - before[series]; };
  CHECK(delta("codeexec_executions_total{language=\"python\",status=\"timeout\"}") == 1);
  CHECK(delta("codeexec_executions_total{language=\"python\",status=\"ok\"}") == 0);
  CHECK(delta("codeexec_execution_duration_seconds_count{language=\"python\"}") == 1);
  CHECK(delta("codeexec_execution_duration_seconds_sum{language=\"python\"}") ==
        doctest::Approx(1.5));
  CHECK(delta("codeexec_execution_duration_seconds_bucket{language=\"python\",le=\"1\"}") == 0);
  CHECK(delta("codeexec_execution_duration_seconds_bucket{language=\"python\",le=\"2.5\"}") == 1);
  CHECK(delta("codeexec_sandbox_start_seconds_count") == 1);
  CHECK(delta("codeexec_sandbox_start_seconds_bucket{le=\"0.025\"}") == 1);
  CHECK(delta("codeexec_sandbox_start_seconds_bucket{le=\"0.01\"}") == 0);
  CHECK(delta("codeexec_websocket_messages_sent_total") == 2);
  CHECK(delta("codeexec_websocket_sent_bytes_total") == 50);
  CHECK(delta("codeexec_websocket_messages_dropped_total") == 1);
  CHECK(after["codeexec_http_requests_total{route=\"/execute\",status=\"200\"}"] -
            std::max(0.0,
                     before["codeexec_http_requests_total{route=\"/execute\",status=\"200\"}"]) ==
        2);
  CHECK(after["codeexec_mailbox_depth{actor=\"client_registry\"}"] == 7);
  metrics::set_mailbox_depth(metrics::mailbox_owner::client_registry, 0);
}

TEST_CASE("metrics scopes hold live gauges for their lifetime") {
  const auto before = scrape_now();
  {
    metrics::actor_scope actor{metrics::actor_kind::client_session};
    metrics::live_scope client{metrics::live_gauge::websocket_clients};
    metrics::live_scope sandbox{metrics::live_gauge::sandboxes};
    const auto during = scrape_now();
    CHECK(during["codeexec_actors_live{kind=\"client_session\"}"] -
              before["codeexec_actors_live{kind=\"client_session\"}"] ==
          1);
    CHECK(during["codeexec_websocket_clients_connected"] -
              before["codeexec_websocket_clients_connected"] ==
          1);
    CHECK(during["codeexec_sandboxes_live"] - before["codeexec_sandboxes_live"] == 1);
  }
  const auto after = scrape_now();
  CHECK(after["codeexec_actors_live{kind=\"client_session\"}"] ==
        before["codeexec_actors_live{kind=\"client_session\"}"]);
  CHECK(after["codeexec_actor_spawns_total{kind=\"client_session\"}"] -
            before["codeexec_actor_spawns_total{kind=\"client_session\"}"] ==
        1);
  CHECK(after["codeexec_websocket_clients_connected"] ==
        before["codeexec_websocket_clients_connected"]);
  CHECK(after["codeexec_sandboxes_live"] == before["codeexec_sandboxes_live"]);
}

TEST_CASE("actor exits are counted by kind and reason") {
  const auto exits = [](const scrape& s, const std::string& reason) {
    const auto v = s["codeexec_actor_exits_total{kind=\"sandbox\",reason=\"" + reason + "\"}"];
    return std::isnan(v) ? 0.0 : v;
  };
  const std::string live = "codeexec_actors_live{kind=\"sandbox\"}";
  const std::string spawns = "codeexec_actor_spawns_total{kind=\"sandbox\"}";
  const auto before = scrape_now();
  test::actor_fixture f;
  f.self->send(f.sys.spawn(metrics_probe), 1);
  caf::anon_send_exit(f.sys.spawn(metrics_probe), caf::exit_reason::user_shutdown);
  caf::anon_send_exit(f.sys.spawn(metrics_probe), caf::exit_reason::kill);
  f.self->send(f.sys.spawn(metrics_probe), std::string{"fail"});
  const auto after = scrape_until([&](const scrape& s) {
    return s[live] == before[live] && exits(s, "normal") > exits(before, "normal") &&
           exits(s, "user_shutdown") > exits(before, "user_shutdown") &&
           exits(s, "kill") > exits(before, "kill") && exits(s, "error") > exits(before, "error");
  });
  CHECK(after.types.at("codeexec_actor_exits_total") == "counter");
  CHECK(exits(after, "normal") - exits(before, "normal") == 1);
  CHECK(exits(after, "user_shutdown") - exits(before, "user_shutdown") == 1);
  CHECK(exits(after, "kill") - exits(before, "kill") == 1);
  CHECK(exits(after, "error") - exits(before, "error") == 1);
  CHECK(after[spawns] - before[spawns] == 4);
  CHECK(after[live] == before[live]);
}

TEST_CASE("process metrics are read from proc and non-zero") {
  // CPU time has clock-tick resolution (10 ms): spend some if the process is new.
  const auto deadline = std::chrono::steady_clock::now() + 2s;
  volatile double sink = 0;
  while (scrape_now()["process_cpu_seconds_total"] == 0 &&
         std::chrono::steady_clock::now() < deadline)
    for (int i = 0; i < 1'000'000; ++i) sink = sink + std::sqrt(static_cast<double>(i));
  const auto s = scrape_now();
  CHECK(s["process_cpu_seconds_total"] > 0);
  CHECK(s["process_resident_memory_bytes"] > 1024 * 1024);
  CHECK(s["process_open_fds"] >= 3);  // stdin, stdout, stderr
  CHECK(s["process_threads"] >= 1);
  CHECK(s.types.at("process_resident_memory_bytes") == "gauge");
}

TEST_CASE("unknown routes and odd statuses keep http label cardinality bounded") {
  for (int i = 0; i < 1000; ++i) metrics::http_request("/no/such/path/" + std::to_string(i), 404);
  metrics::http_request("", 404);
  metrics::http_request("/health", 12345);
  const auto s = scrape_now();
  std::set<std::string> routes;
  std::set<std::string> statuses;
  static const std::regex series{
      R"re(codeexec_http_requests_total\{route="([^"]*)",status="([^"]*)"\})re"};
  std::smatch m;
  for (const auto& [name, value] : s.samples)
    if (std::regex_match(name, m, series)) {
      routes.insert(m[1]);
      statuses.insert(m[2]);
    }
  CHECK(routes.size() <= 17);  // 16 distinct templates at most, plus "other"
  CHECK(routes.count("other") == 1);
  CHECK(statuses.count("other") == 1);
  CHECK(s["codeexec_http_requests_total{route=\"other\",status=\"404\"}"] > 900);
}
