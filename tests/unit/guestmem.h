/*
 * guestmem.h - a fake guest for unit tests: memfd-backed regions mapped
 * through the daemon's own mem.c, plus a split ring laid out in them that
 * a test fills by hand (the hostile guest).
 */
#ifndef LWV_TEST_GUESTMEM_H
#define LWV_TEST_GUESTMEM_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mem.h"
#include "vq.h"

struct fake_guest {
    struct guest_mem mem;
    uint8_t *base;       /* host pointer of gpa GUEST_BASE (region 0) */
    uint64_t size;
    struct vq vq;
};

#define GUEST_BASE 0x100000ull
#define GUEST_UVA  0x7f0000000000ull
#define RING_GPA   GUEST_BASE              /* desc, then avail, then used */

/* One region [GUEST_BASE, GUEST_BASE + size); returns 0 on success. */
static inline int fake_guest_init(struct fake_guest *g, uint64_t size, uint32_t num)
{
    memset(g, 0, sizeof(*g));
    int fd = memfd_create("fake-guest", 0);
    if (fd < 0 || ftruncate(fd, (off_t)size) < 0)
        return -1;
    struct vhost_user_mem_region d = { GUEST_BASE, size, GUEST_UVA, 0 };
    struct mem_region r;
    char err[128];
    if (mem_region_map(&r, &d, fd, err, sizeof(err)) < 0)
        return -1;
    close(fd);
    if (mem_add(&g->mem, &r, err, sizeof(err)) < 0)
        return -1;
    g->base = r.host;
    g->size = size;
    g->vq.num = num;
    g->vq.desc_uva = GUEST_UVA;
    g->vq.avail_uva = GUEST_UVA + virtq_desc_size(num);
    g->vq.used_uva = (GUEST_UVA + virtq_desc_size(num) + virtq_avail_size(num) + 4095) & ~4095ull;
    g->vq.addr_set = true;
    g->vq.indirect = true;
    return vq_map(&g->vq, &g->mem) ? 0 : -1;
}

/* First gpa after the rings, for buffers. */
static inline uint64_t fake_guest_data_gpa(const struct fake_guest *g)
{
    return GUEST_BASE + (g->vq.used_uva - GUEST_UVA) + 0x10000;
}

static inline void fake_desc(struct fake_guest *g, uint16_t i, uint64_t addr, uint32_t len,
                             uint16_t flags, uint16_t next)
{
    g->vq.desc[i] = (struct virtq_desc){ addr, len, flags, next };
}

/* Makes head available as the next avail entry. */
static inline void fake_avail(struct fake_guest *g, uint16_t head)
{
    struct virtq_avail *a = g->vq.avail;
    a->ring[a->idx % g->vq.num] = head;
    a->idx++;
}

static inline void fake_guest_fini(struct fake_guest *g)
{
    mem_clear(&g->mem);
}

#endif
