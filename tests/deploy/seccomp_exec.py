#!/usr/bin/python3
"""Runs a command under a Docker-format seccomp profile, compiled the way runc does it
(libseccomp, through Debian's python3-seccomp): what `--security-opt seccomp=FILE`
applies to a container's processes, without Docker.

    /usr/bin/python3 tests/deploy/seccomp_exec.py docker/seccomp.json -- CMD [ARGS...]
    /usr/bin/python3 tests/deploy/seccomp_exec.py --pfc docker/seccomp.json   # print the filter

As runc: rules whose action equals the default action are skipped, names libseccomp
does not know are skipped, the native architecture plus the archMap's
subArchitectures for it are added. --no-new-privs sets NO_NEW_PRIVS first, as
`security_opt: no-new-privileges:true` does. Only the seccomp layer of a container is
reproduced: not its capabilities, AppArmor, masked paths or cgroups.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import sys

import seccomp  # python3-seccomp

_PR_SET_NO_NEW_PRIVS = 38


def action_of(name: str, errno_ret) -> int:
    errno_ret = 1 if errno_ret is None else int(errno_ret)  # runc: EPERM
    if name == "SCMP_ACT_ALLOW":
        return seccomp.ALLOW
    if name == "SCMP_ACT_ERRNO":
        return seccomp.ERRNO(errno_ret)
    if name in ("SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD"):
        return seccomp.KILL
    if name == "SCMP_ACT_KILL_PROCESS":
        return seccomp.KILL_PROCESS
    if name == "SCMP_ACT_TRAP":
        return seccomp.TRAP
    if name == "SCMP_ACT_LOG":
        return seccomp.LOG
    if name == "SCMP_ACT_TRACE":
        return seccomp.TRACE(errno_ret)
    raise ValueError(f"unsupported seccomp action {name}")


def arch_of(name: str):
    return getattr(seccomp.Arch, name.removeprefix("SCMP_ARCH_"))


_OPS = {
    "SCMP_CMP_NE": seccomp.NE, "SCMP_CMP_LT": seccomp.LT, "SCMP_CMP_LE": seccomp.LE,
    "SCMP_CMP_EQ": seccomp.EQ, "SCMP_CMP_GE": seccomp.GE, "SCMP_CMP_GT": seccomp.GT,
    "SCMP_CMP_MASKED_EQ": seccomp.MASKED_EQ,
}


def build_filter(profile: dict) -> tuple[seccomp.SyscallFilter, list[str]]:
    """The filter, and the names that were skipped as unknown."""
    default = action_of(profile["defaultAction"], profile.get("defaultErrnoRet"))
    f = seccomp.SyscallFilter(default)
    f.set_attr(seccomp.Attr.CTL_NNP, 0)  # runc sets NO_NEW_PRIVS on its own, if asked
    native = seccomp.system_arch()  # unsigned; the Arch constants are signed
    arches = [arch_of(a) for a in profile.get("architectures", [])]
    for entry in profile.get("archMap", []):
        if arch_of(entry["architecture"]) & 0xFFFFFFFF == native:
            arches += [arch_of(a) for a in entry.get("subArchitectures", [])]
    for a in arches:
        if not f.exist_arch(a):
            f.add_arch(a)
    skipped: list[str] = []
    for rule in profile.get("syscalls", []):
        if rule.get("includes") or rule.get("excludes"):
            raise ValueError("includes/excludes (capability- or kernel-dependent rules) are not "
                             "supported by this tool")
        act = action_of(rule["action"], rule.get("errnoRet"))
        if act == default:
            continue
        args = [seccomp.Arg(a["index"], _OPS[a["op"]], a["value"], a.get("valueTwo", 0))
                for a in rule.get("args") or []]
        for name in rule.get("names", []) + ([rule["name"]] if "name" in rule else []):
            if seccomp.resolve_syscall(seccomp.Arch.NATIVE, name) == -1:
                skipped.append(name)
                continue
            f.add_rule(act, name, *args)
    return f, skipped


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("profile")
    ap.add_argument("--pfc", action="store_true", help="print the compiled filter and exit")
    ap.add_argument("--no-new-privs", action="store_true")
    ap.add_argument("command", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    with open(args.profile, encoding="utf-8") as fh:
        profile = json.load(fh)
    f, skipped = build_filter(profile)
    if skipped:
        print(f"seccomp_exec: unknown syscalls skipped: {' '.join(skipped)}", file=sys.stderr)
    if args.pfc:
        f.export_pfc(sys.stdout)
        return 0
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        ap.error("no command")
    if args.no_new_privs:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
    f.load()
    os.execvp(command[0], command)
    return 127


if __name__ == "__main__":
    sys.exit(main())
