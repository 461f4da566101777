#!/bin/bash
# libvirt_vhostuser.sh: two guests defined through stock libvirt (Debian's
# libvirtd 9.0 and QEMU 7.2) with <interface type='vhostuser'>, one in each
# socket mode, ping each other through lwvhostd:
#
#   lwv-g1: <source type='unix' path='vm1.sock' mode='server'/>  QEMU listens,
#           lwvhostd --port vm1,...,client=on connects
#   lwv-g2: <source type='unix' path='vm2.sock' mode='client'/>  lwvhostd
#           listens (the default), QEMU connects
#
# libvirtd runs privately for the test: in its own mount namespace, with
# /etc/libvirt, /run/libvirt, /var/lib/libvirt, /var/log/libvirt and
# /var/cache/libvirt bound to a temp dir holding a minimal configuration
# (QEMU as root, no cgroups, no per-domain /dev namespace, logs to files),
# so the host's libvirt, if any, is neither used nor changed.
# The one thing libvirt cannot say for TCG is `vectors=0` (QEMU 7.2 crashes
# with MSI-X and vhost-user under TCG, see ../shared/notes/environment.md);
# the domain XML sets it with <qemu:override>, libvirt's supported way to
# change one device property.
#
# Checks: both domains start; guest 1 pings guest 2; lwvhostctl shows
# guest 2's port connected with the MAC from the XML and guest 1's port
# (connected once) reconnecting after guest 1 powered off; `virsh destroy` of guest 2
# puts its port back to listening while the daemon runs on; guest 1 powers
# off (domain shut off); the daemon exits cleanly.
# Env: BUILD, LWV_KEEP=1, LWV_VERBOSE=1.  Exit: 0 pass, 77 skip, else fail.
# Needs (Debian 12): libvirt-daemon-system libvirt-clients plus what
# qemu_ping.sh needs.
set -u

cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
NAME=libvirt_vhostuser
. tests/integration/lib-qemu.sh

qemu_require
[ "$(id -u)" = 0 ] || skip "needs root (mount namespace for a private libvirtd)"
LIBVIRTD=$(command -v libvirtd) || skip "libvirtd missing (apt-get install libvirt-daemon-system)"
VIRSH=$(command -v virsh) || skip "virsh missing (apt-get install libvirt-clients)"
command -v unshare >/dev/null 2>&1 || skip "unshare missing"
id libvirt-qemu >/dev/null 2>&1 ||
    skip "user libvirt-qemu missing (libvirtd 9.0 needs it even when QEMU runs as root; apt-get install libvirt-daemon-system)"
D=$BUILD/lwvhostd
CTL=$BUILD/lwvhostctl
[ -x "$D" ] && [ -x "$CTL" ] || fail "$D or $CTL not built (run make)"
command -v jq >/dev/null 2>&1 || skip "jq missing"
IMG=$BUILD/guest
qemu_guest_image "$IMG"
IMG=$(cd "$IMG" && pwd)

T=$(mktemp -d /tmp/lwv-libvirt.XXXXXX) || fail "mktemp"
chmod 755 "$T"
DPID=
LPID=
START=$SECONDS
URI="qemu:///system?socket=$T/run/libvirt-sock"
virsh() { timeout 60 "$VIRSH" -q -c "$URI" "$@"; }

show_logs() {
    dump_logs 80 "$T"/g1.log "$T"/g2.log "$T"/lwvhostd.log "$T"/libvirtd.out "$T"/log/qemu/*.log
    if [ -s "$T/log/libvirtd.log" ]; then
        echo "----- libvirtd.log (errors) -----"
        grep ' error : ' "$T/log/libvirtd.log" | tail -n 20
    fi
}

cleanup() {
    if [ -n "$LPID" ]; then
        virsh destroy lwv-g1 >/dev/null 2>&1
        virsh destroy lwv-g2 >/dev/null 2>&1
        kill_wait "$LPID" 10
    fi
    kill_wait "$DPID" 5
}
on_exit cleanup

# ---- a private libvirtd ------------------------------------------------------
mkdir -p "$T"/etc "$T"/run "$T"/lib "$T"/log "$T"/cache
cat >"$T/etc/libvirtd.conf" <<EOF
unix_sock_dir = "$T/run"
unix_sock_rw_perms = "0700"
auth_unix_rw = "none"
auth_unix_ro = "none"
log_outputs = "1:file:$T/log/libvirtd.log"
log_filters = "3:qemu.qemu_monitor 3:util 3:rpc 3:conf 1:qemu"
EOF
cat >"$T/etc/qemu.conf" <<EOF
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
stdio_handler = "file"
security_driver = "none"
namespaces = [ ]
cgroup_controllers = [ ]
EOF
# Runs in the new mount namespace: bind the private dirs, then libvirtd.
cat >"$T/libvirtd.sh" <<EOF
set -e
for d in etc:/etc/libvirt run:/run/libvirt lib:/var/lib/libvirt log:/var/log/libvirt cache:/var/cache/libvirt; do
    mkdir -p "\${d#*:}"
    mount --bind "$T/\${d%%:*}" "\${d#*:}"
done
exec "$LIBVIRTD"
EOF
unshare -m --propagation private bash "$T/libvirtd.sh" >"$T/libvirtd.out" 2>&1 &
LPID=$!
libvirt_up() { alive "$LPID" || fail "libvirtd exited"; virsh version >/dev/null 2>&1; }
wait_for 60 "libvirtd" libvirt_up
log "libvirtd running (pid $LPID): $(virsh version | grep -i 'running hypervisor')"

# ---- lwvhostd ----------------------------------------------------------------
"$D" --port "vm1,path=$T/vm1.sock,client=on" --port "vm2,path=$T/vm2.sock" \
    --ctl "$T/ctl.sock" </dev/null >"$T/lwvhostd.log" 2>&1 &
DPID=$!
wait_for 10 "lwvhostd's socket" test -S "$T/vm2.sock"

# ---- the domains -------------------------------------------------------------
# domain_xml NAME MAC SOCKET MODE "kernel args"
domain_xml() {
    cat <<EOF
<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>$1</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <memoryBacking>
    <source type='memfd'/>
    <access mode='shared'/>
  </memoryBacking>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>$IMG/vmlinuz</kernel>
    <initrd>$IMG/initramfs.cpio.gz</initrd>
    <cmdline>console=ttyS0 quiet panic=-1 $5</cmdline>
  </os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>$QEMU</emulator>
    <interface type='vhostuser'>
      <alias name='ua-lwv'/>
      <mac address='$2'/>
      <source type='unix' path='$3' mode='$4'/>
      <model type='virtio'/>
      <rom enabled='no'/>
    </interface>
    <serial type='file'>
      <source path='$T/$1.log'/>
      <target port='0'/>
    </serial>
    <memballoon model='none'/>
  </devices>
  <qemu:override>
    <qemu:device alias='ua-lwv'>
      <qemu:frontend>
        <qemu:property name='vectors' type='unsigned' value='0'/>
      </qemu:frontend>
    </qemu:device>
  </qemu:override>
</domain>
EOF
}

domain_xml lwv-g2 52:54:00:00:00:13 "$T/vm2.sock" client \
    "lwv.ip=10.200.0.3/24 lwv.run=serve:150 lwv.timeout=160" >"$T/g2.xml"
domain_xml lwv-g1 52:54:00:00:00:12 "$T/vm1.sock" server \
    "lwv.ip=10.200.0.2/24 lwv.run=ping:10.200.0.3 lwv.count=5 lwv.wait=60 lwv.timeout=120" >"$T/g1.xml"
virsh create "$T/g2.xml" || fail "virsh create lwv-g2 (vhostuser mode=client)"
virsh create "$T/g1.xml" || fail "virsh create lwv-g1 (vhostuser mode=server)"
log "domains started:"
virsh list | sed 's/^/  /'
virsh domiflist lwv-g1 | sed 's/^/  /'
ln -sf lwv-g1.log "$T/g1.log"
ln -sf lwv-g2.log "$T/g2.log"

running() { [ "$(virsh domstate "$1" 2>/dev/null | head -n 1)" = running ]; }
# Guest 1 powers off after its pings (on_poweroff: destroy).
wait_for 150 "guest 1 to finish" eval '! running lwv-g1'

ok=1
results "$T/g1.log" | sed 's/^/  g1: /'
has_result "$T/g1.log" "ping 10.200.0.3 ok" || { log "guest 1 -> guest 2 ping failed"; ok=; }
has_result "$T/g1.log" "done - ok" || { log "guest 1 did not report done - ok"; ok=; }

# While guest 2 still runs: both ports were connected, MACs learned.
ports=$(timeout 5 "$CTL" -s "$T/ctl.sock" ports --json) || fail "lwvhostctl ports"
timeout 5 "$CTL" -s "$T/ctl.sock" ports | sed 's/^/  /'
vm2=$(echo "$ports" | jq -c '.ports[] | select(.name == "vm2") | [.state, .mode, .macs]')
[ "$vm2" = '["connected","server",["52:54:00:00:00:13"]]' ] ||
    { log "vm2 (libvirt mode=client): unexpected $vm2"; ok=; }
# Guest 1 is gone: its port connected once and now retries (its MAC is
# forgotten with the connection).
vm1=$(echo "$ports" | jq -c '.ports[] | select(.name == "vm1") | [.state, .mode, .connects]')
[ "$vm1" = '["connecting","client",1]' ] ||
    { log "vm1 (libvirt mode=server): unexpected $vm1"; ok=; }

virsh destroy lwv-g2 >/dev/null || { log "virsh destroy lwv-g2 failed"; ok=; }
vm2_listening() {
    timeout 5 "$CTL" -s "$T/ctl.sock" ports --json |
        jq -e '.ports[] | select(.name == "vm2") | .state == "listening"' >/dev/null
}
wait_for 10 "vm2 back to listening after virsh destroy" vm2_listening
alive "$DPID" || { log "lwvhostd died when the domains went away"; ok=; }

kill "$DPID"
wait "$DPID"
drc=$?
DPID=
[ $drc = 0 ] || { log "lwvhostd exited with $drc on SIGTERM"; ok=; }
[ -n "$ok" ] || fail "see the logs below"
exit 0
