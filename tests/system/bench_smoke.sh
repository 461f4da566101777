#!/usr/bin/env bash
# bench_smoke: a short lwvhost-bench sweep against lwvhostd (peak under poll,
# then two policies at 50 % load, 2 s each) and checks that results.csv,
# results.json, results.md and the SVG plots are produced and agree, and that
# every run accounts for its frames: sent = received + dropped by the backend
# (the bench drains before it counts, so nothing is left in flight).
# Also checks the usage exit codes.  Exit 0 pass, 77 skip, else fail.
set -u
cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
BENCH=$BUILD/lwvhost-bench
NAME=bench_smoke

skip() { echo "$NAME: SKIP: $*"; exit 77; }
fail() { echo "$NAME: FAIL: $*"; exit 1; }

[[ -x $BENCH ]] || skip "$BENCH not built (make)"
[[ -x $BUILD/lwvhostd ]] || skip "$BUILD/lwvhostd not built (make)"
command -v python3 >/dev/null 2>&1 || skip "python3 is needed to check the JSON"

T=$(mktemp -d /tmp/lwvbench-smoke.XXXXXX) || fail "mktemp"
cleanup() { rm -rf "$T"; }
trap cleanup EXIT

# usage errors exit 2, before anything starts
"$BENCH" sweep >/dev/null 2>&1; [[ $? == 2 ]] || fail "sweep without --out should exit 2"
"$BENCH" run --size 10 >/dev/null 2>&1; [[ $? == 2 ]] || fail "run --size 10 should exit 2"
"$BENCH" run --vms 3 >/dev/null 2>&1; [[ $? == 2 ]] || fail "run --vms 3 (pairs) should exit 2"
"$BENCH" bogus >/dev/null 2>&1; [[ $? == 2 ]] || fail "an unknown command should exit 2"
"$BENCH" run --help | grep -q -- --workload || fail "run --help"
"$BENCH" sweep --help | grep -q -- --policies || fail "sweep --help"

policies=notify,adaptive
"$BUILD/lwvhostd" --help 2>&1 | grep -q -- --policy || policies=default

OUT=$T/out
echo "$NAME: $BENCH sweep --out $OUT --seconds 2 --warmup 0.3 --loads 50 --policies $policies"
timeout -k 10 120 "$BENCH" sweep --out "$OUT" --seconds 2 --warmup 0.3 --loads 50 \
    --policies "$policies" --vms 2 --sizes 64 --streams 1
rc=$?
[[ $rc == 0 ]] || fail "sweep exited $rc"

for f in results.csv results.json results.md; do
    [[ -s $OUT/$f ]] || fail "$f missing or empty"
done
compgen -G "$OUT/cpu-*.svg" >/dev/null || fail "no cpu-*.svg"
compgen -G "$OUT/latency-*.svg" >/dev/null || fail "no latency-*.svg"

python3 - "$OUT" <<'EOF' || fail "results inconsistent"
import csv, glob, json, sys
import xml.etree.ElementTree as ET
out = sys.argv[1]
bad = []
with open(out + "/results.csv") as f:
    rows = list(csv.DictReader(f))
with open(out + "/results.json") as f:
    js = json.load(f)
runs = js["runs"]
if len(rows) != len(runs):
    bad.append("CSV has %d rows, JSON %d runs" % (len(rows), len(runs)))
if len(runs) < 3:
    bad.append("expected a peak run and two load runs, got %d" % len(runs))
for i, (row, run) in enumerate(zip(rows, runs)):
    tag = "run %d (%s %s %s)" % (i, run["kind"], run["policy"], run["load_pct"])
    for key in ("tx_frames", "rx_frames", "data_sent", "backend_drops", "policy", "kind"):
        a, b = row[key], run[key]
        if isinstance(b, (int, float)):
            a = float(a)
        if a != b:
            bad.append("%s: %s is %r in the CSV, %r in the JSON" % (tag, key, a, b))
    if not (run["data_pps"] or 0) > 0:
        bad.append("%s: no throughput" % tag)
    if run["backend_drops"] is None:
        bad.append("%s: no backend drop counter" % tag)
        continue
    # every frame sent was received or dropped by the backend
    left = run["tx_frames"] - run["rx_frames"] - run["backend_drops"]
    if left != run["unaccounted"]:
        bad.append("%s: unaccounted %r, computed %r" % (tag, run["unaccounted"], left))
    if abs(left) > 0:
        bad.append("%s: %d frames sent but neither received nor dropped" % (tag, left))
    if run["lost"] != run["data_sent"] - run["data_received"]:
        bad.append("%s: lost != sent - received" % tag)
    for key in ("backend_cpu_pct", "lat_p99_us", "cpu_us_per_pkt", "kicks_per_pkt", "calls_per_pkt"):
        if run[key] is None:
            bad.append("%s: %s missing" % (tag, key))
    if run["kind"] == "load" and not (run["lat_p50_us"] <= run["lat_p99_us"] <= run["lat_p999_us"]):
        bad.append("%s: latency quantiles out of order" % tag)
peaks = [r for r in runs if r["kind"] == "peak"]
if len(peaks) != 1:
    bad.append("expected one peak run, got %d" % len(peaks))
for p in glob.glob(out + "/*.svg"):
    root = ET.parse(p).getroot()
    if not root.tag.endswith("svg"):
        bad.append("%s: root is %s" % (p, root.tag))
    if not any(e.tag.endswith("circle") for e in root.iter()):
        bad.append("%s: no data points" % p)
md = open(out + "/results.md").read()
if md.count("\n| ") < len(runs) + 1:
    bad.append("results.md lacks table rows")
for b in bad:
    print("bench_smoke:", b)
sys.exit(1 if bad else 0)
EOF
echo "$NAME: PASS"
