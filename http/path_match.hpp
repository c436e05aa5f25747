// Path templates for the routing tables: "/sandboxes/{id}" matches one segment per "{x}".
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace codeexec::http {

/// The segments of "/a/b/c": {"a", "b", "c"}.
std::vector<std::string_view> split_path(std::string_view path);

/// Whether `path` fits `pattern`; fills the values of its "{x}" segments, in order.
bool matches(std::string_view pattern, const std::vector<std::string_view>& path,
             std::vector<std::string>& params);

}  // namespace codeexec::http
