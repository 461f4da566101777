/*
 * mem.h - guest memory: the regions a frontend shares, and address
 * translation with bounds checks.
 *
 * Owns: mapping and unmapping region fds, translating guest-physical (GPA)
 * and frontend-virtual (UVA) addresses into host pointers, and the dirty
 * log of live migration (vhost-user SET_LOG_BASE): one bit per 4 KiB guest
 * page, set with atomic ORs for every byte the device writes while the
 * frontend asks for logging.
 * Must not: know about rings, devices or messages.  Every translation
 * checks that the whole [addr, addr+len) range lies inside mapped memory.
 */
#ifndef LWV_MEM_H
#define LWV_MEM_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vhost_user.h"

#define MEM_MAX_REGIONS 32

struct mem_region {
    uint64_t gpa;
    uint64_t size;
    uint64_t uva;
    uint64_t mmap_offset;
    uint8_t *host;      /* host address of gpa */
    void *map_base;     /* what mmap returned */
    size_t map_len;
    size_t page;        /* the mapping's page size (hugetlbfs: huge page) */
};

/* The dirty log the frontend shares (SET_LOG_BASE): bit k of byte i
 * covers guest page 8 * i + k, each LOG_PAGE bytes. */
#define LOG_PAGE 4096u
struct dirty_log {
    uint8_t *bits;      /* NULL: no log */
    uint64_t size;      /* bytes of log */
    void *map_base;
    size_t map_len;
};

/* Bits to OR into one log byte, gathered so that a burst of writes to
 * nearby pages costs a few atomic ORs instead of one per frame. */
struct log_batch {
    uint64_t byte;
    uint8_t mask;
};

struct guest_mem {
    struct dirty_log log;
    bool log_all;       /* VHOST_F_LOG_ALL negotiated: log every write */
    unsigned n;
    struct mem_region r[MEM_MAX_REGIONS];
    bool *fault_flag;   /* set if this memory faults (see mem_guard_install) */
    /* The region the last GPA translation hit, tried first by the next
     * one: a hint only, read and written with relaxed atomics by every
     * thread translating for this device, and checked against n. */
    unsigned hint;
};

/* Validates desc (non-empty, no wrap, addresses and offset 16-byte
 * aligned) and the fd (a regular file large enough for mmap_offset +
 * size), then maps it.  Does not close fd.
 * Returns 0, or -1 with a reason in err. */
int mem_region_map(struct mem_region *out, const struct vhost_user_mem_region *desc, int fd,
                   char *err, size_t errlen);
void mem_region_unmap(struct mem_region *r);

/* A frontend can shrink the file behind guest memory after we mapped it;
 * touching the lost pages then raises SIGBUS.  The guard catches SIGBUS
 * for addresses inside any guest memory added with mem_add, puts a zero
 * page in place so the access completes harmlessly, sets that memory's
 * fault_flag and logs.  Faults anywhere else keep their default action. */
int mem_guard_install(void);

/* True if r overlaps any region of m in GPA or UVA space. */
int mem_overlaps(const struct guest_mem *m, const struct mem_region *r);
/* Adds a mapped region (taking it over) and registers it with the SIGBUS
 * guard.  -1 with a reason in err when m has MEM_MAX_REGIONS already or
 * the guard's table is full; r is then still the caller's to unmap. */
int mem_add(struct guest_mem *m, const struct mem_region *r, char *err, size_t errlen);
/* Removes the region matching gpa, size and uva; returns 0 or -1. */
int mem_remove(struct guest_mem *m, const struct vhost_user_mem_region *desc);
void mem_clear(struct guest_mem *m);

/* Host pointer for [gpa, gpa+len) if it lies within the region of the last
 * hit, else NULL (then ask mem_gpa_to_iov): the datapath's fast path, with
 * the same bounds checks. */
static inline void *mem_hint_host(const struct guest_mem *m, uint64_t gpa, uint64_t len)
{
    unsigned h = __atomic_load_n(&m->hint, __ATOMIC_RELAXED);
    if (h >= m->n)
        return NULL;
    const struct mem_region *r = &m->r[h];
    if (gpa < r->gpa)
        return NULL;
    uint64_t off = gpa - r->gpa;
    if (off >= r->size || len > r->size - off)
        return NULL;
    return r->host + off;
}

/* Maps the log fd's [offset, offset+size) in place of any log before.  -1
 * with a reason if the range is empty, overflows, lies beyond the file,
 * or does not cover every region's pages. */
int mem_log_map(struct guest_mem *m, int fd, uint64_t size, uint64_t offset, char *err,
                size_t errlen);
void mem_log_unmap(struct guest_mem *m);
/* True when device writes must be logged (LOG_ALL and a log). */
static inline bool mem_logging(const struct guest_mem *m)
{
    return m->log_all && m->log.bits;
}
/* Marks the pages of [gpa, gpa+len) dirty; pages the log does not cover
 * are skipped (mem_log_map checked the regions, so only a ring outside
 * them could).  With a batch, bits of one byte are gathered there and
 * written by the next mark of another byte or mem_log_flush. */
void mem_log_gpa(const struct guest_mem *m, uint64_t gpa, uint64_t len, struct log_batch *b);
/* The same for host memory inside a region (a buffer the device wrote). */
void mem_log_host(const struct guest_mem *m, const void *p, uint64_t len, struct log_batch *b);
void mem_log_flush(const struct guest_mem *m, struct log_batch *b);
static inline void mem_log_batch_init(struct log_batch *b)
{
    b->mask = 0;
}
/* GPA of a frontend virtual address, or UINT64_MAX if unmapped. */
uint64_t mem_uva_to_gpa(const struct guest_mem *m, uint64_t uva, uint64_t len);

/* Host pointer for [gpa, gpa+len) if it lies within one region, else NULL. */
void *mem_gpa_to_host(const struct guest_mem *m, uint64_t gpa, uint64_t len);
/* Same for a frontend virtual address (ring addresses). */
void *mem_uva_to_host(const struct guest_mem *m, uint64_t uva, uint64_t len);
/* Translates [gpa, gpa+len) into at most max iovecs, splitting where the
 * range crosses adjacent regions.  Returns the count, or -1 if any byte is
 * unmapped or more than max pieces are needed.  The region of the last hit
 * is tried first: a guest's buffers mostly lie in one region. */
int mem_gpa_to_iov(const struct guest_mem *m, uint64_t gpa, uint64_t len, struct iovec *iov,
                   int max);

#endif
