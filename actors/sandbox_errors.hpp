// The service's error codes (core/service_error.hpp) as CAF errors, as VAST registers
// its `ec`: what actors reply with, and its way back to the facade's service_error.
#pragma once

#include "core/service_error.hpp"

#include <caf/atom.hpp>
#include <caf/error.hpp>
#include <caf/make_message.hpp>

#include <string>

CAF_ERROR_CODE_ENUM(codeexec::ec, "codeexec")

namespace codeexec {

/// A CAF error with `code`, the message as its context.
caf::error make_error(ec code, std::string message);

/// A service error as a CAF error (the retry hint kept).
caf::error make_error(const service_error& err);

/// No context `context_id` in the sandbox.
caf::error unknown_context(const std::string& context_id);

/// The service error an actor (or CAF itself: timeout, actor gone) replied with.
service_error to_service_error(const caf::error& err);

/// The refusal for an unknown context, as cells and replies give it.
service_error unknown_context_error(const std::string& context_id);

}  // namespace codeexec
