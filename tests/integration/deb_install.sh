#!/bin/bash
# deb_install.sh: the Debian package, end to end.
#
#   make deb -> lintian (no E:) -> dpkg -i -> files, conffile, unit enabled
#   -> systemd-analyze verify -> lwvhostd started as the unit starts it
#   (readiness over $NOTIFY_SOCKET) -> reload -> lwvhostctl port add vm1, vm2
#   -> two QEMU (TCG) guests on them, guest 1 pings guest 2 -> stop
#   (STOPPING=1, sockets gone) -> dpkg --purge -> nothing left.
#
# With systemd as PID 1 the daemon is the service (systemctl). Without it
# (containers) the test starts the unit's ExecStart= itself: with the
# unit's CapabilityBoundingSet= and NoNewPrivileges= (setpriv), its
# RuntimeDirectory= (/run/lwvhost), and a NOTIFY_SOCKET listener standing
# in for systemd.  The other sandboxing settings are not reproduced there.
#
# The package is installed on this machine and always purged on exit, so
# the test skips when lwvhost is installed already or /run/lwvhost exists.
#
# Usage: tests/integration/deb_install.sh
# Env: LWV_DEB=path.deb  test that package instead of building one;
#      BUILD (default build: the guest image is cached in BUILD/guest),
#      LWV_KEEP=1 keeps the temp dir, LWV_VERBOSE=1 prints the logs anyway.
# Exit: 0 pass, 77 skipped (not root, a tool missing), else fail.
# Needs (Debian 12): debhelper build-essential lintian (unless LWV_DEB),
#      python3, util-linux (setpriv), systemd (systemd-analyze), and what
#      qemu_ping.sh needs for the guests.
set -u

cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
NAME=deb_install
unset LWVHOST_CTL   # lwvhostctl must find the daemon at its default socket
. tests/integration/lib-qemu.sh

# ---- requirements ----------------------------------------------------------
[ "$(id -u)" = 0 ] || skip "needs root (dpkg -i, the daemon as the service runs it)"
for t in dpkg dpkg-deb dpkg-query lintian systemd-analyze python3 setpriv; do
    command -v $t >/dev/null 2>&1 || skip "$t missing (scripts/install-deps.sh installs it)"
done
if [ -z "${LWV_DEB:-}" ]; then
    for t in dpkg-buildpackage dh; do
        command -v $t >/dev/null 2>&1 || skip "$t missing (apt-get install debhelper)"
    done
fi
qemu_require
st=$(dpkg-query -W -f='${db:Status-Status}' lwvhost 2>/dev/null)
case "$st" in
""|not-installed) ;;
*) skip "the lwvhost package is on this machine already ($st): this test installs and purges it" ;;
esac
SYSTEMD=
[ -d /run/systemd/system ] && SYSTEMD=1
# The service's RuntimeDirectory= (kept after a stop: RuntimeDirectoryPreserve=yes);
# the test removes it at the end, so it must not be someone else's.
[ -e /run/lwvhost ] && skip "/run/lwvhost exists (an lwvhostd running?): the packaged daemon needs it"

IMG=$BUILD/guest
qemu_guest_image "$IMG"

# ---- state and cleanup -----------------------------------------------------
T=$(mktemp -d /tmp/lwv-deb.XXXXXX) || fail "mktemp"
INSTALLED=
DPID=
NPID=
QPID1=
QPID2=
START=$SECONDS
RUN=/run/lwvhost
CTL_SOCK=$RUN/ctl.sock

show_logs() {
    dump_logs 60 "$T"/build.log "$T"/lintian.txt "$T"/verify.txt "$T"/notify.log \
        "$T"/g1.log "$T"/g2.log "$T"/qemu1.out "$T"/qemu2.out "$T"/lwvhostd.log
    if [ -n "$SYSTEMD" ]; then
        journalctl -u lwvhostd --no-pager -n 60 2>/dev/null
    fi
}

cleanup() {
    kill_wait "$QPID1" 5
    kill_wait "$QPID2" 5
    kill_wait "$DPID" 5
    kill_wait "$NPID" 2
    if [ -n "$INSTALLED" ]; then
        [ -n "$SYSTEMD" ] && systemctl stop lwvhostd 2>/dev/null
        log "purging lwvhost"
        dpkg --purge lwvhost >/dev/null 2>&1 || log "dpkg --purge lwvhost failed"
    fi
    rm -rf "$RUN"   # it did not exist before (checked above)
}
on_exit cleanup

# ---- the package -----------------------------------------------------------
if [ -n "${LWV_DEB:-}" ]; then
    DEB=$LWV_DEB
    [ -f "$DEB" ] || fail "LWV_DEB=$DEB: no such file"
else
    log "building the package (make deb BUILD=$T/pkg)"
    make deb BUILD="$T/pkg" >"$T/build.log" 2>&1 || fail "make deb failed"
    DEB=$(ls "$T"/pkg/deb/lwvhost_*_"$(dpkg --print-architecture)".deb 2>/dev/null | head -n 1)
    [ -n "$DEB" ] || fail "make deb made no lwvhost_*.deb in $T/pkg/deb"
fi
VERSION=$(dpkg-deb -f "$DEB" Version)
log "package $(basename "$DEB") (version $VERSION)"

log "lintian $(basename "$DEB")"
lintian "$DEB" >"$T/lintian.txt" 2>&1
lrc=$?
sed 's/^/  /' "$T/lintian.txt"
grep -q '^E: ' "$T/lintian.txt" && fail "lintian reports errors (E: lines above)"
# Without E: tags lintian exits 0; anything else is lintian failing.
[ $lrc = 0 ] || fail "lintian failed (rc=$lrc)"

log "dpkg -i"
INSTALLED=1
dpkg -i "$DEB" || fail "dpkg -i $DEB failed"

# ---- what it installed -----------------------------------------------------
ok=1
want() { [ -e "$1" ] || { log "missing after dpkg -i: $1"; ok=; }; }
for f in /usr/sbin/lwvhostd /usr/bin/lwvhostctl /usr/bin/lwvhost-bench; do
    want "$f"
    [ -x "$f" ] || { log "$f is not executable"; ok=; }
done
# Images built with dpkg's path-exclude for man pages (Docker's) install
# none: then they must at least be in the package.
MANPAGES="man8/lwvhostd.8.gz man8/lwvhostctl.8.gz man5/lwvhostd.conf.5.gz man1/lwvhost-bench.1.gz"
MAN_EXCLUDED=
grep -qsh '^path-exclude.*/usr/share/man' /etc/dpkg/dpkg.cfg /etc/dpkg/dpkg.cfg.d/* && MAN_EXCLUDED=1
for m in $MANPAGES; do
    if [ -n "$MAN_EXCLUDED" ]; then
        dpkg-deb -c "$DEB" | grep -q "/usr/share/man/$m\$" ||
            { log "man page not in the package: /usr/share/man/$m"; ok=; }
    else
        want "/usr/share/man/$m"
    fi
done
UNIT=$(dpkg -L lwvhost | grep '/systemd/system/lwvhostd\.service$' | head -n 1)
[ -n "$UNIT" ] && [ -f "$UNIT" ] || fail "the package installed no lwvhostd.service"
log "unit: $UNIT"
want /etc/lwvhost/lwvhostd.conf
dpkg-query -W -f='${Conffiles}\n' lwvhost | grep -q '^ */etc/lwvhost/lwvhostd\.conf ' ||
    { log "/etc/lwvhost/lwvhostd.conf is not a conffile"; ok=; }
# Enabled on installation (deb-systemd-helper does that with or without
# systemd running).
[ -L /etc/systemd/system/multi-user.target.wants/lwvhostd.service ] ||
    { log "lwvhostd.service was not enabled on installation"; ok=; }
v=$(/usr/sbin/lwvhostd --version 2>&1)
[ "$v" = "lwvhostd ${VERSION%-*}" ] ||
    { log "lwvhostd --version says '$v', the package is $VERSION"; ok=; }
[ -n "$ok" ] || fail "the package's files are not as they should be (above)"

# ---- the unit ----------------------------------------------------------------
# verify works offline (no running systemd needed).  It checks the
# Documentation= man pages with man(1) unless they cannot be there.
VERIFY_OPTS=()
if [ -n "$MAN_EXCLUDED" ] || ! command -v man >/dev/null 2>&1; then
    VERIFY_OPTS=(--man=no)
    log "NOTE: man pages not installable here (path-exclude, or no man): verify --man=no"
fi
log "systemd-analyze verify${VERIFY_OPTS:+ ${VERIFY_OPTS[*]}} $UNIT"
systemd-analyze verify "${VERIFY_OPTS[@]}" "$UNIT" >"$T/verify.txt" 2>&1
vrc=$?
sed 's/^/  /' "$T/verify.txt"
# Only complaints about the absence of a running systemd are not the
# unit's fault; anything else it says is.
if grep -Evq 'not been booted with systemd|Failed to connect to bus|^$' "$T/verify.txt" ||
   { [ $vrc != 0 ] && ! grep -q . "$T/verify.txt"; }; then
    fail "systemd-analyze verify: rc=$vrc, output above"
fi

# ExecStart= and the settings the hand start reproduces, from the unit.
unit_get() { sed -n "s/^$1=//p" "$UNIT" | tail -n 1; }
EXEC_START=$(unit_get ExecStart)
EXEC_RELOAD=$(unit_get ExecReload)
CAPS=$(unit_get CapabilityBoundingSet)
[ "$(unit_get Type)" = notify ] || fail "the unit is not Type=notify"
[ "$(unit_get RuntimeDirectory)" = lwvhost ] || fail "the unit has no RuntimeDirectory=lwvhost"
case "$EXEC_START" in
*"--ctl $CTL_SOCK"*) ;;
*) fail "ExecStart does not use --ctl $CTL_SOCK (lwvhostctl's default): $EXEC_START" ;;
esac

# What this lwvhostd implements of the readiness protocol.  Once it sends
# READY=1 (its binary names NOTIFY_SOCKET) the checks below are strict.
HAS_NOTIFY=
grep -q NOTIFY_SOCKET /usr/sbin/lwvhostd && HAS_NOTIFY=1
HAS_RELOAD=
grep -q RELOADING=1 /usr/sbin/lwvhostd && HAS_RELOAD=1
HAS_STOPPING=
grep -q STOPPING=1 /usr/sbin/lwvhostd && HAS_STOPPING=1
[ -n "$HAS_NOTIFY" ] ||
    log "NOTE: this lwvhostd does not implement sd_notify (no NOTIFY_SOCKET in it): readiness NOT checked"

# ---- start ---------------------------------------------------------------------
# The notifications, one line per datagram, its lines joined by '|'.
notified() { grep -Eq "(^|\|)$1(\||\$)" "$T/notify.log" 2>/dev/null; }
notify_count() { grep -Ec "(^|\|)$1(\||\$)" "$T/notify.log" 2>/dev/null; }
cap_bit() {
    case $1 in
    CAP_CHOWN) echo 0 ;; CAP_DAC_OVERRIDE) echo 1 ;; CAP_NET_ADMIN) echo 12 ;;
    *) return 1 ;;
    esac
}

if [ -n "$SYSTEMD" ]; then
    # The postinst started it (dh_installsystemd); Type=notify: active
    # means systemd had READY=1.
    systemctl start lwvhostd || fail "systemctl start lwvhostd failed"
    systemctl is-active --quiet lwvhostd || fail "lwvhostd.service is not active"
    DPID=
    MAINPID=$(systemctl show -p MainPID --value lwvhostd)
    log "lwvhostd.service active (main pid $MAINPID)"
else
    log "no systemd as PID 1: starting ExecStart= as the unit would"
    mkdir -m 0755 "$RUN" || fail "cannot create $RUN"
    python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a", buffering=1) as out:
    while True:
        msg = s.recv(4096).decode("utf-8", "replace")
        out.write("|".join(l for l in msg.split("\n") if l) + "\n")
' "$T/notify.sock" "$T/notify.log" &
    NPID=$!
    wait_for 5 "the notify listener" test -S "$T/notify.sock"
    bset=-all
    mask=0
    for c in $CAPS; do
        b=$(cap_bit "$c") || fail "cap_bit does not know $c (add it)"
        bset="$bset,+$(echo "${c#CAP_}" | tr A-Z a-z)"
        mask=$((mask | (1 << b)))
    done
    NNP=()
    [ "$(unit_get NoNewPrivileges)" = yes ] && NNP=(--no-new-privs)
    log "setpriv ${NNP[*]} --inh-caps=-all --bounding-set=$bset -- $EXEC_START"
    read -ra CMD <<<"$EXEC_START"
    NOTIFY_SOCKET=$T/notify.sock setpriv "${NNP[@]}" --inh-caps=-all --bounding-set="$bset" \
        -- "${CMD[@]}" </dev/null >"$T/lwvhostd.log" 2>&1 &
    DPID=$!
    MAINPID=$DPID
    if [ -n "$HAS_NOTIFY" ]; then
        wait_for 10 "READY=1 from lwvhostd" notified READY=1
        # Ready means listening: the control socket must be there now.
        test -S "$CTL_SOCK" || fail "READY=1 came before $CTL_SOCK existed"
        log "READY=1 received: $(grep -E '(^|\|)READY=1' "$T/notify.log" | head -n 1)"
    else
        wait_for 10 "$CTL_SOCK" test -S "$CTL_SOCK"
    fi
    eff=$(sed -n 's/^CapEff:[[:space:]]*//p' /proc/$DPID/status)
    bnd=$(sed -n 's/^CapBnd:[[:space:]]*//p' /proc/$DPID/status)
    log "lwvhostd pid $DPID: CapEff $eff, CapBnd $bnd (the unit's: $(printf '%016x' $mask))"
    [ $((16#$eff)) = $mask ] && [ $((16#$bnd)) = $mask ] ||
        fail "lwvhostd does not run with the unit's capabilities"
fi

log "lwvhostctl version (default socket)"
timeout 5 lwvhostctl version || fail "lwvhostctl version failed"

# ---- reload ------------------------------------------------------------------
if [ -n "$SYSTEMD" ]; then
    systemctl reload lwvhostd || fail "systemctl reload lwvhostd failed"
    systemctl is-active --quiet lwvhostd || fail "lwvhostd.service not active after reload"
    log "reloaded"
elif [ -n "$HAS_RELOAD" ]; then
    before=$(notify_count READY=1)
    reload_cmd=${EXEC_RELOAD//\$MAINPID/$MAINPID}
    log "reload: $reload_cmd"
    $reload_cmd || fail "ExecReload failed"
    wait_for 10 "READY=1 after the reload" test "$(notify_count READY=1)" -gt "$before"
    notified RELOADING=1 || fail "no RELOADING=1 before the reload's READY=1"
    alive "$DPID" || fail "lwvhostd died on SIGHUP"
    log "reloaded: RELOADING=1, READY=1"
else
    log "NOTE: this lwvhostd has no reload notifications (no RELOADING=1 in it): reload NOT checked"
fi

# ---- two ports, two guests -------------------------------------------------------
G1OPT=
getent group kvm >/dev/null 2>&1 && G1OPT=,group=kvm,mode=0660
log "lwvhostctl port add vm1, vm2"
timeout 5 lwvhostctl port add "vm1,path=$RUN/vm1.sock,mac=52:54:00:00:00:02$G1OPT" ||
    fail "lwvhostctl port add vm1 failed"
timeout 5 lwvhostctl port add "vm2,path=$RUN/vm2.sock,mac=52:54:00:00:00:03" ||
    fail "lwvhostctl port add vm2 failed"
wait_for 5 "the port sockets" test -S "$RUN/vm1.sock" -a -S "$RUN/vm2.sock"
ls -l "$RUN"
if [ -n "$G1OPT" ]; then
    # CAP_CHOWN at work.
    [ "$(stat -c '%G %a' "$RUN/vm1.sock")" = "kvm 660" ] ||
        fail "vm1.sock is not group kvm, mode 0660: $(stat -c '%G %a' "$RUN/vm1.sock")"
fi

log "booting guest 2 (10.200.0.3, serving)"
start_guest 2 52:54:00:00:00:03 10.200.0.3/24 "lwv.run=serve:100 lwv.timeout=110" \
    -chardev "socket,id=c0,path=$RUN/vm2.sock" -netdev vhost-user,id=n0,chardev=c0
QPID2=$!
log "booting guest 1 (10.200.0.2, pinging 10.200.0.3)"
start_guest 1 52:54:00:00:00:02 10.200.0.2/24 \
    "lwv.run=ping:10.200.0.3 lwv.count=5 lwv.wait=40 lwv.timeout=90" \
    -chardev "socket,id=c0,path=$RUN/vm1.sock" -netdev vhost-user,id=n0,chardev=c0
QPID1=$!

daemon_alive() {
    if [ -n "$SYSTEMD" ]; then systemctl is-active --quiet lwvhostd; else alive "$DPID"; fi
}
n=0
while alive "$QPID1"; do
    n=$((n + 1))
    [ $n -ge 1000 ] && fail "guest 1 still running after 100 s"
    daemon_alive || fail "lwvhostd exited while guest 1 was running"
    sleep 0.1
done
wait "$QPID1"
q1rc=$?
QPID1=
log "guest 1 finished (qemu rc=$q1rc):"
results "$T/g1.log" | sed 's/^/  g1: /'
results "$T/g2.log" | sed 's/^/  g2: /'
timeout 5 lwvhostctl ports

ok=1
[ $q1rc = 0 ] || { log "guest 1 qemu exited with $q1rc"; ok=; }
has_result "$T/g1.log" "boot 10.200.0.2 ok" || { log "guest 1 did not boot/configure eth0"; ok=; }
has_result "$T/g1.log" "ping 10.200.0.3 ok" || { log "guest 1 -> guest 2 ping failed"; ok=; }
has_result "$T/g1.log" "done - ok" || { log "guest 1 did not report done - ok"; ok=; }
has_result "$T/g2.log" "serve 10.200.0.3 ready" || { log "guest 2 never got ready"; ok=; }
kill_wait "$QPID2" 5
QPID2=
[ -n "$ok" ] || fail "the guests could not talk through the packaged lwvhostd (above)"
log "guest 1 pinged guest 2 through the packaged lwvhostd"

# ---- stop ------------------------------------------------------------------------
if [ -n "$SYSTEMD" ]; then
    systemctl stop lwvhostd || fail "systemctl stop lwvhostd failed"
    r=$(systemctl show -p Result --value lwvhostd)
    [ "$r" = success ] || fail "lwvhostd.service stopped with result $r"
else
    log "stopping lwvhostd (SIGTERM, as systemctl stop)"
    kill "$DPID"
    n=0
    while alive "$DPID" && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
    alive "$DPID" && fail "lwvhostd still running 10 s after SIGTERM"
    wait "$DPID"
    drc=$?
    DPID=
    [ $drc = 0 ] || fail "lwvhostd exited with $drc on SIGTERM"
    if [ -n "$HAS_STOPPING" ]; then
        notified STOPPING=1 || fail "no STOPPING=1 on SIGTERM"
        log "STOPPING=1 received"
    else
        log "NOTE: this lwvhostd does not send STOPPING=1: not checked"
    fi
fi
# The directory stays (RuntimeDirectoryPreserve=yes), lwvhostd's sockets go.
for s in "$RUN/vm1.sock" "$RUN/vm2.sock" "$CTL_SOCK"; do
    [ -e "$s" ] && fail "$s left behind by lwvhostd"
done

# ---- purge -------------------------------------------------------------------------
log "dpkg --purge lwvhost"
dpkg --purge lwvhost || fail "dpkg --purge lwvhost failed"
INSTALLED=
left=
for f in /etc/lwvhost /usr/sbin/lwvhostd /usr/bin/lwvhostctl /usr/bin/lwvhost-bench "$UNIT" \
         /etc/systemd/system/multi-user.target.wants/lwvhostd.service \
         /usr/share/man/man8/lwvhostd.8.gz /usr/share/doc/lwvhost; do
    { [ -e "$f" ] || [ -L "$f" ]; } && left="$left $f"
done
[ -z "$left" ] || fail "left after purge:$left"
st=$(dpkg-query -W -f='${db:Status-Status}' lwvhost 2>/dev/null)
case "$st" in
""|not-installed) ;;
*) fail "dpkg still knows lwvhost after purge ($st)" ;;
esac
log "purged: nothing left"
exit 0
