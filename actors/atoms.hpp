// The atoms of the service's actor messages. CAF 0.17 atoms are at most 10 characters;
// atoms with the same text are the same type.
#pragma once

#include <caf/atom.hpp>
#include <caf/type_id.hpp>

#define CODEEXEC_ATOM(name, text) CAF_ADD_ATOM(codeexec, codeexec::atom, name, text)

CODEEXEC_ATOM(adopt, "adopt")
CODEEXEC_ATOM(attach, "attach")
CODEEXEC_ATOM(broken, "broken")
CODEEXEC_ATOM(cancel, "cancel")
CODEEXEC_ATOM(close, "close")
CODEEXEC_ATOM(closed, "closed")
CODEEXEC_ATOM(create, "create")
CODEEXEC_ATOM(created, "created")
CODEEXEC_ATOM(deliver, "deliver")
CODEEXEC_ATOM(drain, "drain")
CODEEXEC_ATOM(ended, "ended")
CODEEXEC_ATOM(escalate, "escalate")
CODEEXEC_ATOM(event, "event")
CODEEXEC_ATOM(exited, "exited")
CODEEXEC_ATOM(expire, "expire")
CODEEXEC_ATOM(finish, "finish")
CODEEXEC_ATOM(get, "get")
CODEEXEC_ATOM(input, "input")
CODEEXEC_ATOM(interrupt, "interrupt")
CODEEXEC_ATOM(kill, "kill")
CODEEXEC_ATOM(limit, "limit")
CODEEXEC_ATOM(publish, "publish")
CODEEXEC_ATOM(received, "received")
CODEEXEC_ATOM(remove, "remove")
CODEEXEC_ATOM(reply, "reply")
CODEEXEC_ATOM(restart, "restart")
CODEEXEC_ATOM(retry, "retry")
CODEEXEC_ATOM(run, "run")
CODEEXEC_ATOM(runner, "runner")
CODEEXEC_ATOM(shutdown, "shutdown")
CODEEXEC_ATOM(stop, "stop")
CODEEXEC_ATOM(tick, "tick")
CODEEXEC_ATOM(timeout, "timeout")
CODEEXEC_ATOM(touch, "touch")
CODEEXEC_ATOM(track, "track")

#undef CODEEXEC_ATOM
