#include "actors/terminator.hpp"

#include <caf/all.hpp>

#include <algorithm>

namespace codeexec {
namespace {

using pointer = terminator_actor::stateful_pointer<terminator_state>;

/// Answers the shutdown request with the number of actors still alive, and ends.
void finish(pointer self) {
  auto& st = self->state;
  if (st.promise.pending()) st.promise.deliver(static_cast<std::uint64_t>(st.remaining.size()));
  self->quit();
}

}  // namespace

terminator_actor::behavior_type terminator(pointer self, caf::timespan grace,
                                           caf::timespan kill_timeout) {
  self->state.grace = grace;
  self->state.kill_timeout = kill_timeout;
  self->set_down_handler([self](const caf::down_msg& msg) {
    auto& remaining = self->state.remaining;
    remaining.erase(std::remove_if(remaining.begin(), remaining.end(),
                                   [&](const caf::actor& a) { return a.address() == msg.source; }),
                    remaining.end());
    if (remaining.empty()) finish(self);
  });
  return {
      [self](atom::shutdown, std::vector<caf::actor>& actors) {
        auto& st = self->state;
        st.promise = self->make_response_promise<std::uint64_t>();
        // An actor that is already gone is reported down at once by monitor.
        for (auto& a : actors) {
          if (!a) continue;
          self->monitor(a);
          self->send_exit(a, caf::exit_reason::user_shutdown);
          st.remaining.push_back(std::move(a));
        }
        if (st.remaining.empty()) {
          finish(self);
          return st.promise;
        }
        self->delayed_send(self, st.grace, atom::kill_v);
        return st.promise;
      },
      [self](atom::kill) {
        // The grace passed: what still lives is ended without its cooperation.
        for (const auto& a : self->state.remaining) self->send_exit(a, caf::exit_reason::kill);
        self->delayed_send(self, self->state.kill_timeout, atom::stop_v);
      },
      [self](atom::stop) {
        // Even kill did not end them (stuck in a handler): report and stop waiting.
        finish(self);
      },
  };
}

}  // namespace codeexec
