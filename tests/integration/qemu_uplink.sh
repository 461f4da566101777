#!/bin/bash
# qemu_uplink.sh: qemu_ping.sh with the daemon reaching the namespace
# through an uplink port (--uplink, AF_PACKET in packet mode) on one end of
# a veth pair instead of a tap: pings both ways and checksummed TCP
# transfers both ways between the guests and the namespace's kernel.
# Env and exit codes: as qemu_ping.sh (77: skipped).
set -u
cd "$(dirname "$0")/../.." || exit 1
LWV_LINK=uplink exec bash tests/integration/qemu_ping.sh
