#include "http/playground.hpp"

#include "http/embedded.hpp"

namespace codeexec::http::playground {

std::optional<asset> find(std::string_view file) {
  if (file.empty()) return asset{embedded::playground_html, "text/html; charset=utf-8"};
  if (file == "playground.js")
    return asset{embedded::playground_js, "text/javascript; charset=utf-8"};
  if (file == "playground.css") return asset{embedded::playground_css, "text/css; charset=utf-8"};
  return std::nullopt;
}

bool serves(std::string_view setting, bool loopback_client) {
  return setting == "on" || (setting == "auto" && loopback_client);
}

}  // namespace codeexec::http::playground
