// A cell's stdin without a sandbox: a pipe stands for the FIFO (no root needed).
#include "actors/cell_stdin.hpp"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <unistd.h>

#include <string>

using namespace codeexec;

namespace {

struct pipe_fixture {
  sandbox::unique_fd read_end;
  cell_stdin in;

  /// Attaches a non-blocking pipe as the FIFO, with `data` and end-of-file unless kept open.
  void attach(std::string data, bool keep_open) {
    int fds[2];
    REQUIRE(::pipe2(fds, O_NONBLOCK | O_CLOEXEC) == 0);
    read_end.reset(fds[0]);
    in.attach({"/tmp/.stdin-test", sandbox::unique_fd{fds[1]}}, std::move(data), keep_open);
  }

  /// What the kernel would read now; "<eof>" once the writer is closed and all is read.
  std::string read_all() {
    std::string out;
    char buf[65536];
    for (;;) {
      const auto n = ::read(read_end.get(), buf, sizeof buf);
      if (n > 0) {
        out.append(buf, static_cast<std::size_t>(n));
        continue;
      }
      if (n == 0) out += "<eof>";
      return out;
    }
  }
};

}  // namespace

TEST_CASE_FIXTURE(pipe_fixture, "stdin: the data, then end-of-file") {
  attach("hello\n", false);
  CHECK_FALSE(in.pump());
  CHECK_FALSE(in.is_open());
  CHECK(read_all() == "hello\n<eof>");
}

TEST_CASE_FIXTURE(pipe_fixture, "stdin kept open takes more input until end-of-file") {
  attach("a", true);
  CHECK_FALSE(in.pump());
  CHECK(in.is_open());
  CHECK(read_all() == "a");
  in.feed("b", false);
  in.pump();
  CHECK(read_all() == "b");
  in.feed("c", true);
  in.pump();
  CHECK(read_all() == "c<eof>");
  in.feed("ignored", false);  // closed: nothing more goes in
  CHECK_FALSE(in.pump());
}

TEST_CASE_FIXTURE(pipe_fixture, "a full stdin is pumped again later, never blocking") {
  const std::string big(1 << 20, 'x');  // more than a pipe holds
  attach(big, false);
  CHECK(in.pump());  // full: retry later
  std::string got = read_all();
  while (in.pump()) got += read_all();
  got += read_all();
  CHECK(got.size() == big.size() + std::string{"<eof>"}.size());
}

TEST_CASE_FIXTURE(pipe_fixture, "a closed stdin takes no more input") {
  attach("a", true);
  in.pump();
  in.close(nullptr);
  CHECK_FALSE(in.is_open());
  in.feed("late", true);
  CHECK_FALSE(in.pump());
  CHECK(read_all() == "a<eof>");
}
