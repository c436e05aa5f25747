#include "core/stream_log.hpp"

#include "core/json_mapping.hpp"

#include <algorithm>

namespace codeexec {
namespace {

using clock = std::chrono::steady_clock;

/// How many executions whose messages were dropped a stream remembers, to name them in
/// a `replay_incomplete` notice.
constexpr std::size_t max_lost_executions = 64;

class memory_stream_log final : public stream_log {
 public:
  explicit memory_stream_log(stream_retention retention) : retention_(retention) {}

  std::uint64_t append(const std::string& client_id, const std::string& execution_id,
                       std::string& message) override {
    auto& s = streams_[client_id];
    const auto id = ++s.head;
    message = with_event_id(std::move(message), id);
    s.bytes += message.size();
    s.appended += message.size();
    bytes_ += message.size();
    s.entries.push_back({{id, execution_id, message}, clock::now(), s.appended});
    return id;
  }

  stream_read read(const std::string& client_id, std::uint64_t after,
                   std::size_t max_bytes) const override {
    stream_read out;
    const auto it = streams_.find(client_id);
    if (it == streams_.end()) {
      if (after > 0) out.incomplete = notice(after, 0, 1, {});
      return out;
    }
    const auto& s = it->second;
    out.head = s.head;
    const auto first = s.entries.empty() ? s.head + 1 : s.entries.front().entry.id;
    if (after > s.head || after + 1 < first) {
      std::vector<std::string> lost;
      for (const auto& [execution, last_dropped] : s.lost)
        if (last_dropped > after || after > s.head) lost.push_back(execution);
      out.incomplete = notice(after, s.head, first, std::move(lost));
      if (after > s.head) after = 0;
    }
    // Ids are consecutive: the entry after `after` is at a known index.
    std::size_t index = after + 1 > first ? static_cast<std::size_t>(after + 1 - first) : 0;
    std::size_t taken = 0;
    for (; index < s.entries.size(); ++index) {
      const auto& e = s.entries[index].entry;
      if (!out.entries.empty() && taken + e.message.size() > max_bytes) break;
      taken += e.message.size();
      out.entries.push_back(e);
    }
    return out;
  }

  std::uint64_t head(const std::string& client_id) const override {
    const auto it = streams_.find(client_id);
    return it == streams_.end() ? 0 : it->second.head;
  }

  std::size_t bytes_after(const std::string& client_id, std::uint64_t after) const override {
    const auto it = streams_.find(client_id);
    if (it == streams_.end() || it->second.entries.empty()) return 0;
    const auto& s = it->second;
    const auto first = s.entries.front().entry.id;
    if (after >= s.head) return 0;
    if (after < first) return s.bytes;
    // Ids are consecutive: the entry `after` is at a known index.
    return static_cast<std::size_t>(s.appended - s.entries[after - first].appended);
  }

  bool trim(const std::string& client_id, std::uint64_t keep_after) override {
    const auto it = streams_.find(client_id);
    if (it == streams_.end()) return true;
    auto& s = it->second;
    const auto oldest = clock::now() - retention_.max_age;
    while (!s.entries.empty()) {
      const auto& front = s.entries.front();
      if (front.entry.id > keep_after) break;
      if (s.bytes <= retention_.max_bytes && front.at > oldest) break;
      remember_lost(s, front.entry.execution_id, front.entry.id);
      s.bytes -= front.entry.message.size();
      bytes_ -= front.entry.message.size();
      s.entries.pop_front();
    }
    // The head stays known while the stream is retained: ids never go back.
    if (!s.entries.empty()) return false;
    if (s.last_dropped_at + retention_.max_age > clock::now()) return false;
    streams_.erase(it);
    return true;
  }

  std::size_t bytes() const override { return bytes_; }

 private:
  struct timed_entry {
    stream_entry entry;
    clock::time_point at;
    /// The stream's `appended` once this entry was in.
    std::uint64_t appended = 0;
  };
  struct stream {
    std::deque<timed_entry> entries;
    std::uint64_t head = 0;
    std::size_t bytes = 0;
    /// Every byte ever appended: differences give the bytes between two entries.
    std::uint64_t appended = 0;
    /// Executions whose messages were dropped, with the last dropped id, newest last.
    std::vector<std::pair<std::string, std::uint64_t>> lost;
    clock::time_point last_dropped_at{};
  };

  static void remember_lost(stream& s, const std::string& execution_id, std::uint64_t id) {
    s.last_dropped_at = clock::now();
    if (!s.lost.empty() && s.lost.back().first == execution_id) {
      s.lost.back().second = id;
      return;
    }
    const auto known = std::find_if(s.lost.begin(), s.lost.end(),
                                    [&](const auto& l) { return l.first == execution_id; });
    if (known != s.lost.end()) s.lost.erase(known);
    s.lost.emplace_back(execution_id, id);
    if (s.lost.size() > max_lost_executions) s.lost.erase(s.lost.begin());
  }

  static std::string notice(std::uint64_t after, std::uint64_t head, std::uint64_t first,
                            std::vector<std::string> lost) {
    const auto message =
        after > head ? "lastEventId " + std::to_string(after) +
                           " is newer than this clientId's newest event (" + std::to_string(head) +
                           "): the service may have restarted; every event still kept follows"
                     : "events " + std::to_string(after + 1) + " to " + std::to_string(first - 1) +
                           " are no longer kept (STREAM_RETENTION_MS / STREAM_RETENTION_BYTES); "
                           "the events from " +
                           std::to_string(first) + " on follow";
    return dump({{"type", "status"},
                 {"executionId", nullptr},
                 {"status", "replay_incomplete"},
                 {"message", message},
                 {"lastEventId", after},
                 {"firstEventId", first},
                 {"executions", lost}});
  }

  stream_retention retention_;
  std::unordered_map<std::string, stream> streams_;
  std::size_t bytes_ = 0;
};

}  // namespace

std::unique_ptr<stream_log> make_memory_stream_log(stream_retention retention) {
  return std::make_unique<memory_stream_log>(retention);
}

std::string with_event_id(std::string message, std::uint64_t id) {
  // Every message is a dumped JSON object: its last character is the closing brace.
  if (message.size() < 2 || message.back() != '}') return message;
  message.pop_back();
  if (message.back() != '{') message += ',';
  message += "\"eventId\":" + std::to_string(id) + "}";
  return message;
}

}  // namespace codeexec
