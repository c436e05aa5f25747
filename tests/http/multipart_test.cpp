// multipart/form-data as the E2B SDK (undici's FormData) sends files.
#include "http/multipart.hpp"

#include <doctest/doctest.h>

using namespace codeexec::http;

namespace {

std::string body_of(std::string_view boundary,
                    std::initializer_list<std::pair<std::string, std::string>> files) {
  std::string body;
  for (const auto& [name, data] : files)
    body += "--" + std::string{boundary} +
            "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"" + name +
            "\"\r\nContent-Type: application/octet-stream\r\n\r\n" + data + "\r\n";
  return body + "--" + std::string{boundary} + "--\r\n";
}

}  // namespace

TEST_CASE("the boundary comes from a multipart content type, quoted or not") {
  CHECK(multipart_boundary("multipart/form-data; boundary=----abc") == "----abc");
  CHECK(multipart_boundary("Multipart/Form-Data; charset=utf-8; boundary=\"a;b\"") == "a;b");
  CHECK_FALSE(multipart_boundary("application/octet-stream").has_value());
  CHECK_FALSE(multipart_boundary("multipart/form-data").has_value());
  CHECK_FALSE(multipart_boundary("multipart/form-data; boundary=").has_value());
}

TEST_CASE("parts keep their names, filenames and exact bytes") {
  const std::string binary{"\0\r\n--x\r\n\xff", 9};
  const auto body = body_of("XyZ", {{"/home/user/a.txt", "hello"}, {"b/c.bin", binary}});
  auto parts = parse_multipart(body, "XyZ");
  REQUIRE(parts.has_value());
  REQUIRE(parts->size() == 2);
  CHECK((*parts)[0].name == "file");
  CHECK((*parts)[0].filename == "/home/user/a.txt");
  CHECK((*parts)[0].body == "hello");
  CHECK((*parts)[1].filename == "b/c.bin");
  CHECK((*parts)[1].body == binary);
}

TEST_CASE("an empty part and a quoted filename with escapes") {
  const std::string body =
      "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"we\\\"ird; name\"\r\n"
      "\r\n\r\n--b--";
  auto parts = parse_multipart(body, "b");
  REQUIRE(parts.has_value());
  REQUIRE(parts->size() == 1);
  CHECK((*parts)[0].filename == "we\"ird; name");
  CHECK((*parts)[0].body.empty());
}

TEST_CASE("malformed bodies are refused, not misread") {
  CHECK_FALSE(parse_multipart("no delimiter at all", "b").has_value());
  CHECK_FALSE(parse_multipart("--b\r\nContent-Disposition: form-data\r\n\r\nunterminated", "b")
                  .has_value());
  CHECK_FALSE(parse_multipart("--b\r\nX-Other: 1\r\n\r\ndata\r\n--b--", "b").has_value());
  CHECK_FALSE(parse_multipart("--bgarbage", "b").has_value());
}
