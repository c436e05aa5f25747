#include "actors/e2b_backend.hpp"

#include "core/log.hpp"

#include <caf/all.hpp>

#include <stdexcept>

namespace codeexec {
namespace {

/// How long shutdown waits for the DELETEs of the last sandboxes.
constexpr auto delete_drain = std::chrono::seconds(10);

}  // namespace

e2b_backend::e2b_backend(const config& cfg) : cfg_(cfg), settings_(e2b::make_settings(cfg)) {
  if (settings_.api_key.empty())
    throw std::runtime_error("SANDBOX_BACKEND=e2b needs E2B_API_KEY (an E2B API key, e2b_…)");
  http_.drain_on_exit(delete_drain);
  env_.api = &settings_;
  env_.http = &http_;
  // E2B's own timeout outlasts the longest execution plus the create, so a one-shot
  // sandbox whose DELETE never arrives still ends by itself soon after.
  env_.initial_timeout =
      std::chrono::ceil<std::chrono::seconds>(cfg.max_timeout) + std::chrono::seconds(60);
  env_.metadata = {{"createdBy", "codeexec"}};
  log::info("E2B sandbox backend ready",
            {{"apiUrl", settings_.api_url},
             {"sandboxUrl", settings_.sandbox_url.empty()
                                ? "https://{port}-{sandboxID}." + settings_.domain
                                : settings_.sandbox_url},
             {"template", settings_.template_id}});
}

e2b_backend::~e2b_backend() {
  if (const auto pending = http_.active(); pending > 0)
    log::info("waiting for E2B requests to finish", {{"count", pending}});
}

sandbox_actor e2b_backend::acquire(caf::actor_system& system, language lang,
                                   const resource_limits& limits) {
  ++*live_;
  auto sandbox = system.spawn(e2b_sandbox, env_, lang, limits);
  sandbox->attach_functor([live = live_](const caf::error&) { --*live; });
  return sandbox;
}

std::optional<std::string> e2b_backend::unsupported(const execution_request& request) const {
  if (request.stdin_open || !request.stdin_data.empty()) return std::string{e2b_no_stdin};
  return std::nullopt;
}

bool e2b_backend::has_room(language, const resource_limits&) const {
  return live_->load() < cfg_.max_sandboxes;
}

nlohmann::json e2b_backend::describe() const {
  nlohmann::json languages = nlohmann::json::array();
  for (const auto lang : all_languages)
    languages.push_back({{"language", to_string(lang)}, {"available", true}});
  return {{"backend", "e2b"},
          {"apiUrl", settings_.api_url},
          {"template", settings_.template_id},
          {"languages", std::move(languages)},
          {"capabilities", nlohmann::json::array()},
          {"requestsInFlight", http_.active()},
          {"live", live_->load()}};
}

}  // namespace codeexec
