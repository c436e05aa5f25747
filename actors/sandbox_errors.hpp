// Errors that sandbox actors reply with, and their client-facing form.
#pragma once

#include "core/api_error.hpp"

#include <caf/atom.hpp>
#include <caf/error.hpp>
#include <caf/make_message.hpp>

#include <cstdint>
#include <string>

namespace codeexec {

enum class sandbox_errc : std::uint8_t {
  unknown_context = 1,   ///< no context with that id in the sandbox
  too_many_contexts,     ///< MAX_CONTEXTS_PER_SANDBOX reached
  unavailable_language,  ///< this host cannot run that language
  start_failed,          ///< the sandbox or kernel could not start
  gone,                  ///< the sandbox ended meanwhile
  backend,               ///< the backend (E2B) failed: the context holds the client's error
};

/// A CAF error of the sandbox category, with the client-facing message as context.
caf::error make_error(sandbox_errc code, std::string message);

/// No context `context_id` in the sandbox.
caf::error unknown_context(const std::string& context_id);

/// A backend failure that reaches the client as `err` (status, code, Retry-After kept).
caf::error make_error(const api_error& err);

/// The HTTP form of an error a sandbox actor (or CAF itself) replied with.
api_error to_api_error(const caf::error& err);

}  // namespace codeexec
