#!/bin/bash
# Container health probe: GET /health on the service with bash's /dev/tcp (the image
# has no curl). Exit 0 on HTTP 200, 1 otherwise (Docker's HEALTHCHECK contract).
#   PORT, HOST    as the service reads them (defaults 4000, 0.0.0.0)
#   HEALTHCHECK_READ_TIMEOUT   seconds to wait for the status line (default 4)
set -u

port="${PORT:-4000}"
host="${HOST:-0.0.0.0}"
case "$host" in
  "" | 0.0.0.0) host=127.0.0.1 ;;  # listening on every address: ask over loopback
  :: | "[::]") host=::1 ;;
esac
host="${host#[}"
host="${host%]}"

if ! exec 3<>"/dev/tcp/$host/$port"; then
  echo "unhealthy: cannot connect to $host:$port" >&2
  exit 1
fi
printf 'GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' >&3
status=""
if ! IFS= read -r -t "${HEALTHCHECK_READ_TIMEOUT:-4}" status <&3; then
  echo "unhealthy: no answer from $host:$port" >&2
  exit 1
fi
exec 3<&-
status="${status%$'\r'}"
case "$status" in
  "HTTP/1.0 200"* | "HTTP/1.1 200"*) exit 0 ;;
esac
echo "unhealthy: $status" >&2
exit 1
