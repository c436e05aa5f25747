// Who may call the service and how often: the API keys and one rate-limit bucket per
// key. One instance serves every listener (the native API and the E2B-compatible one),
// so a key has one budget however it comes in.
#pragma once

#include "core/api_keys.hpp"
#include "core/config.hpp"
#include "core/rate_limiter.hpp"

namespace codeexec {

struct access_policy {
  /// Loads API_KEYS and API_KEYS_FILE (throws std::runtime_error if the file cannot be
  /// read) and sets the per-key rate from KEY_RATE_LIMIT_RPS / _BURST.
  explicit access_policy(const config& cfg)
      : keys(api_keys::load(cfg.api_keys, cfg.api_keys_file)),
        limiter(static_cast<double>(cfg.key_rate_limit_rps),
                static_cast<double>(cfg.key_rate_limit_burst)) {}

  const api_keys keys;
  rate_limiter limiter;
};

}  // namespace codeexec
