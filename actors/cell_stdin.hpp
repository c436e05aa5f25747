// A cell's stdin: a FIFO inside the sandbox, fed from the host without ever blocking
// the SANDBOX actor. CAF-free; the actor retries a full FIFO on a timer.
#pragma once

#include "sandbox/sandbox_files.hpp"
#include "sandbox/unique_fd.hpp"

#include <string>

namespace codeexec {

class cell_stdin {
 public:
  /// A FIFO for the cell when it has input or keeps stdin open; the path the kernel
  /// opens, or "" (stdin stays at end-of-file, also when no FIFO could be made).
  std::string open(const sandbox::sandbox_files& files, std::string data, bool keep_open);
  /// Takes over `fifo` (non-blocking write end) with `data`; end-of-file after it
  /// unless `keep_open`. What open() does once the FIFO exists.
  void attach(sandbox::stdin_fifo fifo, std::string data, bool keep_open);
  /// More input for an open stdin (ignored once it is closed).
  void feed(const std::string& data, bool eof);
  /// Writes what the FIFO takes now, and closes it once everything is written and
  /// end-of-file was asked. True when the FIFO is full: pump again later.
  bool pump();
  /// Releases the FIFO; `files`, if given, unlinks it (a kernel that never opened it).
  void close(const sandbox::sandbox_files* files);
  /// Whether input can still be written.
  bool is_open() const { return static_cast<bool>(writer_); }

 private:
  sandbox::unique_fd writer_;
  /// Keeps the FIFO's buffered bytes until the kernel has read them.
  sandbox::unique_fd holder_;
  std::string path_;
  std::string pending_;
  bool eof_ = false;
};

}  // namespace codeexec
