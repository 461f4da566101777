#!/bin/bash
# lab_smoke.sh: a short lwvhost-lab run, end to end, and a check that its
# results folder holds consistent numbers.
#
# Two TCG guests, tcp_stream and rr (1024 bytes, 1 stream), 3 s each, under
# the notify and then the interval:50 policy (switched at run time while the
# guests keep running). Checks that every guest of every run reported, that
# lwvhostd's per-port counters cover the packets and bytes each guest counted
# on its eth0 (and by no more than stray packets), that the tools' own byte
# counts fit in the guests' counters, that backend CPU and trace summaries
# were recorded, the reports written, and the guests powered off cleanly.
#
# Env: BUILD (default build), LWV_KEEP=1 keeps the results folder.
# Exit: 0 pass, 77 skipped (not root, or a tool is missing), else fail.
# Needs (Debian 12): python3 qemu-system-x86 linux-image-amd64 busybox-static
#      cpio iproute2 iperf3 gcc libc6-dev (lwv-rr is linked statically);
#      sysstat (pidstat) is optional.
set -u
cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
START=$SECONDS

log()  { echo "lab_smoke: $*"; }
skip() { echo "lab_smoke: SKIP: $*"; exit 77; }
fail() { echo "lab_smoke: FAIL: $*"; exit 1; }

[ "$(id -u)" = 0 ] || skip "needs root (network namespace, tap)"
command -v python3 >/dev/null 2>&1 || skip "python3 missing (apt-get install python3)"
command -v timeout >/dev/null 2>&1 || skip "timeout missing"
command -v qemu-system-x86_64 >/dev/null 2>&1 || skip "qemu-system-x86_64 missing (apt-get install qemu-system-x86)"
command -v iperf3 >/dev/null 2>&1 || skip "iperf3 missing (apt-get install iperf3)"
[ -c /dev/net/tun ] || skip "/dev/net/tun missing"
[ -x "$BUILD/lwvhostd" ] && [ -x "$BUILD/lwvhostctl" ] || fail "$BUILD/lwvhostd not built (run make)"

T=$(mktemp -d /tmp/lwv-lab-smoke.XXXXXX) || fail "mktemp"
LAB=
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$LAB" ] && kill -0 "$LAB" 2>/dev/null; then
        kill -INT "$LAB" 2>/dev/null          # the lab cleans up after itself
        for _ in $(seq 60); do kill -0 "$LAB" 2>/dev/null || break; sleep 1; done
        kill -9 "$LAB" 2>/dev/null
    fi
    if [ -n "${LWV_KEEP:-}" ]; then log "kept $T"; else rm -rf "$T"; fi
    if [ $rc = 0 ]; then log "PASS ($((SECONDS - START)) s)"
    elif [ $rc != 77 ]; then log "FAIL (rc=$rc, $((SECONDS - START)) s)"; fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

OUT=$T/results
log "lwvhost-lab run: 2 guests, tcp_stream and rr, notify then interval:50"
# Bounded: the lab gets SIGINT (and cleans up) after 150 s, SIGKILL 30 s later.
timeout -s INT -k 30 150 python3 tools/lab/lwvhost-lab run --build "$BUILD" --accel tcg \
    --vms 2 --test tcp_stream,rr --size 1024 --threads 1 --seconds 3 \
    --policy notify,interval:50 --out "$OUT" &
LAB=$!
wait $LAB
rc=$?
LAB=
[ $rc = 77 ] && skip "lwvhost-lab skipped (see above)"
[ $rc = 124 ] && fail "lwvhost-lab did not finish within 150 s"
[ -f "$OUT/results.json" ] || fail "no $OUT/results.json (lwvhost-lab rc=$rc)"
[ $rc = 0 ] || log "lwvhost-lab exited with $rc; checking what it left"

python3 - "$OUT" <<'EOF' || fail "results are not consistent (see above)"
import json, os, sys
import xml.dom.minidom

out = sys.argv[1]
R = json.load(open(os.path.join(out, "results.json")))
bad = []
def expect(cond, what):
    if not cond:
        bad.append(what)

m = R["meta"]
expect(m["accel"] == "tcg", "accel is %s, not tcg" % m["accel"])
expect(R.get("error") is None, "the lab reported an error: %s" % R.get("error"))
runs = R["runs"]
want = [(p, t) for p in ("notify", "interval:50") for t in ("tcp_stream", "rr")]
expect([(r["policy"], r["test"]) for r in runs] == want,
       "runs %s, expected %s" % ([(r["policy"], r["test"]) for r in runs], want))
for r in runs:
    rid = r["id"]
    gs = r["guests"]
    expect(len(gs) == 2, "%s: %d guests" % (rid, len(gs)))
    for g in gs:
        who = "%s %s" % (rid, g["guest"])
        if not g.get("reported"):
            bad.append("%s: no report" % who)
            continue
        expect(g["rc"] == 0, "%s: tool exit status %s" % (who, g["rc"]))
        c, b = g["counters"], g["backend"]
        # lwvhostd's port counters (tx = from the guest, rx = to the guest),
        # taken before the run started and after every guest reported,
        # cover what the guest counted on eth0 over its test.
        for k in ("tx_packets", "tx_bytes", "rx_packets", "rx_bytes"):
            slack = (64 if k.endswith("packets") else 64 * 1600) + c[k] // 50
            expect(c[k] <= b[k] <= c[k] + slack,
                   "%s: backend %s %d, guest counted %d" % (who, k, b[k], c[k]))
        expect(c["tx_packets"] > 100 and c["rx_packets"] > 100,
               "%s: hardly any traffic: %s" % (who, c))
        # What the peer received (iperf3 receiver, or transactions * size)
        # left through the guest's eth0.
        expect(g.get("received_bytes", 0) > 0 and g["received_bytes"] <= c["tx_bytes"],
               "%s: the peer received %s bytes, eth0 sent %d" % (who, g.get("received_bytes"),
                                                                 c["tx_bytes"]))
        if r["test"] == "rr":
            expect((g.get("tps") or 0) > 0 and g.get("errors") == 0,
                   "%s: rr tps %s errors %s" % (who, g.get("tps"), g.get("errors")))
        else:
            expect((g.get("mbps") or 0) > 0, "%s: throughput %s" % (who, g.get("mbps")))
    be = r["backend"]
    expect(0 < be["cpu_pct"] < 100.0 * (os.cpu_count() or 1) + 5,
           "%s: backend CPU %s%%" % (rid, be["cpu_pct"]))
    expect(be["frames_per_s"] > 0 and be["wakeups_per_s"] > 0,
           "%s: frames/s %s wake-ups/s %s" % (rid, be["frames_per_s"], be["wakeups_per_s"]))
    expect(be["workers"] and all(w.get("cpu_ns", 0) > 0 for w in be["workers"]),
           "%s: no worker CPU" % rid)
    tp = r.get("trace")
    expect(tp and "summary" in open(os.path.join(out, tp)).read(),
           "%s: no trace summary" % rid)
    agg = sum(g.get("mbps", 0) for g in gs) if r["test"] != "rr" else sum(g.get("tps", 0) for g in gs)
    key = "throughput_mbps" if r["test"] != "rr" else "tps"
    expect(abs((r[key] or 0) - agg) <= 0.01 * agg + 0.1,
           "%s: %s %s is not the sum over the guests %s" % (rid, key, r[key], agg))
    expect(r["ok"], "%s: the lab flagged problems: %s" % (rid, r["problems"]))
sd = R["shutdown"]
expect(len(sd) == 2 and all(s["clean"] for s in sd), "guests did not power off cleanly: %s" % sd)
for f in ("summary.txt", "summary.md", "plot-tcp_stream.svg", "plot-rr.svg"):
    p = os.path.join(out, f)
    expect(os.path.isfile(p) and os.path.getsize(p) > 0, "missing %s" % f)
for f in ("plot-tcp_stream.svg", "plot-rr.svg"):
    try:
        xml.dom.minidom.parse(os.path.join(out, f))
    except Exception as e:
        bad.append("%s is not valid XML: %s" % (f, e))
md = open(os.path.join(out, "summary.md")).read()
expect(md.count("\n| notify |") == 2 and md.count("\n| interval:50 |") == 2,
       "summary.md does not have the 4 rows")
for b in bad:
    print("lab_smoke: inconsistent: " + b)
sys.exit(1 if bad else 0)
EOF
[ $rc = 0 ] || fail "lwvhost-lab exited with $rc"
exit 0
