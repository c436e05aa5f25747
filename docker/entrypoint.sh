#!/bin/bash
# Container entry point: makes the container's own cgroup tree writable when it can,
# so that each sandbox gets memory and pids cgroup limits, then becomes codeexec.
#
# Docker mounts /sys/fs/cgroup read-only unless the container is privileged. With a
# private cgroup namespace (compose `cgroup: private`, docker run --cgroupns=private)
# the mount shows only this container's subtree; with CAP_SYS_ADMIN (compose
# `cap_add: [SYS_ADMIN]`) it can be remounted read-write. Without either, codeexec
# falls back to rlimits and says so in its start-up log. CODEEXEC_CGROUP_REMOUNT=0
# skips the attempt.
set -euo pipefail

log() {  # one JSON line on stderr, like the service's own logs
  printf '{"level":"%s","msg":"docker-entrypoint: %s"}\n' "$1" "$2" >&2
}

# A private cgroup namespace shows every hierarchy rooted at "/". In the host's
# namespace a read-write remount would expose the whole host tree: never do it there.
private_cgroupns() {
  local line
  while IFS= read -r line; do
    [[ "${line#*:*:}" == / ]] || return 1
  done </proc/self/cgroup
}

remount_cgroups() {
  local target options remounted=0
  if ! private_cgroupns; then
    log info "cgroup namespace is not private: cgroupfs left as it is"
    return
  fi
  while read -r target options; do
    [[ ",$options," == *,ro,* ]] || continue
    if mount -o remount,bind,rw "$target" 2>/dev/null; then
      remounted=$((remounted + 1))
    else
      log info "cannot remount $target read-write (no CAP_SYS_ADMIN?): sandboxes fall back to rlimits"
      return
    fi
  done < <(findmnt -rn -t cgroup,cgroup2 -o TARGET,OPTIONS)
  if ((remounted > 0)); then log info "remounted $remounted cgroup mount(s) read-write"; fi
}

if [[ "${CODEEXEC_CGROUP_REMOUNT:-1}" != 0 ]]; then remount_cgroups; fi
exec /usr/local/bin/codeexec "$@"
