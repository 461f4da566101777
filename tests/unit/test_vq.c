#define _GNU_SOURCE
/*
 * test_vq.c - split virtqueue access against valid and hostile rings.
 */
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "check.h"
#include "guestmem.h"

static struct vq_elem e;

static void reset(struct fake_guest *g)
{
    memset(g->vq.desc, 0, virtq_desc_size(g->vq.num));
    memset(g->vq.avail, 0, virtq_avail_size(g->vq.num));
    memset(g->vq.used, 0, virtq_used_size(g->vq.num));
    vq_set_base(&g->vq, 0);
    g->vq.broken_reason = NULL;
    g->vq.signalled_valid = false;
}

static void test_valid_direct(struct fake_guest *g)
{
    reset(g);
    uint64_t d = fake_guest_data_gpa(g);
    fake_desc(g, 0, d, 12, VIRTQ_DESC_F_NEXT, 1);
    fake_desc(g, 1, d + 100, 60, 0, 0);
    CHECK(vq_pop(&g->vq, &g->mem, &e, true, false) == VQ_EMPTY, "empty ring pops nothing");
    fake_avail(g, 0);
    CHECK(vq_pop(&g->vq, &g->mem, &e, true, false) == VQ_GOT, "valid chain");
    CHECK(e.head == 0 && e.n_out == 2 && e.n_in == 0 && e.out_len == 72, "chain shape %u/%u/%llu",
          e.n_out, e.n_in, (unsigned long long)e.out_len);
    CHECK(e.iov[1].iov_base == g->base + (d + 100 - GUEST_BASE), "translation");
    vq_push(&g->vq, e.head, 0);
    vq_flush(&g->vq);
    CHECK(g->vq.used->idx == 1 && g->vq.used->ring[0].id == 0, "used entry published");
}

static void test_valid_indirect(struct fake_guest *g)
{
    reset(g);
    uint64_t d = fake_guest_data_gpa(g);
    struct virtq_desc *table = (struct virtq_desc *)(g->base + (d - GUEST_BASE));
    table[0] = (struct virtq_desc){ d + 0x1000, 10, VIRTQ_DESC_F_NEXT, 1 };
    table[1] = (struct virtq_desc){ d + 0x2000, 2000, VIRTQ_DESC_F_WRITE, 0 };
    fake_desc(g, 3, d, 32, VIRTQ_DESC_F_INDIRECT, 0);
    fake_avail(g, 3);
    CHECK(vq_pop(&g->vq, &g->mem, &e, true, true) == VQ_GOT, "indirect chain");
    CHECK(e.head == 3 && e.n_out == 1 && e.n_in == 1 && e.in_len == 2000, "indirect shape");
}

/* Expects the single available chain at head 0 to break the ring. */
static void expect_broken(struct fake_guest *g, bool out, bool in, const char *what)
{
    fake_avail(g, 0);
    enum vq_pop_result r = vq_pop(&g->vq, &g->mem, &e, out, in);
    CHECK(r == VQ_BROKEN && g->vq.broken_reason, "%s: breaks the ring (got %d)", what, r);
    if (g->vq.broken_reason)
        printf("  %s -> %s\n", what, g->vq.broken_reason);
    CHECK(vq_pop(&g->vq, &g->mem, &e, out, in) == VQ_BROKEN, "%s: stays broken", what);
}

static void test_hostile(struct fake_guest *g)
{
    uint64_t d = fake_guest_data_gpa(g);
    uint64_t end = GUEST_BASE + g->size;

    reset(g);
    fake_desc(g, 0, end - 10, 20, 0, 0);
    expect_broken(g, true, false, "buffer running past the end of memory");

    reset(g);
    fake_desc(g, 0, 0x1000, 20, 0, 0);
    expect_broken(g, true, false, "buffer below guest memory");

    reset(g);
    fake_desc(g, 0, UINT64_MAX - 4, 20, 0, 0);
    expect_broken(g, true, false, "address wrapping 2^64");

    reset(g);
    fake_desc(g, 0, d, 10, VIRTQ_DESC_F_NEXT, 1);
    fake_desc(g, 1, d, 10, VIRTQ_DESC_F_NEXT, 0);
    expect_broken(g, true, false, "chain loop");

    reset(g);
    fake_desc(g, 0, d, 10, VIRTQ_DESC_F_NEXT, (uint16_t)g->vq.num);
    expect_broken(g, true, false, "next beyond the ring");

    reset(g);
    g->vq.avail->ring[0] = (uint16_t)g->vq.num + 3;
    g->vq.avail->idx = 1;
    CHECK(vq_pop(&g->vq, &g->mem, &e, true, false) == VQ_BROKEN, "head beyond the ring");

    reset(g);
    g->vq.avail->idx = (uint16_t)(g->vq.num + 1);
    CHECK(vq_pop(&g->vq, &g->mem, &e, true, false) == VQ_BROKEN, "avail idx jump > ring size");

    reset(g);
    fake_desc(g, 0, d, 10, VIRTQ_DESC_F_WRITE, 0);
    expect_broken(g, true, false, "writable descriptor on TX");

    reset(g);
    fake_desc(g, 0, d, 10, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
    fake_desc(g, 1, d, 10, 0, 0);
    expect_broken(g, true, true, "readable after writable");

    struct virtq_desc *table = (struct virtq_desc *)(g->base + (d - GUEST_BASE));
    reset(g);
    table[0] = (struct virtq_desc){ d, 16, VIRTQ_DESC_F_INDIRECT, 0 };
    fake_desc(g, 0, d, 16, VIRTQ_DESC_F_INDIRECT, 0);
    expect_broken(g, true, false, "nested indirect");

    reset(g);
    fake_desc(g, 0, d + 8, 32, VIRTQ_DESC_F_INDIRECT, 0);
    expect_broken(g, true, false, "misaligned indirect table");

    reset(g);
    fake_desc(g, 0, d, 24, VIRTQ_DESC_F_INDIRECT, 0);
    expect_broken(g, true, false, "indirect length not a multiple of 16");

    reset(g);
    fake_desc(g, 0, end - 16, 32, VIRTQ_DESC_F_INDIRECT, 0);
    expect_broken(g, true, false, "indirect table past the end of memory");

    reset(g);
    table[0] = (struct virtq_desc){ d + 0x1000, 10, VIRTQ_DESC_F_NEXT, 1 };
    table[1] = (struct virtq_desc){ d + 0x1000, 10, VIRTQ_DESC_F_NEXT, 0 };
    fake_desc(g, 0, d, 32, VIRTQ_DESC_F_INDIRECT, 0);
    expect_broken(g, true, false, "indirect loop");

    reset(g);
    table[0] = (struct virtq_desc){ d + 0x1000, 10, VIRTQ_DESC_F_NEXT, 5 };
    fake_desc(g, 0, d, 32, VIRTQ_DESC_F_INDIRECT, 0);
    expect_broken(g, true, false, "indirect next beyond its table");

    reset(g);
    fake_desc(g, 0, d, 32, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, 1);
    expect_broken(g, true, false, "indirect with NEXT");

    reset(g);
    fake_desc(g, 0, d, 10, VIRTQ_DESC_F_NEXT, 1);
    fake_desc(g, 1, d, 32, VIRTQ_DESC_F_INDIRECT, 0);
    expect_broken(g, true, false, "indirect inside a chain");

    reset(g);
    g->vq.indirect = false;
    fake_desc(g, 0, d, 32, VIRTQ_DESC_F_INDIRECT, 0);
    expect_broken(g, true, false, "indirect without the feature");
    g->vq.indirect = true;

    /* A chain of num descriptors is fine; the ring cannot hold more. */
    reset(g);
    for (uint16_t i = 0; i < g->vq.num; i++)
        fake_desc(g, i, d, 1, i + 1u < g->vq.num ? VIRTQ_DESC_F_NEXT : 0, (uint16_t)(i + 1));
    fake_avail(g, 0);
    CHECK(vq_pop(&g->vq, &g->mem, &e, true, false) == VQ_GOT && e.n_out == g->vq.num,
          "chain as long as the ring is accepted");

    /* Zero-length descriptors are skipped without touching their address. */
    reset(g);
    fake_desc(g, 0, 0xdead0000ull, 0, VIRTQ_DESC_F_NEXT, 1);
    fake_desc(g, 1, d, 20, 0, 0);
    fake_avail(g, 0);
    CHECK(vq_pop(&g->vq, &g->mem, &e, true, false) == VQ_GOT && e.n_out == 1 && e.out_len == 20,
          "zero-length descriptor with a bad address is ignored");
}

static void test_notify(struct fake_guest *g)
{
    reset(g);
    g->vq.event_idx = false;
    vq_disable_notify(&g->vq);
    CHECK(g->vq.used->flags == VIRTQ_USED_F_NO_NOTIFY, "NO_NOTIFY set while draining");
    CHECK(!vq_enable_notify(&g->vq) && g->vq.used->flags == 0, "re-enabled, nothing pending");
    fake_desc(g, 0, fake_guest_data_gpa(g), 20, 0, 0);
    fake_avail(g, 0);
    CHECK(vq_enable_notify(&g->vq), "enable sees a buffer that raced in");
    vq_pop(&g->vq, &g->mem, &e, true, false);
    vq_push(&g->vq, e.head, 0);
    vq_flush(&g->vq);
    g->vq.avail->flags = VIRTQ_AVAIL_F_NO_INTERRUPT;
    CHECK(!vq_should_signal(&g->vq), "NO_INTERRUPT honoured");
    g->vq.avail->flags = 0;
    CHECK(vq_should_signal(&g->vq), "interrupt when asked");

    /* Event index: the driver wants an interrupt when used->idx passes used_event. */
    reset(g);
    g->vq.event_idx = true;
    uint16_t *used_event = &g->vq.avail->ring[g->vq.num];
    uint16_t *avail_event = (uint16_t *)&g->vq.used->ring[g->vq.num];
    for (int i = 0; i < 4; i++) {
        fake_desc(g, (uint16_t)i, fake_guest_data_gpa(g), 20, 0, 0);
        fake_avail(g, (uint16_t)i);
    }
    *used_event = 2;   /* interrupt once entry index 2 is used */
    bool sig[4];
    for (int i = 0; i < 4; i++) {
        vq_pop(&g->vq, &g->mem, &e, true, false);
        vq_push(&g->vq, e.head, 0);
        vq_flush(&g->vq);
        sig[i] = vq_should_signal(&g->vq);
    }
    CHECK(sig[0] && !sig[1] && sig[2] && !sig[3], "event index: %d%d%d%d", sig[0], sig[1],
          sig[2], sig[3]);
    CHECK(!vq_enable_notify(&g->vq) && *avail_event == 4, "avail_event set to next index");
}

/* Bursts: heads read once each into the window, chains in ring order,
 * the good chains before a bad one kept, and in-order completion. */
static void test_burst(struct fake_guest *g)
{
    static struct vq_burst b;
    reset(g);
    uint64_t d = fake_guest_data_gpa(g);
    fake_desc(g, 3, d, 60, 0, 0);
    fake_desc(g, 1, d + 0x100, 12, VIRTQ_DESC_F_NEXT, 7);
    fake_desc(g, 7, d + 0x200, 50, 0, 0);
    fake_desc(g, 4, d + 0x300, 70, 0, 0);
    fake_avail(g, 3);
    fake_avail(g, 1);
    fake_avail(g, 4);
    b.n = b.niov = 0;
    CHECK(vq_pop_burst(&g->vq, &g->mem, &b, 64, true, false) == 3, "three chains in a burst");
    CHECK(b.c[0].head == 3 && b.c[1].head == 1 && b.c[2].head == 4, "in ring order");
    CHECK(b.c[1].n_out == 2 && b.c[1].out_len == 62 && b.c[1].iov == b.c[0].iov + 1 &&
          b.c[2].iov == b.c[1].iov + 2 && b.niov == 4, "chains packed in the pool");
    CHECK(b.c[1].iov[1].iov_base == g->base + (d + 0x200 - GUEST_BASE), "second buffer translated");
    CHECK(vq_pop_burst(&g->vq, &g->mem, &b, 64, true, false) == 0, "then empty");

    /* Given back: popped again from the window, the avail ring not read
     * again (here rewritten meanwhile, which must not matter). */
    vq_unpop(&g->vq, 2);
    g->vq.avail->ring[1] = 200;
    g->vq.avail->ring[2] = 201;
    b.n = b.niov = 0;
    CHECK(vq_pop_burst(&g->vq, &g->mem, &b, 64, true, false) == 2 && b.c[0].head == 1 &&
          b.c[1].head == 4 && !g->vq.broken_reason, "heads given back come from the window");

    /* A burst that meets a bad chain returns the good ones before it. */
    reset(g);
    fake_desc(g, 0, d, 60, 0, 0);
    fake_desc(g, 1, d + 0x100, 60, 0, 0);
    fake_desc(g, 2, d + 0x200, 60, VIRTQ_DESC_F_NEXT, 2);   /* loops */
    fake_desc(g, 3, d + 0x300, 60, 0, 0);
    for (uint16_t i = 0; i < 4; i++)
        fake_avail(g, i);
    b.n = b.niov = 0;
    CHECK(vq_pop_burst(&g->vq, &g->mem, &b, 64, true, false) == 2 && g->vq.broken_reason &&
          g->vq.last_avail == 2, "two good chains, then the ring is broken (%s)",
          g->vq.broken_reason ? g->vq.broken_reason : "-");
    CHECK(vq_pop_burst(&g->vq, &g->mem, &b, 64, true, false) == 0, "nothing after that");

    /* The avail index may not run ahead by more than the ring. */
    reset(g);
    g->vq.avail->idx = (uint16_t)(g->vq.num + 1);
    b.n = b.niov = 0;
    CHECK(vq_pop_burst(&g->vq, &g->mem, &b, 64, true, false) == 0 && g->vq.broken_reason,
          "avail jump breaks the ring in a burst too");

    /* Completion: one entry per chain, or one per batch with IN_ORDER. */
    reset(g);
    uint16_t heads[3] = { 5, 6, 7 };
    memset(g->vq.used->ring, 0xee, 4 * sizeof(g->vq.used->ring[0]));
    vq_push_batch(&g->vq, heads, 3, 0);
    vq_flush(&g->vq);
    CHECK(g->vq.used->idx == 3 && g->vq.used->ring[0].id == 5 && g->vq.used->ring[2].id == 7,
          "an entry per chain");
    g->vq.in_order = true;
    memset(g->vq.used->ring, 0xee, 8 * sizeof(g->vq.used->ring[0]));
    vq_push_batch(&g->vq, heads, 3, 0);
    vq_flush(&g->vq);
    CHECK(g->vq.used->idx == 6 && g->vq.used->ring[3].id == 7 &&
          g->vq.used->ring[4].id == 0xeeeeeeeeu, "IN_ORDER: one entry, naming the last chain");
    g->vq.in_order = false;
}

static void test_regions(void)
{
    /* Two adjacent regions: a buffer may span them; a gap may not be. */
    struct guest_mem m;
    memset(&m, 0, sizeof(m));
    char err[128];
    for (int i = 0; i < 3; i++) {
        int fd = memfd_create("r", 0);
        CHECK(fd >= 0 && ftruncate(fd, 65536) == 0, "memfd");
        uint64_t gpa = i == 2 ? 0x40000 : 0x10000ull * (uint64_t)(i + 1);
        struct vhost_user_mem_region d = { gpa, 65536, 0x1000000ull * (uint64_t)(i + 1), 0 };
        struct mem_region r;
        CHECK(mem_region_map(&r, &d, fd, err, sizeof(err)) == 0, "map %d: %s", i, err);
        CHECK(!mem_overlaps(&m, &r), "no overlap %d", i);
        mem_add(&m, &r, err, sizeof(err));
        close(fd);
    }
    struct iovec iov[4];
    CHECK(mem_gpa_to_iov(&m, 0x1ff00, 0x200, iov, 4) == 2 && iov[0].iov_len == 0x100,
          "buffer split across adjacent regions");
    CHECK(mem_gpa_to_iov(&m, 0x2ff00, 0x200, iov, 4) == -1, "buffer running into a hole");
    CHECK(mem_gpa_to_host(&m, 0x1ff00, 0x200) == NULL, "contiguous lookup refuses the split");
    CHECK(mem_gpa_to_host(&m, 0x10000, 65536) != NULL, "whole region");
    CHECK(mem_gpa_to_host(&m, 0x10000, 65537) == NULL, "one byte past a region");
    CHECK(mem_uva_to_host(&m, 0x1000000, 16) == m.r[0].host, "uva translation");
    struct vhost_user_mem_region rm = { 0x20000, 65536, 0x2000000, 0 };
    CHECK(mem_remove(&m, &rm) == 0 && m.n == 2, "remove region");
    CHECK(mem_remove(&m, &rm) == -1, "remove twice fails");
    mem_clear(&m);
}

/* The table's own bound, and the SIGBUS guard's: a region either fits
 * both or is refused with a reason, never silently left unguarded. */
static void test_region_limits(void)
{
    char err[160];
    int fd = memfd_create("many", 0);
    CHECK(fd >= 0 && ftruncate(fd, 4096) == 0, "memfd");
    static struct guest_mem m[140];
    memset(m, 0, sizeof(m));
    struct vhost_user_mem_region d = { 0, 4096, 0, 0 };
    struct mem_region r;
    int refused_at = -1;
    for (unsigned i = 0; i <= MEM_MAX_REGIONS; i++) {
        d.guest_phys_addr = d.userspace_addr = 0x10000ull * i;
        CHECK(mem_region_map(&r, &d, fd, err, sizeof(err)) == 0, "map %u", i);
        if (mem_add(&m[0], &r, err, sizeof(err)) < 0) {
            refused_at = (int)i;
            mem_region_unmap(&r);
        }
    }
    CHECK(refused_at == MEM_MAX_REGIONS && m[0].n == MEM_MAX_REGIONS,
          "region %d of one memory refused: %s", refused_at, err);
    /* 4096 regions over many memories: the guard's table is full. */
    unsigned added = MEM_MAX_REGIONS, k = 1;
    refused_at = -1;
    for (; k < 140 && refused_at < 0; k++)
        for (unsigned i = 0; i < MEM_MAX_REGIONS && refused_at < 0; i++) {
            d.guest_phys_addr = d.userspace_addr = 0x10000ull * i;
            if (mem_region_map(&r, &d, fd, err, sizeof(err)) < 0)
                break;
            if (mem_add(&m[k], &r, err, sizeof(err)) < 0) {
                refused_at = (int)added;
                mem_region_unmap(&r);
            } else {
                added++;
            }
        }
    CHECK(refused_at == 4096, "region %d in all refused: %s", refused_at, err);
    for (unsigned i = 0; i < 140; i++)
        mem_clear(&m[i]);
    /* Freed slots are reusable. */
    CHECK(mem_region_map(&r, &d, fd, err, sizeof(err)) == 0 &&
          mem_add(&m[0], &r, err, sizeof(err)) == 0, "room again after the others went");
    mem_clear(&m[0]);
    close(fd);
}

static void test_bad_regions(void)
{
    char err[128];
    struct mem_region r;
    int fd = memfd_create("r", 0);
    CHECK(fd >= 0 && ftruncate(fd, 8192) == 0, "memfd");
    struct vhost_user_mem_region zero = { 0, 0, 0, 0 };
    CHECK(mem_region_map(&r, &zero, fd, err, sizeof(err)) < 0, "zero-sized region refused");
    struct vhost_user_mem_region wrap = { UINT64_MAX - 100, 4096, 0, 0 };
    CHECK(mem_region_map(&r, &wrap, fd, err, sizeof(err)) < 0, "wrapping gpa refused");
    struct vhost_user_mem_region big = { 0, 4096, 0, 8192 };
    CHECK(mem_region_map(&r, &big, fd, err, sizeof(err)) < 0, "offset+size beyond the fd: %s",
          err);
    struct vhost_user_mem_region offwrap = { 0, 4096, 0, UINT64_MAX - 10 };
    CHECK(mem_region_map(&r, &offwrap, fd, err, sizeof(err)) < 0, "wrapping offset refused");
    int p[2];
    CHECK(pipe(p) == 0, "pipe");
    struct vhost_user_mem_region ok = { 0, 4096, 0, 0 };
    CHECK(mem_region_map(&r, &ok, p[0], err, sizeof(err)) < 0, "pipe is not memory: %s", err);
    close(p[0]);
    close(p[1]);
    /* A region with an mmap offset: host points offset bytes into the file. */
    uint8_t *raw = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    raw[4096 + 5] = 0x5a;
    struct vhost_user_mem_region off = { 0x1000, 4096, 0, 4096 };
    CHECK(mem_region_map(&r, &off, fd, err, sizeof(err)) == 0 && r.host[5] == 0x5a,
          "mmap offset honoured");
    mem_region_unmap(&r);
    munmap(raw, 8192);
    close(fd);
}

static void test_sigbus_guard(void)
{
    /* The frontend shrinks its memory file after we mapped it. */
    CHECK(mem_guard_install() == 0, "guard installed");
    struct guest_mem m;
    memset(&m, 0, sizeof(m));
    bool faulted = false;
    m.fault_flag = &faulted;
    int fd = memfd_create("shrinks", 0);
    CHECK(fd >= 0 && ftruncate(fd, 1 << 16) == 0, "memfd");
    struct vhost_user_mem_region d = { 0, 1 << 16, 0, 0 };
    struct mem_region r;
    char err[128];
    CHECK(mem_region_map(&r, &d, fd, err, sizeof(err)) == 0, "map");
    mem_add(&m, &r, err, sizeof(err));
    volatile uint8_t *p = mem_gpa_to_host(&m, 0x8000, 1);
    p[0] = 7;
    CHECK(ftruncate(fd, 0) == 0, "shrink");
    uint8_t v = p[0];    /* SIGBUS without the guard */
    p[1] = 9;
    CHECK(faulted && v == 0, "fault caught, flag set, zero read (flag %d, v %u)", faulted, v);
    mem_clear(&m);
    close(fd);
}

int main(void)
{
    test_sigbus_guard();
    struct fake_guest g;
    if (fake_guest_init(&g, 1 << 20, 256) < 0) {
        printf("cannot set up the fake guest\n");
        return 1;
    }
    test_valid_direct(&g);
    test_valid_indirect(&g);
    test_hostile(&g);
    test_notify(&g);
    test_burst(&g);
    fake_guest_fini(&g);
    test_regions();
    test_region_limits();
    test_bad_regions();
    return check_done("test_vq");
}
