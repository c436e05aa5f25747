#include "actors/runner_catalog.hpp"

#include <doctest/doctest.h>

using namespace codeexec;

TEST_CASE("a language left out of LANGUAGES is unavailable, and says who turned it off") {
  const runner_catalog catalog{CODEEXEC_SOURCE_DIR "/sandbox/runners", {language::python}};
  CHECK_FALSE(catalog.available(language::javascript));
  const auto spec = catalog.spec(language::javascript, resource_limits{});
  REQUIRE(std::holds_alternative<std::string>(spec));
  CHECK(std::get<std::string>(spec).find("LANGUAGES") != std::string::npos);
  for (const auto& entry : catalog.describe())
    if (entry["language"] == "javascript") CHECK(entry["available"] == false);
  // What the host lacks is not masked by the setting: python stays as the host has it.
  const runner_catalog all{CODEEXEC_SOURCE_DIR "/sandbox/runners"};
  CHECK(catalog.available(language::python) == all.available(language::python));
}
