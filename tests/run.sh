#!/usr/bin/env bash
# Runs the whole suite, by kind: unit tests (build/tests/unit/test_*, in
# one process), system tests (build/tests/system/test_* and
# tests/system/*.sh, against a real lwvhostd), then the integration scripts
# (tests/integration/*.sh: QEMU, DPDK, libvirt; except lib-* helpers and
# the benchmarks listed below). Each test exits 0 (pass), 77 (skipped) or
# anything else (fail). Prints one line per test and a final tally, with
# what could not run here and why.
#   BUILD=dir        where the binaries are (default build)
#   TESTS="a b"      run only tests whose name contains one of the words
#   LWV_SKIP="a b"   leave out tests whose name contains one of the words
#   LWV_NO_INTEGRATION=1   unit and system tests only
#   LWV_STRICT=1     a skipped test is a failure (CI: everything must run)
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export BUILD
LOGDIR=${LOGDIR:-$BUILD/test-logs}
mkdir -p "$LOGDIR"
# Benchmarks live beside the tests but are not tests.
BENCHMARKS="dpdk_compare bench_ports bench_vxlan"
# Engines the wrappers run (qemu_migrate_policies runs qemu_migrate under
# each policy, which is also "once on one daemon"): not run a second time.
RUN_BY_OTHERS="qemu_migrate"

pass=0 fail=0 skip=0 failed=() skipped=()
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
        77) skip=$((skip + 1)); skipped+=("$name: $(tail -n 1 "$log")")
            echo "SKIP $name: $(tail -n 1 "$log")" ;;
        *) fail=$((fail + 1)); failed+=("$name"); echo "FAIL $name (exit $rc, ${secs}s); last lines of $log:"
           tail -n 40 "$log" | sed 's/^/    /' ;;
    esac
}

for t in "$BUILD"/tests/unit/test_* "$BUILD"/tests/system/test_*; do
    [ -x "$t" ] && [ "${t%.[od]}" = "$t" ] || continue
    run_one "$(basename "$t")" "$t"
done
for s in tests/system/*.sh; do
    run_one "$(basename "$s" .sh)" bash "$s"
done
if [ -z "${LWV_NO_INTEGRATION:-}" ]; then
    for s in tests/integration/*.sh; do
        name=$(basename "$s" .sh)
        case "$name" in lib-*) continue ;; esac
        case " $BENCHMARKS " in *" $name "*) continue ;; esac
        case " $RUN_BY_OTHERS " in *" $name "*) continue ;; esac
        run_one "$name" bash "$s"
    done
fi
echo
if [ ${#skipped[@]} -gt 0 ]; then
    echo "could not run here:"
    printf '  %s\n' "${skipped[@]}"
    echo "(as root on Debian, 'scripts/install-deps.sh' installs what they need)"
fi
[ ${#failed[@]} -gt 0 ] && echo "failed: ${failed[*]}"
echo "$pass passed, $fail failed, $skip skipped"
if [ -n "${LWV_STRICT:-}" ] && [ "$skip" -gt 0 ]; then
    echo "LWV_STRICT: a skipped test is a failure"
    exit 1
fi
[ "$fail" -eq 0 ]
