#!/usr/bin/env bash
# ovs_vxlan: lwvhostd's VXLAN port against Open vSwitch's userspace datapath
# (datapath_type=netdev: this kernel may have no openvswitch module, and the
# test does not need one), over an IPv4 underlay; with LWV_OVS_FAMILY=6 (as
# tests/system/ovs_vxlan6.sh runs it, test name ovs_vxlan6) over an IPv6 one.
#
#   namespace A                                  namespace B
#   10.50.1.1/24 lwvt0 (tap, MTU 1450)           10.50.1.2/24 br-int (OVS internal, MTU 1450)
#        |                                            |
#   lwvhostd: --tap lwvt0                        br-int: vx0 type=vxlan key=5001
#             --vxlan vx0,vni=5001                    |    remote_ip=198.18.50.1
#        |                                       br-phy: 198.18.50.2/24 on its internal port,
#   198.18.50.1/24 lwo<pid>a ===== veth ======== lwo<pid>b (AF_PACKET port of br-phy)
#
# Over IPv6 the underlay is 2001:db8:50::1/64 (A) and 2001:db8:50::2/64
# (br-phy), both added with nodad, and the overlay MTU 1430 (the outer
# headers take 70 bytes); the overlay stays IPv4 (10.50.1.0/24). IPv6 is on
# only on the underlay's interfaces (lwo<pid>a and br-phy), off on the
# overlay's and on OVS's end of the veth, with no router advertisements
# taken; over IPv4 it is off everywhere.
#
# ovsdb-server and ovs-vswitchd run in namespace B with their own database,
# run and log directories under a temporary directory (OVS_RUNDIR, OVS_DBDIR,
# OVS_LOGDIR), so a system-wide Open vSwitch (the package's service, if it
# started) is neither used nor touched; they are killed by their pidfiles and
# both namespaces deleted at the end, also on failure.
#
# Checks: OVS learns the route and the neighbour of lwvhostd's VTEP (from
# ARP, or IPv6 neighbour discovery, crossing br-phy); pings both ways across
# the tunnel, at the full inner size (1450-byte packets, 1430 over IPv6,
# DF); on the wire (a capture on lwo<pid>a during the pings), every datagram
# of lwvhostd's with a correct UDP checksum, OVS's without one (its default
# over IPv4) or with a correct one (over IPv6: OVS always sets one there);
# 8 MiB over TCP each way, byte-exact, in full-size segments (the average
# frame across the VXLAN port is checked); then options:csum=true over IPv4
# (OVS's datagrams must now carry a correct checksum) or options:csum=false
# over IPv6 (they still do), ping (captured again) and 1 MiB; lwvhostd's
# VXLAN counters move and show no drop of any kind; OVS's datapath
# decapsulated and encapsulated (tnl_pop, tnl_push with VNI 5001 in
# dpctl/dump-flows, the tunnel port's OpenFlow counters) and dropped nothing
# in tunnel processing; lwvhostd exits 0 on SIGTERM.
#
# Namespace A's end of the veth has its TX checksum offload (and with it TSO
# and UDP segmentation) turned off: OVS reads the veth through an AF_PACKET
# socket, which would see lwvhostd's UDP datagrams with the kernel's partial
# checksum (only the pseudo-header sum) and UDP GSO sends unsegmented, and
# drop them (datapath_drop_tunnel_pop_error). A NIC completes checksums and
# segments on the wire; OVS's own system tests for the userspace datapath
# do the same to their veths (CONFIGURE_VETH_OFFLOADS). The same over IPv6.
# docs/multihost.md.
#
# Needs root, ip(8), ethtool, python3 and Open vSwitch (openvswitch-switch;
# scripts/install-deps.sh). Exit 0 pass, 77 skip, else fail.
set -u
cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
FAMILY=${LWV_OVS_FAMILY:-4}             # the underlay's
PREFIX=lwvovs-
VNI=5001
case $FAMILY in
    # underlay (the VTEPs), its prefix; the inner MTU: 1500 less the outer headers
    4) NAME=ovs_vxlan UA=198.18.50.1 UB=198.18.50.2 UNET=198.18.50.0/24 ULEN=24 MTU=1450 ;;
    6) NAME=ovs_vxlan6 UA=2001:db8:50::1 UB=2001:db8:50::2 UNET=2001:db8:50::/64 ULEN=64 MTU=1430 ;;
    *) echo "ovs_vxlan: LWV_OVS_FAMILY=$FAMILY: 4 or 6"; exit 1 ;;
esac
OA=10.50.1.1 OB=10.50.1.2               # overlay (the endpoints), IPv4 either way
MSS=$((MTU - 40))                       # the overlay's TCP MSS (less 12 with timestamps)
MIB=8                                   # each TCP transfer

skip() { echo "$NAME: SKIP: $*"; exit 77; }

[[ -x $BUILD/lwvhostd && -x $BUILD/lwvhostctl ]] || skip "not built (make)"
for b in ovsdb-tool ovsdb-server ovs-vswitchd ovs-vsctl ovs-appctl ovs-ofctl; do
    command -v "$b" >/dev/null 2>&1 ||
        skip "Open vSwitch is not installed ($b; apt-get install openvswitch-switch)"
done
[[ $(id -u) == 0 ]] || skip "needs root (network namespaces, veth, tap)"
command -v ip >/dev/null 2>&1 || skip "no ip(8) (apt-get install iproute2)"
command -v ethtool >/dev/null 2>&1 || skip "no ethtool (apt-get install ethtool)"
command -v python3 >/dev/null 2>&1 || skip "no python3"
SCHEMA=${OVS_PKGDATADIR:-/usr/share/openvswitch}/vswitch.ovsschema
[[ -r $SCHEMA ]] || skip "Open vSwitch is not installed ($SCHEMA missing)"

# A process that has exited (gone, or a zombie not yet reaped).
gone() { local s; s=$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null) || return 0; [[ $s == Z ]]; }
# Stops the process in pidfile $1 if its command line names $2 (it is ours).
stop_pidfile() {
    local pf=$1 mark=$2 pid i
    pid=$(cat "$pf" 2>/dev/null) || return 0
    [[ $pid =~ ^[0-9]+$ ]] || return 0
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$mark" || return 0
    kill "$pid" 2>/dev/null
    for i in $(seq 100); do gone "$pid" && return 0; sleep 0.05; done
    kill -9 "$pid" 2>/dev/null
}
# Everything a run left: its OVS daemons, lwvhostd, namespaces, directory.
teardown() {
    local dir=$1 pid=$2
    stop_pidfile "$dir/lwvhostd.pid" "$dir/ctl.sock"
    stop_pidfile "$dir/run/ovs-vswitchd.pid" "$dir/"
    stop_pidfile "$dir/run/ovsdb-server.pid" "$dir/"
    ip netns del "$PREFIX$pid-a" 2>/dev/null
    ip netns del "$PREFIX$pid-b" 2>/dev/null
    rm -rf "$dir"
}
# Runs killed before their trap could run (SIGKILL, a timeout).
for d in /tmp/"$PREFIX"[0-9]*.*; do
    [[ -d $d ]] || continue
    p=${d#/tmp/$PREFIX}; p=${p%%.*}
    kill -0 "$p" 2>/dev/null || teardown "$d" "$p"
done

T=$(mktemp -d "/tmp/$PREFIX$$.XXXXXX") || { echo "$NAME: FAIL: mktemp"; exit 1; }
NSA=$PREFIX$$-a NSB=$PREFIX$$-b
VA=lwo$$a VB=lwo$$b
LWV= SRV=
SNF=
# A TCP server or a capture left running by a failure, then the rest.
cleanup() {
    [[ -n $SRV ]] && kill "$SRV" 2>/dev/null
    [[ -n $SNF ]] && kill "$SNF" 2>/dev/null
    teardown "$T" $$
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

export OVS_RUNDIR=$T/run OVS_DBDIR=$T/db OVS_LOGDIR=$T/log OVS_SYSCONFDIR=$T/etc
mkdir -p "$OVS_RUNDIR" "$OVS_DBDIR" "$OVS_LOGDIR" "$OVS_SYSCONFDIR"
vsctl() { ovs-vsctl --db="unix:$T/run/db.sock" --timeout=30 "$@"; }
appctl() { ovs-appctl -t "$T/run/ovs-vswitchd.ctl" "$@"; }
ofctl() { ovs-ofctl "$@"; }               # finds br-int.mgmt in OVS_RUNDIR
ctl() { "$BUILD/lwvhostctl" -s "$T/ctl.sock" "$@"; }
ina() { ip netns exec "$NSA" "$@"; }
inb() { ip netns exec "$NSB" "$@"; }

fail() {
    echo "$NAME: FAIL: $*"
    echo "--- lwvhostd log"; cat "$T/lwvhostd.log" 2>/dev/null
    echo "--- lwvhostctl stats"; ctl stats 2>&1
    echo "--- ovs-vsctl show"; vsctl show 2>&1
    echo "--- ovs/route/show"; appctl ovs/route/show 2>&1
    echo "--- tnl/neigh/show"; appctl tnl/neigh/show 2>&1
    echo "--- dpctl/dump-flows"; appctl dpctl/dump-flows 2>&1
    echo "--- ovs-ofctl dump-ports br-int"; ofctl dump-ports br-int 2>&1
    echo "--- coverage (drops)"; appctl coverage/show 2>&1 | grep -i drop
    echo "--- ovs-vswitchd log (last 30 lines)"; tail -n 30 "$T/log/ovs-vswitchd.log" 2>/dev/null
    exit 1
}
# waitfor SECONDS WHAT CMD...: runs CMD every 0.1 s until it succeeds.
waitfor() {
    local secs=$1 what=$2 end; shift 2
    end=$(( $(date +%s%N) + secs * 1000000000 ))
    until "$@" >/dev/null 2>&1; do
        (( $(date +%s%N) < end )) || fail "$what (waited ${secs} s)"
        sleep 0.1
    done
}
step() { echo "$NAME: $*"; }

# --- the two namespaces and the underlay
ip netns add "$NSA" || fail "ip netns add $NSA"
ip netns add "$NSB" || fail "ip netns add $NSB"
for ns in "$NSA" "$NSB"; do
    ip -n "$ns" link set lo up
    # No IPv6 chatter (router solicitations, DAD, MLD) on either side: off
    # on every interface made from here on (the veth, the tap, OVS's
    # internal ports); over IPv6 turned on again on the underlay's two.
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.default.disable_ipv6=1 \
        net.ipv6.conf.default.accept_ra=0 || fail "sysctl in $ns"
    [[ $FAMILY == 4 ]] && ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
done
ip link add "$VA" netns "$NSA" type veth peer name "$VB" netns "$NSB" || fail "no veth pair"
if [[ $FAMILY == 6 ]]; then
    ina sysctl -qw "net.ipv6.conf.$VA.disable_ipv6=0" || fail "cannot turn IPv6 on on $VA"
    NODAD=nodad
else
    NODAD=
fi
ip -n "$NSA" addr add "$UA/$ULEN" dev "$VA" $NODAD && ip -n "$NSA" link set "$VA" up &&
    ip -n "$NSB" link set "$VB" up || fail "cannot configure the veth pair"
# OVS reads $VB with AF_PACKET: see the header.
ina ethtool -K "$VA" tx off >/dev/null || fail "ethtool -K $VA tx off"

# --- Open vSwitch in namespace B, userspace datapath
ovsdb-tool create "$T/db/conf.db" "$SCHEMA" || fail "ovsdb-tool create"
inb ovsdb-server "$T/db/conf.db" --remote="punix:$T/run/db.sock" \
    --unixctl="$T/run/ovsdb-server.ctl" --pidfile="$T/run/ovsdb-server.pid" --detach \
    --no-chdir --log-file="$T/log/ovsdb-server.log" -vconsole:off 2>"$T/log/ovsdb-server.err" ||
    fail "ovsdb-server did not start: $(cat "$T/log/ovsdb-server.err")"
vsctl --no-wait init || fail "ovs-vsctl init"
inb ovs-vswitchd "unix:$T/run/db.sock" --disable-system --unixctl="$T/run/ovs-vswitchd.ctl" \
    --pidfile="$T/run/ovs-vswitchd.pid" --detach --no-chdir \
    --log-file="$T/log/ovs-vswitchd.log" -vconsole:off 2>"$T/log/ovs-vswitchd.err" ||
    fail "ovs-vswitchd did not start: $(cat "$T/log/ovs-vswitchd.err")"
step "OVS $(ovs-vswitchd --version | head -n 1 | awk '{print $NF}') running in $NSB"
# br-phy: the underlay port and the VTEP's address on the bridge's internal
# port (a tap in the userspace datapath). A fixed MAC, so that it does not
# change under A's ARP cache when ports come and go.
vsctl add-br br-phy -- set bridge br-phy datapath_type=netdev \
        other-config:hwaddr=02:00:c6:12:32:02 -- add-port br-phy "$VB" ||
    fail "cannot make br-phy"
if [[ $FAMILY == 6 ]]; then
    inb sysctl -qw net.ipv6.conf.br-phy.disable_ipv6=0 || fail "cannot turn IPv6 on on br-phy"
fi
ip -n "$NSB" addr add "$UB/$ULEN" dev br-phy $NODAD && ip -n "$NSB" link set br-phy up ||
    fail "cannot give br-phy its address"
# br-int: the VXLAN port and the overlay endpoint (the internal port, MTU 1450 or 1430).
vsctl add-br br-int -- set bridge br-int datapath_type=netdev \
        -- set interface br-int mtu_request=$MTU \
        -- add-port br-int vx0 -- set interface vx0 type=vxlan options:remote_ip=$UA \
           options:local_ip=$UB options:key=$VNI options:dst_port=4789 ||
    fail "cannot make br-int and its vxlan port"
ip -n "$NSB" addr add "$OB/24" dev br-int && ip -n "$NSB" link set br-int up ||
    fail "cannot give br-int its address"
[[ $(ip -n "$NSB" -o link show br-int) == *" mtu $MTU "* ]] || fail "br-int's MTU is not $MTU"

# --- lwvhostd in namespace A: a tap (the endpoint, with the kernel's TCP) and the VXLAN port
# Not through ina (a function: & would fork a shell around it): ip netns
# exec becomes lwvhostd, so $! is the daemon.
ip netns exec "$NSA" "$BUILD/lwvhostd" --tap lwvt0 --vxlan "vx0,local=$UA,remote=$UB,vni=$VNI" \
    --ctl "$T/ctl.sock" --log-level info >"$T/lwvhostd.log" 2>&1 &
LWV=$!
echo "$LWV" >"$T/lwvhostd.pid"
waitfor 10 "lwvhostd did not start" test -S "$T/ctl.sock"
waitfor 5 "no tap lwvt0 in $NSA" ip -n "$NSA" link show lwvt0
ip -n "$NSA" link set lwvt0 mtu $MTU up && ip -n "$NSA" addr add "$OA/24" dev lwvt0 ||
    fail "cannot configure lwvt0"

# --- the underlay: OVS's tunnel route (from the kernel's table) and neighbour
waitfor 10 "OVS has no route to $UNET through br-phy" \
    sh -c "ovs-appctl -t '$T/run/ovs-vswitchd.ctl' ovs/route/show | grep -qF '$UNET dev br-phy'"
# OVS learns the neighbour by snooping the replies to B's kernel on br-phy
# (it would also take it from lwvhostd's first datagram, or ask itself at
# its first send; this checks the snooping, before any tunnel traffic):
# ARP replies, or neighbour advertisements with the target's link-layer
# address, which Linux puts only in answers to a multicast solicitation.
# So B asks first: after A had asked, B's kernel would know A's MAC from
# A's solicitation, check it later with a unicast one, and OVS learn
# nothing (docs/multihost.md).
waitfor 10 "OVS did not learn $UA's MAC (tnl/neigh/show)" \
    sh -c "ip netns exec '$NSB' ping -c 1 -W 1 '$UA' >/dev/null;
           ovs-appctl -t '$T/run/ovs-vswitchd.ctl' tnl/neigh/show | grep -q '^$UA '"
waitfor 10 "no underlay ping $NSA -> $UB" ina ping -c 1 -W 1 "$UB"
step "OVS's tunnel route: $(appctl ovs/route/show | grep -F "$UNET dev br-phy" | tr -s ' ');" \
    "neighbour: $(appctl tnl/neigh/show | grep "^$UA " | tr -s ' ')"

# --- the outer UDP checksums on the wire: a capture on A's end of the veth
# (A's kernel completes its checksums before the capture sees them: TX
# offload is off there), while pings cross
cat >"$T/sniff.py" <<'EOF'
# IFACE LOCAL REMOTE PORT OUT READY: counts the VXLAN datagrams (UDP to PORT)
# on IFACE from LOCAL (lwvhostd) and from REMOTE (OVS) by their UDP checksum
# (zero, correct, wrong) until SIGTERM, then writes the counts to OUT (JSON).
import json, signal, socket, struct, sys
ifname, local, remote, port, out, ready = sys.argv[1:7]
port = int(port)
fam = socket.AF_INET6 if ":" in local else socket.AF_INET
local, remote = socket.inet_pton(fam, local), socket.inet_pton(fam, remote)
counts = {w: dict(zero=0, good=0, bad=0, other=0) for w in ("lwvhostd", "ovs")}
stop = False
def on_term(*_):
    global stop
    stop = True
signal.signal(signal.SIGTERM, on_term)
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))   # ETH_P_ALL
s.bind((ifname, 0))
s.settimeout(0.1)
open(ready, "w").close()
def fold(b):
    if len(b) % 2:
        b += b"\0"
    t = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while t >> 16:
        t = (t & 0xffff) + (t >> 16)
    return t
while not stop:
    try:
        f = s.recv(65536)
    except socket.timeout:
        continue
    except InterruptedError:
        continue
    et = struct.unpack("!H", f[12:14])[0]
    if fam == socket.AF_INET and et == 0x0800 and f[23] == 17:
        ihl = (f[14] & 15) * 4
        src, dst, off, n = f[26:30], f[30:34], 14 + ihl, struct.unpack("!H", f[16:18])[0] - ihl
        pseudo = src + dst + struct.pack("!BBH", 0, 17, n)
    elif fam == socket.AF_INET6 and et == 0x86dd and f[20] == 17:
        src, dst, off, n = f[22:38], f[38:54], 54, struct.unpack("!H", f[18:20])[0]
        pseudo = src + dst + struct.pack("!IxxxB", n, 17)
    else:
        continue
    l4 = f[off:off + n]
    if len(l4) < 8 or struct.unpack("!H", l4[2:4])[0] != port:
        continue
    who = "lwvhostd" if (src, dst) == (local, remote) else "ovs" if (src, dst) == (remote, local) else None
    if who is None:
        continue
    c = counts[who]
    if len(l4) != n or struct.unpack("!H", l4[4:6])[0] != n:
        c["other"] += 1         # cut short, or several joined (GRO)
    elif l4[6:8] == b"\0\0":
        c["zero"] += 1
    else:
        c["good" if fold(pseudo + l4) == 0xffff else "bad"] += 1
json.dump(counts, open(out, "w"))
EOF
# sniff_start: the capture, in the background until sniff_stop.
sniff_start() {
    rm -f "$T/sniff.json" "$T/sniff.ready"
    ip netns exec "$NSA" python3 "$T/sniff.py" "$VA" "$UA" "$UB" 4789 "$T/sniff.json" "$T/sniff.ready" &
    SNF=$!
    waitfor 10 "the capture on $VA did not start" test -e "$T/sniff.ready"
}
# sniff_stop WHAT OVS_CSUM: stops the capture; every datagram of lwvhostd's
# must carry a correct checksum, every one of OVS's a correct one
# (OVS_CSUM=good) or none (zero), and each side must have sent some.
sniff_stop() {
    kill -TERM "$SNF"; wait "$SNF" || fail "the capture on $VA failed"
    SNF=
    python3 - "$T/sniff.json" "$2" "$1" <<'EOF' || fail "$1: outer UDP checksums on the wire (above)"
import json, sys
c, want, what = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3]
print("%s: on the wire, lwvhostd's datagrams %s; OVS's %s" % (what,
      ", ".join("%s %d" % kv for kv in c["lwvhostd"].items()),
      ", ".join("%s %d" % kv for kv in c["ovs"].items())))
bad = []
for who, ok in (("lwvhostd", "good"), ("ovs", want)):
    n = sum(c[who].values())
    if n < 10:
        bad.append("%d datagrams from %s captured, want at least 10" % (n, who))
    if c[who][ok] != n:
        bad.append("%s's datagrams: %d of %d with a %s UDP checksum" %
                   (who, c[who][ok], n, "correct" if ok == "good" else "zero"))
for b in bad:
    print("bad:", b)
sys.exit(1 if bad else 0)
EOF
}
# pings: both ways, then at the full inner size with DF.
pings() {
    local size=$((MTU - 28))
    ina ping -q -c 5 -i 0.05 -W 3 "$OB" >"$T/ping" || fail "$1: ping $OA -> $OB: $(cat "$T/ping")"
    inb ping -q -c 5 -i 0.05 -W 3 "$OA" >"$T/ping" || fail "$1: ping $OB -> $OA: $(cat "$T/ping")"
    ina ping -q -c 3 -i 0.05 -W 3 -M do -s $size "$OB" >"$T/ping" ||
        fail "$1: ping -M do -s $size (a $MTU-byte packet) $OA -> $OB: $(cat "$T/ping")"
    inb ping -q -c 3 -i 0.05 -W 3 -M do -s $size "$OA" >"$T/ping" ||
        fail "$1: ping -M do -s $size (a $MTU-byte packet) $OB -> $OA: $(cat "$T/ping")"
}

# --- the overlay: pings both ways, then at the full inner size with DF
waitfor 20 "no overlay ping $OA -> $OB across the tunnel" ina ping -c 1 -W 1 "$OB"
step "tunnel up; ping both ways, $MTU bytes with DF"
sniff_start
pings "OVS's defaults"
if [[ $FAMILY == 4 ]]; then
    sniff_stop "OVS's defaults" zero        # OVS: no checksum unless options:csum=true
else
    sniff_stop "OVS's defaults" good        # OVS: always one over IPv6
fi

# --- TCP, byte-exact
cat >"$T/tcpx.py" <<'EOF'
# recv ADDR PORT OUT READY: accept one connection, write what arrives to OUT.
# send ADDR PORT IN: send IN, print the connection's MSS.
import socket, sys
mode, addr, port, path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
if mode == "recv":
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(1)
    s.settimeout(60)
    open(sys.argv[5], "w").close()
    c, _ = s.accept()
    c.settimeout(60)
    with open(path, "wb") as f:
        while True:
            d = c.recv(1 << 16)
            if not d:
                break
            f.write(d)
    c.close()
else:
    c = socket.create_connection((addr, port), timeout=60)
    print(c.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG))
    with open(path, "rb") as f:
        c.sendall(f.read())
    c.shutdown(socket.SHUT_WR)
    c.recv(1)                    # the peer's close: everything was read
    c.close()
EOF
head -c $((MIB << 20)) /dev/urandom >"$T/data"
# vx JSONFIELD: a field of the VXLAN port in lwvhostctl stats --json.
vx() {
    ctl stats --json | python3 -c '
import json, sys
p = [p for p in json.load(sys.stdin)["ports"] if p["name"] == "vx0"][0]
print(p[sys.argv[1]])' "$1"
}
# transfer FROMNS TONS TOADDR PORT INFILE: one TCP transfer, checked.
transfer() {
    local from=$1 to=$2 addr=$3 port=$4 in=$5 out=$T/out.$4 mss srv
    rm -f "$T/ready.$port" "$out"
    ip netns exec "$to" python3 "$T/tcpx.py" recv "$addr" "$port" "$out" "$T/ready.$port" &
    srv=$! SRV=$!
    waitfor 10 "the TCP server on $addr:$port did not start" test -e "$T/ready.$port"
    mss=$(ip netns exec "$from" timeout 90 python3 "$T/tcpx.py" send "$addr" "$port" "$in") ||
        fail "TCP to $addr:$port failed"
    wait "$srv" || fail "the TCP server on $addr:$port failed"
    SRV=
    cmp -s "$in" "$out" || fail "TCP to $addr:$port: $(stat -c %s "$out") bytes arrived, " \
        "not the $(stat -c %s "$in") sent, or not the same"
    # MSS 1410 for a 1450 MTU (1390 for 1430), less 12 with TCP timestamps.
    [[ $mss == $((MSS - 12)) || $mss == $MSS ]] || fail "TCP to $addr:$port: MSS $mss, not that of MTU $MTU"
}
# avgframe BEFORE_PKTS BEFORE_BYTES FIELD_PKTS FIELD_BYTES WHAT: the frames a
# transfer sent across the port: at least as many as full segments need, and
# on average near the full size.
avgframe() {
    local p=$(( $(vx "$3") - $1 )) b=$(( $(vx "$4") - $2 )) need=$(( (MIB << 20) / MSS ))
    (( p >= need )) || fail "$5: $p frames across vx0, fewer than $need full-size segments need"
    (( b / p >= MTU - 50 )) ||
        fail "$5: $p frames, $b bytes across vx0: average $((b / p)), not full-size segments"
    step "$5: $p frames across vx0, average $((b / p)) bytes"
}

step "TCP $OA -> $OB, $MIB MiB"
p0=$(vx rx_packets) b0=$(vx rx_bytes)     # rx: what the switch sent to the remote
transfer "$NSA" "$NSB" "$OB" 5201 "$T/data"
avgframe "$p0" "$b0" rx_packets rx_bytes "lwvhostd -> OVS"
step "TCP $OB -> $OA, $MIB MiB"
p0=$(vx tx_packets) b0=$(vx tx_bytes)     # tx: what came from the remote
transfer "$NSB" "$NSA" "$OA" 5202 "$T/data"
avgframe "$p0" "$b0" tx_packets tx_bytes "OVS -> lwvhostd"

# --- OVS's outer UDP checksums: over IPv4 off by default, so turned on
# (lwvhostd's kernel checks them); over IPv6 on by default, and turned off:
# OVS's userspace datapath checksums every IPv6 tunnel datagram whatever
# options:csum says (udp_build_header in lib/netdev-native-tnl.c), which
# the capture checks.
if [[ $FAMILY == 4 ]]; then CSUM=true; else CSUM=false; fi
vsctl set interface vx0 options:csum=$CSUM || fail "cannot set options:csum=$CSUM"
# The datapath's flows translated again with the new option.
appctl revalidator/wait >/dev/null || fail "revalidator/wait"
waitfor 10 "OVS's tnl_push actions are not csum=0xffff (a checksum) after options:csum=$CSUM" \
    sh -c "ip netns exec '$NSB' ping -c 1 -W 1 '$OA' >/dev/null;
           ovs-appctl -t '$T/run/ovs-vswitchd.ctl' dpctl/dump-flows | grep 'tnl_push' >'$T/push'
           grep -q 'csum=0xffff' '$T/push' && ! grep -q 'csum=0x0)' '$T/push'"
step "OVS with options:csum=$CSUM: ping, 1 MiB"
sniff_start
pings "options:csum=$CSUM"
sniff_stop "options:csum=$CSUM" good
head -c $((1 << 20)) "$T/data" >"$T/data1"
transfer "$NSB" "$NSA" "$OA" 5203 "$T/data1"

# --- lwvhostd's counters: traffic both ways, nothing dropped
ctl stats --json >"$T/stats.json" || fail "lwvhostctl stats --json"
python3 - "$T/stats.json" "$(( (MIB << 20) / MSS ))" <<'EOF' || fail "lwvhostd's counters (above)"
import json, sys
ports = {p["name"]: p for p in json.load(open(sys.argv[1]))["ports"]}
need = int(sys.argv[2])
vx, tap = ports["vx0"], ports["lwvt0"]
bad = []
for p in (vx, tap):
    for k in ("rx_drops", "tx_drops"):
        if p[k]:
            bad.append("%s %s = %d" % (p["name"], k, p[k]))
for k, v in sorted(vx.items()):
    if (k.startswith("wire_") or k.startswith("encap_")) and not k.startswith("encap_gso") and v:
        bad.append("vx0 %s = %d" % (k, v))
if vx["encap_gso_off"]:
    bad.append("vx0 encap_gso_off: the kernel refused a UDP GSO send")
if vx["rx_packets"] < need or vx["tx_packets"] < need:
    bad.append("vx0 carried %d frames out, %d in: want %d each" % (vx["rx_packets"], vx["tx_packets"], need))
if vx["remotes"] != 1 or vx["remotes_learned"] or vx["vtep_macs"] < 1:
    bad.append("vx0 remotes %d (learned %d), vtep_macs %d" % (vx["remotes"], vx["remotes_learned"], vx["vtep_macs"]))
print("vx0: %d frames to OVS (%d bytes), %d from OVS (%d bytes), %d UDP GSO sends of %d datagrams"
      % (vx["rx_packets"], vx["rx_bytes"], vx["tx_packets"], vx["tx_bytes"],
         vx["encap_gso_sends"], vx["encap_gso_datagrams"]))
for b in bad:
    print("bad:", b)
sys.exit(1 if bad else 0)
EOF

# --- OVS's side: tunnel flows (their packet counts are the datapath's own),
# the tunnel port's OpenFlow counters, nothing dropped by the datapath
appctl dpctl/dump-flows >"$T/flows" || fail "dpctl/dump-flows"
ofctl dump-ports br-int vx0 >"$T/ports" || fail "ovs-ofctl dump-ports br-int vx0"
python3 - "$T/flows" "$T/ports" "$(( (MIB << 20) / MSS ))" "$(printf %x $VNI)" <<'EOF' ||
import re, sys
flows, ports = open(sys.argv[1]).read(), open(sys.argv[2]).read()
need, vni = int(sys.argv[3]), sys.argv[4]
pop = push = 0
bad = []
for f in flows.splitlines():
    m = re.search(r"packets:(\d+)", f)
    if not m:
        continue
    if "tnl_pop(" in f:
        pop += int(m.group(1))
    if "tnl_push(" in f:
        if "vni=0x%s)" % vni not in f:
            bad.append("a tnl_push flow without VNI 0x%s: %s" % (vni, f))
        push += int(m.group(1))
rx = int(re.search(r"rx pkts=(\d+)", ports).group(1))
tx = int(re.search(r"tx pkts=(\d+)", ports).group(1))
print("OVS: tnl_pop flows %d packets, tnl_push flows %d; vx0's OpenFlow counters rx %d, tx %d"
      % (pop, push, rx, tx))
if pop < need or push < need:
    bad.append("tunnel flows carried %d in, %d out: want %d each" % (pop, push, need))
if rx < need or tx < need:
    bad.append("vx0's OpenFlow counters rx %d, tx %d: want %d each" % (rx, tx, need))
for b in bad:
    print("bad:", b)
sys.exit(1 if bad else 0)
EOF
    fail "OVS's tunnel flows and counters (above)"
appctl coverage/show >"$T/coverage" || fail "coverage/show"
# coverage/show lists the counters that were ever hit.
if grep -q "^datapath_drop_" "$T/coverage"; then
    fail "OVS's datapath dropped packets: $(grep '^datapath_drop_' "$T/coverage")"
fi
# For the record, not checked: what OVS's AF_PACKET socket on the veth could
# not take in (its receive buffer full in a burst), and what TCP resent.
step "OVS's AF_PACKET socket on $VB dropped $(inb ss -0 -m 2>/dev/null | grep -F ":$VB " |
    grep -o ',d[0-9]*)' | tr -dc '0-9') datagrams (receive buffer full); TCP segments resent:" \
    "$NSA $(ina nstat -asz TcpRetransSegs | awk '/^TcpRetransSegs/ {print $2}')," \
    "$NSB $(inb nstat -asz TcpRetransSegs | awk '/^TcpRetransSegs/ {print $2}')"

# --- lwvhostd stops cleanly
kill -TERM "$LWV"
wait "$LWV"; rc=$?
LWV=
rm -f "$T/lwvhostd.pid"
[[ $rc == 0 ]] || fail "lwvhostd exited $rc on SIGTERM"
echo "$NAME: PASS"
