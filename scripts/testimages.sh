#!/usr/bin/env bash
# Local base images for the builder tests, made without a registry (see
# ../shared/docs/TESTING.md), once per machine:
#   go    rivetr-test/go:local     busybox (for RUN's /bin/sh) + this machine's Go toolchain
#   node  rivetr-test/node:debian  Debian bookworm (debootstrap) + Debian's nodejs and npm
# Usage: scripts/testimages.sh go|node...  Exit 3 when a tool it needs is
# missing (debootstrap, busybox-static, Go at /usr/local/go).
set -euo pipefail
say() { echo "testimages: $*" >&2; }
have() { docker image inspect "$1" >/dev/null 2>&1; }
DEBIAN=rivetr-test/debian:bookworm

debian() {
	have "$DEBIAN" && return
	command -v debootstrap >/dev/null || { say "debootstrap is not installed (apt-get install debootstrap)"; exit 3; }
	local root; root=$(mktemp -d /tmp/rivetr-debootstrap.XXXXXX)
	say "debootstrap --variant=minbase bookworm (about 35 s)"
	debootstrap --variant=minbase bookworm "$root" >/tmp/rivetr-debootstrap.log 2>&1 || { say "debootstrap failed, see /tmp/rivetr-debootstrap.log"; rm -rf "$root"; exit 1; }
	tar -C "$root" -c . | docker import - "$DEBIAN" >/dev/null
	rm -rf "$root"
}

for what in "$@"; do
	case $what in
	go)
		have rivetr-test/go:local && continue
		[ -x /bin/busybox ] && [ -x /usr/local/go/bin/go ] || { say "needs /bin/busybox (apt-get install busybox-static) and Go at /usr/local/go"; exit 3; }
		root=$(mktemp -d /tmp/rivetr-goimage.XXXXXX)
		mkdir -p "$root/bin" "$root/tmp" "$root/usr/local" "$root/etc"
		cp /bin/busybox "$root/bin/busybox"
		for t in sh ls cat mkdir rm cp mv env; do ln -s busybox "$root/bin/$t"; done
		cp -a /usr/local/go "$root/usr/local/go"
		chmod 1777 "$root/tmp"
		echo "root:x:0:0:root:/root:/bin/sh" >"$root/etc/passwd"
		say "importing rivetr-test/go:local (busybox + $(/usr/local/go/bin/go version | cut -d' ' -f3))"
		tar -C "$root" -c . | docker import \
			--change 'ENV PATH=/usr/local/go/bin:/bin' --change 'ENV GOCACHE=/tmp/gocache' \
			--change 'ENV GOPATH=/tmp/gopath' --change 'ENV GOTOOLCHAIN=local' --change 'ENV GOPROXY=off' \
			- rivetr-test/go:local >/dev/null
		rm -rf "$root"
		;;
	node)
		have rivetr-test/node:debian && continue
		debian
		ctx=$(mktemp -d /tmp/rivetr-nodeimage.XXXXXX)
		printf 'FROM %s\nRUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nodejs npm && rm -rf /var/lib/apt/lists/*\n' "$DEBIAN" >"$ctx/Dockerfile"
		say "building rivetr-test/node:debian (Debian's nodejs and npm, about a minute)"
		docker build -q -t rivetr-test/node:debian "$ctx" >/dev/null
		rm -rf "$ctx"
		;;
	*) say "unknown image $what (go, node)"; exit 2 ;;
	esac
done
