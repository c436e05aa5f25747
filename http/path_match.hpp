// Path templates for the routing tables: "/sandboxes/{id}" matches one segment per "{x}".
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace codeexec::http {

/// The segments of "/a/b/c": {"a", "b", "c"}.
std::vector<std::string_view> split_path(std::string_view path);

/// Whether `path` fits `pattern`; fills the values of its "{x}" segments, in order.
bool matches(std::string_view pattern, const std::vector<std::string_view>& path,
             std::vector<std::string>& params);

/// A row of a routing table: a path template, a method and what it does.
template <class Action>
struct route_row {
  std::string_view path;
  std::string_view method;
  Action what;
};

/// The row of `table` that `method` on `path` takes, with its "{x}" values in
/// `params`; nullptr if none. `path_known` tells whether some row has that path (a
/// miss is then a wrong method).
template <class Action, std::size_t N>
const route_row<Action>* find_route(const route_row<Action> (&table)[N], std::string_view method,
                                    const std::vector<std::string_view>& path,
                                    std::vector<std::string>& params, bool& path_known) {
  path_known = false;
  for (const auto& row : table) {
    std::vector<std::string> found;
    if (!matches(row.path, path, found)) continue;
    path_known = true;
    if (row.method != method) continue;
    params = std::move(found);
    return &row;
  }
  return nullptr;
}

}  // namespace codeexec::http
