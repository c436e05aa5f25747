"""The Python kernel's zygote (the service's sandbox/zygote.hpp).

Started by the service, outside any sandbox, as
`/usr/bin/python3 -I -u python_zygote.py LIBRARY RUNNER_DIR` with the kernel's own
environment and its socket at fd 3. It loads the kernel's modules once, under the
paths a sandbox sees (/opt/runner), then serves forks: each request becomes a sandbox
whose runner continues here, in a copy of this interpreter, exactly where
python_runner.py would have called python_kernel.main().

It never reads user input: requests are parsed by LIBRARY (zygote_server.cpp).
"""

import ctypes
import gc
import os
import random
import signal
import sys
import time
import types

SANDBOX_RUNNER_DIR = "/opt/runner"
SETUP_ERROR_FD = 5  # the runner's setup-error pipe (clone_child.hpp)


def load_runner_module(name, host_dir):
    """Imports runner module `name` from host_dir under its sandbox path, so that its
    RUNNER_DIR, tracebacks and lazy imports name /opt/runner as in an exec'd kernel."""
    path = os.path.join(SANDBOX_RUNNER_DIR, name + ".py")
    with open(os.path.join(host_dir, name + ".py"), "rb") as source:
        code = compile(source.read(), path, "exec")
    module = types.ModuleType(name)
    module.__file__ = path
    sys.modules[name] = module
    exec(code, module.__dict__)
    return module


def become_runner(lib, kernel):
    """In a forked sandbox: what a fresh interpreter would have, then the kernel."""
    try:
        ctypes.pythonapi.PyOS_AfterFork_Child()  # locks, threading state, at-fork hooks
        random.seed()  # also done by random's at-fork hook; explicit, it cannot be missed
        for sig in (signal.SIGPIPE, signal.SIGXFSZ):  # as the interpreter's start sets them
            signal.signal(sig, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        env = lib.codeexec_zygote_env()
        os.environ.clear()
        i = 0
        while env[i] is not None:
            name, _, value = env[i].decode("utf-8", "surrogateescape").partition("=")
            os.environ[name] = value
            i += 1
        time.tzset()  # the sandbox's /etc/localtime and TZ, not the host's
        sys.argv[:] = [os.path.join(SANDBOX_RUNNER_DIR, "python_runner.py")]
        sys.orig_argv[:] = [sys.executable, "-I", "-u", sys.argv[0]]
        if "numpy" in sys.modules:
            sys.modules["numpy"].random.seed()
    except BaseException as error:  # noqa: BLE001 - reported to the host, then exit
        os.write(SETUP_ERROR_FD, f"sandbox setup failed: zygote runner: {error!r}\n".encode())
        os._exit(125)
    os.close(SETUP_ERROR_FD)  # end-of-file: the host sees a started runner
    kernel.main()


def main():
    library, host_runner_dir = sys.argv[1], sys.argv[2]
    lib = ctypes.PyDLL(library)  # PyDLL: the GIL stays held, as around os.fork
    lib.codeexec_zygote_init.argtypes = [ctypes.c_char_p, ctypes.c_int]
    lib.codeexec_zygote_error.restype = ctypes.c_char_p
    lib.codeexec_zygote_env.restype = ctypes.POINTER(ctypes.c_char_p)
    if lib.codeexec_zygote_init(os.fsencode(host_runner_dir), 3) != 0:
        sys.stderr.write("zygote: " + lib.codeexec_zygote_error().decode() + "\n")
        return 1
    load_runner_module("runner_protocol", host_runner_dir)
    kernel = load_runner_module("python_kernel", host_runner_dir)
    sys.argv[:] = [sys.argv[0]]  # nothing of the host's paths for the sandboxes
    gc.collect()
    gc.freeze()  # the collector leaves these objects alone: their pages stay shared
    before = ctypes.pythonapi.PyOS_BeforeFork
    after_parent = ctypes.pythonapi.PyOS_AfterFork_Parent
    if lib.codeexec_zygote_ready() != 0:
        return 1
    while lib.codeexec_zygote_wait() == 1:
        before()
        forked = lib.codeexec_zygote_fork()
        if forked == 0:
            become_runner(lib, kernel)
            os._exit(0)
        after_parent()
        if forked < 0:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
