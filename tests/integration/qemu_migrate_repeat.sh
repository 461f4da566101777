#!/bin/bash
# qemu_migrate_repeat.sh: qemu_migrate.sh with guest 2 migrated back and
# forth ten times in a row (vm2 -> vm2b -> vm2 ...) under traffic: every
# transfer whole, no duplicate pings, each gap within LWV_MAX_GAP_MS.
# Env and exit codes: as qemu_migrate.sh (77: skipped).
set -u
cd "$(dirname "$0")/../.." || exit 1
LWV_MIGRATIONS=${LWV_MIGRATIONS:-10} exec bash tests/integration/qemu_migrate.sh
