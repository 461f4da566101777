#!/usr/bin/env bash
# Installs the Debian 12 packages the build, the tests and the demos use.
# Needs root (or sudo). The daemon itself needs nothing beyond libc.
# openvswitch-switch: only its programs are used. Where the package starts its
# service (systemd; a sysvinit container without a policy-rc.d denying it),
# that instance uses /run/openvswitch and /etc/openvswitch/conf.db in the host's
# namespace; tests/system/ovs_vxlan.sh runs its own ovsdb-server and
# ovs-vswitchd with their own directories in a network namespace, and neither
# meets the other. Without the openvswitch kernel module the package's own
# vswitchd fails to start (ovs-ctl loads the module first) and the
# installation succeeds all the same (its postinst allows for that).
#   --if-possible   (make test) install only when that can be done without
#                   asking (root, or password-less sudo, and apt-get); else
#                   say what is missing and which tests it will skip, and
#                   succeed anyway.
set -euo pipefail
IF_POSSIBLE=
[ "${1:-}" = --if-possible ] && IF_POSSIBLE=1
PKGS=(
    make gcc clang libclang-rt-14-dev   # build; clang's sanitizer runtimes
    iproute2 iputils-ping procps        # namespaces, veth, tap; ping; ps
    ethtool                             # qemu_vxlan_linux: checksum offload off on a veth
    qemu-system-x86 linux-image-amd64 busybox-static cpio kmod xz-utils  # QEMU guests
    dpdk-dev jq                         # dpdk-testpmd (in dpdk-dev) as an independent frontend; jq
    iperf3 python3 libc6-dev sysstat    # lwvhost-lab: guest traffic, the tool, lwv-rr (static), pidstat
    libvirt-daemon-system libvirt-clients  # libvirt_vhostuser: guests defined through stock libvirt
    binutils                            # readelf, for make check-hardening
    strace                              # syscalls_strace: the worker's system call count checked
    openvswitch-switch                  # ovs_vxlan: OVS's userspace datapath as the VXLAN peer
    debhelper dpkg-dev build-essential lintian systemd  # make deb; deb_install: lintian, systemd-analyze
)
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "install-deps: all packages present"
    exit 0
fi
if [ -n "$IF_POSSIBLE" ]; then
    if ! command -v apt-get >/dev/null 2>&1 ||
       { [ -n "$SUDO" ] && ! sudo -n true 2>/dev/null; }; then
        echo "install-deps: missing ${missing[*]}"
        echo "install-deps: cannot install them here (not root, or no apt-get): the QEMU, DPDK"
        echo "install-deps: and libvirt tests that need them will be skipped; run"
        echo "install-deps: 'sudo scripts/install-deps.sh' once to run the whole suite"
        exit 0
    fi
    SUDO=${SUDO:+sudo -n}
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
if $SUDO apt-get update -q && $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
then
    exit 0
fi
echo "install-deps: apt-get failed (see above)"
if [ -n "$IF_POSSIBLE" ]; then
    echo "install-deps: the tests that need those packages will be skipped"
    exit 0
fi
exit 1
