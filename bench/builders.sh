#!/usr/bin/env bash
# Builder figures (issue 6), in one run:
#  1. Static-site throughput: rivetr's proxy serving a static site
#     (bench/proxybench -static, no container) vs nginx serving the same
#     files, wrk -t2 -c64, interleaved rounds, on a small index.html and a
#     100 KB file.
#  2. Rebuild after a one-line change: a rivetr daemon pushes the Go and
#     the Node fixture (built-in packs on the local base images of
#     scripts/testimages.sh), then one line of source changes and they are
#     pushed again; the push time and the dependency layers served from the
#     build cache ("Using cache" among the steps before COPY . .).
# Needs docker, wrk, nginx, go, git, ssh, debootstrap, busybox-static.
# Knobs: BENCH_ROUNDS (3), BENCH_SECONDS (10), BENCH_REBUILDS (3).
set -euo pipefail
ROUNDS=${BENCH_ROUNDS:-3}; SECS=${BENCH_SECONDS:-10}; REBUILDS=${BENCH_REBUILDS:-3}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=$ROOT/bin/rivetr; OUT=$ROOT/bench/out
die() { echo "bench: $*" >&2; exit 1; }
[[ -x $BIN ]] || die "$BIN is missing; run \`make build\` first"
for t in wrk nginx go git ssh docker; do command -v $t >/dev/null || die "$t is required"; done
WORK=$(mktemp -d /tmp/rivetr-buildbench.XXXXXX)
PIDS=(); DAEMON=
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	[[ -n $DAEMON ]] && { kill -TERM $DAEMON 2>/dev/null; wait $DAEMON 2>/dev/null || true; }
	for a in gobench nodebench; do
		docker ps -aq --filter label=rivetr.app=$a | xargs -r docker rm -f >/dev/null 2>&1 || true
		docker images -q --filter label=rivetr.app=$a | xargs -r docker rmi -f >/dev/null 2>&1 || true
	done
	wait 2>/dev/null || true; rm -rf "$WORK"
}
trap cleanup EXIT
freeport() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
now() { echo "${EPOCHREALTIME/./}"; }

# --- 1. static site: rivetr vs nginx ----------------------------------------
declare -A RPS
SITE=$WORK/site; mkdir -p "$SITE"; chmod 755 "$WORK" # nginx's workers run as nobody
printf '<!doctype html><title>bench</title><h1>static</h1>\n' > "$SITE/index.html"
head -c 102400 /dev/urandom > "$SITE/big.bin"
(cd "$ROOT" && CGO_ENABLED=0 go build -o "$WORK/proxybench" ./bench/proxybench)
RP=$(freeport); "$WORK/proxybench" -listen 127.0.0.1:$RP -static "$SITE" >/dev/null & PIDS+=($!)
NP=$(freeport)
cat > "$WORK/nginx.conf" <<CFG
worker_processes auto;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  include /etc/nginx/mime.types;
  etag on;
  server { listen 127.0.0.1:$NP; root $SITE; }
}
CFG
nginx -c "$WORK/nginx.conf" -p "$WORK" -g 'daemon off;' & PIDS+=($!)
sleep 1
for r in $(seq "$ROUNDS"); do
	[[ -n ${BENCH_SKIP_STATIC:-} ]] && break
	for f in index.html big.bin; do
		for t in rivetr:$RP nginx:$NP; do
			out=$(wrk -t2 -c64 -d${SECS}s -H 'Host: bench.localhost' "http://127.0.0.1:${t##*:}/$f" 2>/dev/null)
			! grep -q "Non-2xx" <<<"$out" || die "${t%%:*} answered errors for /$f: $out"
			v=$(awk '/Requests\/sec/{print $2}' <<<"$out")
			RPS[${t%%:*}-$f]+="$v "
		done
	done
done

[[ -n ${BENCH_STATIC_ONLY:-} ]] && { for f in index.html big.bin; do echo "$f rivetr ${RPS[rivetr-$f]} nginx ${RPS[nginx-$f]}"; done; exit 0; }

# --- 2. rebuild after a one-line change ---------------------------------------
"$ROOT/scripts/testimages.sh" go node
SSH_PORT=$(freeport); HTTP_PORT=$(freeport); API_PORT=$(freeport)
export RIVETR_DATA_DIR=$WORK/data RIVETR_CONFIG=$WORK/empty.toml; : > "$RIVETR_CONFIG"
RIVETR_SSH_ADDR=127.0.0.1:$SSH_PORT RIVETR_HTTP_ADDR=127.0.0.1:$HTTP_PORT RIVETR_API_ADDR=127.0.0.1:$API_PORT \
	RIVETR_HTTPS_ADDR= "$BIN" serve 2>>"$WORK/serve.log" & DAEMON=$!
for _ in $(seq 100); do [[ -S $RIVETR_DATA_DIR/rivetr.sock ]] && "$BIN" version >/dev/null 2>&1 && break; sleep 0.1; done
ssh-keygen -q -t ed25519 -N '' -f "$WORK/key"
"$BIN" ssh-keys:add bench "$WORK/key.pub" >/dev/null
"$BIN" buildpacks:set --global go-image rivetr-test/go:local >/dev/null
"$BIN" buildpacks:set --global go-runtime-image scratch >/dev/null
"$BIN" buildpacks:set --global node-image rivetr-test/node:debian >/dev/null
"$BIN" checks:set --global default-wait 1 >/dev/null
export GIT_SSH_COMMAND="ssh -F /dev/null -i $WORK/key -o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=b@b GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=b@b

mkdir -p "$WORK/gobench" "$WORK/nodebench"
cp "$ROOT/e2e/testdata/pushapp/main.go" "$WORK/gobench/main.go"
printf 'module example.com/pushapp\n\ngo 1.22\n' > "$WORK/gobench/go.mod"
cat > "$WORK/nodebench/package.json" <<'JSON'
{"name":"web","version":"1.0.0","scripts":{"start":"node server.js"}}
JSON
cat > "$WORK/nodebench/package-lock.json" <<'JSON'
{"name":"web","version":"1.0.0","lockfileVersion":3,"requires":true,"packages":{"":{"name":"web","version":"1.0.0"}}}
JSON
echo "require('http').createServer((q, s) => s.end('node')).listen(process.env.PORT) // v0 $(date +%s%N)" > "$WORK/nodebench/server.js"
declare -A FIRST REB HITS STEPS
RUN_ID=$(date +%s%N)
echo "// run $RUN_ID" >> "$WORK/gobench/main.go"
for app in gobench nodebench; do
	d=$WORK/$app; git -C "$d" init -q -b main; git -C "$d" add -A; git -C "$d" commit -qm v0
	R=ssh://rivetr@127.0.0.1:$SSH_PORT/$app
	t0=$(now); timeout 600 git -C "$d" push "$R" main >"$WORK/$app-0.log" 2>&1 || die "first push of $app failed: $(tail -5 "$WORK/$app-0.log")"; t1=$(now)
	FIRST[$app]=$(( (t1-t0)/1000 ))
	for i in $(seq "$REBUILDS"); do
		# A change no earlier run made, so the source layers cannot come from the cache.
		if [[ $app == gobench ]]; then echo "// change $i $RUN_ID" >> "$d/main.go"; else sed -i "s#// v.*#// v$i $RUN_ID#" "$d/server.js"; fi
		git -C "$d" commit -qam "v$i"
		t0=$(now); timeout 600 git -C "$d" push "$R" main >"$WORK/$app-$i.log" 2>&1 || die "push $i of $app failed"; t1=$(now)
		REB[$app]+="$(( (t1-t0)/1000 )) "
		# Steps up to the dependency install (before COPY . .) and how many came from the cache.
		deps=$(awk '/Step [0-9]+\/[0-9]+ : COPY \. \./{exit} /Step [0-9]+\/[0-9]+ : FROM/{next} /Step [0-9]+\/[0-9]+ :/{s++} /Using cache/{c++} END{print s+0, c+0}' "$WORK/$app-$i.log")
		STEPS[$app]+="${deps% *} "; HITS[$app]+="${deps#* } "
	done
done

mkdir -p "$OUT"
{
	echo "## rivetr builders bench, $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo
	echo "- $(nproc) CPUs, $(go version | cut -d' ' -f3), $(nginx -v 2>&1 | cut -d' ' -f3), docker $(docker version -f '{{.Server.Version}}'), wrk -t2 -c64 -d${SECS}s, $ROUNDS interleaved rounds (median)"
	echo
	if [[ -z ${BENCH_SKIP_STATIC:-} ]]; then
		echo "| static file | rivetr req/s | nginx req/s | rivetr / nginx |"
		echo "|---|---:|---:|---:|"
		for f in index.html big.bin; do
			R=$(echo "${RPS[rivetr-$f]}" | median); N=$(echo "${RPS[nginx-$f]}" | median)
			echo "| $f ($(stat -c %s "$SITE/$f") B) | $R | $N | $(echo "scale=3; $R/$N" | bc) |"
		done
		echo
		echo "samples: $(for k in "${!RPS[@]}"; do echo -n "$k: ${RPS[$k]}; "; done)"
		echo
	fi
	echo "| app | first push ms | push after a one-line change, ms (median of $REBUILDS) | dependency steps from cache |"
	echo "|---|---:|---:|---:|"
	for app in gobench nodebench; do
		h=$(echo ${HITS[$app]} | tr ' ' '+' | bc); s=$(echo ${STEPS[$app]} | tr ' ' '+' | bc)
		echo "| $app | ${FIRST[$app]} | $(echo "${REB[$app]}" | median) | $h of $s ($(( 100*h/s ))%) |"
	done
	echo
	echo "samples: gobench ${REB[gobench]}; nodebench ${REB[nodebench]}"
} | tee "$OUT/builders-latest.md"
