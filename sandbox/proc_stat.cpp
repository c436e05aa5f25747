#include "sandbox/proc_stat.hpp"

#include "sandbox/unique_fd.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <charconv>
#include <cstdint>
#include <sstream>

namespace codeexec::sandbox {
namespace {

/// Whole small file, opened O_CLOEXEC (std::ifstream is not: another thread's fork+exec
/// would inherit it).
std::string read_small_file(const std::string& path) {
  std::string text;
  unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return text;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd.get(), buf, sizeof buf)) > 0) text.append(buf, static_cast<std::size_t>(n));
  return text;
}

}  // namespace

std::vector<std::string> stat_fields(pid_t pid) {
  const std::string text =
      read_small_file("/proc/" + (pid ? std::to_string(pid) : std::string("self")) + "/stat");
  const auto paren = text.rfind(')');
  if (paren == std::string::npos) return {};
  std::istringstream rest(text.substr(paren + 1));
  std::vector<std::string> fields;
  std::string f;
  while (rest >> f) fields.push_back(f);
  return fields;
}

void find_scrub_ranges(memory_range (&ranges)[2]) {
  const auto f = stat_fields(0);
  if (f.size() < 49) return;
  auto ptr = [](const std::string& s) {
    std::uintptr_t v = 0;
    std::from_chars(s.data(), s.data() + s.size(), v);
    return reinterpret_cast<char*>(v);
  };
  ranges[0] = {ptr(f[45]), ptr(f[46])};
  ranges[1] = {ptr(f[47]), ptr(f[48])};
}

}  // namespace codeexec::sandbox
