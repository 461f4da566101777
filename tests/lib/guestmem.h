/*
 * guestmem.h - a fake guest for unit tests: memfd-backed regions mapped
 * through the daemon's own mem.c, plus a split ring laid out in them that
 * a test fills by hand (the hostile guest).
 */
#ifndef LWV_TEST_GUESTMEM_H
#define LWV_TEST_GUESTMEM_H

#include <stdint.h>

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
int fake_guest_init(struct fake_guest *g, uint64_t size, uint32_t num);

/* First gpa after the rings, for buffers. */
uint64_t fake_guest_data_gpa(const struct fake_guest *g);

void fake_desc(struct fake_guest *g, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
               uint16_t next);

/* Makes head available as the next avail entry. */
void fake_avail(struct fake_guest *g, uint16_t head);

void fake_guest_fini(struct fake_guest *g);

#endif
