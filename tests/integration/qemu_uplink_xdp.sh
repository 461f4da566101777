#!/bin/bash
# qemu_uplink_xdp.sh: qemu_ping.sh with the daemon reaching the namespace
# through an uplink port in mode=xdp (AF_XDP, the XDP program native on one
# end of a veth pair): pings both ways and checksummed TCP transfers both
# ways between the guests and the namespace's kernel, then the uplink's
# counters (native mode, frames both ways, none refused).
# Env and exit codes: as qemu_ping.sh (77: skipped).
set -u
cd "$(dirname "$0")/../.." || exit 1
LWV_LINK=uplinkxdp exec bash tests/integration/qemu_ping.sh
