/*
 * test_uplink_netns - the uplink port (--uplink, mode=packet) against a
 * real kernel: a veth pair, one end in a network namespace with an IPv4
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
 *
 * Needs root, ip(8), network namespaces and veth: skips (77) without.
 * Frames the ring itself must refuse (cut short, descriptors out of
 * bounds) cannot be made by a veth; tests/unit/test_uplink.c has them.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <netinet/in.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "systest.h"

#define NS_PREFIX "lwvupl-"
static char ns[32], veth_root[IFNAMSIZ], veth_ns[IFNAMSIZ];
static const uint8_t IP_GUEST[4] = { 192, 0, 2, 1 }, IP_NS[4] = { 192, 0, 2, 2 };

/* Runs a shell command built from fmt, its output discarded; its exit status. */
static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[512], full[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    snprintf(full, sizeof full, "%s >/dev/null 2>&1", cmd);
    int st = system(full);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void net_cleanup(void)
{
    if (ns[0])
        sh("ip netns del %s", ns);
    if (veth_root[0])
        sh("ip link del %s", veth_root);
}

/* Namespaces left by an earlier run that timed out (alarm: _exit, no atexit). */
static void remove_stale(void)
{
    DIR *d = opendir("/run/netns");
    struct dirent *e;
    while (d && (e = readdir(d))) {
        int pid;
        if (sscanf(e->d_name, NS_PREFIX "%d", &pid) == 1 && kill(pid, 0) < 0 && errno == ESRCH)
            sh("ip netns del %s", e->d_name);
    }
    if (d)
        closedir(d);
}

static void skip(const char *why)
{
    printf("skip - %s\n", why);
    net_cleanup();
    exit(77);
}

/* The namespace, the veth pair, the address; skips when any cannot be had. */
static void net_setup(void)
{
    if (geteuid() != 0)
        skip("needs root (network namespaces, veth, packet sockets)");
    if (sh("ip -V") != 0)
        skip("no ip(8) (iproute2)");
    remove_stale();
    snprintf(ns, sizeof ns, NS_PREFIX "%d", (int)getpid());
    snprintf(veth_root, sizeof veth_root, "lwu%da", (int)getpid() % 1000000);
    snprintf(veth_ns, sizeof veth_ns, "lwu%db", (int)getpid() % 1000000);
    atexit(net_cleanup);
    if (sh("ip netns add %s", ns) != 0) {
        ns[0] = 0;
        skip("cannot create a network namespace");
    }
    if (sh("ip link add %s type veth peer name %s netns %s", veth_root, veth_ns, ns) != 0) {
        veth_root[0] = 0;
        skip("no veth support");
    }
    /* No IPv6 chatter (router solicitations, DAD) among the test frames. */
    sh("sysctl -qw net.ipv6.conf.%s.disable_ipv6=1", veth_root);
    sh("ip netns exec %s sysctl -qw net.ipv6.conf.all.disable_ipv6=1", ns);
    sh("ip netns exec %s sysctl -qw net.ipv6.conf.%s.disable_ipv6=1", ns, veth_ns);
    if (sh("ip link set %s up", veth_root) || sh("ip -n %s link set lo up", ns) ||
        sh("ip -n %s addr add 192.0.2.2/24 dev %s", ns, veth_ns) ||
        sh("ip -n %s link set %s up", ns, veth_ns))
        skip("cannot configure the veth pair");
    /* The guest answers no ARP: the namespace knows its MAC (02:00:00:00:00:0a). */
    sh("ip -n %s neigh replace 192.0.2.1 lladdr 02:00:00:00:00:0a dev %s", ns, veth_ns);
}

/* A packet socket on the namespace's end (vnet: with PACKET_VNET_HDR, for
 * sending only); its MAC in mac.  -1 on failure. */
static int ns_socket(bool vnet, uint8_t mac[6], int *ifindex)
{
    char path[128];
    snprintf(path, sizeof path, "/run/netns/%s", ns);
    int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    int nsfd = open(path, O_RDONLY | O_CLOEXEC);
    int s = -1;
    if (self < 0 || nsfd < 0 || setns(nsfd, CLONE_NEWNET) < 0)
        goto out;
    s = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, vnet ? 0 : htons(ETH_P_ALL));
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", veth_ns);
    int one = 1;
    struct sockaddr_ll sll = { .sll_family = AF_PACKET,
                               .sll_protocol = vnet ? 0 : htons(ETH_P_ALL),
                               .sll_ifindex = (int)if_nametoindex(veth_ns) };
    if (s < 0 || ioctl(s, SIOCGIFHWADDR, &ifr) < 0 ||
        (vnet && setsockopt(s, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof one) < 0) ||
        bind(s, (struct sockaddr *)&sll, sizeof sll) < 0) {
        if (s >= 0)
            close(s);
        s = -1;
    } else {
        memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
        *ifindex = sll.sll_ifindex;
    }
    if (setns(self, CLONE_NEWNET) < 0) {
        printf("FAIL - cannot return to the test's network namespace\n");
        exit(1);
    }
out:
    if (self >= 0)
        close(self);
    if (nsfd >= 0)
        close(nsfd);
    return s;
}

/* ---- frames ---------------------------------------------------------------- */

static uint16_t csum16(const uint8_t *p, size_t len)
{
    uint32_t s = 0;
    for (size_t i = 0; i + 1 < len; i += 2)
        s += (uint32_t)(p[i] << 8 | p[i + 1]);
    if (len & 1)
        s += (uint32_t)p[len - 1] << 8;
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return (uint16_t)~s;
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

/* An ARP request from the guest for the namespace's address (60 bytes). */
static size_t arp_request(uint8_t *f, const uint8_t src[6])
{
    memset(f, 0, 60);
    memset(f, 0xff, 6);
    memcpy(f + 6, src, 6);
    put16(f + 12, ETH_P_ARP);
    put16(f + 14, 1);
    put16(f + 16, ETH_P_IP);
    f[18] = 6;
    f[19] = 4;
    put16(f + 20, 1);
    memcpy(f + 22, src, 6);
    memcpy(f + 28, IP_GUEST, 4);
    memcpy(f + 38, IP_NS, 4);
    return 60;
}

/* True for the namespace's ARP reply to the guest; its MAC in mac. */
static bool is_arp_reply(const uint8_t *f, int len, const uint8_t guest[6], uint8_t mac[6])
{
    if (len < 42 || get16(f + 12) != ETH_P_ARP || get16(f + 20) != 2 || memcmp(f, guest, 6) ||
        memcmp(f + 28, IP_NS, 4) || memcmp(f + 38, IP_GUEST, 4))
        return false;
    memcpy(mac, f + 22, 6);
    return true;
}

/* An ICMP echo request with payload bytes of pattern seq, from the guest. */
static size_t icmp_echo(uint8_t *f, const uint8_t dst[6], const uint8_t src[6], uint16_t seq,
                        size_t payload)
{
    size_t ip_len = 20 + 8 + payload;
    memcpy(f, dst, 6);
    memcpy(f + 6, src, 6);
    put16(f + 12, ETH_P_IP);
    uint8_t *ip = f + 14, *ic = ip + 20;
    memset(ip, 0, 20);
    ip[0] = 0x45;
    put16(ip + 2, (uint16_t)ip_len);
    put16(ip + 4, seq);
    ip[8] = 64;
    ip[9] = 1;
    memcpy(ip + 12, IP_GUEST, 4);
    memcpy(ip + 16, IP_NS, 4);
    put16(ip + 10, csum16(ip, 20));
    memset(ic, 0, 8);
    ic[0] = 8;
    put16(ic + 4, 0x4c57);
    put16(ic + 6, seq);
    for (size_t i = 0; i < payload; i++)
        ic[8 + i] = (uint8_t)(seq * 7 + i);
    put16(ic + 2, csum16(ic, 8 + payload));
    return 14 + ip_len;
}

/* True for the namespace's echo reply to request seq: addresses, both
 * checksums and the payload as sent. */
static bool is_echo_reply(const uint8_t *f, int len, uint16_t seq, size_t payload)
{
    const uint8_t *ip = f + 14, *ic = ip + 20;
    if (len != (int)(14 + 28 + payload) || get16(f + 12) != ETH_P_IP || ip[9] != 1 ||
        memcmp(ip + 12, IP_NS, 4) || memcmp(ip + 16, IP_GUEST, 4) || csum16(ip, 20) != 0)
        return false;
    if (ic[0] != 0 || get16(ic + 4) != 0x4c57 || get16(ic + 6) != seq ||
        csum16(ic, 8 + payload) != 0)
        return false;
    for (size_t i = 0; i < payload; i++)
        if (ic[8 + i] != (uint8_t)(seq * 7 + i))
            return false;
    return true;
}

/* Waits up to ms for a frame at the guest that match accepts. */
static bool guest_wait(struct tport *a, int ms, bool (*match)(const uint8_t *, int, void *),
                       void *arg)
{
    static uint8_t buf[65536];
    double end = t_now() + ms / 1000.0;
    while (t_now() < end) {
        int left = (int)((end - t_now()) * 1000) + 1;
        int len = vuf_recv_wait(a->v, 0, buf, sizeof buf, left);
        if (len >= 0 && match(buf, len, arg))
            return true;
    }
    return false;
}

struct arp_arg { const uint8_t *guest; uint8_t mac[6]; };
static bool match_arp(const uint8_t *f, int len, void *arg)
{
    struct arp_arg *x = arg;
    return is_arp_reply(f, len, x->guest, x->mac);
}

struct echo_arg { uint16_t seq; size_t payload; };
static bool match_echo(const uint8_t *f, int len, void *arg)
{
    struct echo_arg *x = arg;
    return is_echo_reply(f, len, x->seq, x->payload);
}

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
    while (t_now() < end) {
        struct pollfd p = { .fd = s, .events = POLLIN };
        if (poll(&p, 1, (int)((end - t_now()) * 1000) + 1) <= 0)
            continue;
        ssize_t len = recv(s, buf, sizeof buf, MSG_DONTWAIT);
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

/* ---- the daemon's counters ------------------------------------------------- */

/* Field key of port name in "stats json" (0 if absent). */
static unsigned long long port_stat(const char *name, const char *key)
{
    static char buf[65536];
    char pat[64];
    if (daemon_ctl("stats json\n", buf, sizeof buf) < 0)
        return 0;
    snprintf(pat, sizeof pat, "\"%s\"", name);
    const char *p = strstr(buf, pat);
    snprintf(pat, sizeof pat, "\"%s\":", key);
    p = p ? strstr(p, pat) : NULL;
    return p ? strtoull(p + strlen(pat), NULL, 10) : 0;
}

/* ---- the parts of the test -------------------------------------------------- */

/* ARP, then pings of several sizes (up to a 1514-byte frame); the
 * namespace's MAC in mac.  False if ARP got no answer. */
static bool arp_and_ping(struct tport *a, uint8_t mac[6], const char *when)
{
    uint8_t f[2048];
    struct arp_arg aa = { a->mac, { 0 } };
    tport_drain(a);
    vuf_send(a->v, 0, f, arp_request(f, a->mac));
    bool ok = guest_wait(a, 2000, match_arp, &aa);
    CHECK(ok, "%s: ARP request for 192.0.2.2 answered by the namespace's kernel", when);
    if (!ok)
        return false;
    memcpy(mac, aa.mac, 6);
    static const size_t payloads[] = { 18, 56, 1000, 1472 };
    unsigned got = 0;
    for (unsigned i = 0; i < 4; i++) {
        struct echo_arg ea = { (uint16_t)(100 + i), payloads[i] };
        vuf_send(a->v, 0, f, icmp_echo(f, mac, a->mac, ea.seq, ea.payload));
        got += guest_wait(a, 2000, match_echo, &ea);
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
    CHECK(ok_out == n, "guest -> namespace, %u frames of 64..1514 bytes one at a time: %u intact",
          n, ok_out);
    struct sockaddr_ll to = { .sll_family = AF_PACKET, .sll_ifindex = ifindex, .sll_halen = 6 };
    memcpy(to.sll_addr, a->mac, 6);
    tport_drain(a);
    for (unsigned i = 0; i < n; i++) {
        unsigned sz = 64 + i * (1514 - 64) / (n - 1);
        struct test_arg ta = { i, 8, (int)sz };
        vuf_frame_fill(f, sz, a->mac, mac, i, 8);
        if (sendto(s, f, sz, 0, (struct sockaddr *)&to, sizeof to) == (ssize_t)sz)
            ok_in += guest_wait(a, 1000, match_test, &ta);
    }
    CHECK(ok_in == n, "namespace -> guest, %u frames of 64..1514 bytes one at a time: %u intact",
          n, ok_in);

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
        in += guest_wait(a, 1000, match_test, &ta);
    }
    CHECK(in == burst, "namespace -> guest, a burst of %u mixed sizes: %u intact, in order",
          burst, in);
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
    CHECK(out == burst, "guest -> namespace, a burst of %u mixed sizes: %u intact, in order",
          burst, out);
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

/* A UDP socket in the namespace with UDP_SEGMENT: its kernel hands the veth
 * one GSO_UDP_L4 frame of several datagrams, which the uplink's socket sees
 * with that GSO type.  The switch cannot carry it (no UDP segmentation):
 * true if a 1200-byte send in 400-byte segments was taken. */
static bool udp_gso_send(void)
{
    char path[128];
    snprintf(path, sizeof path, "/run/netns/%s", ns);
    int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    int nsfd = open(path, O_RDONLY | O_CLOEXEC);
    bool ok = false;
    if (self >= 0 && nsfd >= 0 && setns(nsfd, CLONE_NEWNET) == 0) {
        int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        int seg = 400;
        static uint8_t data[1200];
        struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(9) };
        memcpy(&to.sin_addr, IP_GUEST, 4);
        ok = u >= 0 && setsockopt(u, IPPROTO_UDP, 103 /* UDP_SEGMENT */, &seg, sizeof seg) == 0 &&
             sendto(u, data, sizeof data, 0, (struct sockaddr *)&to, sizeof to) == sizeof data;
        if (u >= 0)
            close(u);
        if (setns(self, CLONE_NEWNET) < 0) {
            printf("FAIL - cannot return to the test's network namespace\n");
            exit(1);
        }
    }
    if (self >= 0)
        close(self);
    if (nsfd >= 0)
        close(nsfd);
    return ok;
}

/* True for a UDP/IPv4 frame to the guest's port 9. */
static bool match_udp9(const uint8_t *f, int len, void *arg)
{
    (void)arg;
    return len >= 42 && get16(f + 12) == ETH_P_IP && f[14 + 9] == 17 && get16(f + 36) == 9;
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
    bool leaked = guest_wait(a, 300, match_test, &t1) || guest_wait(a, 100, match_test, &t2);
    msleep(50);
    unsigned long long bad = port_stat("up0", "wire_bad_header") - bad0,
                       drop = port_stat("up0", "tx_drops") - drop0;
    note("checksum requests into the Ethernet header: the namespace's kernel took %u of 2", taken);
    CHECK(!leaked && bad == taken && drop == taken,
          "checksum requests into the Ethernet header never reach the guest (it saw %s; "
          "%u sent, wire_bad_header +%llu, tx_drops +%llu)",
          leaked ? "one" : "none", taken, bad, drop);
    /* A good header through the same socket still passes. */
    struct virtio_net_hdr ok = { 0 };
    struct test_arg t3 = { 3, 11, 128 };
    CHECK(inject_vnet(vs, ifindex, a->mac, mac, &ok, 3) && guest_wait(a, 1000, match_test, &t3),
          "a frame with a plain virtio-net header from the same socket arrives");

    /* UDP segmentation offload from the namespace's stack. */
    unsigned long long gso0 = port_stat("up0", "wire_gso_unsupported");
    drop0 = port_stat("up0", "tx_drops");
    bool sent = udp_gso_send();
    bool seen = guest_wait(a, 300, match_udp9, NULL);
    unsigned long long gso = port_stat("up0", "wire_gso_unsupported") - gso0;
    drop = port_stat("up0", "tx_drops") - drop0;
    CHECK(sent && !seen && gso == 1 && drop == 1,
          "a UDP GSO frame (1200 bytes in 400-byte datagrams) from the namespace: dropped and "
          "counted (sent %d, guest saw %s, wire_gso_unsupported +%llu, tx_drops +%llu)",
          sent, seen ? "it" : "nothing", gso, drop);

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
    CHECK(daemon_alive() && nsent == 500, "500 random frames of 14..1514 bytes from the "
          "namespace: daemon alive (%u sent)", nsent);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    test_init("uplink_netns", 120);
    net_setup();
    uint8_t mac[6], ns_mac[6];
    int ifindex = 0, vifindex = 0;
    int s = ns_socket(false, ns_mac, &ifindex);
    int vs = ns_socket(true, ns_mac, &vifindex);
    if (s < 0 || vs < 0)
        skip("no packet socket in the namespace");

    char upspec[64];
    snprintf(upspec, sizeof upspec, "up0,ifname=%s", veth_root);
    const char *ports[] = { "a", NULL };
    const char *extra[] = { "--uplink", upspec, NULL };
    if (!CHECK(daemon_start(ports, extra) == 0, "daemon starts with --uplink %s", upspec))
        return test_finish();
    struct tport a;
    if (!CHECK(tport_connect(&a, "a", 0x0a, NULL) == 0, "frontend a connects"))
        return test_finish();

    char buf[8192];
    daemon_ctl("ports\n", buf, sizeof buf);
    CHECK(strstr(buf, "up0") && strstr(buf, "uplink"), "lwvhostctl ports lists up0 as an uplink");

    if (arp_and_ping(&a, mac, "start")) {
        CHECK(memcmp(mac, ns_mac, 6) == 0, "the ARP reply carries the namespace's veth MAC");
        sizes_both_ways(&a, s, ifindex, mac);
        hostile(&a, vs, s, ifindex, mac);
        arp_and_ping(&a, mac, "after the hostile frames");
    }
    unsigned long long loops = port_stat("up0", "tx_packets");
    note("up0: %llu frames from the wire, %llu to it", loops, port_stat("up0", "rx_packets"));

    /* Idle: nothing moves, the worker sleeps on the socket. */
    msleep(300);
    double cpu = daemon_cpu_over(1000);
    CHECK(cpu < 0.05, "idle with an uplink: %.3f s of CPU in 1 s", cpu);

    /* At run time: bad specs refused, then del and add again. */
    char line[128];
    daemon_ctl("uplink add up1,ifname=lwvnosuch0\n", buf, sizeof buf);
    CHECK(strstr(buf, "error") && strstr(buf, "no interface"), "absent interface refused: %s",
          buf);
    snprintf(line, sizeof line, "uplink add up1,ifname=%s,mode=xdp\n", veth_root);
    daemon_ctl(line, buf, sizeof buf);
    CHECK(strstr(buf, "error") && strstr(buf, "not implemented"), "mode=xdp refused: %s", buf);
    snprintf(line, sizeof line, "uplink add up1,ifname=%s\n", veth_root);
    daemon_ctl(line, buf, sizeof buf);
    CHECK(strstr(buf, "error") && strstr(buf, "up0"), "a second uplink on the interface refused: %s",
          buf);
    daemon_ctl("uplink add up1,path=/x\n", buf, sizeof buf);
    CHECK(strstr(buf, "unknown key"), "unknown key refused: %s", buf);
    daemon_ctl("uplink del up0\n", buf, sizeof buf);
    CHECK(strstr(buf, "removed") != NULL, "uplink del up0: %s", buf);
    snprintf(line, sizeof line, "uplink add up0,ifname=%s\n", veth_root);
    daemon_ctl(line, buf, sizeof buf);
    CHECK(strstr(buf, "added") != NULL, "uplink add up0 again: %s", buf);
    arp_and_ping(&a, mac, "after del and add");

    tport_close(&a);
    close(s);
    close(vs);
    return test_finish();
}
