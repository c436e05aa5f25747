// Requests per second per API key: one token bucket each.
#pragma once

#include <chrono>
#include <mutex>
#include <string>
#include <unordered_map>

namespace codeexec {

class rate_limiter {
 public:
  using clock = std::chrono::steady_clock;

  /// `rate` tokens per second, at most `burst` saved up. rate 0 disables the limit.
  rate_limiter(double rate, double burst) : rate_(rate), burst_(burst) {}

  /// Takes one token for `key`. Returns 0 when allowed, else the whole seconds
  /// (at least 1) after which a token will be there, for Retry-After.
  int acquire(const std::string& key, clock::time_point now = clock::now());

 private:
  struct bucket {
    double tokens;
    clock::time_point refilled;
  };
  double rate_;
  double burst_;
  std::mutex mutex_;
  std::unordered_map<std::string, bucket> buckets_;  // guarded by mutex_
};

}  // namespace codeexec
