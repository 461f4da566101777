/*
 * vq_packed.c - the packed ring (virtio 1.2, 2.8) behind vq.h's API.
 *
 * Owns: popping chains from a packed descriptor ring (direct, chained,
 * wrapping, indirect), the log of popped chains until their used
 * descriptors are written, and both event suppression structures.
 * Must not: know about virtio-net; vq.c dispatches here when vq->packed.
 *
 * Ordering: the driver writes a chain's descriptors, then the head's
 * flags (release); we load the head's flags with acquire and only then
 * the rest of the chain.  We write a used descriptor's id and len, then
 * its flags with release, one descriptor at a time in ring order, so the
 * ring never shows a used descriptor after one that is not written yet.
 * Event suppression needs a full fence between our store and our load of
 * the other side's state, as with split rings.
 *
 * Hostile input: every descriptor is read once into locals; a chain may
 * wrap past the ring end but not take more than num descriptors; the
 * buffer ID (the chain's last descriptor's, as the spec says) must be
 * below num and not already in flight; indirect tables follow the split
 * rules (aligned, one region, at most num entries, no nesting).  Wrap
 * bits that lie either hide a descriptor (the ring stalls) or offer one
 * that is then checked like any other: neither reaches outside the guest.
 */
#include <stdlib.h>
#include <string.h>

#include "vq_impl.h"

#define LOG_MASK (VQ_PK_LOG - 1)

static inline bool desc_avail(uint16_t flags, bool wrap)
{
    return !!(flags & VIRTQ_DESC_F_AVAIL) == wrap && !!(flags & VIRTQ_DESC_F_USED) != wrap;
}

/* pos advanced by n descriptors (n <= num), the wrap counter flipped when
 * it passes the end. */
static inline void ring_advance(const struct vq *vq, uint16_t *pos, bool *wrap, uint32_t n)
{
    uint32_t p = (uint32_t)*pos + n;
    if (p >= vq->num) {
        p -= vq->num;
        *wrap = !*wrap;
    }
    *pos = (uint16_t)p;
}

static inline bool busy_test_set(struct vq_pk *pk, uint16_t id)
{
    uint64_t bit = 1ull << (id & 63), *w = &pk->busy[id >> 6];
    bool was = *w & bit;
    *w |= bit;
    return was;
}

static inline void busy_clear(struct vq_pk *pk, uint16_t id)
{
    pk->busy[id >> 6] &= ~(1ull << (id & 63));
}

static void log_reset(struct vq_pk *pk)
{
    pk->head = pk->push = pk->tail = 0;
    pk->group_open = false;
    memset(pk->busy, 0, sizeof(pk->busy));
}

bool pk_map(struct vq *vq, const struct guest_mem *mem)
{
    /* Alignment from virtio 1.2 2.8.10: descriptors 16, event structures 4. */
    if ((vq->desc_uva & 15) || (vq->avail_uva & 3) || (vq->used_uva & 3))
        return false;
    if (vq->num > VIRTQ_MAX_SIZE || vq->last_avail >= vq->num || vq->used_idx >= vq->num)
        return false;
    if (!vq->pk) {
        vq->pk = calloc(1, sizeof(*vq->pk));
        if (!vq->pk)
            return false;
    }
    log_reset(vq->pk);
    vq->pdesc = mem_uva_to_host(mem, vq->desc_uva, virtq_pdesc_size(vq->num));
    vq->drv_event = mem_uva_to_host(mem, vq->avail_uva, sizeof(struct virtq_pevent));
    vq->dev_event = mem_uva_to_host(mem, vq->used_uva, sizeof(struct virtq_pevent));
    return vq->pdesc && vq->drv_event && vq->dev_event;
}

/* The used half of the state is not taken: DPDK's virtio-user sends only
 * the avail half (0x8000 at start), QEMU both halves equal.  We complete
 * every chain we take before a pass ends, so nothing is ever in flight
 * between passes and the used position is the avail one (DPDK's backend
 * does the same). */
void pk_set_base(struct vq *vq, uint32_t state)
{
    vq->last_avail = vq->used_idx = state & 0x7fff;
    vq->avail_wrap = vq->used_wrap = (state >> 15) & 1;
    if (vq->pk)
        log_reset(vq->pk);
}

unsigned vq_pk_waiting(const struct vq *vq)
{
    uint16_t pos = vq->last_avail;
    bool wrap = vq->avail_wrap;
    unsigned n = 0;
    while (n < vq->num &&
           desc_avail(__atomic_load_n(&vq->pdesc[pos].flags, __ATOMIC_ACQUIRE), wrap)) {
        n++;
        ring_advance(vq, &pos, &wrap, 1);
    }
    return n;
}

uint32_t pk_get_base(const struct vq *vq)
{
    return virtq_packed_state(vq->last_avail, vq->avail_wrap, vq->used_idx, vq->used_wrap);
}

/* One used descriptor as the journal keeps it: position | wrap << 15 |
 * id << 16 | len << 32. */
static inline uint64_t used_entry(uint16_t at, bool wrap, uint16_t id, uint32_t len)
{
    return (uint64_t)(at | (uint16_t)wrap << 15) | (uint64_t)id << 16 | (uint64_t)len << 32;
}

static inline void write_used(struct virtq_pdesc *ring, uint64_t v)
{
    uint16_t at = v & 0x7fff;
    uint32_t len = (uint32_t)(v >> 32);
    uint16_t flags = (uint16_t)((v & 0x8000 ? VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_USED : 0) |
                                (len ? VIRTQ_DESC_F_WRITE : 0));
    __atomic_store_n(&ring[at].id, (uint16_t)(v >> 16), __ATOMIC_RELAXED);
    __atomic_store_n(&ring[at].len, len, __ATOMIC_RELAXED);
    __atomic_store_n(&ring[at].flags, flags, __ATOMIC_RELEASE);
}

/* Writes n used descriptors, the first one last: the driver, which reads
 * them from the first, then finds the whole batch at once instead of
 * taking the cache line from us for each one (measured: 1.01x -> 1.14x
 * DPDK's backend on the DPDK loop, docs/performance.md). */
static void write_batch(struct virtq_pdesc *ring, const uint64_t *v, unsigned n)
{
    for (unsigned k = 1; k < n; k++)
        write_used(ring, v[k]);
    write_used(ring, v[0]);
}

/* Writes the used descriptors of log entries [head, upto).  With IN_ORDER
 * a batch takes one descriptor, at its first chain's place, naming its
 * last buffer (virtio 1.2 2.8.20).  With a journal, the batch is saved
 * there before the ring is touched (vq_journal). */
static void commit(struct vq *vq, uint32_t upto)
{
    struct vq_pk *pk = vq->pk;
    uint16_t pos = vq->used_idx, at = pos;
    bool wrap = vq->used_wrap, at_wrap = wrap, open = false;
    uint32_t from = (uint32_t)(pos | (uint16_t)wrap << 15);
    unsigned n = 0;
    for (uint32_t i = pk->head; i != upto; i++) {
        const struct vq_pk_ent *e = &pk->log[i & LOG_MASK];
        if (!open) {
            at = pos;
            at_wrap = wrap;
            open = true;
        }
        busy_clear(pk, e->id);
        ring_advance(vq, &pos, &wrap, e->ndesc);
        if (e->batch && i + 1 != upto)
            continue;
        pk->out[n++] = used_entry(at, at_wrap, e->id, e->len);
        open = false;
    }
    uint32_t to = (uint32_t)(pos | (uint16_t)wrap << 15);
    struct vq_journal *j = vq->journal;
    if (j) {
        memcpy(j->ent, pk->out, n * sizeof(pk->out[0]));
        __atomic_store_n(&j->count, n, __ATOMIC_RELAXED);
        __atomic_store_n(&j->word, to << 16 | from, __ATOMIC_RELEASE);
    }
    write_batch(vq->pdesc, pk->out, n);
    if (j)
        __atomic_store_n(&j->word, to << 16 | to, __ATOMIC_RELEASE);
    if (vq_logging(vq))
        vq_log_ring(vq);
    vq->used_idx = pos;
    vq->used_wrap = wrap;
    pk->head = upto;
}

uint32_t vq_pk_resume(struct vq *vq, struct vq_journal *j)
{
    uint32_t w = __atomic_load_n(&j->word, __ATOMIC_ACQUIRE);
    uint32_t cur = w & 0xffff, to = w >> 16;
    if (cur == to)
        return cur;
    uint32_t n = __atomic_load_n(&j->count, __ATOMIC_RELAXED);
    if (!vq->pdesc || n == 0 || n > VQ_PK_LOG)
        return cur;
    for (uint32_t k = 0; k < n; k++)
        if ((j->ent[k] & 0x7fff) >= vq->num)
            return cur;
    /* Writing a descriptor the killed daemon wrote already writes the
     * same values again. */
    write_batch(vq->pdesc, j->ent, n);
    __atomic_store_n(&j->word, to << 16 | to, __ATOMIC_RELEASE);
    if (vq_logging(vq))
        vq_log_ring(vq);
    return to;
}

/* Room in the log for one more chain: writes out what was pushed before
 * any open group (which may still be taken back).  False if none. */
static bool make_room(struct vq *vq)
{
    struct vq_pk *pk = vq->pk;
    uint32_t upto = pk->group_open ? pk->group : pk->push;
    if (upto != pk->head)
        commit(vq, upto);
    return pk->tail - pk->head < VQ_PK_LOG;
}

/* A packed indirect table: len/16 descriptors used in sequence, of which
 * only the WRITE flag means anything (virtio 1.2 2.8.7). */
static const char *walk_indirect(struct walk *w, const struct guest_mem *mem, uint64_t addr,
                                 uint32_t len, uint32_t ring_num)
{
    if (len == 0 || (len % sizeof(struct virtq_pdesc)) != 0)
        return "indirect table length not a multiple of 16";
    if (addr & 15)
        return "indirect table misaligned";
    uint32_t count = len / (uint32_t)sizeof(struct virtq_pdesc);
    if (count > ring_num)
        return "indirect table longer than the ring";
    const struct virtq_pdesc *table = mem_gpa_to_host(mem, addr, len);
    if (!table)
        return "indirect table outside guest memory or across regions";
    for (uint32_t i = 0; i < count; i++) {
        uint64_t a = __atomic_load_n(&table[i].addr, __ATOMIC_RELAXED);
        uint32_t l = __atomic_load_n(&table[i].len, __ATOMIC_RELAXED);
        uint16_t f = __atomic_load_n(&table[i].flags, __ATOMIC_RELAXED);
        if (f & VIRTQ_DESC_F_INDIRECT)
            return "nested indirect table";
        const char *err = add_buffer(w, mem, a, l, f & VIRTQ_DESC_F_WRITE);
        if (err)
            return err;
    }
    return NULL;
}

/* Walks the chain whose head (flags, addr, len, id already read) is at
 * the avail position; the chain's descriptors are counted into *ndesc and
 * its buffer ID into *id. */
static const char *walk_chain(struct vq *vq, const struct guest_mem *mem, struct walk *w,
                              uint16_t flags, uint64_t addr, uint32_t len, uint16_t *id,
                              uint16_t *ndesc)
{
    uint16_t pos = vq->last_avail;
    bool wrap = vq->avail_wrap;
    for (uint32_t n = 1;; n++) {
        const char *err;
        if (flags & VIRTQ_DESC_F_INDIRECT) {
            if (!vq->indirect)
                return "indirect descriptor without INDIRECT_DESC negotiated";
            if (flags & VIRTQ_DESC_F_NEXT)
                return "indirect descriptor also has NEXT set";
            if (n != 1)
                return "indirect descriptor inside a chain";
            err = walk_indirect(w, mem, addr, len, vq->num);
        } else {
            err = add_buffer(w, mem, addr, len, flags & VIRTQ_DESC_F_WRITE);
        }
        if (err)
            return err;
        if (!(flags & VIRTQ_DESC_F_NEXT)) {
            *ndesc = (uint16_t)n;
            return NULL;
        }
        if (n >= vq->num)
            return "descriptor chain longer than the ring";
        ring_advance(vq, &pos, &wrap, 1);
        const struct virtq_pdesc *d = &vq->pdesc[pos];
        flags = __atomic_load_n(&d->flags, __ATOMIC_RELAXED);
        addr = __atomic_load_n(&d->addr, __ATOMIC_RELAXED);
        len = __atomic_load_n(&d->len, __ATOMIC_RELAXED);
        *id = __atomic_load_n(&d->id, __ATOMIC_RELAXED);
    }
}

/* Pops the chain at the avail position into c (iovecs into iov, room for
 * VQ_MAX_IOV).  *got is false, with NULL returned, when the position holds
 * nothing available (or the log is full).  NULL, or why it breaks the
 * ring. */
static inline __attribute__((always_inline)) const char *
pop_chain(struct vq *vq, const struct guest_mem *mem, struct iovec *iov, struct vq_chain *c,
          bool allow_out, bool allow_in, bool *got)
{
    struct vq_pk *pk = vq->pk;
    const struct virtq_pdesc *d = &vq->pdesc[vq->last_avail];
    uint16_t flags = __atomic_load_n(&d->flags, __ATOMIC_ACQUIRE);
    *got = false;
    if (!desc_avail(flags, vq->avail_wrap))
        return NULL;
    if (pk->tail - pk->head >= VQ_PK_LOG && !make_room(vq))
        return NULL;
    uint64_t addr = __atomic_load_n(&d->addr, __ATOMIC_RELAXED);
    uint32_t len = __atomic_load_n(&d->len, __ATOMIC_RELAXED);
    uint16_t id = __atomic_load_n(&d->id, __ATOMIC_RELAXED);
    uint16_t ndesc = 1;
    c->iov = iov;
    /* The common chain: one direct descriptor in the region of the last
     * hit, checked as add_buffer would. */
    bool writable = flags & VIRTQ_DESC_F_WRITE;
    void *host = NULL;
    if (!(flags & (VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_INDIRECT)) && len &&
        (writable ? allow_in : allow_out))
        host = mem_hint_host(mem, addr, len);
    if (host) {
        iov[0].iov_base = host;
        iov[0].iov_len = len;
        c->n_out = !writable;
        c->n_in = writable;
        c->out_len = writable ? 0 : len;
        c->in_len = writable ? len : 0;
    } else {
        struct walk w = { iov, VQ_MAX_IOV, 0, 0, 0, 0, allow_out, allow_in };
        const char *err = walk_chain(vq, mem, &w, flags, addr, len, &id, &ndesc);
        c->n_out = w.n_out;
        c->n_in = w.n_in;
        c->out_len = w.out_len;
        c->in_len = w.in_len;
        if (err)
            return err;
    }
    if (id >= vq->num)
        return "buffer ID beyond the ring size";
    if (busy_test_set(pk, id))
        return "buffer ID reused while still in flight";
    struct vq_pk_ent *e = &pk->log[pk->tail++ & LOG_MASK];
    e->id = id;
    e->ndesc = ndesc;
    e->start = (uint16_t)(vq->last_avail | (uint16_t)vq->avail_wrap << 15);
    c->head = id;
    ring_advance(vq, &vq->last_avail, &vq->avail_wrap, ndesc);
    *got = true;
    return NULL;
}

enum vq_pop_result pk_pop(struct vq *vq, const struct guest_mem *mem, struct vq_elem *e,
                          bool allow_out, bool allow_in)
{
    if (vq_broken(vq))
        return VQ_BROKEN;
    struct vq_chain c;
    bool got;
    const char *err = pop_chain(vq, mem, e->iov, &c, allow_out, allow_in, &got);
    if (err) {
        vq_mark_broken(vq, err);
        return VQ_BROKEN;
    }
    if (!got)
        return VQ_EMPTY;
    elem_from_chain(e, &c);
    return VQ_GOT;
}

unsigned pk_pop_burst(struct vq *vq, const struct guest_mem *mem, struct vq_burst *b,
                      unsigned max, bool allow_out, bool allow_in)
{
    if (vq_broken(vq))
        return 0;
    if (max > VQ_BURST_MAX - b->n)
        max = VQ_BURST_MAX - b->n;
    bool write = allow_in && !allow_out;
    unsigned got_n = 0;
    while (got_n < max && VQ_BURST_IOV - b->niov >= VQ_MAX_IOV) {
        struct vq_chain *c = &b->c[b->n];
        bool got;
        const char *err = pop_chain(vq, mem, &b->pool[b->niov], c, allow_out, allow_in, &got);
        if (err) {
            vq_mark_broken(vq, err);
            break;
        }
        if (!got)
            break;
        b->n++;
        unsigned niov = c->n_out + c->n_in;
        b->niov += niov;
        if (niov)
            prefetch_buffer(&c->iov[0], write);
        got_n++;
    }
    return got_n;
}

void pk_unpop(struct vq *vq, uint16_t n)
{
    struct vq_pk *pk = vq->pk;
    /* Pushed chains cannot be given back (vq_used_rollback first). */
    if (n > pk->tail - pk->push)
        n = (uint16_t)(pk->tail - pk->push);
    if (n == 0)
        return;
    for (uint16_t i = 0; i < n; i++)
        busy_clear(pk, pk->log[--pk->tail & LOG_MASK].id);
    uint16_t s = pk->log[pk->tail & LOG_MASK].start;
    vq->last_avail = s & 0x7fff;
    vq->avail_wrap = s >> 15;
}

/* n (at least 1) chains pushed in pop order with length len, one batch
 * with IN_ORDER (a single push is a batch of one).  The daemon pushes in
 * pop order; anything else is our bug, and the ring is stopped rather than
 * given a wrong used descriptor. */
void pk_push_batch(struct vq *vq, const uint16_t *ids, unsigned n, uint32_t len)
{
    struct vq_pk *pk = vq->pk;
    if (n > pk->tail - pk->push) {
        vq_mark_broken(vq, "used entry out of pop order (internal error)");
        return;
    }
    for (unsigned i = 0; i < n; i++) {
        struct vq_pk_ent *e = &pk->log[(pk->push + i) & LOG_MASK];
        if (e->id != ids[i]) {
            vq_mark_broken(vq, "used entry out of pop order (internal error)");
            return;
        }
        e->len = len;
        e->batch = vq->in_order;
    }
    pk->log[(pk->push + n - 1) & LOG_MASK].batch = 0;
    pk->push += n;
}

uint32_t pk_used_begin(struct vq *vq)
{
    vq->pk->group = vq->pk->push;
    vq->pk->group_open = true;
    return vq->pk->push;
}

void pk_used_rollback(struct vq *vq, uint32_t start)
{
    struct vq_pk *pk = vq->pk;
    /* Entries before start may already be in the ring. */
    if (start - pk->head <= pk->push - pk->head)
        pk->push = start;
    pk->group_open = false;
}

void pk_flush(struct vq *vq)
{
    struct vq_pk *pk = vq->pk;
    if (pk->push != pk->head)
        commit(vq, pk->push);
    pk->group_open = false;
}

/* A ring position with its wrap counter (bit 15), as one number that
 * grows by one per descriptor modulo 2 * num. */
static inline uint32_t linear(uint16_t pos_wrap, uint32_t num)
{
    uint32_t pos = pos_wrap & 0x7fff;
    return (pos_wrap & 0x8000) ? pos : pos + num;
}

bool pk_should_signal(struct vq *vq)
{
    /* Our used descriptors must be visible before we read the driver's
     * suppression state, or we could miss its request for an interrupt. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    uint16_t flags = __atomic_load_n(&vq->drv_event->flags, __ATOMIC_RELAXED);
    uint16_t now = (uint16_t)(vq->used_idx | (uint16_t)vq->used_wrap << 15);
    uint16_t old = vq->signalled_used;
    bool valid = vq->signalled_valid;
    vq->signalled_used = now;
    vq->signalled_valid = true;
    if (flags == VIRTQ_EVENT_F_DISABLE)
        return false;
    if (!vq->event_idx || flags != VIRTQ_EVENT_F_DESC || !valid)
        return true;
    /* Signal if the descriptor the driver named was written since the
     * last signal: it lies in [old, now). */
    uint32_t num = vq->num, span = 2 * num;
    uint16_t ev = __atomic_load_n(&vq->drv_event->off_wrap, __ATOMIC_RELAXED);
    uint32_t o = linear(old, num);
    uint32_t to_ev = (linear(ev, num) + span - o) % span;
    uint32_t to_now = (linear(now, num) + span - o) % span;
    return to_ev < to_now;
}

void pk_disable_notify(struct vq *vq)
{
    __atomic_store_n(&vq->dev_event->flags, VIRTQ_EVENT_F_DISABLE, __ATOMIC_RELAXED);
}

bool pk_enable_notify(struct vq *vq)
{
    if (vq->event_idx) {
        /* Kick when the descriptor at our avail position is made available. */
        __atomic_store_n(&vq->dev_event->off_wrap,
                         (uint16_t)(vq->last_avail | (uint16_t)vq->avail_wrap << 15),
                         __ATOMIC_RELAXED);
        __atomic_store_n(&vq->dev_event->flags, VIRTQ_EVENT_F_DESC, __ATOMIC_RELEASE);
    } else {
        __atomic_store_n(&vq->dev_event->flags, VIRTQ_EVENT_F_ENABLE, __ATOMIC_RELAXED);
    }
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    uint16_t flags = __atomic_load_n(&vq->pdesc[vq->last_avail].flags, __ATOMIC_ACQUIRE);
    return desc_avail(flags, vq->avail_wrap);
}
