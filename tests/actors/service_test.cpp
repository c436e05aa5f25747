// The facade's admission rules and shutdown order, without root: the E2B backend
// pointed at a closed port keeps every execution waiting for its sandbox (the create is
// refused and retried) until the test cancels it.
#include "actors/service.hpp"

#include <doctest/doctest.h>

#include <future>

using namespace codeexec;
using namespace std::chrono_literals;

namespace {

struct service_fixture {
  config cfg = [] {
    config c;
    c.backend = backend_kind::e2b;
    c.e2b_api_key = "e2b_test";
    c.e2b_api_url = "http://127.0.0.1:1";
    c.e2b_sandbox_url = "http://127.0.0.1:1";
    c.e2b_create_retries = 1000;
    c.max_concurrent_executions = 2;
    c.key_max_concurrent_executions = 1;
    c.warm_pool_size = 0;
    return c;
  }();
  service svc{cfg};

  /// Starts an execution for `owner`; its report arrives in `done`.
  result<std::string> start(const std::string& owner, std::promise<execution_report>& done) {
    execution_request request;
    request.code = "print(1)";
    request.owner = owner;
    return svc.execute(std::move(request),
                       [&done](execution_report r) { done.set_value(std::move(r)); });
  }
};

ec code_of(const result<std::string>& r) {
  const auto* err = std::get_if<service_error>(&r);
  return err ? err->code : ec::none;
}

}  // namespace

TEST_CASE_FIXTURE(service_fixture, "admission: per key, then service-wide, then shutdown") {
  std::promise<execution_report> a;
  std::promise<execution_report> b;
  std::promise<execution_report> unused;
  REQUIRE(code_of(start("key-1", a)) == ec::none);
  CHECK(code_of(start("key-1", unused)) == ec::key_execution_limit);
  REQUIRE(code_of(start("key-2", b)) == ec::none);
  CHECK(code_of(start("key-3", unused)) == ec::overloaded);

  // No grace: what runs is cancelled, and has reported when shutdown returns.
  svc.shutdown(0ms);
  auto first = a.get_future();
  auto second = b.get_future();
  REQUIRE(first.wait_for(0s) == std::future_status::ready);
  REQUIRE(second.wait_for(0s) == std::future_status::ready);
  CHECK(first.get().result.status == verdict::killed);
  CHECK(second.get().result.status == verdict::killed);
  CHECK(code_of(start("key-1", unused)) == ec::shutting_down);
  CHECK(svc.stop().empty());
}

TEST_CASE_FIXTURE(service_fixture, "unknown sandboxes and executions are named as such") {
  const auto got = svc.get_sandbox("key-1", "nope");
  REQUIRE(std::holds_alternative<service_error>(got));
  CHECK(std::get<service_error>(got).code == ec::sandbox_not_found);
  CHECK_FALSE(svc.has_sandbox("key-1", "nope"));
  CHECK(svc.list_sandboxes("key-1").empty());
  const auto input = svc.send_stdin("key-1", "nope", stdin_request{});
  REQUIRE(input);
  CHECK(input->code == ec::execution_not_found);
  std::promise<std::optional<service_error>> deleted;
  svc.delete_sandbox("key-1", "nope",
                     [&](std::optional<service_error> err) { deleted.set_value(std::move(err)); });
  const auto err = deleted.get_future().get();
  REQUIRE(err);
  CHECK(err->code == ec::sandbox_not_found);
}
