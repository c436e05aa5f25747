// Reading one POST /execute reply of E2B's Code Interpreter as it streams: the
// NDJSON lines become kernel events at once; the end says whether the cell completed
// (end_of_execution), was cut, or could not be read.
#pragma once

#include "core/execution.hpp"
#include "e2b/http_client.hpp"

#include <cstddef>
#include <functional>
#include <string>

namespace codeexec::e2b {

/// How an /execute stream ended.
struct stream_end {
  /// The transfer (status, curl error, cancelled) and headers; the body only for a
  /// reply other than 200 (its error).
  http_response response;
  /// The stream's last line was end_of_execution: the cell ran to its end.
  bool complete = false;
  /// Lines read.
  std::size_t lines = 0;
  /// A line was longer than the cap: the transfer was ended there.
  bool oversized = false;
  /// Why the stream could not be read (a malformed line); empty if it could.
  std::string problem;
};

/// Callbacks for an /execute request: each stdout/stderr/result/error line goes to
/// `on_event` as it arrives, then `on_end` once. A line longer than `max_line` bytes
/// ends the transfer (`oversized`). Both run on the client's thread.
http_callbacks execute_stream_callbacks(std::size_t max_line,
                                        std::function<void(kernel_event)> on_event,
                                        std::function<void(stream_end)> on_end);

}  // namespace codeexec::e2b
