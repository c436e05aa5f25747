#include "e2b/remote_sandbox.hpp"

#include "core/log.hpp"

namespace codeexec::e2b {
namespace {

/// Attempts at killing a sandbox before giving up (E2B's own timeout then ends it).
constexpr std::uint32_t kill_attempts = 4;

}  // namespace

remote_sandbox::~remote_sandbox() {
  kill_sandbox(http_, settings_, info_.id);
}

void kill_sandbox(http_client& http, const settings& s, std::string sandbox_id,
                  std::uint32_t attempt) {
  auto request = kill_request(s, sandbox_id);
  request.start_after =
      attempt == 0 ? std::chrono::milliseconds{0} : retry_delay(attempt - 1, std::nullopt, 1.0);
  http.submit_buffered(
      std::move(request), 64 << 10, [&http, &s, sandbox_id, attempt](http_response response) {
        const auto status = response.result.status;
        if (response.result.completed() && (status == 204 || status == 200 || status == 404)) {
          // 404: E2B had already ended it (its timeout), which is what we wanted.
          log::info("E2B sandbox killed", {{"e2bSandboxId", sandbox_id}, {"status", status}});
          return;
        }
        if (!response.result.cancelled && transient(response) && attempt + 1 < kill_attempts) {
          kill_sandbox(http, s, sandbox_id, attempt + 1);
          return;
        }
        log::error("could not kill an E2B sandbox: E2B ends it at its own timeout",
                   {{"e2bSandboxId", sandbox_id},
                    {"error", call_error("kill a sandbox", response).message}});
      });
}

}  // namespace codeexec::e2b
