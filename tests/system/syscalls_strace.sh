#!/usr/bin/env bash
# syscalls_strace: the worker's own count of its system calls (lwvhostctl
# stats --json, workers[0].syscalls) checked against strace attached to that
# thread alone.  For each policy (notify, interval:200, adaptive:200) it
# starts lwvhostd with two vhost-user ports and one worker, drives traffic
# through it with lwvhost-bench (5k frames/s, --attach), and traces the
# worker thread (its TID from /proc/PID/task/*/comm) for a window in the
# middle of the run.  Checks: the daemon's delta is strace's count plus the
# few calls at the window's edges (0..TOL more, see below); the window holds
# real work (more than 100 calls, frames forwarded); strace saw only the
# kinds of system call the worker counts (COUNTED below).  Any other kind
# is a call the worker makes without counting it, named in the failure.
#
# The window's edges must be quiet, or every millisecond between reading the
# counter and strace attaching is ~10 calls neither side can account for:
# the bench (all its VMs live in its one process) is stopped with SIGSTOP,
# the worker is waited for until it sleeps (counter, frames and thread state
# still), then strace attaches (or detaches) and the bench continues.
#   BUILD=dir                 binaries (default build)
#   LWV_STRACE_POLICIES="..." policies to check (default all three)
#   LWV_STRACE_WINDOW=S       seconds traced per policy (default 2)
# About 11 s.  Exit 0 pass, 77 skip (no strace, ptrace not permitted), else fail.
set -u
cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
BENCH=$BUILD/lwvhost-bench
NAME=syscalls_strace
POLICIES=${LWV_STRACE_POLICIES:-"notify interval:200 adaptive:200"}
WINDOW=${LWV_STRACE_WINDOW:-2}    # seconds of traffic under strace, per policy
# Tolerance.  The worker publishes its count at the end of each loop
# iteration, so the counter read while it sleeps leaves out the epoll_pwait2
# it sleeps in.  strace attaching interrupts that call (PTRACE_INTERRUPT: it
# returns EINTR before strace traces system calls, so strace never sees it)
# and the worker counts it in the window; detaching interrupts the last sleep
# the same way (strace saw it begin, not end: not in its table) and the
# worker's next iteration, untraced, publishes it, with any call that
# iteration makes (adaptive's CPU clock read).  So the daemon counts 2 or 3
# calls more than strace sees (a full trace confirms both edges).  Allowed:
# 0 to TOL more; fewer means strace saw calls the worker did not count.
TOL=4
# The kinds of system call the worker counts (sysc_note beside each one):
# its wait (epoll_pwait2, or epoll_wait before Linux 5.11), eventfd writes
# (calls, error fd) and tap writev/read, and clock_gettime on its thread
# CPU clock (not in the vDSO).
COUNTED="epoll_pwait2 epoll_wait write read writev clock_gettime"

skip() { echo "$NAME: SKIP: $*"; exit 77; }
fail() { echo "$NAME: FAIL: $*"; exit 1; }

[[ -x $BUILD/lwvhostd && -x $BUILD/lwvhostctl && -x $BENCH ]] || skip "$BUILD not built (make)"
command -v python3 >/dev/null 2>&1 || skip "python3 is needed to read the JSON"
command -v strace >/dev/null 2>&1 || skip "strace is not installed (apt-get install strace)"

T=$(mktemp -d /tmp/lwv-strace.XXXXXX) || fail "mktemp"
D='' B='' S='' P=''
# reap SIG PID: sends SIG to a child of ours, SIGKILL if it is still there
# after 5 s, and waits for it.
reap() {
    kill "-$1" "$2" 2>/dev/null || return 0
    for _ in $(seq 100); do kill -0 "$2" 2>/dev/null || break; sleep 0.05; done
    kill -KILL "$2" 2>/dev/null
    wait "$2" 2>/dev/null
}
cleanup() {
    [[ -n $S ]] && reap INT "$S"
    [[ -n $B ]] && kill -CONT "$B" 2>/dev/null && reap TERM "$B"
    [[ -n $D ]] && reap TERM "$D"
    [[ -n $P ]] && reap TERM "$P"
    rm -rf "$T"
}
trap cleanup EXIT

# May strace attach to a process that is not its descendant, as it will to
# lwvhostd (both are children of this script)?  Yama's ptrace_scope, a
# missing CAP_SYS_PTRACE or a container's seccomp filter may forbid it.
sleep 20 &
P=$!
strace -qq -o /dev/null -p "$P" 2>"$T/probe" &
S=$!
for _ in $(seq 40); do
    grep -q "TracerPid:[[:space:]]*[1-9]" "/proc/$P/status" 2>/dev/null && break
    kill -0 "$S" 2>/dev/null || break
    sleep 0.05
done
grep -q "TracerPid:[[:space:]]*[1-9]" "/proc/$P/status" 2>/dev/null ||
    skip "ptrace is not permitted here: $(head -n 1 "$T/probe")"
reap INT "$S"; S=
reap TERM "$P"; P=

ctl() { "$BUILD/lwvhostctl" -s "$T/ctl.sock" "$@"; }
# Worker 0's numeric FIELDs from stats --json, space-separated ("none" for
# one it lacks).  Read with bash, not python: this runs every 40 ms, and
# python starts in 0.1-0.3 s on a small machine.  The JSON is one line; the
# workers come last, worker 0 first, and these names are theirs alone.
wstat() {
    local js k out=()
    js=$(ctl stats --json 2>/dev/null) || { echo "no-answer"; return; }
    js=${js#*\"workers\":}
    for k; do
        if [[ $js =~ \"$k\":([0-9]+) ]]; then out+=("${BASH_REMATCH[1]}"); else out+=(none); fi
    done
    echo "${out[*]}"
}
# thread state (R, S, t ...) of the worker
tstate() { sed 's/^.*) //' "/proc/$D/task/$TID/stat" 2>/dev/null | cut -d' ' -f1; }
# Waits until the worker sleeps: counter and frames unchanged over 5 reads
# 40 ms apart, the thread asleep (S) each time.  Prints "syscalls frames".
quiet() {
    local last='' same=0 now
    for _ in $(seq 150); do
        now=$(wstat syscalls frames)
        if [[ $now =~ ^[0-9]+\ [0-9]+$ && $now == "$last" && $(tstate) == S ]]; then
            same=$((same + 1))
            [[ $same -ge 5 ]] && { echo "$now"; return 0; }
        else
            same=0
        fi
        last=$now
        sleep 0.04
    done
    return 1
}
traced() { grep -q "TracerPid:[[:space:]]*[1-9]" "/proc/$D/task/$TID/status" 2>/dev/null; }

check_policy() {
    local pol=$1 tag=$1
    rm -f "$T"/*.sock "$T/log"
    "$BUILD/lwvhostd" --port vm0,path="$T/vm0.sock" --port vm1,path="$T/vm1.sock" \
        --workers 1 --policy "$pol" --ctl "$T/ctl.sock" --log-level warn >"$T/log" 2>&1 &
    D=$!
    for _ in $(seq 100); do [[ -S $T/ctl.sock ]] && break; sleep 0.05; done
    [[ -S $T/ctl.sock ]] || fail "$tag: lwvhostd did not start: $(cat "$T/log")"

    # The worker thread, by name (it names itself, then stores its TID for
    # stats, when it starts: maybe after the control socket is up); the
    # daemon must report the same TID.
    TID=
    local jtid=
    for _ in $(seq 100); do
        for c in /proc/"$D"/task/*/comm; do
            [[ $(cat "$c" 2>/dev/null) == lwv-worker0 ]] && TID=$(basename "$(dirname "$c")")
        done
        jtid=$(wstat tid syscalls)
        [[ -n $TID && $jtid =~ ^[1-9] ]] && break
        sleep 0.05
    done
    [[ -n $TID ]] || fail "$tag: no thread named lwv-worker0 in lwvhostd ($D)"
    [[ ${jtid#* } != none ]] ||
        skip "$BUILD/lwvhostd reports no per-worker syscalls (stats --json): stale build?"
    [[ ${jtid%% *} == "$TID" ]] || fail "$tag: stats says worker 0 is TID ${jtid%% *}, /proc says $TID"

    # Traffic for longer than the whole check needs; stopped when done.
    "$BENCH" run --attach "$T/ctl.sock" --sock-dir "$T" --rate 5k --seconds 25 --warmup 0.2 \
        --no-pin --json >"$T/bench.out" 2>"$T/bench.err" &
    B=$!
    local f=0
    for _ in $(seq 100); do
        f=$(wstat frames)
        [[ $f =~ ^[0-9]+$ && $f -gt 1000 ]] && break
        kill -0 "$B" 2>/dev/null || fail "$tag: lwvhost-bench ended early: $(tail -n 3 "$T/bench.err")"
        sleep 0.05
    done
    [[ $f =~ ^[0-9]+$ && $f -gt 1000 ]] || fail "$tag: no traffic through the worker (frames $f)"

    # Left edge: bench stopped, worker asleep, counter read, strace attached.
    kill -STOP "$B"
    local before after
    before=$(quiet) || fail "$tag: the worker does not go to sleep with the VMs stopped"
    strace -qq -c -o "$T/strace.txt" -p "$TID" 2>"$T/strace.err" &
    S=$!
    for _ in $(seq 100); do traced && break; kill -0 "$S" 2>/dev/null || break; sleep 0.02; done
    traced || fail "$tag: strace did not attach to $TID: $(cat "$T/strace.err")"
    kill -CONT "$B"
    sleep "$WINDOW"
    # Right edge: the same, backwards.
    kill -STOP "$B"
    quiet >/dev/null || fail "$tag: the worker does not go to sleep with the VMs stopped (traced)"
    kill -INT "$S"
    for _ in $(seq 100); do kill -0 "$S" 2>/dev/null || break; sleep 0.05; done
    kill -KILL "$S" 2>/dev/null   # stuck 5 s after SIGINT: exits 137, reported below
    wait "$S"
    local src=$?
    S=
    # strace detaches on SIGINT, prints its table and exits 0 or 130 (128+SIGINT)
    [[ $src == 0 || $src == 130 ]] || fail "$tag: strace exited $src: $(cat "$T/strace.err")"
    [[ -s $T/strace.txt ]] || fail "$tag: strace wrote no table: $(cat "$T/strace.err")"
    after=$(quiet) || fail "$tag: the worker does not go to sleep after strace detached"
    kill -CONT "$B"
    reap INT "$B"; B=
    reap TERM "$D"; D=

    if ! python3 - "$tag" "$before" "$after" "$T/strace.txt" "$TOL" "$COUNTED" <<'EOF'
import sys
tag, before, after, path, tol, counted = sys.argv[1:]
tol = int(tol)
counted = set(counted.split())
s0, f0 = map(int, before.split())
s1, f1 = map(int, after.split())
calls = {}
errors = {}
for line in open(path):
    p = line.split()
    # rows: % time, seconds, usecs/call, calls, [errors,] syscall
    if len(p) < 5 or not p[3].isdigit() or p[-1] in ("total", "syscall"):
        continue
    calls[p[-1]] = int(p[3])
    errors[p[-1]] = int(p[4]) if len(p) == 6 else 0
traced = sum(calls.values())
own = s1 - s0
frames = f1 - f0
kinds = ", ".join("%s %d%s" % (k, n, " (%d errors)" % errors[k] if errors[k] else "")
                  for k, n in sorted(calls.items(), key=lambda kv: -kv[1]))
print("syscalls_strace: %-13s daemon %6d, strace %6d (%+d; %s), frames %d"
      % (tag, own, traced, own - traced, kinds or "nothing", frames))
bad = []
extra = sorted(k for k in calls if k not in counted)
if extra:
    bad.append("the worker made system calls it does not count: %s"
               % ", ".join("%s (%d)" % (k, calls[k]) for k in extra))
if traced <= 100 or own <= 100:
    bad.append("too few calls in the window to mean anything (daemon %d, strace %d)" % (own, traced))
if frames <= 0:
    bad.append("no frames forwarded in the window")
if own < traced:
    hint = ""
    if calls.get("clock_gettime", 0) > traced - own:
        try:
            cs = open("/sys/devices/system/clocksource/clocksource0/current_clocksource").read().strip()
        except OSError:
            cs = "unknown"
        hint = (" (if clock_gettime: CLOCK_MONOTONIC is a system call, not a vDSO read, "
                "with clocksource %s)" % cs)
    bad.append("strace saw %d system calls, the daemon counted %d: the worker makes %d "
               "it does not count%s" % (traced, own, traced - own, hint))
elif own - traced > tol:
    bad.append("the daemon counted %d system calls, strace saw %d: %d more than the %d "
               "the edges of the window explain" % (own, traced, own - traced, tol))
for b in bad:
    print("syscalls_strace: FAIL: %s: %s" % (tag, b))
sys.exit(1 if bad else 0)
EOF
    then
        echo "--- strace -c -p $TID ($tag):"
        cat "$T/strace.txt"
        fail "$tag: see above"
    fi
}

for pol in $POLICIES; do
    check_policy "$pol"
done
echo "$NAME: ok"
