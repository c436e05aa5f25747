#include "core/access_policy.hpp"

namespace codeexec {

std::variant<std::string, api_error> access_policy::admit(std::optional<std::string_view> presented,
                                                          std::string_view how) {
  if (keys.open()) return std::string{};
  if (!presented)
    return api_error{401, "unauthorized", "An API key is required: " + std::string{how}};
  auto owner = keys.identify(*presented);
  if (!owner) return api_error{401, "unauthorized", "The API key is not valid"};
  if (const int wait = limiter.acquire(*owner); wait > 0)
    return api_error{
        429, "rate_limited",
        "Too many requests for this API key (" + std::to_string(rate_per_second) + " per second)",
        wait};
  return *owner;
}

}  // namespace codeexec
