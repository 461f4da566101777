/*
 * device.c - see device.h.
 */
#include "device.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "port.h"
#include "trace.h"
#include "worker.h"

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
    for (unsigned i = 0; i < LWV_MAX_VQS; i++) {
        struct vqueue *q = &d->q[i];
        q->dev = d;
        q->index = i;
        q->kickfd = q->callfd = q->errfd = -1;
        q->enable = -1;
        pthread_mutex_init(&q->rx_lock, NULL);
    }
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
        if (q->kickfd >= 0)
            worker_unwatch_queue(q);
        close_fd(&q->kickfd);
        close_fd(&q->callfd);
        close_fd(&q->errfd);
        pthread_mutex_lock(&q->rx_lock);
        uint64_t on = q->vq.notify_enables, off = q->vq.notify_disables;
        memset(&q->vq, 0, sizeof(q->vq));
        q->vq.notify_enables = on;     /* counters live as long as the port */
        q->vq.notify_disables = off;
        q->kick_set = false;
        q->enable = -1;
        q->signal_pending = false;
        pthread_mutex_unlock(&q->rx_lock);
    }
    mem_clear(&d->mem);
    d->features = 0;
    d->features_set = false;
    d->protocol_features = 0;
    d->status = 0;
    d->broken = false;
    d->mtu = 0;
}

void dev_remap_rings(struct vdev *d)
{
    for (unsigned i = 0; i < 2 * d->max_qp; i++) {
        struct vqueue *q = &d->q[i];
        if (!q->vq.addr_set)
            continue;
        if (!vq_map(&q->vq, &d->mem) && d->mem.n > 0)
            log_warn("port %s: ring %u is not inside the current memory table", d->port->name, i);
        worker_poke_queue(q);
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
    if (dev_has_feature(d, VIRTIO_F_VERSION_1) || dev_has_feature(d, VIRTIO_NET_F_MRG_RXBUF))
        return VIRTIO_NET_HDR_LEN;
    return VIRTIO_NET_HDR_LEN_LEGACY;
}

bool dev_queue_ready(const struct vdev *d, const struct vqueue *q)
{
    if (!d->connected || !d->features_set || __atomic_load_n(&d->broken, __ATOMIC_RELAXED))
        return false;
    if (!q->kick_set || !q->vq.desc || q->vq.broken_reason)
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
    if (write(q->callfd, &one, sizeof(one)) == sizeof(one)) {
        stat_add_shared(&q->st.calls, 1);
        if (trace_self)
            trace(trace_self, TR_SIGNAL, q->dev->port->index, q->index, 0);
    }
}
