#include "sandbox/frame.hpp"

namespace codeexec::sandbox {

std::string encode_frame(std::string_view payload) {
  const auto n = static_cast<std::uint32_t>(payload.size());
  std::string out;
  out.reserve(4 + payload.size());
  out += static_cast<char>((n >> 24) & 0xff);
  out += static_cast<char>((n >> 16) & 0xff);
  out += static_cast<char>((n >> 8) & 0xff);
  out += static_cast<char>(n & 0xff);
  out.append(payload);
  return out;
}

std::optional<std::string> frame_decoder::next() {
  if (failed_) return std::nullopt;
  const std::size_t available = buffer_.size() - offset_;
  if (available < 4) return std::nullopt;
  const auto* p = reinterpret_cast<const unsigned char*>(buffer_.data() + offset_);
  const std::size_t length = (std::size_t{p[0]} << 24) | (std::size_t{p[1]} << 16) |
                             (std::size_t{p[2]} << 8) | std::size_t{p[3]};
  if (length > max_bytes_) {
    failed_ = true;
    buffer_.clear();
    offset_ = 0;
    return std::nullopt;
  }
  if (available < 4 + length) return std::nullopt;
  std::string payload = buffer_.substr(offset_ + 4, length);
  offset_ += 4 + length;
  // Compact once the consumed prefix dominates, so the buffer never grows without bound.
  if (offset_ > buffer_.size() / 2) {
    buffer_.erase(0, offset_);
    offset_ = 0;
  }
  return payload;
}

std::size_t complete_utf8_prefix(std::string_view text) {
  // Look at most 3 bytes back for the start of a multi-byte sequence.
  const std::size_t n = text.size();
  for (std::size_t back = 1; back <= 3 && back <= n; ++back) {
    const auto c = static_cast<unsigned char>(text[n - back]);
    if ((c & 0xc0) == 0x80) continue;  // continuation byte: keep looking
    std::size_t needed = 1;
    if ((c & 0xe0) == 0xc0)
      needed = 2;
    else if ((c & 0xf0) == 0xe0)
      needed = 3;
    else if ((c & 0xf8) == 0xf0)
      needed = 4;
    return needed > back ? n - back : n;
  }
  return n;
}

}  // namespace codeexec::sandbox
