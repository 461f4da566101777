#!/bin/sh
# mkinitramfs.sh [--add PROGRAM]... OUTDIR
#
# Builds a tiny diskless test guest for the QEMU integration tests:
#   OUTDIR/vmlinuz            copy of the Debian kernel (linux-image-amd64)
#   OUTDIR/initramfs.cpio.gz  busybox (static) + virtio-net modules + /init
#
# --add PROGRAM (repeatable) also puts PROGRAM (a path, or a name looked up
# in PATH) into the image as /bin/BASENAME, with the shared libraries `ldd`
# lists for it at their own paths (static programs and scripts are copied
# alone).  Use a separate OUTDIR for each set of programs: the cache below
# also compares the set and the programs' times.
#
# Cached: nothing is done when both outputs exist and are newer than this
# script and than the kernel image.  Set LWV_FORCE=1 to rebuild anyway and
# LWV_KVER=6.1.0-xx-amd64 to pick a kernel (default: newest /boot/vmlinuz-*
# that has a /lib/modules/VERSION/modules.dep).
#
# Exit status: 0 ok, 77 a required tool/file is missing, other = error.
# Needs (Debian 12): busybox-static linux-image-amd64 cpio gzip xz-utils
# (only for .ko.xz modules) zstd (only for .ko.zst modules).
#
# The guest's /init takes its parameters from the kernel command line:
#   lwv.ip=ADDR/PREFIX    address for eth0 (eth0 and lo are brought up)
#   lwv.if=NAME           interface to configure (default eth0)
#   lwv.run=TEST[:ARGS]   a test to run; may be given several times, run in
#                         order.  TESTs:
#       ping:H1[,H2...]   wait (up to lwv.wait s) until Hn answers, then
#                         `ping -c lwv.count` it; ok only if all arrive
#       serve:SECONDS     print "ready", stay up SECONDS (answering pings),
#                         then continue (then power off)
#       script            run the script given by lwv.script
#       shell             interactive shell on the console (debugging)
#   lwv.script=BASE64     sh script, base64 (optionally of gzip data); ok if
#                         it exits 0.  Implies lwv.run=script when no
#                         lwv.run is given.  Scripts may call
#                         `lwv-result NAME TARGET ok|fail [details...]`.
#   lwv.count=N           pings per host (default 5)
#   lwv.wait=N            seconds to wait for a host to first answer (30)
#   lwv.timeout=N         watchdog: power off after N s whatever (300)
#   lwv.debug=1           print more diagnostics (ip addr/link, dmesg)
#   lwv.loglevel=N        console log level (default 1: only emergencies, so
#                         kernel messages do not split our lines; 4 shows
#                         errors too, e.g. virtio_ring's "not a head")
# Output on the serial console, one line each, all starting "LWV-RESULT ":
#   LWV-RESULT boot <ip> ok|fail [reason]
#   LWV-RESULT ping <host> ok|fail tx=N rx=N
#   LWV-RESULT serve <ip> ready|done
#   LWV-RESULT script - ok|fail rc=N
#   LWV-RESULT timeout - fail after=N
#   LWV-RESULT done - ok|fail          (always the last line)
# after which the guest runs `poweroff -f` (QEMU exits).
set -eu

die() { echo "mkinitramfs: $*" >&2; exit 1; }
skip() { echo "mkinitramfs: SKIP: $*" >&2; exit 77; }

usage() { echo "usage: $0 [--add PROGRAM]... OUTDIR" >&2; exit 2; }
EXTRA=
while [ $# -gt 1 ]; do
    case "$1" in
    --add)
        [ $# -ge 3 ] || usage
        case "$2" in
        */*) p=$2 ;;
        *)   p=$(command -v "$2" 2>/dev/null) || skip "$2 not found (to add to the image)" ;;
        esac
        [ -f "$p" ] || skip "$p not found (to add to the image)"
        case "$p" in *[[:space:]]*) die "no spaces in program paths: $p" ;; esac
        EXTRA="$EXTRA $p"
        shift 2 ;;
    *) usage ;;
    esac
done
[ $# -eq 1 ] || usage
case "$1" in -*) usage ;; esac
OUT=$1
EXTRA=${EXTRA# }
SELF=$0
[ -f "$SELF" ] || die "cannot find myself ($SELF)"

# Modules, in load order (dependencies first).
MODS="virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci failover net_failover virtio_net"

# ---- pick the kernel -------------------------------------------------------
if [ -n "${LWV_KVER:-}" ]; then
    KVER=$LWV_KVER
else
    KVER=
    for k in $(ls /boot/vmlinuz-* 2>/dev/null | sed 's|^/boot/vmlinuz-||' | sort -V); do
        [ -f "/lib/modules/$k/modules.dep" ] && KVER=$k
    done
fi
[ -n "$KVER" ] || skip "no kernel: need /boot/vmlinuz-VER and /lib/modules/VER (apt-get install linux-image-amd64)"
KERNEL=/boot/vmlinuz-$KVER
MODDIR=/lib/modules/$KVER
[ -r "$KERNEL" ] || skip "$KERNEL not readable"
[ -f "$MODDIR/modules.dep" ] || skip "$MODDIR/modules.dep missing"

# ---- cache check -----------------------------------------------------------
uptodate() {
    [ -s "$OUT/vmlinuz" ] && [ -s "$OUT/initramfs.cpio.gz" ] &&
    [ "$OUT/vmlinuz" -nt "$SELF" ] && [ "$OUT/initramfs.cpio.gz" -nt "$SELF" ] &&
    [ "$OUT/vmlinuz" -nt "$KERNEL" ] && [ "$OUT/initramfs.cpio.gz" -nt "$KERNEL" ] &&
    [ "$(cat "$OUT/kver" 2>/dev/null)" = "$KVER" ] &&
    [ "$(cat "$OUT/extras" 2>/dev/null)" = "$EXTRA" ] || return 1
    for x in $EXTRA; do
        [ "$OUT/initramfs.cpio.gz" -nt "$x" ] || return 1
    done
}
if [ -z "${LWV_FORCE:-}" ] && uptodate; then
    exit 0
fi

# ---- tools -----------------------------------------------------------------
BB=
for b in /bin/busybox /usr/bin/busybox; do
    [ -x "$b" ] && { BB=$b; break; }
done
[ -n "$BB" ] || skip "busybox missing (apt-get install busybox-static)"
command -v cpio >/dev/null 2>&1 || skip "cpio missing (apt-get install cpio)"
command -v gzip >/dev/null 2>&1 || skip "gzip missing"

mkdir -p "$OUT"
# Serialise concurrent builds into the same OUTDIR.
if command -v flock >/dev/null 2>&1 && [ -z "${LWV_MKINITRAMFS_LOCKED:-}" ]; then
    export LWV_MKINITRAMFS_LOCKED=1
    ADDS=
    for x in $EXTRA; do ADDS="$ADDS --add $x"; done
    # shellcheck disable=SC2086  # no spaces in $EXTRA (checked above)
    exec flock "$OUT/.lock" sh "$SELF" $ADDS "$OUT"
fi
if [ -z "${LWV_FORCE:-}" ] && uptodate; then
    exit 0     # somebody else built it while we waited for the lock
fi

STAGE=$(mktemp -d "$OUT/.stage.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT INT TERM
R=$STAGE/root
mkdir -p "$R/bin" "$R/dev" "$R/proc" "$R/sys" "$R/tmp" "$R/etc" "$R/lib/lwv" "$R/root"

# copy_libs PROGRAM: the shared libraries PROGRAM needs, at their paths.
copy_libs() {
    if command -v ldd >/dev/null 2>&1 && ldd "$1" >/dev/null 2>&1; then
        for lib in $(ldd "$1" | grep -o '/[^ ]*'); do
            mkdir -p "$R$(dirname "$lib")"
            cp -L "$lib" "$R$lib"
        done
    fi
}

# ---- busybox ---------------------------------------------------------------
cp "$BB" "$R/bin/busybox"
# A dynamic busybox (package "busybox" instead of "busybox-static") also
# works if its libraries come along.
copy_libs "$BB"
for app in $("$BB" --list); do
    [ "$app" = busybox ] || ln -sf busybox "$R/bin/$app"
done
ln -s bin "$R/sbin"
mkdir -p "$R/usr"
ln -s ../bin "$R/usr/bin"
ln -s ../bin "$R/usr/sbin"

# ---- extra programs (--add) --------------------------------------------------
for x in $EXTRA; do
    [ -x "$x" ] || die "$x is not executable"
    rm -f "$R/bin/$(basename "$x")"      # may be a busybox applet link
    cp -L "$x" "$R/bin/$(basename "$x")"
    copy_libs "$x"
done

# ---- modules (stored uncompressed, flat, under /lib/lwv) -----------------------
for m in $MODS; do
    # modules.dep lists paths relative to MODDIR; names use _ or - alike.
    pat=$(echo "$m" | sed 's/[_-]/[_-]/g')
    rel=$(grep -E "^(.*/)?$pat\.ko(\.(xz|zst|gz))?:" "$MODDIR/modules.dep" | head -n1 | cut -d: -f1)
    if [ -z "$rel" ]; then
        # Not a module: is it built into the kernel?
        if grep -Eq "/$pat\.ko\$" "$MODDIR/modules.builtin" 2>/dev/null; then
            continue
        fi
        die "module $m not found in $MODDIR"
    fi
    src=$MODDIR/$rel
    dst=$R/lib/lwv/$m.ko
    case "$src" in
    *.ko)     cp "$src" "$dst" ;;
    *.ko.xz)  if command -v xz >/dev/null 2>&1; then xz -dc "$src" >"$dst"
              else "$BB" xzcat "$src" >"$dst"; fi ;;
    *.ko.zst) command -v zstd >/dev/null 2>&1 || skip "zstd missing (apt-get install zstd) for $src"
              zstd -qdc "$src" >"$dst" ;;
    *.ko.gz)  gzip -dc "$src" >"$dst" ;;
    *)        die "unknown module format: $src" ;;
    esac
    echo "$m" >>"$R/lib/lwv/order"
done
[ -f "$R/lib/lwv/order" ] || : >"$R/lib/lwv/order"

# ---- helper for scripts ----------------------------------------------------
cat >"$R/bin/lwv-result" <<'EOF'
#!/bin/sh
# lwv-result NAME TARGET ok|fail [details...]: one machine-readable line.
[ $# -ge 3 ] || { echo "usage: lwv-result NAME TARGET ok|fail [details]" >&2; exit 2; }
echo "LWV-RESULT $*" >/dev/console
EOF
chmod 755 "$R/bin/lwv-result"

# ---- /init -----------------------------------------------------------------
cat >"$R/init" <<'EOF'
#!/bin/sh
# lwvhost test guest init (generated by tests/guest/mkinitramfs.sh)
export PATH=/bin
export HOME=/root
mount -t devtmpfs devtmpfs /dev 2>/dev/null
exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mkdir -p /dev/pts /dev/shm
mount -t tmpfs tmpfs /tmp

say() { echo "lwv: $*"; }
result() { echo "LWV-RESULT $*"; }

finish() {
    # $1 = ok|fail
    result "done - $1"
    sync
    sleep 1          # let the UART drain before the machine goes away
    poweroff -f
    sleep 5
    echo o >/proc/sysrq-trigger
}

# ---- parameters ----
IP=
IFACE=eth0
COUNT=5
WAIT=30
TIMEOUT=300
DEBUG=
LOGLEVEL=
SCRIPT=
RUNS=
for w in $(cat /proc/cmdline); do
    case "$w" in
    lwv.ip=*)      IP=${w#lwv.ip=} ;;
    lwv.if=*)      IFACE=${w#lwv.if=} ;;
    lwv.count=*)   COUNT=${w#lwv.count=} ;;
    lwv.wait=*)    WAIT=${w#lwv.wait=} ;;
    lwv.timeout=*) TIMEOUT=${w#lwv.timeout=} ;;
    lwv.debug=*)   DEBUG=${w#lwv.debug=} ;;
    lwv.loglevel=*) LOGLEVEL=${w#lwv.loglevel=} ;;
    lwv.script=*)  SCRIPT=${w#lwv.script=} ;;
    lwv.run=*)     RUNS="$RUNS ${w#lwv.run=}" ;;
    esac
done
[ -z "$RUNS" ] && [ -n "$SCRIPT" ] && RUNS=script
IPA=${IP%/*}
IPA=${IPA:--}
export LWV_IP="$IP" LWV_IF="$IFACE" LWV_COUNT="$COUNT" LWV_WAIT="$WAIT"

# ---- watchdog ----
(
    sleep "$TIMEOUT"
    result "timeout - fail after=$TIMEOUT"
    finish fail
) &

# Keep kernel messages from splitting our lines.
echo "${LOGLEVEL:-1}" >/proc/sys/kernel/printk 2>/dev/null

diag() {
    ip addr show 2>&1
    for c in rx_packets rx_bytes rx_dropped rx_errors tx_packets tx_bytes tx_dropped tx_errors; do
        printf '%s=%s ' "$c" "$(cat /sys/class/net/$IFACE/statistics/$c 2>/dev/null)"
    done
    echo
    ip neigh show 2>&1
    [ -n "$DEBUG" ] && dmesg | tail -n 40
}

# ---- network ----
boot_fail() {
    result "boot $IPA fail $*"
    diag
    dmesg | tail -n 30
    finish fail
}
for m in $(cat /lib/lwv/order); do
    insmod "/lib/lwv/$m.ko" || boot_fail "insmod-$m"
done
ip link set lo up
n=0
while [ ! -e "/sys/class/net/$IFACE" ]; do
    n=$((n + 1))
    [ $n -gt 100 ] && boot_fail "no-$IFACE"
    sleep 0.1
done
if [ -n "$IP" ]; then
    ip addr add "$IP" dev "$IFACE" || boot_fail "ip-addr"
fi
ip link set "$IFACE" up || boot_fail "link-up"
result "boot $IPA ok mac=$(cat /sys/class/net/$IFACE/address)"
[ -n "$DEBUG" ] && diag

# ---- tests ----
ALL=ok

t_ping() {
    # $1 = host
    h=$1
    t0=$(cut -d. -f1 /proc/uptime)
    until ping -c 1 -W 1 "$h" >/dev/null 2>&1; do
        now=$(cut -d. -f1 /proc/uptime)
        if [ $((now - t0)) -ge "$WAIT" ]; then
            result "ping $h fail tx=0 rx=0 unreachable-after=${WAIT}s"
            return 1
        fi
    done
    out=$(ping -c "$COUNT" -W 2 -w $((COUNT * 2 + 5)) "$h" 2>&1)
    echo "$out"
    tx=$(echo "$out" | sed -n 's/^\([0-9]*\) packets transmitted.*/\1/p')
    rx=$(echo "$out" | sed -n 's/.* \([0-9]*\) packets received.*/\1/p')
    if [ "${tx:-0}" = "$COUNT" ] && [ "${rx:-0}" = "$COUNT" ]; then
        result "ping $h ok tx=$tx rx=$rx"
        return 0
    fi
    result "ping $h fail tx=${tx:-0} rx=${rx:-0}"
    return 1
}

t_script() {
    if [ -z "$SCRIPT" ]; then
        result "script - fail no-lwv.script"
        return 1
    fi
    echo "$SCRIPT" | base64 -d >/tmp/lwv-script.raw 2>/dev/null || {
        result "script - fail bad-base64"; return 1; }
    if gunzip -c </tmp/lwv-script.raw >/tmp/lwv-script.sh 2>/dev/null; then :; else
        cp /tmp/lwv-script.raw /tmp/lwv-script.sh
    fi
    sh /tmp/lwv-script.sh
    rc=$?
    if [ $rc -eq 0 ]; then result "script - ok rc=0"; else result "script - fail rc=$rc"; fi
    return $rc
}

for r in $RUNS; do
    name=${r%%:*}
    args=
    case "$r" in *:*) args=${r#*:} ;; esac
    case "$name" in
    ping)
        [ -n "$args" ] || { result "ping - fail no-host"; ALL=fail; continue; }
        for h in $(echo "$args" | tr ',' ' '); do
            t_ping "$h" || ALL=fail
        done
        ;;
    serve|sleep)
        result "serve $IPA ready"
        sleep "${args:-60}"
        result "serve $IPA done"
        ;;
    script)
        t_script || ALL=fail
        ;;
    shell)
        setsid -c sh -l || true
        ;;
    *)
        result "$name - fail unknown-test"
        ALL=fail
        ;;
    esac
done
[ "$ALL" = ok ] || diag
finish "$ALL"
EOF
chmod 755 "$R/init"

# Device nodes for the kernel's initial console (best effort; /init
# remounts /dev as devtmpfs and reopens the console anyway).
mknod -m 600 "$R/dev/console" c 5 1 2>/dev/null || true
mknod -m 666 "$R/dev/null" c 1 3 2>/dev/null || true

# ---- pack ------------------------------------------------------------------
(cd "$R" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) | gzip -9 >"$STAGE/initramfs.cpio.gz"
cp "$KERNEL" "$STAGE/vmlinuz"
echo "$KVER" >"$STAGE/kver"
echo "$EXTRA" >"$STAGE/extras"
mv -f "$STAGE/kver" "$OUT/kver"
mv -f "$STAGE/extras" "$OUT/extras"
mv -f "$STAGE/vmlinuz" "$OUT/vmlinuz"
mv -f "$STAGE/initramfs.cpio.gz" "$OUT/initramfs.cpio.gz"
echo "mkinitramfs: built $OUT/vmlinuz and $OUT/initramfs.cpio.gz (kernel $KVER)" >&2
