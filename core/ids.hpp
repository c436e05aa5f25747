// Random identifiers for executions and sandboxes.
#pragma once

#include <string>

namespace codeexec {

/// A random RFC 4122 version-4 UUID, e.g. "3f0c…-4…".
std::string make_uuid();

/// A short random id of lowercase letters and digits (sandbox ids, as E2B's).
std::string make_short_id(std::size_t length = 20);

/// 128 bits from the kernel's CSPRNG as 32 hex digits: a secret (access tokens),
/// unlike the ids, which only need to be unique.
std::string make_secret();

}  // namespace codeexec
