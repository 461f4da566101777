#!/bin/bash
# dpdk_packed.sh: dpdk_flowgen.sh with packed virtqueues: one testpmd, two
# net_virtio_user ports with packed_vq=1, flowgen through lwvhostd.  Frames
# counted per port must equal lwvhostd's counters, and both ports must have
# negotiated VIRTIO_F_RING_PACKED.
# Env and exit codes: as dpdk_flowgen.sh (77: skipped).
set -u
cd "$(dirname "$0")/../.." || exit 1
LWVT_FE_DEVARGS=${LWVT_FE_DEVARGS:+$LWVT_FE_DEVARGS,}packed_vq=1 exec bash tests/integration/dpdk_flowgen.sh
