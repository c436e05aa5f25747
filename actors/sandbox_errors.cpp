#include "actors/sandbox_errors.hpp"

#include <caf/sec.hpp>

namespace codeexec {
namespace {

const auto category = caf::atom("sandbox");

}  // namespace

caf::error make_error(sandbox_errc code, std::string message) {
  return caf::error{static_cast<std::uint8_t>(code), category,
                    caf::make_message(std::move(message))};
}

caf::error make_error(const api_error& err) {
  return caf::error{static_cast<std::uint8_t>(sandbox_errc::backend), category,
                    caf::make_message(err.message, err.code, err.status, err.retry_after_seconds)};
}

api_error to_api_error(const caf::error& err) {
  if (err.category() == category &&
      err.code() == static_cast<std::uint8_t>(sandbox_errc::backend) &&
      err.context().match_elements<std::string, std::string, int, int>()) {
    const auto& ctx = err.context();
    return {ctx.get_as<int>(2), ctx.get_as<std::string>(1), ctx.get_as<std::string>(0),
            ctx.get_as<int>(3)};
  }
  std::string message;
  if (err.context().match_elements<std::string>()) message = err.context().get_as<std::string>(0);
  if (err.category() == category) {
    switch (static_cast<sandbox_errc>(err.code())) {
      case sandbox_errc::unknown_context:
        return {404, "context_not_found", message};
      case sandbox_errc::too_many_contexts:
        return {409, "too_many_contexts", message};
      case sandbox_errc::unavailable_language:
        return {400, "unavailable_language", message};
      case sandbox_errc::start_failed:
        return {503, "sandbox_start_failed", message, 1};
      case sandbox_errc::gone:
        return {404, "sandbox_not_found", message.empty() ? "The sandbox has ended" : message};
      case sandbox_errc::backend:
        return {502, "backend_error", message};
    }
  }
  if (err == caf::sec::request_timeout)
    return {503, "sandbox_busy", "The sandbox did not answer in time; retry shortly", 1};
  // The actor ended while asked: the sandbox is gone.
  return {404, "sandbox_not_found", "The sandbox has ended"};
}

caf::error unknown_context(const std::string& context_id) {
  return make_error(sandbox_errc::unknown_context,
                    "No context '" + context_id + "' in this sandbox");
}

}  // namespace codeexec
