#!/bin/bash
# qemu_ping.sh: end-to-end test of lwvhostd with two QEMU (TCG) guests.
#
#   guest 1 (10.200.0.2) --vhost-user vm1--+
#                                          +-- lwvhostd --tap lwvtap0 (netns, 10.200.0.1)
#   guest 2 (10.200.0.3) --vhost-user vm2--+
#
# LWV_LINK chooses how the daemon reaches the namespace (default tap):
#   tap     --tap lwvtap0, the tap moved into the namespace;
#   uplink  --uplink on lwvup0, one end of a veth pair whose other end
#           (lwvup1, 10.200.0.1) is in the namespace: frames reach the
#           namespace's kernel through AF_PACKET, no tap;
#   uplinkxdp  the same with mode=xdp (AF_XDP, the XDP program native on
#           the veth): the guests' TSO frames are cut and their partial
#           checksums completed by the daemon, and the namespace's veth has
#           TX checksum offload off (AF_XDP carries no "checksum not done"
#           flag; a NIC finishes checksums on the wire); the uplink's
#           counters must show AF_XDP in native mode and no frame dropped;
#   vxlan   --vxlan over a veth pair (192.168.77.1 here, 192.168.77.2 in
#           the namespace), VNI 42; in the namespace a Linux kernel VXLAN
#           device (ip link add ... type vxlan id 42) holds 10.200.0.1: an
#           independent VXLAN implementation at the other end.  The guests'
#           NICs get host_mtu=1450 (1500 less the 50 bytes of outer
#           Ethernet, IPv4, UDP and VXLAN headers), as the kernel device has.
#   vxlan6  as vxlan over an IPv6 underlay (2001:db8:77::1 here, ::2 in
#           the namespace; the Linux device sends UDP checksums, as IPv6
#           wants): 70 bytes of outer headers, so host_mtu=1430;
#   vxlan2d as vxlan, but guest 2 is on a second lwvhostd (192.168.77.3):
#           three VTEPs, each listing the other two (the kernel device with
#           an all-zero FDB entry per remote), so guest 1 reaches guest 2
#           across the two daemons and the namespace through either; ARP
#           broadcasts are replicated to both remotes by each, and each
#           learns where the MACs are.
# Guest 1 pings guest 2 and the tap address; guest 2 serves meanwhile, and
# is pinged from the netns too.  Traffic stays between the guests and the
# private network namespace.
#
# Usage: tests/integration/qemu_ping.sh [--selftest]
#   --selftest  no lwvhostd: the guests are joined by QEMU's own
#               `-netdev stream` (unix socket), to check the guest image.
# Env: BUILD (default build), LWV_LINK (tap, uplink, uplinkxdp, vxlan,
#      vxlan6 or vxlan2d; above),
#      LWV_TAP (default lwvtap0), LWV_PACKED ("all":
#      both guests use packed virtqueues, "1": guest 1 packed, guest 2 split;
#      the negotiated layout is checked), LWV_DAEMON_ARGS
#      (extra lwvhostd options, e.g. "--policy interval:50"), LWV_KEEP=1 keeps
#      the temp dir, LWV_VERBOSE=1 prints the guest logs even on success.
# Exit: 0 pass, 77 skipped (a required tool is missing), else fail.
# Needs (Debian 12): qemu-system-x86 busybox-static linux-image-amd64 cpio
#      iproute2 (+ coreutils, gzip, util-linux: always there).
set -u

cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
TAP=${LWV_TAP:-lwvtap0}
LINK=${LWV_LINK:-tap}
MODE=daemon
case "${1:-}" in
"") ;;
--selftest) MODE=selftest ;;
*) echo "usage: $0 [--selftest]" >&2; exit 2 ;;
esac

NAME=qemu_ping
[ "$LINK" = tap ] || NAME=qemu_ping_$LINK
DPID2=
CTL_VM2=ctl.sock   # the control socket of the daemon guest 2 is on
. tests/integration/lib-qemu.sh
case "$LINK" in tap|uplink|uplinkxdp|vxlan|vxlan6|vxlan2d) ;; *) fail "LWV_LINK must be tap, uplink, uplinkxdp, vxlan, vxlan6 or vxlan2d" ;; esac
INNER_MTU=1450   # over VXLAN: 1500 less the outer headers (70 over IPv6)
[ "$LINK" = vxlan6 ] && INNER_MTU=1430

# ---- requirements ----------------------------------------------------------
qemu_require
if [ $MODE = daemon ]; then
    command -v ip >/dev/null 2>&1 || skip "ip missing (apt-get install iproute2)"
    [ "${LINK#vxlan}" != "$LINK" -o "$LINK" = uplinkxdp ] && ! command -v ethtool >/dev/null 2>&1 &&
        skip "ethtool missing (apt-get install ethtool)"
    [ "$(id -u)" = 0 ] || skip "needs root (network namespace, tap)"
    [ -c /dev/net/tun ] || skip "/dev/net/tun missing"
    D=$BUILD/lwvhostd
    CTL=$BUILD/lwvhostctl
    [ -x "$D" ] || fail "$D not built (run make)"
fi

IMG=$BUILD/guest
qemu_guest_image "$IMG"

# ---- state and cleanup -----------------------------------------------------
T=$(mktemp -d /tmp/lwv-qemu-ping.XXXXXX) || fail "mktemp"
NS=lwvping$$
NS_MADE=
VETH=
VETH_MADE=
DPID=
QPID1=
QPID2=
HPID=
START=$SECONDS

show_logs() {
    dump_logs 150 "$T"/g1.log "$T"/g2.log "$T"/qemu1.out "$T"/qemu2.out "$T"/lwvhostd.log "$T"/lwvhostd2.log
}

cleanup() {
    kill_wait "$QPID1" 5
    kill_wait "$QPID2" 5
    kill_wait "$HPID" 2
    if [ -n "$DPID" ]; then
        if ! kill -0 "$DPID" 2>/dev/null; then
            log "lwvhostd (pid $DPID) is not running at cleanup"
        fi
        kill_wait "$DPID" 5
    fi
    [ -n "$DPID2" ] && kill_wait "$DPID2" 5
    [ -n "$NS_MADE" ] && ip netns del "$NS" 2>/dev/null
    [ -n "$VETH_MADE" ] && ip link del "$VETH" 2>/dev/null
}
on_exit cleanup

tap_exists() { ip link show "$TAP" >/dev/null 2>&1; }

# make_veth HERE THERE: a veth pair, HERE up in this namespace, THERE in
# the test's namespace.
make_veth() {
    ip link show "$1" >/dev/null 2>&1 && fail "interface $1 already exists (left over from an earlier run?)"
    ip link add "$1" type veth peer name "$2" netns "$NS" || fail "ip link add $1 type veth"
    VETH=$1
    VETH_MADE=1
    ip link set "$1" up || fail "cannot bring $1 up"
    ip -n "$NS" link set "$2" up || fail "cannot bring $2 up"
}

# ---- backend ---------------------------------------------------------------
if [ $MODE = daemon ]; then
    ip netns add "$NS" || fail "ip netns add $NS"
    NS_MADE=1
    ip -n "$NS" link set lo up
    case "$LINK" in
    tap)
        tap_exists && fail "interface $TAP already exists (left over from an earlier run?)"
        LINK_ARGS=(--tap "$TAP") ;;
    uplink)
        make_veth lwvup0 lwvup1
        ip -n "$NS" addr add 10.200.0.1/24 dev lwvup1 || fail "ip addr add"
        LINK_ARGS=(--uplink "up0,ifname=lwvup0") ;;
    uplinkxdp)
        make_veth lwvup0 lwvup1
        ip -n "$NS" addr add 10.200.0.1/24 dev lwvup1 || fail "ip addr add"
        ip netns exec "$NS" ethtool -K lwvup1 tx off >/dev/null ||
            fail "ethtool -K lwvup1 tx off (netns)"
        LINK_ARGS=(--uplink "up0,ifname=lwvup0,mode=xdp,xdp_mode=native") ;;
    vxlan|vxlan6|vxlan2d)
        make_veth lwvul0 lwvul1
        if [ "$LINK" = vxlan6 ]; then
            ip -6 addr add 2001:db8:77::1/64 dev lwvul0 nodad || fail "ip -6 addr add"
            ip -n "$NS" -6 addr add 2001:db8:77::2/64 dev lwvul1 nodad ||
                fail "ip -6 addr add (netns)"
            ip -n "$NS" link add vx42 type vxlan id 42 local 2001:db8:77::2 remote 2001:db8:77::1 \
                dstport 4789 dev lwvul1 || fail "ip link add type vxlan over IPv6 (netns)"
        else
            ip addr add 192.168.77.1/24 dev lwvul0 || fail "ip addr add"
            ip -n "$NS" addr add 192.168.77.2/24 dev lwvul1 || fail "ip addr add (netns)"
        fi
        if [ "$LINK" = vxlan6 ]; then
            :
        elif [ "$LINK" = vxlan ]; then
            ip -n "$NS" link add vx42 type vxlan id 42 local 192.168.77.2 remote 192.168.77.1 \
                dstport 4789 dev lwvul1 || fail "ip link add type vxlan (netns)"
        else
            ip addr add 192.168.77.3/24 dev lwvul0 || fail "ip addr add"
            ip -n "$NS" link add vx42 type vxlan id 42 local 192.168.77.2 dstport 4789 \
                dev lwvul1 || fail "ip link add type vxlan (netns)"
            for h in 192.168.77.1 192.168.77.3; do
                ip netns exec "$NS" bridge fdb append 00:00:00:00:00:00 dev vx42 dst $h ||
                    fail "bridge fdb append ... dst $h (netns)"
            done
        fi
        ip -n "$NS" addr add 10.200.0.1/24 dev vx42 || fail "ip addr add (vx42)"
        ip -n "$NS" link set vx42 up || fail "cannot bring vx42 up"
        # A veth hands the kernel's partial checksums over as they are:
        # the inner TCP checksum of a frame the VXLAN device sends would
        # reach lwvhostd's UDP socket unfinished (a local socket trusts a
        # CHECKSUM_PARTIAL packet and copies it out).  A NIC completes
        # them on the wire; here the veth must not offload them.
        ip netns exec "$NS" ethtool -K lwvul1 tx off >/dev/null ||
            fail "ethtool -K lwvul1 tx off (netns)"
        log "netns: $(ip -n "$NS" -d link show vx42 | grep -o 'vxlan id [0-9]* .*dstport [0-9]*'), mtu $(cat "/sys/class/net/lwvul0/mtu" 2>/dev/null)"
        export LWV_NIC_OPTS=host_mtu=$INNER_MTU${LWV_NIC_OPTS:+,$LWV_NIC_OPTS}
        LINK_ARGS=(--vxlan "vx0,local=192.168.77.1,remote=192.168.77.2,vni=42")
        [ "$LINK" = vxlan6 ] &&
            LINK_ARGS=(--vxlan "vx0,local=2001:db8:77::1,remote=2001:db8:77::2,vni=42")
        [ "$LINK" = vxlan2d ] &&
            LINK_ARGS=(--vxlan "vx0,local=192.168.77.1,remote=192.168.77.2,remote=192.168.77.3,vni=42") ;;
    esac
    PORTS=(--port "vm1,path=$T/vm1.sock" --port "vm2,path=$T/vm2.sock")
    if [ "$LINK" = vxlan2d ]; then
        PORTS=(--port "vm1,path=$T/vm1.sock")
        log "starting the second $D (guest 2's)"
        "$D" --port "vm2,path=$T/vm2.sock" --ctl "$T/ctl2.sock" \
            --vxlan "vx0,local=192.168.77.3,remote=192.168.77.1,remote=192.168.77.2,vni=42" \
            ${LWV_DAEMON_ARGS:-} </dev/null >"$T/lwvhostd2.log" 2>&1 &
        DPID2=$!
        CTL_VM2=ctl2.sock
    fi
    log "starting $D (${LINK_ARGS[*]})"
    "$D" "${PORTS[@]}" \
        "${LINK_ARGS[@]}" --ctl "$T/ctl.sock" ${LWV_DAEMON_ARGS:-} </dev/null >"$T/lwvhostd.log" 2>&1 &
    DPID=$!
    wait_for 10 "lwvhostd sockets" test -S "$T/vm1.sock" -a -S "$T/vm2.sock"
    if [ "$LINK" = tap ]; then
        wait_for 10 "tap $TAP" tap_exists
        ip link set "$TAP" netns "$NS" || fail "cannot move $TAP into netns $NS"
        ip -n "$NS" addr add 10.200.0.1/24 dev "$TAP" || fail "ip addr add"
        ip -n "$NS" link set "$TAP" up || fail "cannot bring $TAP up"
    fi
    NET1=(-chardev "socket,id=c0,path=$T/vm1.sock" -netdev vhost-user,id=n0,chardev=c0)
    NET2=(-chardev "socket,id=c0,path=$T/vm2.sock" -netdev vhost-user,id=n0,chardev=c0)
    TARGETS=10.200.0.3,10.200.0.1
else
    NET2=(-netdev "stream,id=n0,server=on,addr.type=unix,addr.path=$T/stream.sock")
    NET1=(-netdev "stream,id=n0,server=off,addr.type=unix,addr.path=$T/stream.sock")
    TARGETS=10.200.0.3
fi

# ---- guests ----------------------------------------------------------------
# TCP in every direction (guest to guest, guest to host, host to guest):
# with Linux guests this uses checksum and segmentation offloads. Each side
# serves the same 4 MiB file over HTTP (busybox httpd) and fetches the
# others' with busybox wget; the checksum of what arrived must match.
BIG=4194304
big_file() { yes 0123456789abcdef | head -c $BIG; }
BIG_MD5=$(big_file | md5sum | cut -d' ' -f1)
b64() { base64 -w0; }
G2_SCRIPT=$(printf '%s\n' 'mkdir -p /www' \
    "yes 0123456789abcdef | head -c $BIG > /www/big" \
    'httpd -p 80 -h /www && lwv-result http 10.200.0.3 ok' | b64)
G1_SCRIPT=$(printf '%s\n' 'for w in $(cat /proc/cmdline); do' \
    '  case $w in lwv.targets=*) targets=$(echo ${w#lwv.targets=} | tr , " ");; esac; done' \
    'for h in $targets; do' \
    '  i=0; while ! wget -q -O /tmp/big http://$h/big; do' \
    '    i=$((i+1)); [ $i -ge 30 ] && break; sleep 1; done' \
    '  lwv-result wget $h ok $(md5sum </tmp/big | cut -d" " -f1) $(wc -c </tmp/big)' \
    '  rm -f /tmp/big' \
    'done' | b64)
HTTP_TARGETS=10.200.0.3
if [ $MODE = daemon ]; then
    HTTP_TARGETS=10.200.0.3,10.200.0.1
    mkdir -p "$T/www" && big_file >"$T/www/big"
    ip netns exec "$NS" "$BB" httpd -f -p 80 -h "$T/www" &
    HPID=$!
fi

log "booting guest 2 (10.200.0.3, serving)"
start_guest 2 52:54:00:00:00:03 10.200.0.3/24 \
    "lwv.run=script lwv.run=serve:100 lwv.timeout=110 lwv.script=$G2_SCRIPT" "${NET2[@]}"
QPID2=$!
[ $MODE = selftest ] && wait_for 10 "guest 2 stream socket" test -S "$T/stream.sock"

log "booting guest 1 (10.200.0.2, pinging $TARGETS)"
start_guest 1 52:54:00:00:00:02 10.200.0.2/24 \
    "lwv.run=ping:$TARGETS lwv.run=script lwv.count=5 lwv.wait=40 lwv.timeout=90 lwv.script=$G1_SCRIPT lwv.targets=$HTTP_TARGETS" \
    "${NET1[@]}"
QPID1=$!

# The features each guest negotiated, read while it runs (once a second).
declare -A FEAT
port_features() {
    local c=ctl.sock
    [ "$1" = 2 ] && c=$CTL_VM2
    timeout 5 "$CTL" -s "$T/$c" ports --json 2>/dev/null | grep -o "\"name\":\"vm$1\"[^}]*" |
        grep -o '"features":"0x[0-9a-f]*"' | grep -o '0x[0-9a-f]*'
}
capture_features() {
    local g
    for g in 1 2; do
        # 0x0 until the guest's driver sets its features.
        [ -n "${FEAT[$g]:-}" ] && [ "${FEAT[$g]}" != 0x0 ] || FEAT[$g]=$(port_features $g)
    done
}

# Guest 1 powers itself off when done (its own watchdog: 90 s).
n=0
while alive "$QPID1"; do
    n=$((n + 1))
    [ $MODE = daemon ] && [ $((n % 10)) = 0 ] && [ -x "$CTL" ] && capture_features
    [ $n -ge 1000 ] && fail "guest 1 still running after 100 s"
    if [ -n "$DPID2" ] && ! alive "$DPID2"; then
        fail "the second lwvhostd exited while guest 1 was running"
    fi
    if [ -n "$DPID" ] && ! alive "$DPID"; then
        fail "lwvhostd exited while guest 1 was running"
    fi
    sleep 0.1
done
wait "$QPID1"
q1rc=$?
QPID1=
log "guest 1 finished (qemu rc=$q1rc):"
results "$T/g1.log" | sed 's/^/  g1: /'
results "$T/g2.log" | sed 's/^/  g2: /'

ok=1
[ $q1rc = 0 ] || { log "guest 1 qemu exited with $q1rc"; ok=; }
has_result "$T/g1.log" "boot 10.200.0.2 ok" || { log "guest 1 did not boot/configure eth0"; ok=; }
for h in ${TARGETS//,/ }; do
    has_result "$T/g1.log" "ping $h ok" || { log "guest 1 -> $h ping failed"; ok=; }
done
for h in ${HTTP_TARGETS//,/ }; do
    has_result "$T/g1.log" "wget $h ok $BIG_MD5 $BIG" ||
        { log "guest 1: TCP transfer from $h incomplete or corrupt"; ok=; }
done
has_result "$T/g1.log" "done - ok" || { log "guest 1 did not report done - ok"; ok=; }
has_result "$T/g2.log" "serve 10.200.0.3 ready" || { log "guest 2 never got ready"; ok=; }
alive "$QPID2" || { log "guest 2 is not running any more"; ok=; }

# The other direction, initiated from the namespace, while guest 2 serves.
if [ $MODE = daemon ] && alive "$QPID2"; then
    log "netns -> guest 2 ping"
    if timeout 20 ip netns exec "$NS" "$BB" ping -c 3 -W 2 -w 15 10.200.0.3; then
        log "netns -> 10.200.0.3 ok"
    else
        log "netns -> 10.200.0.3 ping failed"; ok=
    fi
    got=$(timeout 60 ip netns exec "$NS" "$BB" wget -q -O - http://10.200.0.3/big | md5sum | cut -d' ' -f1)
    if [ "$got" = "$BIG_MD5" ]; then
        log "netns <- guest 2 TCP transfer ok"
    else
        log "netns <- guest 2 TCP transfer incomplete or corrupt ($got)"; ok=
    fi
fi

if [ $MODE = daemon ]; then
    if [ -x "$CTL" ]; then
        log "$CTL -s $T/ctl.sock stats:"
        timeout 5 "$CTL" -s "$T/ctl.sock" stats
        crc=$?
        [ $crc = 0 ] || { log "lwvhostctl stats failed (rc=$crc)"; ok=; }
        timeout 5 "$CTL" -s "$T/ctl.sock" ports
        if [ -n "$DPID2" ]; then
            log "the second daemon (guest 2's):"
            timeout 5 "$CTL" -s "$T/ctl2.sock" stats
            timeout 5 "$CTL" -s "$T/ctl2.sock" ports
        fi
        # The Linux guests must have negotiated checksum and TSO offloads
        # (bits 0, 1, 7, 11), so the TCP transfers above exercised them.
        f=$(timeout 5 "$CTL" -s "$T/$CTL_VM2" ports --json | grep -o '"name":"vm2"[^}]*' |
            grep -o '"features":"0x[0-9a-f]*"' | grep -o '0x[0-9a-f]*')
        if [ -n "$f" ] && (( (f & 0x883) == 0x883 )); then
            log "vm2 negotiated checksum and TSO offloads (features $f)"
        else
            log "vm2 did not negotiate checksum/TSO offloads (features ${f:-?})"; ok=
        fi
        # Over VXLAN the guests' NICs advertise the inner MTU (host_mtu,
        # VIRTIO_NET_F_MTU): QEMU tells the daemon with NET_SET_MTU.
        if [ "${LINK#vxlan}" != "$LINK" ]; then
            m=$(timeout 5 "$CTL" -s "$T/$CTL_VM2" ports --json | grep -o '"name":"vm2"[^}]*' |
                grep -o '"mtu":[0-9]*' | grep -o '[0-9]*$')
            if [ "${m:-}" = "$INNER_MTU" ]; then
                log "vm2's MTU is $INNER_MTU (VXLAN overhead taken off)"
            else
                log "vm2's MTU is ${m:-unknown}, expected $INNER_MTU"; ok=
            fi
        fi
        # An AF_XDP uplink: native XDP on the veth, frames both ways, and
        # none of the guests' frames refused (too big for a UMEM frame, or
        # an offload request it could not carry out).
        if [ "$LINK" = uplinkxdp ]; then
            u=$(timeout 5 "$CTL" -s "$T/ctl.sock" stats --json | python3 -c '
import json, sys
p = [x for x in json.load(sys.stdin)["ports"] if x["name"] == "up0"][0]
print(p["mode"], p["xdp_mode"], p["rx_packets"], p["tx_packets"], p["xdp_tx_too_big"],
      p["xdp_tx_bad_offload"], p["wire_bad_ring"])' 2>&1)
            log "uplink up0: mode, xdp_mode, to the wire, from the wire, too big, bad offload, bad ring: $u"
            read -r um ux urx utx ubig uoff uring <<<"$u"
            if [ "$um $ux" = "xdp native" ] && [ "${urx:-0}" -gt 1000 ] && [ "${utx:-0}" -gt 1000 ] &&
                [ "$ubig $uoff $uring" = "0 0 0" ]; then
                log "the AF_XDP uplink carried the transfers, native, nothing refused"
            else
                log "the AF_XDP uplink's counters are not as expected"; ok=
            fi
        fi
        # With LWV_PACKED each guest's ring layout must be the one asked
        # for: VIRTIO_F_RING_PACKED (bit 34) in the features it negotiated
        # (seen while it ran: guest 1 is gone by now).
        if [ -n "${LWV_PACKED:-}" ]; then
            for g in 1 2; do
                f=${FEAT[$g]:-}
                want=split
                [ -n "$(nic_ring_opt $g)" ] && want=packed
                got=split
                [ -n "$f" ] && (( (f >> 34) & 1 )) && got=packed
                if [ -z "$f" ] || [ "$f" = 0x0 ]; then
                    log "vm$g: negotiated features never seen"; ok=
                elif [ "$got" = "$want" ]; then
                    log "vm$g runs $got rings (features $f)"
                else
                    log "vm$g runs $got rings, expected $want (features $f)"; ok=
                fi
            done
            timeout 5 "$CTL" -s "$T/ctl.sock" rings
        fi
    else
        log "$CTL not built, no stats"
    fi
fi

kill_wait "$QPID2" 5
QPID2=

if [ -n "$DPID" ]; then
    # The daemon must survive its guests going away.
    sleep 0.5
    alive "$DPID" || { log "lwvhostd died after the guests disconnected"; ok=; }
    [ -z "$DPID2" ] || alive "$DPID2" || { log "the second lwvhostd died after the guests disconnected"; ok=; }
fi

[ -n "$ok" ] || fail "see the logs below"
exit 0
