// The MCP server's tools: run code (one-shot or in a stateful sandbox), create, list
// and kill sandboxes, read, write and list files. Each calls the same service facade
// as the REST route it mirrors, through the same request parsing; each input schema
// is built from docs/openapi.json's components (http/openapi.hpp).
#pragma once

#include "actors/service.hpp"
#include "core/config.hpp"

#include <nlohmann/json.hpp>

#include <functional>
#include <string>
#include <string_view>

namespace codeexec::http {

/// Called exactly once, possibly from an actor thread, with an MCP CallToolResult.
using tool_done = std::function<void(nlohmann::json)>;

class mcp_tools {
 public:
  mcp_tools(const config& cfg, service& svc);

  /// The `tools` array of a tools/list result.
  const nlohmann::json& list() const { return tools_; }
  bool has(std::string_view name) const;
  /// Runs tool `name` for `owner`. A failure (bad arguments, unknown sandbox, a code
  /// error) is a result with isError set, never an exception.
  void call(const std::string& owner, std::string_view name, const nlohmann::json& arguments,
            tool_done done);

 private:
  void run_code(const std::string& owner, const nlohmann::json& args, bool in_sandbox,
                tool_done done);

  const config& cfg_;
  service& service_;
  nlohmann::json tools_;
};

}  // namespace codeexec::http
