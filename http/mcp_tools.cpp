#include "http/mcp_tools.hpp"

#include "core/json_mapping.hpp"
#include "core/request_parsing.hpp"
#include "http/api_json.hpp"
#include "http/base64.hpp"
#include "http/openapi.hpp"

#include <fmt/format.h>

namespace codeexec::http {
namespace {

using json = nlohmann::json;

json text_block(std::string text) {
  return {{"type", "text"}, {"text", std::move(text)}};
}

json tool_error(std::string message) {
  return {{"content", json::array({text_block(std::move(message))})}, {"isError", true}};
}

json tool_error(const api_error& err) {
  return tool_error(err.code + ": " + err.message);
}

/// The same code and message as the REST route's error body.
json tool_error(const service_error& err) {
  return tool_error(to_api_error(err));
}

/// A successful result: a one-line summary for the model, the REST body for programs.
json tool_result(std::string summary, json structured) {
  return {{"content", json::array({text_block(std::move(summary))})},
          {"structuredContent", std::move(structured)},
          {"isError", false}};
}

/// An object schema with `extra` properties (required) in front of `base`'s.
json with_properties(json base, std::initializer_list<std::pair<const char*, json>> extra) {
  json props = json::object();
  json required = json::array();
  for (const auto& [name, schema] : extra) {
    props[name] = schema;
    required.push_back(name);
  }
  const json base_props = base.value("properties", json::object());
  for (const auto& [name, schema] : base_props.items()) props[name] = schema;
  for (const auto& name : base.value("required", json::array())) required.push_back(name);
  base["type"] = "object";
  base["properties"] = std::move(props);
  base["required"] = std::move(required);
  return base;
}

json object_schema(std::initializer_list<std::pair<const char*, json>> required) {
  return with_properties(json{{"type", "object"}}, required);
}

json tool(const char* name, const char* title, const char* description, json input_schema,
          bool read_only = false) {
  input_schema.erase("description");
  return {{"name", name},
          {"title", title},
          {"description", description},
          {"inputSchema", std::move(input_schema)},
          {"annotations", {{"readOnlyHint", read_only}, {"openWorldHint", false}}}};
}

/// A string argument, or "" when absent or not a string.
std::string arg(const json& args, const char* name) {
  return string_field(args, name);
}

std::string mib(std::uint64_t bytes) {
  return fmt::format("{:.1f} MiB", static_cast<double>(bytes) / (1 << 20));
}

/// The MCP content of an execution: its streams, rich results (PNG/JPEG as image
/// content), error and verdict; the REST body as structuredContent.
json execution_result(const execution_report& report) {
  const auto& r = report.result;
  json content = json::array();
  auto joined = [](const std::vector<std::string>& chunks) {
    std::string out;
    for (const auto& c : chunks) out += c;
    return out;
  };
  if (auto out = joined(r.stdout_chunks); !out.empty()) content.push_back(text_block(out));
  if (auto err = joined(r.stderr_chunks); !err.empty())
    content.push_back(text_block("[stderr]\n" + err));
  for (const auto& result : r.results) {
    bool shown = false;
    for (const auto& [format, mime] :
         {std::pair{"png", "image/png"}, std::pair{"jpeg", "image/jpeg"}})
      if (auto it = result.find(format); it != result.end() && it->is_string()) {
        content.push_back({{"type", "image"}, {"data", *it}, {"mimeType", mime}});
        shown = true;
      }
    if (shown) continue;
    for (const char* format : {"text", "markdown", "html", "svg", "latex"})
      if (auto it = result.find(format); it != result.end() && it->is_string()) {
        content.push_back(text_block(it->get<std::string>()));
        break;
      }
  }
  if (r.error)
    content.push_back(text_block("[error] " + r.error->name + ": " + r.error->value +
                                 (r.error->traceback.empty() ? "" : "\n" + r.error->traceback)));
  content.push_back(text_block(fmt::format("[verdict] {} · {} ms wall · {} ms CPU · {} peak memory",
                                           to_string(r.status), r.usage.wall_ms, r.usage.cpu_ms,
                                           mib(r.usage.peak_memory_bytes))));
  return {{"content", std::move(content)},
          {"structuredContent", json::parse(execute_response(report))},
          {"isError", r.status != verdict::ok}};
}

/// A service answer as a tool result: the REST body (`render`, http/api_json's shape)
/// as structuredContent, `summary` of it for the model; or the error.
template <class T, class Render>
json tool_answer(result<T> answer, Render render,
                 const std::function<std::string(const json&)>& summary) {
  if (auto* err = std::get_if<service_error>(&answer)) return tool_error(*err);
  json body = render(std::get<T>(answer));
  auto text = summary(body);
  return tool_result(std::move(text), std::move(body));
}

bool valid_utf8(const std::string& bytes) {
  try {
    (void)json(bytes).dump();
    return true;
  } catch (const json::exception&) {
    return false;
  }
}

}  // namespace

mcp_tools::mcp_tools(const config& cfg, service& svc) : cfg_(cfg), service_(svc) {
  const json sandbox_id = openapi::parameter_schema("SandboxId");
  const json file_path = openapi::parameter_schema("FilePath");
  const json dir_path = openapi::parameter_schema("DirPath");
  tools_ = json::array({
      tool("run_code", "Run code",
           "Runs code once in a fresh isolated sandbox (python, javascript, typescript, bash, "
           "java, r) and returns stdout, stderr, rich results (images as image content), the "
           "error with its traceback, the verdict (ok, error, timeout, memory_limit, "
           "output_limit, killed) and the usage. Nothing is kept afterwards: use "
           "create_sandbox + run_code_in_sandbox to keep variables and files.",
           openapi::schema("ExecuteRequest")),
      tool("create_sandbox", "Create a sandbox",
           "Creates a stateful sandbox whose kernels keep variables, imports and files between "
           "calls; returns its sandboxId. It ends after `timeout` seconds idle, or with "
           "kill_sandbox.",
           openapi::schema("SandboxRequest")),
      tool("list_sandboxes", "List sandboxes", "Lists the caller's live sandboxes.",
           json{{"type", "object"}, {"properties", json::object()}}, true),
      tool("kill_sandbox", "Kill a sandbox",
           "Destroys a sandbox: its processes, files and state are gone.",
           object_schema({{"sandboxId", sandbox_id}})),
      tool("run_code_in_sandbox", "Run code in a sandbox",
           "Runs code in a stateful sandbox: state from earlier calls is kept (the value of the "
           "last expression is the result). A timeout interrupts the cell and keeps the state.",
           with_properties(openapi::schema("SandboxExecuteRequest"), {{"sandboxId", sandbox_id}})),
      tool("read_file", "Read a file",
           "Reads a file of a sandbox (/home/user or /tmp): text as text, images as image "
           "content, other bytes as a base64 blob.",
           object_schema({{"sandboxId", sandbox_id}, {"path", file_path}}), true),
      tool("write_file", "Write a file",
           "Writes a file in a sandbox (/home/user or /tmp); parent directories are created.",
           with_properties(openapi::schema("McpFileWrite"),
                           {{"sandboxId", sandbox_id}, {"path", file_path}})),
      tool("list_files", "List files", "Lists a directory of a sandbox (default /home/user).",
           with_properties(json{{"type", "object"}, {"properties", {{"path", dir_path}}}},
                           {{"sandboxId", sandbox_id}}),
           true),
  });
}

bool mcp_tools::has(std::string_view name) const {
  for (const auto& t : tools_)
    if (t["name"] == name) return true;
  return false;
}

void mcp_tools::call(const std::string& owner, std::string_view name, const json& args,
                     tool_done done) {
  const auto id = arg(args, "sandboxId");
  const bool needs_sandbox =
      name != "run_code" && name != "create_sandbox" && name != "list_sandboxes";
  if (needs_sandbox && id.empty())
    return done(
        tool_error("invalid_request: `sandboxId` (a string) is required; "
                   "create_sandbox returns one, list_sandboxes lists them"));
  if (name == "run_code") return run_code(owner, args, false, std::move(done));
  if (name == "run_code_in_sandbox") return run_code(owner, args, true, std::move(done));
  if (name == "create_sandbox") {
    auto parsed = parse_sandbox_request(dump(args), cfg_);
    if (auto* err = std::get_if<api_error>(&parsed)) return done(tool_error(*err));
    auto& request = std::get<sandbox_request>(parsed);
    request.owner = owner;
    return service_.create_sandbox(
        std::move(request), [done = std::move(done)](result<sandbox_info> created) {
          done(tool_answer(std::move(created), sandbox_json, [](const json& s) {
            return fmt::format("Sandbox {} ({}) is running; it expires at {} unless used.",
                               s.value("sandboxId", ""), s.value("language", ""),
                               s.value("expiresAt", ""));
          }));
        });
  }
  if (name == "list_sandboxes") {
    return done(tool_answer(result<std::vector<sandbox_info>>{service_.list_sandboxes(owner)},
                            sandboxes_json, [](const json& body) {
                              std::string text =
                                  fmt::format("{} sandbox(es)", body["sandboxes"].size());
                              for (const auto& s : body["sandboxes"])
                                text +=
                                    fmt::format("\n{} {} expires {}", s.value("sandboxId", ""),
                                                s.value("language", ""), s.value("expiresAt", ""));
                              return text;
                            }));
  }
  if (name == "kill_sandbox") {
    return service_.delete_sandbox(owner, id, [done = std::move(done), id](auto failed) {
      if (failed) return done(tool_error(*failed));
      done(tool_result("Sandbox " + id + " is gone.", {{"sandboxId", id}, {"killed", true}}));
    });
  }
  const auto path = arg(args, "path");
  if (name == "list_files") {
    const auto dir = path.empty() ? std::string{"/home/user"} : path;
    return done(tool_answer(
        service_.list_files(owner, id, dir),
        [&](const sandbox::dir_listing& listed) { return file_listing_json(dir, listed); },
        [](const json& body) {
          std::string text = body.value("path", "");
          for (const auto& e : body["entries"])
            text += fmt::format("\n{} {} {}", e.value("type", ""), e.value("size", 0),
                                e.value("name", ""));
          return text;
        }));
  }
  if (path.empty()) return done(tool_error("invalid_request: `path` (a string) is required"));
  if (name == "read_file") {
    auto read = service_.read_file(owner, id, path);
    if (auto* err = std::get_if<service_error>(&read)) return done(tool_error(*err));
    auto& bytes = std::get<std::string>(read);
    json block;
    if (bytes.starts_with("\x89PNG\r\n\x1a\n"))
      block = {{"type", "image"}, {"data", base64_encode(bytes)}, {"mimeType", "image/png"}};
    else if (bytes.starts_with("\xff\xd8\xff"))
      block = {{"type", "image"}, {"data", base64_encode(bytes)}, {"mimeType", "image/jpeg"}};
    else if (valid_utf8(bytes))
      block = text_block(bytes);
    else
      block = {{"type", "resource"},
               {"resource",
                {{"uri", "file://" + path},
                 {"mimeType", "application/octet-stream"},
                 {"blob", base64_encode(bytes)}}}};
    return done({{"content", json::array({std::move(block)})}, {"isError", false}});
  }
  if (name == "write_file") {
    const auto content = args.find("content");
    if (content == args.end() || !content->is_string())
      return done(tool_error("invalid_request: `content` (a string) is required"));
    const auto encoding = args.value("encoding", std::string{"utf-8"});
    std::string bytes;
    if (encoding == "base64") {
      auto decoded = base64_decode(content->get<std::string>());
      if (!decoded) return done(tool_error("invalid_request: `content` is not valid base64"));
      bytes = std::move(*decoded);
    } else if (encoding == "utf-8") {
      bytes = content->get<std::string>();
    } else {
      return done(tool_error("invalid_request: `encoding` must be utf-8 or base64"));
    }
    return done(tool_answer(
        service_.write_file(owner, id, path, bytes),
        [&](std::uint64_t size) { return file_written_json(path, size); },
        [](const json& body) {
          return fmt::format("Wrote {} bytes to {}", body.value("size", 0), body.value("path", ""));
        }));
  }
  done(tool_error("invalid_request: unknown tool " + std::string{name}));
}

void mcp_tools::run_code(const std::string& owner, const json& args, bool in_sandbox,
                         tool_done done) {
  json body = args;
  body.erase("sandboxId");
  auto parsed = parse_execute_request(
      dump(body), cfg_, in_sandbox ? execute_endpoint::sandbox_execute : execute_endpoint::execute);
  if (auto* err = std::get_if<api_error>(&parsed)) return done(tool_error(*err));
  auto& request = std::get<execution_request>(parsed);
  if (request.stdin_open)
    return done(
        tool_error("invalid_request: `interactive` needs a client that sends stdin; over MCP, give "
                   "`stdin` (the whole input) instead"));
  request.owner = owner;
  if (in_sandbox) request.sandbox_id = arg(args, "sandboxId");
  // The service either calls back with the report or refuses at once, never both.
  auto shared = std::make_shared<tool_done>(std::move(done));
  auto started = service_.execute(std::move(request), [shared](execution_report report) {
    if (report.rejection) return (*shared)(tool_error(*report.rejection));
    (*shared)(execution_result(report));
  });
  if (auto* err = std::get_if<service_error>(&started)) (*shared)(tool_error(*err));
}

}  // namespace codeexec::http
