// API keys: who may use the service, and under which name each key is counted.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace codeexec {

/// Whether two secrets are equal, in time that does not reveal where they differ.
bool constant_time_equal(std::string_view a, std::string_view b);

class api_keys {
 public:
  api_keys() = default;
  /// Keys from API_KEYS (comma-separated) and from the lines of API_KEYS_FILE
  /// (blank lines and # comments skipped). Throws std::runtime_error if the file
  /// cannot be read.
  static api_keys load(const std::string& list, const std::string& file);

  /// No key configured: the service is open.
  bool open() const { return keys_.empty(); }
  std::size_t size() const { return keys_.size(); }

  /// The identity of a presented key ("key-1", "key-2", … in configuration order),
  /// or nothing when the key is unknown. Compares in constant time.
  std::optional<std::string> identify(std::string_view presented) const;

  /// The token of an `Authorization: Bearer <token>` header, if it has that form.
  static std::optional<std::string_view> bearer_token(std::string_view authorization);

 private:
  std::vector<std::string> keys_;
};

}  // namespace codeexec
