#include "core/request_parsing.hpp"

#include <nlohmann/json.hpp>

namespace codeexec {
namespace {

using json = nlohmann::json;

std::string type_name(const json& j) {
  return j.type_name();
}

/// The request's names for the limits, with their unit.
struct limit_field {
  const char* name;
  std::uint64_t resource_limits::*field;
  std::uint64_t unit;
  std::uint64_t min;  ///< below it no interpreter starts
};
constexpr limit_field limit_fields[] = {
    {"memoryMb", &resource_limits::memory_bytes, 1 << 20, 16},
    {"pids", &resource_limits::pids, 1, 8},
    {"workspaceMb", &resource_limits::workspace_bytes, 1 << 20, 1},
    {"fileSizeMb", &resource_limits::file_size_bytes, 1 << 20, 1},
    {"openFiles", &resource_limits::open_files, 1, 32},
    {"outputBytes", &resource_limits::output_bytes, 1, 1},
    {"cpuMs", &resource_limits::cpu_ms, 1, 1},
};

/// Reads the optional "limits" object into `out` (which holds the defaults).
std::optional<api_error> parse_limits(const json& limits, const config& cfg, resource_limits& out) {
  if (!limits.is_object())
    return api_error::bad_request("`limits` must be an object of positive integers");
  for (const auto& [key, value] : limits.items()) {
    const limit_field* known = nullptr;
    for (const auto& f : limit_fields)
      if (key == f.name) known = &f;
    if (!known)
      return api_error::bad_request("Unknown limit `" + key +
                                    "`; known: memoryMb, pids, workspaceMb, fileSizeMb, "
                                    "openFiles, outputBytes, cpuMs");
    const std::uint64_t max = cfg.max_limits.*(known->field) / known->unit;
    if (!value.is_number_unsigned() || value.get<std::uint64_t>() < known->min ||
        value.get<std::uint64_t>() > max)
      return api_error::bad_request("`limits." + key + "` must be an integer from " +
                                    std::to_string(known->min) + " to " + std::to_string(max));
    out.*(known->field) = value.get<std::uint64_t>() * known->unit;
  }
  return std::nullopt;
}

}  // namespace

std::optional<api_error> validate_client_id(std::string_view client_id) {
  if (client_id.empty()) return api_error::bad_request("`clientId` must not be empty");
  if (client_id.size() > max_client_id_length)
    return api_error::bad_request("`clientId` must be at most " +
                                  std::to_string(max_client_id_length) + " characters");
  for (unsigned char c : client_id)
    if (c < 0x20 || c == 0x7f)
      return api_error::bad_request("`clientId` must not contain control characters");
  return std::nullopt;
}

std::variant<execution_request, api_error> parse_execute_request(std::string_view body,
                                                                 const config& cfg,
                                                                 execute_endpoint endpoint) {
  json doc = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded())
    return api_error{400, "invalid_json", "The request body is not valid JSON"};
  if (!doc.is_object())
    return api_error::bad_request("The request body must be a JSON object, not " + type_name(doc));

  execution_request req;
  req.timeout = cfg.default_timeout;
  req.limits = cfg.default_limits;

  const auto code = doc.find("code");
  if (code == doc.end() || code->is_null()) return api_error::bad_request("`code` is required");
  if (!code->is_string())
    return api_error::bad_request("`code` must be a string, not " + type_name(*code));
  req.code = code->get<std::string>();
  if (req.code.empty()) return api_error::bad_request("`code` must not be empty");
  if (req.code.size() > cfg.max_code_bytes)
    return api_error{413, "payload_too_large",
                     "`code` is " + std::to_string(req.code.size()) + " bytes; the maximum is " +
                         std::to_string(cfg.max_code_bytes)};
  if (req.code.find('\0') != std::string::npos)
    return api_error::bad_request("`code` must not contain NUL bytes");

  if (const auto lang = doc.find("language"); lang != doc.end() && !lang->is_null()) {
    if (!lang->is_string())
      return api_error::bad_request("`language` must be a string, not " + type_name(*lang));
    const auto name = lang->get<std::string>();
    const auto parsed = parse_language(name);
    if (!parsed)
      return api_error{
          400, "unsupported_language",
          "Unsupported language '" + name + "'; supported: " + std::string{supported_languages}};
    req.lang = *parsed;
  }

  if (const auto t = doc.find("timeout"); t != doc.end() && !t->is_null()) {
    if (!t->is_number_integer())
      return api_error::bad_request("`timeout` must be an integer number of milliseconds");
    const auto max = cfg.max_timeout.count();
    const bool in_range = t->is_number_unsigned()
                              ? t->get<std::uint64_t>() >= 1 &&
                                    t->get<std::uint64_t>() <= static_cast<std::uint64_t>(max)
                              : t->get<std::int64_t>() >= 1 && t->get<std::int64_t>() <= max;
    if (!in_range)
      return api_error::bad_request("`timeout` must be from 1 to " + std::to_string(max) + " ms");
    req.timeout = std::chrono::milliseconds{t->get<std::int64_t>()};
  }

  if (const auto env = doc.find("envVars"); env != doc.end() && !env->is_null()) {
    if (!env->is_object()) return api_error::bad_request("`envVars` must be an object of strings");
    for (const auto& [key, value] : env->items()) {
      if (!value.is_string())
        return api_error::bad_request("`envVars." + key + "` must be a string");
      if (key.empty() || key.find('=') != std::string::npos || key.find('\0') != std::string::npos)
        return api_error::bad_request("`envVars` has an invalid variable name");
      auto text = value.get<std::string>();
      if (text.find('\0') != std::string::npos)
        return api_error::bad_request("`envVars." + key + "` must not contain NUL bytes");
      req.env[key] = std::move(text);
    }
  }

  if (const auto limits = doc.find("limits"); limits != doc.end() && !limits->is_null())
    if (auto err = parse_limits(*limits, cfg, req.limits)) return *err;

  if (endpoint == execute_endpoint::execute_stream) {
    const auto client = doc.find("clientId");
    if (client == doc.end() || client->is_null())
      return api_error::bad_request("`clientId` is required for /execute-stream");
    if (!client->is_string())
      return api_error::bad_request("`clientId` must be a string, not " + type_name(*client));
    req.client_id = client->get<std::string>();
    if (auto err = validate_client_id(req.client_id)) return *err;
  }
  return req;
}

}  // namespace codeexec
