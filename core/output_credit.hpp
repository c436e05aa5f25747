// Output of one streamed cell on its way from the kernel's pipes to its WebSocket
// readers, counted as the size of its stdout and stderr text (rich results are bounded
// by the output caps). The sandbox's I/O thread takes what it reads and
// stops reading the kernel while `limit` bytes or more are out; the CLIENT REGISTRY
// gives them back once they are in the stream log and no socket of the clientId is
// too far behind. This bounds what a stream holds in the actors' mailboxes whatever
// their pace (twenty floods on two busy cores): back-pressure at the source, not only
// at the socket. Thread-safe.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace codeexec {

class output_credit {
 public:
  explicit output_credit(std::size_t limit) : limit_(static_cast<std::int64_t>(limit)) {}

  /// The I/O thread read `bytes` of the cell's output.
  void take(std::size_t bytes) { out_.fetch_add(static_cast<std::int64_t>(bytes)); }
  /// `bytes` taken earlier left the pipeline.
  void give_back(std::size_t bytes) { out_.fetch_sub(static_cast<std::int64_t>(bytes)); }
  /// Whether the I/O thread must stop reading the kernel for now.
  bool exhausted() const { return out_.load() >= limit_; }
  /// Bytes out now, for tests.
  std::int64_t out() const { return out_.load(); }

 private:
  const std::int64_t limit_;
  std::atomic<std::int64_t> out_{0};
};

}  // namespace codeexec
