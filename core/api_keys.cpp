#include "core/api_keys.hpp"

#include <cctype>
#include <fstream>
#include <stdexcept>

namespace codeexec {
namespace {

std::string trim(std::string_view s) {
  const auto first = s.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return {};
  const auto last = s.find_last_not_of(" \t\r\n");
  return std::string{s.substr(first, last - first + 1)};
}

}  // namespace

// Lengths are not secret.
bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

api_keys api_keys::load(const std::string& list, const std::string& file) {
  api_keys keys;
  std::size_t start = 0;
  while (start <= list.size()) {
    auto end = list.find(',', start);
    if (end == std::string::npos) end = list.size();
    if (auto key = trim(std::string_view{list}.substr(start, end - start)); !key.empty())
      keys.keys_.push_back(std::move(key));
    start = end + 1;
  }
  if (!file.empty()) {
    std::ifstream in(file);
    if (!in) throw std::runtime_error("API_KEYS_FILE " + file + " cannot be read");
    std::string line;
    while (std::getline(in, line)) {
      auto key = trim(line);
      if (!key.empty() && key.front() != '#') keys.keys_.push_back(std::move(key));
    }
  }
  return keys;
}

std::optional<std::string> api_keys::identify(std::string_view presented) const {
  std::optional<std::string> found;
  // Compare against every key, so the time does not reveal which one matched.
  for (std::size_t i = 0; i < keys_.size(); ++i)
    if (constant_time_equal(keys_[i], presented) && !found) found = "key-" + std::to_string(i + 1);
  return found;
}

std::optional<std::string_view> api_keys::bearer_token(std::string_view authorization) {
  constexpr std::string_view scheme = "bearer ";
  if (authorization.size() <= scheme.size()) return std::nullopt;
  for (std::size_t i = 0; i < scheme.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(authorization[i])) != scheme[i])
      return std::nullopt;
  auto token = authorization.substr(scheme.size());
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
  if (token.empty()) return std::nullopt;
  return token;
}

}  // namespace codeexec
