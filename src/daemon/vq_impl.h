/*
 * vq_impl.h - what the split (vq.c) and packed (vq_packed.c) rings share:
 * gathering a chain's buffers into iovecs with the same checks, and the
 * prefetches of a burst.  Internal to the virtqueue layer: nothing above
 * it includes this file.
 */
#ifndef LWV_VQ_IMPL_H
#define LWV_VQ_IMPL_H

#include "vq.h"

/* Where a chain's buffers are gathered while its descriptors are walked. */
struct walk {
    struct iovec *iov;
    unsigned cap;
    unsigned n_out, n_in;
    uint64_t out_len, in_len;
    bool allow_out, allow_in;
};

/* Adds one buffer to the walk, enforcing readable-before-writable. */
static inline const char *add_buffer(struct walk *w, const struct guest_mem *mem, uint64_t addr,
                                     uint32_t len, bool writable)
{
    if (writable && !w->allow_in)
        return "device-writable descriptor on a queue the device only reads";
    if (!writable && !w->allow_out)
        return "device-readable descriptor on a queue the device only writes";
    if (!writable && w->n_in > 0)
        return "readable descriptor after a writable one";
    if (len == 0)
        return NULL;    /* nothing to access, so the address is never used */
    unsigned used = w->n_out + w->n_in;
    int n = mem_gpa_to_iov(mem, addr, len, &w->iov[used], (int)(w->cap - used));
    if (n < 0)
        return "descriptor address outside guest memory (or too many pieces)";
    if (writable) {
        w->n_in += (unsigned)n;
        w->in_len += len;
    } else {
        w->n_out += (unsigned)n;
        w->out_len += len;
    }
    return NULL;
}

/* PREFETCHW (x86 "3DNow! prefetch", CPUID 0x80000001 ECX bit 8) asks for
 * a line in exclusive state.  A guest's RX buffer was last written by the
 * frontend's core: a plain prefetch fetches it shared and the copy then
 * waits a second time for ownership (measured: 21% more frames/s with
 * PREFETCHW on the DPDK loop, docs/performance.md).  Not every x86-64 CPU
 * has it, so it is looked up once
 * (vq.c). */
extern bool vq_have_prefetchw;

/* Always inlined, like the callers below: gcc's IPA takes a function whose
 * only effect is a prefetch for one without side effects, and deletes the
 * calls. */
static inline __attribute__((always_inline)) void prefetch_for_write(const char *p)
{
#if defined(__x86_64__) || defined(__i386__)
    if (vq_have_prefetchw) {
        __asm__ volatile("prefetchw %0" : : "m"(*p));
        return;
    }
#endif
    __builtin_prefetch(p, 1, 3);
}

/* Prefetches the first two cache lines of a buffer: a small frame and its
 * header. */
static inline __attribute__((always_inline)) void prefetch_buffer(const struct iovec *v, bool write)
{
    const char *p = v->iov_base;
    if (write) {
        prefetch_for_write(p);
        if (v->iov_len > 64)
            prefetch_for_write(p + 64);
    } else {
        __builtin_prefetch(p, 0, 3);
        if (v->iov_len > 64)
            __builtin_prefetch(p + 64, 0, 3);
    }
}

/* A popped chain as vq_pop returns it. */
static inline void elem_from_chain(struct vq_elem *e, const struct vq_chain *c)
{
    e->head = c->head;
    e->n_out = c->n_out;
    e->n_in = c->n_in;
    e->out_len = c->out_len;
    e->in_len = c->in_len;
}

/* The packed ring, called by vq.c's functions when vq->packed is set. */
bool pk_map(struct vq *vq, const struct guest_mem *mem);
void pk_set_base(struct vq *vq, uint32_t state);
uint32_t pk_get_base(const struct vq *vq);
enum vq_pop_result pk_pop(struct vq *vq, const struct guest_mem *mem, struct vq_elem *e,
                          bool allow_out, bool allow_in);
unsigned pk_pop_burst(struct vq *vq, const struct guest_mem *mem, struct vq_burst *b,
                      unsigned max, bool allow_out, bool allow_in);
void pk_unpop(struct vq *vq, uint16_t n);
void pk_push_batch(struct vq *vq, const uint16_t *ids, unsigned n, uint32_t len);
uint32_t pk_used_begin(struct vq *vq);
void pk_used_rollback(struct vq *vq, uint32_t start);
void pk_flush(struct vq *vq);
bool pk_should_signal(struct vq *vq);
void pk_disable_notify(struct vq *vq);
bool pk_enable_notify(struct vq *vq);

#endif
