// The languages the service runs, and how requests name them.
#pragma once

#include <optional>
#include <string_view>

namespace codeexec {

enum class language { python, javascript, bash };

/// Parses a request's language name: case-insensitive, with aliases (js, sh).
std::optional<language> parse_language(std::string_view name);

/// The canonical name ("python", "javascript", "bash").
std::string_view to_string(language lang);

/// Human-readable list for error messages.
inline constexpr std::string_view supported_languages =
    "python, javascript (alias js), bash (alias sh)";

}  // namespace codeexec
