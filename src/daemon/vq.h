/*
 * vq.h - generic split virtqueue access (virtio 1.2, 2.7), backend side.
 *
 * Owns: reading available descriptor chains (direct and indirect) into
 * host iovecs with full validation, one at a time or as a burst, the
 * window of avail-ring heads read ahead, publishing used entries (one by
 * one, as a batch, or as one entry per batch with VIRTIO_F_IN_ORDER),
 * notification suppression both ways (flags and event indexes) and
 * deciding when the driver wants an interrupt.
 * Must not: know about virtio-net, ports or threads.  Callers serialise
 * access to one vq; the ring memory itself is hostile and may change under
 * us at any time, so every guest value is read exactly once into a local
 * (or into the head window below) and checked there before it is used.
 */
#ifndef LWV_VQ_H
#define LWV_VQ_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "mem.h"
#include "virtio.h"

/* Most iovecs one chain may need (descriptors split at region borders). */
#define VQ_MAX_IOV 1024
/* Most chains one burst pops. */
#define VQ_BURST_MAX 64
/* avail-ring heads read ahead of consumption (a power of two, at least
 * VQ_BURST_MAX). */
#define VQ_HEADS 64

struct vq_elem {
    uint16_t head;
    unsigned n_out;        /* device-readable iovecs, first */
    unsigned n_in;         /* device-writable iovecs, after them */
    uint64_t out_len;
    uint64_t in_len;
    struct iovec iov[VQ_MAX_IOV];
};

/* One chain of a burst; its iovecs live in the burst's pool. */
struct vq_chain {
    uint16_t head;
    unsigned n_out, n_in;
    uint64_t out_len, in_len;
    struct iovec *iov;     /* n_out readable, then n_in writable */
};

/* A pool big enough for one chain of VQ_MAX_IOV pieces after as many
 * small ones as a burst usually has. */
#define VQ_BURST_IOV (VQ_MAX_IOV + 4 * VQ_BURST_MAX)

struct vq_burst {
    unsigned n;            /* chains popped */
    unsigned niov;         /* pool entries in use */
    struct vq_chain c[VQ_BURST_MAX];
    struct iovec pool[VQ_BURST_IOV];
};

struct vq {
    /* Set by the control plane. */
    uint32_t num;               /* 0 until SET_VRING_NUM */
    uint64_t desc_uva, avail_uva, used_uva;
    bool addr_set;
    bool event_idx;             /* VIRTIO_RING_F_EVENT_IDX negotiated */
    bool indirect;              /* VIRTIO_RING_F_INDIRECT_DESC negotiated */
    bool in_order;              /* VIRTIO_F_IN_ORDER negotiated */

    /* Translated ring pointers; NULL when not mapped. */
    struct virtq_desc *desc;
    struct virtq_avail *avail;
    struct virtq_used *used;

    /* Datapath state. */
    uint16_t last_avail;        /* next avail entry to consume */
    uint16_t shadow_avail;      /* avail->idx as last read: entries up to it
                                 * are known to be published */
    /* avail->ring entries already read, for positions up to heads_end
     * (at most VQ_HEADS back), so a burst reads each once even when it
     * stops early or gives chains back. */
    uint16_t heads_end;
    uint16_t heads[VQ_HEADS];
    uint16_t used_idx;          /* shadow of used->idx we will publish */
    uint16_t signalled_used;
    bool signalled_valid;
    const char *broken_reason;  /* non-NULL once the guest broke the ring;
                                 * atomic: read by other threads */
    bool notify_off;            /* we asked the driver not to kick */
    uint64_t notify_enables;    /* counters, written by the serving thread */
    uint64_t notify_disables;
};

enum vq_pop_result { VQ_EMPTY = 0, VQ_GOT = 1, VQ_BROKEN = -1 };

/* Restarts the ring at avail/used index idx (SET_VRING_BASE). */
void vq_set_base(struct vq *vq, uint16_t idx);

/* Translates the ring addresses through mem; returns true when usable.
 * Either way the head window is emptied. */
bool vq_map(struct vq *vq, const struct guest_mem *mem);
void vq_unmap(struct vq *vq);

/* avail->idx and used->idx as they are in guest memory now (0 while the
 * ring is not mapped); for diagnostics, the datapath keeps its own copies. */
uint16_t vq_guest_avail_idx(const struct vq *vq);
uint16_t vq_guest_used_idx(const struct vq *vq);

/* Entries the driver made available that we have not consumed; -1 and
 * marks the vq broken if the index jumped by more than the ring size. */
int vq_avail_count(struct vq *vq);

/* Pops the next available chain into e.  allow_in/allow_out say which
 * descriptor directions this queue accepts; a chain with a direction it
 * does not accept, or any structural fault, breaks the vq. */
enum vq_pop_result vq_pop(struct vq *vq, const struct guest_mem *mem, struct vq_elem *e,
                          bool allow_out, bool allow_in);
/* Appends up to max further chains to b (fewer when the ring has fewer,
 * or when the pool could not be sure to hold one more chain).  Reads
 * the heads of the whole burst first and prefetches their descriptors,
 * then the first bytes of each chain's buffers.  Returns the chains
 * added; a chain that breaks the ring is not added, the ring is marked
 * broken and the chains before it are returned as usual. */
unsigned vq_pop_burst(struct vq *vq, const struct guest_mem *mem, struct vq_burst *b, unsigned max,
                      bool allow_out, bool allow_in);
/* Gives back the last n popped chains (not yet pushed): they will be
 * popped again, their heads from the window, their descriptors re-read
 * and checked afresh. */
void vq_unpop(struct vq *vq, uint16_t n);

/* Writes a used entry (not yet visible to the driver). */
void vq_push(struct vq *vq, uint16_t head, uint32_t len);
/* Writes the used entries of n chains consumed in ring order, all with
 * length len (a TX completion): one entry for the last of them if
 * VIRTIO_F_IN_ORDER was negotiated, else one each. */
void vq_push_batch(struct vq *vq, const uint16_t *heads, unsigned n, uint32_t len);
/* Publishes pushed entries by storing used->idx (release). */
void vq_flush(struct vq *vq);
/* After a flush: true if the driver wants an interrupt now. */
bool vq_should_signal(struct vq *vq);

/* Ask the driver not to kick / to kick again.  vq_enable_notify returns
 * true if buffers arrived meanwhile (the caller must then process them
 * instead of sleeping). */
void vq_disable_notify(struct vq *vq);
bool vq_enable_notify(struct vq *vq);

void vq_mark_broken(struct vq *vq, const char *reason);
/* Why the ring is broken, or NULL (any thread). */
static inline const char *vq_broken(const struct vq *vq)
{
    return __atomic_load_n(&vq->broken_reason, __ATOMIC_RELAXED);
}

#endif
