#include "actors/sandbox_lifetime.hpp"

#include "actors/sandbox_directory.hpp"
#include "core/log.hpp"

#include <algorithm>

namespace codeexec {
namespace {

std::int64_t unix_ms(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

std::chrono::milliseconds next_check(std::chrono::milliseconds until_end) {
  return std::min(until_end, sandbox_lifetime::check_interval);
}

}  // namespace

std::chrono::milliseconds sandbox_lifetime::adopt(sandbox_settings s) {
  stateful = true;
  settings = std::move(s);
  created = clock::now();
  touch();
  return next_check(std::min(settings.idle_timeout, settings.max_lifetime));
}

void sandbox_lifetime::set_idle_timeout(std::chrono::milliseconds idle) {
  settings.idle_timeout = idle;
  touch();
}

void sandbox_lifetime::touch() {
  last_activity = clock::now();
  if (!stateful || !settings.record) return;
  const auto end = std::min(last_activity + settings.idle_timeout, created + settings.max_lifetime);
  settings.record->expires_at_ms =
      unix_ms(std::chrono::system_clock::now() +
              std::chrono::duration_cast<std::chrono::system_clock::duration>(end - clock::now()));
}

sandbox_lifetime::check sandbox_lifetime::expire(bool busy) {
  const auto now = clock::now();
  const auto id = settings.record ? settings.record->id : std::string{};
  const auto life_end = created + settings.max_lifetime;
  if (now >= life_end) {
    log::info("sandbox reached its maximum lifetime: destroyed", {{"sandboxId", id}});
    return {"the sandbox reached its maximum lifetime", {}};
  }
  if (busy) touch();  // running cells are not idle
  const auto idle_end = last_activity + settings.idle_timeout;
  if (now >= idle_end) {
    log::info("sandbox idle past its timeout: destroyed", {{"sandboxId", id}});
    return {"the sandbox expired", {}};
  }
  return {{},
          next_check(std::chrono::duration_cast<std::chrono::milliseconds>(
              std::min(idle_end, life_end) - now))};
}

}  // namespace codeexec
