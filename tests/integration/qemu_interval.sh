#!/usr/bin/env bash
# qemu_interval.sh: the research mode done right. Two QEMU guests under the
# interval policy ping each other and the tap through lwvhostd, and guest 1
# powers itself off cleanly (the research prototype spun forever and hung
# VM shutdown). Same checks as qemu_ping.sh, with --policy interval:50 and
# its own tap name so it cannot collide with that test.
cd "$(dirname "$0")" || exit 1
LWV_DAEMON_ARGS="--policy interval:50 --idle-us 2000" LWV_TAP=lwvtap1 exec bash ./qemu_ping.sh
