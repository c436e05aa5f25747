// Random identifiers for executions and sandboxes.
#pragma once

#include <string>

namespace codeexec {

/// A random RFC 4122 version-4 UUID, e.g. "3f0c…-4…".
std::string make_uuid();

/// A short random id of lowercase letters and digits (sandbox ids, as E2B's).
std::string make_short_id(std::size_t length = 20);

}  // namespace codeexec
