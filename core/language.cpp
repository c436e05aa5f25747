#include "core/language.hpp"

#include <algorithm>
#include <cctype>
#include <string>

namespace codeexec {

std::optional<language> parse_language(std::string_view name) {
  std::string lower(name);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (lower == "python") return language::python;
  if (lower == "javascript" || lower == "js") return language::javascript;
  if (lower == "typescript" || lower == "ts") return language::typescript;
  if (lower == "bash" || lower == "sh") return language::bash;
  if (lower == "java") return language::java;
  if (lower == "r") return language::r;
  return std::nullopt;
}

std::string_view to_string(language lang) {
  switch (lang) {
    case language::python:
      return "python";
    case language::javascript:
      return "javascript";
    case language::typescript:
      return "typescript";
    case language::bash:
      return "bash";
    case language::java:
      return "java";
    case language::r:
      return "r";
  }
  return "unknown";
}

}  // namespace codeexec
