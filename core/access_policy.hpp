// Who may call the service and how often: the API keys and one rate-limit bucket per
// key. One instance serves every listener (the native API and the E2B-compatible one),
// so a key has one budget however it comes in.
#pragma once

#include "core/api_error.hpp"
#include "core/api_keys.hpp"
#include "core/config.hpp"
#include "core/rate_limiter.hpp"

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace codeexec {

struct access_policy {
  /// Loads API_KEYS and API_KEYS_FILE (throws std::runtime_error if the file cannot be
  /// read) and sets the per-key rate from KEY_RATE_LIMIT_RPS / _BURST.
  explicit access_policy(const config& cfg)
      : keys(api_keys::load(cfg.api_keys, cfg.api_keys_file)),
        limiter(static_cast<double>(cfg.key_rate_limit_rps),
                static_cast<double>(cfg.key_rate_limit_burst)),
        rate_per_second(cfg.key_rate_limit_rps) {}

  /// The identity of the `presented` key ("" when no key is configured), or why not:
  /// 401 for none (the message names `how` to present one) or an unknown one, 429
  /// with the seconds to wait when the key is over its rate.
  std::variant<std::string, api_error> admit(std::optional<std::string_view> presented,
                                             std::string_view how);

  const api_keys keys;
  rate_limiter limiter;
  const std::size_t rate_per_second;
};

}  // namespace codeexec
