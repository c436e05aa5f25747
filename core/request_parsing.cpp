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

/// The body as a JSON object, or the error for a body that is not one.
std::variant<json, api_error> parse_object(std::string_view body) {
  json doc = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded())
    return api_error{400, "invalid_json", "The request body is not valid JSON"};
  if (!doc.is_object())
    return api_error::bad_request("The request body must be a JSON object, not " + type_name(doc));
  return doc;
}

/// A member that is absent or null counts as not given.
const json* member(const json& doc, const char* name) {
  const auto it = doc.find(name);
  return it == doc.end() || it->is_null() ? nullptr : &*it;
}

std::optional<api_error> parse_string_map(const json& doc, const char* field, bool env_names,
                                          std::map<std::string, std::string>& out) {
  const json* object = member(doc, field);
  if (!object) return std::nullopt;
  const std::string name{field};
  if (!object->is_object())
    return api_error::bad_request("`" + name + "` must be an object of strings");
  for (const auto& [key, value] : object->items()) {
    if (!value.is_string())
      return api_error::bad_request("`" + name + "." + key + "` must be a string");
    if (env_names &&
        (key.empty() || key.find('=') != std::string::npos || key.find('\0') != std::string::npos))
      return api_error::bad_request("`" + name + "` has an invalid variable name");
    auto text = value.get<std::string>();
    if (text.find('\0') != std::string::npos)
      return api_error::bad_request("`" + name + "." + key + "` must not contain NUL bytes");
    out[key] = std::move(text);
  }
  return std::nullopt;
}

std::optional<api_error> parse_language_field(const json& doc, language& out) {
  const json* lang = member(doc, "language");
  if (!lang) return std::nullopt;
  if (!lang->is_string())
    return api_error::bad_request("`language` must be a string, not " + type_name(*lang));
  const auto name = lang->get<std::string>();
  const auto parsed = parse_language(name);
  if (!parsed)
    return api_error{
        400, "unsupported_language",
        "Unsupported language '" + name + "'; supported: " + std::string{supported_languages}};
  out = *parsed;
  return std::nullopt;
}

/// An integer member within [min, max], in the member's own unit.
std::optional<api_error> parse_integer(const json& doc, const char* field, std::int64_t min,
                                       std::int64_t max, const char* unit, std::int64_t& out) {
  const json* value = member(doc, field);
  if (!value) return std::nullopt;
  const auto range = "`" + std::string{field} + "` must be an integer from " + std::to_string(min) +
                     " to " + std::to_string(max) + unit;
  if (!value->is_number_integer()) return api_error::bad_request(range);
  const bool in_range =
      value->is_number_unsigned()
          ? value->get<std::uint64_t>() >= static_cast<std::uint64_t>(min) &&
                value->get<std::uint64_t>() <= static_cast<std::uint64_t>(max)
          : value->get<std::int64_t>() >= min && value->get<std::int64_t>() <= max;
  if (!in_range) return api_error::bad_request(range);
  out = value->get<std::int64_t>();
  return std::nullopt;
}

/// The first of `names` that is present, as a string.
std::variant<std::string, api_error> optional_string(const json& doc,
                                                     std::initializer_list<const char*> names) {
  for (const char* name : names) {
    const json* value = member(doc, name);
    if (!value) continue;
    if (!value->is_string())
      return api_error::bad_request("`" + std::string{name} + "` must be a string, not " +
                                    type_name(*value));
    auto text = value->get<std::string>();
    if (text.find('\0') != std::string::npos)
      return api_error::bad_request("`" + std::string{name} + "` must not contain NUL bytes");
    return text;
  }
  return std::string{};
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
  auto parsed = parse_object(body);
  if (auto* err = std::get_if<api_error>(&parsed)) return *err;
  const json& doc = std::get<json>(parsed);
  const bool in_sandbox = endpoint == execute_endpoint::sandbox_execute ||
                          endpoint == execute_endpoint::sandbox_execute_stream;
  const bool streaming = endpoint == execute_endpoint::execute_stream ||
                         endpoint == execute_endpoint::sandbox_execute_stream;

  execution_request req;
  req.timeout = cfg.default_timeout;
  req.limits = cfg.default_limits;

  const json* code = member(doc, "code");
  if (!code) return api_error::bad_request("`code` is required");
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

  req.lang_given = member(doc, "language") != nullptr;
  if (auto err = parse_language_field(doc, req.lang)) return *err;

  std::int64_t timeout_ms = req.timeout.count();
  if (auto err = parse_integer(doc, "timeout", 1, cfg.max_timeout.count(), " ms", timeout_ms))
    return *err;
  req.timeout = std::chrono::milliseconds{timeout_ms};

  if (auto err = parse_string_map(doc, "envVars", true, req.env)) return *err;

  if (const json* limits = member(doc, "limits")) {
    if (auto err = parse_limits(*limits, cfg, req.limits)) return *err;
    if (in_sandbox)
      for (const auto& [key, value] : limits->items())
        if (key != "outputBytes" && key != "cpuMs")
          return api_error::bad_request("`limits." + key +
                                        "` is a property of the sandbox: set it in POST "
                                        "/sandboxes; an execution may set outputBytes and cpuMs");
  }

  auto context = optional_string(doc, {"contextId", "context_id"});
  if (auto* err = std::get_if<api_error>(&context)) return *err;
  req.context_id = std::get<std::string>(context);
  if (!req.context_id.empty() && !in_sandbox)
    return api_error::bad_request("`contextId` needs a sandbox: POST /sandboxes/{id}/execute");

  auto input = optional_string(doc, {"stdin"});
  if (auto* err = std::get_if<api_error>(&input)) return *err;
  req.stdin_data = std::get<std::string>(input);
  if (req.stdin_data.size() > cfg.max_code_bytes)
    return api_error{413, "payload_too_large",
                     "`stdin` is " + std::to_string(req.stdin_data.size()) +
                         " bytes; the maximum is " + std::to_string(cfg.max_code_bytes)};
  if (const json* interactive = member(doc, "interactive")) {
    if (!interactive->is_boolean())
      return api_error::bad_request("`interactive` must be a boolean");
    req.stdin_open = interactive->get<bool>();
  }

  if (streaming) {
    const json* client = member(doc, "clientId");
    if (!client) return api_error::bad_request("`clientId` is required for /execute-stream");
    if (!client->is_string())
      return api_error::bad_request("`clientId` must be a string, not " + type_name(*client));
    req.client_id = client->get<std::string>();
    if (auto err = validate_client_id(req.client_id)) return *err;
  }
  return req;
}

std::variant<sandbox_request, api_error> parse_sandbox_request(std::string_view body,
                                                               const config& cfg) {
  sandbox_request req;
  req.idle_timeout = cfg.sandbox_idle_timeout;
  req.limits = cfg.default_limits;
  // An empty body asks for the defaults.
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) return req;
  auto parsed = parse_object(body);
  if (auto* err = std::get_if<api_error>(&parsed)) return *err;
  const json& doc = std::get<json>(parsed);
  if (auto err = parse_language_field(doc, req.lang)) return *err;
  std::int64_t seconds = req.idle_timeout.count() / 1000;
  if (auto err = parse_integer(doc, "timeout", 1, cfg.sandbox_idle_timeout_max.count() / 1000,
                               " seconds", seconds))
    return *err;
  req.idle_timeout = std::chrono::seconds{seconds};
  if (auto err = parse_string_map(doc, "envVars", true, req.env)) return *err;
  if (auto err = parse_string_map(doc, "metadata", false, req.metadata)) return *err;
  if (const json* limits = member(doc, "limits"))
    if (auto err = parse_limits(*limits, cfg, req.limits)) return *err;
  return req;
}

std::variant<context_request, api_error> parse_context_request(std::string_view body) {
  context_request req;
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) return req;
  auto parsed = parse_object(body);
  if (auto* err = std::get_if<api_error>(&parsed)) return *err;
  const json& doc = std::get<json>(parsed);
  if (auto err = parse_language_field(doc, req.lang)) return *err;
  auto cwd = optional_string(doc, {"cwd"});
  if (auto* err = std::get_if<api_error>(&cwd)) return *err;
  if (!std::get<std::string>(cwd).empty()) req.cwd = std::get<std::string>(cwd);
  if (req.cwd.front() != '/' || req.cwd.size() > 4096)
    return api_error::bad_request("`cwd` must be an absolute path inside the sandbox");
  return req;
}

std::variant<std::chrono::milliseconds, api_error> parse_timeout_request(std::string_view body,
                                                                         const config& cfg) {
  auto parsed = parse_object(body);
  if (auto* err = std::get_if<api_error>(&parsed)) return *err;
  const json& doc = std::get<json>(parsed);
  if (!member(doc, "timeout")) return api_error::bad_request("`timeout` (seconds) is required");
  std::int64_t seconds = 0;
  if (auto err = parse_integer(doc, "timeout", 1, cfg.sandbox_idle_timeout_max.count() / 1000,
                               " seconds", seconds))
    return *err;
  return std::chrono::milliseconds{seconds * 1000};
}

std::variant<stdin_request, api_error> parse_stdin_request(std::string_view body,
                                                           const config& cfg) {
  auto parsed = parse_object(body);
  if (auto* err = std::get_if<api_error>(&parsed)) return *err;
  const json& doc = std::get<json>(parsed);
  stdin_request req;
  auto data = optional_string(doc, {"data"});
  if (auto* err = std::get_if<api_error>(&data)) return *err;
  req.data = std::get<std::string>(data);
  if (req.data.size() > cfg.max_code_bytes)
    return api_error{413, "payload_too_large",
                     "`data` is " + std::to_string(req.data.size()) + " bytes; the maximum is " +
                         std::to_string(cfg.max_code_bytes)};
  if (const json* eof = member(doc, "eof")) {
    if (!eof->is_boolean()) return api_error::bad_request("`eof` must be a boolean");
    req.eof = eof->get<bool>();
  }
  if (req.data.empty() && !req.eof)
    return api_error::bad_request("Send `data` (a string), `eof`: true, or both");
  return req;
}

}  // namespace codeexec
