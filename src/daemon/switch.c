/*
 * switch.c - see switch.h.
 *
 * The MAC table is a lock-free open-addressed array of 64-bit words, each
 * packing a MAC (48 bits) and port index + 1 (16 bits), so a lookup or a
 * learn is a few relaxed atomic loads and at most one store.  A lost race
 * between two learners only costs a flood.
 */
#include "switch.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "port.h"
#include "tap.h"

#define MAC_TABLE_SIZE 4096u   /* power of two */
#define MAC_PROBE 4u

static uint64_t mac_table[MAC_TABLE_SIZE];

void switch_init(void)
{
    memset(mac_table, 0, sizeof(mac_table));
}

static uint64_t mac_key(const uint8_t m[6])
{
    return (uint64_t)m[0] << 40 | (uint64_t)m[1] << 32 | (uint64_t)m[2] << 24 |
           (uint64_t)m[3] << 16 | (uint64_t)m[4] << 8 | m[5];
}

static unsigned mac_hash(uint64_t key)
{
    key *= 0x9e3779b97f4a7c15ull;
    return (unsigned)(key >> 52) & (MAC_TABLE_SIZE - 1);
}

void switch_learn(const uint8_t mac[6], unsigned port_index)
{
    if ((mac[0] & 1) || mac_key(mac) == 0)
        return;    /* never learn group or all-zero addresses */
    uint64_t key = mac_key(mac);
    uint64_t want = key << 16 | (port_index + 1);
    unsigned h = mac_hash(key);
    int empty = -1;
    for (unsigned i = 0; i < MAC_PROBE; i++) {
        unsigned s = (h + i) & (MAC_TABLE_SIZE - 1);
        uint64_t v = __atomic_load_n(&mac_table[s], __ATOMIC_RELAXED);
        if (v >> 16 == key) {
            if (v != want)
                __atomic_store_n(&mac_table[s], want, __ATOMIC_RELAXED);
            return;
        }
        if (v == 0 && empty < 0)
            empty = (int)s;
    }
    __atomic_store_n(&mac_table[empty >= 0 ? (unsigned)empty : h], want, __ATOMIC_RELAXED);
}

int switch_lookup(const uint8_t mac[6])
{
    uint64_t key = mac_key(mac);
    unsigned h = mac_hash(key);
    for (unsigned i = 0; i < MAC_PROBE; i++) {
        uint64_t v = __atomic_load_n(&mac_table[(h + i) & (MAC_TABLE_SIZE - 1)], __ATOMIC_RELAXED);
        if (v >> 16 == key)
            return (int)(v & 0xffff) - 1;
    }
    return -1;
}

void switch_forget_port(unsigned port_index)
{
    for (unsigned s = 0; s < MAC_TABLE_SIZE; s++) {
        uint64_t v = __atomic_load_n(&mac_table[s], __ATOMIC_RELAXED);
        if (v && (v & 0xffff) == port_index + 1)
            __atomic_compare_exchange_n(&mac_table[s], &v, 0, false, __ATOMIC_RELAXED,
                                        __ATOMIC_RELAXED);
    }
}

unsigned switch_port_macs(unsigned port_index, uint8_t (*macs)[6], unsigned max)
{
    unsigned n = 0;
    for (unsigned s = 0; s < MAC_TABLE_SIZE && n < max; s++) {
        uint64_t v = __atomic_load_n(&mac_table[s], __ATOMIC_RELAXED);
        if (!v || (v & 0xffff) != port_index + 1)
            continue;
        for (int b = 0; b < 6; b++)
            macs[n][b] = (uint8_t)(v >> (56 - 8 * b));
        n++;
    }
    return n;
}

static void remember_touched(struct fwd_ctx *ctx, struct vqueue *q)
{
    if (q->signal_pending)
        return;    /* already listed by this or another thread */
    q->signal_pending = true;
    if (ctx->ntouched < FWD_TOUCHED_MAX) {
        ctx->touched[ctx->ntouched++] = q;
        return;
    }
    /* List full: publish and signal now rather than lose the interrupt. */
    q->signal_pending = false;
    vq_flush(&q->vq);
    if (vq_should_signal(&q->vq))
        dev_signal(q);
}

/* Picks the RX queue for a frame that came in on source queue pair qp. */
static struct vqueue *pick_rx_queue(struct vdev *d, unsigned qp)
{
    struct vqueue *q = &d->q[2 * (qp % d->max_qp)];
    if (dev_queue_ready(d, q))
        return q;
    q = &d->q[0];
    return dev_queue_ready(d, q) ? q : NULL;
}

/* Bound on frames delivered under one hold of a destination's locks, so
 * the control plane never waits long for them. */
#define HOLD_MAX 64

void switch_release(struct fwd_ctx *ctx)
{
    struct vqueue *q = ctx->held;
    if (!q)
        return;
    vq_flush(&q->vq);
    pthread_mutex_unlock(&q->rx_lock);
    pthread_rwlock_unlock(&q->dev->lock);
    ctx->held = NULL;
    ctx->held_frames = 0;
}

/* Takes the locks of the RX queue for this frame, reusing the held ones
 * when they fit.  Holds at most one destination at a time, and takes a
 * new one only after dropping the old, so workers cannot deadlock on
 * each other's rx_locks. */
static struct vqueue *hold_rx_queue(struct fwd_ctx *ctx, struct vdev *d, unsigned qp)
{
    if (ctx->held && ctx->held->dev == d && ctx->held_frames < HOLD_MAX &&
        pick_rx_queue(d, qp) == ctx->held)
        return ctx->held;
    switch_release(ctx);
    if (pthread_rwlock_tryrdlock(&d->lock) != 0) {
        stat_add_shared(&d->q[0].st.drops_nodest, 1);
        return NULL;
    }
    struct vqueue *q = pick_rx_queue(d, qp);
    if (!q) {
        if (d->connected)
            stat_add_shared(&d->q[0].st.drops_nodest, 1);
        pthread_rwlock_unlock(&d->lock);
        return NULL;
    }
    pthread_mutex_lock(&q->rx_lock);
    ctx->held = q;
    ctx->held_frames = 0;
    return q;
}

static void deliver_vhost(struct fwd_ctx *ctx, struct port *dst, unsigned qp,
                          const struct frame *f)
{
    struct vdev *d = &dst->dev;
    struct vqueue *q = hold_rx_queue(ctx, d, qp);
    if (!q)
        return;
    ctx->held_frames++;
    bool ok = net_takes_gso(d, f) ? net_rx_deliver(&ctx->rx_elem, q, f)
                                  : net_rx_deliver_segmented(&ctx->rx_elem, q, f) > 0;
    if (ok)
        remember_touched(ctx, q);
}

static void deliver(struct fwd_ctx *ctx, struct port *dst, unsigned qp, const struct frame *f)
{
    if (dst->type == PORT_TAP)
        tap_send(dst, f);
    else
        deliver_vhost(ctx, dst, qp, f);
}

bool switch_source_ok(const struct port *src, const struct frame *f)
{
    return !src->antispoof || memcmp(f->eth + 6, src->mac, 6) == 0;
}

void switch_forward(struct fwd_ctx *ctx, struct port *src, unsigned qp, const struct frame *f)
{
    const uint8_t *dmac = f->eth, *smac = f->eth + 6;
    switch_learn(smac, src->index);
    if (!(dmac[0] & 1)) {
        int to = switch_lookup(dmac);
        if (to >= 0 && (unsigned)to < ports.n) {
            if ((unsigned)to != src->index)
                deliver(ctx, ports.p[to], qp, f);
            return;
        }
    }
    for (unsigned i = 0; i < ports.n; i++)
        if (i != src->index)
            deliver(ctx, ports.p[i], qp, f);
}

void switch_flush(struct fwd_ctx *ctx)
{
    switch_release(ctx);
    for (unsigned i = 0; i < ctx->ntouched; i++) {
        struct vqueue *q = ctx->touched[i];
        struct vdev *d = q->dev;
        pthread_rwlock_rdlock(&d->lock);
        pthread_mutex_lock(&q->rx_lock);
        if (q->signal_pending) {
            q->signal_pending = false;
            if (dev_queue_ready(d, q) && vq_should_signal(&q->vq))
                dev_signal(q);
        }
        pthread_mutex_unlock(&q->rx_lock);
        pthread_rwlock_unlock(&d->lock);
    }
    ctx->ntouched = 0;
}
