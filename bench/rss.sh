#!/usr/bin/env bash
# Idle memory of several rivetr binaries side by side: bench/rss.sh N BIN...
# starts each binary in turn (interleaved, N rounds) as `rivetr serve` on a
# fresh data dir and loopback ports, waits BENCH_IDLE_SECONDS (10) idle,
# reads VmRSS, RssAnon, RssFile and VmHWM from /proc/PID/status, and prints
# the median of each per binary. A round is started at the top of a minute
# so the idle window does not cross the backup scheduler's minute tick.
set -euo pipefail
(( $# >= 2 )) || { echo "usage: bench/rss.sh ROUNDS BIN..." >&2; exit 2; }
rounds=$1; shift
idle=${BENCH_IDLE_SECONDS:-10}
declare -A samples
for ((i = 1; i <= rounds; i++)); do
	for bin in "$@"; do
		sec=$((10#$(date +%S)))
		if ((sec > 58 - idle)); then sleep $((61 - sec)); fi
		dir=$(mktemp -d)
		: >"$dir/empty.toml"
		RIVETR_CONFIG=$dir/empty.toml RIVETR_DATA_DIR=$dir/data RIVETR_SSH_ADDR=127.0.0.1:0 \
			RIVETR_HTTP_ADDR=127.0.0.1:0 RIVETR_HTTPS_ADDR= RIVETR_API_ADDR=127.0.0.1:0 \
			RIVETR_LOG_FORMAT=json "$bin" serve </dev/null >"$dir/log" 2>&1 &
		pid=$!
		sleep "$idle"
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "$bin exited:" >&2
			cat "$dir/log" >&2
			exit 1
		fi
		line=$(awk '/^(VmRSS|RssAnon|RssFile|VmHWM):/ {printf "%s=%.1f ", substr($1, 1, length($1) - 1), $2 / 1024}' "/proc/$pid/status")
		echo "$bin round $i: $line"
		samples[$bin]+="$line"$'\n'
		kill -KILL "$pid"
		wait "$pid" 2>/dev/null || true
		rm -rf "$dir"
	done
done
for bin in "$@"; do
	printf '%s' "${samples[$bin]}" | awk -v bin="$bin" '
		{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1], NR] = kv[2] } }
		END {
			n = NR; printf "median %s (n=%d):", bin, n
			split("VmRSS RssAnon RssFile VmHWM", keys, " ")
			for (k = 1; k <= 4; k++) {
				m = 0; for (r = 1; r <= n; r++) a[r] = v[keys[k], r]
				for (x = 1; x <= n; x++) for (y = x + 1; y <= n; y++) if (a[y] < a[x]) { t = a[x]; a[x] = a[y]; a[y] = t }
				med = (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
				printf " %s=%.1f MB", keys[k], med
			}
			printf "\n"
		}'
done
