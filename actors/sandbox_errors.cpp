#include "actors/sandbox_errors.hpp"

#include <caf/sec.hpp>

namespace codeexec {

caf::error make_error(ec code, std::string message) {
  return caf::make_error(code, std::move(message), 0);
}

caf::error make_error(const service_error& err) {
  return caf::make_error(err.code, err.message, err.retry_after_seconds);
}

service_error to_service_error(const caf::error& err) {
  if (err.category() == caf::atom("codeexec")) {
    service_error out{static_cast<ec>(err.code()), {}, 0};
    const auto& ctx = err.context();
    if (ctx.match_elements<std::string, int>()) {
      out.message = ctx.get_as<std::string>(0);
      out.retry_after_seconds = ctx.get_as<int>(1);
    }
    if (out.code == ec::sandbox_ended && out.message.empty()) out.message = "The sandbox has ended";
    return out;
  }
  if (err == caf::sec::request_timeout)
    return {ec::sandbox_busy, "The sandbox did not answer in time; retry shortly", 0};
  // The actor ended while asked: the sandbox is gone.
  return {ec::sandbox_ended, "The sandbox has ended", 0};
}

service_error unknown_context_error(const std::string& context_id) {
  return {ec::context_not_found, "No context '" + context_id + "' in this sandbox", 0};
}

caf::error unknown_context(const std::string& context_id) {
  return make_error(unknown_context_error(context_id));
}

}  // namespace codeexec
