#!/bin/bash
# qemu_vxlan6_linux.sh: qemu_ping.sh over VXLAN with an IPv6 underlay: the
# daemon's --vxlan port (local 2001:db8:77::1) against a Linux kernel VXLAN
# device over IPv6 in a network namespace, VNI 42; the guests' NICs carry
# host_mtu=1430 (70 bytes of outer IPv6, UDP and VXLAN headers). Pings and
# checksummed TCP transfers both ways, the MTU the daemon saw.
# Env and exit codes: as qemu_ping.sh (77: skipped).
set -u
cd "$(dirname "$0")/../.." || exit 1
LWV_LINK=vxlan6 exec bash tests/integration/qemu_ping.sh
