#!/usr/bin/env bash
# Runs every libFuzzer target in $FUZZ_BUILD (default build-fuzz) for
# $FUZZ_SECONDS (default 60) each, one after the other, under nice, on a
# scratch copy of its committed corpus (fuzz/corpus/TARGET stays as it is).
# Fails if any target crashes, leaks, times out or runs out of memory;
# the reproducer is left in $FUZZ_BUILD/artifacts/.
#   FUZZ_RSS_MB=N        libFuzzer -rss_limit_mb (default 2048)
#   FUZZ_TARGETS="a b"   run only these targets (default: all built)
#   FUZZ_ARGS="..."      extra libFuzzer options
set -u
cd "$(dirname "$0")/.."
B=${FUZZ_BUILD:-build-fuzz}
SECS=${FUZZ_SECONDS:-60}
RSS=${FUZZ_RSS_MB:-2048}
targets=${FUZZ_TARGETS:-$(cd "$B" 2>/dev/null && ls fuzz_* 2>/dev/null | grep -v '\.d$')}
[ -n "$targets" ] || { echo "no fuzz targets in $B (make fuzz)"; exit 1; }
mkdir -p "$B/artifacts" "$B/logs" "$B/run"
rc=0
for t in $targets; do
    scratch="$B/run/$t"
    rm -rf "$scratch"
    mkdir -p "$scratch"
    [ -d "fuzz/corpus/$t" ] && cp -r "fuzz/corpus/$t/." "$scratch/"
    log="$B/logs/$t.log"
    echo "== $t: ${SECS}s on $(ls "$scratch" | wc -l) seed inputs (log: $log)"
    # Daemon logging goes to /dev/null (-close_fd_mask=3) but is still
    # formatted (LWV_FUZZ_LOG=debug); stdin is /dev/null so no input can
    # make a parser block on it.
    LWV_FUZZ_LOG=debug nice -n 19 "$B/$t" -max_total_time="$SECS" -rss_limit_mb="$RSS" \
        -timeout=10 -close_fd_mask=3 -print_final_stats=1 -artifact_prefix="$PWD/$B/artifacts/$t-" \
        ${FUZZ_ARGS:-} "$scratch" </dev/null >"$log" 2>&1
    st=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1)
    if [ $st -ne 0 ]; then
        rc=1
        echo "FAIL $t (exit $st) after ${runs:-?} executions; end of $log:"
        tail -n 60 "$log" | sed 's/^/    /'
    else
        echo "ok   $t: ${runs:-?} executions, ${cov:-cov: ?}, corpus $(ls "$scratch" | wc -l)"
    fi
done
exit $rc
