#!/bin/bash
# qemu_migrate_verify.sh: qemu_migrate.sh with LWV_MIG_VERIFY=1, twice
# (split rings, then packed rings on every guest): guest 2 migrates there
# and back under traffic, and at each switchover the memory of the stopped
# source and of the destination (started with -S, before its device runs)
# must be identical, page for page.  A page the daemon wrote without
# logging it, or wrote after QEMU stopped the ring, shows up here even when
# no transfer happens to cross it.  The destination starts seconds late
# (the comparison), so the ping gap limit is relaxed (LWV_MAX_GAP_MS,
# default here 60000); the gaps are measured by qemu_migrate.sh proper.
# Env and exit codes: as qemu_migrate.sh (77: skipped).
set -u
cd "$(dirname "$0")" || exit 1
rc_all=0
for packed in "" all; do
    echo "qemu_migrate_verify: --- $([ -n "$packed" ] && echo packed || echo split) rings ---"
    LWV_PACKED=$packed LWV_MIG_VERIFY=1 LWV_MIGRATIONS=${LWV_MIGRATIONS:-2} \
        LWV_MAX_GAP_MS=${LWV_MAX_GAP_MS:-60000} bash ./qemu_migrate.sh
    rc=$?
    case $rc in
    0) ;;
    77) [ $rc_all = 0 ] && rc_all=77 ;;
    *) rc_all=1 ;;
    esac
done
case $rc_all in
0) echo "qemu_migrate_verify: PASS" ;;
77) echo "qemu_migrate_verify: SKIP" ;;
*) echo "qemu_migrate_verify: FAIL" ;;
esac
exit $rc_all
