// The JSON shapes of E2B's API (docs/reference/e2b-protocol.md §1, §3), built
// from the service's own vocabulary: what the E2B-compatible listener sends.
#pragma once

#include "core/api_error.hpp"
#include "core/execution.hpp"
#include "core/language.hpp"
#include "core/sandbox_spec.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace codeexec::http::e2b {

/// The envd version we claim: new enough that the SDK uses every file feature we serve
/// (multipart and octet-stream uploads, the default user).
inline constexpr std::string_view envd_version = "0.5.7";
/// E2B's code interpreter template, what the SDK asks for by default.
inline constexpr std::string_view default_template = "code-interpreter-v1";

/// One NDJSON line of the Code Interpreter's /execute (§3.1), with its newline.
std::string event_line(const kernel_event& event, std::int64_t unix_us);
std::string execution_count_line(std::uint64_t count);
std::string keepalive_line();
std::string end_of_execution_line();

/// Control-plane error body: {"code": status, "message"} (§1).
std::string control_error(const api_error& err);
/// The edge proxy's 502 body for a data-plane request it cannot pass on (§2).
nlohmann::json edge_proxy_error(std::string_view sandbox_id, std::string_view message);
/// The edge proxy's body for a data-plane request to a sandbox that is gone (§2).
nlohmann::json sandbox_not_found(std::string_view sandbox_id);

/// What the E2B side knows of one of our sandboxes.
using sandbox_identity = e2b_identity;

/// `Sandbox` (create, connect) from our sandbox.
nlohmann::json sandbox_json(const sandbox_info& ours, const sandbox_identity& who);
/// `ListedSandbox` (GET /v2/sandboxes).
nlohmann::json listed_sandbox_json(const sandbox_info& ours, const sandbox_identity& who);
/// `SandboxDetail` (GET /sandboxes/{id}).
nlohmann::json sandbox_detail_json(const sandbox_info& ours, const sandbox_identity& who);

/// `Context` {id, language, cwd} from our context.
nlohmann::json context_json(const context_info& ours);

/// The Code Interpreter's language normalization (§3.2): trimmed, case-insensitive,
/// js/ts aliases, empty means python. Nothing for a language we do not know.
std::optional<language> normalize_language(std::string_view name);

}  // namespace codeexec::http::e2b
