/*
 * vq.c - see vq.h.
 *
 * Ordering: the driver publishes descriptors, then avail->idx; we load
 * avail->idx with acquire before reading ring entries.  We write used
 * entries, then store used->idx with release.  Re-enabling notifications
 * and reading flags/event indexes need a full fence (store-load ordering).
 *
 * A burst reads its heads (avail->ring entries) first, all of them, into
 * the per-ring head window, and prefetches the descriptors they name; it
 * then walks each chain, whose descriptor loads now hit the cache, and
 * prefetches the first bytes of its buffer for the caller.  So the cache
 * misses of a burst overlap instead of following one another.
 */
#include "vq.h"

#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include "log.h"
#include "vq_impl.h"

/* PREFETCHW (x86 "3DNow! prefetch", CPUID 0x80000001 ECX bit 8) asks for
 * a line in exclusive state.  A guest's RX buffer was last written by the
 * frontend's core: a plain prefetch fetches it shared and the copy then
 * waits a second time for ownership (measured: 21% more frames/s with
 * PREFETCHW on the DPDK loop, docs/performance.md).  Not every x86-64 CPU
 * has it, so it is looked up once. */
bool vq_have_prefetchw;

__attribute__((constructor)) static void detect_prefetchw(void)
{
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d;
    if (__get_cpuid(0x80000001, &a, &b, &c, &d))
        vq_have_prefetchw = (c >> 8) & 1;
#endif
}


static inline uint16_t load16(const uint16_t *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static inline void store16(uint16_t *p, uint16_t v)
{
    __atomic_store_n(p, v, __ATOMIC_RELAXED);
}

/* The event-index words live right after the rings. */
static inline uint16_t *avail_used_event(struct vq *vq)
{
    return &vq->avail->ring[vq->num];
}

static inline uint16_t *used_avail_event(struct vq *vq)
{
    return (uint16_t *)&vq->used->ring[vq->num];
}

/* Forgets the heads read ahead (the ring moved or changed). */
static void heads_forget(struct vq *vq)
{
    vq->heads_end = vq->last_avail;
}

bool vq_map(struct vq *vq, const struct guest_mem *mem)
{
    vq_unmap(vq);
    if (!vq->addr_set || vq->num == 0)
        return false;
    vq->mem = mem;
    if (vq->packed) {
        if (!pk_map(vq, mem)) {
            vq_unmap(vq);
            return false;
        }
        vq->desc_gpa = mem_uva_to_gpa(mem, vq->desc_uva, virtq_pdesc_size(vq->num));
        vq->used_gpa = mem_uva_to_gpa(mem, vq->used_uva, sizeof(struct virtq_pevent));
        return true;
    }
    if (vq->num & (vq->num - 1))
        return false;      /* split rings are a power of two in size */
    /* Alignment from virtio 1.2 2.7: desc 16, avail 2, used 4. */
    if ((vq->desc_uva & 15) || (vq->avail_uva & 1) || (vq->used_uva & 3))
        return false;
    vq->desc = mem_uva_to_host(mem, vq->desc_uva, virtq_desc_size(vq->num));
    vq->avail = mem_uva_to_host(mem, vq->avail_uva, virtq_avail_size(vq->num));
    vq->used = mem_uva_to_host(mem, vq->used_uva, virtq_used_size(vq->num));
    if (!vq->desc || !vq->avail || !vq->used) {
        vq_unmap(vq);
        return false;
    }
    vq->used_gpa = mem_uva_to_gpa(mem, vq->used_uva, virtq_used_size(vq->num));
    return true;
}

void vq_unmap(struct vq *vq)
{
    vq->desc = NULL;
    vq->avail = NULL;
    vq->used = NULL;
    vq->pdesc = NULL;
    vq->drv_event = NULL;
    vq->dev_event = NULL;
    /* Heads read from the old ring (or of another size) are not this one's,
     * and the new ring's suppression flag is rewritten on the next pass. */
    heads_forget(vq);
    vq->notify_off = false;
}

void vq_mark_broken(struct vq *vq, const char *reason)
{
    const char *none = NULL;
    __atomic_compare_exchange_n(&vq->broken_reason, &none, reason, false, __ATOMIC_RELAXED,
                                __ATOMIC_RELAXED);
}

void vq_log_ring(const struct vq *vq)
{
    struct log_batch b;
    mem_log_batch_init(&b);
    if (vq->packed) {
        mem_log_gpa(vq->mem, vq->desc_gpa, virtq_pdesc_size(vq->num), &b);
        mem_log_gpa(vq->mem, vq->used_gpa, sizeof(struct virtq_pevent), &b);
    } else {
        mem_log_gpa(vq->mem, vq->used_gpa, virtq_used_size(vq->num), &b);
    }
    mem_log_flush(vq->mem, &b);
}

void vq_release(struct vq *vq)
{
    vq_unmap(vq);
    free(vq->pk);
    vq->pk = NULL;
}

uint16_t vq_guest_avail_idx(const struct vq *vq)
{
    return vq->avail ? load16(&vq->avail->idx) : 0;
}

uint16_t vq_guest_used_idx(const struct vq *vq)
{
    return vq->used ? load16(&vq->used->idx) : 0;
}

void vq_set_base(struct vq *vq, uint32_t state)
{
    if (vq->packed) {
        pk_set_base(vq, state);
    } else {
        uint16_t idx = (uint16_t)state;
        vq->last_avail = vq->shadow_avail = vq->used_idx = idx;
    }
    vq->signalled_valid = false;
    vq->notify_off = false;
    heads_forget(vq);
}

uint32_t vq_get_base(const struct vq *vq)
{
    return vq->packed ? pk_get_base(vq) : vq->last_avail;
}

bool vq_base_fits(const struct vq *vq, uint32_t state, uint32_t num)
{
    if (!vq->packed)
        return true;     /* any 16-bit index: split indexes run free */
    return (state & 0x7fff) < num;     /* the used half is not taken */
}

int vq_avail_count(struct vq *vq)
{
    /* Entries already known to be published need no new read of avail->idx,
     * a cache line the driver keeps writing. */
    uint16_t n = (uint16_t)(vq->shadow_avail - vq->last_avail);
    if (n)
        return n;
    uint16_t idx = __atomic_load_n(&vq->avail->idx, __ATOMIC_ACQUIRE);
    n = (uint16_t)(idx - vq->last_avail);
    if (n > vq->num) {
        vq_mark_broken(vq, "avail index moved by more than the ring size");
        return -1;
    }
    vq->shadow_avail = idx;
    return n;
}

/* Reads the avail entries for positions up to (not including) end into
 * the head window and prefetches the descriptors they name.  end must be
 * published (at most shadow_avail) and at most VQ_HEADS past last_avail. */
static void heads_read(struct vq *vq, uint16_t end)
{
    /* A window that lost track of last_avail (given back further than it
     * reaches) starts again from there. */
    if ((uint16_t)(vq->heads_end - vq->last_avail) > VQ_HEADS)
        heads_forget(vq);
    uint16_t pos = vq->heads_end;
    int n = (int16_t)(uint16_t)(end - pos);
    const uint16_t *ring = vq->avail->ring;
    uint16_t mask = (uint16_t)(vq->num - 1);
    uint32_t num = vq->num;
    for (; n > 0; n--, pos++) {
        uint16_t h = load16(&ring[pos & mask]);
        vq->heads[pos & (VQ_HEADS - 1)] = h;
        if (h < num)
            __builtin_prefetch(&vq->desc[h], 0, 3);
    }
    if ((int16_t)(uint16_t)(end - vq->heads_end) > 0)
        vq->heads_end = end;
}

/* The head at last_avail, from the window (reading it if need be). */
static inline uint16_t head_next(struct vq *vq)
{
    uint16_t pos = vq->last_avail;
    if ((uint16_t)(vq->heads_end - pos) - 1u >= VQ_HEADS)
        heads_read(vq, (uint16_t)(pos + 1));
    return vq->heads[pos & (VQ_HEADS - 1)];
}

/* Reads one descriptor exactly once. */
static inline __attribute__((always_inline)) void read_desc(const struct virtq_desc *src, struct virtq_desc *d)
{
    d->addr = __atomic_load_n(&src->addr, __ATOMIC_RELAXED);
    d->len = __atomic_load_n(&src->len, __ATOMIC_RELAXED);
    d->flags = __atomic_load_n(&src->flags, __ATOMIC_RELAXED);
    d->next = __atomic_load_n(&src->next, __ATOMIC_RELAXED);
}

static const char *walk_indirect(struct walk *w, const struct guest_mem *mem,
                                 const struct virtq_desc *table_desc, uint32_t ring_num)
{
    if (table_desc->flags & VIRTQ_DESC_F_NEXT)
        return "indirect descriptor also has NEXT set";
    if (table_desc->len == 0 || (table_desc->len % sizeof(struct virtq_desc)) != 0)
        return "indirect table length not a multiple of 16";
    if (table_desc->addr & 15)
        return "indirect table misaligned";
    uint32_t count = table_desc->len / (uint32_t)sizeof(struct virtq_desc);
    /* A chain may not be longer than the queue size (virtio 1.2 2.7.5.3.1),
     * and that includes the descriptors of an indirect table. */
    if (count > ring_num)
        return "indirect table longer than the ring";
    const struct virtq_desc *table = mem_gpa_to_host(mem, table_desc->addr, table_desc->len);
    if (!table)
        return "indirect table outside guest memory or across regions";
    uint32_t i = 0;
    for (uint32_t seen = 0;; seen++) {
        if (seen >= count)
            return "indirect chain loops or is longer than its table";
        struct virtq_desc d;
        read_desc(&table[i], &d);
        if (d.flags & VIRTQ_DESC_F_INDIRECT)
            return "nested indirect table";
        const char *err = add_buffer(w, mem, d.addr, d.len, d.flags & VIRTQ_DESC_F_WRITE);
        if (err)
            return err;
        if (!(d.flags & VIRTQ_DESC_F_NEXT))
            return NULL;
        if (d.next >= count)
            return "indirect next index beyond the table";
        i = d.next;
    }
}

/* Walks the chain starting at head, whose descriptor was read into d,
 * into w; NULL or why it is broken. */
static const char *walk_chain(struct vq *vq, const struct guest_mem *mem, struct virtq_desc *d,
                              struct walk *w)
{
    for (uint32_t seen = 0;; seen++) {
        if (seen >= vq->num)
            return "descriptor chain loops or is longer than the ring";
        if (seen)
            read_desc(&vq->desc[d->next], d);
        if (d->flags & VIRTQ_DESC_F_INDIRECT) {
            if (!vq->indirect)
                return "indirect descriptor without INDIRECT_DESC negotiated";
            /* An indirect descriptor must be the only one in its chain. */
            if (seen != 0)
                return "indirect descriptor inside a chain";
            return walk_indirect(w, mem, d, vq->num);
        }
        const char *err = add_buffer(w, mem, d->addr, d->len, d->flags & VIRTQ_DESC_F_WRITE);
        if (err || !(d->flags & VIRTQ_DESC_F_NEXT))
            return err;
        if (d->next >= vq->num)
            return "descriptor next index beyond the ring size";
    }
}

/* Reads the chain at head into c, its iovecs into iov (room for
 * VQ_MAX_IOV); its first descriptor is read once, like every other.
 * NULL, or why it breaks the ring. */
static inline __attribute__((always_inline)) const char *
pop_chain(struct vq *vq, const struct guest_mem *mem, uint16_t head, struct iovec *iov,
          struct vq_chain *c, bool allow_out, bool allow_in)
{
    if (head >= vq->num)
        return "avail ring head index beyond the ring size";
    struct virtq_desc d;
    read_desc(&vq->desc[head], &d);
    c->head = head;
    c->iov = iov;
    /* The common chain: one direct descriptor in the region of the last
     * hit, checked as add_buffer would. */
    bool writable = d.flags & VIRTQ_DESC_F_WRITE;
    if (!(d.flags & (VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_INDIRECT)) && d.len &&
        (writable ? allow_in : allow_out)) {
        void *host = mem_hint_host(mem, d.addr, d.len);
        if (host) {
            iov[0].iov_base = host;
            iov[0].iov_len = d.len;
            c->n_out = !writable;
            c->n_in = writable;
            c->out_len = writable ? 0 : d.len;
            c->in_len = writable ? d.len : 0;
            return NULL;
        }
    }
    struct walk w = { iov, VQ_MAX_IOV, 0, 0, 0, 0, allow_out, allow_in };
    const char *err = walk_chain(vq, mem, &d, &w);
    c->n_out = w.n_out;
    c->n_in = w.n_in;
    c->out_len = w.out_len;
    c->in_len = w.in_len;
    return err;
}

enum vq_pop_result vq_pop(struct vq *vq, const struct guest_mem *mem, struct vq_elem *e,
                          bool allow_out, bool allow_in)
{
    if (vq->packed)
        return pk_pop(vq, mem, e, allow_out, allow_in);
    if (vq_broken(vq))
        return VQ_BROKEN;
    int avail = vq_avail_count(vq);
    if (avail < 0)
        return VQ_BROKEN;
    if (avail == 0)
        return VQ_EMPTY;
    struct vq_chain c;
    const char *err = pop_chain(vq, mem, head_next(vq), e->iov, &c, allow_out, allow_in);
    if (err) {
        vq_mark_broken(vq, err);
        return VQ_BROKEN;
    }
    elem_from_chain(e, &c);
    vq->last_avail++;
    return VQ_GOT;
}

unsigned vq_pop_burst(struct vq *vq, const struct guest_mem *mem, struct vq_burst *b, unsigned max,
                      bool allow_out, bool allow_in)
{
    if (vq->packed)
        return pk_pop_burst(vq, mem, b, max, allow_out, allow_in);
    if (vq_broken(vq))
        return 0;
    int avail = vq_avail_count(vq);
    if (avail <= 0)
        return 0;
    if (max > VQ_BURST_MAX - b->n)
        max = VQ_BURST_MAX - b->n;
    if (max > (unsigned)avail)
        max = (unsigned)avail;
    heads_read(vq, (uint16_t)(vq->last_avail + max));
    /* Readers prefetch what they read, writers what they write. */
    bool write = allow_in && !allow_out;
    unsigned got = 0;
    while (got < max && VQ_BURST_IOV - b->niov >= VQ_MAX_IOV) {
        struct vq_chain *c = &b->c[b->n];
        const char *err = pop_chain(vq, mem, head_next(vq), &b->pool[b->niov], c, allow_out,
                                    allow_in);
        if (err) {
            vq_mark_broken(vq, err);
            break;
        }
        b->n++;
        unsigned niov = c->n_out + c->n_in;
        b->niov += niov;
        if (niov)
            prefetch_buffer(&c->iov[0], write);
        vq->last_avail++;
        got++;
    }
    return got;
}

void vq_unpop(struct vq *vq, uint16_t n)
{
    if (vq->packed) {
        pk_unpop(vq, n);
        return;
    }
    vq->last_avail = (uint16_t)(vq->last_avail - n);
}

void vq_push(struct vq *vq, uint16_t head, uint32_t len)
{
    if (vq->packed) {
        pk_push_batch(vq, &head, 1, len);
        return;
    }
    struct virtq_used_elem *u = &vq->used->ring[vq->used_idx & (vq->num - 1)];
    __atomic_store_n(&u->id, head, __ATOMIC_RELAXED);
    __atomic_store_n(&u->len, len, __ATOMIC_RELAXED);
    vq->used_idx++;
}

void vq_push_batch(struct vq *vq, const uint16_t *heads, unsigned n, uint32_t len)
{
    if (n == 0)
        return;
    if (vq->packed) {
        pk_push_batch(vq, heads, n, len);
        return;
    }
    if (vq->in_order) {
        /* Buffers are used in the order they were made available: one entry,
         * in the batch's first slot, names the last buffer and stands for
         * all of them (the driver counts them by used->idx). */
        struct virtq_used_elem *u = &vq->used->ring[vq->used_idx & (vq->num - 1)];
        __atomic_store_n(&u->id, heads[n - 1], __ATOMIC_RELAXED);
        __atomic_store_n(&u->len, len, __ATOMIC_RELAXED);
        vq->used_idx = (uint16_t)(vq->used_idx + n);
        return;
    }
    for (unsigned i = 0; i < n; i++)
        vq_push(vq, heads[i], len);
}

uint32_t vq_used_begin(struct vq *vq)
{
    return vq->packed ? pk_used_begin(vq) : vq->used_idx;
}

void vq_used_rollback(struct vq *vq, uint32_t start)
{
    if (vq->packed)
        pk_used_rollback(vq, start);
    else
        vq->used_idx = (uint16_t)start;
}

void vq_used_end(struct vq *vq)
{
    if (vq->packed)
        vq->pk->group_open = false;
}

void vq_flush(struct vq *vq)
{
    if (vq->packed) {
        pk_flush(vq);
        return;
    }
    __atomic_store_n(&vq->used->idx, vq->used_idx, __ATOMIC_RELEASE);
    if (vq_logging(vq))
        vq_log_ring(vq);
}

bool vq_should_signal(struct vq *vq)
{
    if (vq->packed)
        return pk_should_signal(vq);
    /* The used index store must be visible before we read the driver's
     * suppression state, or we could miss its request for an interrupt. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (!vq->event_idx)
        return !(load16(&vq->avail->flags) & VIRTQ_AVAIL_F_NO_INTERRUPT);
    uint16_t old = vq->signalled_used;
    bool valid = vq->signalled_valid;
    vq->signalled_used = vq->used_idx;
    vq->signalled_valid = true;
    if (!valid)
        return true;
    if (old == vq->used_idx)
        return false;
    return virtq_need_event(load16(avail_used_event(vq)), vq->used_idx, old);
}

static void count(uint64_t *c)
{
    __atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
}

void vq_disable_notify(struct vq *vq)
{
    if (vq->notify_off)
        return;     /* already asked: no store into a line the driver reads */
    vq->notify_off = true;
    count(&vq->notify_disables);
    if (vq->packed)
        pk_disable_notify(vq);
    /* With event indexes the driver kicks only when it crosses
     * avail_event, which we simply stop advancing. */
    else if (!vq->event_idx)
        store16(&vq->used->flags, VIRTQ_USED_F_NO_NOTIFY);
    if (vq_logging(vq))
        vq_log_ring(vq);
}

bool vq_enable_notify(struct vq *vq)
{
    if (vq->notify_off) {
        vq->notify_off = false;
        count(&vq->notify_enables);
    }
    if (vq->packed) {
        bool more = pk_enable_notify(vq);
        if (vq_logging(vq))
            vq_log_ring(vq);    /* after the write, or a log sync between could miss it */
        return more;
    }
    if (vq->event_idx)
        store16(used_avail_event(vq), vq->last_avail);
    else
        store16(&vq->used->flags, 0);
    if (vq_logging(vq))
        vq_log_ring(vq);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    uint16_t idx = __atomic_load_n(&vq->avail->idx, __ATOMIC_ACQUIRE);
    return idx != vq->last_avail;
}
