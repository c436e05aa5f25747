// The languages the service runs, and how requests name them.
#pragma once

#include <array>
#include <optional>
#include <string_view>

namespace codeexec {

enum class language { python, javascript, typescript, bash, java, r };

/// Every language, in the order the API lists them.
inline constexpr std::array all_languages = {language::python,     language::javascript,
                                             language::typescript, language::bash,
                                             language::java,       language::r};

/// Parses a request's language name: case-insensitive, with aliases (js, ts, sh).
std::optional<language> parse_language(std::string_view name);

/// The canonical name ("python", "javascript", "typescript", "bash", "java", "r").
std::string_view to_string(language lang);

/// Human-readable list for error messages.
inline constexpr std::string_view supported_languages =
    "python, javascript (alias js), typescript (alias ts), bash (alias sh), java, r";

}  // namespace codeexec
