// Length-prefixed frames of the runner protocol (runners/PROTOCOL.md): a 4-byte
// big-endian length, then that many bytes of JSON.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace codeexec::sandbox {

inline constexpr std::size_t max_frame_bytes = 64u << 20;

/// Prefixes `payload` with its length.
std::string encode_frame(std::string_view payload);

/// Reassembles frames from arbitrary chunks of a byte stream.
class frame_decoder {
 public:
  explicit frame_decoder(std::size_t max_bytes = max_frame_bytes) : max_bytes_(max_bytes) {}

  /// Appends received bytes.
  void feed(std::string_view bytes) { buffer_.append(bytes); }
  /// The next complete frame's payload, if any. After a failure, always empty.
  std::optional<std::string> next();
  /// Set when a frame announced more than the maximum size.
  bool failed() const { return failed_; }

 private:
  std::string buffer_;
  std::size_t offset_ = 0;
  std::size_t max_bytes_;
  bool failed_ = false;
};

/// Length of the longest prefix of `text` that does not end inside a UTF-8 sequence;
/// the rest is held back until more bytes arrive.
std::size_t complete_utf8_prefix(std::string_view text);

}  // namespace codeexec::sandbox
