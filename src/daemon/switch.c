/*
 * switch.c - see switch.h.
 *
 * Classification learns each source once per run of equal addresses and
 * looks each destination up once per run (fdb.c: lock-free).
 *
 * Locks: a destination guest's device lock is taken with tryrdlock (a
 * failure means the control plane is changing it: the frames are dropped
 * and counted, as on a link that is going down) and its RX queue's rx_lock
 * with a bounded spin of trylocks (its holder is another worker, which
 * never blocks while holding it).  A thread holds at most one destination
 * at a time and lets it go before taking another, so workers cannot
 * deadlock on each other.
 */
#include "switch.h"

#include <errno.h>
#include <string.h>

#include "log.h"
#include "port.h"
#include "tap.h"
#include "uplink.h"
#include "vxlan.h"

/* Bound on frames delivered under one hold of a destination's locks, so
 * the control plane never waits long for them. */
#define HOLD_MAX 64
/* Trylocks of a busy rx_lock before giving up (about a microsecond each
 * hundred on this host): its holder fills at most HOLD_MAX frames. */
#define RX_LOCK_SPINS 2000

void switch_init(struct lswitch *sw, const struct port_table *table)
{
    fdb_init(&sw->fdb);
    sw->ports = table;
}

enum fdb_learn switch_learn(struct lswitch *sw, const uint8_t mac[6], unsigned port_index)
{
    return fdb_learn(&sw->fdb, fdb_key(mac), port_index);
}

enum fdb_learn switch_claim(struct lswitch *sw, const uint8_t mac[6], unsigned port_index)
{
    return fdb_claim(&sw->fdb, fdb_key(mac), port_index);
}

int switch_add_static(struct lswitch *sw, const uint8_t mac[6], unsigned port_index)
{
    return fdb_add_static(&sw->fdb, fdb_key(mac), port_index);
}

int switch_lookup(const struct lswitch *sw, const uint8_t mac[6])
{
    return fdb_lookup(&sw->fdb, fdb_key(mac));
}

void switch_forget_port(struct lswitch *sw, unsigned port_index)
{
    fdb_forget_learned(&sw->fdb, port_index);
}

unsigned switch_port_macs(const struct lswitch *sw, unsigned port_index, uint8_t (*macs)[6],
                          unsigned max)
{
    struct fdb_entry e[64];
    unsigned n = fdb_list(&sw->fdb, (int)port_index, e, max < 64 ? max : 64);
    for (unsigned i = 0; i < n; i++)
        memcpy(macs[i], e[i].mac, 6);
    return n;
}

struct port *switch_port(const struct lswitch *sw, int index)
{
    if (index < 0 || (unsigned)index >= __atomic_load_n(&sw->ports->n, __ATOMIC_ACQUIRE))
        return NULL;
    /* Pairs with the release store that publishes a port (port.c). */
    return __atomic_load_n(&sw->ports->p[index], __ATOMIC_ACQUIRE);
}

/* Where a frame for key goes, seen from port src. */
static int destination(const struct lswitch *sw, const struct port *src, uint64_t key)
{
    if ((key >> 40) & 1)
        return SW_FLOOD;
    int to = fdb_lookup(&sw->fdb, key);
    if (to < 0 || !switch_port(sw, to))
        return SW_FLOOD;   /* unknown, or its port is being removed */
    return (unsigned)to == src->index ? SW_DROP_SELF : to;
}

/* A guest announcing where it is, as a migrated one does: a RARP (QEMU's
 * announcement) or a gratuitous ARP (sender IP = target IP: the guest's
 * own, with VIRTIO_NET_F_GUEST_ANNOUNCE). */
static bool is_announcement(const struct frame *f)
{
    unsigned et = (unsigned)f->eth[12] << 8 | f->eth[13];
    if (et == 0x8035)
        return true;
    if (et != 0x0806 || !f->flat || f->len < 42)
        return false;
    return memcmp(f->flat + 28, f->flat + 38, 4) == 0;
}

void switch_classify(struct lswitch *sw, const struct port *src, const struct frame *f,
                     unsigned n, int *dst)
{
    uint64_t own = fdb_key(src->mac);
    uint64_t last_src = UINT64_MAX, last_dst = UINT64_MAX;   /* no MAC is all ones in 64 bits */
    int last_to = SW_FLOOD;
    for (unsigned i = 0; i < n; i++) {
        if (dst[i] == SW_DROP_INVALID)
            continue;
        uint64_t s = fdb_key(f[i].eth + 6), d = fdb_key(f[i].eth);
        if (src->antispoof && s != own) {
            dst[i] = SW_DROP_SPOOFED;
            continue;
        }
        if (s != last_src) {
            /* An address live on another port moves only when announced
             * (a migrated guest); antispoof=on keeps guests from claiming
             * others' addresses this way. */
            if (fdb_learn(&sw->fdb, s, src->index) == FDB_REFUSED && is_announcement(&f[i]))
                fdb_claim(&sw->fdb, s, src->index);
            last_src = s;
            last_dst = UINT64_MAX;   /* the learn may have moved the cached one */
        }
        if (d != last_dst) {
            last_to = destination(sw, src, d);
            last_dst = d;
        }
        dst[i] = last_to;
    }
}

static void remember_touched(struct sw_ctx *c, struct vqueue *q)
{
    if (q->signal_pending)
        return;    /* already listed by this or another thread */
    q->signal_pending = true;
    if (c->ntouched < SW_TOUCHED_MAX) {
        c->touched[c->ntouched++] = q;
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

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* rx_lock with a bounded spin: false if another worker kept it. */
static bool rx_trylock(struct vqueue *q)
{
    for (unsigned i = 0; i < RX_LOCK_SPINS; i++) {
        if (pthread_mutex_trylock(&q->rx_lock) == 0)
            return true;
        cpu_relax();
    }
    return false;
}

void switch_release(struct sw_ctx *c)
{
    struct vqueue *q = c->held;
    if (!q)
        return;
    vq_flush(&q->vq);
    pthread_mutex_unlock(&q->rx_lock);
    pthread_rwlock_unlock(&q->dev->lock);
    c->held = NULL;
    c->held_frames = 0;
}

enum hold_result { HOLD_OK, HOLD_DROP, HOLD_BUSY };

/* Takes the locks of the RX queue for n frames, reusing the held ones when
 * they fit, and letting them go before taking others.  Counts the n frames
 * as dropped when it returns HOLD_DROP. */
static enum hold_result hold_rx_queue(struct sw_ctx *c, struct vdev *d, unsigned qp, unsigned n,
                                      struct vqueue **out)
{
    if (c->held && c->held->dev == d && c->held_frames < HOLD_MAX &&
        pick_rx_queue(d, qp) == c->held) {
        *out = c->held;
        return HOLD_OK;
    }
    switch_release(c);
    if (pthread_rwlock_tryrdlock(&d->lock) != 0) {
        stat_add_shared(&d->q[0].st.drops_nodest, n);   /* being reconfigured */
        return HOLD_DROP;
    }
    struct vqueue *q = pick_rx_queue(d, qp);
    if (!q) {
        if (d->connected)
            stat_add_shared(&d->q[0].st.drops_nodest, n);
        pthread_rwlock_unlock(&d->lock);
        return HOLD_DROP;
    }
    if (!rx_trylock(q)) {
        pthread_rwlock_unlock(&d->lock);
        return HOLD_BUSY;
    }
    c->held = q;
    c->held_frames = 0;
    *out = q;
    return HOLD_OK;
}

static unsigned deliver_vhost(struct sw_ctx *c, struct port *dst, unsigned qp,
                              const struct frame *f, unsigned n, bool may_defer)
{
    struct vdev *d = &dst->dev;
    struct vqueue *q;
    switch (hold_rx_queue(c, d, qp, n, &q)) {
    case HOLD_BUSY:
        if (may_defer)
            return 0;
        stat_add_shared(&d->q[0].st.drops_nodest, n);   /* not deferrable */
        return n;
    case HOLD_DROP:
        return n;
    case HOLD_OK:
        break;
    }
    c->held_frames += n;
    if (net_rx_run(&c->rx, q, f, n))
        remember_touched(c, q);
    return n;
}

unsigned switch_deliver(struct sw_ctx *c, struct port *dst, unsigned qp, const struct frame *f,
                        unsigned n, bool may_defer)
{
    if (dst->type == PORT_TAP) {
        for (unsigned i = 0; i < n; i++)
            tap_send(dst, &f[i]);
        return n;
    }
    if (dst->type == PORT_UPLINK) {
        uplink_send(dst, f, n);   /* the whole run, batched */
        return n;
    }
    if (dst->type == PORT_VXLAN) {
        vxlan_send(dst, f, n);    /* likewise, encapsulated */
        return n;
    }
    return deliver_vhost(c, dst, qp, f, n, may_defer);
}

void switch_flood(struct sw_ctx *c, const struct lswitch *sw, const struct port *src, unsigned qp,
                  const struct frame *f)
{
    unsigned n = __atomic_load_n(&sw->ports->n, __ATOMIC_ACQUIRE);
    for (unsigned i = 0; i < n; i++) {
        struct port *p = switch_port(sw, (int)i);
        if (p && p != src)
            switch_deliver(c, p, qp, f, 1, false);
    }
}

bool switch_flush(struct sw_ctx *c)
{
    switch_release(c);
    unsigned keep = 0;
    for (unsigned i = 0; i < c->ntouched; i++) {
        struct vqueue *q = c->touched[i];
        struct vdev *d = q->dev;
        /* A writer holds or awaits the device: it sends the interrupts left
         * pending when it is done (vu_dev_unlock). */
        if (pthread_rwlock_tryrdlock(&d->lock) != 0)
            continue;
        if (!rx_trylock(q)) {
            pthread_rwlock_unlock(&d->lock);
            c->touched[keep++] = q;   /* its filler leaves it to us: next pass */
            continue;
        }
        if (q->signal_pending) {
            q->signal_pending = false;
            if (dev_queue_ready(d, q) && vq_should_signal(&q->vq))
                dev_signal(q);
        }
        pthread_mutex_unlock(&q->rx_lock);
        pthread_rwlock_unlock(&d->lock);
    }
    c->ntouched = keep;
    return keep == 0;
}
