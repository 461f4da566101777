#!/bin/bash
# libvirt_hook.sh: tools/libvirt/qemu-hook makes and removes lwvhostd's
# ports for <interface type='vhostuser'>, so that `virsh start` works with
# no port set up beforehand.
#
# First the hook alone, run by hand against an lwvhostd with no ports:
# names (a long non-ASCII domain name gets a valid, hashed name of at most
# 31 characters), which interfaces it serves (sockets inside SOCKET_DIRS
# only), a second "prepare" replacing a stale port, "release" removing only
# the domain's ports and never failing, "migrate" printing nothing.
#
# Then through stock libvirt (Debian's libvirtd 9.0, QEMU 7.2), run
# privately as in libvirt_vhostuser.sh (own mount namespace, /etc/libvirt
# etc. bound to a temp dir, QEMU as root, <qemu:override> vectors=0), with
# the hook in the private /etc/libvirt/hooks/qemu.d/.  libvirtd runs hooks
# with a cleared environment, so the entry there is a two-line wrapper that
# names the test's configuration file (LWVHOST_HOOK_CONF) and logs the
# calls; an installed hook reads /etc/lwvhost/libvirt-hook.conf instead.
#   lwv-hk1: <source mode='server'/> (QEMU listens, the port has client=on)
#   lwv-hk2: <source mode='client'/> (the port listens, QEMU connects)
# Checks: `virsh start` of both with lwvhostd running and no ports; the two
# ports appear, connected, with the MACs of the XML, the listening one's
# socket group kvm (when that group exists) and mode 0660; guest 1 pings
# guest 2; lwvhostd restarted (no ports), then libvirtd: its "reconnect"
# adds both ports again and guest 1's reconnects; `virsh destroy` of both
# removes both ports and both sockets; with lwvhostd stopped, `virsh start`
# fails with the hook's message.
# Env: BUILD, LWV_KEEP=1, LWV_VERBOSE=1.  Exit: 0 pass, 77 skip, else fail.
# Needs (Debian 12): python3, libvirt-daemon-system, libvirt-clients, jq
# plus what qemu_ping.sh needs.
set -u

cd "$(dirname "$0")/../.." || exit 1
REPO=$(pwd)
BUILD=${BUILD:-build}
NAME=libvirt_hook
. tests/integration/lib-qemu.sh

qemu_require
[ "$(id -u)" = 0 ] || skip "needs root (mount namespace for a private libvirtd)"
LIBVIRTD=$(command -v libvirtd) || skip "libvirtd missing (apt-get install libvirt-daemon-system)"
VIRSH=$(command -v virsh) || skip "virsh missing (apt-get install libvirt-clients)"
command -v unshare >/dev/null 2>&1 || skip "unshare missing"
id libvirt-qemu >/dev/null 2>&1 ||
    skip "user libvirt-qemu missing (libvirtd 9.0 needs it even when QEMU runs as root; apt-get install libvirt-daemon-system)"
[ -x /usr/bin/python3 ] || skip "/usr/bin/python3 missing (the hook's interpreter; apt-get install python3)"
command -v jq >/dev/null 2>&1 || skip "jq missing"
D=$(realpath "$BUILD/lwvhostd" 2>/dev/null)
CTL=$(realpath "$BUILD/lwvhostctl" 2>/dev/null)
[ -x "$D" ] && [ -x "$CTL" ] || fail "$BUILD/lwvhostd or $BUILD/lwvhostctl not built (run make)"
HOOK=$REPO/tools/libvirt/qemu-hook
[ -x "$HOOK" ] || fail "$HOOK missing or not executable"
IMG=$BUILD/guest
qemu_guest_image "$IMG"
IMG=$(cd "$IMG" && pwd)

T=$(mktemp -d /tmp/lwv-hook.XXXXXX) || fail "mktemp"
chmod 755 "$T"
mkdir -p "$T/vm"
DPID=
LPID=
START=$SECONDS
URI="qemu:///system?socket=$T/run/libvirt-sock"
virsh() { timeout 60 "$VIRSH" -q -c "$URI" "$@"; }
lwvctl() { timeout 5 "$CTL" -s "$T/ctl.sock" "$@"; }
ok=1
bad() { log "$*"; ok=; }

show_logs() {
    dump_logs 80 "$T"/g1.log "$T"/g2.log "$T"/hook.log "$T"/lwvhostd.log "$T"/libvirtd.out \
        "$T"/log/qemu/*.log
    if [ -s "$T/log/libvirtd.log" ]; then
        echo "----- libvirtd.log (errors) -----"
        grep ' error : ' "$T/log/libvirtd.log" | tail -n 20
    fi
}

cleanup() {
    if [ -n "$LPID" ]; then
        virsh destroy lwv-hk1 >/dev/null 2>&1
        virsh destroy lwv-hk2 >/dev/null 2>&1
        kill_wait "$LPID" 10
    fi
    kill_wait "$DPID" 5
}
on_exit cleanup

start_lwvhostd() {
    "$D" --ctl "$T/ctl.sock" </dev/null >>"$T/lwvhostd.log" 2>&1 &
    DPID=$!
    wait_for 10 "lwvhostd's control socket" test -S "$T/ctl.sock"
}
stop_lwvhostd() {
    kill "$DPID"
    wait "$DPID"
    local rc=$?
    DPID=
    [ $rc = 0 ] || bad "lwvhostd exited with $rc on SIGTERM"
}
# port_names: the daemon's port names, sorted, on one line
port_names() { lwvctl ports --json | jq -r '[.ports[].name] | sort | join(" ")'; }

cat >"$T/hook.conf" <<EOF
# the test's /etc/lwvhost/libvirt-hook.conf
CTL_SOCKET=$T/ctl.sock
LWVHOSTCTL=$CTL
SOCKET_DIRS="/nonexistent $T/vm"
EOF
export LWVHOST_HOOK_CONF=$T/hook.conf
start_lwvhostd

# ---- the hook alone ------------------------------------------------------------
NAME1="ünïcode-domain-with-a-name-far-too-long-for-a-port"
cat >"$T/solo.xml" <<EOF
<domain type='qemu'>
  <name>$NAME1</name>
  <uuid>0b6f2d3c-8c1e-4a57-9c4e-2f00c0ffee01</uuid>
  <devices>
    <interface type='network'><mac address='52:54:00:00:01:01'/><source network='default'/></interface>
    <interface type='vhostuser'><mac address='52:54:00:00:01:02'/>
      <source type='unix' path='$T/vm/solo-a.sock' mode='client'/><driver queues='2'/></interface>
    <interface type='vhostuser'><mac address='52:54:00:00:01:03'/>
      <source type='unix' path='$T/elsewhere.sock' mode='client'/></interface>
    <interface type='vhostuser'><mac address='52:54:00:00:01:04'/>
      <source type='unix' path='$T/vm/solo-b.sock' mode='server'/></interface>
  </devices>
</domain>
EOF
hook() { "$HOOK" "$NAME1" "$@" <"$T/solo.xml"; }
hash=$(printf %s 0b6f2d3c-8c1e-4a57-9c4e-2f00c0ffee01 | sha256sum | cut -c1-6)
base="_n_code-domain-with-a-$hash"
lwvctl port add "solo-b-by-hand,path=$T/vm/by-hand.sock" >/dev/null || fail "port add by hand"
hook prepare begin - 2>/dev/null || bad "solo: prepare failed"
hook prepare begin - 2>/dev/null || bad "solo: a second prepare failed"
want="$base.1 $base.3 solo-b-by-hand"
[ "$(port_names)" = "$want" ] || bad "solo: ports '$(port_names)', wanted '$want'"
[ ${#base} -le 28 ] || bad "solo: port name prefix $base longer than 28"
got=$(lwvctl ports --json | jq -c --arg n "$base.1" '.ports[] | select(.name == $n) | [.mode, .max_queue_pairs, .macs]')
[ "$got" = '["server",2,["52:54:00:00:01:02"]]' ] || bad "solo: $base.1 is $got"
got=$(lwvctl ports --json | jq -c --arg n "$base.3" '.ports[] | select(.name == $n) | [.mode, .macs]')
[ "$got" = '["client",["52:54:00:00:01:04"]]' ] || bad "solo: $base.3 is $got"
[ -z "$(hook migrate begin - 2>&1)" ] || bad "solo: migrate printed something"
hook release end destroyed 2>/dev/null || bad "solo: release failed"
hook release end destroyed 2>/dev/null || bad "solo: a second release failed"
[ "$(port_names)" = solo-b-by-hand ] || bad "solo: after release: '$(port_names)'"
lwvctl port del solo-b-by-hand >/dev/null
[ -n "$ok" ] && log "the hook alone: names, SOCKET_DIRS, prepare and release twice: ok"

# ---- a private libvirtd with the hook ----------------------------------------------
mkdir -p "$T"/etc/hooks/qemu.d "$T"/run "$T"/lib "$T"/log "$T"/cache
cat >"$T/etc/hooks/qemu.d/lwvhost" <<EOF
#!/bin/sh
# Stands for: ln -s $HOOK qemu.d/lwvhost
LWVHOST_HOOK_CONF=$T/hook.conf $HOOK "\$@" 2>"$T/hook.err"; rc=\$?
{ echo "\$* -> \$rc"; sed 's/^/    /' "$T/hook.err"; } >>"$T/hook.log"
cat "$T/hook.err" >&2
exit \$rc
EOF
chmod 755 "$T/etc/hooks/qemu.d/lwvhost"
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
cat >"$T/libvirtd.sh" <<EOF
set -e
for d in etc:/etc/libvirt run:/run/libvirt lib:/var/lib/libvirt log:/var/log/libvirt cache:/var/cache/libvirt; do
    mkdir -p "\${d#*:}"
    mount --bind "$T/\${d%%:*}" "\${d#*:}"
done
exec "$LIBVIRTD"
EOF
libvirt_up() { alive "$LPID" || fail "libvirtd exited"; virsh version >/dev/null 2>&1; }
start_libvirtd() {
    unshare -m --propagation private bash "$T/libvirtd.sh" >>"$T/libvirtd.out" 2>&1 &
    LPID=$!
    wait_for 60 "libvirtd" libvirt_up
}
start_libvirtd
log "libvirtd running (pid $LPID): $(virsh version | grep -i 'running hypervisor')"

# ---- the domains -------------------------------------------------------------------
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

domain_xml lwv-hk2 52:54:00:00:00:23 "$T/vm/hk2.sock" client \
    "lwv.ip=10.200.0.3/24 lwv.run=serve:150 lwv.timeout=160" >"$T/g2.xml"
domain_xml lwv-hk1 52:54:00:00:00:22 "$T/vm/hk1.sock" server \
    "lwv.ip=10.200.0.2/24 lwv.run=ping:10.200.0.3 lwv.run=serve:150 lwv.count=5 lwv.wait=60 lwv.timeout=160" \
    >"$T/g1.xml"
virsh define "$T/g2.xml" >/dev/null || fail "virsh define lwv-hk2"
virsh define "$T/g1.xml" >/dev/null || fail "virsh define lwv-hk1"
[ -z "$(port_names)" ] || fail "lwvhostd has ports before any domain started: $(port_names)"
virsh start lwv-hk2 >/dev/null || fail "virsh start lwv-hk2 (vhostuser mode=client, no port beforehand)"
virsh start lwv-hk1 >/dev/null || fail "virsh start lwv-hk1 (vhostuser mode=server, no port beforehand)"
log "domains started, with the ports the hook made:"
ln -sf lwv-hk1.log "$T/g1.log"
ln -sf lwv-hk2.log "$T/g2.log"
lwvctl ports | sed 's/^/  /'

ping_done() { results "$T/g1.log" | grep -q '^LWV-RESULT ping '; }
wait_for 150 "guest 1's pings" ping_done
results "$T/g1.log" | sed 's/^/  g1: /'
has_result "$T/g1.log" "ping 10.200.0.3 ok" || bad "guest 1 -> guest 2 ping failed"

# Both guests up: two ports, connected, named after the domains, MACs of the XML.
got=$(lwvctl ports --json | jq -c '[.ports[] | [.name, .state, .mode, .macs]] | sort')
want='[["lwv-hk1.0","connected","client",["52:54:00:00:00:22"]],["lwv-hk2.0","connected","server",["52:54:00:00:00:23"]]]'
[ "$got" = "$want" ] || bad "ports: $got, wanted $want"
group=root
getent group kvm >/dev/null && group=kvm
got=$(stat -c '%G %a' "$T/vm/hk2.sock" 2>&1)
[ "$got" = "$group 660" ] || bad "lwv-hk2's socket: $got, wanted $group 660"

# ---- lwvhostd, then libvirtd restarted under the guests ------------------------------
# The new lwvhostd has no ports; libvirtd's "reconnect" hook call adds them
# again, and lwvhostd connects to guest 1's QEMU (guest 2's QEMU, a socket
# client without <reconnect>, does not come back by itself).
stop_lwvhostd
start_lwvhostd
kill_wait "$LPID" 10
start_libvirtd
ports_back() {
    [ "$(lwvctl ports --json | jq -c '[.ports[] | [.name, .state]] | sort')" = \
      '[["lwv-hk1.0","connected"],["lwv-hk2.0","listening"]]' ]
}
wait_for 30 "libvirtd's reconnect to add the ports again" ports_back
log "lwvhostd and libvirtd restarted: the reconnect hook added the ports again"

# ---- virsh destroy: ports and sockets gone -------------------------------------------
virsh destroy lwv-hk1 >/dev/null || bad "virsh destroy lwv-hk1 failed"
virsh destroy lwv-hk2 >/dev/null || bad "virsh destroy lwv-hk2 failed"
no_ports() { [ -z "$(port_names)" ]; }
wait_for 10 "the ports to go after virsh destroy" no_ports
for s in hk1 hk2; do
    [ ! -e "$T/vm/$s.sock" ] || bad "$T/vm/$s.sock still there after virsh destroy"
done
alive "$DPID" || bad "lwvhostd died when the domains went away"
log "virsh destroy: ports and sockets gone"

# ---- lwvhostd not running: virsh start fails with the hook's message -----------------
stop_lwvhostd
if virsh start lwv-hk2 >/dev/null 2>"$T/start.err"; then
    bad "virsh start lwv-hk2 succeeded with lwvhostd stopped"
else
    log "virsh start with lwvhostd stopped failed, as it should:"
    sed 's/^/  /' "$T/start.err"
    grep -q "lwvhost hook: lwv-hk2: lwvhostctl: cannot reach lwvhostd at $T/ctl.sock" "$T/start.err" ||
        bad "the hook's message is not in virsh's error"
fi
[ "$(virsh domstate lwv-hk2 2>/dev/null | head -n 1)" = "shut off" ] || bad "lwv-hk2 is not shut off"
log "hook calls: $(sed -n 's/ -> .*//p' "$T/hook.log" | awk '{print $2 "/" $3}' | tr '\n' ' ')"

[ -n "$ok" ] || fail "see the logs below"
exit 0
