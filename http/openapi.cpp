#include "http/openapi.hpp"

#include "http/embedded.hpp"

#include <stdexcept>
#include <string>

namespace codeexec::http::openapi {
namespace {

using json = nlohmann::json;

const json& parsed() {
  static const json doc = json::parse(embedded::openapi_json);
  return doc;
}

/// `node` with "#/…" refs replaced by what they point to and allOf merged.
json inline_refs(const json& node, int depth = 0) {
  if (depth > 32) throw std::runtime_error("openapi: $ref nesting too deep");
  if (node.is_array()) {
    json out = json::array();
    for (const auto& item : node) out.push_back(inline_refs(item, depth + 1));
    return out;
  }
  if (!node.is_object()) return node;
  if (auto ref = node.find("$ref"); ref != node.end())
    return inline_refs(parsed().at(json::json_pointer{ref->get<std::string>().substr(1)}),
                       depth + 1);
  json out = json::object();
  for (const auto& [key, value] : node.items())
    if (key != "allOf") out[key] = inline_refs(value, depth + 1);
  if (auto all = node.find("allOf"); all != node.end()) {
    // Every part is an object schema here: their properties and requirements add up.
    out["type"] = "object";
    for (const auto& part : *all) {
      const json merged = inline_refs(part, depth + 1);
      const json props = merged.value("properties", json::object());
      for (const auto& [name, prop] : props.items()) out["properties"][name] = prop;
      for (const auto& name : merged.value("required", json::array()))
        out["required"].push_back(name);
      if (!out.contains("description") && merged.contains("description"))
        out["description"] = merged["description"];
    }
  }
  return out;
}

}  // namespace

std::string_view document() {
  return embedded::openapi_json;
}

json schema(std::string_view name) {
  return inline_refs(parsed().at("components").at("schemas").at(std::string{name}));
}

json parameter_schema(std::string_view name) {
  const auto& param = parsed().at("components").at("parameters").at(std::string{name});
  json out = inline_refs(param.at("schema"));
  if (param.contains("description")) out["description"] = param["description"];
  return out;
}

}  // namespace codeexec::http::openapi
