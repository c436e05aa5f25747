// E2B's Code Interpreter answers POST /execute with NDJSON: one JSON object per line,
// streamed as the cell runs. A line can be tens of MiB (a base64 PNG), so lines are
// split incrementally and each byte is copied at most once more.
#pragma once

#include "core/execution.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace codeexec::e2b {

/// Splits a byte stream into lines, chunk by chunk.
class line_splitter {
 public:
  /// Lines longer than `max_line` bytes are an error (a stream that never ends a line
  /// would otherwise grow the buffer without bound).
  explicit line_splitter(std::size_t max_line) : max_line_(max_line) {}

  /// Feeds a chunk; `on_line` gets each complete line (without "\n" or "\r\n"; empty
  /// lines are skipped). False once a line passed the cap: the stream is unusable.
  bool feed(std::string_view chunk, const std::function<void(std::string_view)>& on_line);
  /// The stream ended: the final unterminated fragment, if any (E2B's SDK parses it too).
  std::optional<std::string> finish();
  /// Bytes of the line not yet complete.
  std::size_t pending() const { return buffer_.size(); }

 private:
  std::size_t max_line_;
  std::string buffer_;
};

/// One line of an /execute stream, mapped onto the service's vocabulary.
struct execute_line {
  enum class kind {
    event,             ///< stdout, stderr, result or error: `event`
    execution_count,   ///< number_of_executions: `execution_count`
    keepalive,         ///< the server is still there
    end_of_execution,  ///< the last line of a complete stream
    unknown,           ///< a type this version does not know: ignored, as the SDK does
    malformed,         ///< not a JSON object with a string "type": `problem` says why
  };
  kind type = kind::unknown;
  kernel_event event;
  std::int64_t execution_count = 0;
  std::string problem;
};

/// Maps one line. Result objects keep E2B's keys (text, html, png, …, extra,
/// is_main_result); stdout/stderr keep their text, errors name/value/traceback.
execute_line parse_execute_line(std::string_view line);

}  // namespace codeexec::e2b
