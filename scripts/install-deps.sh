#!/usr/bin/env bash
# Installs the Debian 12 packages the build, the tests and the demos use.
# Needs root (or sudo). The daemon itself needs nothing beyond libc.
set -euo pipefail
PKGS=(
    make gcc clang libclang-rt-14-dev   # build; clang's sanitizer runtimes
    iproute2 iputils-ping procps        # namespaces, veth, tap; ping; ps
    qemu-system-x86 linux-image-amd64 busybox-static cpio kmod xz-utils  # QEMU guests
    dpdk-dev jq                         # dpdk-testpmd (in dpdk-dev) as an independent frontend; jq
    iperf3 python3 libc6-dev sysstat    # lwvhost-lab: guest traffic, the tool, lwv-rr (static), pidstat
    libvirt-daemon-system libvirt-clients  # libvirt_vhostuser: guests defined through stock libvirt
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
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
