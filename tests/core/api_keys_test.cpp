#include "core/api_keys.hpp"
#include "core/rate_limiter.hpp"

#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>

using namespace codeexec;

TEST_CASE("keys come from the list and the file in order") {
  const std::string path = "/tmp/codeexec-keys-test.txt";
  {
    std::ofstream out(path);
    out << "# ops keys\nfile-key\n\n";
  }
  const auto keys = api_keys::load(" one , two,,", path);
  std::remove(path.c_str());
  CHECK(keys.size() == 3);
  CHECK_FALSE(keys.open());
  CHECK(keys.identify("one") == "key-1");
  CHECK(keys.identify("two") == "key-2");
  CHECK(keys.identify("file-key") == "key-3");
  CHECK_FALSE(keys.identify("on"));
  CHECK_FALSE(keys.identify(""));
  CHECK(api_keys::load("", "").open());
  CHECK_THROWS(api_keys::load("", "/nonexistent/keys"));
}

TEST_CASE("bearer tokens are parsed case-insensitively") {
  CHECK(api_keys::bearer_token("Bearer abc") == "abc");
  CHECK(api_keys::bearer_token("bearer   abc ") == "abc");
  CHECK_FALSE(api_keys::bearer_token("Bearer "));
  CHECK_FALSE(api_keys::bearer_token("Basic abc"));
  CHECK_FALSE(api_keys::bearer_token(""));
}

TEST_CASE("the rate limiter allows a burst then refills at the rate") {
  rate_limiter limiter{2.0, 3.0};
  const auto t0 = rate_limiter::clock::now();
  CHECK(limiter.acquire("k", t0) == 0);
  CHECK(limiter.acquire("k", t0) == 0);
  CHECK(limiter.acquire("k", t0) == 0);
  CHECK(limiter.acquire("k", t0) == 1);
  CHECK(limiter.acquire("other", t0) == 0);
  CHECK(limiter.acquire("k", t0 + std::chrono::milliseconds(500)) == 0);
  CHECK(limiter.acquire("k", t0 + std::chrono::milliseconds(500)) == 1);
  rate_limiter off{0.0, 1.0};
  for (int i = 0; i < 100; ++i) CHECK(off.acquire("k", t0) == 0);
}
