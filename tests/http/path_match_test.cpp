// The routing tables' lookup: path templates, methods, and a wrong method told apart
// from an unknown path.
#include "http/path_match.hpp"

#include <doctest/doctest.h>

using namespace codeexec::http;

namespace {

enum class act { list, create, remove };
constexpr route_row<act> table[] = {
    {"/things", "GET", act::list},
    {"/things", "POST", act::create},
    {"/things/{id}", "DELETE", act::remove},
};

}  // namespace

TEST_CASE("find_route takes the row of the method and path, with the template's values") {
  std::vector<std::string> params;
  bool known = false;
  const auto* row = find_route(table, "DELETE", split_path("/things/t1"), params, known);
  REQUIRE(row);
  CHECK(row->what == act::remove);
  CHECK(known);
  CHECK(params == std::vector<std::string>{"t1"});
  row = find_route(table, "POST", split_path("/things"), params, known);
  REQUIRE(row);
  CHECK(row->what == act::create);
  CHECK(params.empty());
}

TEST_CASE("find_route tells a wrong method from an unknown path") {
  std::vector<std::string> params{"untouched"};
  bool known = false;
  CHECK_FALSE(find_route(table, "PUT", split_path("/things"), params, known));
  CHECK(known);
  CHECK_FALSE(find_route(table, "GET", split_path("/other"), params, known));
  CHECK_FALSE(known);
  // An empty segment never fills a template's value.
  CHECK_FALSE(find_route(table, "DELETE", split_path("/things/"), params, known));
  CHECK(params == std::vector<std::string>{"untouched"});
}
