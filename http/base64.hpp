// Base64 (RFC 4648, with padding) for MCP's binary content: images and files.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace codeexec::http {

std::string base64_encode(std::string_view bytes);

/// The decoded bytes, or nullopt if `text` is not base64 (whitespace is ignored).
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace codeexec::http
