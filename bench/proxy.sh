#!/usr/bin/env bash
# Proxy throughput and latency, side by side in one run (issue 5 figures):
# direct to a backend, through rivetr's proxy (bench/proxybench), nginx and
# caddy (Debian packages), all on loopback. wrk -t2 -c64 -d10s in several
# interleaved rounds; p50 added latency at one connection; rivetr's RSS idle
# and under load; the slowdown with 10,000 routes in the table.
# Needs: wrk, nginx, caddy (apt-get install wrk nginx-light caddy), go.
# Knobs: BENCH_ROUNDS (3), BENCH_SECONDS (10).
set -euo pipefail
ROUNDS=${BENCH_ROUNDS:-3}
SECS=${BENCH_SECONDS:-10}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=$ROOT/bench/out
die() { echo "bench: $*" >&2; exit 1; }
for t in wrk nginx caddy go; do command -v $t >/dev/null || die "$t is required (apt-get install wrk nginx-light caddy)"; done
WORK=$(mktemp -d /tmp/rivetr-proxybench.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
freeport() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

# Backend: the e2e test app (a small net/http server).
(cd "$ROOT/e2e/testdata/pushapp" && CGO_ENABLED=0 go build -o "$WORK/backend" .)
(cd "$ROOT" && CGO_ENABLED=0 go build -o "$WORK/proxybench" ./bench/proxybench)
BP=$(freeport); PORT=$BP "$WORK/backend" >/dev/null 2>&1 & PIDS+=($!)
RP=$(freeport); "$WORK/proxybench" -listen 127.0.0.1:$RP -upstream 127.0.0.1:$BP >/dev/null & RPID=$!; PIDS+=($RPID)
RP10K=$(freeport); "$WORK/proxybench" -listen 127.0.0.1:$RP10K -upstream 127.0.0.1:$BP -routes 10000 >/dev/null & R10KPID=$!; PIDS+=($R10KPID)
NP=$(freeport)
cat > "$WORK/nginx.conf" <<CFG
worker_processes auto;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  upstream backend { server 127.0.0.1:$BP; keepalive 256; }
  server {
    listen 127.0.0.1:$NP;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
    }
  }
}
CFG
nginx -c "$WORK/nginx.conf" -p "$WORK" -g 'daemon off;' & NPID=$!; PIDS+=($NPID)
CP=$(freeport)
cat > "$WORK/Caddyfile" <<CFG
{
	admin off
	auto_https off
}
http://:$CP {
	bind 127.0.0.1
	reverse_proxy 127.0.0.1:$BP
}
CFG
HOME=$WORK XDG_DATA_HOME=$WORK XDG_CONFIG_HOME=$WORK caddy run --config "$WORK/Caddyfile" --adapter caddyfile >/dev/null 2>&1 & CPID=$!; PIDS+=($CPID)
sleep 2
for t in backend:$BP rivetr:$RP rivetr10k:$RP10K nginx:$NP caddy:$CP; do p=${t##*:}; ok=; for _ in $(seq 50); do curl -fsS -o /dev/null -H "Host: bench.localhost" "http://127.0.0.1:$p/" 2>/dev/null && { ok=1; break; }; sleep 0.2; done; [[ -n $ok ]] || die "${t%%:*} on port $p does not answer (logs in $WORK)"; done

rss() { awk '/VmRSS/{printf "%.1f", $2/1024}' /proc/$1/status; }
# CPU ticks (user+system) of a process and its children (nginx workers).
ticks() { local t=0 p; for p in $1 $(pgrep -P $1); do t=$((t + $(awk '{print $14+$15}' /proc/$p/stat))); done; echo $t; }
HZ=$(getconf CLK_TCK)
declare -A PPID_OF=([rivetr]=$RPID [nginx]=$NPID [caddy]=$CPID [rivetr10k]=$R10KPID)
declare -A CPU REQS
RSS_IDLE=$(rss $RPID)
declare -A RPS
run() { # name port: prints req/s, adds CPU ticks and requests of the proxy
	local pid=${PPID_OF[$1]:-} t0=0 out
	[[ -n $pid ]] && t0=$(ticks $pid)
	out=$(wrk -t2 -c64 -d${SECS}s -H 'Host: bench.localhost' "http://127.0.0.1:$2/" 2>/dev/null)
	if [[ -n $pid ]]; then
		CPU[$1]=$(( ${CPU[$1]:-0} + $(ticks $pid) - t0 ))
		REQS[$1]=$(( ${REQS[$1]:-0} + $(echo "$out" | awk '/requests in/{print $1}') ))
	fi
	echo "$out" | awk '/Requests\/sec/{print $2}'
}
cpureq() { echo "scale=1; ${CPU[$1]} * 1000000 / $HZ / ${REQS[$1]}" | bc; } # µs of CPU per request
for r in $(seq "$ROUNDS"); do
	for t in direct:$BP rivetr:$RP nginx:$NP caddy:$CP rivetr10k:$RP10K; do
		n=${t%%:*}; p=${t##*:}
		run "$n" "$p" >"$WORK/rps"; v=$(cat "$WORK/rps"); RPS[$n]+="$v "
		[[ $n == rivetr ]] && RSS_LOAD=$(rss $RPID)
	done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
lat() { # p50 at one connection, ms
	wrk -t1 -c1 -d5s --latency -H 'Host: bench.localhost' "http://127.0.0.1:$1/" 2>/dev/null | awk '$1=="50%"{v=$2; if (v ~ /us$/) {sub("us","",v); v=v/1000} else if (v ~ /ms$/) {sub("ms","",v)} else if (v ~ /s$/) {sub("s","",v); v=v*1000}; print v}'
}
L_DIRECT=$(lat $BP); L_RIVETR=$(lat $RP); L_NGINX=$(lat $NP); L_CADDY=$(lat $CP)
D=$(echo "${RPS[direct]}" | median); R=$(echo "${RPS[rivetr]}" | median); N=$(echo "${RPS[nginx]}" | median); C=$(echo "${RPS[caddy]}" | median); R10=$(echo "${RPS[rivetr10k]}" | median)
ratio() { echo "scale=3; $1/$2" | bc; }
mkdir -p "$OUT"
{
	echo "## rivetr proxy bench, $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo
	echo "- $(nproc) CPUs, $(go version | cut -d' ' -f3), $(nginx -v 2>&1 | cut -d' ' -f3), caddy $(caddy version | cut -d' ' -f1), wrk -t2 -c64 -d${SECS}s, $ROUNDS interleaved rounds (median); the load generator shares the 2 CPUs"
	echo
	echo "| target | req/s (median) | / direct | / nginx | p50 at 1 conn ms | p50 added vs direct ms | proxy CPU µs/request |"
	echo "|---|---:|---:|---:|---:|---:|---:|"
	echo "| direct | $D | 1.000 | $(ratio $D $N) | $L_DIRECT | 0 | |"
	echo "| rivetr | $R | $(ratio $R $D) | $(ratio $R $N) | $L_RIVETR | $(echo "$L_RIVETR - $L_DIRECT" | bc) | $(cpureq rivetr) |"
	echo "| nginx | $N | $(ratio $N $D) | 1.000 | $L_NGINX | $(echo "$L_NGINX - $L_DIRECT" | bc) | $(cpureq nginx) |"
	echo "| caddy | $C | $(ratio $C $D) | $(ratio $C $N) | $L_CADDY | $(echo "$L_CADDY - $L_DIRECT" | bc) | $(cpureq caddy) |"
	echo "| rivetr, 10,000 routes | $R10 | $(ratio $R10 $D) | $(ratio $R10 $N) | | | $(cpureq rivetr10k) |"
	echo
	echo "10,000 routes vs 1: $(echo "scale=1; ($R - $R10) * 100 / $R" | bc)% slower (negative: faster); memory per route $(echo "scale=2; ($(rss $R10KPID) - $RSS_IDLE) * 1024 / 10000" | bc) KB"
	echo
	echo "samples req/s: direct ${RPS[direct]}; rivetr ${RPS[rivetr]}; nginx ${RPS[nginx]}; caddy ${RPS[caddy]}; rivetr10k ${RPS[rivetr10k]}"
	echo
	echo "rivetr proxy RSS: idle $RSS_IDLE MB, after load $RSS_LOAD MB; with 10,000 routes: $(rss $R10KPID) MB"
} | tee "$OUT/proxy-latest.md"
