/*
 * vq.c - see vq.h.
 *
 * Ordering: the driver publishes descriptors, then avail->idx; we load
 * avail->idx with acquire before reading ring entries.  We write used
 * entries, then store used->idx with release.  Re-enabling notifications
 * and reading flags/event indexes need a full fence (store-load ordering).
 */
#include "vq.h"

#include <string.h>

#include "log.h"

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

bool vq_map(struct vq *vq, const struct guest_mem *mem)
{
    vq_unmap(vq);
    if (!vq->addr_set || vq->num == 0)
        return false;
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
    return true;
}

void vq_unmap(struct vq *vq)
{
    vq->desc = NULL;
    vq->avail = NULL;
    vq->used = NULL;
}

void vq_mark_broken(struct vq *vq, const char *reason)
{
    if (!vq->broken_reason)
        vq->broken_reason = reason;
}

uint16_t vq_guest_avail_idx(const struct vq *vq)
{
    return vq->avail ? load16(&vq->avail->idx) : 0;
}

uint16_t vq_guest_used_idx(const struct vq *vq)
{
    return vq->used ? load16(&vq->used->idx) : 0;
}

void vq_set_base(struct vq *vq, uint16_t idx)
{
    vq->last_avail = vq->shadow_avail = vq->used_idx = idx;
    vq->signalled_valid = false;
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

/* Reads one descriptor exactly once. */
static void read_desc(const struct virtq_desc *src, struct virtq_desc *d)
{
    d->addr = __atomic_load_n(&src->addr, __ATOMIC_RELAXED);
    d->len = __atomic_load_n(&src->len, __ATOMIC_RELAXED);
    d->flags = __atomic_load_n(&src->flags, __ATOMIC_RELAXED);
    d->next = __atomic_load_n(&src->next, __ATOMIC_RELAXED);
}

/* Adds one buffer to the element, enforcing readable-before-writable. */
static const char *add_buffer(struct vq_elem *e, const struct guest_mem *mem,
                              const struct virtq_desc *d, bool allow_out, bool allow_in)
{
    bool writable = d->flags & VIRTQ_DESC_F_WRITE;
    if (writable && !allow_in)
        return "device-writable descriptor on a queue the device only reads";
    if (!writable && !allow_out)
        return "device-readable descriptor on a queue the device only writes";
    if (!writable && e->n_in > 0)
        return "readable descriptor after a writable one";
    if (d->len == 0)
        return NULL;    /* nothing to access, so the address is never used */
    unsigned used = e->n_out + e->n_in;
    int n = mem_gpa_to_iov(mem, d->addr, d->len, &e->iov[used], VQ_MAX_IOV - (int)used);
    if (n < 0)
        return "descriptor address outside guest memory (or too many pieces)";
    if (writable) {
        e->n_in += (unsigned)n;
        e->in_len += d->len;
    } else {
        e->n_out += (unsigned)n;
        e->out_len += d->len;
    }
    return NULL;
}

static const char *walk_indirect(struct vq_elem *e, const struct guest_mem *mem,
                                 const struct virtq_desc *table_desc, uint32_t ring_num,
                                 bool allow_out, bool allow_in)
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
        const char *err = add_buffer(e, mem, &d, allow_out, allow_in);
        if (err)
            return err;
        if (!(d.flags & VIRTQ_DESC_F_NEXT))
            return NULL;
        if (d.next >= count)
            return "indirect next index beyond the table";
        i = d.next;
    }
}

enum vq_pop_result vq_pop(struct vq *vq, const struct guest_mem *mem, struct vq_elem *e,
                          bool allow_out, bool allow_in)
{
    if (vq->broken_reason)
        return VQ_BROKEN;
    int avail = vq_avail_count(vq);
    if (avail < 0)
        return VQ_BROKEN;
    if (avail == 0)
        return VQ_EMPTY;
    uint16_t head = load16(&vq->avail->ring[vq->last_avail & (vq->num - 1)]);
    if (head >= vq->num) {
        vq_mark_broken(vq, "avail ring head index beyond the ring size");
        return VQ_BROKEN;
    }
    e->head = head;
    e->n_out = e->n_in = 0;
    e->out_len = e->in_len = 0;
    uint16_t i = head;
    const char *err = NULL;
    for (uint32_t seen = 0;; seen++) {
        if (seen >= vq->num) {
            err = "descriptor chain loops or is longer than the ring";
            break;
        }
        struct virtq_desc d;
        read_desc(&vq->desc[i], &d);
        if (d.flags & VIRTQ_DESC_F_INDIRECT) {
            if (!vq->indirect) {
                err = "indirect descriptor without INDIRECT_DESC negotiated";
                break;
            }
            /* An indirect descriptor must be the only one in its chain. */
            if (seen != 0) {
                err = "indirect descriptor inside a chain";
                break;
            }
            err = walk_indirect(e, mem, &d, vq->num, allow_out, allow_in);
            break;
        }
        err = add_buffer(e, mem, &d, allow_out, allow_in);
        if (err || !(d.flags & VIRTQ_DESC_F_NEXT))
            break;
        if (d.next >= vq->num) {
            err = "descriptor next index beyond the ring size";
            break;
        }
        i = d.next;
    }
    if (err) {
        vq_mark_broken(vq, err);
        return VQ_BROKEN;
    }
    vq->last_avail++;
    return VQ_GOT;
}

void vq_unpop(struct vq *vq, uint16_t n)
{
    vq->last_avail = (uint16_t)(vq->last_avail - n);
}

void vq_push(struct vq *vq, uint16_t head, uint32_t len)
{
    struct virtq_used_elem *u = &vq->used->ring[vq->used_idx & (vq->num - 1)];
    __atomic_store_n(&u->id, head, __ATOMIC_RELAXED);
    __atomic_store_n(&u->len, len, __ATOMIC_RELAXED);
    vq->used_idx++;
}

void vq_flush(struct vq *vq)
{
    __atomic_store_n(&vq->used->idx, vq->used_idx, __ATOMIC_RELEASE);
}

bool vq_should_signal(struct vq *vq)
{
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
    if (!vq->notify_off) {
        vq->notify_off = true;
        count(&vq->notify_disables);
    }
    /* With event indexes the driver kicks only when it crosses
     * avail_event, which we simply stop advancing. */
    if (!vq->event_idx)
        store16(&vq->used->flags, VIRTQ_USED_F_NO_NOTIFY);
}

bool vq_enable_notify(struct vq *vq)
{
    if (vq->notify_off) {
        vq->notify_off = false;
        count(&vq->notify_enables);
    }
    if (vq->event_idx)
        store16(used_avail_event(vq), vq->last_avail);
    else
        store16(&vq->used->flags, 0);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    uint16_t idx = __atomic_load_n(&vq->avail->idx, __ATOMIC_ACQUIRE);
    return idx != vq->last_avail;
}

/* Copies between iovecs (after skip bytes) and a linear buffer. */
static size_t iov_xfer(const struct iovec *iov, unsigned n, size_t skip, uint8_t *buf,
                       size_t len, bool to_iov)
{
    size_t done = 0;
    for (unsigned i = 0; i < n && done < len; i++) {
        if (skip >= iov[i].iov_len) {
            skip -= iov[i].iov_len;
            continue;
        }
        size_t chunk = iov[i].iov_len - skip;
        if (chunk > len - done)
            chunk = len - done;
        uint8_t *p = (uint8_t *)iov[i].iov_base + skip;
        if (to_iov)
            memcpy(p, buf + done, chunk);
        else
            memcpy(buf + done, p, chunk);
        done += chunk;
        skip = 0;
    }
    return done;
}

size_t iov_to_buf(const struct iovec *iov, unsigned n, size_t skip, void *buf, size_t len)
{
    return iov_xfer(iov, n, skip, buf, len, false);
}

size_t buf_to_iov(const struct iovec *iov, unsigned n, size_t skip, const void *buf, size_t len)
{
    return iov_xfer(iov, n, skip, (uint8_t *)buf, len, true);
}
