#!/bin/bash
# qemu_migrate_policies.sh: qemu_migrate.sh (live migration under traffic,
# issue 15) once per policy: notify, interval:50, adaptive.  Each run must
# pass.  Exit 0 when all pass; 77 when a run skipped and none failed
# (a tool missing, or lwvhostd without dirty-page logging); else 1.
# Env: passed on to qemu_migrate.sh (BUILD, LWV_MIGRATIONS, ...);
#      LWV_POLICIES overrides the list (space-separated).
set -u
cd "$(dirname "$0")" || exit 1
rc_all=0
for p in ${LWV_POLICIES:-notify interval:50 adaptive}; do
    echo "qemu_migrate_policies: --- policy $p ---"
    LWV_POLICY=$p bash ./qemu_migrate.sh
    rc=$?
    case $rc in
    0) echo "qemu_migrate_policies: policy $p: pass" ;;
    77) echo "qemu_migrate_policies: policy $p: skipped"
        [ $rc_all = 0 ] && rc_all=77 ;;
    *) echo "qemu_migrate_policies: policy $p: FAIL (rc=$rc)"; rc_all=1 ;;
    esac
done
case $rc_all in
0) echo "qemu_migrate_policies: PASS" ;;
77) echo "qemu_migrate_policies: SKIP" ;;
*) echo "qemu_migrate_policies: FAIL" ;;
esac
exit $rc_all
