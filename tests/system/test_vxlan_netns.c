/*
 * test_vxlan_netns - the VXLAN port (--vxlan) against real VTEPs.
 *
 * The test moves into a network namespace of its own first (unshare), so
 * nothing here touches the host's interfaces or addresses.  A veth pair
 * joins it (192.0.2.1, where lwvhostd runs with VXLAN port vx0, VNI 42)
 * and a second, named namespace (192.0.2.2) holding a Linux vxlan device (ip link add ... type vxlan id
 * 42 remote 192.0.2.1 dstport 4789) with address 10.42.0.2.  A vuf
 * frontend on port a plays a guest at 10.42.0.1 that answers ARP and ICMP
 * echo itself:
 *  - the guest resolves and pings the namespace's kernel (frames up to the
 *    port's 1450-byte MTU), and the namespace pings the guest (ping(8));
 *  - a UDP frame with a partial checksum and a TCP TSO frame from the guest
 *    arrive in the namespace (captured on its vxlan device) with correct
 *    checksums, the TSO frame in segments; a frame over the MTU is dropped
 *    and counted;
 *  - datagrams sent at the port from the namespace with a wrong VNI, no I
 *    flag, too short, or from an address that is not a remote (192.0.2.3)
 *    never reach the guest and are counted by reason;
 *  - an idle VXLAN port costs no CPU;
 *  - a second lwvhostd in the namespace (VNI 43, UDP port 4790) with a
 *    guest b: a and b exchange frames through the two daemons' VXLAN ports
 *    (the runs the other daemon sends with UDP GSO come up coalesced by
 *    UDP GRO across the veth: counted, none lost);
 *  - three more lwvhostd, each in a namespace of its own (203.0.113.1-3 on
 *    veths to a bridge in the test's namespace), each with a guest (a3, b3,
 *    c3) and a VXLAN port (VNI 77) listing the other two (full mesh):
 *    a broadcast and an unknown unicast from a3 reach b3 and c3 once each,
 *    as one datagram per remote, and no daemon sends a datagram for a frame
 *    that came from its VXLAN port (split horizon); once a3's daemon has
 *    heard from b3 and c3, a3 -> b3 reaches b3 only as one datagram (and
 *    a3 -> c3 likewise), vtep_macs counts them, traffic runs across the
 *    mesh, and all three daemons exit 0 on SIGTERM;
 *  - the port is removed and added again at run time, bad specs refused;
 *  - IPv6 underlay: 2001:db8::1 and ::2 (nodad) on the veth pair, the
 *    namespace's vxlan device replaced by one over IPv6 (vx6, VNI 42,
 *    udp6zerocsumtx: it sends zero UDP checksums, and takes only correct
 *    ones) and vx0 by an IPv6 port added at run time (lwvhostctl vxlan
 *    add): its JSON and stats show the IPv6 addresses and MTU 1430; ARP and
 *    pings both ways with frames up to 1444 bytes; on the wire, every
 *    datagram the port sent has a correct UDP checksum and the device's
 *    zero ones were taken; then two lwvhostd over IPv6 (vy6), frames both
 *    ways.
 *
 * Needs root, ip(8), network namespaces, veth and the vxlan module: skips
 * (77) without (no bridge for the three-daemon part is a failure).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "netns.h"
#include "pkt.h"
#include "systest.h"

#define NS_PREFIX "lwvvx-"
static char ns[32], veth_root[IFNAMSIZ], veth_ns[IFNAMSIZ];
static pid_t daemon2 = -1;
static const uint8_t IP_GUEST[4] = { 10, 42, 0, 1 }, IP_NS[4] = { 10, 42, 0, 2 };

static void mesh_cleanup(void);

static void net_cleanup(void)
{
    mesh_cleanup();
    if (daemon2 > 0) {
        kill(daemon2, SIGTERM);
        waitpid(daemon2, NULL, 0);
        daemon2 = -1;
    }
    netns_veth_remove(ns, veth_root);
}

/* The namespace, the veth pair, the kernel's VXLAN device; skips when any
 * cannot be had. */
static void net_setup(void)
{
    if (geteuid() != 0)
        test_skip("needs root (network namespaces, veth, vxlan devices)");
    if (sh("ip -V") != 0)
        test_skip("no ip(8) (iproute2)");
    /* Our own namespace, for the test and the daemons it starts: the
     * addresses below must not meet the host's. */
    if (unshare(CLONE_NEWNET) < 0)
        test_skip("cannot make a network namespace (unshare)");
    if (sh("ip link set lo up") != 0)
        test_skip("no loopback in the new namespace");
    const char *why = netns_for_test(NS_PREFIX, "lwx", ns, veth_root, veth_ns, net_cleanup);
    if (why)
        test_skip(why);
    if (sh("ip addr add 192.0.2.1/24 dev %s", veth_root) ||
        sh("ip -n %s addr add 192.0.2.2/24 dev %s", ns, veth_ns) ||
        sh("ip -n %s addr add 192.0.2.3/24 dev %s", ns, veth_ns))
        test_skip("cannot configure the veth pair");
    if (sh("ip -n %s link add vx0 type vxlan id 42 remote 192.0.2.1 local 192.0.2.2 dstport 4789 "
           "dev %s", ns, veth_ns) != 0)
        test_skip("no vxlan device support (the vxlan module)");
    if (sh("ip -n %s addr add 10.42.0.2/24 dev vx0", ns) || sh("ip -n %s link set vx0 up", ns))
        test_skip("cannot configure the vxlan device");
    /* The port sends runs of datagrams as one UDP GSO send; the kernel
     * device would coalesce their inner TCP segments again (GRO) before
     * the capture, which must see the segments as they were sent. */
    if (sh("ethtool --version") != 0)
        test_skip("no ethtool (apt-get install ethtool)");
    if (sh("ip netns exec %s ethtool -K vx0 gro off", ns) != 0)
        test_skip("cannot turn GRO off on the vxlan device");
}

/* A UDP socket in the namespace bound to 192.0.2.last:0. */
static int ns_udp(uint8_t last)
{
    int s = netns_socket(ns, AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0xc0000200u | last) };
    if (s >= 0 && bind(s, (struct sockaddr *)&sa, sizeof sa) < 0) {
        close(s);
        s = -1;
    }
    return s;
}

/* ---- the guest --------------------------------------------------------------- */

/* What the guest answers itself: an ARP request for its address, an echo
 * request to it.  Returns true when f was one (and answered). */
static bool guest_answers(struct tport *a, const uint8_t *f, int len)
{
    uint8_t r[1600];
    if (len >= 42 && get16(f + 12) == ETH_P_ARP && get16(f + 20) == 1 &&
        memcmp(f + 38, IP_GUEST, 4) == 0) {
        vuf_send(a->v, 0, r, arp_frame(r, 2, f + 6, a->mac, IP_GUEST, f + 22, f + 28));
        vuf_tx_reclaim(a->v, 0);
        return true;
    }
    if (len >= 42 && len <= (int)sizeof r && get16(f + 12) == ETH_P_IP && f[23] == 1 &&
        f[34] == 8 && memcmp(f + 30, IP_GUEST, 4) == 0) {
        memcpy(r, f, (size_t)len);
        memcpy(r, f + 6, 6);
        memcpy(r + 6, a->mac, 6);
        memcpy(r + 26, IP_GUEST, 4);
        memcpy(r + 30, f + 26, 4);
        put16(r + 24, 0);
        put16(r + 24, csum(r + 14, 20));
        r[34] = 0;
        put16(r + 36, 0);
        size_t ilen = get16(f + 16) - 20u;
        put16(r + 36, csum(r + 34, ilen));
        vuf_send(a->v, 0, r, (size_t)len);
        vuf_tx_reclaim(a->v, 0);
        return true;
    }
    return false;
}

/* A tport_wait() predicate: match (NULL: none) with arg, the guest
 * answering the frames match does not accept when it can (guest_answers). */
struct answering {
    struct tport *a;
    bool (*match)(const uint8_t *, int, void *);
    void *arg;
    unsigned answered;
};
static bool match_or_answer(const uint8_t *f, int len, void *arg)
{
    struct answering *x = arg;
    if (x->match && x->match(f, len, x->arg))
        return true;
    x->answered += guest_answers(x->a, f, len);
    return false;
}

/* Receives for up to ms at the guest, answering what it answers (counted
 * in *answered, if given); true as soon as match accepts a frame. */
static bool guest_wait(struct tport *a, int ms, bool (*match)(const uint8_t *, int, void *),
                       void *arg, unsigned *answered)
{
    struct answering x = { a, match, arg, 0 };
    bool ok = tport_wait(a, ms, match_or_answer, &x);
    if (answered)
        *answered += x.answered;
    return ok;
}

/* The ARP request the hostile datagrams carry: from 10.42.0.99 (no other
 * sender uses it). */
static const uint8_t IP_HOSTILE[4] = { 10, 42, 0, 99 };
static bool match_hostile(const uint8_t *f, int len, void *arg)
{
    (void)arg;
    return len >= 42 && get16(f + 12) == ETH_P_ARP && memcmp(f + 28, IP_HOSTILE, 4) == 0;
}

/* ---- the parts of the test ---------------------------------------------------- */

/* ARP for the namespace's address, then pings of 60-byte frames up to
 * frames of the port's MTU (1450: 1464 bytes); the namespace's vxlan MAC in
 * mac.  False if ARP got no answer. */
static bool guest_pings_ns_mtu(struct tport *a, uint8_t mac[6], const char *when, unsigned mtu)
{
    uint8_t f[2048];
    struct arp_want aw = { a->mac, IP_NS, IP_GUEST, { 0 } };
    tport_drain(a);
    vuf_send(a->v, 0, f, arp_frame(f, 1, MAC_BCAST, a->mac, IP_GUEST, NULL, IP_NS));
    bool ok = guest_wait(a, 2000, match_arp_reply, &aw, NULL);
    CHECK(ok, "%s: the guest's ARP request for 10.42.0.2 answered by the namespace's kernel "
          "through its vxlan device", when);
    if (!ok)
        return false;
    memcpy(mac, aw.sha, 6);
    const size_t payloads[] = { 18, 56, 1000, mtu - 28 };   /* IPv4 20, ICMP 8 */
    unsigned got = 0;
    for (unsigned i = 0; i < 4; i++) {
        struct echo_want ew = { IP_NS, IP_GUEST, (uint16_t)(200 + i), payloads[i] };
        vuf_send(a->v, 0, f, icmp_echo(f, mac, a->mac, IP_GUEST, IP_NS, ew.seq, ew.payload));
        got += guest_wait(a, 2000, match_echo_reply, &ew, NULL);
        vuf_tx_reclaim(a->v, 0);
    }
    CHECK(got == 4, "%s: echo requests of 60..%u-byte frames (up to the %u MTU): %u of 4 "
          "intact replies", when, mtu + 14, mtu, got);
    return true;
}

static bool guest_pings_ns(struct tport *a, uint8_t mac[6], const char *when)
{
    return guest_pings_ns_mtu(a, mac, when, 1450);
}

/* ping(8) in the namespace to the guest, which answers as it runs. */
static void ns_pings_guest(struct tport *a)
{
    char cmd[160];
    snprintf(cmd, sizeof cmd, "ip netns exec %s ping -c 4 -i 0.2 -W 2 -s 1000 10.42.0.1 "
             ">/dev/null 2>&1", ns);
    FILE *p = popen(cmd, "r");
    unsigned answered = 0;
    guest_wait(a, 3000, NULL, NULL, &answered);
    int st = p ? pclose(p) : -1;
    CHECK(st == 0 && answered >= 4, "ping -c 4 -s 1000 from the namespace to the guest: exit %d, "
          "the guest answered %u ARP and echo requests", WIFEXITED(st) ? WEXITSTATUS(st) : -1,
          answered);
}

/* Checksum offloads resolved before encapsulation; a frame over the MTU
 * dropped and counted. */
static void offloads(struct tport *a, const uint8_t mac[6], int cap)
{
    static uint8_t f[8192];
    struct virtio_net_hdr h;
    struct l4_seen c;
    /* UDP, 300 bytes of payload, a partial checksum as a guest sends it. */
    vuf_tx_enqueue(a->v, 0, f, udp_partial(f, mac, a->mac, IP_GUEST, IP_NS, 9999, 300, &h), &h);
    vuf_tx_flush(a->v, 0);
    capture_l4(cap, 1000, 17, IP_GUEST, 9999, &c);
    CHECK(c.n == 1 && c.bad == 0, "a UDP frame with a partial checksum (NEEDS_CSUM) reaches the "
          "namespace with its checksum completed (%u seen, %u bad)", c.n, c.bad);

    /* TCP segmentation: 4000 bytes at MSS 1000. */
    vuf_tx_enqueue(a->v, 0, f, tcp_tso(f, mac, a->mac, IP_GUEST, IP_NS, 7777, 4000, 1000, &h),
                   &h);
    vuf_tx_flush(a->v, 0);
    capture_l4(cap, 1000, 6, IP_GUEST, 7777, &c);
    CHECK(c.n == 4 && c.bad == 0 && c.payload == 4000,
          "a 4054-byte TSO frame (MSS 1000) arrives as 4 segments with right checksums, %zu "
          "payload bytes (%u seen, %u bad)", c.payload, c.n, c.bad);
    vuf_tx_reclaim(a->v, 0);

    /* Over the port's MTU: a 1451-byte IP packet. */
    unsigned long long big0 = port_stat("vx0", "encap_too_big");
    struct echo_want ew = { IP_NS, IP_GUEST, 300, 1451 - 28 };
    vuf_send(a->v, 0, f, icmp_echo(f, mac, a->mac, IP_GUEST, IP_NS, ew.seq, ew.payload));
    bool seen = guest_wait(a, 300, match_echo_reply, &ew, NULL);
    unsigned long long big = port_stat("vx0", "encap_too_big") - big0;
    CHECK(!seen && big == 1, "a 1465-byte frame (IP 1451, over the 1450 MTU) to the namespace: "
          "dropped, encap_too_big +%llu, %s", big, seen ? "answered" : "no reply");
    vuf_tx_reclaim(a->v, 0);
}

/* Sends len bytes from udp socket s to 192.0.2.1:port. */
static bool send_dgram(int s, const uint8_t *d, size_t len, uint16_t port)
{
    struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(port),
                              .sin_addr.s_addr = htonl(0xc0000201u) };
    return sendto(s, d, len, 0, (struct sockaddr *)&to, sizeof to) == (ssize_t)len;
}

/* A VXLAN datagram with flags and vni carrying an ARP request for the
 * guest from the namespace's vxlan MAC (so it would reach the guest). */
static size_t hostile_dgram(uint8_t *d, uint8_t flags, uint32_t vni, const uint8_t nsmac[6])
{
    memset(d, 0, 8);
    d[0] = flags;
    d[4] = (uint8_t)(vni >> 16);
    d[5] = (uint8_t)(vni >> 8);
    d[6] = (uint8_t)vni;
    return 8 + arp_frame(d + 8, 1, MAC_BCAST, nsmac, IP_HOSTILE, NULL, IP_GUEST);
}

/* Datagrams the port must refuse, from the namespace: each never reaches
 * the guest and is counted under its reason. */
static void hostile(struct tport *a, const uint8_t nsmac[6])
{
    int s2 = ns_udp(2), s3 = ns_udp(3);
    if (!CHECK(s2 >= 0 && s3 >= 0, "UDP sockets in the namespace on 192.0.2.2 and .3"))
        return;
    uint8_t d[128];
    struct { const char *what, *key; uint8_t flags; uint32_t vni; int sock; size_t len; } c[] = {
        { "with VNI 43 (the port's is 42)", "wire_unknown_vni", 0x08, 43, s2, 0 },
        { "with flags 0x00 (no I bit)", "wire_bad_flags", 0x00, 42, s2, 0 },
        { "of 21 bytes (less than VXLAN and Ethernet headers)", "wire_short", 0x08, 42, s2, 21 },
        { "from 192.0.2.3 (not a remote)", "wire_unknown_remote", 0x08, 42, s3, 0 },
    };
    for (unsigned i = 0; i < sizeof c / sizeof c[0]; i++) {
        unsigned long long k0 = port_stat("vx0", c[i].key), d0 = port_stat("vx0", "tx_drops");
        tport_drain(a);
        size_t len = hostile_dgram(d, c[i].flags, c[i].vni, nsmac);
        bool sent = send_dgram(c[i].sock, d, c[i].len ? c[i].len : len, 4789);
        bool seen = guest_wait(a, 300, match_hostile, NULL, NULL);
        unsigned long long k = port_stat("vx0", c[i].key) - k0,
                           dr = port_stat("vx0", "tx_drops") - d0;
        CHECK(sent && !seen && k == 1 && dr == 1,
              "a datagram %s: the guest %s, %s +%llu, tx_drops +%llu", c[i].what,
              seen ? "GOT IT" : "sees nothing", c[i].key, k, dr);
    }
    /* The same ARP request, right: the guest gets it. */
    send_dgram(s2, d, hostile_dgram(d, 0x08, 42, nsmac), 4789);
    CHECK(guest_wait(a, 1000, match_hostile, NULL, NULL),
          "the same datagram with VNI 42 from 192.0.2.2 reaches the guest");
    /* Garbage. */
    srand(4789);
    unsigned nsent = 0;
    for (unsigned i = 0; i < 500; i++) {
        uint8_t g[1600];
        size_t len = (size_t)rand() % sizeof g;
        for (size_t k = 0; k < len; k++)
            g[k] = (uint8_t)rand();
        if (i % 2) {
            g[0] |= 0x08;
            if (len > 7) {
                g[4] = 0;
                g[5] = 0;
                g[6] = 42;
            }
        }
        nsent += send_dgram(s2, g, len, 4789);
    }
    msleep(200);
    tport_drain(a);
    CHECK(daemon_alive() && nsent == 500, "500 random datagrams (half with VNI 42): daemon alive");
    close(s2);
    close(s3);
}

/* A second lwvhostd in the namespace with guest port b and VXLAN port vx
 * (a --vxlan value: to one of this daemon's); 0 when it is up. */
static int start_daemon2(char *bsock, size_t len, const char *vx)
{
    char ctl[200], logp[200];
    snprintf(bsock, len, "%s/b.sock", D.dir);
    snprintf(ctl, sizeof ctl, "%s/ctl2.sock", D.dir);
    snprintf(logp, sizeof logp, "%s/daemon2.log", D.dir);
    unlink(bsock);
    char bspec[300];
    snprintf(bspec, sizeof bspec, "b,path=%s", bsock);
    daemon2 = fork();
    if (daemon2 == 0) {
        int fd = open(logp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd >= 0) {
            dup2(fd, 2);
            dup2(fd, 1);
        }
        execlp("ip", "ip", "netns", "exec", ns, daemon_bin(), "--port", bspec, "--vxlan", vx,
               "--ctl", ctl, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 100; i++) {
        struct stat st;
        if (stat(bsock, &st) == 0)
            return 0;
        msleep(50);
    }
    return -1;
}

/* Guest a and a guest b on a second daemon in the namespace, through VXLAN
 * port name of each: here at local, there at remote (VNI 43, UDP port
 * 4790); frames up to the port's MTU + 14 bytes. */
static void two_daemons(struct tport *a, const char *name, const char *local, const char *remote,
                        unsigned mtu)
{
    char bsock[256], buf[4096], cmd[256], there[256];
    snprintf(cmd, sizeof cmd, "vxlan add %s,local=%s,remote=%s,vni=43,dstport=4790\n", name,
             local, remote);
    snprintf(there, sizeof there, "%s,local=%s,remote=%s,vni=43,dstport=4790", name, remote,
             local);
    daemon_ctl(cmd, buf, sizeof buf);
    if (!CHECK(strstr(buf, "added") != NULL, "vxlan add %s (local %s, VNI 43, port 4790): %s",
               name, local, buf))
        return;
    if (!CHECK(start_daemon2(bsock, sizeof bsock, there) == 0,
               "a second lwvhostd in the namespace with --vxlan %s", there))
        return;
    struct vuf_opts o;
    tport_default_opts(&o, "b");
    o.path = bsock;
    struct tport b;
    if (!CHECK(tport_connect(&b, "b", 0x0b, &o) == 0, "guest b connects to the second daemon"))
        return;
    tport_drain(a);
    struct tport *both[2] = { a, &b };
    CHECK(learn_all(both, 2) == 0, "a broadcast from each guest reaches the other across the "
          "two daemons' VXLAN ports");
    CHECK(pair_ok(a, &b, 200, 1000) == 0 && pair_ok(a, &b, 64, mtu + 14) == 0,
          "a <-> b: 200 frames of 1000 bytes and 64 of %u each way, intact and in order",
          mtu + 14);
    /* The other daemon sends runs with UDP GSO; across the veth they may
     * come up coalesced (UDP GRO): whether or not, nothing was lost above. */
    unsigned long long gb = port_stat(name, "decap_gro_buffers"),
                       gs = port_stat(name, "decap_gro_segments");
    note("%s from the second daemon: %llu coalesced buffers of %llu datagrams", name, gb, gs);
    static char sj[65536];
    daemon_ctl("stats json\n", sj, sizeof sj);
    CHECK(strstr(sj, "\"decap_gro_segments\":") && port_stat(name, "decap_gro_off") == 0 &&
              (gb == 0 ? gs == 0 : gs >= 2 * gb),
          "%s reads with UDP GRO (decap_gro_off 0); every coalesced buffer held 2 or more "
          "datagrams", name);
    tport_close(&b);
    kill(daemon2, SIGTERM);
    int st = 0;
    waitpid(daemon2, &st, 0);
    daemon2 = -1;
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the second daemon stops cleanly");
    snprintf(cmd, sizeof cmd, "vxlan del %s\n", name);
    daemon_ctl(cmd, buf, sizeof buf);
}

/* ---- three daemons: a full mesh, flooding and learning -------------------------- */

/* Three "hosts": namespaces NS_PREFIX PID-h1..h3, each with a veth to a
 * bridge in the test's own namespace and address 203.0.113.N/24, each
 * running an lwvhostd with guest port g and VXLAN port vx (VNI 77) whose
 * remotes are the other two. */
#define MESH 3
struct host {
    char ns[32], veth[IFNAMSIZ];
    char ctl[200], gsock[200], log[200];
    pid_t pid;
    struct tport g;
};
static struct host H[MESH] = { { .pid = -1 }, { .pid = -1 }, { .pid = -1 } };
static char mesh_br[IFNAMSIZ];

static void mesh_cleanup(void)
{
    for (unsigned i = 0; i < MESH; i++) {
        if (H[i].pid > 0) {
            kill(H[i].pid, SIGTERM);
            waitpid(H[i].pid, NULL, 0);
            H[i].pid = -1;
        }
        netns_veth_remove(H[i].ns, H[i].veth);
    }
    if (mesh_br[0])
        sh("ip link del %s", mesh_br);
    mesh_br[0] = 0;
}

/* The underlay: the bridge, the namespaces and their veths; 0 when up. */
static int mesh_net(void)
{
    int id = (int)getpid() % 1000000;
    snprintf(mesh_br, sizeof mesh_br, "lwx%dbr", id);
    if (sh("ip link add %s type bridge", mesh_br) != 0) {
        mesh_br[0] = 0;
        return -1;
    }
    sh("sysctl -qw net.ipv6.conf.%s.disable_ipv6=1", mesh_br);
    if (sh("ip link set %s up", mesh_br) != 0)
        return -1;
    for (unsigned i = 0; i < MESH; i++) {
        struct host *h = &H[i];
        snprintf(h->ns, sizeof h->ns, NS_PREFIX "%d-h%u", (int)getpid(), i + 1);
        snprintf(h->veth, sizeof h->veth, "lwx%dh%u", id, i + 1);
        if (netns_veth(h->ns, h->veth, "u0") ||
            sh("ip link set %s master %s", h->veth, mesh_br) ||
            sh("ip -n %s addr add 203.0.113.%u/24 dev u0", h->ns, i + 1))
            return -1;
    }
    return 0;
}

/* Daemon i in its namespace: --port g, --vxlan vx to the other two; 0 once
 * its guest socket and control socket exist. */
static int mesh_daemon(unsigned i)
{
    struct host *h = &H[i];
    char vx[200], gspec[260];
    unsigned r1 = (i + 1) % MESH + 1, r2 = (i + 2) % MESH + 1;
    snprintf(h->gsock, sizeof h->gsock, "%s/g%u.sock", D.dir, i + 1);
    snprintf(h->ctl, sizeof h->ctl, "%s/ctl-h%u.sock", D.dir, i + 1);
    snprintf(h->log, sizeof h->log, "%s/daemon-h%u.log", D.dir, i + 1);
    snprintf(gspec, sizeof gspec, "g,path=%s", h->gsock);
    snprintf(vx, sizeof vx, "vx,local=203.0.113.%u,remote=203.0.113.%u,remote=203.0.113.%u,"
             "vni=77", i + 1, r1, r2);
    note("host %u: %s --port %s --vxlan %s", i + 1, h->ns, gspec, vx);
    h->pid = fork();
    if (h->pid == 0) {
        int fd = open(h->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd >= 0) {
            dup2(fd, 2);
            dup2(fd, 1);
        }
        /* Gone with the test, even when its alarm ends it without atexit
         * (ip netns exec execs the daemon: the signal carries over). */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        execlp("ip", "ip", "netns", "exec", h->ns, daemon_bin(), "--port", gspec, "--vxlan", vx,
               "--ctl", h->ctl, (char *)NULL);
        _exit(127);
    }
    for (int k = 0; k < 200 && h->pid > 0; k++) {
        struct stat st;
        if (stat(h->gsock, &st) == 0 && stat(h->ctl, &st) == 0)
            return 0;
        if (waitpid(h->pid, NULL, WNOHANG) == h->pid) {
            h->pid = -1;
            break;
        }
        msleep(25);
    }
    return -1;
}

/* Field key of port vx in "stats json" of host i; -1 when not found. */
static long long mesh_stat(unsigned i, const char *key)
{
    char v[32];
    return port_stat_text(H[i].ctl, "vx", key, v, sizeof v) == 0 ? strtoll(v, NULL, 10) : -1;
}

/* Frames of flow at each host's guest within ms (a frame of another flow
 * counts in *other). */
static void mesh_collect(uint32_t flow, int ms, unsigned seen[MESH], unsigned *other)
{
    static uint8_t buf[65536];
    double end = t_now() + ms / 1000.0;
    memset(seen, 0, MESH * sizeof seen[0]);
    *other = 0;
    while (t_now() < end) {
        for (unsigned i = 0; i < MESH; i++) {
            int len;
            while ((len = vuf_recv(H[i].g.v, 0, buf, sizeof buf)) >= 0) {
                uint32_t seq, fl;
                if (vuf_frame_check(buf, (size_t)len, &seq, &fl) == 0 && fl == flow)
                    seen[i]++;
                else
                    (*other)++;
            }
        }
        msleep(2);
    }
}

/* Sends one test frame of flow to dst from host i's guest. */
static void mesh_send(unsigned i, const uint8_t dst[6], uint32_t flow)
{
    uint8_t f[128];
    vuf_frame_fill(f, 64, dst, H[i].g.mac, 0, flow);
    vuf_send(H[i].g.v, 0, f, 64);
    vuf_tx_reclaim(H[i].g.v, 0);
}

/* The VXLAN datagrams each host sent (its vx port's rx_packets: what the
 * switch gave the port, counted per datagram). */
static void mesh_sent(long long out[MESH])
{
    for (unsigned i = 0; i < MESH; i++)
        out[i] = mesh_stat(i, "rx_packets");
}

/* Host `from` sends a frame to dst; every guest's count of it within
 * 300 ms (wait: a duplicate or a stray copy has time to show) and the
 * datagrams each host sent for it. */
static void mesh_one(unsigned from, const uint8_t dst[6], uint32_t flow, unsigned seen[MESH],
                     long long sent[MESH])
{
    long long s0[MESH];
    unsigned other;
    mesh_sent(s0);
    mesh_send(from, dst, flow);
    mesh_collect(flow, 300, seen, &other);
    mesh_sent(sent);
    for (unsigned i = 0; i < MESH; i++)
        sent[i] = s0[i] < 0 || sent[i] < 0 ? -1 : sent[i] - s0[i];
    if (other)
        note("%u frames of other flows at the guests", other);
}

/* The last 40 lines of host n's daemon log, as notes. */
static void print_log(const char *path, unsigned n)
{
    FILE *f = fopen(path, "r");
    char line[512];
    unsigned total = 0, k = 0;
    while (f && fgets(line, sizeof line, f))
        total++;
    if (f)
        rewind(f);
    while (f && fgets(line, sizeof line, f))
        if (++k + 40 > total)
            printf("# host %u: %s", n, line);
    if (f)
        fclose(f);
}

static void mesh_run(void);
static void three_daemons(void)
{
    unsigned failed_before = check_failed();
    mesh_run();
    if (check_failed() != failed_before)
        for (unsigned i = 0; i < MESH; i++)
            if (H[i].log[0])
                print_log(H[i].log, i + 1);
    mesh_cleanup();
}

static void mesh_run(void)
{
    if (!CHECK(mesh_net() == 0, "three namespaces 203.0.113.1-3 on a bridge (the underlay)"))
        return;
    for (unsigned i = 0; i < MESH; i++)
        if (!CHECK(mesh_daemon(i) == 0, "lwvhostd on host %u (203.0.113.%u) with guest port g "
                   "and vx (VNI 77) to the other two", i + 1, i + 1))
            return;
    static const char *names[MESH] = { "a3", "b3", "c3" };
    for (unsigned i = 0; i < MESH; i++) {
        struct vuf_opts o;
        tport_default_opts(&o, names[i]);
        o.path = H[i].gsock;
        if (!CHECK(tport_connect(&H[i].g, names[i], (uint8_t)(0x1a + i), &o) == 0,
                   "guest %s connects to host %u's daemon", names[i], i + 1))
            return;
    }
    char buf[8192];
    ctl_at(H[0].ctl, "ports\n", buf, sizeof buf);
    note("host 1 ports: %s", buf);

    unsigned seen[MESH];
    long long sent[MESH];
    static const uint8_t nobody[6] = { 0x02, 0, 0, 0, 0, 0x99 };
    uint32_t flow = 0x3d000000u;

    /* 1. A broadcast from a: one datagram per remote (head-end
     * replication), one copy at each other guest, none back at a, and no
     * datagram from b's or c's daemon (split horizon: from the VXLAN port,
     * never back to it). */
    mesh_one(0, MAC_BCAST, ++flow, seen, sent);
    CHECK(seen[1] == 1 && seen[2] == 1 && seen[0] == 0,
          "a broadcast from a3: b3 gets %u, c3 gets %u (1 each), a3 %u (0)", seen[1], seen[2],
          seen[0]);
    CHECK(sent[0] == 2 && sent[1] == 0 && sent[2] == 0,
          "... as 2 datagrams from host 1 (one per remote), host 2 and 3 send %lld and %lld "
          "(split horizon: 0): host 1 sent %lld", sent[1], sent[2], sent[0]);

    /* 2. Unknown unicast from a: flooded the same way. */
    mesh_one(0, nobody, ++flow, seen, sent);
    CHECK(seen[1] == 1 && seen[2] == 1 && seen[0] == 0 && sent[0] == 2 && sent[1] == 0 &&
          sent[2] == 0, "unknown unicast from a3 to 02:00:00:00:00:99: b3 gets it %u, c3 %u, "
          "a3 %u times (1, 1, 0); datagrams from hosts 1, 2, 3: %lld, %lld, %lld (2, 0, 0)",
          seen[1], seen[2], seen[0], sent[0], sent[1], sent[2]);

    /* 3. b and c speak: a unicast each to a3 (their daemons learned a3
     * from its broadcast: one datagram, to host 1 only), so that a's
     * daemon learns b3 behind 203.0.113.2 and c3 behind .3 while b's
     * daemon knows nothing of c3 and c's nothing of b3: a frame to b3
     * that reached host 3 anyway would be flooded to c3 and seen there. */
    for (unsigned i = 1; i < MESH; i++) {
        unsigned o = i == 1 ? 2 : 1;
        mesh_one(i, H[0].g.mac, ++flow, seen, sent);
        CHECK(seen[0] == 1 && seen[o] == 0 && seen[i] == 0 && sent[i] == 1 &&
              sent[0] + sent[o] == 0,
              "unicast %s -> a3: a3 gets %u (1), %s %u (0); host %u sent %lld datagram(s) (1), "
              "the others %lld (0)", names[i], seen[0], names[o], seen[o], i + 1, sent[i],
              sent[0] + sent[o]);
    }
    /* Learned: a3 -> b3 and a3 -> c3 go to that one host, one datagram. */
    for (unsigned i = 1; i < MESH; i++) {
        unsigned o = i == 1 ? 2 : 1;
        mesh_one(0, H[i].g.mac, ++flow, seen, sent);
        CHECK(seen[i] == 1 && seen[o] == 0 && seen[0] == 0 && sent[0] == 1 &&
              sent[1] + sent[2] == 0,
              "unicast a3 -> %s (learned): %s gets %u (1), %s %u (0) in 300 ms; host 1 sent "
              "%lld datagram(s) (1), hosts 2 and 3 %lld (0)", names[i], names[i], seen[i],
              names[o], seen[o], sent[0], sent[1] + sent[2]);
    }
    long long m0 = mesh_stat(0, "vtep_macs");
    CHECK(m0 >= 2, "vtep_macs on host 1: %lld (at least 2: b3 and c3)", m0);

    /* Broadcasts from b3 and c3: flooded from every origin alike. */
    for (unsigned i = 1; i < MESH; i++) {
        mesh_one(i, MAC_BCAST, ++flow, seen, sent);
        unsigned o = i == 1 ? 2 : 1;
        CHECK(seen[0] == 1 && seen[o] == 1 && seen[i] == 0 && sent[i] == 2 &&
              sent[0] == 0 && sent[o] == 0,
              "a broadcast from %s: a3 %u, %s %u, %s %u times (1, 1, 0); datagrams from hosts "
              "1, 2, 3: %lld, %lld, %lld", names[i], seen[0], names[o], seen[o], names[i],
              seen[i], sent[0], sent[1], sent[2]);
    }
    mesh_one(2, H[1].g.mac, ++flow, seen, sent);
    CHECK(seen[1] == 1 && seen[0] == 0 && seen[2] == 0 && sent[2] == 1 && sent[0] + sent[1] == 0,
          "unicast c3 -> b3 (learned from its broadcast): b3 gets %u (1), a3 %u (0); host 3 sent "
          "%lld datagram(s) (1)", seen[1], seen[0], sent[2]);

    /* Every host's MAC table knows the other two guests. */
    long long m[MESH];
    for (unsigned i = 0; i < MESH; i++)
        m[i] = mesh_stat(i, "vtep_macs");
    CHECK(m[0] >= 2 && m[1] >= 2 && m[2] >= 2, "vtep_macs at the end: host 1 %lld, host 2 %lld, "
          "host 3 %lld (each at least 2: the other two guests)", m[0], m[1], m[2]);
    /* Many frames each way across the mesh, none lost or reordered. */
    CHECK(pair_ok(&H[0].g, &H[1].g, 100, 1000) == 0 && pair_ok(&H[1].g, &H[2].g, 100, 1000) == 0 &&
          pair_ok(&H[2].g, &H[0].g, 100, 1000) == 0,
          "a3 <-> b3, b3 <-> c3, c3 <-> a3: 100 frames of 1000 bytes each way, intact, in order");
    long long moved = 0;
    for (unsigned i = 0; i < MESH; i++)
        moved += mesh_stat(i, "vtep_moved");
    CHECK(moved == 0, "no MAC seen moving between VTEPs (vtep_moved %lld)", moved);

    /* 4. Each daemon stops cleanly. */
    for (unsigned i = 0; i < MESH; i++)
        tport_close(&H[i].g);
    for (unsigned i = 0; i < MESH; i++) {
        int st = -1;
        kill(H[i].pid, SIGTERM);
        double until = t_now() + 5;
        pid_t r = 0;
        while ((r = waitpid(H[i].pid, &st, WNOHANG)) == 0 && t_now() < until)
            msleep(10);
        if (r != H[i].pid) {
            kill(H[i].pid, SIGKILL);
            waitpid(H[i].pid, &st, 0);
        }
        H[i].pid = -1;
        CHECK(r > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "host %u's daemon exits 0 on SIGTERM (%s %d)", i + 1,
              r <= 0 ? "killed after 5 s," : WIFEXITED(st) ? "status" : "signal",
              WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
    }
}

/* ---- IPv6 underlay ---------------------------------------------------------------- */

/* What the IPv6 VXLAN datagrams captured on the namespace's veth showed. */
struct csum6 {
    unsigned ours, ours_ok;        /* from 2001:db8::1; with a correct checksum */
    unsigned theirs, theirs_zero;  /* from 2001:db8::2; with a zero checksum */
};

/* Reads the capture cap (IPv6 on the namespace's veth) for ms, sorting
 * UDP datagrams to or from port 4789 by sender and checksum. */
static void csum6_read(int cap, int ms, struct csum6 *c)
{
    static uint8_t buf[65536];
    double end = t_now() + ms / 1000.0;
    ssize_t len;
    while ((len = recv_until(cap, buf, sizeof buf, end)) >= 0) {
        if (len < 62 || get16(buf + 12) != 0x86dd || buf[20] != 17 || get16(buf + 56) != 4789)
            continue;
        const uint8_t *ip = buf + 14, *udp = buf + 54;
        size_t ulen = get16(udp + 4);
        if (ulen < 8 || 54 + ulen > (size_t)len)
            continue;
        bool ours = ip[8 + 15] == 1, zero = get16(udp + 6) == 0;
        /* The IPv6 pseudo-header: addresses, UDP length, next header 17. */
        uint32_t ps = sum16(ip + 8, 32, 0) + (uint32_t)ulen + 17;
        bool ok = !zero && fold(sum16(udp, ulen, ps)) == 0xffff;
        if (ours) {
            c->ours++;
            c->ours_ok += ok;
        } else {
            c->theirs++;
            c->theirs_zero += zero;
        }
    }
}

/* The guest pings and is pinged across an IPv6 underlay: the namespace's
 * Linux vxlan device moves to IPv6 (same VNI and inner address, zero UDP
 * checksums sent: udp6zerocsumtx; only correct ones taken: the default),
 * the daemon's vx0 is replaced by an IPv6 vx6 at run time; then two
 * daemons over IPv6. */
static void ipv6_underlay(struct tport *a)
{
    static char buf[65536];
    /* IPv6 was off on the veth pair so far (no chatter among the frames
     * checked above); on now, without duplicate address detection.  Our
     * side computes full checksums (no offload), so the capture can check
     * them. */
    if (!CHECK(sh("sysctl -qw net.ipv6.conf.%s.disable_ipv6=0", veth_root) == 0 &&
                   sh("ip netns exec %s sysctl -qw net.ipv6.conf.%s.disable_ipv6=0", ns,
                      veth_ns) == 0 &&
                   sh("ip -6 addr add 2001:db8::1/64 dev %s nodad", veth_root) == 0 &&
                   sh("ip -n %s -6 addr add 2001:db8::2/64 dev %s nodad", ns, veth_ns) == 0 &&
                   sh("ethtool -K %s tx off", veth_root) == 0,
               "IPv6 on the veth pair: 2001:db8::1 and 2001:db8::2 (nodad)"))
        return;
    sh("ip -n %s link del vx0", ns);
    if (!CHECK(sh("ip -n %s -6 link add vx6 type vxlan id 42 local 2001:db8::2 remote "
                  "2001:db8::1 dstport 4789 udp6zerocsumtx dev %s", ns, veth_ns) == 0 &&
                   sh("ip -n %s addr add 10.42.0.2/24 dev vx6", ns) == 0 &&
                   sh("ip -n %s link set vx6 up", ns) == 0,
               "the namespace's vxlan device over IPv6: vx6, VNI 42, 2001:db8::2 -> "
               "2001:db8::1, zero UDP checksums sent"))
        return;
    daemon_ctl("vxlan del vx0\n", buf, sizeof buf);
    daemon_ctl("vxlan add vx6,local=2001:db8::1,remote=2001:db8::2,vni=42\n", buf, sizeof buf);
    if (!CHECK(strstr(buf, "added") != NULL, "vxlan add vx6,local=2001:db8::1,"
               "remote=2001:db8::2,vni=42 at run time: %s", buf))
        return;
    daemon_ctl("ports json\n", buf, sizeof buf);
    const char *p6 = strstr(buf, "\"name\":\"vx6\"");
    CHECK(p6 && strstr(p6, "\"family\":\"ipv6\"") && strstr(p6, "\"local\":\"2001:db8::1\"") &&
              strstr(p6, "\"remotes\":[\"2001:db8::2\"]") && strstr(p6, "\"mtu\":1430"),
          "ports --json: vx6 is IPv6, local 2001:db8::1, remotes [2001:db8::2], MTU 1430 (the "
          "underlay's 1500 less 70)");
    daemon_ctl("stats\n", buf, sizeof buf);
    CHECK(strstr(buf, "vxlan vni 42 on [2001:db8::1]:4789") != NULL,
          "stats shows vx6 on [2001:db8::1]:4789");

    /* ETH_P_ALL: a socket bound to one protocol does not see what the
     * namespace sends. */
    int cap6 = netns_packet_socket(ns, veth_ns, ETH_P_ALL, NULL);
    uint8_t mac[6];
    if (guest_pings_ns_mtu(a, mac, "over IPv6", 1430))
        ns_pings_guest(a);
    struct csum6 c = { 0 };
    if (CHECK(cap6 >= 0, "a capture of IPv6 on the namespace's veth")) {
        csum6_read(cap6, 300, &c);
        close(cap6);
    }
    CHECK(c.ours >= 8 && c.ours_ok == c.ours && c.theirs >= 8 && c.theirs_zero == c.theirs,
          "on the wire: the port's %u datagrams all carry a correct UDP checksum (%u); the Linux "
          "device's %u carry none (%u zero), and the port took them", c.ours, c.ours_ok,
          c.theirs, c.theirs_zero);
    CHECK(port_stat("vx6", "wire_unknown_remote") == 0 && port_stat("vx6", "tx_packets") >= 8,
          "vx6: %llu frames from the IPv6 remote, none refused as a stranger's",
          port_stat("vx6", "tx_packets"));

    two_daemons(a, "vy6", "2001:db8::1", "2001:db8::2", 1430);
    daemon_ctl("vxlan del vx6\n", buf, sizeof buf);
    CHECK(strstr(buf, "removed") != NULL, "vxlan del vx6: %s", buf);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    test_init("vxlan_netns", 120);
    net_setup();
    /* The inner frames, on the namespace's vxlan device. */
    int cap = netns_packet_socket(ns, "vx0", ETH_P_ALL, NULL);
    if (cap < 0)
        test_skip("no packet socket on the namespace's vxlan device");

    const char *ports[] = { "a", NULL };
    const char *extra[] = { "--vxlan", "vx0,local=192.0.2.1,remote=192.0.2.2,vni=42", NULL };
    if (!CHECK(daemon_start(ports, extra) == 0, "daemon starts with --vxlan vx0,local=192.0.2.1,"
               "remote=192.0.2.2,vni=42"))
        return test_finish();
    struct vuf_opts o;
    tport_default_opts(&o, "a");
    o.features |= 1ull << VIRTIO_NET_F_CSUM | 1ull << VIRTIO_NET_F_HOST_TSO4;
    o.tx_buf_size = 8192;
    struct tport a;
    if (!CHECK(tport_connect(&a, "a", 0x0a, &o) == 0, "frontend a connects (CSUM, HOST_TSO4)"))
        return test_finish();

    char buf[8192];
    daemon_ctl("ports\n", buf, sizeof buf);
    CHECK(strstr(buf, "vx0") && strstr(buf, "vxlan") && strstr(buf, "1450"),
          "lwvhostctl ports lists vx0 as a vxlan port with MTU 1450");

    uint8_t mac[6];
    if (guest_pings_ns(&a, mac, "start")) {
        ns_pings_guest(&a);
        offloads(&a, mac, cap);
        hostile(&a, mac);
        guest_pings_ns(&a, mac, "after the hostile datagrams");
    }
    note("vx0: %llu frames from remotes, %llu to them", port_stat("vx0", "tx_packets"),
         port_stat("vx0", "rx_packets"));
    daemon_ctl("stats\n", buf, sizeof buf);
    CHECK(strstr(buf, "unknown vni 1") && strstr(buf, "unknown remote 1"),
          "lwvhostctl stats shows the drop reasons under vx0");

    /* Idle: nothing moves, the worker sleeps on the socket. */
    msleep(300);
    double cpu = daemon_cpu_over(1000);
    CHECK(cpu < 0.05, "idle with a VXLAN port: %.3f s of CPU in 1 s", cpu);

    two_daemons(&a, "vy", "192.0.2.1", "192.0.2.2", 1450);
    three_daemons();

    /* At run time: bad specs refused, then del and add again. */
    daemon_ctl("vxlan add vx1,local=198.51.100.1,remote=192.0.2.2,vni=1\n", buf, sizeof buf);
    CHECK(strstr(buf, "error") && strstr(buf, "local= must be an address of this host"),
          "a local address not of this host refused: %s", buf);
    daemon_ctl("vxlan add vx1,local=192.0.2.1,remote=192.0.2.2,vni=1\n", buf, sizeof buf);
    CHECK(strstr(buf, "error") && strstr(buf, "vx0"), "a second port on 192.0.2.1:4789 "
          "refused: %s", buf);
    daemon_ctl("vxlan add vx1,local=192.0.2.1,remote=2001:db8::1,vni=1\n", buf, sizeof buf);
    CHECK(strstr(buf, "error") && strstr(buf, "all IPv4 or all IPv6"),
          "an IPv6 remote on an IPv4 port refused: %s", buf);
    daemon_ctl("vxlan del vx0\n", buf, sizeof buf);
    CHECK(strstr(buf, "removed") != NULL, "vxlan del vx0: %s", buf);
    daemon_ctl("vxlan add vx0,local=192.0.2.1,remote=192.0.2.2,vni=42\n", buf, sizeof buf);
    CHECK(strstr(buf, "added") != NULL, "vxlan add vx0 again: %s", buf);
    guest_pings_ns(&a, mac, "after del and add");

    ipv6_underlay(&a);

    tport_close(&a);
    close(cap);
    return test_finish();
}
