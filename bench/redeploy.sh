#!/usr/bin/env bash
# Redeploys under load (issue 4, "Figures to report"): failed requests
# during 10 redeploys under constant load (must be 0), and the switch
# latency from "new container healthy" to "all new requests on it".
#
# Runs e2e/redeploy_bench_test.go (TestBenchRedeploysUnderLoad, gated by
# RIVETR_BENCH=1). The test builds its own rivetr binary and the pushapp test
# image; it starts a daemon on loopback (127.0.0.1, free ports, fresh temp
# data dir, empty config), destroys the app and removes its containers and
# images by label when it ends. The test stops itself after 5 minutes; go
# test's -timeout and this script's `timeout` are the backstops.
#
# Needs docker, git, ssh, ssh-keygen, go. Knobs: BENCH_REDEPLOYS (10).
# Output: printed, and saved to bench/out/redeploy-latest.md plus a
# timestamped copy; the full go test log to bench/out/redeploy-<stamp>.log.
set -euo pipefail

REDEPLOYS=${BENCH_REDEPLOYS:-10}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=$ROOT/bench/out
die() { echo "bench: $*" >&2; exit 1; }
for tool in docker git ssh ssh-keygen go timeout; do command -v $tool >/dev/null || die "$tool is required"; done
docker info >/dev/null 2>&1 || die "no docker engine answers (scripts/engine.sh starts one)"

WORK=$(mktemp -d /tmp/rivetr-redeploybench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
STAMP=$(date -u +%Y%m%d-%H%M%S)
mkdir -p "$OUT"
LOG=$OUT/redeploy-$STAMP.log

CMD=(go test -count=1 -timeout 7m -run '^TestBenchRedeploysUnderLoad$' -v ./e2e/)
echo "bench: RIVETR_BENCH=1 RIVETR_BENCH_REDEPLOYS=$REDEPLOYS ${CMD[*]}"
rc=0
# CI=true: a missing engine fails the run instead of skipping it.
(cd "$ROOT" && RIVETR_BENCH=1 RIVETR_BENCH_REDEPLOYS="$REDEPLOYS" RIVETR_BENCH_OUT="$WORK/report.md" CI=true \
	timeout 480 "${CMD[@]}") >"$LOG" 2>&1 || rc=$?
[[ -s $WORK/report.md ]] || { tail -n 60 "$LOG" >&2; die "no report (go test exit $rc); full log: $LOG"; }

REPORT=$OUT/redeploy-latest.md
{
	echo "## rivetr redeploy bench, $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo
	echo "- rivetr $(git -C "$ROOT" describe --tags --always --dirty 2>/dev/null || echo dev), $(nproc) CPUs, $(go version | cut -d' ' -f3), $(docker version --format 'docker {{.Server.Version}}')"
	echo "- command: \`bench/redeploy.sh\` = \`RIVETR_BENCH=1 RIVETR_BENCH_REDEPLOYS=$REDEPLOYS ${CMD[*]}\`; go test exit $rc"
	echo
	cat "$WORK/report.md"
} >"$WORK/final.md"
cp "$WORK/final.md" "$OUT/redeploy-$STAMP.md"
cp "$WORK/final.md" "$REPORT"
cat "$REPORT"
echo
echo "saved: bench/out/redeploy-latest.md, bench/out/redeploy-$STAMP.md, bench/out/redeploy-$STAMP.log"
exit "$rc"
