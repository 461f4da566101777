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
# lwvhostctl itself in the background (not a subshell that would outlive
# the kill), writing to its own file.
"$BUILD/lwvhostctl" -s "$T/ctl.sock" stats --watch=0.2 --json >"$T/watch" 2>&1 &
W=$!
sleep 0.7; kill "$W" 2>/dev/null; wait "$W" 2>/dev/null
[[ $(grep -c '^{"ports"' "$T/watch") -ge 2 ]] ||
    fail "stats --watch=0.2 --json printed again: $(head -c 300 "$T/watch")"

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
# A VXLAN port at run time: a datagram from an address that is not a
# remote is dropped, and the JSON and Prometheus views both count it.
VXPORT=$((20000 + $$ % 20000))
expect 0 vxlan add "vx0,local=127.0.0.1,remote=127.0.0.2,vni=77,dstport=$VXPORT"
python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.9", 0))
s.sendto(bytes([8, 0, 0, 0, 0, 0, 77, 0]) + bytes(60), ("127.0.0.1", int(sys.argv[1])))
' "$VXPORT" || fail "sending a datagram to the VXLAN port"
for _ in $(seq 100); do
    expect 0 stats --json
    python3 -c 'import json,sys
d = json.load(open(sys.argv[1]))
sys.exit(0 if [p for p in d["ports"] if p["name"] == "vx0" and p["wire_unknown_remote"] == 1] else 1)' \
        "$T/out" && break
    sleep 0.05
done
python3 -c 'import json,sys
d = json.load(open(sys.argv[1]))
v = [p for p in d["ports"] if p["name"] == "vx0"]
assert v and v[0]["wire_unknown_remote"] == 1 and v[0]["tx_drops"] == 1 and v[0]["remotes"] == 1, v' \
    "$T/out" || fail "stats --json counts the datagram from 127.0.0.9 as wire_unknown_remote"
expect 0 stats --prometheus
for want in 'lwvhost_vxlan_wire_drops_total{port="vx0",reason="unknown_remote"} 1' \
            'lwvhost_vxlan_wire_drops_total{port="vx0",reason="short"} 0' \
            'lwvhost_host_port_drops_total{port="vx0",type="vxlan",dir="tx"} 1' \
            'lwvhost_host_port_packets_total{port="vx0",type="vxlan",dir="tx"} 0' \
            'lwvhost_vxlan_remotes{port="vx0"} 1' \
            'lwvhost_vxlan_gro_buffers_total{port="vx0"} 0' \
            'lwvhost_vxlan_gro_datagrams_total{port="vx0"} 0'; do
    grep -qxF "$want" "$T/out" || fail "stats --prometheus has '$want': $(grep vx0 "$T/out")"
done
# Each metric family is one group under its # TYPE line, as the format wants.
awk '/^# TYPE/ { fam = $3; if (seen[fam]++) bad = bad " " fam; next }
     /^lwvhost_/ { n = $0; sub(/[{ ].*/, "", n); if (n != fam) bad = bad " " n }
     END { if (bad != "") { print bad; exit 1 } }' "$T/out" ||
    fail "stats --prometheus: samples outside their family's group"
expect 0 vxlan del vx0

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
