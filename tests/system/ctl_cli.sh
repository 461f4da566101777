#!/usr/bin/env bash
# ctl_cli: lwvhostctl against a running lwvhostd: every command's text and
# JSON answers, its options (long, short, --opt=value), a policy changed at
# run time and read back, and the exit codes: 0 ok, 1 an error answer or no
# daemon, 2 a bad command line (said on stderr, nothing sent).
# Exit 0 pass, 77 skip, else fail.
set -u
cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
NAME=ctl_cli

skip() { echo "$NAME: SKIP: $*"; exit 77; }
fail() { echo "$NAME: FAIL: $*"; exit 1; }

[[ -x $BUILD/lwvhostd && -x $BUILD/lwvhostctl ]] || skip "not built (make)"
command -v python3 >/dev/null 2>&1 || skip "python3 is needed to check the JSON"

T=$(mktemp -d /tmp/lwv-ctlcli.XXXXXX) || fail "mktemp"
D=
cleanup() { [[ -n $D ]] && kill "$D" 2>/dev/null && wait "$D" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT

"$BUILD/lwvhostd" --port a,path="$T/a.sock",mac=02:00:00:00:00:0a --port b,path="$T/b.sock" \
    --ctl "$T/ctl.sock" --log-level warn >"$T/log" 2>&1 &
D=$!
for _ in $(seq 100); do [[ -S $T/ctl.sock ]] && break; sleep 0.05; done
[[ -S $T/ctl.sock ]] || fail "lwvhostd did not start: $(cat "$T/log")"

ctl() { "$BUILD/lwvhostctl" -s "$T/ctl.sock" "$@"; }
# expect CODE ARGS...: runs lwvhostctl, checks its exit code
expect() {
    local want=$1; shift
    ctl "$@" >"$T/out" 2>"$T/err"
    local rc=$?
    [[ $rc == "$want" ]] || fail "lwvhostctl $* exited $rc, want $want; stderr: $(cat "$T/err")"
}
json_ok() { python3 -c 'import json,sys; json.load(sys.stdin)' <"$T/out" || fail "$1: not JSON"; }

expect 0 ports
grep -q "^a " "$T/out" || grep -q "a " "$T/out" || fail "ports lists port a"
expect 0 ports --json; json_ok "ports --json"
expect 0 ports -j; json_ok "ports -j"
expect 0 rings --json; json_ok "rings --json"
expect 0 fdb --json; json_ok "fdb --json"
python3 -c '
import json,sys
d = json.load(open(sys.argv[1]))
e = [x for x in d["fdb"] if x["mac"] == "02:00:00:00:00:0a"]
assert e and e[0]["port"] == "a" and e[0]["static"], d
' "$T/out" || fail "fdb shows the configured MAC as a's static entry"
expect 0 stats --json; json_ok "stats --json"
expect 0 stats --prometheus
grep -q "^lwvhost_" "$T/out" || fail "stats --prometheus has lwvhost_ metrics"
expect 0 stats --watch=0.2 --json &
W=$!
sleep 0.7; kill "$W" 2>/dev/null; wait "$W" 2>/dev/null

expect 0 policy a interval:40
expect 0 policy
grep -E "^a +interval:40" "$T/out" >/dev/null || fail "policy a reads back interval:40: $(cat "$T/out")"
expect 0 policy all notify
expect 0 policy
grep -E "^b +notify" "$T/out" >/dev/null || fail "policy all sets b too"
expect 1 policy a bogus            # the daemon refuses: an error answer
grep -q "unknown policy" "$T/err" || fail "the daemon's refusal goes to stderr"
expect 1 policy nosuchport poll

expect 0 trace --seconds 0.1 --summary
grep -q "summary" "$T/out" || fail "trace --summary"
expect 0 trace -s 0.1 -w 0
grep -q "# W)" "$T/out" || fail "trace graph header"

# Ports at run time, save, version.
expect 0 port add "c,path=$T/c.sock,mac=02:00:00:00:00:0c,queues=2"
[[ -S $T/c.sock ]] || fail "port add: the socket listens"
expect 1 port add "c,path=$T/c2.sock"
grep -q "exists already" "$T/err" || fail "port add of an existing name: the daemon says why"
expect 0 save "$T/saved.conf"
grep -q "^port c,path=$T/c.sock,queues=2,mac=02:00:00:00:00:0c" "$T/saved.conf" ||
    fail "save FILE writes the running ports: $(cat "$T/saved.conf")"
"$BUILD/lwvhostd" --config "$T/saved.conf" --help >/dev/null ||
    fail "the saved file is a valid --config"
expect 1 save                        # started without --config
grep -q "without --config" "$T/err" || fail "save without a --config file: the daemon says why"
expect 0 port del c
[[ ! -e $T/c.sock ]] || fail "port del: the socket is removed"
expect 1 port del c
expect 0 version
grep -q "^lwvhostctl [0-9]" "$T/out" && grep -q "^lwvhostd [0-9]" "$T/out" ||
    fail "version shows both: $(cat "$T/out")"

# Bad command lines: exit 2 and a word on stderr.
for bad in "stats --bogus" "stats --watch x" "stats --watch" "stats --json --prometheus" \
           "trace extra" "trace --seconds -1" "ports --json extra" "fdb -x" "policy a" \
           "policy a b c" "port add" "port frob x" "tap add" "save a b" "version x" \
           "nosuchcommand"; do
    # shellcheck disable=SC2086
    expect 2 $bad
    [[ -s $T/err ]] || fail "lwvhostctl $bad: nothing said on stderr"
done
expect 0 help
grep -q "Commands:" "$T/out" || fail "help prints the usage"

# No daemon: exit 1 and say where it looked.
"$BUILD/lwvhostctl" -s "$T/none.sock" ports >/dev/null 2>"$T/err"
[[ $? == 1 ]] || fail "no daemon should exit 1"
grep -q "$T/none.sock" "$T/err" || fail "no daemon: the error names the socket"
echo "$NAME: ok"
