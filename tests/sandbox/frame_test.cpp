#include "sandbox/frame.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace codeexec::sandbox;

TEST_CASE("frames survive arbitrary chunking") {
  const std::string stream = encode_frame("{\"a\":1}") + encode_frame("") + encode_frame("xyz");
  for (std::size_t chunk = 1; chunk <= stream.size(); ++chunk) {
    frame_decoder dec;
    std::vector<std::string> got;
    for (std::size_t i = 0; i < stream.size(); i += chunk) {
      dec.feed(std::string_view{stream}.substr(i, chunk));
      while (auto f = dec.next()) got.push_back(*f);
    }
    REQUIRE(got.size() == 3);
    CHECK(got[0] == "{\"a\":1}");
    CHECK(got[1].empty());
    CHECK(got[2] == "xyz");
  }
}

TEST_CASE("an oversized frame fails the decoder") {
  frame_decoder dec{16};
  dec.feed(encode_frame(std::string(17, 'x')));
  CHECK_FALSE(dec.next());
  CHECK(dec.failed());
}

TEST_CASE("a UTF-8 sequence cut at the end is held back") {
  const std::string check = "\xe2\x9c\x93";  // U+2713
  CHECK(complete_utf8_prefix("abc") == 3);
  CHECK(complete_utf8_prefix("ab" + check) == 5);
  CHECK(complete_utf8_prefix("ab" + check.substr(0, 2)) == 2);
  CHECK(complete_utf8_prefix("ab" + check.substr(0, 1)) == 2);
  CHECK(complete_utf8_prefix("") == 0);
}
