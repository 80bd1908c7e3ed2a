#!/usr/bin/env bash
# Make sure a container engine answers: install Debian's docker.io when no
# engine is present, and start dockerd when `docker info` fails. Says what
# it does; does nothing when Docker (or a Podman socket) already answers.
set -euo pipefail

say() { echo "engine: $*" >&2; }
sudo_() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if [ -n "${DOCKER_HOST:-}" ] && docker info >/dev/null 2>&1; then
	exit 0
fi
if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
	exit 0
fi
if [ "${RIVETR_RUNTIME:-auto}" = podman ] && [ -S /run/podman/podman.sock ]; then
	exit 0
fi

if ! command -v dockerd >/dev/null 2>&1; then
	say "no Docker engine found; installing Debian's docker.io with apt-get"
	sudo_ env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
	if command -v systemctl >/dev/null 2>&1 && systemctl is-system-running >/dev/null 2>&1; then
		say "starting docker with systemctl"
		sudo_ systemctl start docker || true
	fi
fi
if ! docker info >/dev/null 2>&1; then
	say "starting dockerd in the background (log: /var/log/dockerd.log)"
	sudo_ bash -c 'setsid dockerd >/var/log/dockerd.log 2>&1 < /dev/null &'
	for _ in $(seq 1 60); do
		docker info >/dev/null 2>&1 && break
		sleep 1
	done
fi
if ! docker info >/dev/null 2>&1; then
	say "dockerd did not come up; last lines of /var/log/dockerd.log:"
	tail -n 20 /var/log/dockerd.log >&2 || true
	exit 1
fi
say "docker is running ($(docker version --format '{{.Server.Version}}' 2>/dev/null))"
