#include "core/log.hpp"

#include "core/json_mapping.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace codeexec::log {
namespace {

std::atomic<level> min_level{level::info};
std::mutex write_mutex;

std::string_view name(level lvl) {
  switch (lvl) {
    case level::debug:
      return "debug";
    case level::info:
      return "info";
    case level::warn:
      return "warn";
    case level::error:
      return "error";
  }
  return "info";
}

std::string timestamp() {
  using namespace std::chrono;
  const auto now = system_clock::now();
  const auto secs = system_clock::to_time_t(now);
  const auto millis = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(millis));
  return buf;
}

}  // namespace

void set_level(std::string_view lvl) {
  if (lvl == "debug")
    min_level = level::debug;
  else if (lvl == "warn")
    min_level = level::warn;
  else if (lvl == "error")
    min_level = level::error;
  else
    min_level = level::info;
}

bool enabled(level lvl) {
  return lvl >= min_level.load(std::memory_order_relaxed);
}

void write(level lvl, std::string_view msg, const nlohmann::json& fields) {
  if (!enabled(lvl)) return;
  nlohmann::json line = {{"ts", timestamp()}, {"level", name(lvl)}, {"msg", msg}};
  if (fields.is_object())
    for (const auto& [key, value] : fields.items()) line[key] = value;
  const auto text = dump(line) + "\n";
  std::lock_guard lock{write_mutex};
  std::fwrite(text.data(), 1, text.size(), stderr);
  std::fflush(stderr);
}

}  // namespace codeexec::log
