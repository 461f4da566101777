/*
 * test_uplink_netns - the uplink port (--uplink) against a real kernel, in
 * mode=packet, then mode=xdp with the XDP program attached natively (veth
 * has native XDP), then generically: a veth pair, one end in a network
 * namespace with an IPv4
 * address (192.0.2.2), the other given to lwvhostd as uplink up0.  A vuf
 * frontend on port a (192.0.2.1) resolves the namespace's address with
 * ARP and pings it (the namespace's kernel answers); frames of 64..1514
 * bytes go both ways one at a time and in bursts, intact and in order;
 * frames with a hostile virtio-net header (a checksum to be written into
 * the Ethernet header) injected from the namespace through a packet socket
 * with PACKET_VNET_HDR never reach the guest (the sender's kernel refuses
 * them; one that got through would be dropped and counted), a UDP GSO
 * frame the namespace's stack makes is dropped and counted, and 500 random
 * garbage frames harm nothing; an idle uplink costs no CPU; the uplink is removed and
 * added again through the control socket, and bad specs are refused.
 * The same cases run in each mode (what the namespace's kernel does with a
 * UDP GSO send differs: see hostile()).  mode=xdp also: a guest's partial
 * checksum is completed and its TSO frame segmented before the wire (no
 * virtio-net header over AF_XDP), a frame longer than a UMEM frame is
 * dropped and counted, the stats say native or generic and copy mode
 * (veth refuses zero-copy), a second daemon finds the XDP program
 * attached and is refused, removing the port detaches the program, and so
 * does killing a daemon (SIGKILL) that holds one.
 *
 * Needs root, ip(8), network namespaces and veth: skips (77) without; and
 * when the kernel refuses AF_XDP or XDP (after the mode=packet cases).
 * Frames the ring itself must refuse (cut short, descriptors out of
 * bounds) cannot be made by a veth; tests/unit/test_uplink.c has them.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <netinet/in.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "netns.h"
#include "pkt.h"
#include "systest.h"

#define NS_PREFIX "lwvupl-"
static char ns[32], veth_root[IFNAMSIZ], veth_ns[IFNAMSIZ];
/* The mode being tested, in every message: "packet", "xdp native", "xdp generic". */
static const char *M = "packet";
static bool xdp;
static const uint8_t IP_GUEST[4] = { 192, 0, 2, 1 }, IP_NS[4] = { 192, 0, 2, 2 };

static void net_cleanup(void)
{
    netns_veth_remove(ns, veth_root);
}

/* The namespace, the veth pair, the address; skips when any cannot be had. */
static void net_setup(void)
{
    if (geteuid() != 0)
        test_skip("needs root (network namespaces, veth, packet sockets)");
    if (sh("ip -V") != 0)
        test_skip("no ip(8) (iproute2)");
    const char *why = netns_for_test(NS_PREFIX, "lwu", ns, veth_root, veth_ns, net_cleanup);
    if (why)
        test_skip(why);
    if (sh("ip -n %s addr add 192.0.2.2/24 dev %s", ns, veth_ns))
        test_skip("cannot configure the veth pair");
    /* The guest answers no ARP: the namespace knows its MAC (02:00:00:00:00:0a). */
    sh("ip -n %s neigh replace 192.0.2.1 lladdr 02:00:00:00:00:0a dev %s", ns, veth_ns);
}

/* A packet socket on the namespace's end (vnet: with PACKET_VNET_HDR, for
 * sending only); its MAC in mac.  -1 on failure. */
static int ns_socket(bool vnet, uint8_t mac[6], int *ifindex)
{
    int s = netns_packet_socket(ns, veth_ns, vnet ? 0 : ETH_P_ALL, ifindex);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", veth_ns);
    int one = 1;
    if (s >= 0 && (ioctl(s, SIOCGIFHWADDR, &ifr) < 0 ||
                   (vnet && setsockopt(s, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof one) < 0))) {
        close(s);
        s = -1;
    }
    if (s >= 0)
        memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
    return s;
}

/* ---- frames ---------------------------------------------------------------- */

struct test_arg { uint32_t seq, flow; int len; };
static bool match_test(const uint8_t *f, int len, void *arg)
{
    struct test_arg *x = arg;
    uint32_t seq, flow;
    return len == x->len && vuf_frame_check(f, (size_t)len, &seq, &flow) == 0 &&
           seq == x->seq && flow == x->flow;
}

/* Waits up to ms for a test frame of flow at the namespace socket s; its
 * length, or -1.  Other frames (the kernel's own) are skipped. */
static int ns_wait(int s, uint32_t flow, uint32_t *seq, int ms)
{
    static uint8_t buf[65536];
    double end = t_now() + ms / 1000.0;
    ssize_t len;
    while ((len = recv_until(s, buf, sizeof buf, end)) >= 0) {
        uint32_t fl;
        if (len > 0 && vuf_frame_check(buf, (size_t)len, seq, &fl) == 0 && fl == flow)
            return (int)len;
    }
    return -1;
}

static void ns_drain(int s)
{
    uint8_t buf[2048];
    while (recv(s, buf, sizeof buf, MSG_DONTWAIT) > 0)
        ;
}

/* ---- the parts of the test -------------------------------------------------- */

/* ARP, then pings of several sizes (up to a 1514-byte frame); the
 * namespace's MAC in mac.  False if ARP got no answer. */
static bool arp_and_ping(struct tport *a, uint8_t mac[6], const char *when)
{
    uint8_t f[2048];
    struct arp_want aw = { a->mac, IP_NS, IP_GUEST, { 0 } };
    tport_drain(a);
    vuf_send(a->v, 0, f, arp_frame(f, 1, MAC_BCAST, a->mac, IP_GUEST, NULL, IP_NS));
    bool ok = tport_wait(a, 2000, match_arp_reply, &aw);
    CHECK(ok, "%s: ARP request for 192.0.2.2 answered by the namespace's kernel", when);
    if (!ok)
        return false;
    memcpy(mac, aw.sha, 6);
    static const size_t payloads[] = { 18, 56, 1000, 1472 };
    unsigned got = 0;
    for (unsigned i = 0; i < 4; i++) {
        struct echo_want ew = { IP_NS, IP_GUEST, (uint16_t)(100 + i), payloads[i] };
        vuf_send(a->v, 0, f, icmp_echo(f, mac, a->mac, IP_GUEST, IP_NS, ew.seq, ew.payload));
        got += tport_wait(a, 2000, match_echo_reply, &ew);
        vuf_tx_reclaim(a->v, 0);
    }
    CHECK(got == 4, "%s: ICMP echo requests of 60..1514-byte frames: %u of 4 intact replies", when,
          got);
    return true;
}

/* Test frames of 64..1514 bytes guest -> namespace and back, one at a
 * time, then in bursts of 64. */
static void sizes_both_ways(struct tport *a, int s, int ifindex, const uint8_t mac[6])
{
    static uint8_t f[2048];
    unsigned n = 120, ok_out = 0, ok_in = 0;
    ns_drain(s);
    for (unsigned i = 0; i < n; i++) {
        unsigned sz = 64 + i * (1514 - 64) / (n - 1);
        uint32_t seq = ~0u;
        vuf_frame_fill(f, sz, mac, a->mac, i, 7);
        vuf_send(a->v, 0, f, sz);
        ok_out += ns_wait(s, 7, &seq, 1000) == (int)sz && seq == i;
        vuf_tx_reclaim(a->v, 0);
    }
    CHECK(ok_out == n, "%s: guest -> namespace, %u frames of 64..1514 bytes one at a time: %u "
          "intact", M, n, ok_out);
    struct sockaddr_ll to = { .sll_family = AF_PACKET, .sll_ifindex = ifindex, .sll_halen = 6 };
    memcpy(to.sll_addr, a->mac, 6);
    tport_drain(a);
    for (unsigned i = 0; i < n; i++) {
        unsigned sz = 64 + i * (1514 - 64) / (n - 1);
        struct test_arg ta = { i, 8, (int)sz };
        vuf_frame_fill(f, sz, a->mac, mac, i, 8);
        if (sendto(s, f, sz, 0, (struct sockaddr *)&to, sizeof to) == (ssize_t)sz)
            ok_in += tport_wait(a, 1000, match_test, &ta);
    }
    CHECK(ok_in == n, "%s: namespace -> guest, %u frames of 64..1514 bytes one at a time: %u "
          "intact", M, n, ok_in);

    /* Bursts: many frames per ring block in, one sendmmsg batch out. */
    unsigned burst = 64, in = 0, out = 0;
    for (unsigned i = 0; i < burst; i++) {
        unsigned sz = 64 + (i * 331) % (1514 - 64 + 1);
        vuf_frame_fill(f, sz, a->mac, mac, i, 9);
        if (sendto(s, f, sz, 0, (struct sockaddr *)&to, sizeof to) != (ssize_t)sz)
            break;
    }
    for (unsigned i = 0; i < burst; i++) {
        struct test_arg ta = { i, 9, (int)(64 + (i * 331) % (1514 - 64 + 1)) };
        in += tport_wait(a, 1000, match_test, &ta);
    }
    CHECK(in == burst, "%s: namespace -> guest, a burst of %u mixed sizes: %u intact, in order",
          M, burst, in);
    ns_drain(s);
    for (unsigned i = 0; i < burst; i++) {
        unsigned sz = 64 + (i * 331) % (1514 - 64 + 1);
        vuf_frame_fill(f, sz, mac, a->mac, i, 10);
        vuf_tx_enqueue(a->v, 0, f, sz, NULL);
    }
    vuf_tx_flush(a->v, 0);
    for (unsigned i = 0; i < burst; i++) {
        uint32_t seq = ~0u;
        int len = ns_wait(s, 10, &seq, 1000);
        out += seq == i && len == (int)(64 + (i * 331) % (1514 - 64 + 1));
    }
    vuf_tx_reclaim(a->v, 0);
    CHECK(out == burst, "%s: guest -> namespace, a burst of %u mixed sizes: %u intact, in order",
          M, burst, out);
}

/* A test frame to the guest with header h, sent through the namespace's
 * PACKET_VNET_HDR socket; true if the kernel took it. */
static bool inject_vnet(int vs, int ifindex, const uint8_t guest[6], const uint8_t mac[6],
                        const struct virtio_net_hdr *h, uint32_t seq)
{
    uint8_t f[10 + 128];
    memcpy(f, h, 10);
    vuf_frame_fill(f + 10, 128, guest, mac, seq, 11);
    struct sockaddr_ll to = { .sll_family = AF_PACKET, .sll_ifindex = ifindex,
                              .sll_protocol = htons(VUF_ETHERTYPE_TEST), .sll_halen = 6 };
    memcpy(to.sll_addr, guest, 6);
    return sendto(vs, f, sizeof f, 0, (struct sockaddr *)&to, sizeof to) == (ssize_t)sizeof f;
}

/* A UDP socket in the namespace sends len bytes to the guest's port 9,
 * with UDP_SEGMENT seg when seg > 0: its kernel hands the veth one
 * GSO_UDP_L4 frame of several datagrams, which the uplink's packet socket
 * sees with that GSO type.  True if the send was taken. */
static bool udp_send_ns(int seg, size_t len)
{
    int u = netns_socket(ns, AF_INET, SOCK_DGRAM, 0);
    static uint8_t data[2400];
    struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(9) };
    memcpy(&to.sin_addr, IP_GUEST, 4);
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 11);
    bool ok = u >= 0 && len <= sizeof data &&
              (seg <= 0 || setsockopt(u, IPPROTO_UDP, 103 /* UDP_SEGMENT */, &seg,
                                      sizeof seg) == 0) &&
              sendto(u, data, len, 0, (struct sockaddr *)&to, sizeof to) == (ssize_t)len;
    if (u >= 0)
        close(u);
    return ok;
}

/* The UDP GSO case: a 1200-byte send in 400-byte segments.  The switch
 * cannot carry the GSO frame mode=packet sees. */
static bool udp_gso_send(void)
{
    return udp_send_ns(400, 1200);
}

/* True for a UDP/IPv4 frame to the guest's port 9. */
static bool match_udp9(const uint8_t *f, int len, void *arg)
{
    (void)arg;
    return is_l4_to(f, (size_t)len, 17, NULL, 9);
}

/* A UDP/IPv4 frame to the guest's port 9, counted in *n; its sums checked. */
struct udp9_arg { unsigned n, bad; size_t payload; };
static bool count_udp9(const uint8_t *f, int len, void *arg)
{
    struct udp9_arg *x = arg;
    if (!match_udp9(f, len, NULL))
        return false;
    x->n++;
    x->payload += get16(f + 38) - 8u;
    x->bad += !l4_sums_ok(f + 14, (size_t)len - 14);
    return false;   /* go on waiting: count them all */
}

/* mode=xdp: UDP from the namespace's stack, which hands its veth partial
 * checksums (and GSO frames), where AF_XDP carries neither.  A UDP GSO
 * send: a veth with a native XDP program has taken GSO off its peer, so
 * the namespace's kernel segments it: 3 datagrams of 400 bytes; generic
 * XDP gets the GSO frame as it is, linearised: one 1200-byte datagram
 * (one over 1792 bytes is dropped by the kernel).
 * Their checksums are the namespace's partial ones (noted, not the
 * switch's to fix: it cannot know); with checksum offload off on the
 * namespace's veth (the documented remedy) a datagram arrives right. */
static void udp_from_ns_xdp(struct tport *a, bool generic)
{
    struct udp9_arg x = { 0, 0, 0 };
    tport_drain(a);
    bool sent = udp_send_ns(400, 1200);
    tport_wait(a, 500, count_udp9, &x);
    note("%s: a UDP GSO send of 1200 bytes in 400-byte datagrams: the guest got %u datagrams "
         "(%zu payload bytes, %u with the namespace's partial checksum)", M, x.n, x.payload,
         x.bad);
    CHECK(sent && x.n == (generic ? 1u : 3u) && x.payload == 1200,
          "%s: a UDP GSO send from the namespace reaches the guest as %s (%u datagrams, %zu "
          "bytes)", M, generic ? "the one linearised GSO frame" : "3 datagrams of 400 bytes",
          x.n, x.payload);

    /* 2400 bytes: generic XDP gets a 2442-byte frame, more than a UMEM
     * frame holds: the kernel drops it (and counts it). */
    unsigned long long k0 = port_stat("up0", "wire_kernel_drops");
    struct udp9_arg z = { 0, 0, 0 };
    sent = udp_send_ns(400, 2400);
    tport_wait(a, 500, count_udp9, &z);
    unsigned long long k = port_stat("up0", "wire_kernel_drops") - k0;
    CHECK(sent && (generic ? z.n == 0 && k == 1 : z.n == 6 && z.payload == 2400 && k == 0),
          "%s: a UDP GSO send of 2400 bytes: %s (%u datagrams, wire_kernel_drops +%llu)", M,
          generic ? "too long for a UMEM frame, dropped by the kernel and counted"
                  : "6 datagrams of 400 bytes", z.n, k);

    int off = sh("ip netns exec %s ethtool -K %s tx off", ns, veth_ns);
    struct udp9_arg y = { 0, 0, 0 };
    sent = udp_send_ns(0, 300);
    tport_wait(a, 500, count_udp9, &y);
    CHECK(off == 0 && sent && y.n == 1 && y.payload == 300 && y.bad == 0,
          "%s: with checksum offload off on the namespace's veth, a 300-byte UDP datagram "
          "reaches the guest with right checksums (%u seen, %u bad)", M, y.n, y.bad);
    sh("ip netns exec %s ethtool -K %s tx on", ns, veth_ns);
}

/* Hostile headers, frames the switch cannot carry and garbage from the
 * namespace: dropped and counted, the daemon unharmed. */
static void hostile(struct tport *a, int vs, int s, int ifindex, const uint8_t mac[6])
{
    unsigned long long bad0 = port_stat("up0", "wire_bad_header"),
                       drop0 = port_stat("up0", "tx_drops");
    /* Checksums to be written into the Ethernet header (the destination
     * MAC, then the source MAC).  The uplink's socket gets a header the
     * kernel makes, not the sender's: Linux refuses these at the sender
     * (csum_start before the network header); if one got through, the
     * uplink must drop it (wire_bad_header). */
    struct virtio_net_hdr h1 = { .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .csum_start = 0,
                                 .csum_offset = 0 };
    struct virtio_net_hdr h2 = { .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .csum_start = 6,
                                 .csum_offset = 2 };
    unsigned taken = inject_vnet(vs, ifindex, a->mac, mac, &h1, 1);
    taken += inject_vnet(vs, ifindex, a->mac, mac, &h2, 2);
    struct test_arg t1 = { 1, 11, 128 }, t2 = { 2, 11, 128 };
    bool leaked = tport_wait(a, 300, match_test, &t1) || tport_wait(a, 100, match_test, &t2);
    msleep(50);
    unsigned long long bad = port_stat("up0", "wire_bad_header") - bad0,
                       drop = port_stat("up0", "tx_drops") - drop0;
    note("checksum requests into the Ethernet header: the namespace's kernel took %u of 2", taken);
    CHECK(!leaked && bad == taken && drop == taken,
          "%s: checksum requests into the Ethernet header never reach the guest (it saw %s; "
          "%u sent, wire_bad_header +%llu, tx_drops +%llu)",
          M, leaked ? "one" : "none", taken, bad, drop);
    /* A good header through the same socket still passes. */
    struct virtio_net_hdr ok = { 0 };
    struct test_arg t3 = { 3, 11, 128 };
    CHECK(inject_vnet(vs, ifindex, a->mac, mac, &ok, 3) && tport_wait(a, 1000, match_test, &t3),
          "%s: a frame with a plain virtio-net header from the same socket arrives", M);

    /* UDP segmentation offload from the namespace's stack. */
    if (xdp) {
        udp_from_ns_xdp(a, strcmp(M, "xdp generic") == 0);
    } else {
        unsigned long long gso0 = port_stat("up0", "wire_gso_unsupported");
        drop0 = port_stat("up0", "tx_drops");
        bool sent = udp_gso_send();
        bool seen = tport_wait(a, 300, match_udp9, NULL);
        unsigned long long gso = port_stat("up0", "wire_gso_unsupported") - gso0;
        drop = port_stat("up0", "tx_drops") - drop0;
        CHECK(sent && !seen && gso == 1 && drop == 1,
              "%s: a UDP GSO frame (1200 bytes in 400-byte datagrams) from the namespace: "
              "dropped and counted (sent %d, guest saw %s, wire_gso_unsupported +%llu, "
              "tx_drops +%llu)", M, sent, seen ? "it" : "nothing", gso, drop);
    }

    /* Garbage: random lengths, bytes and addresses (multicast sources too). */
    uint8_t f[1514];
    unsigned nsent = 0;
    srand(4242);
    struct sockaddr_ll to = { .sll_family = AF_PACKET, .sll_ifindex = ifindex, .sll_halen = 6 };
    for (unsigned i = 0; i < 500; i++) {
        size_t len = 14 + (size_t)rand() % (sizeof f - 14 + 1);
        for (size_t k = 0; k < len; k++)
            f[k] = (uint8_t)rand();
        if (i % 2)
            memcpy(f, a->mac, 6);
        nsent += sendto(s, f, len, 0, (struct sockaddr *)&to, sizeof to) == (ssize_t)len;
    }
    msleep(200);
    tport_drain(a);
    CHECK(daemon_alive() && nsent == 500, "%s: 500 random frames of 14..1514 bytes from the "
          "namespace: daemon alive (%u sent)", M, nsent);
}

/* mode=xdp: the guest's offload requests are completed before the wire,
 * since AF_XDP carries no virtio-net header; a frame longer than a UMEM
 * frame is dropped and counted. */
static void offloads_xdp(struct tport *a, int s, const uint8_t mac[6])
{
    static uint8_t f[8192];
    struct virtio_net_hdr h;
    struct l4_seen c;
    ns_drain(s);
    /* UDP, 300 bytes, the checksum left partial as a guest leaves it. */
    vuf_tx_enqueue(a->v, 0, f, udp_partial(f, mac, a->mac, IP_GUEST, IP_NS, 9999, 300, &h), &h);
    vuf_tx_flush(a->v, 0);
    capture_l4(s, 1000, 17, IP_GUEST, 9999, &c);
    CHECK(c.n == 1 && c.bad == 0 && c.payload == 300, "%s: a UDP frame with a partial checksum "
          "(NEEDS_CSUM) reaches the namespace with its checksum completed (%u seen, %u bad)", M,
          c.n, c.bad);

    /* TCP segmentation: 4000 bytes at MSS 1000, checksum partial. */
    vuf_tx_enqueue(a->v, 0, f, tcp_tso(f, mac, a->mac, IP_GUEST, IP_NS, 7777, 4000, 1000, &h),
                   &h);
    vuf_tx_flush(a->v, 0);
    capture_l4(s, 1000, 6, IP_GUEST, 7777, &c);
    CHECK(c.n == 4 && c.bad == 0 && c.payload == 4000 && c.longest == 1054,
          "%s: a 4054-byte TSO frame (MSS 1000) reaches the namespace as 4 segments of at most "
          "1054 bytes with right checksums (%u seen, %u bad, %zu payload bytes, longest %zu)",
          M, c.n, c.bad, c.payload, c.longest);
    vuf_tx_reclaim(a->v, 0);

    /* Longer than a UMEM frame (2048 - 256): dropped and counted. */
    unsigned long long big0 = port_stat("up0", "xdp_tx_too_big"),
                       drop0 = port_stat("up0", "rx_drops");
    uint32_t seq = ~0u;
    vuf_frame_fill(f, 1793, mac, a->mac, 1, 12);
    vuf_send(a->v, 0, f, 1793);
    bool seen = ns_wait(s, 12, &seq, 300) >= 0;
    vuf_frame_fill(f, 1792, mac, a->mac, 2, 12);
    vuf_send(a->v, 0, f, 1792);
    int len = ns_wait(s, 12, &seq, 1000);
    unsigned long long big = port_stat("up0", "xdp_tx_too_big") - big0,
                       drop = port_stat("up0", "rx_drops") - drop0;
    CHECK(!seen && big == 1 && drop == 1, "%s: a 1793-byte frame to the wire: dropped, "
          "xdp_tx_too_big +%llu, rx_drops +%llu", M, big, drop);
    /* A veth's MTU is 1500: a 1792-byte frame goes from us; its kernel may drop it. */
    note("%s: a 1792-byte frame: %s at the namespace", M, len == 1792 ? "seen" : "not seen");
    vuf_tx_reclaim(a->v, 0);
}

/* True when an XDP program is attached to the root's veth end; *generic
 * tells in which mode. */
static bool xdp_attached(bool *generic)
{
    char cmd[128], line[512];
    bool found = false;
    snprintf(cmd, sizeof cmd, "ip link show dev %s 2>/dev/null", veth_root);
    FILE *p = popen(cmd, "r");
    *generic = false;
    while (p && fgets(line, sizeof line, p)) {
        if (strstr(line, "prog/xdp"))
            found = true;
        if (strstr(line, " xdpgeneric"))
            *generic = true;
    }
    if (p)
        pclose(p);
    return found;
}

/* Starts a second lwvhostd with only --uplink spec, its log in path; its
 * pid, or -1. */
static pid_t second_daemon(const char *spec, const char *path)
{
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execl(daemon_bin(), daemon_bin(), "--uplink", spec, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Waits up to ms for pid to exit; its status, or -1 if it runs on. */
static int wait_exit(pid_t pid, int ms)
{
    double end = t_now() + ms / 1000.0;
    int st;
    while (t_now() < end) {
        if (waitpid(pid, &st, WNOHANG) == pid)
            return st;
        msleep(20);
    }
    return -1;
}

/* True when file path contains text. */
static bool file_has(const char *path, const char *text)
{
    static char buf[8192];
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = 0;
    return strstr(buf, text) != NULL;
}

/* The cases every mode runs: ARP and pings, every size both ways, hostile
 * frames, the counters, an idle uplink's CPU. */
static void run_cases(struct tport *a, int s, int vs, int ifindex, const uint8_t ns_mac[6])
{
    uint8_t mac[6];
    char when[64];
    unsigned long long in0 = port_stat("up0", "tx_packets"), out0 = port_stat("up0", "rx_packets");
    note("---- mode %s ----", M);
    snprintf(when, sizeof when, "%s, start", M);
    if (arp_and_ping(a, mac, when)) {
        CHECK(memcmp(mac, ns_mac, 6) == 0, "%s: the ARP reply carries the namespace's veth MAC",
              M);
        sizes_both_ways(a, s, ifindex, mac);
        if (xdp)
            offloads_xdp(a, s, mac);
        hostile(a, vs, s, ifindex, mac);
        snprintf(when, sizeof when, "%s, after the hostile frames", M);
        arp_and_ping(a, mac, when);
    }
    unsigned long long in = port_stat("up0", "tx_packets") - in0,
                       out = port_stat("up0", "rx_packets") - out0;
    CHECK(in >= 120 + 64 + 500 && out >= 120 + 64, "%s: up0's counters moved: %llu frames from "
          "the wire, %llu to it", M, in, out);

    /* Idle: nothing moves, the worker sleeps on the socket. */
    msleep(300);
    double cpu = daemon_cpu_over(1000);
    CHECK(cpu < 0.05, "%s: idle with an uplink: %.3f s of CPU in 1 s", M, cpu);
}

/* Run-time refusals of bad specs (with up0 in mode=packet), then del and
 * add again. */
static void runtime_specs(struct tport *a)
{
    char buf[8192], line[160];
    uint8_t mac[6];
    daemon_ctl("uplink add up1,ifname=lwvnosuch0\n", buf, sizeof buf);
    CHECK(strstr(buf, "error") && strstr(buf, "no interface"), "absent interface refused: %s",
          buf);
    snprintf(line, sizeof line, "uplink add up1,ifname=%s,mode=xdp\n", veth_root);
    daemon_ctl(line, buf, sizeof buf);
    CHECK(strstr(buf, "error") && strstr(buf, "up0"), "mode=xdp on up0's interface refused: %s",
          buf);
    snprintf(line, sizeof line, "uplink add up1,ifname=%s\n", veth_root);
    daemon_ctl(line, buf, sizeof buf);
    CHECK(strstr(buf, "error") && strstr(buf, "up0"), "a second uplink on the interface refused: %s",
          buf);
    daemon_ctl("uplink add up1,path=/x\n", buf, sizeof buf);
    CHECK(strstr(buf, "unknown key"), "unknown key refused: %s", buf);
    daemon_ctl("uplink add up1,ifname=lo,queue=1\n", buf, sizeof buf);
    CHECK(strstr(buf, "needs mode=xdp"), "queue= without mode=xdp refused: %s", buf);
    daemon_ctl("uplink add up1,ifname=lo,mode=xdp,qdisc_bypass=on\n", buf, sizeof buf);
    CHECK(strstr(buf, "mode=packet"), "qdisc_bypass= with mode=xdp refused: %s", buf);
    daemon_ctl("uplink add up1,ifname=lo,mode=xdp,xdp_mode=hw\n", buf, sizeof buf);
    CHECK(strstr(buf, "not auto, native or generic"), "xdp_mode=hw refused: %s", buf);
    daemon_ctl("uplink del up0\n", buf, sizeof buf);
    CHECK(strstr(buf, "removed") != NULL, "uplink del up0: %s", buf);
    snprintf(line, sizeof line, "uplink add up0,ifname=%s,mode=xdp,queue=3\n", veth_root);
    daemon_ctl(line, buf, sizeof buf);
    bool gen;
    CHECK(strstr(buf, "error") && strstr(buf, "queue=3") && strstr(buf, "1 receive queue") &&
          !xdp_attached(&gen), "mode=xdp on a queue the veth does not have refused, no program "
          "left attached: %s", buf);
    snprintf(line, sizeof line, "uplink add up0,ifname=%s\n", veth_root);
    daemon_ctl(line, buf, sizeof buf);
    CHECK(strstr(buf, "added") != NULL, "uplink add up0 again: %s", buf);
    arp_and_ping(a, mac, "packet, after del and add");
}

/* mode=xdp: the interface goes down (frames to it are refused by the
 * kernel, counted) and up again: the port carries frames again, the
 * frames held back included. */
static void down_and_up(struct tport *a)
{
    uint8_t f[128], mac[6];
    char when[64];
    unsigned long long k0 = port_stat("up0", "xdp_tx_kick_errors");
    sh("ip link set %s down", veth_root);
    for (unsigned i = 0; i < 5; i++) {
        vuf_frame_fill(f, sizeof f, (const uint8_t[6]){ 2, 0, 0, 0, 0, 0x55 }, a->mac, i, 13);
        vuf_send(a->v, 0, f, sizeof f);
        msleep(20);
    }
    vuf_tx_reclaim(a->v, 0);
    unsigned long long k = port_stat("up0", "xdp_tx_kick_errors") - k0;
    sh("ip link set %s up", veth_root);
    CHECK(k >= 1, "%s: with the interface down, the kernel refuses to send (xdp_tx_kick_errors "
          "+%llu)", M, k);
    msleep(200);
    snprintf(when, sizeof when, "%s, the interface down and up again", M);
    arp_and_ping(a, mac, when);
}

/* Moves up0 to mode=xdp with xdp_mode=mode at run time; false if the
 * kernel refused (why in why). */
static bool to_xdp(const char *mode, char *why, size_t cap)
{
    char buf[8192], line[160];
    daemon_ctl("uplink del up0\n", buf, sizeof buf);
    snprintf(line, sizeof line, "uplink add up0,ifname=%s,mode=xdp,xdp_mode=%s\n", veth_root,
             mode);
    daemon_ctl(line, buf, sizeof buf);
    snprintf(why, cap, "%s", buf);
    return strstr(buf, "added") != NULL;
}

/* mode=xdp: what the stats say, and the XDP program's attachment: refused
 * to a second daemon, gone with the port (and with a killed daemon). */
static void xdp_attachment(bool generic_wanted, bool last)
{
    char v[64], path[160], spec[64], buf[8192];
    bool gen;
    port_stat_text(NULL, "up0", "xdp_mode", v, sizeof v);
    CHECK(strcmp(v, generic_wanted ? "\"generic\"" : "\"native\"") == 0 &&
          xdp_attached(&gen) && gen == generic_wanted,
          "%s: the program is attached in %s mode (stats: xdp_mode %s; ip link agrees)", M,
          generic_wanted ? "generic" : "native", v);
    port_stat_text(NULL, "up0", "zerocopy", v, sizeof v);
    note("%s: zerocopy %s (veth has no zero-copy AF_XDP)", M, v);
    CHECK(strcmp(v, "false") == 0, "%s: copy mode on a veth (zerocopy %s)", M, v);

    snprintf(path, sizeof path, "%s/second.log", D.dir);
    snprintf(spec, sizeof spec, "up9,ifname=%s,mode=xdp", veth_root);
    pid_t pid = second_daemon(spec, path);
    int st = wait_exit(pid, 5000);
    if (st == -1) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
    }
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) != 0 && file_has(path, "XDP program attached already")
          && xdp_attached(&gen), "%s: a second daemon with mode=xdp on the interface is refused "
          "and ours stays attached", M);
    if (!last)
        return;
    daemon_ctl("uplink del up0\n", buf, sizeof buf);
    CHECK(strstr(buf, "removed") && !xdp_attached(&gen), "%s: uplink del up0 detaches the "
          "program: %s", M, buf);
    /* A daemon that dies holding the program lets go of it with its fds. */
    pid = second_daemon(spec, path);
    bool up = false;
    for (int i = 0; i < 100 && !up; i++) {
        msleep(50);
        up = xdp_attached(&gen);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    msleep(100);
    CHECK(up && !xdp_attached(&gen), "a second daemon attached its program (%s), then SIGKILL: "
          "the program is gone", up ? "it did" : "it did NOT");
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    test_init("uplink_netns", 300);
    net_setup();
    uint8_t ns_mac[6];
    int ifindex = 0, vifindex = 0;
    int s = ns_socket(false, ns_mac, &ifindex);
    int vs = ns_socket(true, ns_mac, &vifindex);
    if (s < 0 || vs < 0)
        test_skip("no packet socket in the namespace");

    char upspec[64], buf[8192];
    snprintf(upspec, sizeof upspec, "up0,ifname=%s", veth_root);
    const char *ports[] = { "a", NULL };
    const char *extra[] = { "--uplink", upspec, NULL };
    if (!CHECK(daemon_start(ports, extra) == 0, "daemon starts with --uplink %s", upspec))
        return test_finish();
    struct tport a;
    struct vuf_opts o;
    tport_default_opts(&o, "a");
    o.features = VUF_DEFAULT_FEATURES | 1ull << VIRTIO_NET_F_CSUM | 1ull << VIRTIO_NET_F_HOST_TSO4;
    o.tx_buf_size = 8192;   /* a TSO frame of 4054 bytes */
    if (!CHECK(tport_connect(&a, "a", 0x0a, &o) == 0, "frontend a connects (CSUM, HOST_TSO4)"))
        return test_finish();
    daemon_ctl("ports\n", buf, sizeof buf);
    CHECK(strstr(buf, "up0") && strstr(buf, "uplink"), "lwvhostctl ports lists up0 as an uplink");

    run_cases(&a, s, vs, ifindex, ns_mac);
    runtime_specs(&a);

    static const char *const modes[] = { "native", "generic" };
    char why[8192] = "";
    bool refused = false;
    for (unsigned m = 0; m < 2 && !refused; m++) {
        M = m == 0 ? "xdp native" : "xdp generic";
        xdp = true;
        refused = !to_xdp(modes[m], why, sizeof why);
        if (refused)
            break;
        CHECK(true, "%s: uplink add up0,mode=xdp,xdp_mode=%s: %s", M, modes[m], why);
        run_cases(&a, s, vs, ifindex, ns_mac);
        down_and_up(&a);
        xdp_attachment(m == 1, m == 1);
    }
    tport_close(&a);
    close(s);
    close(vs);
    if (refused) {
        /* The kernel's refusal, not ours: skip if all else passed. */
        note("%s refused: %s", M, why);
        int rc = test_finish();
        if (rc != 0)
            return rc;
        printf("skip - mode=xdp: the kernel refused it here: %s", why);
        return 77;
    }
    return test_finish();
}
