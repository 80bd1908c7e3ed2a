#!/usr/bin/env bash
# rivetr benchmarks: idle memory of `rivetr serve` and the latency of
# `ssh rivetr apps:list` with 100 apps. Run through `make bench` (which builds
# bin/rivetr first); this script builds nothing itself.
#
# Everything runs on loopback (the daemon listens on 127.0.0.1:0, so the
# kernel picks free ports) with a fresh temporary data dir that is removed on
# exit, together with the daemon. Every step has a time limit and the whole
# run has a watchdog (BENCH_MAX_SECONDS).
#
# Knobs (environment):
#   BENCH_IDLE_SECONDS  wait before reading memory        (default 10)
#   BENCH_APPS          apps created for the loaded runs  (default 100)
#   BENCH_RUNS          timed runs per command            (default 30)
#   BENCH_MAX_SECONDS   watchdog for the whole script     (default 600)
#
# Output: printed, and saved to bench/out/ (gitignored) as
# results-<timestamp>.md, samples-<timestamp>.tsv (one line per timed run) and
# latest.md (a copy of the last results).
set -euo pipefail

IDLE_SECONDS=${BENCH_IDLE_SECONDS:-10}
NAPPS=${BENCH_APPS:-100}
RUNS=${BENCH_RUNS:-30}
MAX_SECONDS=${BENCH_MAX_SECONDS:-600}
RSS_GOAL_MB=15
STEP_TIMEOUT=20 # seconds, for any one command (ssh, CLI call)

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=$ROOT/bin/rivetr
OUT=$ROOT/bench/out

die() { echo "bench: $*" >&2; exit 1; }

[[ -x $BIN ]] || die "$BIN is missing or not executable; run \`make bench\` (or \`make build\` first)"
for tool in ssh ssh-keygen timeout awk sort; do
	command -v "$tool" >/dev/null || die "\`$tool\` is required but not installed"
done
for n in "$IDLE_SECONDS" "$NAPPS" "$RUNS" "$MAX_SECONDS"; do
	[[ $n =~ ^[0-9]+$ && $n -gt 0 ]] || die "BENCH_* values must be positive integers, got '$n'"
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/rivetr-bench.XXXXXX")
DAEMON_PID=
WATCHDOG_PID=

stop_daemon() {
	[[ -n $DAEMON_PID ]] || return 0
	local pid=$DAEMON_PID i
	DAEMON_PID=
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 150; i++)); do # the daemon's own shutdown grace is 10 s
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	stop_daemon
	if [[ -n $WATCHDOG_PID ]]; then
		kill -TERM "$WATCHDOG_PID" 2>/dev/null || true
		wait "$WATCHDOG_PID" 2>/dev/null || true
	fi
	rm -rf -- "$WORK"
	exit "$rc"
}
trap cleanup EXIT
trap 'echo "bench: interrupted" >&2; exit 130' INT
trap 'echo "bench: stopped (SIGTERM or watchdog after ${MAX_SECONDS}s)" >&2; exit 124' TERM

# Watchdog: SIGTERM this script after MAX_SECONDS; killing the watchdog also
# kills its sleep. Its output goes nowhere so it never holds a pipe open.
MAIN_PID=$$
(
	trap 'kill "$spid" 2>/dev/null; exit 0' TERM
	sleep "$MAX_SECONDS" &
	spid=$!
	wait "$spid"
	kill -TERM "$MAIN_PID" 2>/dev/null
) </dev/null >/dev/null 2>&1 &
WATCHDOG_PID=$!

# Isolate from the host's configuration: an empty config file, and the
# settings the benchmark depends on given explicitly.
: >"$WORK/empty.toml"
export RIVETR_CONFIG=$WORK/empty.toml
export RIVETR_SSH_ADDR=127.0.0.1:0 RIVETR_HTTP_ADDR=127.0.0.1:0 RIVETR_API_ADDR=127.0.0.1:0
export RIVETR_HTTPS_ADDR= RIVETR_DOMAIN=localhost RIVETR_LOG_FORMAT=json RIVETR_LOG_LEVEL=info
# Go runtime knobs (GOGC, GOMEMLIMIT, GODEBUG, GOMAXPROCS) pass through to
# the daemon so their effect can be measured; the report names any that are set.
GO_ENV=$(env | grep -E '^(GOGC|GOMEMLIMIT|GODEBUG|GOMAXPROCS)=' | sort | tr '\n' ' ' || true)

ssh-keygen -q -t ed25519 -N '' -C rivetr-bench -f "$WORK/id_ed25519"
KEY=$WORK/id_ed25519
SSH_PORT=
STARTS=0

# start_daemon DIR: starts `rivetr serve` on data dir DIR and waits (10 s at
# most) until it logs "rivetr started"; sets DAEMON_PID and SSH_PORT.
start_daemon() {
	export RIVETR_DATA_DIR=$1
	local log i line
	STARTS=$((STARTS + 1))
	log=$WORK/serve-$STARTS.log # a new log per start: never read an old port
	"$BIN" serve </dev/null >>"$log" 2>&1 &
	DAEMON_PID=$!
	for ((i = 0; i < 100; i++)); do
		kill -0 "$DAEMON_PID" 2>/dev/null || { cat "$log" >&2; die "rivetr serve exited during startup"; }
		line=$(grep -o '"ssh":"[^"]*"' "$log" | tail -n 1 || true)
		[[ -n $line && -S $1/rivetr.sock ]] && break
		sleep 0.1
	done
	[[ -n ${line:-} && -S $1/rivetr.sock ]] || { cat "$log" >&2; die "rivetr serve did not start within 10 s"; }
	SSH_PORT=${line##*:}
	SSH_PORT=${SSH_PORT%\"}
	[[ $SSH_PORT =~ ^[0-9]+$ ]] || die "could not read the SSH port from the log: $line"
}

cli() { timeout "$STEP_TIMEOUT" "$BIN" "$@" </dev/null; }
rssh() {
	timeout "$STEP_TIMEOUT" ssh -F /dev/null -p "$SSH_PORT" -i "$KEY" \
		-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes \
		-o IdentitiesOnly=yes -o LogLevel=ERROR rivetr@127.0.0.1 "$@" </dev/null
}

# mem LABEL: waits IDLE_SECONDS, then records the daemon's memory from
# /proc/PID/status as a table row (MB = 1024 kB).
MEM_ROWS=()
mem() {
	sleep "$IDLE_SECONDS"
	kill -0 "$DAEMON_PID" 2>/dev/null || die "the daemon died while idle"
	MEM_ROWS+=("$(awk -v label="$1" -v goal="$RSS_GOAL_MB" '
		/^(VmRSS|VmHWM|RssAnon|RssFile|Threads):/ { v[substr($1, 1, length($1) - 1)] = $2 }
		END {
			mb = v["VmRSS"] / 1024
			printf "| %s | %.1f | %.1f | %.1f | %.1f | %d | %s |", label, mb, v["VmHWM"] / 1024,
				v["RssAnon"] / 1024, v["RssFile"] / 1024, v["Threads"], (mb <= goal ? "yes" : "NO")
		}' "/proc/$DAEMON_PID/status")")
	echo "  ${MEM_ROWS[-1]}"
}

now_us() {
	if [[ -n ${EPOCHREALTIME:-} ]]; then
		echo "${EPOCHREALTIME/[.,]/}"
	else
		echo $(($(date +%s%N) / 1000))
	fi
}

STAMP=$(date -u +%Y%m%d-%H%M%S)
SAMPLES=$WORK/samples.tsv
printf 'command\trun\tus\n' >"$SAMPLES"

# timed NAME CMD...: runs CMD once, output discarded, and appends its wall
# time in microseconds to the samples; a failing run aborts the benchmark.
timed() {
	local name=$1 t0 t1
	shift
	t0=$(now_us)
	"$@" >/dev/null || die "\`$name\` failed (exit $?)"
	t1=$(now_us)
	printf '%s\t%d\t%d\n' "$name" "$RUN" $((t1 - t0)) >>"$SAMPLES"
}

echo "rivetr bench: $("$BIN" version), ${NAPPS} apps, ${RUNS} runs, idle wait ${IDLE_SECONDS}s"

# 1. Idle memory of a fresh daemon (empty state).
echo "idle memory:"
start_daemon "$WORK/fresh"
mem "fresh data dir, idle ${IDLE_SECONDS}s"
stop_daemon

# 2. Same with NAPPS apps: create them through one daemon, then restart it on
# the same data dir so the figure is of a daemon that did no work.
start_daemon "$WORK/loaded"
cli ssh-keys:add bench "$KEY.pub" >/dev/null
for ((i = 1; i <= NAPPS; i++)); do
	cli apps:create "app$i" >/dev/null
done
stop_daemon
start_daemon "$WORK/loaded"
mem "${NAPPS} apps (restarted), idle ${IDLE_SECONDS}s"

# 3. Latency. Sanity-check the outputs, warm up once, then run the three
# commands interleaved so machine noise hits them alike.
got=$(rssh apps:list | grep -c '^app[0-9]' || true)
[[ $got == "$NAPPS" ]] || die "ssh apps:list listed $got apps, want $NAPPS"
got=$(cli apps:list | grep -c '^app[0-9]' || true)
[[ $got == "$NAPPS" ]] || die "rivetr apps:list listed $got apps, want $NAPPS"
rssh version >/dev/null || die "ssh version failed"
echo "latency: ${RUNS} runs each, interleaved..."
SSH_LIST="ssh rivetr apps:list (${NAPPS} apps)"
SSH_VERSION="ssh rivetr version"
CLI_LIST="rivetr apps:list (unix socket, ${NAPPS} apps)"
for ((RUN = 1; RUN <= RUNS; RUN++)); do
	timed "$SSH_LIST" rssh apps:list
	timed "$SSH_VERSION" rssh version
	timed "$CLI_LIST" cli apps:list
done

# 4. The same daemon after the load above, idle again.
echo "memory after the latency runs:"
mem "${NAPPS} apps, after $((3 * RUNS + 3)) calls, idle ${IDLE_SECONDS}s"
stop_daemon

# Report. Median: mean of the two middle values for an even count;
# p90: nearest rank, ceil(0.9 n).
lat_rows=$(awk -F '\t' -v ref="$SSH_VERSION" '
	NR == 1 { next }
	!($1 in n) { order[++k] = $1 }
	{ n[$1]++; v[$1, n[$1]] = $3 / 1000 }
	END {
		for (j = 1; j <= k; j++) {
			c = order[j]; m = n[c]
			for (a = 1; a <= m; a++) s[a] = v[c, a]
			for (a = 2; a <= m; a++) { x = s[a]; for (b = a - 1; b >= 1 && s[b] > x; b--) s[b + 1] = s[b]; s[b + 1] = x }
			med[c] = (m % 2) ? s[(m + 1) / 2] : (s[m / 2] + s[m / 2 + 1]) / 2
			i90 = int(0.9 * m); if (i90 < 0.9 * m) i90++
			p90[c] = s[i90]; lo[c] = s[1]; hi[c] = s[m]; cnt[c] = m
		}
		for (j = 1; j <= k; j++) {
			c = order[j]
			printf "| %s | %d | %.1f | %.1f | %.1f | %.1f | %.2f |\n", c, cnt[c], med[c], p90[c], lo[c], hi[c], med[c] / med[ref]
		}
	}' "$SAMPLES")

{
	echo "## rivetr bench, $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo
	echo "- rivetr: $("$BIN" version), binary $(($(stat -c %s "$BIN") / 1024)) KiB"
	echo "- machine: $(nproc) CPUs ($(awk -F ': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || echo unknown)), $(awk '/^MemTotal/ { printf "%.0f GiB RAM", $2 / 1048576 }' /proc/meminfo), Linux $(uname -r)"
	[[ -z $GO_ENV ]] || echo "- Go runtime environment: $GO_ENV"
	echo "- $(command -v go >/dev/null && go version || echo 'go: not on PATH'); $(ssh -V 2>&1)"
	echo
	echo "### Idle memory of \`rivetr serve\` (goal: VmRSS <= ${RSS_GOAL_MB} MB)"
	echo
	echo "| state | VmRSS MB | VmHWM MB | RssAnon MB | RssFile MB | threads | <= ${RSS_GOAL_MB} MB |"
	echo "|---|---:|---:|---:|---:|---:|---|"
	printf '%s\n' "${MEM_ROWS[@]}"
	echo
	echo "### Latency, wall time per call in ms (${RUNS} runs each, interleaved)"
	echo
	echo "| command | runs | median | p90 | min | max | median / ssh version |"
	echo "|---|---:|---:|---:|---:|---:|---:|"
	echo "$lat_rows"
} >"$WORK/results.md"

mkdir -p "$OUT"
cp "$WORK/results.md" "$OUT/results-$STAMP.md"
cp "$WORK/results.md" "$OUT/latest.md"
cp "$SAMPLES" "$OUT/samples-$STAMP.tsv"
echo
cat "$WORK/results.md"
echo
echo "saved: bench/out/results-$STAMP.md, bench/out/samples-$STAMP.tsv, bench/out/latest.md"
