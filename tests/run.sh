#!/usr/bin/env bash
# Runs the whole suite: unit test binaries (build/tests/test_*), then the
# integration scripts (tests/integration/*.sh, except lib-* helpers and
# benchmarks listed below). Each test exits 0 (pass), 77 (skipped) or
# anything else (fail). Prints one line per test and a final tally.
#   BUILD=dir        where the binaries are (default build)
#   TESTS="a b"      run only tests whose name contains one of the words
#   LWV_SKIP="a b"   skip tests whose name contains one of the words
#   LWV_NO_INTEGRATION=1   unit tests only
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export BUILD
LOGDIR=${LOGDIR:-$BUILD/test-logs}
mkdir -p "$LOGDIR"
# Benchmarks live beside the tests but are not tests.
BENCHMARKS="dpdk_compare"

pass=0 fail=0 skip=0 failed=()
selected() {
    for w in ${LWV_SKIP:-}; do case "$1" in *"$w"*) return 1 ;; esac; done
    [ -z "${TESTS:-}" ] && return 0
    for w in $TESTS; do case "$1" in *"$w"*) return 0 ;; esac; done
    return 1
}
run_one() {
    local name=$1; shift
    selected "$name" || return 0
    local log="$LOGDIR/$name.log" start rc
    start=$(date +%s)
    "$@" >"$log" 2>&1
    rc=$?
    local secs=$(( $(date +%s) - start ))
    case $rc in
        0) pass=$((pass + 1)); echo "PASS $name (${secs}s)" ;;
        77) skip=$((skip + 1)); echo "SKIP $name: $(tail -n 1 "$log")" ;;
        *) fail=$((fail + 1)); failed+=("$name"); echo "FAIL $name (exit $rc, ${secs}s); last lines of $log:"
           tail -n 40 "$log" | sed 's/^/    /' ;;
    esac
}

for t in "$BUILD"/tests/test_*; do
    [ -x "$t" ] || continue
    run_one "$(basename "$t")" "$t"
done
if [ -z "${LWV_NO_INTEGRATION:-}" ]; then
    for s in tests/integration/*.sh; do
        name=$(basename "$s" .sh)
        case "$name" in lib-*) continue ;; esac
        case " $BENCHMARKS " in *" $name "*) continue ;; esac
        run_one "$name" bash "$s"
    done
fi
echo
[ ${#failed[@]} -gt 0 ] && echo "failed: ${failed[*]}"
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
