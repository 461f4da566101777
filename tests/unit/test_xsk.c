/*
 * test_xsk.c - the AF_XDP socket of the uplink's mode=xdp (xsk.c):
 *  - ring arithmetic across the 2^32 wrap, and insane indexes;
 *  - RX descriptor checks with hostile addresses and lengths, completion
 *    address checks;
 *  - the XDP program's instruction array;
 *  - the receive and transmit paths against rings in ordinary memory
 *    (xsk_open_memory), the test playing the kernel: frames handed over
 *    and given back to the fill ring, hostile descriptors skipped and
 *    counted (their frames still given back), an impossible producer
 *    index, transmit frames running out and coming back through the
 *    completion ring, hostile completions; with indexes that wrap;
 *  - as root, in a network namespace of its own: the real thing on its
 *    loopback interface (generic XDP): a UDP datagram sent to 127.0.0.1
 *    is redirected by the program to the socket, a frame sent through the
 *    TX ring comes back through the RX ring, a second socket finds the
 *    program attached and is refused, closing detaches it, and native mode
 *    on loopback is refused with a clear reason.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_xdp.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "xsk.h"

#define MASK (XSK_RING_SIZE - 1)
#define FS ((uint64_t)XSK_FRAME_SIZE)

/* ---- the pure parts --------------------------------------------------------- */

static void ring_arithmetic(void)
{
    CHECK(xsk_ring_used(10, 4, 2048) == 6, "6 entries between 4 and 10");
    CHECK(xsk_ring_used(3, 0xfffffffeu, 2048) == 5, "5 entries across the 2^32 wrap");
    CHECK(xsk_ring_used(7, 7, 2048) == 0, "none when equal");
    CHECK(xsk_ring_used(2048, 0, 2048) == 2048, "a full ring: 2048");
    CHECK(xsk_ring_used(2049, 0, 2048) == UINT32_MAX, "2049 on a 2048-entry ring: insane");
    CHECK(xsk_ring_used(0, 1, 2048) == UINT32_MAX, "an index behind ours: insane");
    CHECK(xsk_ring_used(0x7ffu, 0xfffff800u, 2048) == UINT32_MAX,
          "4095 across the wrap: insane");
    CHECK(xsk_ring_used(0x3ffu, 0xfffffc00u, 2048) == 2047, "2047 across the wrap");
}

static const struct xsk_layout LAY = { (uint64_t)XSK_FRAMES * XSK_FRAME_SIZE, XSK_FRAME_SIZE,
                                       XSK_RX_FRAMES };

/* One descriptor check; the frame it would give back in *frame. */
static bool desc(uint64_t addr, uint32_t len, uint32_t options, uint64_t *frame)
{
    return xsk_rx_desc_ok(&LAY, addr, len, options, frame);
}

static void descriptor_checks(void)
{
    uint64_t fr, end = LAY.umem_len, rx_end = (uint64_t)XSK_RX_FRAMES * FS;
    CHECK(desc(256, 60, 0, &fr) && fr == 0, "frame 0 at its headroom: good, frame 0");
    CHECK(desc(5 * FS + 256, 1514, 0, &fr) && fr == 5 * FS, "1514 bytes in frame 5: good");
    CHECK(desc(7 * FS, 2048, 0, &fr) && fr == 7 * FS, "a whole frame: good");
    CHECK(desc(rx_end - FS + 256, 1792, 0, &fr) && fr == rx_end - FS,
          "the last receive frame, to its end: good");
    CHECK(!desc(256, 13, 0, &fr) && fr == 0, "13 bytes: refused, the frame still given back");
    CHECK(!desc(256, 0, 0, &fr) && fr == 0, "0 bytes: refused");
    CHECK(!desc(256, 1793, 0, &fr) && fr == 0, "1793 bytes after 256: past the frame, refused");
    CHECK(!desc(FS - 10, 20, 0, &fr) && fr == 0, "across two frames: refused");
    CHECK(!desc(256, 60, 1, &fr) && fr == 0, "options set (multi-buffer): refused");
    CHECK(!desc(rx_end + 256, 60, 0, &fr) && fr == UINT64_MAX,
          "a transmit frame: refused, nothing given back");
    CHECK(!desc(end, 60, 0, &fr) && fr == UINT64_MAX, "at the UMEM's end: refused");
    CHECK(!desc(end - 10, 60, 0, &fr) && fr == UINT64_MAX, "running past the UMEM: refused");
    CHECK(!desc(UINT64_MAX - 5, 60, 0, &fr) && fr == UINT64_MAX, "addr near 2^64: refused");
    CHECK(!desc(256, UINT32_MAX, 0, &fr) && fr == 0, "len 2^32-1: refused");
    CHECK(!desc(1ull << 63, 60, 0, &fr) && fr == UINT64_MAX,
          "an unaligned-mode offset in the high bits: refused");
    /* Every descriptor accepted lies inside one receive frame. */
    unsigned bad = 0, ok = 0;
    srand(99);
    for (unsigned i = 0; i < 200000; i++) {
        uint64_t a = ((uint64_t)rand() << 31 ^ (uint64_t)rand()) % (end + 3 * FS);
        if (i % 3 == 0)
            a = (uint64_t)(rand() % (int)(XSK_FRAMES + 2)) * FS + (uint64_t)(rand() % 300);
        uint32_t l = (uint32_t)(rand() % 2200);
        if (!desc(a, l, 0, &fr))
            continue;
        ok++;
        bad += a + l > rx_end || a / FS != (a + l - 1) / FS || l < 14 || fr != a / FS * FS;
    }
    CHECK(ok > 1000 && bad == 0, "200000 random descriptors: %u accepted, %u of them outside "
          "one receive frame", ok, bad);

    CHECK(xsk_tx_addr_ok(&LAY, rx_end), "the first transmit frame: a good completion");
    CHECK(xsk_tx_addr_ok(&LAY, end - FS), "the last transmit frame: good");
    CHECK(!xsk_tx_addr_ok(&LAY, 0), "a receive frame: a bad completion");
    CHECK(!xsk_tx_addr_ok(&LAY, rx_end + 8), "inside a frame: bad");
    CHECK(!xsk_tx_addr_ok(&LAY, end), "the UMEM's end: bad");
    CHECK(!xsk_tx_addr_ok(&LAY, UINT64_MAX & ~(FS - 1)), "far beyond: bad");
}

static void program(void)
{
    struct bpf_insn p[XSK_PROG_LEN];
    memset(p, 0xa5, sizeof p);
    xsk_prog_build(p, 77);
    CHECK(p[0].code == (BPF_LDX | BPF_MEM | BPF_W) && p[0].dst_reg == BPF_REG_2 &&
              p[0].src_reg == BPF_REG_1 && p[0].off == 16 && p[0].imm == 0,
          "insn 0: r2 = 32-bit load of ctx->rx_queue_index (offset 16 of struct xdp_md)");
    CHECK(p[1].code == (BPF_LD | BPF_DW | BPF_IMM) && p[1].dst_reg == BPF_REG_1 &&
              p[1].src_reg == BPF_PSEUDO_MAP_FD && p[1].imm == 77 && p[1].off == 0,
          "insn 1: r1 = the map (64-bit immediate, pseudo map fd 77)");
    CHECK(p[2].code == 0 && p[2].dst_reg == 0 && p[2].src_reg == 0 && p[2].off == 0 &&
              p[2].imm == 0, "insn 2: the immediate's upper half, all zero");
    CHECK(p[3].code == (BPF_ALU64 | BPF_MOV | BPF_K) && p[3].dst_reg == BPF_REG_3 &&
              p[3].imm == XDP_PASS && p[3].src_reg == 0,
          "insn 3: r3 = XDP_PASS (the action when the queue has no socket)");
    CHECK(p[4].code == (BPF_JMP | BPF_CALL) && p[4].imm == BPF_FUNC_redirect_map &&
              p[4].src_reg == 0 && p[4].dst_reg == 0,
          "insn 4: call bpf_redirect_map (helper %d)", BPF_FUNC_redirect_map);
    CHECK(p[5].code == (BPF_JMP | BPF_EXIT) && p[5].dst_reg == 0 && p[5].imm == 0,
          "insn 5: exit with the helper's result");
    unsigned hi = 0;
    for (unsigned i = 0; i < XSK_PROG_LEN; i++)
        hi += p[i].dst_reg > BPF_REG_3 || (p[i].src_reg > BPF_REG_3 && i != 1);
    CHECK(hi == 0, "only r0..r3 used (r1 the context, r2 and r3 the helper's arguments)");
}

/* ---- the paths against rings in memory ------------------------------------------ */

/* The kernel's side of the fill ring: the next address given to it. */
static uint64_t kern_fill_take(struct xsk_view *v)
{
    uint32_t c = *v->fill.consumer;
    uint64_t a = ((uint64_t *)v->fill.desc)[c & MASK];
    __atomic_store_n(v->fill.consumer, c + 1, __ATOMIC_RELEASE);
    return a;
}

/* The kernel's side of the RX ring: a descriptor published. */
static void kern_rx(struct xsk_view *v, uint64_t addr, uint32_t len, uint32_t options)
{
    uint32_t p = *v->rx.producer;
    struct xdp_desc *d = &((struct xdp_desc *)v->rx.desc)[p & MASK];
    d->addr = addr;
    d->len = len;
    d->options = options;
    __atomic_store_n(v->rx.producer, p + 1, __ATOMIC_RELEASE);
}

/* Fill ring entries the kernel may take. */
static uint32_t fill_avail(const struct xsk_view *v)
{
    return *v->fill.producer - *v->fill.consumer;
}

static void memory_rx(uint32_t start)
{
    struct xsk_view v;
    struct xsk *x = xsk_open_memory(start, &v);
    if (!CHECK(x != NULL, "an xsk over rings in memory (indexes from 0x%x)", start))
        return;
    CHECK(fill_avail(&v) == XSK_RX_FRAMES && ((uint64_t *)v.fill.desc)[start & MASK] == 0 &&
              ((uint64_t *)v.fill.desc)[(start + 5) & MASK] == 5 * FS,
          "every receive frame starts on the fill ring, in order");
    struct xsk_rx_frame f[64];
    unsigned taken;
    bool empty;
    CHECK(xsk_rx_burst(x, f, 64, &taken, &empty) == 0 && taken == 0 && empty,
          "an empty RX ring: nothing, empty");
    xsk_rx_release(x);

    /* Three frames: the kernel puts them after the headroom. */
    uint64_t a[3];
    for (unsigned i = 0; i < 3; i++) {
        a[i] = kern_fill_take(&v);
        memset(v.umem + a[i] + 256, 0x10 + (int)i, 60 + i);
        kern_rx(&v, a[i] + 256, 60 + i, 0);
    }
    unsigned n = xsk_rx_burst(x, f, 64, &taken, &empty);
    bool ok = n == 3 && taken == 3 && empty;
    for (unsigned i = 0; ok && i < 3; i++)
        ok = f[i].data == v.umem + a[i] + 256 && f[i].len == 60 + i && f[i].data[0] == 0x10 + i;
    CHECK(ok, "3 frames: handed over in place, in order (%u, taken %u)", n, taken);
    uint32_t fill_before = fill_avail(&v);
    CHECK(*v.rx.consumer == start, "nothing given back before xsk_rx_release");
    xsk_rx_release(x);
    CHECK(*v.rx.consumer == start + 3 && fill_avail(&v) == fill_before + 3 &&
              ((uint64_t *)v.fill.desc)[(*v.fill.producer - 1) & MASK] == a[2],
          "released: RX consumer +3, the three frames back on the fill ring (frame starts)");

    /* A burst limited by max. */
    for (unsigned i = 0; i < 10; i++)
        kern_rx(&v, kern_fill_take(&v) + 256, 100, 0);
    n = xsk_rx_burst(x, f, 4, &taken, &empty);
    CHECK(n == 4 && taken == 4 && !empty, "10 waiting, max 4: 4, not empty");
    xsk_rx_release(x);
    n = xsk_rx_burst(x, f, 64, &taken, &empty);
    CHECK(n == 6 && empty, "then the other 6, empty");
    xsk_rx_release(x);

    /* Hostile descriptors among good ones. */
    uint64_t rx_end = (uint64_t)XSK_RX_FRAMES * FS;
    struct { uint64_t addr; uint32_t len, options; bool ours; } h[] = {
        { 0, 60, 0, false },                    /* placeholder: a good one */
        { LAY.umem_len + 100, 60, 0, false },   /* beyond the UMEM */
        { UINT64_MAX - 8, 64, 0, false },       /* wraps */
        { rx_end + 256, 60, 0, false },         /* a transmit frame */
        { 0, 13, 0, true },                     /* runt (in a receive frame) */
        { 0, 1900, 0, true },                   /* past its frame */
        { 0, 60, 2, true },                     /* options */
        { 0, 60, 0, false },                    /* a good one */
    };
    for (unsigned i = 0; i < 8; i++) {
        if (i == 0 || h[i].ours || i == 7)
            h[i].addr = kern_fill_take(&v) + 256;
        kern_rx(&v, h[i].addr, h[i].len, h[i].options);
    }
    fill_before = fill_avail(&v);
    n = xsk_rx_burst(x, f, 64, &taken, &empty);
    struct xsk_stats st;
    xsk_get_stats(x, &st);
    CHECK(n == 2 && taken == 8 && f[0].data == v.umem + h[0].addr &&
              f[1].data == v.umem + h[7].addr && st.rx_bad_ring == 6,
          "8 descriptors, 6 hostile: the 2 good handed over, rx_bad_ring %llu",
          (unsigned long long)st.rx_bad_ring);
    xsk_rx_release(x);
    CHECK(fill_avail(&v) == fill_before + 5 && *v.rx.consumer == *v.rx.producer,
          "their 5 receive frames back on the fill ring, the 3 foreign addresses not");

    /* A producer index the ring cannot hold. */
    __atomic_store_n(v.rx.producer, *v.rx.consumer + XSK_RING_SIZE + 1, __ATOMIC_RELEASE);
    n = xsk_rx_burst(x, f, 64, &taken, &empty);
    xsk_get_stats(x, &st);
    CHECK(n == 0 && taken == 0 && st.rx_bad_ring == 7,
          "an RX producer 2049 ahead: nothing read, counted");
    xsk_rx_release(x);
    xsk_close(x);
}

/* The kernel's side of the TX ring: takes every descriptor, checks it,
 * completes the first ncomp of them; returns how many it took. */
static unsigned kern_tx(struct xsk_view *v, unsigned ncomp, unsigned *bad)
{
    unsigned n = 0;
    while (*v->tx.consumer != __atomic_load_n(v->tx.producer, __ATOMIC_ACQUIRE)) {
        uint32_t c = *v->tx.consumer;
        struct xdp_desc d = ((struct xdp_desc *)v->tx.desc)[c & MASK];
        *bad += !xsk_tx_addr_ok(&v->lay, d.addr) || d.len == 0 || d.len > XSK_MTU_FRAME ||
                v->umem[d.addr] != (uint8_t)(d.len & 0xff);
        __atomic_store_n(v->tx.consumer, c + 1, __ATOMIC_RELEASE);
        if (n < ncomp) {
            uint32_t p = *v->comp.producer;
            ((uint64_t *)v->comp.desc)[p & MASK] = d.addr;
            __atomic_store_n(v->comp.producer, p + 1, __ATOMIC_RELEASE);
        }
        n++;
    }
    return n;
}

/* Queues frames of len bytes (first byte len & 0xff) until n or no frame. */
static unsigned send_n(struct xsk *x, unsigned n, uint32_t len)
{
    unsigned k = 0;
    xsk_tx_begin(x);
    for (; k < n; k++) {
        uint8_t *b = xsk_tx_alloc(x);
        if (!b)
            break;
        memset(b, (int)(len & 0xff), len);
        xsk_tx_put(x, len);
    }
    xsk_tx_end(x);
    return k;
}

static void memory_tx(uint32_t start)
{
    struct xsk_view v;
    struct xsk *x = xsk_open_memory(start, &v);
    if (!CHECK(x != NULL, "an xsk over rings in memory (indexes from 0x%x)", start))
        return;
    unsigned bad = 0;
    CHECK(send_n(x, 10, 100) == 10 && *v.tx.producer == start + 10,
          "10 frames queued and published");
    CHECK(kern_tx(&v, 10, &bad) == 10 && bad == 0, "the kernel finds 10 good descriptors");
    /* 2048 transmit frames: 10 came back, the rest are free. */
    unsigned got = send_n(x, 5000, 1514);
    struct xsk_stats st;
    xsk_get_stats(x, &st);
    CHECK(got == XSK_TX_FRAMES && st.tx_ring_full == 1,
          "2048 frames go, the 2049th finds none (tx_ring_full %llu)",
          (unsigned long long)st.tx_ring_full);
    CHECK(kern_tx(&v, 100, &bad) == XSK_TX_FRAMES && bad == 0,
          "the kernel takes 2048 good ones and completes 100");
    CHECK(send_n(x, 5000, 64) == 100, "100 frames free again, no more");
    kern_tx(&v, 0, &bad);

    /* Hostile completions: a receive frame, an unaligned one, beyond. */
    uint64_t hostile[] = { 0, LAY.umem_len - FS + 1, LAY.umem_len, UINT64_MAX };
    for (unsigned i = 0; i < 4; i++) {
        uint32_t p = *v.comp.producer;
        ((uint64_t *)v.comp.desc)[p & MASK] = hostile[i];
        __atomic_store_n(v.comp.producer, p + 1, __ATOMIC_RELEASE);
    }
    got = send_n(x, 10, 64);
    xsk_get_stats(x, &st);
    CHECK(got == 0 && st.tx_bad_ring == 4, "4 hostile completions: none taken as free frames "
          "(tx_bad_ring %llu)", (unsigned long long)st.tx_bad_ring);
    /* A completion producer far ahead. */
    __atomic_store_n(v.comp.producer, *v.comp.consumer + XSK_RING_SIZE + 7, __ATOMIC_RELEASE);
    got = send_n(x, 10, 64);
    xsk_get_stats(x, &st);
    CHECK(got == 0 && st.tx_bad_ring == 5, "a completion producer 2055 ahead: ignored, counted");

    xsk_close(x);

    /* Kicks: the kernel asks for one, and refuses it (no socket here:
     * EBADF, as an interface that is down gives ENETDOWN).  Frames stay on
     * the ring; a later transmission kicks again even if it queues none. */
    x = xsk_open_memory(start, &v);
    if (!CHECK(x != NULL, "another xsk over rings in memory"))
        return;
    __atomic_store_n(v.tx.flags, XDP_RING_NEED_WAKEUP, __ATOMIC_RELEASE);
    got = send_n(x, 5000, 64);
    xsk_get_stats(x, &st);
    CHECK(got == XSK_TX_FRAMES && st.tx_kick_errors == 1 && *v.tx.consumer == start,
          "the kernel asks for a kick and refuses it: counted once, the frames stay queued");
    got = send_n(x, 1, 64);
    xsk_get_stats(x, &st);
    CHECK(got == 0 && st.tx_kick_errors == 2,
          "the next transmission finds no frame but kicks the waiting ones again");
    __atomic_store_n(v.tx.flags, 0, __ATOMIC_RELEASE);
    bad = 0;
    CHECK(kern_tx(&v, XSK_TX_FRAMES, &bad) == XSK_TX_FRAMES && bad == 0 &&
              send_n(x, 5000, 64) == XSK_TX_FRAMES,
          "once the kernel takes and completes them, all 2048 frames are free again");

    /* A frame the caller gives up on stays for the next. */
    struct xsk_view w;
    struct xsk *y = xsk_open_memory(start, &w);
    if (y) {
        xsk_tx_begin(y);
        uint8_t *b1 = xsk_tx_alloc(y);
        uint8_t *b2 = xsk_tx_alloc(y);
        xsk_tx_put(y, XSK_MTU_FRAME + 1);   /* too long: not queued */
        xsk_tx_end(y);
        CHECK(b1 && b1 == b2 && *w.tx.producer == start,
              "an allocated frame not queued is handed out again; a too-long one never goes");
        xsk_close(y);
    }
    xsk_close(x);
}

/* ---- the real thing, on a loopback interface of our own ----------------------- */

/* Waits up to ms for a frame on x that match accepts; true if one came. */
static bool wait_rx(struct xsk *x, int ms, bool (*match)(const struct xsk_rx_frame *, void *),
                    void *arg)
{
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        struct pollfd p = { .fd = xsk_fd(x), .events = POLLIN };
        poll(&p, 1, 20);
        struct xsk_rx_frame f[64];
        unsigned taken;
        bool empty, hit = false;
        unsigned n = xsk_rx_burst(x, f, 64, &taken, &empty);
        for (unsigned i = 0; i < n && !hit; i++)
            hit = match(&f[i], arg);
        xsk_rx_release(x);
        if (hit)
            return true;
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 > ms)
            return false;
    }
}

/* A UDP/IPv4 datagram to port 9 carrying "lwvhost-xsk". */
static bool is_udp9(const struct xsk_rx_frame *f, void *arg)
{
    (void)arg;
    const uint8_t *d = f->data;
    return f->len >= 42 + 11 && d[12] == 0x08 && d[13] == 0x00 && d[23] == 17 &&
           (d[36] << 8 | d[37]) == 9 && memcmp(d + 42, "lwvhost-xsk", 11) == 0;
}

/* The test frame sent through the TX ring. */
static bool is_ours(const struct xsk_rx_frame *f, void *arg)
{
    const uint8_t *want = arg;
    return f->len == 200 && memcmp(f->data, want, 200) == 0;
}

/* Brings lo up in the namespace. */
static bool lo_up(void)
{
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
    bool ok = s >= 0 && ioctl(s, SIOCGIFFLAGS, &ifr) == 0;
    ifr.ifr_flags |= IFF_UP;
    ok = ok && ioctl(s, SIOCSIFFLAGS, &ifr) == 0;
    if (s >= 0)
        close(s);
    return ok;
}

static void live_loopback(void)
{
    if (geteuid() != 0) {
        note("not root: the loopback part is left out");
        return;
    }
    if (!CHECK(unshare(CLONE_NEWNET) == 0 && lo_up(), "a network namespace of our own, lo up"))
        return;
    char err[300];
    struct xsk_info info;
    struct xsk *x = NULL;
    struct xsk_config c = { "lo", if_nametoindex("lo"), 0, true, false };
    CHECK(xsk_open(&x, &c, &info, err, sizeof err) < 0 && strstr(err, "native") &&
              strstr(err, "xdp_mode=generic"),
          "xdp_mode=native on lo: refused, saying why: %s", err);
    c.queue = 1;
    c.generic = true;
    c.native = false;
    CHECK(xsk_open(&x, &c, &info, err, sizeof err) < 0 && strstr(err, "queue=1"),
          "queue 1 of lo: refused: %s", err);
    c.queue = 0;
    bool opened = xsk_open(&x, &c, &info, err, sizeof err) == 0;
    if (!CHECK(opened && !info.native && !info.zerocopy, "AF_XDP on lo, generic XDP, copy mode: %s",
               opened ? "open" : err))
        return;

    /* The stack's datagram, redirected by the program. */
    int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(9),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    bool sent = u >= 0 && sendto(u, "lwvhost-xsk", 11, 0, (struct sockaddr *)&to, sizeof to) == 11;
    CHECK(sent && wait_rx(x, 2000, is_udp9, NULL),
          "a UDP datagram to 127.0.0.1:9 arrives on the RX ring");

    /* A frame through the TX ring comes back on lo's receive side. */
    uint8_t fr[200];
    memset(fr, 0, 12);
    fr[12] = 0x88;
    fr[13] = 0xb5;
    for (unsigned i = 14; i < sizeof fr; i++)
        fr[i] = (uint8_t)(i * 7);
    xsk_tx_begin(x);
    uint8_t *b = xsk_tx_alloc(x);
    if (b) {
        memcpy(b, fr, sizeof fr);
        xsk_tx_put(x, sizeof fr);
    }
    xsk_tx_end(x);
    CHECK(b && wait_rx(x, 2000, is_ours, fr), "a 200-byte frame sent through the TX ring comes "
          "back through lo and the RX ring");
    struct xsk_stats st;
    xsk_get_stats(x, &st);
    CHECK(st.tx_kick_errors == 0 && st.rx_bad_ring == 0 && st.tx_invalid_descs == 0,
          "no kick errors, bad descriptors or invalid TX descriptors");

    /* Somebody else's program is never replaced. */
    struct xsk *y = NULL;
    CHECK(xsk_open(&y, &c, &info, err, sizeof err) < 0 &&
              strstr(err, "XDP program attached already"),
          "a second socket on lo finds the program and is refused: %s", err);
    xsk_close(x);
    x = NULL;
    bool again = xsk_open(&x, &c, &info, err, sizeof err) == 0;
    CHECK(again, "closed, the program is gone: a new socket attaches (%s)", again ? "ok" : err);
    if (x) {
        if (u >= 0)
            sendto(u, "lwvhost-xsk", 11, 0, (struct sockaddr *)&to, sizeof to);
        CHECK(wait_rx(x, 2000, is_udp9, NULL), "and receives");
        xsk_close(x);
    }
    if (u >= 0)
        close(u);
}

int main(void)
{
    ring_arithmetic();
    descriptor_checks();
    program();
    memory_rx(0);
    memory_rx(0xfffffff0u);
    memory_tx(0);
    memory_tx(0xffffff00u);
    live_loopback();
    return check_done("test_xsk");
}
