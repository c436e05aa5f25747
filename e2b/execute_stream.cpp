#include "e2b/execute_stream.hpp"

#include "e2b/ndjson.hpp"

#include <memory>

namespace codeexec::e2b {
namespace {

/// How much of an error reply is kept (its message is all a client needs).
constexpr std::size_t max_error_body = 64 << 10;

struct stream_reader {
  explicit stream_reader(std::size_t max_line) : splitter(max_line) {}

  line_splitter splitter;
  std::function<void(kernel_event)> on_event;
  std::function<void(stream_end)> on_end;
  stream_end end;
  bool streaming = false;  // a 200: the body is NDJSON

  /// One complete line (ignored once the stream is unusable).
  void take(std::string_view line) {
    if (!end.problem.empty()) return;
    ++end.lines;
    auto parsed = parse_execute_line(line);
    switch (parsed.type) {
      case execute_line::kind::event:
        on_event(std::move(parsed.event));
        break;
      case execute_line::kind::end_of_execution:
        end.complete = true;
        break;
      case execute_line::kind::malformed:
        end.problem = parsed.problem;
        break;
      case execute_line::kind::execution_count:
      case execute_line::kind::keepalive:
      case execute_line::kind::unknown:
        break;
    }
  }

  bool feed(std::string_view chunk) {
    if (!streaming) {
      if (end.response.body.size() < max_error_body)
        end.response.body.append(chunk.substr(0, max_error_body - end.response.body.size()));
      return true;
    }
    if (!splitter.feed(chunk, [this](std::string_view line) { take(line); })) end.oversized = true;
    return end.problem.empty() && !end.oversized;
  }

  void done(const http_result& result) {
    end.response.result = result;
    // E2B's SDK also parses a final line without "\n".
    if (streaming && result.completed() && end.problem.empty() && !end.oversized)
      if (auto rest = splitter.finish()) take(*rest);
    on_end(std::move(end));
  }
};

}  // namespace

http_callbacks execute_stream_callbacks(std::size_t max_line,
                                        std::function<void(kernel_event)> on_event,
                                        std::function<void(stream_end)> on_end) {
  // Shared by the callbacks, which all run on the client's thread, one at a time.
  auto reader = std::make_shared<stream_reader>(max_line);
  reader->on_event = std::move(on_event);
  reader->on_end = std::move(on_end);
  http_callbacks callbacks;
  callbacks.on_headers = [reader](long status, const header_map& headers) {
    reader->end.response.headers = headers;
    reader->streaming = status == 200;
  };
  callbacks.on_data = [reader](std::string_view chunk) { return reader->feed(chunk); };
  callbacks.on_done = [reader](const http_result& result) { reader->done(result); };
  return callbacks;
}

}  // namespace codeexec::e2b
