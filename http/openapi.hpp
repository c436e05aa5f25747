// The OpenAPI 3.1 description of the native API: docs/openapi.json, compiled in.
// Served at GET /openapi.json, and the one source of the MCP tools' input schemas.
#pragma once

#include <nlohmann/json.hpp>

#include <string_view>

namespace codeexec::http::openapi {

/// The document, byte for byte as docs/openapi.json.
std::string_view document();

/// components.schemas[name] as a self-contained JSON Schema: every $ref inlined and
/// every allOf merged into one object schema. Throws std::out_of_range if unknown.
nlohmann::json schema(std::string_view name);

/// The schema of components.parameters[name], with the parameter's description.
nlohmann::json parameter_schema(std::string_view name);

}  // namespace codeexec::http::openapi
