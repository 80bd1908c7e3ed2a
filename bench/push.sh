#!/usr/bin/env bash
# Push-to-live figures (issue 3), measured side by side in one run:
#
#  1. Platform overhead: wall time of `git push` of a FROM-scratch Go app
#     minus the time of a plain `docker build` (classic builder, as rivetr
#     uses) of an equivalent context with a warm cache; median of N.
#     Each iteration changes one file, with different contents for the push
#     and the plain build, so neither reuses the other's cache for it.
#  2. Git push throughput of a 200 MB repository (random, incompressible
#     files) over rivetr's SSH server vs OpenSSH's sshd running
#     git-receive-pack, interleaved, median of N; and rivetr's peak RSS
#     (VmHWM) over those pushes. The rivetr pushes go to a non-deploy branch,
#     so nothing is built: this measures the git transport alone.
#
# Loopback only, bounded, cleans up on exit. Needs docker, git, ssh,
# ssh-keygen, go, and /usr/sbin/sshd (apt-get install openssh-server).
# Knobs: BENCH_PUSHES (5), BENCH_BULK_MB (200), BENCH_BULK_RUNS (3).
set -euo pipefail

PUSHES=${BENCH_PUSHES:-5}
BULK_MB=${BENCH_BULK_MB:-200}
BULK_RUNS=${BENCH_BULK_RUNS:-3}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=$ROOT/bin/rivetr
OUT=$ROOT/bench/out
die() { echo "bench: $*" >&2; exit 1; }
[[ -x $BIN ]] || die "$BIN is missing; run \`make build\` first"
for tool in docker git ssh ssh-keygen go timeout; do command -v $tool >/dev/null || die "$tool is required"; done
[[ -x /usr/sbin/sshd ]] || die "/usr/sbin/sshd is required (apt-get install openssh-server)"
docker info >/dev/null 2>&1 || die "no docker engine answers"

WORK=$(mktemp -d /tmp/rivetr-pushbench.XXXXXX)
DAEMON=; SSHD=
cleanup() {
	[[ -n $DAEMON ]] && { kill -TERM $DAEMON 2>/dev/null; wait $DAEMON 2>/dev/null || true; }
	[[ -n $SSHD ]] && { kill $SSHD 2>/dev/null; wait $SSHD 2>/dev/null || true; }
	docker ps -aq --filter label=rivetr.app=pushbench | xargs -r docker rm -f >/dev/null 2>&1 || true
	docker images -q --filter label=rivetr.app=pushbench | xargs -r docker rmi -f >/dev/null 2>&1 || true
	docker rmi -f rivetr-bench-plain >/dev/null 2>&1 || true
	rm -rf "$WORK"
}
trap cleanup EXIT
# Watchdog; its sleep must not hold our stdout open after we exit.
sleep 900 >/dev/null 2>&1 </dev/null & WATCH=$!
( wait_pid=$WATCH; while kill -0 $wait_pid 2>/dev/null; do sleep 1; done
  kill -0 $$ 2>/dev/null && [[ -z ${BENCH_DONE:-} ]] && { echo "bench: watchdog: over 900 s" >&2; kill -TERM $$; } ) >/dev/null 2>&1 </dev/null &
trap 'kill $WATCH 2>/dev/null; cleanup' EXIT

now() { echo "${EPOCHREALTIME/./}"; } # microseconds
ms() { echo "scale=1; $1/1000" | bc; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
freeport() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

SSH_PORT=$(freeport); HTTP_PORT=$(freeport); API_PORT=$(freeport)
export RIVETR_DATA_DIR=$WORK/data RIVETR_CONFIG=$WORK/empty.toml
: > "$RIVETR_CONFIG"
start_daemon() {
	RIVETR_SSH_ADDR=127.0.0.1:$SSH_PORT RIVETR_HTTP_ADDR=127.0.0.1:$HTTP_PORT RIVETR_API_ADDR=127.0.0.1:$API_PORT \
		RIVETR_HTTPS_ADDR= "$BIN" serve 2>>"$WORK/serve.log" &
	DAEMON=$!
	for _ in $(seq 100); do [[ -S $RIVETR_DATA_DIR/rivetr.sock ]] && "$BIN" version >/dev/null 2>&1 && return; sleep 0.1; done
	die "daemon did not start"
}
stop_daemon() { kill -TERM $DAEMON; wait $DAEMON 2>/dev/null || true; DAEMON=; }

ssh-keygen -q -t ed25519 -N '' -f "$WORK/key"
export GIT_SSH_COMMAND="ssh -F /dev/null -i $WORK/key -o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=b@b GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=b@b
start_daemon
"$BIN" ssh-keys:add bench "$WORK/key.pub" >/dev/null

# --- 1. platform overhead -------------------------------------------------
APP=$WORK/app; mkdir -p "$APP"
(cd "$ROOT/e2e/testdata/pushapp" && CGO_ENABLED=0 go build -o "$APP/server" .)
printf 'FROM scratch\nCOPY server /server\nCOPY stamp /stamp\nENV VERSION_TAG=bench\nCMD ["/server"]\n' > "$APP/Dockerfile"
echo warm > "$APP/stamp"
git -C "$APP" init -q -b main && git -C "$APP" add -A && git -C "$APP" commit -qm warm
REMOTE=ssh://rivetr@127.0.0.1:$SSH_PORT/pushbench
timeout 300 git -C "$APP" push -q "$REMOTE" main 2>/dev/null || die "warm-up push failed (see $WORK/serve.log)"
PLAIN=$WORK/plain; cp -r "$APP" "$PLAIN"; rm -rf "$PLAIN/.git"
DOCKER_BUILDKIT=0 docker build -q -t rivetr-bench-plain "$PLAIN" >/dev/null 2>&1 # warm its cache too
declare -a PUSH_MS BUILD_MS OVER_MS
for i in $(seq "$PUSHES"); do
	echo "push-$i-$RANDOM" > "$APP/stamp"; git -C "$APP" commit -qam "v$i"
	t0=$(now); timeout 300 git -C "$APP" push -q "$REMOTE" main 2>/dev/null || die "push $i failed"; t1=$(now)
	curl -fsS -o /dev/null -H "Host: pushbench.localhost" "http://127.0.0.1:$HTTP_PORT/" || die "app not served after push $i"
	echo "plain-$i-$RANDOM" > "$PLAIN/stamp"
	t2=$(now); DOCKER_BUILDKIT=0 docker build -q -t rivetr-bench-plain "$PLAIN" >/dev/null; t3=$(now)
	PUSH_MS+=($(( (t1-t0)/1000 ))); BUILD_MS+=($(( (t3-t2)/1000 ))); OVER_MS+=($(( (t1-t0-(t3-t2))/1000 )))
done
P_MED=$(printf '%s\n' "${PUSH_MS[@]}" | median); B_MED=$(printf '%s\n' "${BUILD_MS[@]}" | median); O_MED=$(printf '%s\n' "${OVER_MS[@]}" | median)
stop_daemon

# --- 2. push throughput: rivetr SSH vs OpenSSH sshd -------------------------
BULK=$WORK/bulk; mkdir -p "$BULK"
for f in $(seq 1 $((BULK_MB/10))); do head -c 10M /dev/urandom > "$BULK/blob$f"; done
git -C "$BULK" init -q -b bulk && git -C "$BULK" add -A && git -C "$BULK" commit -qm bulk
SSHD_PORT=$(freeport)
ssh-keygen -q -t ed25519 -N '' -f "$WORK/sshd_host"
cp "$WORK/key.pub" "$WORK/authorized_keys"; chmod 600 "$WORK/authorized_keys"
cat > "$WORK/sshd_config" <<CFG
Port $SSHD_PORT
ListenAddress 127.0.0.1
HostKey $WORK/sshd_host
AuthorizedKeysFile $WORK/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
PidFile $WORK/sshd.pid
CFG
mkdir -p /run/sshd
/usr/sbin/sshd -D -f "$WORK/sshd_config" -E "$WORK/sshd.log" & SSHD=$!
sleep 0.5
start_daemon
"$BIN" ssh-keys:add bench "$WORK/key.pub" >/dev/null 2>&1 || true
declare -a R_MS O_MS
for i in $(seq "$BULK_RUNS"); do
	"$BIN" apps:create "bulk$i" >/dev/null
	"$BIN" git:set "bulk$i" deploy-branch main >/dev/null
	t0=$(now); timeout 600 git -C "$BULK" push -q "ssh://rivetr@127.0.0.1:$SSH_PORT/bulk$i" bulk 2>/dev/null || die "rivetr bulk push failed"; t1=$(now)
	git init -q --bare "$WORK/sshd-bare-$i.git"
	t2=$(now); timeout 600 git -C "$BULK" push -q "ssh://$(id -un)@127.0.0.1:$SSHD_PORT$WORK/sshd-bare-$i.git" bulk 2>/dev/null || die "sshd bulk push failed"; t3=$(now)
	R_MS+=($(( (t1-t0)/1000 ))); O_MS+=($(( (t3-t2)/1000 )))
	rm -rf "$WORK/sshd-bare-$i.git"
done
HWM=$(awk '/VmHWM/{printf "%.1f", $2/1024}' /proc/$DAEMON/status)
R_MED=$(printf '%s\n' "${R_MS[@]}" | median); O_MED2=$(printf '%s\n' "${O_MS[@]}" | median)
RATIO=$(echo "scale=3; $O_MED2/$R_MED" | bc)
stop_daemon

mkdir -p "$OUT"
REPORT=$OUT/push-latest.md
{
	echo "## rivetr push bench, $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo
	echo "- $("$BIN" version), $(nproc) CPUs, $(go version | cut -d' ' -f3), $(docker version --format 'docker {{.Server.Version}}'), $(ssh -V 2>&1 | cut -d, -f1)"
	echo
	echo "### Platform overhead (median of $PUSHES)"
	echo
	echo "| push wall ms | plain docker build ms | overhead ms (push - build) |"
	echo "|---:|---:|---:|"
	echo "| $P_MED | $B_MED | $O_MED |"
	echo
	echo "samples push: ${PUSH_MS[*]}; build: ${BUILD_MS[*]}; overhead: ${OVER_MS[*]}"
	echo
	echo "### ${BULK_MB} MB push over SSH (median of $BULK_RUNS, interleaved)"
	echo
	echo "| rivetr ms | OpenSSH sshd ms | rivetr throughput / sshd | rivetr peak RSS MB |"
	echo "|---:|---:|---:|---:|"
	echo "| $R_MED | $O_MED2 | ${RATIO}x | $HWM |"
	echo
	echo "samples rivetr: ${R_MS[*]}; sshd: ${O_MS[*]}"
} | tee "$REPORT"
