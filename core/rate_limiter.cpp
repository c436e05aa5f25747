#include "core/rate_limiter.hpp"

#include <algorithm>
#include <cmath>

namespace codeexec {

int rate_limiter::acquire(const std::string& key, clock::time_point now) {
  if (rate_ <= 0) return 0;
  std::lock_guard lock{mutex_};
  auto [it, inserted] = buckets_.try_emplace(key, bucket{burst_, now});
  auto& b = it->second;
  const std::chrono::duration<double> elapsed = now - b.refilled;
  b.tokens = std::min(burst_, b.tokens + elapsed.count() * rate_);
  b.refilled = now;
  if (b.tokens >= 1.0) {
    b.tokens -= 1.0;
    return 0;
  }
  return std::max(1, static_cast<int>(std::ceil((1.0 - b.tokens) / rate_)));
}

}  // namespace codeexec
