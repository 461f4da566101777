/*
 * guestmem.c - see guestmem.h.
 */
#define _GNU_SOURCE
#include "guestmem.h"

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* One region [GUEST_BASE, GUEST_BASE + size); returns 0 on success. */
int fake_guest_init(struct fake_guest *g, uint64_t size, uint32_t num)
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
uint64_t fake_guest_data_gpa(const struct fake_guest *g)
{
    return GUEST_BASE + (g->vq.used_uva - GUEST_UVA) + 0x10000;
}

void fake_desc(struct fake_guest *g, uint16_t i, uint64_t addr, uint32_t len,
                             uint16_t flags, uint16_t next)
{
    g->vq.desc[i] = (struct virtq_desc){ addr, len, flags, next };
}

/* Makes head available as the next avail entry. */
void fake_avail(struct fake_guest *g, uint16_t head)
{
    struct virtq_avail *a = g->vq.avail;
    a->ring[a->idx % g->vq.num] = head;
    a->idx++;
}

void fake_guest_fini(struct fake_guest *g)
{
    mem_clear(&g->mem);
}

