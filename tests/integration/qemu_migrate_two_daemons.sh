#!/bin/bash
# qemu_migrate_two_daemons.sh: qemu_migrate.sh across two lwvhostd, as two
# hosts: guest 2 migrates from daemon A to daemon B and back while guest 1,
# on A, keeps fetching from and pinging it through the two daemons' taps,
# joined by a bridge in a private network namespace.
# Env and exit codes: as qemu_migrate.sh (77: skipped).
set -u
cd "$(dirname "$0")/../.." || exit 1
LWV_TWO_DAEMONS=1 LWV_MIGRATIONS=${LWV_MIGRATIONS:-2} exec bash tests/integration/qemu_migrate.sh
