#include "core/language.hpp"

#include <doctest/doctest.h>

using namespace codeexec;

TEST_CASE("languages parse case-insensitively with their aliases") {
  CHECK(parse_language("python") == language::python);
  CHECK(parse_language("Python") == language::python);
  CHECK(parse_language("JavaScript") == language::javascript);
  CHECK(parse_language("js") == language::javascript);
  CHECK(parse_language("BASH") == language::bash);
  CHECK(parse_language("sh") == language::bash);
  CHECK(parse_language("TypeScript") == language::typescript);
  CHECK(parse_language("ts") == language::typescript);
  CHECK(parse_language("Java") == language::java);
  CHECK(parse_language("R") == language::r);
  CHECK_FALSE(parse_language("ruby"));
  CHECK_FALSE(parse_language(""));
}

TEST_CASE("canonical names round-trip") {
  for (auto lang : all_languages) CHECK(parse_language(to_string(lang)) == lang);
}
