#include "core/metrics.hpp"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <unistd.h>

#include <algorithm>
#include <array>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <vector>

namespace codeexec::metrics {

std::string_view to_string(actor_kind kind) {
  switch (kind) {
    case actor_kind::execution:
      return "execution";
    case actor_kind::sandbox:
      return "sandbox";
    case actor_kind::client_session:
      return "client_session";
    case actor_kind::client_registry:
      return "client_registry";
  }
  return "unknown";
}

namespace {

// Every value of the enums that label a series. The series for all of them are
// created up front, so each one is exported (as 0) before its first event and
// rate() sees the whole history; the hot paths then index these arrays.
constexpr std::array all_actor_kinds{actor_kind::execution, actor_kind::sandbox,
                                     actor_kind::client_session, actor_kind::client_registry};

constexpr std::array all_verdicts{verdict::ok,           verdict::error,        verdict::timeout,
                                  verdict::memory_limit, verdict::output_limit, verdict::killed,
                                  verdict::sandbox_error};
constexpr std::array all_mailbox_owners{mailbox_owner::client_registry, mailbox_owner::pool};

/// True if `values` lists an enum's values in declaration order, so that the
/// enum's integer value is the index of its series.
template <class Array>
constexpr bool indexable(const Array& values) {
  for (std::size_t i = 0; i < values.size(); ++i)
    if (static_cast<std::size_t>(values[i]) != i) return false;
  return true;
}
static_assert(indexable(all_actor_kinds) && indexable(all_languages) && indexable(all_verdicts) &&
              indexable(all_mailbox_owners));

template <class Enum>
constexpr std::size_t index_of(Enum value) {
  return static_cast<std::size_t>(value);
}

std::string_view to_string(mailbox_owner owner) {
  switch (owner) {
    case mailbox_owner::client_registry:
      return "client_registry";
    case mailbox_owner::pool:
      return "pool";
  }
  return "unknown";
}

/// Cardinality caps for labels whose values come from callers as strings.
constexpr std::size_t max_http_routes = 16;
constexpr std::size_t max_exit_reasons = 16;
constexpr std::string_view other_label = "other";

/// A string label that keeps its first `capacity` distinct values and folds every
/// later new value into "other": each distinct value is a time series forever.
class bounded_label {
 public:
  explicit bounded_label(std::size_t capacity) : capacity_(capacity) {}

  std::string operator()(std::string_view value) {
    if (value.empty() || value == other_label) return std::string{other_label};
    std::lock_guard lock{mutex_};
    if (seen_.find(value) != seen_.end()) return std::string{value};
    if (seen_.size() >= capacity_) return std::string{other_label};
    return *seen_.emplace(value).first;
  }

 private:
  std::size_t capacity_;
  std::mutex mutex_;
  std::set<std::string, std::less<>> seen_;
};

// Buckets (seconds). Executions: 10 ms (a trivial cell) to 300 s (the default
// MAX_TIMEOUT_MS; longer runs land in +Inf). Sandbox starts: 5 ms (a warm start)
// to 5 s (a slow clone and interpreter import under load).
const prometheus::Histogram::BucketBoundaries execution_buckets{
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300};
const prometheus::Histogram::BucketBoundaries sandbox_start_buckets{0.005, 0.01, 0.025, 0.05, 0.1,
                                                                    0.25,  0.5,  1,     2.5,  5};

template <class Metric>
prometheus::Family<Metric>& make_family(prometheus::detail::Builder<Metric> builder,
                                        prometheus::Registry& registry, const std::string& name,
                                        const std::string& help) {
  return builder.Name(name).Help(help).Register(registry);
}

double seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

/// The process-wide registry and every series the hot paths touch, resolved once.
struct service_metrics {
  prometheus::Registry registry;

  prometheus::Family<prometheus::Gauge>& actors_live = make_family(
      prometheus::BuildGauge(), registry, "codeexec_actors_live", "Actors alive now, by kind.");
  prometheus::Family<prometheus::Counter>& actor_spawns =
      make_family(prometheus::BuildCounter(), registry, "codeexec_actor_spawns_total",
                  "Actors spawned, by kind.");
  prometheus::Family<prometheus::Counter>& actor_exits =
      make_family(prometheus::BuildCounter(), registry, "codeexec_actor_exits_total",
                  "Actors that ended, by kind and exit reason.");
  prometheus::Family<prometheus::Gauge>& mailbox_depth = make_family(
      prometheus::BuildGauge(), registry, "codeexec_mailbox_depth",
      "Messages waiting in an actor's mailbox, sampled by the actor as it handles a message.");
  prometheus::Family<prometheus::Counter>& executions =
      make_family(prometheus::BuildCounter(), registry, "codeexec_executions_total",
                  "Executions finished, by language and final status.");
  prometheus::Family<prometheus::Histogram>& execution_duration =
      make_family(prometheus::BuildHistogram(), registry, "codeexec_execution_duration_seconds",
                  "Wall-clock time of an execution from request to final result, by language.");
  prometheus::Family<prometheus::Gauge>& sandboxes_live =
      make_family(prometheus::BuildGauge(), registry, "codeexec_sandboxes_live",
                  "Sandbox processes running now, from launch until reaped.");
  prometheus::Family<prometheus::Gauge>& sandboxes_pooled =
      make_family(prometheus::BuildGauge(), registry, "codeexec_sandboxes_pooled",
                  "Sandboxes started ahead of demand and waiting in the warm pool.");
  prometheus::Family<prometheus::Histogram>& sandbox_start =
      make_family(prometheus::BuildHistogram(), registry, "codeexec_sandbox_start_seconds",
                  "Time from launching a sandbox to its runner reporting ready.");
  prometheus::Family<prometheus::Gauge>& websocket_clients =
      make_family(prometheus::BuildGauge(), registry, "codeexec_websocket_clients_connected",
                  "WebSocket clients connected now.");
  prometheus::Family<prometheus::Counter>& websocket_sent =
      make_family(prometheus::BuildCounter(), registry, "codeexec_websocket_messages_sent_total",
                  "Messages handed to WebSocket clients (one per socket).");
  prometheus::Family<prometheus::Counter>& websocket_dropped = make_family(
      prometheus::BuildCounter(), registry, "codeexec_websocket_messages_dropped_total",
      "Stream messages lost: published with no socket and no replay buffer to keep them, "
      "or refused by a slow or closed socket.");
  prometheus::Family<prometheus::Counter>& websocket_bytes =
      make_family(prometheus::BuildCounter(), registry, "codeexec_websocket_sent_bytes_total",
                  "Bytes of message payload handed to WebSocket clients.");
  prometheus::Family<prometheus::Counter>& http_requests =
      make_family(prometheus::BuildCounter(), registry, "codeexec_http_requests_total",
                  "HTTP requests answered, by route template and status code.");

  std::array<prometheus::Gauge*, all_actor_kinds.size()> live_by_kind{};
  std::array<prometheus::Counter*, all_actor_kinds.size()> spawns_by_kind{};
  std::array<prometheus::Gauge*, all_mailbox_owners.size()> mailbox_by_owner{};
  std::array<std::array<prometheus::Counter*, all_verdicts.size()>, all_languages.size()>
      executions_by_language{};
  std::array<prometheus::Histogram*, all_languages.size()> duration_by_language{};
  prometheus::Gauge& sandboxes_live_now = sandboxes_live.Add({});
  prometheus::Gauge& sandboxes_pooled_now = sandboxes_pooled.Add({});
  prometheus::Histogram& sandbox_start_latency = sandbox_start.Add({}, sandbox_start_buckets);
  prometheus::Gauge& websocket_clients_now = websocket_clients.Add({});
  prometheus::Counter& websocket_sent_count = websocket_sent.Add({});
  prometheus::Counter& websocket_dropped_count = websocket_dropped.Add({});
  prometheus::Counter& websocket_byte_count = websocket_bytes.Add({});

  /// The series of an execution verdict. Language and verdict are defined in
  /// core/execution.hpp: a value added there but not to the arrays above still
  /// gets its series, through the (allocating, locked) family lookup.
  prometheus::Counter& executions_for(language lang, verdict status) {
    if (index_of(lang) < all_languages.size() && index_of(status) < all_verdicts.size())
      return *executions_by_language[index_of(lang)][index_of(status)];
    return executions.Add(
        {{"language", std::string{to_string(lang)}}, {"status", std::string{to_string(status)}}});
  }

  prometheus::Histogram& duration_for(language lang) {
    if (index_of(lang) < all_languages.size()) return *duration_by_language[index_of(lang)];
    return execution_duration.Add({{"language", std::string{to_string(lang)}}}, execution_buckets);
  }

  bounded_label http_routes{max_http_routes};
  bounded_label exit_reasons{max_exit_reasons};

  service_metrics() {
    for (const auto kind : all_actor_kinds) {
      const prometheus::Labels labels{{"kind", std::string{to_string(kind)}}};
      live_by_kind[index_of(kind)] = &actors_live.Add(labels);
      spawns_by_kind[index_of(kind)] = &actor_spawns.Add(labels);
    }
    for (const auto owner : all_mailbox_owners)
      mailbox_by_owner[index_of(owner)] =
          &mailbox_depth.Add({{"actor", std::string{to_string(owner)}}});
    for (const auto lang : all_languages) {
      const std::string name{to_string(lang)};
      duration_by_language[index_of(lang)] =
          &execution_duration.Add({{"language", name}}, execution_buckets);
      for (const auto status : all_verdicts)
        executions_by_language[index_of(lang)][index_of(status)] =
            &executions.Add({{"language", name}, {"status", std::string{to_string(status)}}});
    }
  }
};

service_metrics& instance() {
  // Built on first use, thread-safely (a function-local static); never rebuilt.
  static service_metrics metrics;
  return metrics;
}

prometheus::Gauge& live(live_gauge gauge) {
  auto& m = instance();
  switch (gauge) {
    case live_gauge::sandboxes:
      return m.sandboxes_live_now;
    case live_gauge::websocket_clients:
      return m.websocket_clients_now;
  }
  return m.sandboxes_live_now;
}

// -- process metrics, read from /proc at scrape time --------------------------

struct process_sample {
  double cpu_seconds = 0;
  double resident_bytes = 0;
  double threads = 0;
};

/// Reads /proc/self/stat (proc(5)): utime and stime in clock ticks, the thread
/// count and the resident set in pages.
std::optional<process_sample> read_process_stat() {
  std::ifstream in{"/proc/self/stat"};
  const std::string stat{std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
  // The command name (field 2) is in parentheses and may itself contain spaces
  // or parentheses: the fields to parse start after the last ')'.
  const auto end_of_name = stat.rfind(')');
  if (end_of_name == std::string::npos) return std::nullopt;
  std::istringstream fields{stat.substr(end_of_name + 1)};
  std::vector<std::string> values{std::istream_iterator<std::string>{fields},
                                  std::istream_iterator<std::string>{}};
  // values[0] is field 3 (state): field n is values[n - 3].
  constexpr std::size_t utime = 14 - 3, stime = 15 - 3, num_threads = 20 - 3, rss = 24 - 3;
  if (values.size() <= rss) return std::nullopt;
  const auto ticks_per_second = static_cast<double>(::sysconf(_SC_CLK_TCK));
  const auto page_size = static_cast<double>(::sysconf(_SC_PAGESIZE));
  try {
    process_sample sample;
    sample.cpu_seconds =
        static_cast<double>(std::stoull(values[utime]) + std::stoull(values[stime])) /
        ticks_per_second;
    sample.threads = static_cast<double>(std::stoull(values[num_threads]));
    sample.resident_bytes = static_cast<double>(std::stoull(values[rss])) * page_size;
    return sample;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

/// Counts the entries of /proc/self/fd (including the one this listing opens, as
/// the reference Go and Python clients do).
std::optional<double> count_open_fds() {
  std::error_code ec;
  std::filesystem::directory_iterator it{"/proc/self/fd", ec};
  if (ec) return std::nullopt;
  double count = 0;
  for (; it != std::filesystem::directory_iterator{}; it.increment(ec)) {
    if (ec) return std::nullopt;
    ++count;
  }
  return count;
}

prometheus::MetricFamily single_value(std::string name, std::string help,
                                      prometheus::MetricType type, double value) {
  prometheus::ClientMetric metric;
  if (type == prometheus::MetricType::Counter)
    metric.counter.value = value;
  else
    metric.gauge.value = value;
  return {std::move(name), std::move(help), type, {std::move(metric)}};
}

/// The standard `process_*` metrics of the Prometheus client libraries; a value
/// that cannot be read is left out rather than reported as 0.
void append_process_metrics(std::vector<prometheus::MetricFamily>& families) {
  if (const auto stat = read_process_stat()) {
    families.push_back(single_value("process_cpu_seconds_total",
                                    "Total user and system CPU time spent in seconds.",
                                    prometheus::MetricType::Counter, stat->cpu_seconds));
    families.push_back(single_value("process_resident_memory_bytes",
                                    "Resident memory size in bytes.", prometheus::MetricType::Gauge,
                                    stat->resident_bytes));
    families.push_back(single_value("process_threads", "Number of OS threads in the process.",
                                    prometheus::MetricType::Gauge, stat->threads));
  }
  if (const auto fds = count_open_fds())
    families.push_back(single_value("process_open_fds", "Number of open file descriptors.",
                                    prometheus::MetricType::Gauge, *fds));
}

}  // namespace

actor_scope::actor_scope(actor_kind kind) : kind_(kind) {
  auto& m = instance();
  m.spawns_by_kind[index_of(kind_)]->Increment();
  m.live_by_kind[index_of(kind_)]->Increment();
}

actor_scope::~actor_scope() {
  instance().live_by_kind[index_of(kind_)]->Decrement();
}

void actor_exited(actor_kind kind, std::string_view reason) {
  auto& m = instance();
  m.actor_exits.Add({{"kind", std::string{to_string(kind)}}, {"reason", m.exit_reasons(reason)}})
      .Increment();
}

std::map<std::string, std::uint64_t> live_actors() {
  auto& m = instance();
  std::map<std::string, std::uint64_t> out;
  for (const auto kind : all_actor_kinds)
    if (const auto live = m.live_by_kind[index_of(kind)]->Value(); live > 0)
      out.emplace(std::string{to_string(kind)}, static_cast<std::uint64_t>(live));
  return out;
}

live_scope::live_scope(live_gauge gauge) : gauge_(gauge) {
  live(gauge_).Increment();
}

live_scope::~live_scope() {
  live(gauge_).Decrement();
}

void set_sandboxes_pooled(std::size_t count) {
  instance().sandboxes_pooled_now.Set(static_cast<double>(count));
}

void sandbox_started(std::chrono::steady_clock::duration latency) {
  instance().sandbox_start_latency.Observe(seconds(latency));
}

void set_mailbox_depth(mailbox_owner owner, std::size_t depth) {
  instance().mailbox_by_owner[index_of(owner)]->Set(static_cast<double>(depth));
}

void execution_finished(language lang, verdict status,
                        std::chrono::steady_clock::duration duration) {
  auto& m = instance();
  m.executions_for(lang, status).Increment();
  m.duration_for(lang).Observe(seconds(duration));
}

void websocket_message_sent(std::size_t bytes) {
  auto& m = instance();
  m.websocket_sent_count.Increment();
  m.websocket_byte_count.Increment(static_cast<double>(bytes));
}

void websocket_message_dropped() {
  instance().websocket_dropped_count.Increment();
}

void http_request(std::string_view route, int status) {
  auto& m = instance();
  // Status codes are three digits by definition; anything else is a caller bug
  // that must not mint new series.
  const auto status_label =
      status >= 100 && status <= 599 ? std::to_string(status) : std::string{other_label};
  m.http_requests.Add({{"route", m.http_routes(route)}, {"status", status_label}}).Increment();
}

std::string render_metrics() {
  auto families = instance().registry.Collect();
  // A family keeps its series in a hash map: sort them so that scrapes read and
  // diff well (Prometheus itself does not care about the order).
  for (auto& family : families)
    std::sort(family.metric.begin(), family.metric.end(),
              [](const auto& a, const auto& b) { return a.label < b.label; });
  append_process_metrics(families);
  return prometheus::TextSerializer{}.Serialize(families);
}

}  // namespace codeexec::metrics
