#!/usr/bin/env bash
# ovs_vxlan: lwvhostd's VXLAN port against Open vSwitch's userspace datapath
# (datapath_type=netdev: this kernel may have no openvswitch module, and the
# test does not need one).
#
#   namespace A                                  namespace B
#   10.50.1.1/24 lwvt0 (tap, MTU 1450)           10.50.1.2/24 br-int (OVS internal, MTU 1450)
#        |                                            |
#   lwvhostd: --tap lwvt0                        br-int: vx0 type=vxlan key=5001
#             --vxlan vx0,vni=5001                    |    remote_ip=198.18.50.1
#        |                                       br-phy: 198.18.50.2/24 on its internal port,
#   198.18.50.1/24 lwo<pid>a ===== veth ======== lwo<pid>b (AF_PACKET port of br-phy)
#
# ovsdb-server and ovs-vswitchd run in namespace B with their own database,
# run and log directories under a temporary directory (OVS_RUNDIR, OVS_DBDIR,
# OVS_LOGDIR), so a system-wide Open vSwitch (the package's service, if it
# started) is neither used nor touched; they are killed by their pidfiles and
# both namespaces deleted at the end, also on failure.
#
# Checks: OVS learns the route and the neighbour of lwvhostd's VTEP; pings
# both ways across the tunnel, at the full inner size (1450-byte packets,
# DF); 8 MiB over TCP each way, byte-exact, in full-size segments (the
# average frame across the VXLAN port is checked); OVS's outer UDP checksums
# on (options:csum=true), ping and 1 MiB again; lwvhostd's VXLAN counters
# move and show no drop of any kind; OVS's datapath decapsulated and
# encapsulated (tnl_pop, tnl_push with VNI 5001 in dpctl/dump-flows, the
# tunnel port's OpenFlow counters) and dropped nothing in tunnel processing;
# lwvhostd exits 0 on SIGTERM.
#
# Namespace A's end of the veth has its TX checksum offload (and with it TSO
# and UDP segmentation) turned off: OVS reads the veth through an AF_PACKET
# socket, which would see lwvhostd's UDP datagrams with the kernel's partial
# checksum (only the pseudo-header sum) and UDP GSO sends unsegmented, and
# drop them (datapath_drop_tunnel_pop_error). A NIC completes checksums and
# segments on the wire; OVS's own system tests for the userspace datapath
# do the same to their veths (CONFIGURE_VETH_OFFLOADS). docs/multihost.md.
#
# Needs root, ip(8), ethtool, python3 and Open vSwitch (openvswitch-switch;
# scripts/install-deps.sh). Exit 0 pass, 77 skip, else fail.
set -u
cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
NAME=ovs_vxlan
PREFIX=lwvovs-
VNI=5001
UA=198.18.50.1 UB=198.18.50.2           # underlay (the VTEPs)
OA=10.50.1.1 OB=10.50.1.2               # overlay (the endpoints)
MTU=1450
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
# A TCP server left waiting by a failure, then the rest.
cleanup() { [[ -n $SRV ]] && kill "$SRV" 2>/dev/null; teardown "$T" $$; }
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
    # No IPv6 chatter (router solicitations, DAD) on either side.
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
done
ip link add "$VA" netns "$NSA" type veth peer name "$VB" netns "$NSB" || fail "no veth pair"
ip -n "$NSA" addr add "$UA/24" dev "$VA" && ip -n "$NSA" link set "$VA" up &&
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
ip -n "$NSB" addr add "$UB/24" dev br-phy && ip -n "$NSB" link set br-phy up ||
    fail "cannot give br-phy its address"
# br-int: the VXLAN port and the overlay endpoint (the internal port, MTU 1450).
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
waitfor 10 "OVS has no route to $UA/24 through br-phy" \
    sh -c "ovs-appctl -t '$T/run/ovs-vswitchd.ctl' ovs/route/show | grep -q '${UA%.*}.0/24 dev br-phy'"
waitfor 10 "no underlay ping $NSA -> $UB" ina ping -c 1 -W 1 "$UB"
# OVS learns the neighbour by snooping ARP on br-phy; B's kernel asks too.
waitfor 10 "OVS did not learn $UA's MAC (tnl/neigh/show)" \
    sh -c "ip netns exec '$NSB' ping -c 1 -W 1 '$UA' >/dev/null;
           ovs-appctl -t '$T/run/ovs-vswitchd.ctl' tnl/neigh/show | grep -q '^$UA '"

# --- the overlay: pings both ways, then at the full inner size with DF
waitfor 20 "no overlay ping $OA -> $OB across the tunnel" ina ping -c 1 -W 1 "$OB"
step "tunnel up; ping both ways"
ina ping -q -c 5 -i 0.2 -W 3 "$OB" >"$T/ping" || fail "ping $OA -> $OB: $(cat "$T/ping")"
inb ping -q -c 5 -i 0.2 -W 3 "$OA" >"$T/ping" || fail "ping $OB -> $OA: $(cat "$T/ping")"
size=$((MTU - 28))
ina ping -q -c 3 -i 0.2 -W 3 -M do -s $size "$OB" >"$T/ping" ||
    fail "ping -M do -s $size (a $MTU-byte packet) $OA -> $OB: $(cat "$T/ping")"
inb ping -q -c 3 -i 0.2 -W 3 -M do -s $size "$OA" >"$T/ping" ||
    fail "ping -M do -s $size (a $MTU-byte packet) $OB -> $OA: $(cat "$T/ping")"

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
    # MSS 1410 for a 1450 MTU, less 12 with TCP timestamps.
    [[ $mss == 1398 || $mss == 1410 ]] || fail "TCP to $addr:$port: MSS $mss, not that of MTU $MTU"
}
# avgframe BEFORE_PKTS BEFORE_BYTES FIELD_PKTS FIELD_BYTES WHAT: the frames a
# transfer sent across the port: at least as many as full segments need, and
# on average near the full size.
avgframe() {
    local p=$(( $(vx "$3") - $1 )) b=$(( $(vx "$4") - $2 )) need=$(( (MIB << 20) / 1410 ))
    (( p >= need )) || fail "$5: $p frames across vx0, fewer than $need full-size segments need"
    (( b / p >= 1400 )) ||
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

# --- OVS's outer UDP checksums on (off by default): lwvhostd's kernel checks them
vsctl set interface vx0 options:csum=true || fail "cannot set options:csum=true"
waitfor 10 "OVS does not checksum its VXLAN datagrams after options:csum=true" \
    sh -c "ip netns exec '$NSB' ping -c 1 -W 1 '$OA' >/dev/null;
           ovs-appctl -t '$T/run/ovs-vswitchd.ctl' dpctl/dump-flows | grep 'tnl_push' | grep -q 'csum=0xffff'"
step "OVS with options:csum=true: ping, 1 MiB"
inb ping -q -c 3 -i 0.2 -W 3 "$OA" >"$T/ping" || fail "csum=true: ping $OB -> $OA: $(cat "$T/ping")"
head -c $((1 << 20)) "$T/data" >"$T/data1"
transfer "$NSB" "$NSA" "$OA" 5203 "$T/data1"

# --- lwvhostd's counters: traffic both ways, nothing dropped
ctl stats --json >"$T/stats.json" || fail "lwvhostctl stats --json"
python3 - "$T/stats.json" "$(( (MIB << 20) / 1410 ))" <<'EOF' || fail "lwvhostd's counters (above)"
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
python3 - "$T/flows" "$T/ports" "$(( (MIB << 20) / 1410 ))" "$(printf %x $VNI)" <<'EOF' ||
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
