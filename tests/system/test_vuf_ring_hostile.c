/*
 * test_vuf_ring_hostile - descriptor chains written by hand into port h's
 * rings.  For each bad chain, on a fresh connection of h:
 *   1. positive control: a valid frame from h reaches a;
 *   2. the bad chain is published and kicked;
 *   3. the daemon still runs, a<->b still forward, nothing from the bad
 *      chain reaches a;
 *   4. h gets no further service: a valid frame published after the bad
 *      chain never reaches a; with the STATUS protocol feature GET_STATUS
 *      has NEEDS_RESET (0x40).
 * A few cases that are odd but arguably legal are only checked for 1-3.
 * At the end h works again for a well-behaved frontend and the daemon is
 * idle (no spinning on a broken ring).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "systest.h"

static struct tport A, B;
static int fatal;

#define RING      256u
#define RESERVE   64u          /* descriptors 192..255 are ours */
#define D0        200u         /* first hand-made descriptor */
#define GOOD_DESC 250u         /* the valid frame published after the bad chain */
#define BAD_FLOW  0xbadu
#define GOOD_FLOW 0x600du

static const uint8_t MAC_H[6] = { 0x02, 0, 0, 0, 0, 0x0e };

struct ctx {
    struct vuf *v;
    struct vuf_ring_view tx, rx;
    uint64_t mem_end;          /* first GPA after region 0 */
    uint64_t hdr_gpa, frame_gpa;   /* a valid 12-byte header + 64-byte frame */
};

/* Frames from h's MAC now pending at a (drains a). */
static unsigned frames_from_h(unsigned *good)
{
    static uint8_t buf[65536];
    unsigned n = 0;
    if (good)
        *good = 0;
    for (;;) {
        int len = vuf_recv(A.v, 0, buf, sizeof buf);
        if (len == -EAGAIN)
            break;
        if (len < 0)
            break;
        if (len >= 12 && !memcmp(buf + 6, MAC_H, 6)) {
            uint32_t seq, flow;
            n++;
            if (good && !vuf_frame_check(buf, (size_t)len, &seq, &flow) && flow == GOOD_FLOW)
                (*good)++;
        }
    }
    return n;
}

static void after(const char *what)
{
    if (pair_survives(what, &A, &B))
        fatal = 1;
}

/* Connect h, run the positive control, prepare a valid header+frame. */
static int ctx_open(struct ctx *c, const char *what)
{
    struct vuf_opts o;
    memset(c, 0, sizeof *c);
    tport_default_opts(&o, "h");
    o.ring_size = RING;
    o.tx_reserve = RESERVE;
    int r = vuf_connect(&c->v, &o);
    if (r) {
        CHECK(0, "%s: h connects: %s", what, vuf_last_error(NULL));
        return -1;
    }
    vuf_ring_view(c->v, 1, &c->tx);
    vuf_ring_view(c->v, 0, &c->rx);
    struct vhost_user_mem_region reg;
    vuf_region(c->v, 0, &reg, NULL);
    c->mem_end = reg.guest_phys_addr + reg.memory_size;
    uint8_t *p = vuf_scratch_alloc(c->v, 12 + 64, 64, &c->hdr_gpa);
    if (!p)
        return -1;
    memset(p, 0, 12);
    vuf_frame_fill(p + 12, 64, MAC_BCAST, MAC_H, 0, BAD_FLOW);
    c->frame_gpa = c->hdr_gpa + 12;

    /* positive control through the library */
    static uint8_t f[64];
    frames_from_h(NULL);
    vuf_frame_fill(f, 64, MAC_BCAST, MAC_H, 1, GOOD_FLOW);
    int ok = 0;
    if (vuf_send(c->v, 0, f, 64) == 0) {
        double until = t_now() + 2;
        unsigned good = 0;
        while (t_now() < until && !good) {
            vuf_wait(A.v, 20);
            frames_from_h(&good);
        }
        ok = good > 0;
    }
    for (int i = 0; i < 50 && vuf_tx_inflight(c->v, 0); i++) {
        vuf_tx_reclaim(c->v, 0);
        msleep(5);
    }
    CHECK(ok, "%s: before: h forwards a valid frame", what);
    tport_drain(&B);
    return ok ? 0 : -1;
}

/* Publish head on the TX ring and kick. */
static void publish(struct ctx *c, uint16_t head)
{
    vuf_avail_push(c->v, 1, head);
    vuf_kick(c->v, 1);
}

/* After the bad chain: checks 3 and (if must_stop) 4. */
static void judge(struct ctx *c, const char *what, int must_stop)
{
    msleep(250);
    unsigned leaked = frames_from_h(NULL);
    CHECK(leaked == 0, "%s: nothing from the bad chain reached a (%u frames)", what, leaked);
    after(what);
    if (fatal) {
        vuf_close(c->v);
        return;
    }
    /* a valid frame after the bad chain */
    uint64_t gpa;
    uint8_t *p = vuf_scratch_alloc(c->v, 12 + 64, 64, &gpa);
    memset(p, 0, 12);
    vuf_frame_fill(p + 12, 64, MAC_BCAST, MAC_H, 2, GOOD_FLOW);
    c->tx.desc[GOOD_DESC] = (struct virtq_desc){ gpa, 12 + 64, 0, 0 };
    publish(c, GOOD_DESC);
    msleep(300);
    unsigned good = 0;
    frames_from_h(&good);
    if (must_stop) {
        CHECK(good == 0, "%s: h gets no further service (valid frame after it %s)", what,
              good ? "WAS FORWARDED" : "not forwarded");
        if (vuf_has_protocol(c->v, VHOST_USER_PROTOCOL_F_STATUS)) {
            uint8_t st = 0;
            int r = vuf_get_status(c->v, &st);
            CHECK(r == 0 && (st & VIRTIO_STATUS_NEEDS_RESET),
                  "%s: GET_STATUS has NEEDS_RESET (r=%d status 0x%02x)", what, r, st);
        }
    } else {
        uint8_t st = 0;
        int r = vuf_has_protocol(c->v, VHOST_USER_PROTOCOL_F_STATUS) ? vuf_get_status(c->v, &st) : -1;
        note("%s: valid frame afterwards %s; status %s0x%02x", what,
             good ? "forwarded" : "not forwarded", r ? "n/a " : "", st);
    }
    vuf_close(c->v);
    c->v = NULL;
}

/* A descriptor table in scratch memory (16-aligned unless told). */
static struct virtq_desc *table(struct ctx *c, unsigned n, uint64_t *gpa)
{
    return vuf_scratch_alloc(c->v, n * sizeof(struct virtq_desc), 16, gpa);
}

static void run_tx_case(int which)
{
    struct ctx c;
    const char *what = "?";
    int must_stop = 1;
    static const char *names[] = {
        "TX desc address outside memory",
        "TX desc straddling the end of memory",
        "TX desc length 0xffffffff",
        "TX chain loop 200->201->200",
        "TX chain self-loop 200->200",
        "TX desc next=300 >= ring size 256",
        "TX chain through all 256 descriptors back to its head",
        "TX indirect table of 300 descriptors (> ring size 256)",
        "TX nested indirect table",
        "TX indirect table length 40 (not a multiple of 16)",
        "TX indirect table address outside memory",
        "TX desc with both INDIRECT and NEXT",
        "TX avail->idx jumping by 300 (> ring size)",
        "TX avail ring head 1000 (>= ring size)",
        "TX indirect table whose chain loops 0->1->0",
        "TX indirect table whose next (5) is beyond its 2 entries",
        "TX indirect table at an address not 16-aligned",
        "TX device-writable descriptor",
        "TX indirect table of length 0",
    };
    what = names[which];
    if (which >= 16)
        must_stop = 0;   /* odd, arguably legal: only liveness is required */
    if (ctx_open(&c, what)) {
        if (c.v)
            vuf_close(c.v);
        return;
    }
    struct virtq_desc *d = c.tx.desc;
    uint64_t tg;
    struct virtq_desc *t;
    switch (which) {
    case 0:
        d[D0] = (struct virtq_desc){ c.mem_end + 0x100000, 76, 0, 0 };
        publish(&c, D0);
        break;
    case 1:
        d[D0] = (struct virtq_desc){ c.mem_end - 16, 76, 0, 0 };
        publish(&c, D0);
        break;
    case 2:
        d[D0] = (struct virtq_desc){ c.hdr_gpa, 0xffffffffu, 0, 0 };
        publish(&c, D0);
        break;
    case 3:
        d[D0] = (struct virtq_desc){ c.hdr_gpa, 12, VIRTQ_DESC_F_NEXT, D0 + 1 };
        d[D0 + 1] = (struct virtq_desc){ c.frame_gpa, 64, VIRTQ_DESC_F_NEXT, D0 };
        publish(&c, D0);
        break;
    case 4:
        d[D0] = (struct virtq_desc){ c.hdr_gpa, 12, VIRTQ_DESC_F_NEXT, D0 };
        publish(&c, D0);
        break;
    case 5:
        d[D0] = (struct virtq_desc){ c.hdr_gpa, 12, VIRTQ_DESC_F_NEXT, 300 };
        publish(&c, D0);
        break;
    case 6:
        for (unsigned i = 0; i < RING; i++)
            d[i] = (struct virtq_desc){ i == 0 ? c.hdr_gpa : c.frame_gpa, i == 0 ? 12 : 4,
                                        VIRTQ_DESC_F_NEXT, (uint16_t)((i + 1) % RING) };
        publish(&c, 0);
        break;
    case 7: {
        uint64_t big;
        uint8_t *data = vuf_scratch_alloc(c.v, 12 + 299 * 4, 16, &big);
        memset(data, 0, 12);
        vuf_frame_fill(data + 12, 299 * 4, MAC_BCAST, MAC_H, 0, BAD_FLOW);
        t = table(&c, 300, &tg);
        for (unsigned i = 0; i < 300; i++)
            t[i] = (struct virtq_desc){ i == 0 ? big : big + 12 + (i - 1) * 4, i == 0 ? 12 : 4,
                                        (uint16_t)(i < 299 ? VIRTQ_DESC_F_NEXT : 0),
                                        (uint16_t)(i + 1) };
        d[D0] = (struct virtq_desc){ tg, 300 * 16, VIRTQ_DESC_F_INDIRECT, 0 };
        publish(&c, D0);
        break;
    }
    case 8: {
        uint64_t t2g;
        struct virtq_desc *t2 = table(&c, 2, &t2g);
        t2[0] = (struct virtq_desc){ c.hdr_gpa, 12, VIRTQ_DESC_F_NEXT, 1 };
        t2[1] = (struct virtq_desc){ c.frame_gpa, 64, 0, 0 };
        t = table(&c, 1, &tg);
        t[0] = (struct virtq_desc){ t2g, 32, VIRTQ_DESC_F_INDIRECT, 0 };
        d[D0] = (struct virtq_desc){ tg, 16, VIRTQ_DESC_F_INDIRECT, 0 };
        publish(&c, D0);
        break;
    }
    case 9:
        t = table(&c, 3, &tg);
        t[0] = (struct virtq_desc){ c.hdr_gpa, 12, VIRTQ_DESC_F_NEXT, 1 };
        t[1] = (struct virtq_desc){ c.frame_gpa, 64, 0, 0 };
        d[D0] = (struct virtq_desc){ tg, 40, VIRTQ_DESC_F_INDIRECT, 0 };
        publish(&c, D0);
        break;
    case 10:
        d[D0] = (struct virtq_desc){ c.mem_end + 0x10000, 32, VIRTQ_DESC_F_INDIRECT, 0 };
        publish(&c, D0);
        break;
    case 11:
        t = table(&c, 2, &tg);
        t[0] = (struct virtq_desc){ c.hdr_gpa, 12, VIRTQ_DESC_F_NEXT, 1 };
        t[1] = (struct virtq_desc){ c.frame_gpa, 64, 0, 0 };
        d[D0] = (struct virtq_desc){ tg, 32, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, D0 + 1 };
        d[D0 + 1] = (struct virtq_desc){ c.frame_gpa, 64, 0, 0 };
        publish(&c, D0);
        break;
    case 12: {
        d[D0] = (struct virtq_desc){ c.hdr_gpa, 12 + 64, 0, 0 };
        uint16_t idx = c.tx.avail->idx;
        for (unsigned i = 0; i < RING; i++)
            c.tx.avail->ring[i] = D0;
        vuf_avail_set_idx(c.v, 1, (uint16_t)(idx + 300));
        vuf_kick(c.v, 1);
        break;
    }
    case 13:
        publish(&c, 1000);
        break;
    case 14:
        t = table(&c, 2, &tg);
        t[0] = (struct virtq_desc){ c.hdr_gpa, 12, VIRTQ_DESC_F_NEXT, 1 };
        t[1] = (struct virtq_desc){ c.frame_gpa, 64, VIRTQ_DESC_F_NEXT, 0 };
        d[D0] = (struct virtq_desc){ tg, 32, VIRTQ_DESC_F_INDIRECT, 0 };
        publish(&c, D0);
        break;
    case 15:
        t = table(&c, 2, &tg);
        t[0] = (struct virtq_desc){ c.hdr_gpa, 12, VIRTQ_DESC_F_NEXT, 5 };
        t[1] = (struct virtq_desc){ c.frame_gpa, 64, 0, 0 };
        d[D0] = (struct virtq_desc){ tg, 32, VIRTQ_DESC_F_INDIRECT, 0 };
        publish(&c, D0);
        break;
    case 16: {
        uint8_t *raw = vuf_scratch_alloc(c.v, 64, 16, &tg);
        t = (struct virtq_desc *)(void *)(raw + 4);
        struct virtq_desc tmp[2] = { { c.hdr_gpa, 12, VIRTQ_DESC_F_NEXT, 1 },
                                     { c.frame_gpa, 64, 0, 0 } };
        memcpy(t, tmp, sizeof tmp);
        d[D0] = (struct virtq_desc){ tg + 4, 32, VIRTQ_DESC_F_INDIRECT, 0 };
        publish(&c, D0);
        break;
    }
    case 17:
        d[D0] = (struct virtq_desc){ c.hdr_gpa, 12 + 64, VIRTQ_DESC_F_WRITE, 0 };
        publish(&c, D0);
        break;
    case 18:
        t = table(&c, 1, &tg);
        d[D0] = (struct virtq_desc){ tg, 0, VIRTQ_DESC_F_INDIRECT, 0 };
        publish(&c, D0);
        break;
    }
    /* cases that forward a frame if (wrongly) accepted keep the bad flow;
     * for the others any frame from h counts as leaked */
    if (!must_stop) {
        msleep(250);
        unsigned n = frames_from_h(NULL);
        note("%s: %u frame(s) from h reached a", what, n);
        after(what);
        if (!fatal) {
            uint8_t st = 0;
            int r = vuf_has_protocol(c.v, VHOST_USER_PROTOCOL_F_STATUS) ?
                    vuf_get_status(c.v, &st) : -1;
            note("%s: status %s0x%02x", what, r ? "n/a " : "", st);
        }
        vuf_close(c.v);
        return;
    }
    judge(&c, what, must_stop);
}

/* RX side: buffers the daemon would write into are bad. */
static void run_rx_case(int which)
{
    static const char *names[] = {
        "RX buffers outside memory",
        "RX buffers straddling the end of memory",
        "RX buffers read-only (no WRITE flag)",
    };
    const char *what = names[which];
    struct ctx c;
    if (ctx_open(&c, what)) {
        if (c.v)
            vuf_close(c.v);
        return;
    }
    /* rewrite every posted RX descriptor */
    for (unsigned i = 0; i < c.rx.num; i++) {
        struct virtq_desc *d = &c.rx.desc[i];
        if (which == 0)
            d->addr = c.mem_end + 0x100000 + i * 2048ull;
        else if (which == 1)
            d->addr = c.mem_end - 100;
        else
            d->flags = 0;
    }
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    /* traffic towards h: broadcasts from a */
    struct xres x;
    xfer(&A, &B, MAC_BCAST, 8, 64, &x);
    msleep(250);
    after(what);
    if (!fatal) {
        if (vuf_has_protocol(c.v, VHOST_USER_PROTOCOL_F_STATUS)) {
            uint8_t st = 0;
            int r = vuf_get_status(c.v, &st);
            CHECK(r == 0 && (st & VIRTIO_STATUS_NEEDS_RESET),
                  "%s: GET_STATUS has NEEDS_RESET (r=%d status 0x%02x)", what, r, st);
        }
        /* the library must not have been fed anything */
        static uint8_t buf[4096];
        int n = vuf_recv(c.v, 0, buf, sizeof buf);
        CHECK(n == -EAGAIN, "%s: nothing delivered into h's RX ring (recv %d)", what, n);
    }
    vuf_close(c.v);
}

int main(void)
{
    test_init("ring_hostile", 300);
    const char *ports[] = { "a", "b", "h", NULL };
    const char *extra[] = { "--workers", "2", NULL };
    if (start_with_good_pair(ports, extra, &A, &B))
        return test_finish();

    for (int i = 0; i < 19 && !fatal; i++)
        run_tx_case(i);
    for (int i = 0; i < 3 && !fatal; i++)
        run_rx_case(i);

    if (!fatal)
        good_frontend_then_idle(&A, NULL, 200, 1500);
    tport_close(&A);
    tport_close(&B);
    return test_finish();
}
