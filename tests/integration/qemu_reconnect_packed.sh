#!/bin/bash
# qemu_reconnect_packed.sh: qemu_reconnect.sh with both guests' NICs on
# packed virtqueues (packed=on).  QEMU cannot restore a packed ring from
# guest memory, so this checks that each restarted lwvhostd resumes the
# rings from the positions its predecessor kept in --state-dir: no ping
# lost or repeated beyond the outage, every transfer whole, no guest reset.
# Env and exit codes: as qemu_reconnect.sh (77: skipped).
set -u
cd "$(dirname "$0")/../.." || exit 1
LWV_PACKED=all exec bash tests/integration/qemu_reconnect.sh
