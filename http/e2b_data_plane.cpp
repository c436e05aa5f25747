// The data plane of the E2B-compatible API: the Code Interpreter (port 49999,
// e2b-protocol.md §3) and the part of envd (port 49983, §5) the SDK's files API and
// isRunning() use.
#include "http/e2b_call.hpp"
#include "http/multipart.hpp"
#include "http/path_match.hpp"

#include <algorithm>
#include <chrono>
#include <mutex>

namespace codeexec::http {
namespace {

std::int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

/// E2B paths are absolute or relative to the user's home (§5).
std::string sandbox_path(const std::string& path) {
  if (!path.empty() && path.front() == '/') return path;
  return "/home/user/" + path;
}

std::string context_not_found(const std::string& id) {
  return "Context " + id + " not found";
}

/// One NDJSON /execute response. Events may arrive (on an actor thread) before the
/// stream is open — the execution starts first, so that a refusal can still be an
/// HTTP error — and are held until then.
class ndjson_execution {
 public:
  void write(std::string line) {
    std::lock_guard lock{mutex_};
    if (stream_)
      stream_->write(std::move(line));
    else
      early_.push_back(std::move(line));
  }

  void end() {
    std::lock_guard lock{mutex_};
    ended_ = true;
    if (stream_) finish_locked();
  }

  /// The sandbox died during the cell: E2B's stream is cut, not ended.
  void cut() {
    std::lock_guard lock{mutex_};
    ended_ = cut_ = true;
    if (stream_) stream_->abort();
  }

  void open(std::shared_ptr<chunked_reply> stream, std::string first_line) {
    std::lock_guard lock{mutex_};
    stream_ = std::move(stream);
    stream_->write(std::move(first_line));
    for (auto& line : early_) stream_->write(std::move(line));
    early_.clear();
    if (cut_)
      stream_->abort();
    else if (ended_)
      finish_locked();
  }

 private:
  /// `end_of_execution` is always the last line (§3.1).
  void finish_locked() {
    stream_->write(e2b::end_of_execution_line());
    stream_->finish();
  }

  std::mutex mutex_;
  std::shared_ptr<chunked_reply> stream_;  // guarded by mutex_
  std::vector<std::string> early_;         // guarded by mutex_
  bool ended_ = false;                     // guarded by mutex_
  bool cut_ = false;                       // guarded by mutex_
};

/// Who to tell when the client of an /execute leaves: known only once the execution
/// has started, and the client may leave before.
/// Port 49999: the code interpreter's routes.
enum class interpreter_action {
  execute,
  health,
  list_contexts,
  create_context,
  delete_context,
  restart_context
};
constexpr route_row<interpreter_action> interpreter_routes[] = {
    {"/execute", "POST", interpreter_action::execute},
    {"/health", "GET", interpreter_action::health},
    {"/contexts", "GET", interpreter_action::list_contexts},
    {"/contexts", "POST", interpreter_action::create_context},
    {"/contexts/{id}", "DELETE", interpreter_action::delete_context},
    {"/contexts/{id}/restart", "POST", interpreter_action::restart_context},
};

/// Port 49983: the part of envd served here.
enum class envd_action { health, read_file, upload_files };
constexpr route_row<envd_action> envd_routes[] = {
    {"/health", "GET", envd_action::health},
    {"/files", "GET", envd_action::read_file},
    {"/files", "POST", envd_action::upload_files},
};

struct departure {
  std::mutex mutex;
  std::string execution_id;  // guarded by mutex
  bool gone = false;         // guarded by mutex
};

}  // namespace

void e2b_routes::code_interpreter(const call_ptr& c, const entry_ptr& sandbox) {
  std::vector<std::string> params;
  bool path_known = false;
  const auto* route =
      find_route(interpreter_routes, c->method, c->segment_views(), params, path_known);
  if (!route) return c->text(404, "Not Found");
  const auto& owner = sandbox->owner;
  const auto& id = sandbox->id;
  switch (route->what) {
    case interpreter_action::execute:
      return execute(c, sandbox);
    case interpreter_action::health:
      return c->json(200, "OK");
    case interpreter_action::list_contexts:
      return list_contexts(c, owner, id);
    case interpreter_action::create_context:
      return create_context(c, owner, id);
    case interpreter_action::delete_context:
    case interpreter_action::restart_context:
      return change_context(c, owner, id, params[0],
                            route->what == interpreter_action::delete_context);
  }
}

void e2b_routes::list_contexts(const call_ptr& c, const std::string& owner, const std::string& id) {
  service_.list_contexts(owner, id, [c](result<std::vector<context_info>> listed) {
    if (auto* err = std::get_if<service_error>(&listed)) return c->text(*err);
    nlohmann::json out = nlohmann::json::array();
    for (const auto& ctx : std::get<std::vector<context_info>>(listed))
      out.push_back(e2b::context_json(ctx));
    c->json(200, out);
  });
}

void e2b_routes::create_context(const call_ptr& c, const std::string& owner,
                                const std::string& id) {
  context_request request;
  if (c->body.find_first_not_of(" \t\r\n") != std::string::npos) {
    auto doc = nlohmann::json::parse(c->body, nullptr, false);
    if (!doc.is_object()) return c->text(400, "The body must be a JSON object");
    const auto name = doc.value("language", nlohmann::json{});
    auto lang = e2b::normalize_language(name.is_string() ? name.get<std::string>() : "");
    if (!lang) return c->text(400, "Unsupported language: " + name.dump());
    request.lang = *lang;
    if (auto cwd = doc.find("cwd"); cwd != doc.end() && cwd->is_string() && !cwd->empty())
      request.cwd = cwd->get<std::string>();
    if (request.cwd.front() != '/')
      return c->text(400, "`cwd` must be an absolute path inside the sandbox");
  }
  service_.create_context(owner, id, request, [c](result<context_info> created) {
    if (auto* err = std::get_if<service_error>(&created)) return c->text(*err);
    c->json(200, e2b::context_json(std::get<context_info>(created)));
  });
}

void e2b_routes::change_context(const call_ptr& c, const std::string& owner, const std::string& id,
                                const std::string& context_id, bool remove) {
  auto answer = [c, context_id](const service_error* err) {
    if (!err) return c->json(200, nullptr);
    const auto api = to_api_error(*err);
    c->text(api.status, api.status == 404 ? context_not_found(context_id) : api.message);
  };
  if (remove)
    return service_.delete_context(
        owner, id, context_id,
        [answer](std::optional<service_error> err) { answer(err ? &*err : nullptr); });
  service_.restart_context(owner, id, context_id, [answer](result<context_info> r) {
    answer(std::get_if<service_error>(&r));
  });
}

void e2b_routes::execute(const call_ptr& c, const entry_ptr& sandbox) {
  auto doc = nlohmann::json::parse(c->body, nullptr, false);
  if (!doc.is_object() || !doc.contains("code") || !doc["code"].is_string())
    return c->text(400, "The body must be a JSON object with `code` (a string)");
  execution_request request;
  request.code = doc["code"].get<std::string>();
  if (request.code.size() > cfg_.max_code_bytes)
    return c->text(413, "`code` is larger than " + std::to_string(cfg_.max_code_bytes) + " bytes");
  const auto context = doc.value("context_id", nlohmann::json{});
  const auto language_name = doc.value("language", nlohmann::json{});
  if (!context.is_null() && !language_name.is_null())
    return c->text(400, "Only one of context_id or language can be provided");
  if (!context.is_null() && !context.is_string())
    return c->text(400, "`context_id` must be a string");
  if (!language_name.is_null()) {
    auto lang =
        e2b::normalize_language(language_name.is_string() ? language_name.get<std::string>() : "?");
    if (!lang) return c->text(400, "Unsupported language: " + language_name.dump());
    request.lang = *lang;
  }
  if (auto env = doc.value("env_vars", nlohmann::json{}); env.is_object()) {
    for (const auto& [key, value] : env.items()) {
      if (!value.is_string()) return c->text(400, "`env_vars` values must be strings");
      request.env[key] = value.get<std::string>();
    }
  } else if (!env.is_null()) {
    return c->text(400, "`env_vars` must be an object");
  }
  request.owner = sandbox->owner;
  request.sandbox_id = sandbox->id;
  // Neither context nor language: the default Python context (§3.1). A context runs
  // its own language.
  request.lang_given = context.is_null();
  request.limits = cfg_.default_limits;
  // E2B's server has no execution timeout: the SDK's own (60 s by default) ends a cell
  // by disconnecting, which interrupts it here. MAX_TIMEOUT_MS still bounds it.
  request.timeout = cfg_.max_timeout;
  if (context.is_null()) {
    const auto key = "language:" + std::string{to_string(request.lang)};
    return start_execution(c, sandbox, std::move(request), key);
  }

  // An unknown context is a 404 before any line (the SDK's NotFoundError), so ask first.
  request.context_id = context.get<std::string>();
  service_.list_contexts(sandbox->owner, sandbox->id,
                         [this, c, sandbox, request = std::move(request)](
                             result<std::vector<context_info>> listed) mutable {
                           if (auto* err = std::get_if<service_error>(&listed))
                             return c->text(*err);
                           bool known = false;
                           for (const auto& ctx : std::get<std::vector<context_info>>(listed))
                             known = known || ctx.id == request.context_id;
                           if (!known) return c->text(404, context_not_found(request.context_id));
                           const auto key = "context:" + request.context_id;
                           start_execution(c, sandbox, std::move(request), key);
                         });
}

void e2b_routes::start_execution(const call_ptr& c, const entry_ptr& sandbox,
                                 execution_request request, const std::string& counter_key) {
  auto output = std::make_shared<ndjson_execution>();
  auto started = service_.execute_events(
      std::move(request),
      [output](const kernel_event& event) { output->write(e2b::event_line(event, now_us())); },
      [this, output, owner = sandbox->owner, id = sandbox->id](execution_report report) {
        // Killed with its sandbox (DELETE, timeout): the SDK then finds the sandbox gone
        // and rejects runCode with its TimeoutError "…killed while the request…".
        if (report.result.status != verdict::ok && report.result.status != verdict::error &&
            !service_.has_sandbox(owner, id))
          return output->cut();
        output->end();
      });
  if (auto* err = std::get_if<service_error>(&started)) return c->text(*err);

  auto leaving = std::make_shared<departure>();
  chunked_start start;
  start.content_type = "application/x-ndjson";
  start.keepalive = e2b::keepalive_line();
  // E2B interrupts the kernel when the client disconnects (§3.1); so do we.
  start.on_gone = [this, leaving, owner = sandbox->owner] {
    std::lock_guard lock{leaving->mutex};
    leaving->gone = true;
    if (!leaving->execution_id.empty())
      service_.cancel_execution(owner, leaving->execution_id, "the client disconnected");
  };
  std::uint64_t count = 0;
  {
    std::lock_guard lock{sandbox->e2b->mutex};
    count = ++sandbox->e2b->executions[counter_key];
  }
  output->open(c->respond.stream(std::move(start)), e2b::execution_count_line(count));
  std::lock_guard lock{leaving->mutex};
  leaving->execution_id = std::get<std::string>(started);
  if (leaving->gone)
    service_.cancel_execution(sandbox->owner, leaving->execution_id, "the client disconnected");
}

void e2b_routes::envd(const call_ptr& c, const entry_ptr& sandbox) {
  std::vector<std::string> params;
  bool path_known = false;
  const auto segments = c->segment_views();
  const auto* route = find_route(envd_routes, c->method, segments, params, path_known);
  if (route) {
    switch (route->what) {
      case envd_action::health:
        return c->no_content();
      case envd_action::upload_files:
        return upload_files(c, sandbox);
      case envd_action::read_file:
        return read_file(c, sandbox);
    }
  }
  if (matches("/files", segments, params))
    return c->error({405, "method_not_allowed", "GET or POST /files"});
  // envd's Connect RPC (commands, directory listings, watchers) is not served here.
  if (c->path.find('.') != std::string::npos && c->segments.size() == 2)
    return c->json(404, {{"code", "unimplemented"},
                         {"message", c->path + " is not supported by this server: of envd, "
                                               "only /health and /files are"}});
  c->error({404, "not_found", "No route for " + c->path});
}

void e2b_routes::read_file(const call_ptr& c, const entry_ptr& sandbox) {
  const auto path = c->query_value("path");
  if (!path || path->empty())
    return c->error(api_error::bad_request("The `path` query parameter is required"));
  auto read = service_.read_file(sandbox->owner, sandbox->id, sandbox_path(*path));
  if (auto* err = std::get_if<service_error>(&read)) return c->error(*err);
  reply r{200, std::move(std::get<std::string>(read)), {}};
  r.content_type = "application/octet-stream";
  c->respond.reply(std::move(r));
}

void e2b_routes::upload_files(const call_ptr& c, const entry_ptr& sandbox) {
  if (auto encoding = c->header("content-encoding"); encoding && *encoding != "identity")
    return c->error({415, "unsupported_encoding",
                     "Content-Encoding " + *encoding + " is not supported: send the file as is"});
  const auto path = c->query_value("path");
  std::vector<std::pair<std::string, std::string_view>> files;
  std::optional<std::vector<multipart_part>> parts;
  if (auto boundary = multipart_boundary(c->header("content-type").value_or(""))) {
    parts = parse_multipart(c->body, *boundary);
    if (!parts) return c->error(api_error::bad_request("The multipart body is malformed"));
    // One file goes to ?path=; several each to their filename (§5). Other form fields
    // do not count.
    const auto file_parts = std::count_if(parts->begin(), parts->end(),
                                          [](const auto& part) { return part.name == "file"; });
    for (const auto& part : *parts) {
      if (part.name != "file") continue;
      auto target = path && file_parts == 1 ? *path : part.filename;
      if (target.empty())
        return c->error(api_error::bad_request("A file part needs a filename or ?path="));
      files.emplace_back(sandbox_path(target), part.body);
    }
  } else {
    if (!path || path->empty())
      return c->error(api_error::bad_request("The `path` query parameter is required"));
    files.emplace_back(sandbox_path(*path), c->body);
  }
  nlohmann::json written = nlohmann::json::array();
  for (const auto& [target, data] : files) {
    auto written_file = service_.write_file(sandbox->owner, sandbox->id, target, data);
    if (auto* err = std::get_if<service_error>(&written_file)) return c->error(*err);
    written.push_back(
        {{"path", target}, {"name", target.substr(target.rfind('/') + 1)}, {"type", "file"}});
  }
  c->json(200, written);
}

}  // namespace codeexec::http
