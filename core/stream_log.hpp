// The per-clientId event log behind the WebSocket streams: every message of an
// execution streamed to a clientId gets the next `eventId` of that clientId and is
// kept (bounded by age and bytes) so that a socket can resume after any eventId.
// The registry is its only user; the protocol (eventId, lastEventId, the
// `replay_incomplete` notice) depends only on this interface, so a shared store
// (Redis streams: XADD / XRANGE / XTRIM, scale-out.md) can replace the memory one.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace codeexec {

/// How much of each clientId's stream is kept once every socket has read it.
struct stream_retention {
  std::chrono::milliseconds max_age{60000};
  std::size_t max_bytes = 4 << 20;
};

/// One stored message.
struct stream_entry {
  std::uint64_t id = 0;
  std::string execution_id;
  std::string message;  ///< the WebSocket JSON, eventId included
};

/// What a read after a cursor found.
struct stream_read {
  std::vector<stream_entry> entries;
  /// The newest id of the stream (0: none yet).
  std::uint64_t head = 0;
  /// Set when messages after the cursor are no longer kept: the notice to send first.
  std::optional<std::string> incomplete;
};

class stream_log {
 public:
  virtual ~stream_log() = default;
  /// Gives `message` (a JSON object) the clientId's next eventId, stores it and
  /// returns the id; `message` then holds the stored text.
  virtual std::uint64_t append(const std::string& client_id, const std::string& execution_id,
                               std::string& message) = 0;
  /// Messages after `after`, oldest first, up to about `max_bytes` (at least one).
  virtual stream_read read(const std::string& client_id, std::uint64_t after,
                           std::size_t max_bytes) const = 0;
  /// The newest id of a clientId's stream (0: none).
  virtual std::uint64_t head(const std::string& client_id) const = 0;
  /// Bytes of the messages after `after` still kept: how far a reader is behind.
  virtual std::size_t bytes_after(const std::string& client_id, std::uint64_t after) const = 0;
  /// Drops what is past the retention, but nothing after `keep_after` (what a
  /// connected socket has not read yet). True when the clientId's stream is empty.
  virtual bool trim(const std::string& client_id, std::uint64_t keep_after) = 0;
  /// Bytes held, for the metrics and the benchmarks.
  virtual std::size_t bytes() const = 0;
};

/// The single-node log: a deque per clientId.
std::unique_ptr<stream_log> make_memory_stream_log(stream_retention retention);

/// `message` (a JSON object's text) with `"eventId": id` added as its last member.
std::string with_event_id(std::string message, std::uint64_t id);

}  // namespace codeexec
