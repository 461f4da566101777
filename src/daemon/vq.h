/*
 * vq.h - generic virtqueue access, backend side: split rings (virtio 1.2,
 * 2.7, vq.c) and packed rings (2.8, vq_packed.c) behind one API, the
 * layout chosen per device when VIRTIO_F_RING_PACKED is negotiated.
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
 *
 * Packed rings put used descriptors where available ones were, so nothing
 * can be taken back once written: their used entries wait in a log (struct
 * vq_pk) until vq_flush, or until a pop needs the room, and only entries
 * before an open group (vq_used_begin) are written early.  Chains must be
 * pushed in the order they were popped (the daemon always does), since a
 * used descriptor's place follows from the chains before it.
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

/* Packed rings: the log of popped chains whose used descriptors are not
 * written yet, and the buffer IDs in it. */
#define VQ_PK_LOG 512
struct vq_pk_ent {
    uint32_t len;       /* bytes written, once pushed */
    uint16_t id;        /* buffer ID (from the chain's last descriptor) */
    uint16_t ndesc;     /* ring descriptors the chain took */
    uint16_t start;     /* its first position | avail wrap << 15, for vq_unpop */
    uint8_t batch;      /* IN_ORDER: completes with the entry after it */
};
struct vq_pk {
    /* Free-running positions in log: [head, push) pushed, [push, tail)
     * popped and not pushed yet. */
    uint32_t head, push, tail;
    uint32_t group;             /* start of the open used group */
    bool group_open;
    struct vq_pk_ent log[VQ_PK_LOG];
    uint64_t out[VQ_PK_LOG];    /* the used descriptors one flush writes */
    uint64_t busy[VIRTQ_MAX_SIZE / 64];    /* buffer IDs in the log */
};

/* A packed ring's position kept for a restarted daemon (rstate.c maps it
 * from a file).  word: target << 16 | current, each a position | wrap <<
 * 15; the halves differ only while the batch in ent is being written into
 * the ring, and a daemon killed then is replaced by one that writes the
 * batch again from here (vq_pk_resume).  Each entry: position | wrap <<
 * 15 | id << 16 | len << 32. */
struct vq_journal {
    uint32_t word;
    uint32_t count;
    uint64_t ent[VQ_PK_LOG];
};

struct vq {
    /* Set by the control plane. */
    uint32_t num;               /* 0 until SET_VRING_NUM */
    uint64_t desc_uva, avail_uva, used_uva;
    bool addr_set;
    bool event_idx;             /* VIRTIO_RING_F_EVENT_IDX negotiated */
    bool indirect;              /* VIRTIO_RING_F_INDIRECT_DESC negotiated */
    bool in_order;              /* VIRTIO_F_IN_ORDER negotiated */
    bool packed;                /* VIRTIO_F_RING_PACKED negotiated */
    bool log_ring;              /* VHOST_VRING_F_LOG: log our ring writes */

    /* Translated ring pointers; NULL when not mapped.  A packed ring uses
     * desc_uva for its descriptors (pdesc), avail_uva for the driver's
     * event suppression structure and used_uva for the device's. */
    struct virtq_desc *desc;
    struct virtq_avail *avail;
    struct virtq_used *used;
    struct virtq_pdesc *pdesc;
    struct virtq_pevent *drv_event;
    struct virtq_pevent *dev_event;
    struct vq_pk *pk;           /* packed rings' log, kept across resets */
    /* For the dirty log: the memory the ring was mapped in and the guest
     * addresses of what we write (split: the used area; packed: the
     * descriptor ring and the device event structure). */
    const struct guest_mem *mem;
    uint64_t used_gpa, desc_gpa;
    struct vq_journal *journal; /* packed: where our position is saved as
                                 * used descriptors go out (rstate.h), or NULL */

    /* Datapath state.  Packed rings: last_avail and used_idx are ring
     * positions (below num), each with its wrap counter. */
    uint16_t last_avail;        /* next avail entry to consume */
    bool avail_wrap, used_wrap;
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

/* Restarts the ring at the vhost-user ring state (SET_VRING_BASE): split,
 * the avail/used index in the low 16 bits; packed, virtq_packed_state's
 * layout, of which the avail half sets both positions (vq_packed.c says
 * why).  A packed position at or past num keeps the ring from mapping. */
void vq_set_base(struct vq *vq, uint32_t state);
/* Where a packed ring resumes from its journal (rstate.h): where it was
 * at rest, or, if a daemon was killed while writing a batch of used
 * descriptors, after that batch, which is written again first (the ring
 * must be mapped; a batch naming positions outside it is not written and
 * the ring resumes before it).  The journal is left at rest. */
uint32_t vq_pk_resume(struct vq *vq, struct vq_journal *j);
/* Descriptors a packed ring's driver made available from our avail
 * position on (diagnostics: it has no index to subtract; mapped ring). */
unsigned vq_pk_waiting(const struct vq *vq);
/* The state to report in GET_VRING_BASE, in the same layout. */
uint32_t vq_get_base(const struct vq *vq);
/* True if state names positions inside a ring of num entries. */
bool vq_base_fits(const struct vq *vq, uint32_t state, uint32_t num);
/* Frees what vq_map allocated (the packed log); the vq is then unusable
 * until mapped again. */
void vq_release(struct vq *vq);

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

/* Writes a used entry (not yet visible to the driver).  head is the chain's
 * head (split) or buffer ID (packed), as popped. */
void vq_push(struct vq *vq, uint16_t head, uint32_t len);
/* A group of pushes that may be taken back: vq_used_begin returns its
 * start, vq_used_rollback(start) forgets the pushes since (the chains must
 * then be given back with vq_unpop), vq_used_end keeps them. */
uint32_t vq_used_begin(struct vq *vq);
void vq_used_rollback(struct vq *vq, uint32_t start);
void vq_used_end(struct vq *vq);
/* Writes the used entries of n chains consumed in ring order, all with
 * length len (a TX completion): one entry for the last of them if
 * VIRTIO_F_IN_ORDER was negotiated, else one each. */
void vq_push_batch(struct vq *vq, const uint16_t *heads, unsigned n, uint32_t len);
/* Publishes pushed entries by storing used->idx (release); packed rings
 * write the used descriptors, each made visible by its flags (release). */
void vq_flush(struct vq *vq);
/* After a flush: true if the driver wants an interrupt now. */
bool vq_should_signal(struct vq *vq);

/* Ask the driver not to kick / to kick again.  vq_enable_notify returns
 * true if buffers arrived meanwhile (the caller must then process them
 * instead of sleeping). */
void vq_disable_notify(struct vq *vq);
bool vq_enable_notify(struct vq *vq);

void vq_mark_broken(struct vq *vq, const char *reason);
/* True when the ring's writes must go into the dirty log. */
static inline bool vq_logging(const struct vq *vq)
{
    return vq->mem && vq->mem->log.bits && (vq->log_ring || vq->mem->log_all);
}
/* Marks the guest pages of the ring's device-written parts dirty. */
void vq_log_ring(const struct vq *vq);

/* True when the ring's memory is mapped, in its layout. */
static inline bool vq_mapped(const struct vq *vq)
{
    return vq->packed ? vq->pdesc != NULL : vq->desc != NULL;
}
/* Why the ring is broken, or NULL (any thread). */
static inline const char *vq_broken(const struct vq *vq)
{
    return __atomic_load_n(&vq->broken_reason, __ATOMIC_RELAXED);
}

#endif
