/*
 * test_vxlan.c - the VXLAN port (src/daemon/vxlan.c).
 *
 * Without sockets: the header it builds; every datagram it must refuse,
 * each counted under its own reason and nothing else; remotes learned with
 * learn=on up to the cap; the inner MAC -> remote table (learning, a MAC
 * moving to another remote, aging, a full table); which remotes a frame
 * goes to; the flow hash that picks the sending socket.
 *
 * With UDP sockets on the loopback (no root needed): a port on 127.0.0.1
 * sends to a remote at 127.0.0.2, where the test reads the datagrams: a
 * plain frame, a scattered frame whose TCP checksum the port completes, a
 * TSO frame it segments (every segment's checksums checked), frames over
 * its MTU dropped and counted, one flow from one source port and many
 * flows from several; and it receives what the test sends it, refusing a
 * wrong VNI and a stranger.  Buffers handed to the port are exactly their
 * size on the heap, so under ASan a read past one fails the test.
 *
 * UDP GRO: the splitter on hostile sizes (0, 1, negative, past the
 * buffer, a length not a multiple, a cut buffer); buffers as reads return
 * them taken a burst at a time (1, 7, 32, 40, 64), every datagram once and
 * in order, refusals counted one by one; and on the loopback, UDP GSO
 * sends from the peer that the port's kernel hands up coalesced (kernel
 * 6.18 does: one buffer of 40 datagrams), split and checked datagram by
 * datagram, 40 frames over two bursts.
 *
 * IPv6 underlay: addresses as --vxlan reads and writes them (v4-mapped
 * ones are IPv4), which are unicast, socket addresses of both families;
 * an IPv6 port finding, learning and refusing senders (the other family,
 * multicast, link-local, unspecified, v4-mapped), an IPv4 port refusing an
 * IPv6 sender; the flow hash of fixed frames as it was before (it picks
 * the outer source port).  With root, the whole socket half again over
 * IPv6, in a network namespace of its own whose loopback has
 * 2001:db8::1-3 (the test's last part: it does not go back).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/udp.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "log.h"
#include "net.h"
#include "offload.h"
#include "port.h"
#include "vxlan.h"

static const uint8_t MAC_A[6] = { 0x02, 0, 0, 0, 0, 0x0a };
static const uint8_t MAC_B[6] = { 0x02, 0, 0, 0, 0, 0x0b };
static const uint8_t BCAST[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

static uint32_t ip4(uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
    return htonl((uint32_t)a << 24 | (uint32_t)b << 16 | (uint32_t)c << 8 | d);
}

/* IPv4 address ip (network order) in the 16-byte form ports keep. */
static struct in6_addr v4(uint32_t ip)
{
    struct in6_addr a;
    memset(&a, 0, sizeof a);
    a.s6_addr[10] = a.s6_addr[11] = 0xff;
    memcpy(&a.s6_addr[12], &ip, 4);
    return a;
}

/* A sender: address a (16-byte form) of its family, any port (only the
 * address makes a remote). */
static union vxlan_sockaddr from_a(const struct in6_addr *a)
{
    union vxlan_sockaddr sa;
    vxlan_sockaddr_set(&sa, IN6_IS_ADDR_V4MAPPED(a) ? AF_INET : AF_INET6, a, 40000);
    return sa;
}

static union vxlan_sockaddr from_ip(uint32_t ip)
{
    struct in6_addr a = v4(ip);
    return from_a(&a);
}

/* The index of IPv4 remote ip (network order), or -1. */
static int find4(const struct vxlan_core *c, uint32_t ip)
{
    struct in6_addr a = v4(ip);
    return vxlan_remote_find(c, &a);
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

/* A datagram: VXLAN header (flags, vni) and a frame of flen bytes from src
 * to dst; returns its length. */
static size_t dgram(uint8_t *d, uint8_t flags, uint32_t vni, const uint8_t dst[6],
                    const uint8_t src[6], size_t flen)
{
    memset(d, 0, VXLAN_HLEN + flen);
    d[0] = flags;
    d[4] = (uint8_t)(vni >> 16);
    d[5] = (uint8_t)(vni >> 8);
    d[6] = (uint8_t)vni;
    memcpy(d + VXLAN_HLEN, dst, 6);
    memcpy(d + VXLAN_HLEN + 6, src, 6);
    put16(d + VXLAN_HLEN + 12, 0x0800);
    for (size_t i = 14; i < flen; i++)
        d[VXLAN_HLEN + i] = (uint8_t)i;
    return VXLAN_HLEN + flen;
}

static struct vxlan_cfg base_cfg(void)
{
    struct vxlan_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.family = AF_INET;
    cfg.local = v4(ip4(10, 0, 0, 1));
    cfg.remote[0] = v4(ip4(10, 0, 0, 2));
    cfg.remote[1] = v4(ip4(10, 0, 0, 3));
    cfg.nremotes = 2;
    cfg.vni = 42;
    cfg.dstport = 4789;
    cfg.mtu = 1450;
    return cfg;
}

/* True when every counter of a equals b's but the one at field (an
 * offsetof, or (size_t)-1 for none), which is b's + 1. */
static bool only_bumped(const struct vxlan_stats *a, const struct vxlan_stats *b, size_t field)
{
    const uint64_t *x = (const uint64_t *)a, *y = (const uint64_t *)b;
    for (size_t i = 0; i < sizeof(*a) / sizeof(uint64_t); i++) {
        uint64_t want = y[i] + (i * sizeof(uint64_t) == field ? 1 : 0);
        if (x[i] != want)
            return false;
    }
    return true;
}

#define NONE ((size_t)-1)
#define FIELD(f) offsetof(struct vxlan_stats, f)

static void header_bytes(void)
{
    uint8_t h[VXLAN_HLEN];
    static const uint8_t want[VXLAN_HLEN] = { 0x08, 0, 0, 0, 0x12, 0x34, 0x56, 0 };
    vxlan_header(h, 0x123456);
    CHECK(memcmp(h, want, VXLAN_HLEN) == 0,
          "header for VNI 0x123456: flags 08, reserved 0, VNI big-endian in bytes 4..6, 0");
    static const uint8_t zero[VXLAN_HLEN] = { 0x08, 0, 0, 0, 0, 0, 0, 0 };
    vxlan_header(h, 0);
    CHECK(memcmp(h, zero, VXLAN_HLEN) == 0, "header for VNI 0");
    static const uint8_t top[VXLAN_HLEN] = { 0x08, 0, 0, 0, 0xff, 0xff, 0xff, 0 };
    vxlan_header(h, VXLAN_VNI_MAX);
    CHECK(memcmp(h, top, VXLAN_HLEN) == 0, "header for VNI 16777215");
    struct vxlan_cfg cfg = base_cfg();
    static struct vxlan_core c;
    vxlan_core_init(&c, &cfg, 1);
    CHECK(c.hdr[0] == 0x08 && c.hdr[4] == 0 && c.hdr[5] == 0 && c.hdr[6] == 42 &&
              c.max_frame == 1450 + 18,
          "a port's header carries its VNI; its largest frame is MTU + 18");
}

/* One datagram of len bytes (at the end of an exact heap buffer) through
 * vxlan_rx_check; true when the verdict is want and only counter field
 * moved. */
static bool rx_case(struct vxlan_core *c, const uint8_t *d, size_t len, uint32_t from,
                    enum vxlan_rx_rc want, size_t field)
{
    uint8_t *copy = malloc(len ? len : 1);
    memcpy(copy, d, len);
    struct vxlan_stats before = c->st;
    union vxlan_sockaddr sa = from_ip(from);
    size_t inner = 0;
    enum vxlan_rx_rc rc = vxlan_rx_check(c, &sa, copy, len, 1000, &inner);
    bool ok = rc == want && only_bumped(&c->st, &before, field) &&
              (rc != VXLAN_RX_OK || inner == len - VXLAN_HLEN);
    if (!ok)
        note("verdict %d (wanted %d), inner %zu", rc, want, inner);
    free(copy);
    return ok;
}

static void hostile_datagrams(void)
{
    static struct vxlan_core c;
    struct vxlan_cfg cfg = base_cfg();
    vxlan_core_init(&c, &cfg, 7);
    uint32_t r0 = ip4(10, 0, 0, 2), stranger = ip4(10, 9, 9, 9);
    static uint8_t d[VXLAN_HLEN + 2000];
    size_t len = dgram(d, 0x08, 42, MAC_B, MAC_A, 60);
    CHECK(rx_case(&c, d, len, r0, VXLAN_RX_OK, NONE), "a good datagram from a remote passes");
    for (size_t l = 0; l < VXLAN_HLEN + 14; l++)
        if (!rx_case(&c, d, l, r0, VXLAN_RX_SHORT, FIELD(rx_short))) {
            CHECK(0, "a %zu-byte datagram is refused as short", l);
            break;
        }
    CHECK(c.st.rx_short == VXLAN_HLEN + 14, "0..21-byte datagrams: short, each counted (%llu)",
          (unsigned long long)c.st.rx_short);
    CHECK(rx_case(&c, d, VXLAN_HLEN + 14, r0, VXLAN_RX_OK, NONE),
          "a 22-byte datagram (a bare Ethernet header) passes");
    dgram(d, 0x00, 42, MAC_B, MAC_A, 60);
    CHECK(rx_case(&c, d, len, r0, VXLAN_RX_BAD_FLAGS, FIELD(rx_bad_flags)),
          "flags 0x00 (no I bit): bad flags");
    dgram(d, 0xf7, 42, MAC_B, MAC_A, 60);
    CHECK(rx_case(&c, d, len, r0, VXLAN_RX_BAD_FLAGS, FIELD(rx_bad_flags)),
          "flags 0xf7 (every bit but I): bad flags");
    dgram(d, 0xff, 42, MAC_B, MAC_A, 60);
    d[1] = d[2] = d[3] = d[7] = 0xff;
    CHECK(rx_case(&c, d, len, r0, VXLAN_RX_OK, NONE),
          "reserved bits set besides I (flags and reserved bytes 0xff): ignored, passes");
    dgram(d, 0x08, 43, MAC_B, MAC_A, 60);
    CHECK(rx_case(&c, d, len, r0, VXLAN_RX_UNKNOWN_VNI, FIELD(rx_unknown_vni)),
          "VNI 43 on a VNI 42 port: unknown vni");
    dgram(d, 0x08, 42 | 0x10000, MAC_B, MAC_A, 60);
    CHECK(rx_case(&c, d, len, r0, VXLAN_RX_UNKNOWN_VNI, FIELD(rx_unknown_vni)),
          "VNI differing in its top byte: unknown vni");
    len = dgram(d, 0x08, 42, MAC_B, MAC_A, 1450 + 18);
    CHECK(rx_case(&c, d, len, r0, VXLAN_RX_OK, NONE), "an inner frame of MTU + 18 bytes passes");
    len = dgram(d, 0x08, 42, MAC_B, MAC_A, 1450 + 19);
    CHECK(rx_case(&c, d, len, r0, VXLAN_RX_TOO_LONG, FIELD(rx_too_long)),
          "an inner frame of MTU + 19 bytes: too long");
    len = dgram(d, 0x08, 42, MAC_B, MAC_A, 60);
    CHECK(rx_case(&c, d, len, stranger, VXLAN_RX_UNKNOWN_REMOTE, FIELD(rx_unknown_remote)),
          "a good datagram from an address not a remote (learn off): unknown remote");
    CHECK(find4(&c, stranger) < 0 && c.nremotes == 2, "... and it is not learned");
    struct vxlan_stats before = c.st;
    union vxlan_sockaddr v6 = from_ip(r0);
    v6.sa.sa_family = AF_INET6;
    size_t inner;
    CHECK(vxlan_rx_check(&c, &v6, d, len, 1000, &inner) == VXLAN_RX_UNKNOWN_REMOTE &&
              only_bumped(&c.st, &before, FIELD(rx_unknown_remote)),
          "a sender that is not AF_INET: unknown remote");
    /* Content is checked before the sender: a stranger's bad datagram is
     * counted for what it is. */
    dgram(d, 0x08, 44, MAC_B, MAC_A, 60);
    CHECK(rx_case(&c, d, len, stranger, VXLAN_RX_UNKNOWN_VNI, FIELD(rx_unknown_vni)),
          "a stranger's datagram with a wrong VNI: counted as unknown vni");

    /* Random datagrams: never a crash, always exactly one verdict counted. */
    srand(16);
    unsigned counted = 0;
    for (unsigned i = 0; i < 5000; i++) {
        size_t l = (size_t)rand() % 1600;
        for (size_t k = 0; k < l; k++)
            d[k] = (uint8_t)rand();
        if (i % 3 == 0 && l >= 8) {   /* mostly-right headers too */
            d[0] |= 0x08;
            d[4] = 0;
            d[5] = 0;
            d[6] = 42;
        }
        struct vxlan_stats b0 = c.st;
        uint32_t src = i % 2 ? r0 : stranger;
        union vxlan_sockaddr sa = from_ip(src);
        enum vxlan_rx_rc rc = vxlan_rx_check(&c, &sa, d, l, 1000, &inner);
        const uint64_t *x = (const uint64_t *)&c.st, *y = (const uint64_t *)&b0;
        uint64_t moved = 0;
        for (size_t k = 0; k < FIELD(rx_errors) / sizeof(uint64_t); k++)
            moved += x[k] - y[k];
        counted += (rc == VXLAN_RX_OK) == (moved == 0) && moved <= 1 &&
                   (rc != VXLAN_RX_OK || inner == l - VXLAN_HLEN);
    }
    CHECK(counted == 5000, "5000 random datagrams: each passed uncounted or was counted once "
          "(%u)", counted);
}

static void remote_learning(void)
{
    static struct vxlan_core c;
    struct vxlan_cfg cfg = base_cfg();
    cfg.learn = true;
    vxlan_core_init(&c, &cfg, 9);
    static uint8_t d[VXLAN_HLEN + 100];
    size_t len = dgram(d, 0x08, 42, MAC_B, MAC_A, 60);
    uint32_t newcomer = ip4(10, 0, 0, 77);
    CHECK(rx_case(&c, d, len, newcomer, VXLAN_RX_OK, FIELD(remotes_learned)) &&
              c.nremotes == 3 && find4(&c, newcomer) == 2 &&
              c.remote[2].in.sin_port == htons(4789) && c.remote[2].in.sin_family == AF_INET,
          "learn=on: a good datagram from a new address adds it (sent to at dstport 4789)");
    CHECK(rx_case(&c, d, len, newcomer, VXLAN_RX_OK, NONE) && c.nremotes == 3,
          "... once");
    dgram(d, 0x08, 41, MAC_B, MAC_A, 60);
    CHECK(rx_case(&c, d, len, ip4(10, 0, 0, 78), VXLAN_RX_UNKNOWN_VNI, FIELD(rx_unknown_vni)) &&
              c.nremotes == 3,
          "a bad datagram from a new address does not add it");
    dgram(d, 0x08, 42, MAC_B, MAC_A, 60);
    CHECK(rx_case(&c, d, len, ip4(224, 0, 0, 5), VXLAN_RX_UNKNOWN_REMOTE,
                  FIELD(rx_unknown_remote)) &&
              rx_case(&c, d, len, 0, VXLAN_RX_UNKNOWN_REMOTE, FIELD(rx_unknown_remote)) &&
              c.nremotes == 3,
          "multicast and 0.0.0.0 senders are not learned");
    unsigned added = 0;
    for (unsigned i = 0; i < 100; i++) {
        union vxlan_sockaddr sa = from_ip(ip4(10, 2, 0, (uint8_t)(i + 1)));
        size_t inner;
        added += vxlan_rx_check(&c, &sa, d, len, 1000, &inner) == VXLAN_RX_OK;
    }
    CHECK(c.nremotes == VXLAN_MAX_REMOTES && added == VXLAN_MAX_REMOTES - 3 &&
              c.st.remotes_full == 100 - added && c.st.rx_unknown_remote == 2 + 100 - added,
          "100 more senders: %u learned up to the cap of %d, the rest refused and counted "
          "(remotes_full %llu)", added, VXLAN_MAX_REMOTES, (unsigned long long)c.st.remotes_full);
    uint8_t t[VXLAN_MAX_REMOTES];
    CHECK(vxlan_targets(&c, BCAST, 1000, t) == VXLAN_MAX_REMOTES && t[0] == 0 && t[63] == 63,
          "a broadcast goes to all %d remotes, configured and learned", VXLAN_MAX_REMOTES);
}

static void mac_table(void)
{
    static struct vxlan_core c;
    struct vxlan_cfg cfg = base_cfg();
    cfg.remote[2] = v4(ip4(10, 0, 0, 4));
    cfg.nremotes = 3;
    vxlan_core_init(&c, &cfg, 12345);
    static uint8_t d[VXLAN_HLEN + 100];
    size_t len = dgram(d, 0x08, 42, BCAST, MAC_A, 60);
    union vxlan_sockaddr r1 = from_a(&cfg.remote[1]), r2 = from_a(&cfg.remote[2]);
    size_t inner;
    uint8_t t[VXLAN_MAX_REMOTES];
    CHECK(vxlan_vtep_lookup(&c, MAC_A, 100) == -1 && vxlan_targets(&c, MAC_A, 100, t) == 3,
          "an unknown unicast MAC: unknown, so replicated to all 3 remotes");
    vxlan_rx_check(&c, &r1, d, len, 100, &inner);
    CHECK(vxlan_vtep_lookup(&c, MAC_A, 100) == 1 && vxlan_targets(&c, MAC_A, 100, t) == 1 &&
              t[0] == 1,
          "after a frame from it through remote 1: frames to it go to remote 1 alone");
    CHECK(vxlan_targets(&c, BCAST, 100, t) == 3, "a broadcast still goes to all 3");
    uint8_t mcast[6] = { 0x01, 0x00, 0x5e, 0, 0, 1 };
    CHECK(vxlan_targets(&c, mcast, 100, t) == 3, "a multicast goes to all 3");
    vxlan_rx_check(&c, &r2, d, len, 150, &inner);
    CHECK(vxlan_vtep_lookup(&c, MAC_A, 150) == 2 && c.st.vtep_moved == 1,
          "the MAC seen behind remote 2: it moved (vtep_moved 1)");
    CHECK(vxlan_vtep_lookup(&c, MAC_A, 150 + VXLAN_VTEP_AGE_S) == 2 &&
              vxlan_vtep_lookup(&c, MAC_A, 151 + VXLAN_VTEP_AGE_S) == -1 &&
              vxlan_targets(&c, MAC_A, 151 + VXLAN_VTEP_AGE_S, t) == 3,
          "it ages out after %u s: replicated again", VXLAN_VTEP_AGE_S);
    /* Following the switch's --fdb-age, changed at run time (a reload). */
    uint32_t fdb_age = 20;
    c.age_s = &fdb_age;
    vxlan_rx_check(&c, &r1, d, len, 1000, &inner);
    CHECK(vxlan_vtep_lookup(&c, MAC_A, 1020) == 1 && vxlan_vtep_lookup(&c, MAC_A, 1021) == -1,
          "with an --fdb-age of 20 s the MAC ages out after 20 s");
    fdb_age = 600;
    CHECK(vxlan_vtep_lookup(&c, MAC_A, 1021) == 1 && vxlan_vtep_lookup(&c, MAC_A, 1600) == 1 &&
              vxlan_vtep_lookup(&c, MAC_A, 1601) == -1,
          "the age raised to 600 s: the same entry is known again, until 600 s");
    c.age_s = NULL;
    uint8_t grp[6] = { 0x03, 0, 0, 0, 0, 1 }, zero[6] = { 0 };
    dgram(d, 0x08, 42, BCAST, grp, 60);
    vxlan_rx_check(&c, &r1, d, len, 200, &inner);
    dgram(d, 0x08, 42, BCAST, zero, 60);
    vxlan_rx_check(&c, &r1, d, len, 200, &inner);
    CHECK(vxlan_vtep_lookup(&c, grp, 200) == -1 && vxlan_vtep_lookup(&c, zero, 200) == -1,
          "group and all-zero source MACs are not learned");

    /* More MACs than slots: the table stays bounded, counts what it could
     * not take, and what it took is right. */
    unsigned wrong = 0, found = 0;
    uint8_t m[6] = { 0x02, 0x11, 0, 0, 0, 0 };
    for (unsigned i = 0; i < 6000; i++) {
        m[3] = (uint8_t)(i >> 16);
        m[4] = (uint8_t)(i >> 8);
        m[5] = (uint8_t)i;
        vxlan_vtep_learn(&c, m, i % 3, 1000);
    }
    for (unsigned i = 0; i < 6000; i++) {
        m[3] = (uint8_t)(i >> 16);
        m[4] = (uint8_t)(i >> 8);
        m[5] = (uint8_t)i;
        int r = vxlan_vtep_lookup(&c, m, 1000);
        found += r >= 0;
        wrong += r >= 0 && r != (int)(i % 3);
    }
    CHECK(c.st.vtep_full == 6000 - found && found <= VXLAN_VTEP_SLOTS && found > 3000 &&
              wrong == 0,
          "6000 MACs into %u slots: %u learned, all behind the right remote, %llu counted full",
          VXLAN_VTEP_SLOTS, found, (unsigned long long)c.st.vtep_full);
    uint64_t full0 = c.st.vtep_full;
    m[1] = 0x22;
    unsigned later = 0;
    for (unsigned i = 0; i < 1000; i++) {
        m[4] = (uint8_t)(i >> 8);
        m[5] = (uint8_t)i;
        vxlan_vtep_learn(&c, m, 0, 2000);
        later += vxlan_vtep_lookup(&c, m, 2000) == 0;
    }
    CHECK(later == 1000 && c.st.vtep_full == full0,
          "once they aged, 1000 new MACs take their slots (%u learned)", later);
}

/* Splits len bytes with gso and cut; true when the pieces are exactly
 * want[0..nwant) long, cover the buffer in order, and only the last of a
 * cut buffer is reported not whole. */
static bool split_is(size_t len, int gso, bool cut, const size_t *want, size_t nwant)
{
    uint8_t *b = calloc(1, len ? len : 1);
    struct vxlan_split s;
    vxlan_split_init(&s, b, len, gso, cut);
    const uint8_t *dg;
    size_t dl, k = 0, at = 0;
    bool whole, ok = vxlan_split_count(&s) == nwant;
    while (vxlan_split_next(&s, &dg, &dl, &whole)) {
        bool last = at + dl == len;
        ok &= k < nwant && dl == want[k] && dg == b + at && whole == !(cut && last);
        at += dl;
        k++;
        if (k > nwant + 1)
            break;
    }
    ok &= k == nwant && at == len && !vxlan_split_next(&s, &dg, &dl, &whole);
    free(b);
    return ok;
}

static void gro_split(void)
{
    CHECK(split_is(0, 0, false, (size_t[]){ 0 }, 1) && split_is(0, 100, false, (size_t[]){ 0 }, 1),
          "an empty buffer: one datagram of 0 bytes, whatever the GRO size");
    CHECK(split_is(100, 0, false, (size_t[]){ 100 }, 1) &&
              split_is(100, -5, false, (size_t[]){ 100 }, 1) &&
              split_is(100, 101, false, (size_t[]){ 100 }, 1) &&
              split_is(100, 0x7fffffff, false, (size_t[]){ 100 }, 1) &&
              split_is(100, 100, false, (size_t[]){ 100 }, 1),
          "GRO size 0, negative, past the buffer, INT_MAX or the buffer's length: one datagram");
    size_t ones[7] = { 1, 1, 1, 1, 1, 1, 1 };
    CHECK(split_is(7, 1, false, ones, 7), "GRO size 1: one datagram per byte");
    CHECK(split_is(250, 100, false, (size_t[]){ 100, 100, 50 }, 3) &&
              split_is(300, 100, false, (size_t[]){ 100, 100, 100 }, 3),
          "250 bytes at 100: 100, 100, 50; 300 bytes: three of 100");
    CHECK(split_is(250, 100, true, (size_t[]){ 100, 100, 50 }, 3) &&
              split_is(100, 0, true, (size_t[]){ 100 }, 1),
          "a cut buffer (MSG_TRUNC): its last piece is reported not whole");
    /* Random sizes: the pieces always tile the buffer. */
    srand(77);
    unsigned good = 0;
    for (unsigned i = 0; i < 2000; i++) {
        size_t len = (size_t)rand() % 70000;
        int gso = rand() % 3 == 0 ? rand() % 200 - 20 : rand() % 70000;
        struct vxlan_split s;
        static uint8_t b[70000];
        vxlan_split_init(&s, b, len, gso, i % 2);
        const uint8_t *dg;
        size_t dl, at = 0, k = 0, seg = gso > 0 && (size_t)gso <= len ? (size_t)gso : len;
        bool whole, ok = true;
        while (vxlan_split_next(&s, &dg, &dl, &whole)) {
            ok &= dg == b + at && (at + dl == len ? dl <= seg : dl == seg);
            at += dl;
            k++;
        }
        good += ok && at == len && k == vxlan_split_count(&s);
    }
    CHECK(good == 2000, "2000 random lengths and GRO sizes: the pieces tile each buffer (%u)",
          good);
}

/* A datagram of 8 + flen bytes carrying frame number seq (its byte 14),
 * to VNI vni, at d. */
static size_t seq_dgram(uint8_t *d, uint32_t vni, size_t flen, uint8_t seq)
{
    size_t l = dgram(d, 0x08, vni, MAC_B, MAC_A, flen);
    d[VXLAN_HLEN + 14] = seq;
    return l;
}

/* Buffers as three reads might return them, handed out max datagrams at
 * a time: every datagram once, in order, none lost across bursts. */
static void gro_carry(void)
{
    static struct vxlan_core c;
    struct vxlan_cfg cfg = base_cfg();
    union vxlan_sockaddr r0 = from_a(&cfg.remote[0]);
    /* A: 40 coalesced datagrams of 68 bytes; B: one of 100; C: 10 of 68,
     * the 4th with another VNI, the buffer cut after 5 bytes of the 10th;
     * D: 6 pieces of 5 bytes, each too short for a VXLAN header. */
    static uint8_t a[40 * 68], bb[108], cc[9 * 68 + 5], dd[30];
    for (unsigned i = 0; i < 40; i++)
        seq_dgram(a + i * 68, 42, 60, (uint8_t)i);
    seq_dgram(bb, 42, 100, 40);
    for (unsigned i = 0; i < 9; i++)
        seq_dgram(cc + i * 68, i == 3 ? 43 : 42, 60, (uint8_t)(41 + i));
    memcpy(cc + 9 * 68, cc, 5);
    memset(dd, 0x08, sizeof dd);
    const struct vxlan_rxbuf bufs[4] = {
        { a, sizeof a, 68, false, &r0 },
        { bb, sizeof bb, 0, false, &r0 },
        { cc, sizeof cc, 68, true, &r0 },
        { dd, sizeof dd, 5, false, &r0 },
    };
    static const unsigned maxes[] = { 32, 1, 7, 40, 64 };
    for (unsigned m = 0; m < sizeof maxes / sizeof maxes[0]; m++) {
        unsigned max = maxes[m];
        vxlan_core_init(&c, &cfg, 3);
        struct vxlan_rxq q;
        vxlan_rxq_start(&c, &q, bufs, 4);
        struct frame f[64];
        struct iovec fiov[64];
        unsigned frames = 0, handled_all = 0, calls = 0, order_ok = 1, over = 0;
        uint64_t bytes_all = 0;
        while (vxlan_rxq_pending(&q) && calls < 200) {
            unsigned handled = 0;
            uint64_t bytes = 0;
            unsigned n = vxlan_rxq_take(&c, &q, f, fiov, max, 1000, &handled, &bytes);
            calls++;
            over += handled > max || n > handled || handled == 0;
            for (unsigned i = 0; i < n; i++) {
                /* 0..40, then 41..49 without the 4th (44) */
                unsigned want = frames <= 40 ? frames : frames < 44 ? frames : frames + 1;
                order_ok &= f[i].flat[14] == want && f[i].len == (want == 40 ? 100u : 60u);
                frames++;
            }
            handled_all += handled;
            bytes_all += bytes;
        }
        unsigned want_calls = (40 + 1 + 10 + 6 + max - 1) / max;
        CHECK(frames == 49 && handled_all == 57 && order_ok && !over && calls == want_calls &&
                  bytes_all == 48 * 60 + 100 && c.st.rx_unknown_vni == 1 &&
                  c.st.rx_too_long == 1 && c.st.rx_short == 6 && c.st.rx_gro_buffers == 3 &&
                  c.st.rx_gro_segments == 56,
              "4 buffers (40 coalesced, 1 alone, 10 coalesced with a wrong VNI and a cut end, 6 "
              "too short) taken %u at a time: %u calls, 49 frames in order, 57 datagrams, each "
              "refusal counted (frames %u, handled %u, GRO %llu/%llu)",
              max, calls, frames, handled_all, (unsigned long long)c.st.rx_gro_buffers,
              (unsigned long long)c.st.rx_gro_segments);
    }
    /* A stranger's coalesced datagrams are each refused as a stranger's. */
    vxlan_core_init(&c, &cfg, 3);
    union vxlan_sockaddr st = from_ip(ip4(10, 9, 9, 9));
    const struct vxlan_rxbuf sb = { a, 5 * 68, 68, false, &st };
    struct vxlan_rxq q;
    vxlan_rxq_start(&c, &q, &sb, 1);
    struct frame f[8];
    struct iovec fiov[8];
    unsigned handled = 0;
    uint64_t bytes = 0;
    unsigned n = vxlan_rxq_take(&c, &q, f, fiov, 8, 1000, &handled, &bytes);
    CHECK(n == 0 && handled == 5 && c.st.rx_unknown_remote == 5 && !vxlan_rxq_pending(&q),
          "5 coalesced datagrams from a stranger: 5 refused, each counted");
    /* Learning sees every datagram: MACs of each coalesced one. */
    cfg.learn = true;
    vxlan_core_init(&c, &cfg, 3);
    static uint8_t lm[3 * 68];
    for (unsigned i = 0; i < 3; i++) {
        seq_dgram(lm + i * 68, 42, 60, (uint8_t)i);
        lm[i * 68 + VXLAN_HLEN + 11] = (uint8_t)(0x20 + i);   /* source MAC 02:..:2i */
    }
    union vxlan_sockaddr nw = from_ip(ip4(10, 0, 0, 50));
    const struct vxlan_rxbuf lb = { lm, sizeof lm, 68, false, &nw };
    vxlan_rxq_start(&c, &q, &lb, 1);
    n = vxlan_rxq_take(&c, &q, f, fiov, 8, 1000, &handled, &bytes);
    uint8_t m2[6] = { 0x02, 0, 0, 0, 0, 0x22 };
    CHECK(n == 3 && c.nremotes == 3 && c.st.remotes_learned == 1 &&
              vxlan_vtep_lookup(&c, m2, 1000) == 2,
          "learn=on: a new sender's coalesced datagrams add it once, and each one's source MAC "
          "is learned behind it");
}

/* The family vxlan_ip_parse gives text t, and (when it is one) the text
 * vxlan_ip_str gives back; true when they are fam and back. */
static bool parses_as(const char *t, int fam, const char *back)
{
    struct in6_addr a;
    char buf[INET6_ADDRSTRLEN];
    int f = vxlan_ip_parse(t, &a);
    bool ok = f == fam && (f < 0 || strcmp(vxlan_ip_str(&a, buf, sizeof buf), back) == 0);
    if (!ok)
        note("'%s': family %d, '%s'", t, f, f < 0 ? "" : buf);
    return ok;
}

/* IPv6 address from text (it must parse). */
static struct in6_addr ip6(const char *t)
{
    struct in6_addr a;
    memset(&a, 0, sizeof a);
    if (inet_pton(AF_INET6, t, &a) != 1)
        note("bad test address %s", t);
    return a;
}

/* The IPv6 underlay without sockets: addresses as config.c reads them,
 * socket addresses, and a port of family AF_INET6 checking, finding and
 * learning its senders. */
static void ipv6_core(void)
{
    CHECK(parses_as("192.0.2.1", AF_INET, "192.0.2.1") &&
              parses_as("2001:db8::1", AF_INET6, "2001:db8::1") &&
              parses_as("2001:0DB8:0:0:0:0:0:1", AF_INET6, "2001:db8::1") &&
              parses_as("::ffff:192.0.2.1", AF_INET, "192.0.2.1") &&
              parses_as("::ffff:c000:201", AF_INET, "192.0.2.1") &&
              parses_as("::1", AF_INET6, "::1") && parses_as("fd00::7", AF_INET6, "fd00::7") &&
              parses_as("host.example", -1, "") && parses_as("2001:db8::1::2", -1, "") &&
              parses_as("192.0.2.256", -1, "") && parses_as("", -1, "") &&
              parses_as("2001:db8::1%lo", -1, ""),
          "addresses: IPv4, IPv6 (any spelling: written short), v4-mapped as IPv4; names, "
          "bad forms and scope ids refused");
    struct in6_addr a;
    bool uni = true;
    static const char *const yes[] = { "192.0.2.1", "127.0.0.1", "2001:db8::1", "::1",
                                       "fd00::1" };
    static const char *const no[] = { "0.0.0.0", "255.255.255.255", "224.0.0.1", "::",
                                      "ff02::1", "ff0e::5", "fe80::1", "febf::1" };
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        uni &= vxlan_ip_parse(yes[i], &a) > 0 && vxlan_ip_unicast(&a);
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        uni &= vxlan_ip_parse(no[i], &a) > 0 && !vxlan_ip_unicast(&a);
    CHECK(uni, "unicast: global, loopback and unique local addresses of either family; not "
          "unspecified, broadcast, multicast or IPv6 link-local ones");
    union vxlan_sockaddr sa;
    struct in6_addr back, r6 = ip6("2001:db8::2"), m4 = v4(ip4(192, 0, 2, 7));
    vxlan_sockaddr_set(&sa, AF_INET6, &r6, 4789);
    bool sa_ok = sa.in6.sin6_family == AF_INET6 && sa.in6.sin6_port == htons(4789) &&
                 vxlan_sockaddr_ip(&sa, &back) && memcmp(&back, &r6, 16) == 0;
    vxlan_sockaddr_set(&sa, AF_INET, &m4, 8472);
    sa_ok &= sa.in.sin_family == AF_INET && sa.in.sin_port == htons(8472) &&
             sa.in.sin_addr.s_addr == ip4(192, 0, 2, 7) && vxlan_sockaddr_ip(&sa, &back) &&
             memcmp(&back, &m4, 16) == 0;
    sa.sa.sa_family = AF_UNSPEC;
    sa_ok &= !vxlan_sockaddr_ip(&sa, &back);
    CHECK(sa_ok, "socket addresses of both families from and back to the 16-byte form; "
          "AF_UNSPEC has no address");

    static struct vxlan_core c;
    struct vxlan_cfg cfg = base_cfg();
    cfg.family = AF_INET6;
    cfg.local = ip6("2001:db8::1");
    cfg.remote[0] = ip6("2001:db8::2");
    cfg.remote[1] = ip6("2001:db8::3");
    cfg.learn = true;
    vxlan_core_init(&c, &cfg, 5);
    CHECK(c.family == AF_INET6 && c.salen == sizeof(struct sockaddr_in6) &&
              c.remote[1].in6.sin6_family == AF_INET6 &&
              c.remote[1].in6.sin6_port == htons(4789) && vxlan_remote_find(&c, &cfg.remote[1]) == 1,
          "an IPv6 port: its remotes are IPv6 socket addresses at dstport");
    static uint8_t d[VXLAN_HLEN + 100];
    size_t len = dgram(d, 0x08, 42, BCAST, MAC_A, 60), inner;
    union vxlan_sockaddr from = from_a(&cfg.remote[1]);
    struct vxlan_stats before = c.st;
    CHECK(vxlan_rx_check(&c, &from, d, len, 100, &inner) == VXLAN_RX_OK &&
              only_bumped(&c.st, &before, NONE) && vxlan_vtep_lookup(&c, MAC_A, 100) == 1,
          "a datagram from IPv6 remote 2001:db8::3 passes; its inner MAC is learned behind it");
    struct in6_addr nw = ip6("2001:db8:5::9");
    from = from_a(&nw);
    dgram(d, 0x08, 42, BCAST, MAC_B, 60);   /* another MAC: MAC_A has not moved */
    before = c.st;
    char txt[INET6_ADDRSTRLEN];
    CHECK(vxlan_rx_check(&c, &from, d, len, 100, &inner) == VXLAN_RX_OK &&
              only_bumped(&c.st, &before, FIELD(remotes_learned)) && c.nremotes == 3 &&
              vxlan_remote_find(&c, &nw) == 2 && c.remote[2].in6.sin6_family == AF_INET6 &&
              c.remote[2].in6.sin6_port == htons(4789) &&
              strcmp(vxlan_ip_str(&c.rip[2], txt, sizeof txt), "2001:db8:5::9") == 0,
          "learn=on: a new IPv6 sender is learned, keyed on its address, sent to at dstport");
    static const char *const refused[] = { "ff02::1", "fe80::1", "::" };
    unsigned ok = 0;
    for (unsigned i = 0; i < 3; i++) {
        struct in6_addr x = ip6(refused[i]);
        from = from_a(&x);
        before = c.st;
        ok += vxlan_rx_check(&c, &from, d, len, 100, &inner) == VXLAN_RX_UNKNOWN_REMOTE &&
              only_bumped(&c.st, &before, FIELD(rx_unknown_remote));
    }
    /* A v4-mapped sender on an IPv6 socket, and an IPv4 one. */
    struct in6_addr m = v4(ip4(10, 0, 0, 2));
    vxlan_sockaddr_set(&from, AF_INET6, &m, 4789);
    before = c.st;
    ok += vxlan_rx_check(&c, &from, d, len, 100, &inner) == VXLAN_RX_UNKNOWN_REMOTE &&
          only_bumped(&c.st, &before, FIELD(rx_unknown_remote));
    from = from_ip(ip4(10, 0, 0, 2));
    before = c.st;
    ok += vxlan_rx_check(&c, &from, d, len, 100, &inner) == VXLAN_RX_UNKNOWN_REMOTE &&
          only_bumped(&c.st, &before, FIELD(rx_unknown_remote));
    CHECK(ok == 5 && c.nremotes == 3,
          "not learned, refused as unknown remotes: multicast, link-local and unspecified IPv6 "
          "senders, a v4-mapped one and an IPv4 one (%u of 5)", ok);
    /* An IPv4 port refuses IPv6 senders, even one whose address maps its
     * remote's. */
    cfg = base_cfg();
    cfg.learn = true;
    vxlan_core_init(&c, &cfg, 5);
    vxlan_sockaddr_set(&from, AF_INET6, &cfg.remote[0], 4789);
    from.in6.sin6_family = AF_INET6;
    before = c.st;
    CHECK(vxlan_rx_check(&c, &from, d, len, 100, &inner) == VXLAN_RX_UNKNOWN_REMOTE &&
              only_bumped(&c.st, &before, FIELD(rx_unknown_remote)) && c.nremotes == 2,
          "an IPv4 port (learn=on) refuses an IPv6 sender and does not learn it");
}

/* An Ethernet/IPv4/TCP or UDP frame of total len bytes (l4: 6 or 17). */
static size_t ip_frame(uint8_t *f, size_t len, uint8_t l4, uint16_t sport, uint16_t dport,
                       uint16_t frag)
{
    memset(f, 0, len);
    memcpy(f, MAC_B, 6);
    memcpy(f + 6, MAC_A, 6);
    put16(f + 12, 0x0800);
    uint8_t *ip = f + 14;
    ip[0] = 0x45;
    put16(ip + 2, (uint16_t)(len - 14));
    put16(ip + 6, frag);
    ip[8] = 64;
    ip[9] = l4;
    memcpy(ip + 12, (uint8_t[]){ 192, 0, 2, 1 }, 4);
    memcpy(ip + 16, (uint8_t[]){ 192, 0, 2, 2 }, 4);
    put16(ip + 20, sport);
    put16(ip + 22, dport);
    for (size_t i = 54; i < len; i++)
        f[i] = (uint8_t)(i * 7);
    return len;
}

static void flow_hash(void)
{
    /* The values of fixed frames, as before the IPv6 underlay came: the
     * outer family does not enter the hash, so a flow keeps its source
     * port (the socket the hash picks) across the change. */
    uint8_t t4[128], t6[86];
    memset(t4, 0, sizeof t4);
    memcpy(t4, "\x02\0\0\0\0\x0b\x02\0\0\0\0\x0a\x08\x00", 14);
    t4[14] = 0x45;
    t4[14 + 9] = 6;
    memcpy(t4 + 26, "\xc0\0\x02\x01\xc0\0\x02\x02", 8);
    put16(t4 + 34, 1000);
    put16(t4 + 36, 80);
    memset(t6, 0, sizeof t6);
    memcpy(t6, "\x02\0\0\0\0\x0b\x02\0\0\0\0\x0a\x86\xdd", 14);
    t6[14] = 0x60;
    t6[20] = 17;
    t6[14 + 8 + 15] = 1;
    t6[14 + 24 + 15] = 2;
    put16(t6 + 54, 5000);
    put16(t6 + 56, 53);
    CHECK(vxlan_flow_hash(t4, 128) == 790365095u && vxlan_flow_hash(t6, 86) == 1371061267u &&
              vxlan_flow_hash((const uint8_t *)"\xff\xff\xff\xff\xff\xff\x02\0\0\0\0\x0a"
                                               "\x08\x06", 14) == 782888942u &&
              vxlan_flow_hash((const uint8_t *)"abc", 3) == 482950588u,
          "the flow hash of fixed IPv4 TCP, IPv6 UDP, ARP and short frames is unchanged");
    uint8_t f[128], g[128];
    ip_frame(f, 128, 6, 1000, 80, 0);
    memcpy(g, f, 128);
    g[100] ^= 0xff;   /* payload */
    put16(g + 14 + 4, 99);   /* IP ID */
    CHECK(vxlan_flow_hash(f, 128) == vxlan_flow_hash(g, 128) &&
              vxlan_flow_hash(f, 128) == vxlan_flow_hash(f, 64),
          "same flow, other payload, IP ID or length seen: same hash");
    ip_frame(g, 128, 6, 1001, 80, 0);
    CHECK(vxlan_flow_hash(f, 128) != vxlan_flow_hash(g, 128), "another source port: other hash");
    ip_frame(g, 128, 17, 1000, 80, 0);
    CHECK(vxlan_flow_hash(f, 128) != vxlan_flow_hash(g, 128), "UDP, not TCP: other hash");
    /* Fragments of one datagram: no ports in the hash, so all of them
     * (the first has ports, the rest have payload there) stay together. */
    ip_frame(f, 128, 17, 1000, 80, 0x2000);
    ip_frame(g, 128, 17, 5555, 6666, 0x0010);
    CHECK(vxlan_flow_hash(f, 128) == vxlan_flow_hash(g, 128),
          "IPv4 fragments (MF, or an offset) hash without ports");
    unsigned used[VXLAN_TX_SOCKS] = { 0 }, distinct = 0;
    for (unsigned i = 0; i < 64; i++) {
        ip_frame(f, 128, 6, (uint16_t)(30000 + i), 443, 0);
        used[vxlan_flow_hash(f, 128) % VXLAN_TX_SOCKS]++;
    }
    for (unsigned s = 0; s < VXLAN_TX_SOCKS; s++)
        distinct += used[s] > 0;
    CHECK(distinct >= 6, "64 TCP flows over %u sockets use %u of them", VXLAN_TX_SOCKS, distinct);
    /* One VLAN tag is skipped to the IP header. */
    uint8_t v[132];
    ip_frame(f, 128, 6, 1000, 80, 0);
    memcpy(v, f, 12);
    put16(v + 12, 0x8100);
    put16(v + 14, 5);
    memcpy(v + 16, f + 12, 116);
    uint8_t w[132];
    memcpy(w, v, 132);
    put16(w + 18 + 20, 1001);
    CHECK(vxlan_flow_hash(v, 132) != vxlan_flow_hash(w, 132),
          "VLAN-tagged: the ports behind the tag count");
    uint8_t e6[86];
    memset(e6, 0, sizeof e6);
    put16(e6 + 12, 0x86dd);
    e6[14] = 0x60;
    e6[14 + 6] = 6;
    uint8_t e6b[86];
    memcpy(e6b, e6, sizeof e6);
    put16(e6b + 54 + 2, 8080);
    CHECK(vxlan_flow_hash(e6, 86) != vxlan_flow_hash(e6b, 86), "IPv6 TCP ports count");
    for (size_t l = 0; l < 70; l++)
        (void)vxlan_flow_hash(e6, l);   /* short frames: bounds (ASan) */
}

/* ---- with sockets on the loopback ---------------------------------------------- */

static struct port *vport;
static int peer = -1;      /* the remote VTEP: at_peer:dstport */
static uint16_t dport;
/* The addresses of the socket half: the port's, its remote's (the peer
 * socket) and a stranger's; 127.0.0.1-3, or 2001:db8::1-3. */
static int family;
static struct in6_addr at_port, at_peer, at_stranger;

/* The port of socket address sa (host order). */
static uint16_t sa_port(const union vxlan_sockaddr *sa)
{
    return ntohs(sa->sa.sa_family == AF_INET6 ? sa->in6.sin6_port : sa->in.sin_port);
}

/* Address a at port (host order) in the socket half's family. */
static union vxlan_sockaddr sa_at(const struct in6_addr *a, uint16_t port)
{
    union vxlan_sockaddr sa;
    vxlan_sockaddr_set(&sa, family, a, port);
    return sa;
}

/* The size of the socket half's addresses. */
static socklen_t sa_len(void)
{
    return family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

/* A UDP socket bound to a:port (0: any). */
static int udp_bound(const struct in6_addr *a, uint16_t port)
{
    int s = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    union vxlan_sockaddr sa = sa_at(a, port);
    if (s >= 0 && bind(s, &sa.sa, sa_len()) < 0) {
        close(s);
        s = -1;
    }
    return s;
}

/* Opens the port on at_port and the peer on at_peer, at a UDP port free on
 * both; false if the loopback cannot do it. */
static bool loop_setup(uint32_t mtu)
{
    for (unsigned attempt = 0; attempt < 20; attempt++) {
        int probe = udp_bound(&at_port, 0);
        union vxlan_sockaddr sa;
        socklen_t sl = sizeof sa;
        if (probe < 0 || getsockname(probe, &sa.sa, &sl) < 0) {
            if (probe >= 0)
                close(probe);
            return false;
        }
        close(probe);
        dport = sa_port(&sa);
        peer = udp_bound(&at_peer, dport);
        if (peer < 0)
            continue;
        vport = calloc(1, sizeof(*vport));
        snprintf(vport->name, sizeof vport->name, "vx0");
        vport->tap_fd = -1;
        struct vxlan_cfg cfg = base_cfg();
        cfg.family = family;
        cfg.local = at_port;
        cfg.remote[0] = at_peer;
        cfg.nremotes = 1;
        cfg.dstport = dport;
        cfg.mtu = mtu;
        char err[256];
        if (vxlan_open(vport, &cfg, err, sizeof err) == 0)
            return true;
        note("vxlan_open: %s", err);
        free(vport);
        close(peer);
    }
    return false;
}

/* The next datagram at the peer within ms: its length (and source port),
 * or -1. */
static int peer_recv(uint8_t *buf, size_t cap, uint16_t *sport, int ms)
{
    struct pollfd p = { .fd = peer, .events = POLLIN };
    if (poll(&p, 1, ms) <= 0)
        return -1;
    union vxlan_sockaddr sa;
    socklen_t sl = sizeof sa;
    ssize_t n = recvfrom(peer, buf, cap, MSG_DONTWAIT, &sa.sa, &sl);
    if (sport)
        *sport = sa_port(&sa);
    return (int)n;
}

static void peer_drain(void)
{
    uint8_t b[2048];
    while (peer_recv(b, sizeof b, NULL, 20) >= 0)
        ;
}

/* A frame in a buffer of exactly len bytes, described over pieces
 * iovecs (split evenly), with header h. */
struct heapframe {
    uint8_t *mem;
    struct iovec iov[4];
    struct frame f;
};

static void heapframe_make(struct heapframe *hf, const uint8_t *data, size_t len, unsigned pieces,
                           const struct virtio_net_hdr *h)
{
    hf->mem = malloc(len);
    memcpy(hf->mem, data, len);
    size_t at = 0;
    for (unsigned i = 0; i < pieces; i++) {
        size_t l = i + 1 == pieces ? len - at : len / pieces;
        hf->iov[i] = (struct iovec){ hf->mem + at, l };
        at += l;
    }
    memset(&hf->f, 0, sizeof hf->f);
    hf->f.iov = hf->iov;
    hf->f.niov = pieces;
    hf->f.len = len;
    hf->f.flat = pieces == 1 ? hf->mem : NULL;
    hf->f.hdr = *h;
    memcpy(hf->f.eth, data, 14);
}

static uint16_t csum16(const uint8_t *p, size_t len, uint32_t s)
{
    for (size_t i = 0; i + 1 < len; i += 2)
        s += (uint32_t)(p[i] << 8 | p[i + 1]);
    if (len & 1)
        s += (uint32_t)p[len - 1] << 8;
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return (uint16_t)~s;
}

/* True when f (an Ethernet/IPv4/TCP frame of len bytes) has right IP and
 * TCP checksums. */
static bool tcp4_sums_ok(const uint8_t *f, size_t len)
{
    const uint8_t *ip = f + 14;
    size_t ihl = (size_t)(ip[0] & 15) * 4, tl = get16(ip + 2);
    if (len < 14 + ihl + 20 || tl != len - 14 || csum16(ip, ihl, 0) != 0)
        return false;
    uint32_t pseudo = (uint32_t)get16(ip + 12) + get16(ip + 14) + get16(ip + 16) + get16(ip + 18) +
                      6 + (uint32_t)(tl - ihl);
    return csum16(ip + ihl, tl - ihl, pseudo) == 0;
}

/* A TCP/IPv4 frame of len bytes whose checksum field holds the pseudo-
 * header sum (a NEEDS_CSUM frame as a guest sends it). */
static void partial_tcp(uint8_t *f, size_t len, uint16_t sport, uint32_t seq)
{
    ip_frame(f, len, 6, sport, 80, 0);
    uint8_t *ip = f + 14, *tcp = ip + 20;
    put16(ip + 10, 0);
    put16(ip + 10, csum16(ip, 20, 0));
    tcp[4] = (uint8_t)(seq >> 24);
    tcp[5] = (uint8_t)(seq >> 16);
    tcp[6] = (uint8_t)(seq >> 8);
    tcp[7] = (uint8_t)seq;
    tcp[12] = 5 << 4;
    tcp[13] = 0x18;
    uint32_t pseudo = (uint32_t)get16(ip + 12) + get16(ip + 14) + get16(ip + 16) + get16(ip + 18) +
                      6 + (uint32_t)(len - 34);
    while (pseudo >> 16)
        pseudo = (pseudo & 0xffff) + (pseudo >> 16);
    put16(tcp + 16, (uint16_t)pseudo);   /* not inverted: the partial sum */
}

static void send_side(void)
{
    static uint8_t f[70000], buf[70000];
    struct heapframe hf;
    static const struct virtio_net_hdr plain;
    uint16_t sp = 0, sp2 = 0;

    /* A plain frame, in one piece. */
    ip_frame(f, 200, 17, 5000, 53, 0);
    heapframe_make(&hf, f, 200, 1, &plain);
    vxlan_send(vport, &hf.f, 1);
    int n = peer_recv(buf, sizeof buf, &sp, 1000);
    CHECK(n == 208 && memcmp(buf, "\x08\0\0\0\0\0\x2a\0", 8) == 0 && memcmp(buf + 8, f, 200) == 0,
          "a 200-byte frame arrives as a 208-byte datagram: VXLAN header (VNI 42), the frame "
          "intact (got %d)", n);
    free(hf.mem);

    /* A partial checksum, the frame in three pieces (the field in the
     * middle one): completed, the guest's buffer left as it was. */
    partial_tcp(f, 1000, 7000, 1);
    heapframe_make(&hf, f, 1000, 3, &(struct virtio_net_hdr){ .flags =
                   VIRTIO_NET_HDR_F_NEEDS_CSUM, .csum_start = 34, .csum_offset = 16 });
    vxlan_send(vport, &hf.f, 1);
    n = peer_recv(buf, sizeof buf, NULL, 1000);
    CHECK(n == 1008 && tcp4_sums_ok(buf + 8, 1000) && memcmp(hf.mem, f, 1000) == 0,
          "a NEEDS_CSUM TCP frame in 3 pieces: its checksum completed in flight, the source "
          "buffer untouched (got %d)", n);
    free(hf.mem);

    /* TSO: 4000 payload bytes at gso_size 1000 make 4 segments. */
    size_t tlen = 54 + 4000;
    partial_tcp(f, tlen, 7001, 1000000);
    struct virtio_net_hdr gso = { .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .csum_start = 34,
                                  .csum_offset = 16, .gso_type = VIRTIO_NET_HDR_GSO_TCPV4,
                                  .gso_size = 1000, .hdr_len = 54 };
    heapframe_make(&hf, f, tlen, 2, &gso);
    struct vxlan_stats g0, g1;
    struct vxlan_info gin;
    vxlan_get_stats(vport, &g0, &gin);
    vxlan_send(vport, &hf.f, 1);
    vxlan_get_stats(vport, &g1, &gin);
    unsigned good = 0;
    uint16_t first_port = 0;
    bool one_port = true;
    for (unsigned i = 0; i < 4; i++) {
        uint16_t p = 0;
        n = peer_recv(buf, sizeof buf, &p, 1000);
        uint32_t seq = (uint32_t)buf[8 + 38] << 24 | (uint32_t)buf[8 + 39] << 16 |
                       (uint32_t)buf[8 + 40] << 8 | buf[8 + 41];
        good += n == 8 + 1054 && tcp4_sums_ok(buf + 8, 1054) && seq == 1000000 + i * 1000 &&
                memcmp(buf + 8 + 54, f + 54 + i * 1000, 1000) == 0;
        if (i == 0)
            first_port = p;
        one_port &= p == first_port;
    }
    CHECK(good == 4 && one_port && peer_recv(buf, sizeof buf, NULL, 50) < 0,
          "a 4054-byte TSO frame (gso_size 1000): 4 segments with right checksums, sequence "
          "numbers and payload, from one source port (%u good)", good);
    /* Three segments of 1062 bytes and a shorter last one, to one remote:
     * one UDP GSO send (the peer's kernel cut it back into datagrams). */
    CHECK(g1.tx_gso_sends == g0.tx_gso_sends + 1 && g1.tx_gso_datagrams == g0.tx_gso_datagrams + 4 &&
              g1.tx_gso_off == 0,
          "the 4 segments left in one UDP GSO send (%llu sends, %llu datagrams)",
          (unsigned long long)(g1.tx_gso_sends - g0.tx_gso_sends),
          (unsigned long long)(g1.tx_gso_datagrams - g0.tx_gso_datagrams));
    free(hf.mem);

    /* Over the MTU (1450: the largest frame is 1468 bytes). */
    struct vxlan_stats s0, s1;
    struct vxlan_info in;
    vxlan_get_stats(vport, &s0, &in);
    uint64_t drops0 = vport->tap.tx_drops;
    ip_frame(f, 1469, 17, 1, 2, 0);
    heapframe_make(&hf, f, 1469, 1, &plain);
    vxlan_send(vport, &hf.f, 1);
    free(hf.mem);
    gso.gso_size = 1415;   /* 54 + 1415 = 1469 */
    partial_tcp(f, tlen, 7002, 1);
    heapframe_make(&hf, f, tlen, 1, &gso);
    vxlan_send(vport, &hf.f, 1);
    free(hf.mem);
    gso.gso_size = 1414;   /* 1468: fits */
    heapframe_make(&hf, f, tlen, 1, &gso);
    vxlan_send(vport, &hf.f, 1);
    free(hf.mem);
    vxlan_get_stats(vport, &s1, &in);
    unsigned got = 0;
    while (peer_recv(buf, sizeof buf, NULL, 100) >= 0)
        got++;
    CHECK(s1.tx_too_big == s0.tx_too_big + 2 && vport->tap.tx_drops == drops0 + 2 && got == 3,
          "a 1469-byte frame and a TSO frame cut in 1469-byte segments: dropped, counted "
          "too big; at 1468 bytes the segments go (%u datagrams)", got);

    /* Source ports: one flow keeps one, many flows use several. */
    unsigned ports_seen = 0;
    uint16_t seen[VXLAN_TX_SOCKS];
    bool stable = true;
    for (unsigned i = 0; i < 32; i++) {
        ip_frame(f, 100, 6, (uint16_t)(20000 + i), 80, 0);
        heapframe_make(&hf, f, 100, 1, &plain);
        vxlan_send(vport, &hf.f, 1);
        vxlan_send(vport, &hf.f, 1);
        free(hf.mem);
        if (peer_recv(buf, sizeof buf, &sp, 1000) < 0 || peer_recv(buf, sizeof buf, &sp2, 1000) < 0)
            stable = false;
        stable &= sp == sp2;
        bool known = false;
        for (unsigned k = 0; k < ports_seen; k++)
            known |= seen[k] == sp;
        if (!known && ports_seen < VXLAN_TX_SOCKS)
            seen[ports_seen++] = sp;
    }
    CHECK(stable && ports_seen >= 4,
          "32 TCP flows, two frames each: each flow keeps its source port, %u ports used",
          ports_seen);

    /* A batch of mixed frames, broadcast: in order. */
    struct heapframe many[40];
    struct frame fr[40];
    for (unsigned i = 0; i < 40; i++) {
        ip_frame(f, 64 + i * 30, 17, 9, 9, 0);
        memcpy(f, BCAST, 6);
        f[60] = (uint8_t)i;
        heapframe_make(&many[i], f, 64 + i * 30, 1 + i % 3, &plain);
        fr[i] = many[i].f;
    }
    vxlan_send(vport, fr, 40);
    unsigned inorder = 0;
    for (unsigned i = 0; i < 40; i++) {
        n = peer_recv(buf, sizeof buf, NULL, 1000);
        inorder += n == (int)(8 + 64 + i * 30) && buf[8 + 60] == (uint8_t)i;
        free(many[i].mem);
    }
    CHECK(inorder == 40, "40 frames of one flow in one call (3 batches' worth of pieces): %u in "
          "order, intact", inorder);
    peer_drain();
}

static void recv_side(void)
{
    static uint8_t d[VXLAN_HLEN + 2000];
    struct frame f[VXLAN_RX_BURST];
    unsigned nread = 0;
    bool empty = false;
    union vxlan_sockaddr to = sa_at(&at_port, dport);
    int stranger = udp_bound(&at_stranger, 0);
    size_t len = dgram(d, 0x08, 42, MAC_B, MAC_A, 100);
    sendto(peer, d, len, 0, &to.sa, sa_len());
    dgram(d, 0x08, 7, MAC_B, MAC_A, 100);
    sendto(peer, d, len, 0, &to.sa, sa_len());
    dgram(d, 0x08, 42, MAC_B, MAC_A, 100);
    if (stranger >= 0)
        sendto(stranger, d, len, 0, &to.sa, sa_len());
    len = dgram(d, 0x08, 42, MAC_B, MAC_A, 1469);
    sendto(peer, d, len, 0, &to.sa, sa_len());
    len = dgram(d, 0x08, 42, MAC_B, MAC_A, 1468);
    d[VXLAN_HLEN + 20] = 0x5a;
    sendto(peer, d, len, 0, &to.sa, sa_len());
    struct pollfd p = { .fd = vport->tap_fd, .events = POLLIN };
    poll(&p, 1, 1000);
    usleep(20000);
    struct vxlan_stats s;
    struct vxlan_info in;
    unsigned n = vxlan_recv_burst(vport, f, VXLAN_RX_BURST, &nread, &empty);
    vxlan_get_stats(vport, &s, &in);
    CHECK(nread == 5 && n == 2 && empty && f[0].len == 100 && memcmp(f[0].eth, MAC_B, 6) == 0 &&
              f[1].len == 1468 && f[1].flat[20] == 0x5a && f[0].hdr.flags == 0 &&
              s.rx_unknown_vni == 1 && s.rx_unknown_remote == (stranger >= 0) &&
              s.rx_too_long == 1 && vport->tap.rx_drops == 2 + (stranger >= 0),
          "5 datagrams read in one burst: 2 frames out (100 and 1468 bytes), a wrong VNI, a "
          "stranger and a 1469-byte frame refused and counted "
          "(read %u, out %u)", nread, n);
    CHECK(in.vtep_entries == 1 && vxlan_recv_burst(vport, f, 4, &nread, &empty) == 0 && empty,
          "the sender's MAC is in the port's table; the socket is empty now");
    if (stranger >= 0)
        close(stranger);
}

/* Sends len bytes at d from socket s to the port as one UDP GSO send of
 * seg-byte datagrams (the last may be shorter); false if refused. */
static bool gso_send(int s, const uint8_t *d, size_t len, uint16_t seg)
{
    union vxlan_sockaddr to = sa_at(&at_port, dport);
    struct iovec iov = { (void *)d, len };
    union {
        char buf[CMSG_SPACE(sizeof(uint16_t))];
        struct cmsghdr align;
    } cm;
    struct msghdr m = { .msg_name = &to, .msg_namelen = sa_len(), .msg_iov = &iov,
                        .msg_iovlen = 1, .msg_control = cm.buf, .msg_controllen = sizeof cm.buf };
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_UDP;
    c->cmsg_type = UDP_SEGMENT;
    c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
    memcpy(CMSG_DATA(c), &seg, sizeof seg);
    ssize_t r = sendmsg(s, &m, 0);
    if (r != (ssize_t)len)
        note("UDP GSO send of %zu bytes: %s", len, r < 0 ? strerror(errno) : "short");
    return r == (ssize_t)len;
}

/* Everything the port has: the frames' bytes appended to out (each
 * frame's length in lens), read in bursts of max until empty; the number
 * of frames. */
static unsigned drain_port(unsigned max, uint8_t *out, size_t *lens, unsigned room,
                           unsigned *calls, unsigned *datagrams)
{
    struct frame f[VXLAN_RX_BURST];
    unsigned n = 0, nread = 0;
    bool empty = false;
    struct pollfd p = { .fd = vport->tap_fd, .events = POLLIN };
    poll(&p, 1, 1000);
    usleep(20000);
    *calls = *datagrams = 0;
    for (unsigned guard = 0; !empty && guard < 100; guard++) {
        unsigned got = vxlan_recv_burst(vport, f, max, &nread, &empty);
        ++*calls;
        *datagrams += nread;
        for (unsigned i = 0; i < got && n < room; i++, n++) {
            memcpy(out, f[i].flat, f[i].len);
            lens[n] = f[i].len;
            out += f[i].len;
        }
    }
    return n;
}

/* UDP GSO sends from the peer: with UDP_GRO on the port's socket the
 * loopback hands each up whole, and the port splits it. */
static void recv_gro(void)
{
    static uint8_t d[64 * 1600], out[64 * 1600];
    size_t lens[80];
    unsigned calls, dgs;
    struct vxlan_stats s0, s1;
    struct vxlan_info in;
    vxlan_get_stats(vport, &s0, &in);
    if (s0.rx_gro_off)
        note("the kernel refused UDP_GRO: the datagrams come one by one");
    /* 40 datagrams of 108 bytes (100-byte frames numbered 0..39), more
     * than one burst of 32 takes. */
    for (unsigned i = 0; i < 40; i++) {
        seq_dgram(d + i * 108, 42, 100, (uint8_t)i);
        d[i * 108 + VXLAN_HLEN + 50] = (uint8_t)(i * 3);
    }
    uint64_t pk0 = vport->tap.rx_packets;
    bool sent = gso_send(peer, d, 40 * 108, 108);
    unsigned n = drain_port(VXLAN_RX_BURST, out, lens, 80, &calls, &dgs);
    vxlan_get_stats(vport, &s1, &in);
    unsigned exact = 0;
    for (unsigned i = 0; i < n && i < 40; i++)
        exact += lens[i] == 100 && memcmp(out + i * 100, d + i * 108 + VXLAN_HLEN, 100) == 0;
    uint64_t bufs = s1.rx_gro_buffers - s0.rx_gro_buffers,
             segs = s1.rx_gro_segments - s0.rx_gro_segments;
    note("40 datagrams in one GSO send: decap_gro_buffers +%llu, decap_gro_segments +%llu, "
         "%u receive calls", (unsigned long long)bufs, (unsigned long long)segs, calls);
    CHECK(sent && n == 40 && exact == 40 && dgs == 40 && vport->tap.rx_packets == pk0 + 40,
          "40 datagrams sent as one UDP GSO send: all 40 frames reach the switch, in order, "
          "byte for byte (%u frames, %u exact)", n, exact);
    if (!s0.rx_gro_off)
        CHECK(bufs == 1 && segs == 40 && segs > bufs && calls >= 2,
              "... coalesced: one buffer of 40 datagrams, handed out over %u bursts of at most "
              "32 (none dropped for want of room)", calls);

    /* 10 datagrams, the 4th of another VNI, the last shorter: each checked. */
    size_t at = 0;
    for (unsigned i = 0; i < 10; i++)
        at += seq_dgram(d + at, i == 3 ? 7 : 42, i == 9 ? 60 : 100, (uint8_t)(100 + i));
    vxlan_get_stats(vport, &s0, &in);
    uint64_t drops0 = vport->tap.rx_drops;
    sent = gso_send(peer, d, at, 108);
    n = drain_port(VXLAN_RX_BURST, out, lens, 80, &calls, &dgs);
    vxlan_get_stats(vport, &s1, &in);
    bool order = n == 9;
    for (unsigned i = 0, off = 0; order && i < 9; off += (unsigned)lens[i], i++)
        order = out[off + 14] == 100 + (i < 3 ? i : i + 1) && lens[i] == (i == 8 ? 60u : 100u);
    CHECK(sent && order && dgs == 10 && s1.rx_unknown_vni == s0.rx_unknown_vni + 1 &&
              vport->tap.rx_drops == drops0 + 1,
          "10 coalesced datagrams, one of another VNI, the last shorter: 9 frames in order, the "
          "stray one refused and counted");

    /* Coalesced datagrams too long for the port, too short for a header,
     * and from a stranger: each refused on its own. */
    vxlan_get_stats(vport, &s0, &in);
    at = 0;
    for (unsigned i = 0; i < 3; i++)
        at += seq_dgram(d + at, 42, 1469, (uint8_t)i);
    bool s_long = gso_send(peer, d, at, (uint16_t)(VXLAN_HLEN + 1469));
    memset(d, 0x08, 20);
    bool s_short = gso_send(peer, d, 20, 5);
    int stranger = udp_bound(&at_stranger, 0);
    at = 0;
    for (unsigned i = 0; i < 5; i++)
        at += seq_dgram(d + at, 42, 100, (uint8_t)i);
    bool s_str = stranger >= 0 && gso_send(stranger, d, at, 108);
    n = drain_port(VXLAN_RX_BURST, out, lens, 80, &calls, &dgs);
    vxlan_get_stats(vport, &s1, &in);
    CHECK(s_long && s_short && s_str && n == 0 && dgs == 12 &&
              s1.rx_too_long == s0.rx_too_long + 3 && s1.rx_short == s0.rx_short + 4 &&
              s1.rx_unknown_remote == s0.rx_unknown_remote + 5,
          "coalesced: 3 datagrams over the MTU, 4 of 5 bytes, 5 from a stranger: all 12 "
          "refused, each counted (too long +%llu, short +%llu, unknown remote +%llu)",
          (unsigned long long)(s1.rx_too_long - s0.rx_too_long),
          (unsigned long long)(s1.rx_short - s0.rx_short),
          (unsigned long long)(s1.rx_unknown_remote - s0.rx_unknown_remote));
    if (stranger >= 0)
        close(stranger);
}

/* The socket half in the current family: what the port sends, what it
 * receives, UDP GRO; false when the port cannot be opened. */
static bool socket_half(const char *what)
{
    if (!loop_setup(1450))
        return false;
    note("the socket half over %s (UDP port %u)", what, dport);
    union vxlan_sockaddr sa;
    socklen_t sl = sizeof sa;
    struct in6_addr r0;
    CHECK(getsockname(vport->tap_fd, &sa.sa, &sl) == 0 && sa.sa.sa_family == family &&
              vxlan_remote_addr(vport, 0, &r0) && memcmp(&r0, &at_peer, sizeof r0) == 0,
          "%s: the port's socket is of its family, its remote the peer's address", what);
    send_side();
    recv_side();
    recv_gro();
    vxlan_close(vport);
    CHECK(vport->vxlan == NULL && vport->tap_fd == -1, "vxlan_close forgets the sockets");
    free(vport);
    close(peer);
    return true;
}

/* IPv6 in 16-byte form: 2001:db8::last. */
static struct in6_addr doc6(uint8_t last)
{
    struct in6_addr a;
    memset(&a, 0, sizeof a);
    a.s6_addr[0] = 0x20;
    a.s6_addr[1] = 0x01;
    a.s6_addr[2] = 0x0d;
    a.s6_addr[3] = 0xb8;
    a.s6_addr[15] = last;
    return a;
}

/* The kernel's struct in6_ifreq (linux/ipv6.h, which clashes with
 * netinet/in.h): an address for SIOCSIFADDR on an IPv6 socket. */
struct in6_ifreq_k {
    struct in6_addr addr;
    uint32_t prefixlen;
    int ifindex;
};

/* True once an IPv6 UDP socket can be bound to a (within 2 s): a new
 * address is tentative until the kernel's address work has run, even on
 * a loopback, where it skips duplicate address detection. */
static bool bindable6(const struct in6_addr *a)
{
    for (unsigned i = 0; i < 200; i++) {
        int s = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        union vxlan_sockaddr sa;
        vxlan_sockaddr_set(&sa, AF_INET6, a, 0);
        bool ok = s >= 0 && bind(s, &sa.sa, sizeof(sa.in6)) == 0;
        if (s >= 0)
            close(s);
        if (ok)
            return true;
        usleep(10000);
    }
    return false;
}

/* A network namespace of our own (root only) whose loopback is up with
 * 2001:db8::1-3; false when it cannot be had. */
static bool v6_netns(void)
{
    if (geteuid() != 0 || unshare(CLONE_NEWNET) < 0)
        return false;
    int s = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
    bool ok = s >= 0 && ioctl(s, SIOCGIFFLAGS, &ifr) == 0;
    ifr.ifr_flags |= IFF_UP;
    ok = ok && ioctl(s, SIOCSIFFLAGS, &ifr) == 0;
    struct in6_ifreq_k r = { .prefixlen = 128, .ifindex = (int)if_nametoindex("lo") };
    for (uint8_t i = 1; ok && i <= 3; i++) {
        r.addr = doc6(i);
        ok = ioctl(s, SIOCSIFADDR, &r) == 0;
    }
    if (!ok)
        note("IPv6 addresses on the namespace's loopback: %s", strerror(errno));
    for (uint8_t i = 1; ok && i <= 3; i++) {
        struct in6_addr a = doc6(i);
        ok = bindable6(&a);
        if (!ok)
            note("2001:db8::%u stays unusable", i);
    }
    if (s >= 0)
        close(s);
    return ok;
}

int main(void)
{
    log_set_level(LOG_WARN);
    header_bytes();
    hostile_datagrams();
    remote_learning();
    mac_table();
    gro_split();
    gro_carry();
    ipv6_core();
    flow_hash();
    family = AF_INET;
    at_port = v4(ip4(127, 0, 0, 1));
    at_peer = v4(ip4(127, 0, 0, 2));
    at_stranger = v4(ip4(127, 0, 0, 3));
    if (!socket_half("IPv4 on the loopback (127.0.0.1-3)")) {
        note("no UDP on 127.0.0.1/127.0.0.2 here: the socket half is left out");
        CHECK(0, "UDP sockets on the loopback");
    }
    /* Last: it leaves the host's network namespace for good. */
    if (v6_netns()) {
        family = AF_INET6;
        at_port = doc6(1);
        at_peer = doc6(2);
        at_stranger = doc6(3);
        CHECK(socket_half("IPv6 on a namespace's loopback (2001:db8::1-3)"),
              "a port on 2001:db8::1 opens");
    } else {
        note("not root, or no network namespace: the IPv6 socket half is left out");
    }
    return check_done("test_vxlan");
}
