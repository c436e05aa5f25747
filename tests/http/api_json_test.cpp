// The service's errors and domain types as the native API shows them.
#include "http/api_json.hpp"

#include <doctest/doctest.h>

using namespace codeexec;

TEST_CASE("service errors become the API's statuses, codes and Retry-After") {
  auto api = http::to_api_error({ec::context_not_found, "No context 'c'", 0});
  CHECK(api.status == 404);
  CHECK(api.code == "context_not_found");
  CHECK(api.message == "No context 'c'");
  CHECK(api.retry_after_seconds == 0);

  api = http::to_api_error({ec::key_sandbox_limit, "full", 0});
  CHECK(api.status == 429);
  CHECK(api.code == "too_many_sandboxes");
  CHECK(api.retry_after_seconds == 1);
  api = http::to_api_error({ec::sandbox_limit, "full", 0});
  CHECK(api.status == 503);
  CHECK(api.code == "too_many_sandboxes");

  CHECK(http::to_api_error({ec::shutting_down, "", 0}).retry_after_seconds == 5);
  // A retry hint from the cause (E2B's Retry-After) wins over the code's default.
  CHECK(http::to_api_error({ec::e2b_rate_limited, "", 7}).retry_after_seconds == 7);
  CHECK(http::to_api_error({ec::sandbox_ended, "", 0}).code == "sandbox_not_found");
  CHECK(http::to_api_error({ec::files_not_supported, "", 0}).status == 501);
  CHECK(http::to_api_error({ec::file_too_large, "", 0}).status == 413);
  CHECK(http::to_api_error({ec::e2b_sandbox_gone, "", 0}).status == 410);
}

TEST_CASE("a sandbox, its contexts and a listing in the native shapes") {
  sandbox_info s;
  s.id = "abc";
  s.lang = language::javascript;
  s.created = std::chrono::system_clock::time_point{std::chrono::milliseconds{1795694400000}};
  s.expires = s.created + std::chrono::minutes(5);
  s.metadata = {{"k", "v"}};
  const auto json = http::sandbox_json(s);
  CHECK(json["sandboxId"] == "abc");
  CHECK(json["language"] == "javascript");
  CHECK(json["state"] == "running");
  CHECK(json["createdAt"] == "2026-11-26T12:00:00.000Z");
  CHECK(json["expiresAt"] == "2026-11-26T12:05:00.000Z");
  CHECK(json["metadata"]["k"] == "v");
  CHECK(json["limits"]["memoryMb"] == s.limits.memory_bytes >> 20);
  CHECK(http::sandboxes_json({s, s})["sandboxes"].size() == 2);

  context_info c{"ctx", language::python, "/home/user", true, 1, 2};
  CHECK(http::context_json(c) == nlohmann::json{{"id", "ctx"},
                                                {"language", "python"},
                                                {"cwd", "/home/user"},
                                                {"default", true},
                                                {"running", 1},
                                                {"queued", 2}});

  sandbox::dir_listing listing;
  listing.entries.push_back({"a.txt", "/home/user/a.txt", sandbox::entry_type::file, 3, 0644});
  const auto files = http::file_listing_json("/home/user", listing);
  CHECK(files["path"] == "/home/user");
  CHECK(files["entries"][0]["type"] == "file");
  CHECK(files["truncated"] == false);
}
