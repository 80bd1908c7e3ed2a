#!/usr/bin/env bash
# Start Podman's Docker-compatible API service on /run/podman/podman.sock if
# podman is installed and the socket does not answer yet. Exits 3 when
# podman is not installed (callers skip the Podman pass, saying so).
set -euo pipefail
say() { echo "podman: $*" >&2; }
sock=/run/podman/podman.sock
if ! command -v podman >/dev/null 2>&1; then
	say "podman is not installed (apt-get install podman)"
	exit 3
fi
if curl -fsS --unix-socket "$sock" http://d/_ping >/dev/null 2>&1; then
	# A service whose working directory was deleted (started from a
	# checkout since removed) answers pings but cannot start containers:
	# conmon fails to get its working directory. Restart it.
	pid=$(pgrep -f "podman system service" | head -n 1 || true)
	if [ -z "$pid" ] || ! readlink "/proc/$pid/cwd" 2>/dev/null | grep -q ' (deleted)$'; then
		exit 0
	fi
	say "restarting podman system service: its working directory was deleted"
	kill "$pid" || true
	sleep 1
fi
mkdir -p /run/podman
say "starting podman system service on $sock (log: /var/log/podman-service.log)"
# From /, so removing the directory it was started in cannot break it.
(cd / && setsid podman system service --time=0 "unix://$sock" >/var/log/podman-service.log 2>&1 < /dev/null &)
for _ in $(seq 1 30); do
	curl -fsS --unix-socket "$sock" http://d/_ping >/dev/null 2>&1 && exit 0
	sleep 1
done
say "podman service did not answer; last lines of its log:"
tail -n 20 /var/log/podman-service.log >&2 || true
exit 1
