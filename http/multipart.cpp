#include "http/multipart.hpp"

#include <algorithm>
#include <cctype>

namespace codeexec::http {
namespace {

bool iequals_prefix(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() &&
         std::equal(prefix.begin(), prefix.end(), text.begin(), [](char a, char b) {
           return std::tolower(static_cast<unsigned char>(a)) ==
                  std::tolower(static_cast<unsigned char>(b));
         });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && iequals_prefix(a, b);
}

/// The value of parameter `name` in a header like `form-data; name="file"`.
std::optional<std::string> parameter(std::string_view header, std::string_view name) {
  auto pos = header.find(';');
  while (pos != std::string_view::npos) {
    const auto eq = header.find('=', pos + 1);
    if (eq == std::string_view::npos) return std::nullopt;
    const auto key = trim(header.substr(pos + 1, eq - pos - 1));
    pos = eq + 1;
    while (pos < header.size() && header[pos] == ' ') ++pos;
    std::string value;
    if (pos < header.size() && header[pos] == '"') {
      // A quoted string may hold ';' and escaped quotes.
      for (++pos; pos < header.size() && header[pos] != '"'; ++pos) {
        if (header[pos] == '\\' && pos + 1 < header.size()) ++pos;
        value += header[pos];
      }
      ++pos;
    } else {
      const auto end = std::min(header.find(';', pos), header.size());
      value = std::string{trim(header.substr(pos, end - pos))};
      pos = end;
    }
    if (iequals(key, name)) return value;
    pos = header.find(';', std::min(pos, header.size()));
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> multipart_boundary(std::string_view content_type) {
  if (!iequals_prefix(trim(content_type), "multipart/")) return std::nullopt;
  auto boundary = parameter(content_type, "boundary");
  if (!boundary || boundary->empty() || boundary->size() > 200) return std::nullopt;
  return boundary;
}

std::optional<std::vector<multipart_part>> parse_multipart(std::string_view body,
                                                           std::string_view boundary) {
  const std::string delimiter = "--" + std::string{boundary};
  std::vector<multipart_part> parts;
  auto pos = body.find(delimiter);
  if (pos == std::string_view::npos) return std::nullopt;
  pos += delimiter.size();
  while (true) {
    if (body.substr(pos, 2) == "--") return parts;  // the closing delimiter
    if (body.substr(pos, 2) != "\r\n") return std::nullopt;
    pos += 2;
    const auto headers_end = body.find("\r\n\r\n", pos);
    if (headers_end == std::string_view::npos) return std::nullopt;
    multipart_part part;
    bool disposition = false;
    for (auto header = body.substr(pos, headers_end - pos); !header.empty();) {
      const auto eol = header.find("\r\n");
      const auto one = header.substr(0, eol);
      header = eol == std::string_view::npos ? std::string_view{} : header.substr(eol + 2);
      if (!iequals_prefix(one, "content-disposition:")) continue;
      const auto value = one.substr(one.find(':') + 1);
      disposition = true;
      part.name = parameter(value, "name").value_or("");
      part.filename = parameter(value, "filename").value_or("");
    }
    if (!disposition) return std::nullopt;
    const auto content = headers_end + 4;
    const auto end = body.find("\r\n" + delimiter, content);
    if (end == std::string_view::npos) return std::nullopt;
    part.body = body.substr(content, end - content);
    parts.push_back(std::move(part));
    pos = end + 2 + delimiter.size();
  }
}

}  // namespace codeexec::http
