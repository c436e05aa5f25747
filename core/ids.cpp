#include "core/ids.hpp"

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <random>
#include <stdexcept>

#include <sys/random.h>

namespace codeexec {
namespace {

std::uint64_t random_u64() {
  // One generator per thread, seeded from the kernel: ids are unguessable enough
  // to name resources, and no lock is shared between request threads.
  thread_local std::mt19937_64 gen{[] {
    std::random_device rd;
    std::seed_seq seq{rd(), rd(), rd(), rd(), rd(), rd(), rd(), rd()};
    return std::mt19937_64{seq};
  }()};
  return gen();
}

}  // namespace

std::string make_uuid() {
  std::array<std::uint64_t, 2> v{random_u64(), random_u64()};
  v[0] = (v[0] & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;  // version 4
  v[1] = (v[1] & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;  // variant 10
  char buf[37];
  std::snprintf(buf, sizeof buf, "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(v[0] >> 32),
                static_cast<unsigned>((v[0] >> 16) & 0xffff), static_cast<unsigned>(v[0] & 0xffff),
                static_cast<unsigned>(v[1] >> 48),
                static_cast<unsigned long long>(v[1] & 0xffffffffffffULL));
  return buf;
}

std::string make_short_id(std::size_t length) {
  static constexpr char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string id;
  id.reserve(length);
  for (std::size_t i = 0; i < length; ++i) id += alphabet[random_u64() % (sizeof alphabet - 1)];
  return id;
}

std::string make_secret() {
  std::array<unsigned char, 16> bytes{};
  std::size_t got = 0;
  while (got < bytes.size()) {
    const auto n = ::getrandom(bytes.data() + got, bytes.size() - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error("getrandom failed");
    }
    got += static_cast<std::size_t>(n);
  }
  std::string hex;
  hex.reserve(2 * bytes.size());
  for (const auto b : bytes) {
    static constexpr char digits[] = "0123456789abcdef";
    hex += digits[b >> 4];
    hex += digits[b & 0xf];
  }
  return hex;
}

}  // namespace codeexec
