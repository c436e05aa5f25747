// Structured logs: one JSON object per line on stderr, thread-safe.
#pragma once

#include <nlohmann/json.hpp>

#include <string_view>

namespace codeexec::log {

enum class level { debug, info, warn, error };

/// Sets the minimum level from "debug", "info", "warn" or "error".
void set_level(std::string_view name);
bool enabled(level lvl);

/// Writes {"ts", "level", "msg", ...fields}. `fields` must be an object or null.
void write(level lvl, std::string_view msg, const nlohmann::json& fields = nullptr);

inline void debug(std::string_view msg, const nlohmann::json& fields = nullptr) {
  if (enabled(level::debug)) write(level::debug, msg, fields);
}
inline void info(std::string_view msg, const nlohmann::json& fields = nullptr) {
  write(level::info, msg, fields);
}
inline void warn(std::string_view msg, const nlohmann::json& fields = nullptr) {
  write(level::warn, msg, fields);
}
inline void error(std::string_view msg, const nlohmann::json& fields = nullptr) {
  write(level::error, msg, fields);
}

}  // namespace codeexec::log
