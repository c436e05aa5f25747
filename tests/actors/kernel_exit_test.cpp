// The rules by which a kernel's end becomes a cell's outcome, without a sandbox.
#include "actors/kernel_exit.hpp"

#include <doctest/doctest.h>

#include <csignal>

using namespace codeexec;

namespace {

sandbox_exit killed_by(int sig) {
  sandbox_exit exit;
  exit.signal = sig;
  return exit;
}

}  // namespace

TEST_CASE("an exit status reads as a signal, an exit code or nothing") {
  CHECK(to_sandbox_exit({-1, SIGKILL}, "").signal == SIGKILL);
  // A pid-namespace init reports its runner's signal N as exit code 128 + N.
  auto by_init = to_sandbox_exit({128 + SIGSEGV, 0}, "");
  CHECK(by_init.signal == SIGSEGV);
  CHECK_FALSE(by_init.exit_code);
  auto plain = to_sandbox_exit({3, 0}, "");
  CHECK(plain.exit_code == 3);
  CHECK_FALSE(plain.signal);
  // 128 itself and codes beyond any signal stay exit codes.
  CHECK(to_sandbox_exit({128, 0}, "").exit_code == 128);
  CHECK(to_sandbox_exit({255, 0}, "").exit_code == 255);
  auto unknown = to_sandbox_exit({-1, 0}, "no /usr/bin/python3");
  CHECK_FALSE(unknown.exit_code);
  CHECK_FALSE(unknown.signal);
  CHECK(unknown.setup_error == "no /usr/bin/python3");
}

TEST_CASE("a signal is described by number and name") {
  CHECK(describe_signal(SIGKILL) == "signal 9 (SIGKILL)");
  CHECK(describe_signal(SIGSEGV) == "signal 11 (SIGSEGV)");
}

TEST_CASE("the service's stop reason comes before anything the kernel's end says") {
  const std::optional<stop_reason> forced = stop_reason{cell_end::output_limit, "too much"};
  auto out = ended_outcome({forced, true, true, true}, killed_by(SIGKILL));
  CHECK(out.how == cell_end::output_limit);
  CHECK(out.detail == "too much");
  CHECK(out.signal == SIGKILL);  // how it ended is still reported
}

TEST_CASE("a kernel the service killed reads as restarted, even in a killed sandbox") {
  const std::optional<stop_reason> none;
  auto out = ended_outcome({none, true, true, false}, killed_by(SIGKILL));
  CHECK(out.how == cell_end::restarted);
  CHECK(out.detail.find("did not stop on interrupt") != std::string::npos);
}

TEST_CASE("a sandbox killed on request reads as killed, before a setup error") {
  const std::optional<stop_reason> none;
  sandbox_exit exit = killed_by(SIGKILL);
  exit.setup_error = "mount failed";
  auto out = ended_outcome({none, false, true, false}, exit);
  CHECK(out.how == cell_end::killed);
  CHECK(out.detail == "the sandbox was killed");
}

TEST_CASE("a setup error reads as start_failed with its text") {
  const std::optional<stop_reason> none;
  sandbox_exit exit;
  exit.setup_error = "mount failed";
  auto out = ended_outcome({none, false, false, true}, exit);
  CHECK(out.how == cell_end::start_failed);
  CHECK(out.detail == "mount failed");
}

TEST_CASE("a kernel that died on its own says how, and whether its state is lost") {
  const std::optional<stop_reason> none;
  auto signalled = ended_outcome({none, false, false, false}, killed_by(SIGSEGV));
  CHECK(signalled.how == cell_end::died);
  CHECK(signalled.detail == "the kernel was killed by signal 11 (SIGSEGV)");

  sandbox_exit exited;
  exited.exit_code = 3;
  auto restarting = ended_outcome({none, false, false, true}, exited);
  CHECK(restarting.how == cell_end::died);
  CHECK(restarting.exit_code == 3);
  CHECK(restarting.detail ==
        "the kernel exited with code 3; the kernel restarts for the next execution, its state "
        "is lost");
}
