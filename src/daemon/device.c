/*
 * device.c - see device.h.
 */
#include "device.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "port.h"
#include "sysc.h"
#include "trace.h"

void dev_init(struct vdev *d, struct port *p, unsigned max_qp)
{
    memset(d, 0, sizeof(*d));
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    /* Writers (the control plane) must not starve behind busy workers. */
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&d->lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    d->port = p;
    d->max_qp = max_qp;
    d->mem.fault_flag = &d->broken;
    dev_set_features(d, 0);
    for (unsigned i = 0; i < LWV_MAX_VQS; i++) {
        struct vqueue *q = &d->q[i];
        q->dev = d;
        q->index = i;
        q->kickfd = q->callfd = q->errfd = -1;
        q->enable = -1;
        pthread_mutex_init(&q->rx_lock, NULL);
    }
}

void dev_fini(struct vdev *d)
{
    mem_clear(&d->mem);
    mem_log_unmap(&d->mem);
    rstate_close(&d->rs);
    for (unsigned i = 0; i < LWV_MAX_VQS; i++) {
        vq_release(&d->q[i].vq);
        pthread_mutex_destroy(&d->q[i].rx_lock);
    }
    pthread_rwlock_destroy(&d->lock);
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

void dev_reset(struct vdev *d)
{
    for (unsigned i = 0; i < 2 * d->max_qp; i++) {
        struct vqueue *q = &d->q[i];
        close_fd(&q->kickfd);
        close_fd(&q->callfd);
        close_fd(&q->errfd);
        pthread_mutex_lock(&q->rx_lock);
        uint64_t on = q->vq.notify_enables, off = q->vq.notify_disables;
        struct vq_pk *pk = q->vq.pk;
        memset(&q->vq, 0, sizeof(q->vq));
        q->vq.notify_enables = on;     /* counters live as long as the port */
        q->vq.notify_disables = off;
        q->vq.pk = pk;                 /* reused by the next packed ring */
        q->kick_set = false;
        q->enable = -1;
        q->signal_pending = false;
        pthread_mutex_unlock(&q->rx_lock);
    }
    mem_clear(&d->mem);
    mem_log_unmap(&d->mem);
    dev_set_features(d, 0);
    d->features_set = false;
    d->protocol_features = 0;
    __atomic_store_n(&d->status, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&d->broken, false, __ATOMIC_RELAXED);
    d->mtu = 0;
}

void dev_set_features(struct vdev *d, uint64_t f)
{
    d->features = f;
    struct dev_caps *c = &d->caps;
    c->hdr_len = (dev_has_feature(d, VIRTIO_F_VERSION_1) ||
                  dev_has_feature(d, VIRTIO_NET_F_MRG_RXBUF)) ? VIRTIO_NET_HDR_LEN
                                                              : VIRTIO_NET_HDR_LEN_LEGACY;
    c->mrg_rxbuf = dev_has_feature(d, VIRTIO_NET_F_MRG_RXBUF);
    c->guest_csum = dev_has_feature(d, VIRTIO_NET_F_GUEST_CSUM);
    c->guest_tso4 = dev_has_feature(d, VIRTIO_NET_F_GUEST_TSO4);
    c->guest_tso6 = dev_has_feature(d, VIRTIO_NET_F_GUEST_TSO6);
    c->csum = dev_has_feature(d, VIRTIO_NET_F_CSUM);
    c->host_tso4 = dev_has_feature(d, VIRTIO_NET_F_HOST_TSO4);
    c->host_tso6 = dev_has_feature(d, VIRTIO_NET_F_HOST_TSO6);
    /* Live migration: QEMU sets LOG_ALL while it copies the guest. */
    d->mem.log_all = dev_has_feature(d, VHOST_F_LOG_ALL);
    for (unsigned i = 0; i < LWV_MAX_VQS; i++) {
        struct vq *vq = &d->q[i].vq;
        vq->event_idx = dev_has_feature(d, VIRTIO_RING_F_EVENT_IDX);
        vq->indirect = dev_has_feature(d, VIRTIO_RING_F_INDIRECT_DESC);
        vq->in_order = dev_has_feature(d, VIRTIO_F_IN_ORDER);
        bool packed = dev_has_feature(d, VIRTIO_F_RING_PACKED);
        if (packed != vq->packed) {
            /* A ring mapped in the other layout is read anew in this one
             * (only a misbehaving frontend changes it after the rings). */
            bool was_mapped = vq->desc || vq->pdesc;
            vq->packed = packed;
            if (was_mapped)
                vq_map(vq, &d->mem);
        }
    }
}

void dev_remap_rings(struct vdev *d)
{
    for (unsigned i = 0; i < 2 * d->max_qp; i++) {
        struct vqueue *q = &d->q[i];
        if (!q->vq.addr_set)
            continue;
        if (!vq_map(&q->vq, &d->mem) && d->mem.n > 0)
            log_warn("port %s: ring %u is not inside the current memory table", d->port->name, i);
    }
}

void dev_mark_broken(struct vdev *d, struct vqueue *q, const char *why)
{
    /* Workers may race here under the read lock; the first one logs. */
    if (__atomic_exchange_n(&d->broken, true, __ATOMIC_RELAXED))
        return;
    __atomic_or_fetch(&d->status, VIRTIO_STATUS_NEEDS_RESET, __ATOMIC_RELAXED);
    log_error("port %s: guest broke ring %u: %s; device stopped until reset",
              d->port->name, q->index, why);
    if (q->errfd >= 0) {
        uint64_t one = 1;
        sysc_note();
        if (write(q->errfd, &one, sizeof(one)) < 0 && errno != EAGAIN)
            log_debug("port %s: error eventfd write failed: %s", d->port->name, strerror(errno));
    }
}

bool dev_has_feature(const struct vdev *d, unsigned bit)
{
    return (d->features >> bit) & 1;
}

unsigned dev_hdr_len(const struct vdev *d)
{
    return d->caps.hdr_len;
}

bool dev_queue_ready(const struct vdev *d, const struct vqueue *q)
{
    if (!d->connected || !d->features_set || dev_is_broken(d))
        return false;
    if (!q->kick_set || !vq_mapped(&q->vq) || vq_broken(&q->vq))
        return false;
    if (q->enable >= 0)
        return q->enable;
    /* Without protocol features a ring starts enabled (vhost-user spec). */
    return !dev_has_feature(d, VHOST_USER_F_PROTOCOL_FEATURES);
}

void dev_signal(struct vqueue *q)
{
    if (q->callfd < 0)
        return;
    uint64_t one = 1;
    /* callfd is non-blocking: a full counter means the frontend is not
     * reading, and losing this interrupt is then harmless. */
    sysc_note();
    if (write(q->callfd, &one, sizeof(one)) == sizeof(one)) {
        stat_add_shared(&q->st.calls, 1);
        if (trace_self)
            trace(trace_self, TR_SIGNAL, q->dev->port->index, q->index, 0);
    }
}
