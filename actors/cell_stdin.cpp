#include "actors/cell_stdin.hpp"

#include "core/log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace codeexec {

std::string cell_stdin::open(const sandbox::sandbox_files& files, std::string data,
                             bool keep_open) {
  if (!keep_open && data.empty()) return {};
  auto made = files.make_stdin_fifo();
  if (!made) {
    log::warn("could not create a stdin FIFO", {{"reason", made.error().message}});
    return {};
  }
  attach(std::move(made.value()), std::move(data), keep_open);
  return path_;
}

void cell_stdin::attach(sandbox::stdin_fifo fifo, std::string data, bool keep_open) {
  // A FIFO drops its buffered bytes when its last descriptor closes: a read-only
  // descriptor held until the cell ends keeps them for a kernel that opens it late,
  // and does not count as a writer, so closing the writer still means end-of-file.
  const auto self_fd = "/proc/self/fd/" + std::to_string(fifo.writer.get());
  holder_.reset(::open(self_fd.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  writer_ = std::move(fifo.writer);
  path_ = std::move(fifo.path);
  pending_ = std::move(data);
  eof_ = !keep_open;
}

void cell_stdin::feed(const std::string& data, bool eof) {
  if (!writer_) return;
  pending_ += data;
  eof_ = eof_ || eof;
}

bool cell_stdin::pump() {
  if (!writer_) return false;
  while (!pending_.empty()) {
    const ssize_t n = ::write(writer_.get(), pending_.data(), pending_.size());
    if (n > 0) {
      pending_.erase(0, static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return true;
    // The reader is gone: nothing more can be delivered.
    pending_.clear();
    writer_.reset();
    return false;
  }
  if (eof_) writer_.reset();
  return false;
}

void cell_stdin::close(const sandbox::sandbox_files* files) {
  writer_.reset();
  holder_.reset();
  pending_.clear();
  // The kernel unlinks the FIFO when it opens it; this covers a cell that never did.
  if (!path_.empty() && files) files->remove(path_);
  path_.clear();
}

}  // namespace codeexec
