// Asking an actor from outside any actor, without blocking the caller: a short-lived
// actor makes the request and hands the reply (or the error) to a callback, which
// runs on an actor thread.
#pragma once

#include <caf/actor_system.hpp>
#include <caf/error.hpp>
#include <caf/event_based_actor.hpp>

#include <utility>

namespace codeexec {

/// Sends `args...` to `dest` as a request; calls `on_reply` with the reply's values or
/// `on_error` with the error (also on timeout, or if `dest` is gone).
template <class Handle, class OnReply, class OnError, class... Args>
void ask(caf::actor_system& system, const Handle& dest, caf::timespan timeout, OnReply on_reply,
         OnError on_error, Args... args) {
  system.spawn<caf::hidden>([=](caf::event_based_actor* self) {
    self->request(dest, timeout, args...).then(on_reply, [on_error](caf::error& err) {
      on_error(err);
    });
  });
}

/// Calls `then` once `actor` has terminated (on the thread that ended it), at once if
/// it already has. A sandbox actor's state, and with it its processes, is gone by then.
template <class Handle, class Then>
void when_gone(const Handle& actor, Then then) {
  actor->attach_functor([then](const caf::error&) mutable { then(); });
}

}  // namespace codeexec
