#!/usr/bin/env python3
"""Checks docker/Dockerfile and docker/docker-compose.yml: the hadolint-style rules
that matter for this image, plus this project's own (the build stage runs the same
scripts as scripts/run, the ports agree, the sandbox's run options are set).

    /usr/bin/python3 tests/deploy/check_dockerfile.py                  # the repo's files
    /usr/bin/python3 tests/deploy/check_dockerfile.py path/Dockerfile  # another one

Prints one `file:line: RULE message` per finding; exits 1 if there is any.

Dockerfile rules (DFxxx, generic; the hadolint rule they follow in brackets):
  DF001 unknown instruction            DF002 MAINTAINER is deprecated [DL4000]
  DF003 FROM without a pinned tag, or :latest [DL3006, DL3007]
  DF004 duplicate or unknown stage name [DL3024, DL3022]
  DF005 apt-get install without -y [DL3014]
  DF006 apt-get install without --no-install-recommends [DL3015]
  DF007 apt-get lists not removed in the same RUN [DL3009]
  DF008 apt-get update in a RUN without install, or install without update
  DF009 `apt` instead of apt-get, or apt-get (dist-)upgrade [DL3027, DL3005]
  DF010 sudo [DL3004]                  DF011 cd in RUN, use WORKDIR [DL3003]
  DF012 relative WORKDIR [DL3000]
  DF013 COPY/ADD source missing from the build context, or excluded by .dockerignore
  DF014 COPY --from names no earlier stage [DL3022]
  DF015 ADD of a local file, use COPY [DL3020]
  DF016 several sources but the destination does not end in / [DL3021]
  DF017 CMD/ENTRYPOINT/HEALTHCHECK CMD in shell form [DL3025]
  DF018 more than one CMD/ENTRYPOINT/HEALTHCHECK in a stage [DL4003, DL4004]
  DF019 EXPOSE of an invalid port      DF020 legacy `ENV key value` form
  DF021 a secret-looking ENV/ARG with a value baked into the image
  DF022 the final stage has no HEALTHCHECK (or HEALTHCHECK NONE)
  DF023 unparsable instruction (bad JSON array, heredoc, trailing continuation)
Project rules (CExxx):
  CE001 the first stage must run scripts/deps and the exact scripts/build command of
        scripts/run (so that CI, which runs those scripts, exercises the image build)
  CE002 EXPOSE of the final stage = its ENV PORT = PORT of .env.example
  CE003 the final stage installs every runtime package of scripts/deps
  CE004 the final stage has STOPSIGNAL SIGTERM (what the service handles)
Compose rules (CCxxx), docker/docker-compose.yml:
  CC001 parses, has services.codeexec  CC002 unknown service key (typo)
  CC003 security_opt: seccomp=<existing file>, apparmor=unconfined, systempaths=unconfined
  CC004 cgroup: private (or privileged: true)
  CC005 stop_grace_period longer than the service's 10 s shutdown grace
  CC006 restart policy                 CC007 healthcheck with a test
  CC008 PORT and E2B_API_KEY come from the environment
  CC009 build.dockerfile is the checked Dockerfile, the published container port is PORT
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

REPO = Path(__file__).resolve().parents[2]

KNOWN_INSTRUCTIONS = {
    "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK",
    "LABEL", "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME",
    "WORKDIR",
}
SECRET_NAME = re.compile(r"(KEY|SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL)S?$", re.I)
SHUTDOWN_GRACE_S = 10  # main.cpp / SHUTDOWN_GRACE_MS default


@dataclass
class Finding:
    file: str
    line: int
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.rule} {self.message}"


@dataclass
class Instruction:
    line: int      # 1-based line of the keyword
    keyword: str   # upper case
    args: str      # everything after the keyword, continuation lines joined


@dataclass
class Stage:
    index: int
    line: int
    base: str
    name: Optional[str]
    instructions: list[Instruction] = field(default_factory=list)


# ----------------------------------------------------------------------------
# Parsing
# ----------------------------------------------------------------------------

def parse_dockerfile(text: str) -> tuple[list[Instruction], list[tuple[int, str, str]]]:
    """Logical instructions (comments dropped, continuations joined) and parse errors
    as (line, rule, message)."""
    errors: list[tuple[int, str, str]] = []
    lines = text.split("\n")
    escape = "\\"
    i = 0
    # Parser directives: only at the very top, before any other comment or instruction.
    while i < len(lines):
        m = re.match(r"^#\s*([a-zA-Z]+)\s*=\s*(\S+)\s*$", lines[i])
        if not m:
            break
        if m.group(1).lower() == "escape":
            escape = m.group(2)
        i += 1
    out: list[Instruction] = []
    while i < len(lines):
        raw = lines[i]
        start = i
        i += 1
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        parts = [raw.rstrip()]
        while parts[-1].endswith(escape):
            parts[-1] = parts[-1][: -len(escape)]
            # Comment and blank lines inside a continuation are dropped, as Docker does.
            while i < len(lines) and (not lines[i].strip() or lines[i].lstrip().startswith("#")):
                i += 1
            if i >= len(lines):
                errors.append((start + 1, "DF023", "the file ends inside a line continuation"))
                break
            parts.append(lines[i].rstrip())
            i += 1
        logical = " ".join(p.strip() for p in parts)
        keyword, _, args = logical.partition(" ")
        if "<<" in args and re.search(r"<<-?\s*['\"]?[A-Za-z_]+['\"]?\s*$", args.split("\n")[0]):
            errors.append((start + 1, "DF023", "heredocs are not supported by this checker"))
        out.append(Instruction(start + 1, keyword.upper(), args.strip()))
    return out, errors


def split_flags(args: str) -> tuple[dict[str, str], str]:
    """Leading --name[=value] flags of an instruction, and the rest."""
    flags: dict[str, str] = {}
    rest = args
    while True:
        m = re.match(r"^--([a-zA-Z-]+)(?:=(\S*))?\s*", rest)
        if not m:
            return flags, rest
        flags[m.group(1)] = m.group(2) if m.group(2) is not None else ""
        rest = rest[m.end():]


def json_array(args: str) -> Optional[list[str]]:
    if not args.lstrip().startswith("["):
        return None
    try:
        value = json.loads(args)
    except json.JSONDecodeError:
        return None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return None


def shell_commands(script: str) -> list[list[str]]:
    """Simple commands of a shell script: word lists split at && || ; | and newlines.
    Good enough for RUN lines (no nested quoting tricks)."""
    lex = shlex.shlex(script, posix=True, punctuation_chars=";&|")
    lex.whitespace_split = True
    commands: list[list[str]] = [[]]
    try:
        for tok in lex:
            if tok and set(tok) <= set(";&|"):
                commands.append([])
            else:
                commands[-1].append(tok)
    except ValueError:  # unbalanced quotes: fall back to whitespace
        return [script.split()]
    cmds = [c for c in commands if c]
    # `VAR=value cmd ...`: drop leading assignments; `env A=b cmd`: the same.
    result = []
    for c in cmds:
        while c and (re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", c[0]) or c[0] == "env"):
            c = c[1:]
        if c:
            result.append(c)
    return result


def stages_of(instructions: list[Instruction]) -> list[Stage]:
    stages: list[Stage] = []
    for ins in instructions:
        if ins.keyword == "FROM":
            _, rest = split_flags(ins.args)
            words = rest.split()
            base = words[0] if words else ""
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(Stage(len(stages), ins.line, base, name.lower() if name else None))
        elif stages:
            stages[-1].instructions.append(ins)
    return stages


def apt_install_packages(stage: Stage) -> list[str]:
    """Package names given to `apt-get install` in the stage's RUN instructions."""
    pkgs: list[str] = []
    for ins in stage.instructions:
        if ins.keyword != "RUN":
            continue
        for cmd in shell_commands(ins.args):
            if cmd[0] == "apt-get" and "install" in cmd:
                after = cmd[cmd.index("install") + 1:]
                pkgs += [w for w in after if not w.startswith("-")]
    return pkgs


def env_defaults(stage: Stage) -> dict[str, str]:
    env: dict[str, str] = {}
    for ins in stage.instructions:
        if ins.keyword == "ENV":
            try:
                words = shlex.split(ins.args)
            except ValueError:
                continue
            if words and "=" not in words[0] and len(words) >= 2:
                env[words[0]] = " ".join(words[1:])
            else:
                for w in words:
                    k, _, v = w.partition("=")
                    env[k] = v
    return env


# ----------------------------------------------------------------------------
# .dockerignore (moby/patternmatcher semantics: last match wins, `!` re-includes,
# a match on a directory excludes everything below it)
# ----------------------------------------------------------------------------

def _pattern_regex(pattern: str) -> re.Pattern:
    out = ""
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**", i):
            i += 2
            if pattern.startswith("/", i):  # "**/" also matches nothing
                i += 1
                out += "(?:.*/)?"
            else:
                out += ".*"
            continue
        if c == "*":
            out += "[^/]*"
        elif c == "?":
            out += "[^/]"
        elif c == "[":
            j = pattern.find("]", i)
            if j < 0:
                out += re.escape(c)
            else:
                out += pattern[i:j + 1].replace("[!", "[^")
                i = j
        else:
            out += re.escape(c)
        i += 1
    return re.compile("^" + out + "$")


def load_dockerignore(context: Path) -> list[tuple[bool, re.Pattern]]:
    path = context / ".dockerignore"
    rules: list[tuple[bool, re.Pattern]] = []
    if not path.exists():
        return rules
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        if negate:
            line = line[1:].strip()
        line = os.path.normpath(line).lstrip("/")
        rules.append((negate, _pattern_regex(line)))
    return rules


def ignored(rel: str, rules: list[tuple[bool, re.Pattern]]) -> bool:
    rel = os.path.normpath(rel)
    if rel == ".":
        return False
    parts = rel.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    excluded = False
    for negate, rx in rules:
        if any(rx.match(c) for c in candidates):
            excluded = not negate
    return excluded


# ----------------------------------------------------------------------------
# Dockerfile checks
# ----------------------------------------------------------------------------

def check_dockerfile(path: Path, context: Path, repo: Path = REPO,
                     project_rules: bool = True) -> list[Finding]:
    rel_name = str(path)
    findings: list[Finding] = []

    def add(line: int, rule: str, message: str):
        findings.append(Finding(rel_name, line, rule, message))

    instructions, errors = parse_dockerfile(path.read_text())
    for line, rule, message in errors:
        add(line, rule, message)
    stages = stages_of(instructions)
    if not stages:
        add(1, "DF001", "no FROM instruction")
        return findings
    if instructions[0].keyword not in ("FROM", "ARG"):
        add(instructions[0].line, "DF001", "the first instruction must be FROM (or ARG)")
    ignore_rules = load_dockerignore(context)

    seen_names: dict[str, int] = {}
    for st in stages:
        # FROM
        if st.name:
            if st.name in seen_names:
                add(st.line, "DF004", f"stage name '{st.name}' used twice")
            seen_names.setdefault(st.name, st.index)
        base = st.base
        if base.lower() in seen_names and seen_names[base.lower()] < st.index:
            pass  # FROM an earlier stage
        elif base == "scratch":
            pass
        elif "$" in base:
            add(st.line, "DF003", f"FROM {base}: the base image must be written out, not a variable")
        elif "@sha256:" in base:
            pass
        else:
            last = base.rsplit("/", 1)[-1]
            if ":" not in last:
                add(st.line, "DF003", f"FROM {base}: pin a tag (e.g. debian:12)")
            elif last.rsplit(":", 1)[1] == "latest":
                add(st.line, "DF003", f"FROM {base}: 'latest' is not a pinned tag")

        counts: dict[str, list[int]] = {}
        for ins in st.instructions:
            kw = ins.keyword
            if kw not in KNOWN_INSTRUCTIONS:
                add(ins.line, "DF001", f"unknown instruction {kw}")
                continue
            counts.setdefault(kw, []).append(ins.line)
            if kw == "MAINTAINER":
                add(ins.line, "DF002", "MAINTAINER is deprecated; use LABEL org.opencontainers.image.authors=...")
            elif kw == "RUN":
                check_run(ins, add)
            elif kw == "WORKDIR":
                if not ins.args.startswith("/") and not ins.args.startswith("$"):
                    add(ins.line, "DF012", f"WORKDIR {ins.args}: use an absolute path")
            elif kw in ("COPY", "ADD"):
                check_copy(ins, st, seen_names, context, ignore_rules, add)
            elif kw in ("CMD", "ENTRYPOINT"):
                if json_array(ins.args) is None:
                    add(ins.line, "DF017", f"{kw} in shell form: use the JSON (exec) form so that "
                        "the process gets the stop signal")
            elif kw == "HEALTHCHECK":
                _, rest = split_flags(ins.args)
                if rest.upper() != "NONE":
                    if not rest.upper().startswith("CMD"):
                        add(ins.line, "DF023", "HEALTHCHECK needs CMD or NONE")
                    elif json_array(rest[3:].strip()) is None:
                        add(ins.line, "DF017", "HEALTHCHECK CMD in shell form: use the JSON (exec) form")
            elif kw == "EXPOSE":
                for port in ins.args.split():
                    m = re.match(r"^(\d+)(?:-(\d+))?(?:/(tcp|udp|sctp))?$", port)
                    if not m or not all(1 <= int(p) <= 65535 for p in m.groups()[:2] if p):
                        add(ins.line, "DF019", f"EXPOSE {port}: not a port (1-65535[/tcp|udp])")
            elif kw in ("ENV", "ARG"):
                check_env(ins, add)
        for kw in ("CMD", "ENTRYPOINT", "HEALTHCHECK"):
            if len(counts.get(kw, [])) > 1:
                add(counts[kw][1], "DF018", f"more than one {kw} in stage {st.name or st.index}: "
                    "only the last one counts")

    final = stages[-1]
    health = [i for i in final.instructions if i.keyword == "HEALTHCHECK"]
    if not health or split_flags(health[-1].args)[1].upper() == "NONE":
        add(final.line, "DF022", "the final stage has no HEALTHCHECK")
    if project_rules:
        check_project(stages, repo, add)
    return findings


def check_run(ins: Instruction, add) -> None:
    cmds = shell_commands(ins.args)
    has_update = has_install = False
    for cmd in cmds:
        prog = cmd[0]
        if prog == "sudo":
            add(ins.line, "DF010", "sudo in RUN: the build already runs as root (or use USER)")
        if prog == "cd":
            add(ins.line, "DF011", "cd in RUN: use WORKDIR")
        if prog == "apt":
            add(ins.line, "DF009", "use apt-get, not apt (no stable CLI)")
        if prog != "apt-get":
            continue
        sub = [w for w in cmd[1:] if not w.startswith("-")]
        verb = sub[0] if sub else ""
        if verb in ("upgrade", "dist-upgrade", "full-upgrade"):
            add(ins.line, "DF009", f"apt-get {verb}: update the base image instead")
        if verb == "update":
            has_update = True
        if verb == "install":
            has_install = True
            opts = [w for w in cmd[1:] if w.startswith("-")]
            if not any(o in ("-y", "--yes", "--assume-yes", "-qqy", "-yqq") or
                       re.match(r"^-[a-z]*y[a-z]*$", o) for o in opts):
                add(ins.line, "DF005", "apt-get install without -y")
            if "--no-install-recommends" not in opts:
                add(ins.line, "DF006", "apt-get install without --no-install-recommends")
    if has_install:
        if not re.search(r"rm\s+-[a-zA-Z]*r[a-zA-Z]*\s+(?:\S+\s+)*/var/lib/apt/lists/?\*?", ins.args):
            add(ins.line, "DF007", "apt-get install: remove /var/lib/apt/lists/* in the same RUN")
        if not has_update:
            add(ins.line, "DF008", "apt-get install without apt-get update in the same RUN "
                "(a cached update layer gives stale lists)")
    elif has_update:
        add(ins.line, "DF008", "apt-get update alone in a RUN: its layer is cached and goes stale")


def check_copy(ins: Instruction, st: Stage, stage_names: dict[str, int], context: Path,
               ignore_rules, add) -> None:
    flags, rest = split_flags(ins.args)
    words = json_array(rest)
    if words is None:
        try:
            words = shlex.split(rest)
        except ValueError:
            add(ins.line, "DF023", f"{ins.keyword}: unbalanced quotes")
            return
    if len(words) < 2:
        add(ins.line, "DF023", f"{ins.keyword} needs a source and a destination")
        return
    sources, dest = words[:-1], words[-1]
    if len(sources) > 1 and not dest.endswith("/"):
        add(ins.line, "DF016", f"{ins.keyword} with several sources: end the destination with /")
    if "from" in flags:
        ref = flags["from"].lower()
        if ref.isdigit():
            if int(ref) >= st.index:
                add(ins.line, "DF014", f"--from={ref}: no earlier stage with that index")
        elif ref in stage_names:
            if stage_names[ref] >= st.index:
                add(ins.line, "DF014", f"--from={ref}: that stage is not an earlier one")
        elif ":" not in ref and "/" not in ref:
            add(ins.line, "DF014", f"--from={ref}: no stage of that name (an image needs a tag)")
        return
    for src in sources:
        if re.match(r"^[a-z]+://", src):
            if ins.keyword == "COPY":
                add(ins.line, "DF013", f"COPY {src}: COPY takes no URL")
            continue
        if ins.keyword == "ADD" and not re.search(r"\.(tar|tar\.\w+|tgz|tbz2?|txz)$", src):
            add(ins.line, "DF015", f"ADD {src}: use COPY for local files")
        rel = os.path.normpath(src.lstrip("/"))
        if rel.startswith(".."):
            add(ins.line, "DF013", f"{ins.keyword} {src}: outside the build context")
            continue
        matches = glob.glob(str(context / rel)) if any(c in rel for c in "*?[") else (
            [str(context / rel)] if (context / rel).exists() else [])
        if not matches:
            add(ins.line, "DF013", f"{ins.keyword} {src}: not in the build context {context}")
            continue
        kept = [m for m in matches if not ignored(os.path.relpath(m, context), ignore_rules)]
        if not kept:
            add(ins.line, "DF013", f"{ins.keyword} {src}: excluded by .dockerignore")


def check_env(ins: Instruction, add) -> None:
    try:
        words = shlex.split(ins.args)
    except ValueError:
        add(ins.line, "DF023", f"{ins.keyword}: unbalanced quotes")
        return
    if not words:
        return
    if ins.keyword == "ENV" and "=" not in words[0]:
        add(ins.line, "DF020", "ENV key value (legacy form): write ENV key=value")
        pairs = [(words[0], " ".join(words[1:]))]
    else:
        pairs = [(w.partition("=")[0], w.partition("=")[2]) for w in words]
    for key, value in pairs:
        if SECRET_NAME.search(key) and value:
            add(ins.line, "DF021", f"{ins.keyword} {key} has a value in the image: pass secrets at run time")


def script_array(script: Path, name: str) -> list[str]:
    """Words of a bash array `name=( ... )` in a script (comments dropped)."""
    text = script.read_text()
    m = re.search(rf"^{name}=\((.*?)\)", text, re.S | re.M)
    if not m:
        return []
    body = "\n".join(line.split("#", 1)[0] for line in m.group(1).splitlines())
    return body.split()


def check_project(stages: list[Stage], repo: Path, add) -> None:
    first, final = stages[0], stages[-1]
    # CE001: the build steps are scripts/run's.
    run_script = (repo / "scripts" / "run").read_text()
    expected = [line.strip() for line in run_script.splitlines()
                if re.match(r"^\s*scripts/(deps|build)\b", line)]
    run_cmds = [" ".join(c) for ins in first.instructions if ins.keyword == "RUN"
                for c in shell_commands(ins.args)]
    for want in expected:
        if want not in run_cmds:
            add(first.line, "CE001", f"the build stage does not run `{want}` (as scripts/run does)")
    if not expected:
        add(first.line, "CE001", "scripts/run names no scripts/deps or scripts/build step")
    # CE002: one port everywhere.
    env = env_defaults(final)
    exposed = [w.split("/")[0] for i in final.instructions if i.keyword == "EXPOSE" for w in i.args.split()]
    example = re.search(r"^PORT=(\d+)", (repo / ".env.example").read_text(), re.M)
    example_port = example.group(1) if example else None
    if "PORT" not in env:
        add(final.line, "CE002", "the final stage sets no ENV PORT")
    if not exposed:
        add(final.line, "CE002", "the final stage has no EXPOSE")
    for port in exposed:
        if port != env.get("PORT"):
            add(final.line, "CE002", f"EXPOSE {port} but ENV PORT={env.get('PORT')}")
        if example_port and port != example_port:
            add(final.line, "CE002", f"EXPOSE {port} but .env.example has PORT={example_port}")
    # CE003: what the sandboxes run.
    installed = set(apt_install_packages(final))
    runtime = script_array(repo / "scripts" / "deps", "runtime_packages")
    if not runtime:
        add(final.line, "CE003", "no runtime_packages=(...) array in scripts/deps")
    missing = [p for p in runtime if p not in installed]
    if missing:
        add(final.line, "CE003", f"the final stage does not install {' '.join(missing)} "
            "(runtime_packages of scripts/deps)")
    # CE004
    stops = [i for i in final.instructions if i.keyword == "STOPSIGNAL"]
    if not stops or stops[-1].args.strip().upper() not in ("SIGTERM", "TERM", "15"):
        add(final.line, "CE004", "the final stage needs STOPSIGNAL SIGTERM")


# ----------------------------------------------------------------------------
# docker-compose.yml
# ----------------------------------------------------------------------------

# Service keys of the Compose Specification (compose-spec/compose-spec, services).
COMPOSE_SERVICE_KEYS = {
    "annotations", "attach", "blkio_config", "build", "cap_add", "cap_drop", "cgroup",
    "cgroup_parent", "command", "configs", "container_name", "cpu_count", "cpu_percent",
    "cpu_period", "cpu_quota", "cpu_rt_period", "cpu_rt_runtime", "cpu_shares", "cpus",
    "cpuset", "credential_spec", "depends_on", "deploy", "develop", "device_cgroup_rules",
    "devices", "dns", "dns_opt", "dns_search", "domainname", "entrypoint", "env_file",
    "environment", "expose", "extends", "external_links", "extra_hosts", "gpus",
    "group_add", "healthcheck", "hostname", "image", "init", "ipc", "isolation", "labels",
    "links", "logging", "mac_address", "mem_limit", "mem_reservation", "mem_swappiness",
    "memswap_limit", "network_mode", "networks", "oom_kill_disable", "oom_score_adj", "pid",
    "pids_limit", "platform", "ports", "post_start", "pre_stop", "privileged", "profiles",
    "pull_policy", "read_only", "restart", "runtime", "scale", "secrets", "security_opt",
    "shm_size", "stdin_open", "stop_grace_period", "stop_signal", "storage_opt", "sysctls",
    "tmpfs", "tty", "ulimits", "user", "userns_mode", "uts", "volumes", "volumes_from",
    "working_dir",
}


def duration_seconds(value) -> Optional[float]:
    if isinstance(value, (int, float)):
        return float(value)
    total, pos = 0.0, 0
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 1e-6}
    for m in re.finditer(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", str(value)):
        if m.start() != pos:
            return None
        total += float(m.group(1)) * units[m.group(2)]
        pos = m.end()
    return total if pos == len(str(value)) and pos > 0 else None


def interpolate_defaults(value: str) -> str:
    """Compose interpolation with an empty environment: ${VAR:-x} and ${VAR-x} give x."""
    return re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*(?::?-([^}]*))?\}", lambda m: m.group(1) or "", value)


def check_compose(path: Path, dockerfile: Path, port_default: Optional[str]) -> list[Finding]:
    findings: list[Finding] = []
    text = path.read_text()

    def add(rule: str, message: str, key: Optional[str] = None):
        line = 1
        if key:
            m = re.search(rf"^\s*-?\s*{re.escape(key)}\b", text, re.M)
            if m:
                line = text.count("\n", 0, m.start()) + 1
        findings.append(Finding(str(path), line, rule, message))

    import yaml  # python3-yaml

    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        add("CC001", f"not YAML: {e}")
        return findings
    svc = (doc or {}).get("services", {}).get("codeexec") if isinstance(doc, dict) else None
    if not isinstance(svc, dict):
        add("CC001", "no services.codeexec")
        return findings
    for key in svc:
        if key not in COMPOSE_SERVICE_KEYS and not key.startswith("x-"):
            add("CC002", f"unknown service key '{key}'", key)
    privileged = svc.get("privileged") is True
    opts = [str(o) for o in svc.get("security_opt", [])]
    seccomp = [o.split("=", 1)[1] for o in opts if re.match(r"^seccomp[=:]", o)]
    if not privileged:
        if not seccomp:
            add("CC003", "security_opt has no seccomp=<profile> (Docker's default refuses the "
                "sandbox's clone/mount/pivot_root)", "security_opt")
        for s in seccomp:
            if s != "unconfined" and not (path.parent / s).is_file():
                add("CC003", f"seccomp profile {s} not found next to {path.name}", "security_opt")
        for want in ("apparmor=unconfined", "systempaths=unconfined"):
            if not any(o.replace(":", "=", 1) == want for o in opts):
                add("CC003", f"security_opt lacks {want}", "security_opt")
        if svc.get("cgroup") != "private":
            add("CC004", "cgroup: private is needed for a writable cgroup subtree "
                "(or privileged: true)", "cgroup")
    grace = duration_seconds(svc.get("stop_grace_period", "10s"))
    if grace is None or grace <= SHUTDOWN_GRACE_S:
        add("CC005", f"stop_grace_period {svc.get('stop_grace_period', '10s (default)')} must "
            f"exceed the service's {SHUTDOWN_GRACE_S} s shutdown grace", "stop_grace_period")
    if svc.get("restart") not in ("always", "unless-stopped", "on-failure") and not (
            isinstance(svc.get("restart"), str) and svc["restart"].startswith("on-failure:")):
        add("CC006", "no restart policy (always, unless-stopped or on-failure)", "restart")
    hc = svc.get("healthcheck")
    if not isinstance(hc, dict) or not hc.get("test") or hc.get("disable"):
        add("CC007", "no healthcheck test", "healthcheck")
    env = svc.get("environment", {})
    if isinstance(env, list):
        env = dict((e.split("=", 1) + [None])[:2] for e in env)
    port_ref = re.compile(r"^\$\{PORT(?::?-[^}]*)?\}$")
    if "PORT" not in env or not (env["PORT"] is None or port_ref.match(str(env["PORT"]))):
        add("CC008", "environment: PORT must come from the environment (PORT=${PORT:-4000})", "environment")
    if "E2B_API_KEY" not in env or not (env["E2B_API_KEY"] is None or
                                        re.match(r"^\$\{E2B_API_KEY(?::?-)?\}$", str(env["E2B_API_KEY"]))):
        add("CC008", "environment: E2B_API_KEY must be passed through from the environment", "environment")
    build = svc.get("build")
    if isinstance(build, dict):
        ctx = (path.parent / build.get("context", ".")).resolve()
        df = (ctx / build.get("dockerfile", "Dockerfile")).resolve()
        if df != dockerfile.resolve():
            add("CC009", f"build resolves to {df}, not {dockerfile}", "build")
    elif build is not None:
        add("CC009", "build: use the long form with context and dockerfile", "build")
    for p in svc.get("ports", []):
        spec = interpolate_defaults(str(p.get("target") if isinstance(p, dict) else p))
        container = spec.rsplit(":", 1)[-1].split("/")[0]
        if port_default and container != port_default:
            add("CC009", f"published container port {container} is not PORT ({port_default})", "ports")
    return findings


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dockerfile", nargs="?", default=str(REPO / "docker" / "Dockerfile"))
    ap.add_argument("--context", default=str(REPO), help="build context (default: the repo root)")
    ap.add_argument("--compose", default=str(REPO / "docker" / "docker-compose.yml"),
                    help="compose file to check ('' to skip)")
    ap.add_argument("--no-project-rules", action="store_true", help="only the generic DFxxx rules")
    args = ap.parse_args(argv)
    dockerfile = Path(args.dockerfile)
    findings = check_dockerfile(dockerfile, Path(args.context), project_rules=not args.no_project_rules)
    if args.compose:
        final = stages_of(parse_dockerfile(dockerfile.read_text())[0])
        port = env_defaults(final[-1]).get("PORT") if final else None
        findings += check_compose(Path(args.compose), dockerfile, port)
    for f in findings:
        print(f)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
