// Files the service serves, compiled into the binary by cmake/embed.cmake (see the
// list in CMakeLists.txt): a fresh install serves them with no file to find.
#pragma once

#include <string_view>

namespace codeexec::embedded {

/// docs/openapi.json
extern const std::string_view openapi_json;
/// http/playground/: the page, its script and its stylesheet
extern const std::string_view playground_html;
extern const std::string_view playground_js;
extern const std::string_view playground_css;

}  // namespace codeexec::embedded
