#include "e2b/ndjson.hpp"

#include "core/json_mapping.hpp"

namespace codeexec::e2b {
namespace {

std::string_view strip_cr(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

}  // namespace

bool line_splitter::feed(std::string_view chunk,
                         const std::function<void(std::string_view)>& on_line) {
  // Lines wholly inside the chunk go out without being copied; only the start of a
  // line that continues in a later chunk is kept (appended once, never moved again
  // except when it completes).
  while (!chunk.empty()) {
    const auto newline = chunk.find('\n');
    if (newline == std::string_view::npos) {
      if (buffer_.size() + chunk.size() > max_line_) return false;
      buffer_.append(chunk);
      return true;
    }
    auto piece = chunk.substr(0, newline);
    chunk.remove_prefix(newline + 1);
    if (buffer_.size() + piece.size() > max_line_) return false;
    if (buffer_.empty()) {
      piece = strip_cr(piece);
      if (!piece.empty()) on_line(piece);
      continue;
    }
    buffer_.append(piece);
    const auto line = strip_cr(buffer_);
    if (!line.empty()) on_line(line);
    buffer_.clear();
  }
  return true;
}

std::optional<std::string> line_splitter::finish() {
  const auto line = strip_cr(buffer_);
  if (line.empty()) {
    buffer_.clear();
    return std::nullopt;
  }
  std::string out{line};
  buffer_.clear();
  return out;
}

execute_line parse_execute_line(std::string_view line) {
  execute_line out;
  auto json = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) {
    out.type = execute_line::kind::malformed;
    out.problem = "a line of the stream is not a JSON object";
    return out;
  }
  const auto type = string_field(json, "type");
  if (type.empty()) {
    out.type = execute_line::kind::malformed;
    out.problem = "a line of the stream has no \"type\"";
    return out;
  }
  if (type == "number_of_executions") {
    out.type = execute_line::kind::execution_count;
    const auto count = json.find("execution_count");
    if (count != json.end() && count->is_number_integer())
      out.execution_count = count->get<std::int64_t>();
    return out;
  }
  if (type == "keepalive") {
    out.type = execute_line::kind::keepalive;
    return out;
  }
  if (type == "end_of_execution") {
    out.type = execute_line::kind::end_of_execution;
    return out;
  }
  if (type == "result") json.erase("timestamp");  // not a rendering; E2B's SDK would make it one
  if (auto event = parse_kernel_event(json)) {
    out.type = execute_line::kind::event;
    out.event = std::move(*event);
    return out;
  }
  if (type == "stdout" || type == "stderr") {
    out.type = execute_line::kind::malformed;
    out.problem = "a " + type + " line of the stream has no \"text\"";
    return out;
  }
  out.type = execute_line::kind::unknown;
  return out;
}

}  // namespace codeexec::e2b
