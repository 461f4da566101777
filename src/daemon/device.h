/*
 * device.h - the state of one vhost-user virtio-net device (a port's guest
 * side) as the control plane builds it and the datapath reads it.
 *
 * Owns: struct vdev and struct vqueue, their lock discipline, the
 * capabilities derived from the negotiated features and the "is this
 * queue ready" rule.  Concurrency (docs/threading.md): the control thread
 * changes a device only under dev->lock held for writing; a worker reads
 * it under the lock held for reading, always taken with tryrdlock, so a
 * worker never waits for a reconfiguration.  An RX queue may be filled by
 * any worker, so its datapath state is also guarded by its rx_lock.
 * Must not: parse messages (vu_ctrl.c), switch frames (switch.c) or call
 * up into the workers: the control plane pokes them itself.
 */
#ifndef LWV_DEVICE_H
#define LWV_DEVICE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "mem.h"
#include "policy.h"
#include "rstate.h"
#include "vq.h"

#define LWV_MAX_QUEUE_PAIRS 16
#define LWV_MAX_VQS (2 * LWV_MAX_QUEUE_PAIRS)

struct worker;
struct vdev;

#define BATCH_BUCKETS 10

/* Counters: each is written by one thread at a time (the queue's owner,
 * or the holder of rx_lock) and read by the control thread. */
struct q_stats {
    uint64_t packets;
    uint64_t bytes;
    uint64_t drops_full;      /* RX: no guest buffer; TX: destination full */
    uint64_t drops_invalid;   /* malformed frame or header */
    uint64_t drops_nodest;    /* RX: queue not ready / TX: nowhere to go */
    uint64_t drops_spoofed;   /* TX: source MAC not the port's (antispoof=on) */
    uint64_t kicks;
    uint64_t calls;
    uint64_t passes;
    uint64_t sw_offload;      /* frames checksummed or segmented in software */
    /* Descriptors per pass: bucket 0 empty, bucket k holds 2^(k-1)..2^k-1. */
    uint64_t batch[BATCH_BUCKETS];
};

struct vqueue {
    struct vdev *dev;
    unsigned index;
    struct vq vq;
    int kickfd;             /* -1: none; guarded by dev->lock */
    int callfd;
    int errfd;
    bool kick_set;          /* SET_VRING_KICK seen (fd or polling) */
    uint32_t base;          /* the last SET_VRING_BASE value, as sent */
    int enable;             /* -1: not set by the frontend, else 0/1 */
    struct worker *worker;  /* serves this queue's kicks */
    pthread_mutex_t rx_lock;
    /* RX: used entries published but not yet signalled (under rx_lock);
     * whoever clears it owes the interrupt decision. */
    bool signal_pending;
    /* Owned by the serving worker. */
    bool pending;
    int recheck;            /* atomic: control plane asks for a pass */
    struct qpolicy pol;
    struct q_stats st;
};

struct port;

/* What the negotiated features mean for the datapath, computed once when
 * they are set, so a frame never tests feature bits. */
struct dev_caps {
    unsigned hdr_len;       /* virtio-net header the guest uses: 12 or 10 */
    bool mrg_rxbuf;         /* RX frames may span several chains */
    bool guest_csum;        /* the guest takes partial checksums */
    bool guest_tso4, guest_tso6;
    bool csum;              /* the guest may send partial checksums */
    bool host_tso4, host_tso6;
};

struct vdev {
    pthread_rwlock_t lock;
    struct port *port;
    unsigned max_qp;
    bool connected;
    uint64_t features;
    bool features_set;
    struct dev_caps caps;
    uint64_t protocol_features;
    uint8_t status;         /* atomic: workers set NEEDS_RESET */
    bool broken;            /* the guest broke a ring: no further service;
                             * atomic: set by workers and the SIGBUS guard */
    uint32_t mtu;
    struct guest_mem mem;
    struct rstate rs;       /* packed rings' saved positions (control thread) */
    struct vqueue q[LWV_MAX_VQS];
};

void dev_init(struct vdev *d, struct port *p, unsigned max_qp);
/* Frees what dev_init made; nobody may use d any more (the caller reset it
 * and waited out the workers). */
void dev_fini(struct vdev *d);
/* Back to the state of a fresh connection: closes fds, unmaps memory.
 * Caller holds the write lock and has told the workers to stop watching
 * the kick fds. */
void dev_reset(struct vdev *d);
/* Records the negotiated features and what they mean for the rings and
 * the datapath (write lock). */
void dev_set_features(struct vdev *d, uint64_t features);
/* Re-translates every ring after a memory-table change (write lock). */
void dev_remap_rings(struct vdev *d);
/* True once a ring of d was broken by the guest (any thread). */
static inline bool dev_is_broken(const struct vdev *d)
{
    return __atomic_load_n(&d->broken, __ATOMIC_RELAXED);
}
/* Marks the device broken (caller holds the lock for reading or writing);
 * logs once and tells the frontend through the error eventfd. */
void dev_mark_broken(struct vdev *d, struct vqueue *q, const char *why);
bool dev_has_feature(const struct vdev *d, unsigned bit);
/* Size of the virtio-net header the guest uses. */
unsigned dev_hdr_len(const struct vdev *d);
/* True when the datapath may use q (caller holds the lock). */
bool dev_queue_ready(const struct vdev *d, const struct vqueue *q);
/* Sends an interrupt through q's call eventfd and counts it. */
void dev_signal(struct vqueue *q);

static inline void stat_add(uint64_t *counter, uint64_t n)
{
    __atomic_store_n(counter, __atomic_load_n(counter, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
}

/* For counters that several threads may bump without a common lock. */
static inline void stat_add_shared(uint64_t *counter, uint64_t n)
{
    __atomic_fetch_add(counter, n, __ATOMIC_RELAXED);
}

static inline uint64_t stat_get(const uint64_t *counter)
{
    return __atomic_load_n(counter, __ATOMIC_RELAXED);
}

#endif
