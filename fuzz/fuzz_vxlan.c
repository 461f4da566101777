/*
 * fuzz_vxlan.c - libFuzzer target: a VXLAN port's receive checks
 * (src/daemon/vxlan.c: vxlan_rx_check, and behind it the remote list with
 * learn=on and the inner MAC -> remote table) on fuzzed datagrams from
 * fuzzed senders, without sockets.  After each datagram, the frame it
 * passed (if any) goes through what a sender does with it: vxlan_targets
 * for its destination and vxlan_flow_hash.
 *
 * Every datagram is copied into a heap buffer of exactly its length, so a
 * read past it is an ASan report.  Checked after each one: a passed
 * datagram is at least a VXLAN and an Ethernet header long, its inner frame
 * is all of the rest and at most the port's largest frame, and its VNI is
 * the port's; exactly one refusal counter moved for a refused one and none
 * for a passed one; targets are valid remote indexes, one or all of them.
 * At the end: at most VXLAN_MAX_REMOTES remotes, each of the port's family
 * (IPv4 or IPv6) and a unicast address, every MAC table entry names one of
 * them.
 *
 * With bit 3 of the first byte (GRO mode), each record is instead a buffer
 * as a read with UDP GRO returns it: split by the port's splitter
 * (vxlan_split_*) and handed out a burst at a time (vxlan_rxq_*), several
 * buffers per read.  Checked: the pieces tile the buffer, all as long as
 * the GRO size but the last; every datagram is handed out exactly once,
 * in order, no burst over its limit, and each frame lies inside its
 * buffer; refusal counters moved by the datagrams that did not pass; the
 * GRO counters by the buffers that carried several and their datagrams.
 *
 * Input: a 3-byte configuration, then datagrams until the end.
 *   0  bit 0: learn=on; bits 1-2: configured remotes (0-3; 0 means
 *      learn=on whatever bit 0 says: a port needs one or the other);
 *      bit 3: GRO mode; bit 4: an IPv6 port (local 2001:db8::64, remotes
 *      2001:db8::1-3; else 10.0.0.100 and 10.0.0.1-3)
 *   1  MTU: 68 + byte * 32 (68..8228)
 *   2  VNI low byte (the VNI is 0x0000NN)
 * A datagram: u8 sender (bits 0-5: 10.0.0.(bits + 1), or 2001:db8::(bits +
 * 1), when bit 7 is clear, else the next 4 (16) bytes are the address;
 * bit 6: the sender is of the other family than the port),
 * u8 clock step in seconds (multiplied by 8, so entries age), u16 length
 * (little-endian, modulo 10000), that many bytes (zeros past the input).
 * A GRO-mode buffer: the same sender and clock bytes, u16 GRO size (read
 * as a signed 16-bit int: 0 and negative sizes too), u8 flags (bit 0: cut,
 * MSG_TRUNC; bits 1-5: burst limit - 1; bit 6: another buffer of the same
 * read follows, up to 4), u16 length (whole, up to 65535), the bytes.
 */
#include "fuzz_common.h"

#include <arpa/inet.h>
#include <assert.h>

#include "net.h"
#include "vxlan.h"

static struct vxlan_core core;

/* Sum of the receive-refusal counters. */
static uint64_t refusals(const struct vxlan_stats *s)
{
    return s->rx_short + s->rx_bad_flags + s->rx_unknown_vni + s->rx_too_long +
           s->rx_unknown_remote;
}

/* Checks what the port made of one datagram d of len bytes. */
static void check_one(const uint8_t *d, size_t len, enum vxlan_rx_rc rc, size_t inner,
                      uint64_t before, uint32_t now)
{
    uint64_t after = refusals(&core.st);
    if (rc != VXLAN_RX_OK) {
        assert(after == before + 1);
        return;
    }
    assert(after == before);
    assert(len >= VXLAN_HLEN + 14 && inner == len - VXLAN_HLEN && inner <= core.max_frame);
    assert((d[0] & VXLAN_FLAG_I) && ((uint32_t)d[4] << 16 | (uint32_t)d[5] << 8 | d[6]) == core.vni);
    uint8_t t[VXLAN_MAX_REMOTES];
    unsigned n = vxlan_targets(&core, d + VXLAN_HLEN, now, t);
    assert(n == 1 || n == core.nremotes);
    for (unsigned i = 0; i < n; i++)
        assert(t[i] < core.nremotes);
    (void)vxlan_flow_hash(d + VXLAN_HLEN, inner);
}

/* Every MAC table entry names a remote that exists. */
static void check_table(void)
{
    assert(core.nremotes <= VXLAN_MAX_REMOTES);
    /* Every remote, learned ones too, is of the port's family, its socket
     * address and its 16-byte address the same one. */
    for (unsigned i = 0; i < core.nremotes; i++) {
        struct in6_addr a;
        assert(core.remote[i].sa.sa_family == core.family &&
               vxlan_sockaddr_ip(&core.remote[i], &a) && memcmp(&a, &core.rip[i], 16) == 0 &&
               vxlan_ip_is_v4(&a) == (core.family == AF_INET) && vxlan_ip_unicast(&a));
    }
    for (unsigned i = 0; i < VXLAN_VTEP_SLOTS; i++) {
        uint64_t w = core.vtep[i];
        assert(!w || ((w & 0xffff) >= 1 && (w & 0xffff) <= core.nremotes));
    }
}

/* The sender a record names (see the input format). */
/* Address n of the fuzzed family: 10.0.0.n, or 2001:db8::n. */
static struct in6_addr nth_addr(int family, uint32_t n)
{
    struct in6_addr a;
    memset(&a, 0, sizeof(a));
    if (family == AF_INET) {
        a.s6_addr[10] = a.s6_addr[11] = 0xff;
        a.s6_addr[12] = 10;
    } else {
        a.s6_addr[0] = 0x20;
        a.s6_addr[1] = 0x01;
        a.s6_addr[2] = 0x0d;
        a.s6_addr[3] = 0xb8;
    }
    a.s6_addr[14] = (uint8_t)(n >> 8);
    a.s6_addr[15] = (uint8_t)n;
    return a;
}

static union vxlan_sockaddr read_sender(struct cursor *c)
{
    uint8_t who = cur_u8(c);
    int fam = (who & 0x40) ? (core.family == AF_INET ? AF_INET6 : AF_INET) : core.family;
    struct in6_addr a = nth_addr(fam, 1u + (who & 0x3f));
    if ((who & 0x80) && fam == AF_INET)
        cur_bytes(c, &a.s6_addr[12], 4);
    else if (who & 0x80)
        cur_bytes(c, &a, 16);
    union vxlan_sockaddr from;
    vxlan_sockaddr_set(&from, fam, &a, 4789);
    return from;
}

/* Walks a buffer's split on its own: the pieces tile it, all as long as
 * the GRO size but the last, only the last of a cut one not whole; how
 * many there are. */
static size_t check_split(const uint8_t *d, size_t len, int gso, bool cut)
{
    struct vxlan_split s;
    vxlan_split_init(&s, d, len, gso, cut);
    size_t seg = gso > 0 && (size_t)gso <= len ? (size_t)gso : len, at = 0, k = 0, dl;
    const uint8_t *dg;
    bool whole;
    while (vxlan_split_next(&s, &dg, &dl, &whole)) {
        assert(dg == d + at && at + dl <= len);
        assert(at + dl == len ? dl <= seg : dl == seg);
        assert(whole == !(cut && at + dl == len));
        at += dl;
        k++;
    }
    assert(at == len && k == vxlan_split_count(&s) && k >= 1);
    return k;
}

/* One read of up to 4 buffers (GRO mode), handed out as the port does. */
static void gro_read(struct cursor *c, uint32_t *now)
{
    struct vxlan_rxbuf b[4];
    union vxlan_sockaddr from[4];
    uint8_t *mem[4];
    unsigned nb = 0, max = 1;
    size_t want = 0, coalesced = 0, coalesced_segs = 0;
    bool more = true;
    while (more && nb < 4) {
        from[nb] = read_sender(c);
        *now += (uint32_t)cur_u8(c) * 8u;
        int gso = (int16_t)cur_u16(c);
        uint8_t fl = cur_u8(c);
        size_t len = cur_u16(c);
        mem[nb] = malloc(len ? len : 1);
        if (!mem[nb])
            break;
        cur_bytes(c, mem[nb], len);
        b[nb] = (struct vxlan_rxbuf){ mem[nb], len, gso, fl & 1, &from[nb] };
        size_t k = check_split(mem[nb], len, gso, fl & 1);
        want += k;
        if (k > 1) {
            coalesced++;
            coalesced_segs += k;
        }
        if (nb == 0)
            max = ((fl >> 1) & 31) + 1u;
        more = (fl & 0x40) && cur_left(c);
        nb++;
    }
    struct vxlan_stats s0 = core.st;
    struct vxlan_rxq q;
    vxlan_rxq_start(&core, &q, b, nb);
    struct frame f[32];
    struct iovec fiov[32];
    size_t got = 0, frames = 0;
    unsigned last_buf = 0;
    const uint8_t *last_at = NULL;
    while (vxlan_rxq_pending(&q)) {
        unsigned handled = 0;
        uint64_t bytes = 0, sum = 0;
        unsigned n = vxlan_rxq_take(&core, &q, f, fiov, max, *now, &handled, &bytes);
        assert(handled >= 1 && handled <= max && n <= handled);
        for (unsigned i = 0; i < n; i++) {
            /* Inside a buffer, after the frame before it. */
            unsigned at = last_buf;
            while (at < nb && !(f[i].flat >= b[at].d && f[i].flat < b[at].d + b[at].len))
                at++;
            assert(at < nb && f[i].flat + f[i].len <= b[at].d + b[at].len);
            assert(at > last_buf || !last_at || f[i].flat > last_at);
            assert(f[i].len <= core.max_frame && f[i].len >= 14);
            last_buf = at;
            last_at = f[i].flat;
            sum += f[i].len;
        }
        assert(sum == bytes);
        got += handled;
        frames += n;
        assert(got <= want);
    }
    assert(got == want);
    assert(refusals(&core.st) - refusals(&s0) == want - frames);
    assert(core.st.rx_gro_buffers - s0.rx_gro_buffers == coalesced);
    assert(core.st.rx_gro_segments - s0.rx_gro_segments == coalesced_segs);
    for (unsigned i = 0; i < nb; i++)
        free(mem[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int once;
    if (!once) {
        fuzz_log_init();
        once = 1;
    }
    struct cursor c = { data, size };
    uint8_t b0 = cur_u8(&c), b1 = cur_u8(&c), b2 = cur_u8(&c);
    struct vxlan_cfg cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.family = (b0 & 16) ? AF_INET6 : AF_INET;
    cfg.local = nth_addr(cfg.family, 100);
    cfg.nremotes = (b0 >> 1) & 3;
    for (unsigned i = 0; i < cfg.nremotes; i++)
        cfg.remote[i] = nth_addr(cfg.family, 1 + i);
    cfg.learn = (b0 & 1) || cfg.nremotes == 0;
    cfg.mtu = 68u + b1 * 32u;
    cfg.vni = b2;
    cfg.dstport = 4789;
    vxlan_core_init(&core, &cfg, 0x5eed);
    uint32_t now = 1000;
    while (cur_left(&c) && (b0 & 8))
        gro_read(&c, &now);
    while (cur_left(&c)) {
        union vxlan_sockaddr from = read_sender(&c);
        now += (uint32_t)cur_u8(&c) * 8u;
        size_t len = cur_u16(&c) % 10000u;
        uint8_t *d = malloc(len ? len : 1);
        if (!d)
            return 0;
        cur_bytes(&c, d, len);
        uint64_t before = refusals(&core.st);
        size_t inner = 0;
        enum vxlan_rx_rc rc = vxlan_rx_check(&core, &from, d, len, now, &inner);
        check_one(d, len, rc, inner, before, now);
        free(d);
    }
    check_table();
    return 0;
}
