/*
 * fwd.c - see fwd.h.
 *
 * A burst is taken in ring order and completed in ring order.  When a
 * destination's RX queue is busy with another worker, the frames from
 * there on are not taken: their chains go back to the ring (vq_unpop) and
 * the queue is served again on the next pass, so nothing is lost or
 * delivered twice.  A chain that breaks the ring ends the burst: the good
 * chains before it are delivered and completed exactly once, then the
 * device is stopped.
 */
#include "fwd.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "port.h"
#include "tap.h"
#include "uplink.h"
#include "vxlan.h"

/* Per-pass counters of a source. */
struct fwd_counts {
    uint64_t bytes, invalid, spoofed;
};

/* Delivers frames [0, n) of the context by destination runs; returns how
 * many were taken (fewer than n only if a unicast run was deferred). */
static unsigned deliver_burst(struct fwd_ctx *ctx, struct port *src, unsigned qp, unsigned n,
                              bool may_defer)
{
    const struct lswitch *sw = src->sw;
    unsigned i = 0;
    while (i < n) {
        int to = ctx->dst[i];
        /* A port removed since classification: its station is unknown now. */
        struct port *dst = to >= 0 ? switch_port(sw, to) : NULL;
        if (!dst) {
            if (to >= 0 || to == SW_FLOOD)
                switch_flood(&ctx->sw, sw, src, qp, &ctx->frames[i]);
            i++;
            continue;
        }
        unsigned j = i + 1;
        while (j < n && ctx->dst[j] == to)
            j++;
        unsigned t = switch_deliver(&ctx->sw, dst, qp, &ctx->frames[i], j - i, may_defer);
        if (t < j - i)
            return i + t;
        i = j;
    }
    return n;
}

/* Counts what happened to the first n frames of the context. */
static void count_burst(const struct fwd_ctx *ctx, unsigned n, struct fwd_counts *c)
{
    for (unsigned i = 0; i < n; i++) {
        if (ctx->dst[i] == SW_DROP_INVALID)
            c->invalid++;
        else if (ctx->dst[i] == SW_DROP_SPOOFED)
            c->spoofed++;
        else
            c->bytes += ctx->frames[i].len;
    }
}

/* Parses, classifies and delivers the n chains of the TX burst; returns
 * the chains taken. */
static unsigned tx_burst(struct fwd_ctx *ctx, struct vqueue *q, unsigned n, struct fwd_counts *c)
{
    struct vdev *d = q->dev;
    struct port *src = d->port;
    for (unsigned i = 0; i < n; i++)
        ctx->dst[i] = net_tx_parse(&d->caps, &ctx->tx.c[i], &ctx->frames[i]) ? 0 : SW_DROP_INVALID;
    switch_classify(src->sw, src, ctx->frames, n, ctx->dst);
    unsigned taken = deliver_burst(ctx, src, q->index / 2, n, true);
    count_burst(ctx, taken, c);
    for (unsigned i = 0; i < taken; i++)
        ctx->heads[i] = ctx->tx.c[i].head;
    vq_push_batch(&q->vq, ctx->heads, taken, 0);
    return taken;
}

static void publish_tx_counts(struct vqueue *q, unsigned done, const struct fwd_counts *c)
{
    unsigned bucket = done ? 64u - (unsigned)__builtin_clzll(done) : 0;
    stat_add(&q->st.batch[bucket < BATCH_BUCKETS ? bucket : BATCH_BUCKETS - 1], 1);
    if (!done)
        return;
    stat_add(&q->st.packets, done);
    stat_add(&q->st.bytes, c->bytes);
    if (c->invalid)
        stat_add(&q->st.drops_invalid, c->invalid);
    if (c->spoofed)
        stat_add(&q->st.drops_spoofed, c->spoofed);
}

unsigned fwd_tx_pass(struct fwd_ctx *ctx, struct vqueue *q, unsigned budget, bool rearm,
                     bool *more)
{
    struct vdev *d = q->dev;
    struct vq *vq = &q->vq;
    struct fwd_counts c = { 0, 0, 0 };
    unsigned done = 0;
    bool deferred = false;
    vq_disable_notify(vq);
    while (done < budget) {
        ctx->tx.n = ctx->tx.niov = 0;
        unsigned want = budget - done < FWD_BURST ? budget - done : FWD_BURST;
        unsigned n = vq_pop_burst(vq, &d->mem, &ctx->tx, want, true, false);
        if (n == 0) {
            if (vq_broken(vq) || !rearm || !vq_enable_notify(vq))
                break;
            vq_disable_notify(vq);    /* a buffer raced in: take it */
            continue;
        }
        unsigned taken = tx_burst(ctx, q, n, &c);
        done += taken;
        if (taken < n) {
            vq_unpop(vq, (uint16_t)(n - taken));
            deferred = true;
            break;
        }
        if (vq_broken(vq))
            break;
    }
    if (vq_broken(vq))
        dev_mark_broken(d, q, vq_broken(vq));
    *more = done == budget || deferred;
    publish_tx_counts(q, done, &c);
    if (done) {
        vq_flush(vq);
        if (vq_should_signal(vq))
            dev_signal(q);
    }
    return done;
}

/* Switches n frames a port read from the kernel (tap, uplink, VXLAN).
 * They cannot go back to where they came from, so no run is deferred. */
static void deliver_from_wire(struct fwd_ctx *ctx, struct port *p, unsigned n)
{
    memset(ctx->dst, 0, n * sizeof(ctx->dst[0]));
    switch_classify(p->sw, p, ctx->frames, n, ctx->dst);
    deliver_burst(ctx, p, 0, n, false);
}

#define TAP_SLOT (VIRTIO_NET_HDR_LEN + FRAME_MAX)

unsigned fwd_tap_pass(struct fwd_ctx *ctx, struct port *p, unsigned budget, bool *more)
{
    unsigned done = 0;
    bool empty = false;
    *more = false;
    if (!ctx->tap_buf) {
        ctx->tap_buf = malloc((size_t)FWD_TAP_BURST * TAP_SLOT);
        if (!ctx->tap_buf) {
            log_error("tap %s: out of memory for the receive burst", p->name);
            return 0;
        }
    }
    while (done < budget && !empty) {
        unsigned want = budget - done < FWD_TAP_BURST ? budget - done : FWD_TAP_BURST;
        unsigned nread = 0;
        unsigned n = tap_recv_burst(p, ctx->tap_buf, TAP_SLOT, ctx->frames, ctx->tap_iov, want,
                                    &nread, &empty);
        done += nread;
        deliver_from_wire(ctx, p, n);
    }
    *more = !empty;
    return done;
}

unsigned fwd_uplink_pass(struct fwd_ctx *ctx, struct port *p, unsigned budget, bool *more)
{
    unsigned done = 0;
    bool empty = false;
    if (p->tap_error) {
        p->tap_error = false;
        uplink_clear_error(p);
    }
    while (done < budget && !empty) {
        unsigned want = budget - done < UPLINK_RX_BURST ? budget - done : UPLINK_RX_BURST;
        unsigned nread = 0;
        unsigned n = uplink_recv_burst(p, ctx->frames, want, &nread, &empty);
        done += nread;
        deliver_from_wire(ctx, p, n);
        uplink_recv_done(p);                  /* the frames were copied or sent on */
        if (nread == 0)
            break;
    }
    *more = !empty;
    return done;
}

unsigned fwd_vxlan_pass(struct fwd_ctx *ctx, struct port *p, unsigned budget, bool *more)
{
    unsigned done = 0;
    bool empty = false;
    if (p->tap_error) {
        p->tap_error = false;
        vxlan_clear_error(p);
    }
    while (done < budget && !empty) {
        unsigned want = budget - done < VXLAN_RX_BURST ? budget - done : VXLAN_RX_BURST;
        unsigned nread = 0;
        unsigned n = vxlan_recv_burst(p, ctx->frames, want, &nread, &empty);
        done += nread;
        deliver_from_wire(ctx, p, n);
        if (nread == 0)
            break;
    }
    *more = !empty;
    return done;
}

void fwd_inject(struct fwd_ctx *ctx, struct port *src, const uint8_t *data, size_t len)
{
    static const struct virtio_net_hdr plain;
    net_frame_flat(&ctx->frames[0], &ctx->tap_iov[0], data, len, &plain);
    ctx->dst[0] = 0;
    switch_classify(src->sw, src, ctx->frames, 1, ctx->dst);
    deliver_burst(ctx, src, 0, 1, false);
    while (!fwd_flush(ctx))
        ;   /* the queue's filler lets go within a burst */
}

bool fwd_idle(const struct fwd_ctx *ctx)
{
    return !ctx->sw.held && ctx->sw.ntouched == 0;
}

void fwd_release(struct fwd_ctx *ctx)
{
    switch_release(&ctx->sw);
}

bool fwd_flush(struct fwd_ctx *ctx)
{
    return switch_flush(&ctx->sw);
}

void fwd_ctx_fini(struct fwd_ctx *ctx)
{
    fwd_flush(ctx);
    free(ctx->tap_buf);
    ctx->tap_buf = NULL;
}
