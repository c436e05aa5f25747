#include "sandbox/runner_stage.hpp"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace fs = std::filesystem;
using codeexec::sandbox::runner_stage;
using codeexec::sandbox::unreachable_by_others;

namespace {

/// A temporary directory, removed with everything in it.
struct temp_dir {
  fs::path path;
  temp_dir() {
    std::string templ = (fs::temp_directory_path() / "runner-stage-test-XXXXXX").string();
    REQUIRE(::mkdtemp(templ.data()) != nullptr);
    path = templ;
    fs::permissions(path, fs::perms(0755));
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

unsigned mode_of(const fs::path& p) {
  struct stat st {};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

void write(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

}  // namespace

TEST_CASE("runner_stage: a readable copy under the runtime dir, removed with the stage") {
  temp_dir tmp;
  const auto source = tmp.path / "private" / "runners";
  write(source / "python_runner.py", "print('hi')\n");
  write(source / "java" / "JavaRunner.class", "classbytes");
  fs::permissions(source / "python_runner.py", fs::perms(0600));
  fs::permissions(tmp.path / "private", fs::perms(0700));
  const auto runtime = tmp.path / "run" / "codeexec";
  fs::path instance;
  {
    runner_stage stage(source.string(), runtime.string());
    const fs::path staged = stage.path();
    instance = staged.parent_path();
    CHECK(instance.parent_path() == runtime);
    CHECK(mode_of(runtime) == 0755);
    CHECK(mode_of(instance) == 0755);
    CHECK(mode_of(staged) == 0755);
    CHECK(mode_of(staged / "java") == 0755);
    CHECK(mode_of(staged / "python_runner.py") == 0644);
    CHECK(unreachable_by_others(staged / "java" / "JavaRunner.class") == "");
    std::ifstream in(staged / "python_runner.py");
    std::string line;
    std::getline(in, line);
    CHECK(line == "print('hi')");
  }
  CHECK_FALSE(fs::exists(instance));
}

TEST_CASE("runner_stage: sweeps instances whose service is gone, keeps live ones") {
  temp_dir tmp;
  const auto source = tmp.path / "runners";
  write(source / "python_runner.py", "");
  const auto runtime = tmp.path / "runtime";
  const auto stale = runtime / "instance-dead00";
  write(stale / "runners" / "python_runner.py", "");
  write(stale / ".lock", "");
  runner_stage live(source.string(), runtime.string());  // sweeps first
  CHECK_FALSE(fs::exists(stale));
  CHECK(runner_stage::sweep_stale(runtime.string()) == 0);
  CHECK(fs::exists(live.path()));
  runner_stage second(source.string(), runtime.string());
  CHECK(second.path() != live.path());
  CHECK(fs::exists(live.path()));
}

TEST_CASE("runner_stage: a runtime dir the sandboxes cannot reach is refused, naming it") {
  temp_dir tmp;
  const auto source = tmp.path / "runners";
  write(source / "python_runner.py", "");
  fs::create_directories(tmp.path / "closed");
  fs::permissions(tmp.path / "closed", fs::perms(0700));
  const auto runtime = tmp.path / "closed" / "runtime";
  std::string message;
  try {
    runner_stage stage(source.string(), runtime.string());
  } catch (const std::exception& e) {
    message = e.what();
  }
  CHECK(message.find((tmp.path / "closed").string() + " is mode 0700: others cannot search it") !=
        std::string::npos);
  CHECK(message.find("RUNTIME_DIR") != std::string::npos);
  CHECK_THROWS_WITH_AS(runner_stage(source.string(), "relative/dir"), doctest::Contains("absolute"),
                       std::runtime_error);
}

TEST_CASE("unreachable_by_others names the first obstacle") {
  temp_dir tmp;
  write(tmp.path / "a" / "b" / "file", "x");
  CHECK(unreachable_by_others((tmp.path / "a" / "b" / "file").string()) == "");
  fs::permissions(tmp.path / "a" / "b" / "file", fs::perms(0640));
  CHECK(unreachable_by_others((tmp.path / "a" / "b" / "file").string()) ==
        (tmp.path / "a" / "b" / "file").string() + " is mode 0640: others cannot read it");
  fs::permissions(tmp.path / "a", fs::perms(0750));
  CHECK(unreachable_by_others((tmp.path / "a" / "b" / "file").string()) ==
        (tmp.path / "a").string() + " is mode 0750: others cannot search it");
  CHECK(unreachable_by_others((tmp.path / "missing").string()).find("does not exist") !=
        std::string::npos);
}
