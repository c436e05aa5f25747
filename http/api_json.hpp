// The native API's JSON shapes of the service's domain types, and the HTTP form of its
// errors: the one place where a service_error becomes a status (the E2B shapes are in
// e2b_wire.hpp).
#pragma once

#include "core/api_error.hpp"
#include "core/limits.hpp"
#include "core/sandbox_spec.hpp"
#include "core/service_error.hpp"
#include "sandbox/sandbox_files.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace codeexec::http {

/// The status, code and Retry-After of a service error.
api_error to_api_error(const service_error& err);

std::int64_t unix_ms(std::chrono::system_clock::time_point t);

nlohmann::json limits_json(const resource_limits& limits);
/// {sandboxId, language, state, createdAt, expiresAt, metadata, limits}.
nlohmann::json sandbox_json(const sandbox_info& sandbox);
/// {"sandboxes": [...]}, oldest first.
nlohmann::json sandboxes_json(const std::vector<sandbox_info>& sandboxes);
/// {id, language, cwd, default, running, queued}.
nlohmann::json context_json(const context_info& context);
/// {"contexts": [...]}.
nlohmann::json contexts_json(const std::vector<context_info>& contexts);
/// {path, entries: [{name, path, type, size, mode}], truncated}.
nlohmann::json file_listing_json(const std::string& path, const sandbox::dir_listing& listing);
/// {path, size}: what a write stored.
nlohmann::json file_written_json(const std::string& path, std::uint64_t size);

}  // namespace codeexec::http
