#!/usr/bin/env bash
# Local base images for the builder tests, made without a registry (see
# ../shared/docs/TESTING.md), once per machine:
#   go    rivetr-test/go:local     busybox (for RUN's /bin/sh) + this machine's Go toolchain
#   node  rivetr-test/node:debian  Debian bookworm (debootstrap) + Debian's nodejs and npm
#   postgres rivetr-test/postgres:15, mariadb rivetr-test/mariadb:10.11, redis rivetr-test/redis:7:
#         stand-ins built from Debian's packages that honour the official images'
#         environment, ports and data paths (entrypoints in scripts/testimages/)
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
	postgres | mariadb | redis)
		case $what in
		postgres) tag=rivetr-test/postgres:15 pkgs=postgresql-15 ;;
		mariadb) tag=rivetr-test/mariadb:10.11 pkgs="mariadb-server mariadb-client" ;;
		redis) tag=rivetr-test/redis:7 pkgs=redis-server ;;
		esac
		have "$tag" && continue
		debian
		ctx=$(mktemp -d /tmp/rivetr-svcimage.XXXXXX)
		here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
		{
			echo "FROM $DEBIAN"
			echo "RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $pkgs && rm -rf /var/lib/apt/lists/*"
			case $what in
			postgres)
				cp "$here/testimages/postgres.sh" "$ctx/entrypoint.sh"
				echo "ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin PGDATA=/var/lib/postgresql/data"
				echo "COPY entrypoint.sh /usr/local/bin/docker-entrypoint.sh"
				echo 'ENTRYPOINT ["docker-entrypoint.sh"]'; echo 'CMD ["postgres"]'; echo "EXPOSE 5432" ;;
			mariadb)
				cp "$here/testimages/mariadb.sh" "$ctx/entrypoint.sh"
				# Debian's package initialises /var/lib/mysql; the image starts empty, as the official one.
				echo "RUN rm -rf /var/lib/mysql && mkdir -p /var/lib/mysql"
				echo "COPY entrypoint.sh /usr/local/bin/docker-entrypoint.sh"
				echo 'ENTRYPOINT ["docker-entrypoint.sh"]'; echo 'CMD ["mariadbd"]'; echo "EXPOSE 3306" ;;
			redis)
				echo "RUN mkdir -p /data && chown redis:redis /data"
				echo "WORKDIR /data"
				echo 'CMD ["redis-server", "--bind", "0.0.0.0", "--protected-mode", "no"]'; echo "EXPOSE 6379" ;;
			esac
		} >"$ctx/Dockerfile"
		say "building $tag from Debian's $pkgs (about a minute)"
		docker build -q -t "$tag" "$ctx" >/dev/null
		rm -rf "$ctx"
		;;
	*) say "unknown image $what (go, node, postgres, mariadb, redis)"; exit 2 ;;
	esac
done
