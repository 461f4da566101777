#define _GNU_SOURCE
/*
 * test_vq.c - split and packed virtqueue access against valid and hostile
 * rings.
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

/* ---- packed rings (virtio 1.2, 2.8) ---------------------------------------- */

/* A packed ring in the fake guest's memory, apart from the split one:
 * descriptors from PK_DESC (room for 3840), the driver's event structure
 * at PK_DRV, the device's at PK_DEV, buffers from PK_DATA. */
#define PK_DESC 0x40000u
#define PK_DRV 0x4f000u
#define PK_DEV 0x4f100u
#define PK_DATA 0x50000u
#define PK_JUNK_ID 0xbeef   /* IDs of descriptors before a chain's last */

static struct vq pv;
/* The driver's side: where it makes the next descriptor available, and
 * where it expects the next used descriptor, each with its wrap counter. */
static struct {
    uint16_t pos, upos;
    bool wrap, uwrap;
} drv;
static uint8_t pk_snap[1 << 20];

struct pseg {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
};

static struct virtq_pdesc *pring(struct fake_guest *g)
{
    return (struct virtq_pdesc *)(g->base + PK_DESC);
}

static struct virtq_pevent *pdrv(struct fake_guest *g)
{
    return (struct virtq_pevent *)(g->base + PK_DRV);
}

static struct virtq_pevent *pdev(struct fake_guest *g)
{
    return (struct virtq_pevent *)(g->base + PK_DEV);
}

static uint64_t pk_data(unsigned k)
{
    return GUEST_BASE + PK_DATA + 0x800ull * k;
}

static uint16_t wrap_flags(bool wrap)
{
    return wrap ? VIRTQ_DESC_F_AVAIL : VIRTQ_DESC_F_USED;
}

/* Both sides at ring position pos with wrap counter wrap. */
static void pk_start(uint16_t pos, bool wrap)
{
    vq_set_base(&pv, virtq_packed_state(pos, wrap, pos, wrap));
    drv.pos = drv.upos = pos;
    drv.wrap = drv.uwrap = wrap;
}

/* A fresh packed ring of num entries (its log kept), both sides at 0 with
 * wrap counters 1 as after a reset; true if it maps. */
static bool pk_setup(struct fake_guest *g, uint32_t num)
{
    struct vq_pk *pk = pv.pk;
    memset(&pv, 0, sizeof(pv));
    pv.pk = pk;
    pv.packed = true;
    pv.num = num;
    pv.desc_uva = GUEST_UVA + PK_DESC;
    pv.avail_uva = GUEST_UVA + PK_DRV;
    pv.used_uva = GUEST_UVA + PK_DEV;
    pv.addr_set = true;
    pv.indirect = true;
    memset(g->base + PK_DESC, 0, PK_DATA - PK_DESC);
    pk_start(0, true);
    return vq_map(&pv, &g->mem);
}

static void pk_advance(uint16_t *pos, bool *wrap, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        if (++*pos == pv.num) {
            *pos = 0;
            *wrap = !*wrap;
        }
}

/* The driver makes a chain of n descriptors available at its position,
 * the buffer ID in the last one (the others carry junk the device must
 * ignore), the head's flags written last.  Returns the head's position. */
static uint16_t pk_chain(struct fake_guest *g, const struct pseg *s, unsigned n, uint16_t id)
{
    struct virtq_pdesc *r = pring(g);
    uint16_t head = drv.pos, head_flags = 0;
    for (unsigned i = 0; i < n; i++) {
        uint16_t f = (uint16_t)(s[i].flags | (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0) |
                                wrap_flags(drv.wrap));
        r[drv.pos].addr = s[i].addr;
        r[drv.pos].len = s[i].len;
        r[drv.pos].id = i + 1 < n ? PK_JUNK_ID : id;
        if (i == 0)
            head_flags = f;
        else
            r[drv.pos].flags = f;
        pk_advance(&drv.pos, &drv.wrap, 1);
    }
    __atomic_store_n(&r[head].flags, head_flags, __ATOMIC_RELEASE);
    return head;
}

/* One readable descriptor of len bytes, buffer k. */
static uint16_t pk_one(struct fake_guest *g, unsigned k, uint32_t len, uint16_t flags, uint16_t id)
{
    struct pseg s = { pk_data(k), len, flags };
    return pk_chain(g, &s, 1, id);
}

/* The driver reads the used descriptor at its used position: it must be
 * used in the driver's used wrap (AVAIL and USED both equal to it), name
 * id with len, carry WRITE if len > 0; the chain took ndesc descriptors. */
static bool pk_used(struct fake_guest *g, uint16_t id, uint32_t len, unsigned ndesc)
{
    struct virtq_pdesc d = pring(g)[drv.upos];
    uint16_t want = (uint16_t)((drv.uwrap ? VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_USED : 0) |
                               (len ? VIRTQ_DESC_F_WRITE : 0));
    bool ok = d.id == id && d.len == len && d.flags == want;
    if (!ok)
        note("used descriptor at %u (wrap %d): id %u len %u flags 0x%x, expected %u %u 0x%x",
             drv.upos, drv.uwrap, d.id, d.len, d.flags, id, len, want);
    pk_advance(&drv.upos, &drv.uwrap, ndesc);
    return ok;
}

/* The device's positions as the driver expects them. */
static bool pk_base_is(uint16_t avail, bool aw, uint16_t used, bool uw)
{
    uint32_t want = virtq_packed_state(avail, aw, used, uw), got = vq_get_base(&pv);
    if (got != want)
        note("ring state 0x%08x, expected 0x%08x", got, want);
    return got == want;
}

static void pk_snapshot(struct fake_guest *g)
{
    memcpy(pk_snap, g->base, g->size);
}

/* Bytes of guest memory changed since the snapshot, outside [skip, skip + n). */
static unsigned pk_changed(struct fake_guest *g, uint64_t skip, uint64_t n)
{
    unsigned c = 0;
    for (uint64_t i = 0; i < g->size; i++)
        c += (i < skip || i >= skip + n) && g->base[i] != pk_snap[i];
    return c;
}

static void test_pk_single(struct fake_guest *g)
{
    CHECK(pk_setup(g, 256), "packed: ring of 256 maps");
    CHECK(vq_pop(&pv, &g->mem, &e, true, false) == VQ_EMPTY, "packed: empty ring pops nothing");
    pk_one(g, 0, 60, 0, 7);
    enum vq_pop_result r = vq_pop(&pv, &g->mem, &e, true, false);
    CHECK(r == VQ_GOT && e.head == 7 && e.n_out == 1 && e.n_in == 0 && e.out_len == 60 &&
          e.iov[0].iov_base == g->base + PK_DATA && e.iov[0].iov_len == 60,
          "packed: one descriptor popped (head %u, %u/%u, %llu)", e.head, e.n_out, e.n_in,
          (unsigned long long)e.out_len);
    CHECK(pk_base_is(1, true, 0, true), "packed: avail position 1, used still 0");
    pk_snapshot(g);
    vq_push(&pv, e.head, 0);
    CHECK(pk_changed(g, 0, 0) == 0, "packed: a push writes nothing before the flush");
    vq_flush(&pv);
    CHECK(pk_used(g, 7, 0, 1), "packed: used descriptor at 0: id 7, len 0, AVAIL|USED");
    CHECK(pk_changed(g, PK_DESC, 16) == 0, "packed: nothing else written");
    /* A writable buffer: the used descriptor says how much was written. */
    pk_one(g, 1, 1500, VIRTQ_DESC_F_WRITE, 3);
    r = vq_pop(&pv, &g->mem, &e, false, true);
    CHECK(r == VQ_GOT && e.head == 3 && e.n_out == 0 && e.n_in == 1 && e.in_len == 1500,
          "packed: writable descriptor popped");
    vq_push(&pv, e.head, 100);
    vq_flush(&pv);
    CHECK(pk_used(g, 3, 100, 1), "packed: used descriptor at 1: id 3, len 100, AVAIL|USED|WRITE");
    CHECK(pk_base_is(2, true, 2, true) && !vq_broken(&pv), "packed: both positions at 2");
}

static void test_pk_multi(struct fake_guest *g)
{
    CHECK(pk_setup(g, 256), "packed: set up");
    /* The head and middle descriptors carry an ID beyond the ring: only the
     * last one's counts. */
    struct pseg s[3] = { { pk_data(0), 12, 0 }, { pk_data(1), 100, 0 },
                         { pk_data(2), 200, VIRTQ_DESC_F_WRITE } };
    pk_chain(g, s, 3, 9);
    pk_one(g, 3, 30, 0, 1);
    enum vq_pop_result r = vq_pop(&pv, &g->mem, &e, true, true);
    CHECK(r == VQ_GOT && e.head == 9 && e.n_out == 2 && e.n_in == 1 && e.out_len == 112 &&
          e.in_len == 200 && e.iov[1].iov_base == g->base + PK_DATA + 0x800 &&
          e.iov[2].iov_base == g->base + PK_DATA + 0x1000,
          "packed: 3-descriptor chain, ID from the last descriptor (head %u)", e.head);
    CHECK(pk_base_is(3, true, 0, true), "packed: avail position advanced by 3");
    vq_push(&pv, e.head, 50);
    vq_flush(&pv);
    CHECK(pk_used(g, 9, 50, 3), "packed: one used descriptor at the chain's head");
    CHECK(pk_base_is(3, true, 3, true), "packed: used position advanced by the chain's 3");
    CHECK(pring(g)[1].id == PK_JUNK_ID && pring(g)[2].id == 9 &&
          (pring(g)[2].flags & VIRTQ_DESC_F_USED) == 0,
          "packed: the chain's other descriptors are left as they were");
    r = vq_pop(&pv, &g->mem, &e, true, false);
    CHECK(r == VQ_GOT && e.head == 1 && e.out_len == 30, "packed: next chain at 3");
    vq_push(&pv, e.head, 0);
    vq_flush(&pv);
    CHECK(pk_used(g, 1, 0, 1), "packed: its used descriptor at 3");
}

/* A chain may run past the ring's end: its descriptors after the end are
 * in the next lap (wrap counter flipped). */
static void test_pk_wrap_chain(struct fake_guest *g)
{
    CHECK(pk_setup(g, 8), "packed: ring of 8");
    pk_start(6, true);
    struct pseg s[4] = { { pk_data(0), 12, 0 }, { pk_data(1), 10, 0 }, { pk_data(2), 20, 0 },
                         { pk_data(3), 30, 0 } };
    pk_chain(g, s, 4, 5);
    CHECK(pring(g)[7].flags == (VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_NEXT) &&
          pring(g)[0].flags == (VIRTQ_DESC_F_USED | VIRTQ_DESC_F_NEXT) &&
          pring(g)[1].flags == VIRTQ_DESC_F_USED, "packed: test chain spans 6, 7, 0, 1");
    enum vq_pop_result r = vq_pop(&pv, &g->mem, &e, true, false);
    CHECK(r == VQ_GOT && e.head == 5 && e.n_out == 4 && e.out_len == 72 &&
          e.iov[3].iov_base == g->base + PK_DATA + 3 * 0x800,
          "packed: chain running past the ring end popped (%d, %u pieces)", r, e.n_out);
    CHECK(pk_base_is(2, false, 6, true), "packed: avail position 2, wrap counter flipped to 0");
    vq_push(&pv, e.head, 0);
    vq_flush(&pv);
    CHECK(pk_used(g, 5, 0, 4), "packed: used descriptor at 6 with wrap 1");
    CHECK(pk_base_is(2, false, 2, false), "packed: used position 2, used wrap counter 0");
    /* The next chain is in lap 0: available means AVAIL 0, USED 1. */
    pk_one(g, 4, 40, VIRTQ_DESC_F_WRITE, 6);
    r = vq_pop(&pv, &g->mem, &e, false, true);
    CHECK(r == VQ_GOT && e.head == 6 && e.in_len == 40, "packed: chain in the second lap");
    vq_push(&pv, e.head, 40);
    vq_flush(&pv);
    CHECK(pk_used(g, 6, 40, 1), "packed: its used descriptor at 2 has AVAIL = USED = 0");
    CHECK(!vq_broken(&pv), "packed: not broken");
}

/* A ring of 100 (not a power of two) over several laps: chains of 1-3
 * descriptors, popped one by one and in bursts, completed one by one and
 * in batches, checked at every used descriptor. */
static void test_pk_laps(struct fake_guest *g)
{
    CHECK(pk_setup(g, 100), "packed: ring of 100 maps");
    static struct vq_burst b;
    uint32_t rnd = 12345;
    uint16_t next_id = 0, expect_id[8];
    unsigned expect_nd[8], total = 0, flips = 0, bad = 0;
    bool last_wrap = drv.wrap;
    for (unsigned round = 0; total < 800; round++) {
        rnd = rnd * 1103515245u + 12345u;
        unsigned k = 1 + (rnd >> 16) % 5;
        for (unsigned c = 0; c < k; c++) {
            unsigned nd = 1 + (rnd >> (c * 2 + 3)) % 3;
            struct pseg s[3];
            for (unsigned i = 0; i < nd; i++)
                s[i] = (struct pseg){ pk_data(c * 3 + i), 20 + (uint32_t)i, 0 };
            expect_id[c] = next_id;
            expect_nd[c] = nd;
            pk_chain(g, s, nd, next_id);
            next_id = (uint16_t)((next_id + 7) % 100);
            total += nd;
        }
        uint16_t heads[8];
        unsigned got = 0;
        if (round % 2) {
            b.n = b.niov = 0;
            got = vq_pop_burst(&pv, &g->mem, &b, 64, true, false);
            for (unsigned c = 0; c < got; c++) {
                heads[c] = b.c[c].head;
                bad += b.c[c].n_out != expect_nd[c] || b.c[c].out_len != expect_nd[c] * 20 +
                       (expect_nd[c] - 1) * expect_nd[c] / 2;
            }
        } else {
            while (got < 8 && vq_pop(&pv, &g->mem, &e, true, false) == VQ_GOT) {
                bad += e.n_out != expect_nd[got];
                heads[got++] = e.head;
            }
        }
        bad += got != k;
        for (unsigned c = 0; c < got; c++)
            bad += heads[c] != expect_id[c];
        if (round % 3)
            vq_push_batch(&pv, heads, got, 0);
        else
            for (unsigned c = 0; c < got; c++)
                vq_push(&pv, heads[c], 0);
        vq_flush(&pv);
        for (unsigned c = 0; c < got; c++)
            bad += !pk_used(g, expect_id[c], 0, expect_nd[c]);
        flips += drv.wrap != last_wrap;
        last_wrap = drv.wrap;
        if (bad)
            break;
    }
    CHECK(bad == 0 && !vq_broken(&pv), "packed, ring of 100: %u descriptors over %u laps, every "
          "chain and used descriptor as expected (%u wrong)", total, flips, bad);
    CHECK(flips >= 7 && pk_base_is(drv.pos, drv.wrap, drv.upos, drv.uwrap),
          "packed, ring of 100: positions and wrap counters agree with the driver's");
}

static void test_pk_unpop(struct fake_guest *g)
{
    static struct vq_burst b;
    CHECK(pk_setup(g, 16), "packed: set up");
    struct pseg two[2] = { { pk_data(1), 12, 0 }, { pk_data(2), 50, 0 } };
    pk_one(g, 0, 60, 0, 4);
    pk_chain(g, two, 2, 5);
    pk_one(g, 3, 70, 0, 6);
    b.n = b.niov = 0;
    CHECK(vq_pop_burst(&pv, &g->mem, &b, 64, true, false) == 3 && b.c[1].head == 5 &&
          b.c[2].head == 6, "packed: 3 chains in a burst");
    vq_unpop(&pv, 2);
    CHECK(pk_base_is(1, true, 0, true), "packed: unpop of 2 goes back to the second chain");
    b.n = b.niov = 0;
    CHECK(vq_pop_burst(&pv, &g->mem, &b, 64, true, false) == 2 && b.c[0].head == 5 &&
          b.c[0].n_out == 2 && b.c[0].out_len == 62 &&
          b.c[0].iov[1].iov_base == g->base + PK_DATA + 0x1000 && b.c[1].head == 6 &&
          b.c[1].out_len == 70 && !vq_broken(&pv),
          "packed: the same two chains popped again (IDs not taken for reused ones)");
    uint16_t heads[3] = { 4, 5, 6 };
    vq_push_batch(&pv, heads, 3, 0);
    vq_flush(&pv);
    CHECK(pk_used(g, 4, 0, 1) && pk_used(g, 5, 0, 2) && pk_used(g, 6, 0, 1),
          "packed: all three completed once, in order");
    /* Pushed chains cannot be given back: asking changes nothing. */
    pk_one(g, 4, 60, 0, 7);
    CHECK(vq_pop(&pv, &g->mem, &e, true, false) == VQ_GOT, "packed: one more popped");
    vq_push(&pv, e.head, 0);
    vq_unpop(&pv, 1);
    CHECK(pk_base_is(5, true, 4, true),
          "packed: vq_unpop of a pushed chain leaves the avail position where it was");
    vq_flush(&pv);
    CHECK(pk_used(g, 7, 0, 1) && !vq_broken(&pv), "packed: and the chain is completed once");
    pk_one(g, 5, 60, 0, 8);
    enum vq_pop_result r = vq_pop(&pv, &g->mem, &e, true, false);
    CHECK(r == VQ_GOT && e.head == 8, "packed: the next chain (at 5) is popped after that (got %d, "
          "head %u, ring at %u/%d)", r, e.head, pv.last_avail, pv.avail_wrap);
}

/* RX rollback: used entries of a group forgotten, the chains given back. */
static void test_pk_rollback(struct fake_guest *g)
{
    static struct vq_burst b;
    CHECK(pk_setup(g, 16), "packed: set up");
    for (uint16_t i = 0; i < 4; i++)
        pk_one(g, i, 1000, VIRTQ_DESC_F_WRITE, (uint16_t)(10 + i));
    b.n = b.niov = 0;
    CHECK(vq_pop_burst(&pv, &g->mem, &b, 64, false, true) == 4, "packed: 4 RX chains");
    pk_snapshot(g);
    uint32_t start = vq_used_begin(&pv);
    vq_push(&pv, 10, 100);
    vq_push(&pv, 11, 200);
    vq_used_rollback(&pv, start);
    vq_unpop(&pv, 4);
    vq_flush(&pv);
    CHECK(pk_changed(g, 0, 0) == 0, "packed: after rollback and unpop nothing is written");
    CHECK(pk_base_is(0, true, 0, true), "packed: both positions back at 0");
    b.n = b.niov = 0;
    CHECK(vq_pop_burst(&pv, &g->mem, &b, 64, false, true) == 4 && b.c[0].head == 10 &&
          b.c[3].head == 13 && !vq_broken(&pv), "packed: the 4 chains popped again");
    /* A frame in chain 10, then one in 11 and 12 that is rolled back. */
    start = vq_used_begin(&pv);
    vq_push(&pv, 10, 300);
    vq_used_end(&pv);
    start = vq_used_begin(&pv);
    vq_push(&pv, 11, 1000);
    vq_push(&pv, 12, 10);
    vq_used_rollback(&pv, start);
    vq_unpop(&pv, 3);
    pk_snapshot(g);
    vq_flush(&pv);
    CHECK(pk_used(g, 10, 300, 1) && pk_changed(g, PK_DESC, 16) == 0,
          "packed: only the kept entry is written");
    CHECK(pk_base_is(1, true, 1, true), "packed: positions after the kept chain");
    b.n = b.niov = 0;
    CHECK(vq_pop_burst(&pv, &g->mem, &b, 64, false, true) == 3 && b.c[0].head == 11 &&
          b.c[2].head == 13, "packed: the rolled-back chains popped again");
    uint16_t heads[3] = { 11, 12, 13 };
    vq_push_batch(&pv, heads, 3, 64);
    vq_flush(&pv);
    CHECK(pk_used(g, 11, 64, 1) && pk_used(g, 12, 64, 1) && pk_used(g, 13, 64, 1) &&
          !vq_broken(&pv), "packed: then completed once each");
}

/* With IN_ORDER a batch takes one used descriptor, at the first chain's
 * position, naming the last buffer. */
static void test_pk_in_order(struct fake_guest *g)
{
    static struct vq_burst b;
    CHECK(pk_setup(g, 16), "packed: set up");
    pv.in_order = true;
    struct pseg two[2] = { { pk_data(1), 12, 0 }, { pk_data(2), 50, 0 } };
    pk_one(g, 0, 60, 0, 10);
    pk_chain(g, two, 2, 11);
    pk_one(g, 3, 60, 0, 12);
    b.n = b.niov = 0;
    CHECK(vq_pop_burst(&pv, &g->mem, &b, 64, true, false) == 3, "packed: 3 chains");
    pk_snapshot(g);
    uint16_t heads[3] = { 10, 11, 12 };
    vq_push_batch(&pv, heads, 3, 0);
    vq_flush(&pv);
    CHECK(pk_used(g, 12, 0, 4) && pk_changed(g, PK_DESC, 16) == 0,
          "packed IN_ORDER: one used descriptor at 0 naming buffer 12, nothing else written");
    CHECK(pk_base_is(4, true, 4, true), "packed IN_ORDER: used position past the whole batch");
    /* A batch across the ring's end. */
    pk_start(14, true);
    pk_one(g, 0, 60, 0, 1);
    pk_chain(g, two, 2, 2);
    pk_one(g, 3, 60, 0, 3);
    b.n = b.niov = 0;
    CHECK(vq_pop_burst(&pv, &g->mem, &b, 64, true, false) == 3, "packed: 3 chains from 14");
    pk_snapshot(g);
    uint16_t h2[3] = { 1, 2, 3 };
    vq_push_batch(&pv, h2, 3, 0);
    vq_flush(&pv);
    CHECK(pk_used(g, 3, 0, 4) && pk_changed(g, PK_DESC + 14 * 16, 16) == 0,
          "packed IN_ORDER: batch across the end: one used descriptor at 14 (wrap 1)");
    CHECK(pk_base_is(2, false, 2, false) && !vq_broken(&pv),
          "packed IN_ORDER: used position 2, wrap counter 0");
}

/* The driver makes n single chains available; the device pops, completes
 * and flushes them. */
static void pk_round(struct fake_guest *g, unsigned n)
{
    static uint16_t id;
    for (unsigned i = 0; i < n; i++) {
        pk_one(g, i, 60, 0, id);
        id = (uint16_t)((id + 1) % pv.num);
    }
    for (unsigned i = 0; i < n; i++)
        if (vq_pop(&pv, &g->mem, &e, true, false) == VQ_GOT)
            vq_push(&pv, e.head, 0);
    vq_flush(&pv);
    pk_advance(&drv.upos, &drv.uwrap, n);
}

static bool pk_signal(struct fake_guest *g, uint16_t flags, uint16_t off_wrap)
{
    pdrv(g)->off_wrap = off_wrap;
    pdrv(g)->flags = flags;
    return vq_should_signal(&pv);
}

static void test_pk_notify(struct fake_guest *g)
{
    CHECK(pk_setup(g, 8), "packed: set up");
    pdev(g)->flags = 0x55;
    vq_disable_notify(&pv);
    CHECK(pdev(g)->flags == VIRTQ_EVENT_F_DISABLE, "packed: disable writes DISABLE");
    CHECK(!vq_enable_notify(&pv) && pdev(g)->flags == VIRTQ_EVENT_F_ENABLE,
          "packed: enable writes ENABLE, nothing available");
    pk_one(g, 0, 60, 0, 0);
    vq_disable_notify(&pv);
    CHECK(vq_enable_notify(&pv), "packed: enable sees a descriptor that raced in");
    /* Event index: DESC naming the avail position and its wrap counter. */
    CHECK(pk_setup(g, 8), "packed: set up");
    pv.event_idx = true;
    pk_start(5, false);
    vq_disable_notify(&pv);
    CHECK(pdev(g)->flags == VIRTQ_EVENT_F_DISABLE, "packed EVENT_IDX: disable writes DISABLE");
    CHECK(!vq_enable_notify(&pv) && pdev(g)->flags == VIRTQ_EVENT_F_DESC &&
          pdev(g)->off_wrap == 5, "packed EVENT_IDX: DESC at 5, wrap 0 (off_wrap 0x%x)",
          pdev(g)->off_wrap);
    pk_start(3, true);
    CHECK(!vq_enable_notify(&pv) && pdev(g)->off_wrap == (3 | 0x8000),
          "packed EVENT_IDX: DESC at 3, wrap 1 (off_wrap 0x%x)", pdev(g)->off_wrap);
    pk_one(g, 0, 60, 0, 0);
    CHECK(vq_enable_notify(&pv), "packed EVENT_IDX: enable sees a descriptor that raced in");
    /* A descriptor with the other lap's flags is not available. */
    pk_start(3, false);
    pring(g)[3].flags = VIRTQ_DESC_F_AVAIL;
    CHECK(!vq_enable_notify(&pv), "packed: enable ignores a descriptor of the other lap");

    /* The driver's event structure. */
    CHECK(pk_setup(g, 8), "packed: set up");
    pk_round(g, 1);
    CHECK(!pk_signal(g, VIRTQ_EVENT_F_DISABLE, 0), "packed: DISABLE: no interrupt");
    pk_round(g, 1);
    CHECK(pk_signal(g, VIRTQ_EVENT_F_ENABLE, 0), "packed: ENABLE: interrupt");
    pk_round(g, 1);
    CHECK(pk_signal(g, VIRTQ_EVENT_F_DESC, 0x7fff), "packed: DESC without EVENT_IDX: interrupt");
    pv.event_idx = true;
    const uint16_t W = 0x8000;
    struct {
        unsigned n;         /* used descriptors written in the round */
        uint16_t off_wrap;
        bool want;
        const char *what;
    } r[] = {
        { 1, 1 | W, true, "first signal after a reset is sent" },   /* 3 -> 4 */
        { 3, 5 | W, true, "descriptor inside [4, 7)" },              /* 4 -> 7 */
        { 3, 7 | W, true, "first of [7, 2') across the end" },       /* 7 -> 2' */
        { 2, 4 | W, false, "descriptor before the window" },         /* 2' -> 4' */
        { 2, 6, false, "descriptor just past [4', 6')" },            /* 4' -> 6' */
        { 3, 0 | W, true, "descriptor 0 inside [6', 1) across the end" }, /* 6' -> 1 */
        { 3, 2, false, "descriptor 2 of the previous lap (2')" },    /* 1 -> 4 */
        { 3, 6, false, "descriptor 6 of the next lap (6')" },        /* 4 -> 7 */
        { 3, 1, true, "last of [7, 2') across the end" },            /* 7 -> 2' */
        { 0, 1, false, "nothing written since the last signal" },
    };
    for (unsigned i = 0; i < sizeof(r) / sizeof(r[0]); i++) {
        if (i == 0)
            vq_set_base(&pv, vq_get_base(&pv));   /* forgets the last signal */
        pk_round(g, r[i].n);
        bool s = pk_signal(g, VIRTQ_EVENT_F_DESC, r[i].off_wrap);
        CHECK(s == r[i].want, "packed EVENT_IDX: off_wrap 0x%04x with used at %u/%d: %s: %s",
              r[i].off_wrap, pv.used_idx, pv.used_wrap, r[i].what, s ? "interrupt" : "none");
    }
}

static void test_pk_base_map(struct fake_guest *g)
{
    CHECK(pk_setup(g, 100), "packed: set up");
    static const uint32_t st[] = { 0, 0x80008000u, 0x00630063u, 0x80638063u, 0x002a002au };
    bool ok = true;
    for (unsigned i = 0; i < sizeof(st) / sizeof(st[0]); i++) {
        vq_set_base(&pv, st[i]);
        ok &= vq_get_base(&pv) == st[i];
    }
    CHECK(ok, "packed: SET/GET_VRING_BASE round trip");
    /* The avail half sets both positions (vq.h): DPDK's virtio-user sends
     * 0x8000 alone. */
    vq_set_base(&pv, virtq_packed_state(42, 0, 17, 1));
    CHECK(pv.last_avail == 42 && !pv.avail_wrap && pv.used_idx == 42 && !pv.used_wrap &&
          vq_get_base(&pv) == virtq_packed_state(42, 0, 42, 0),
          "packed: the avail half of the state sets both positions and wrap counters");
    vq_set_base(&pv, 0x8000);
    CHECK(pv.last_avail == 0 && pv.avail_wrap && pv.used_idx == 0 && pv.used_wrap,
          "packed: state 0x8000 starts both sides at 0 with wrap counters 1");
    CHECK(vq_base_fits(&pv, virtq_packed_state(99, 1, 99, 1), 100) &&
          !vq_base_fits(&pv, virtq_packed_state(100, 1, 0, 1), 100) &&
          !vq_base_fits(&pv, virtq_packed_state(0x7fff, 0, 0, 1), 100) &&
          vq_base_fits(&pv, virtq_packed_state(5, 0, 0x7fff, 1), 100) && vq_base_fits(&pv, 0, 1) &&
          !vq_base_fits(&pv, 0x8001, 1),
          "packed: vq_base_fits refuses avail positions >= num (the used half is not taken)");
    struct vq split;
    memset(&split, 0, sizeof(split));
    CHECK(vq_base_fits(&split, 0xffff, 4), "split: any index fits");

    struct {
        const char *what;
        uint64_t desc, drv, dev;
        uint32_t state;
    } bad[] = {
        { "descriptors not 16-aligned", GUEST_UVA + PK_DESC + 8, GUEST_UVA + PK_DRV,
          GUEST_UVA + PK_DEV, 0x80008000u },
        { "driver event structure not 4-aligned", GUEST_UVA + PK_DESC, GUEST_UVA + PK_DRV + 2,
          GUEST_UVA + PK_DEV, 0x80008000u },
        { "device event structure not 4-aligned", GUEST_UVA + PK_DESC, GUEST_UVA + PK_DRV,
          GUEST_UVA + PK_DEV + 1, 0x80008000u },
        { "avail position >= num", GUEST_UVA + PK_DESC, GUEST_UVA + PK_DRV, GUEST_UVA + PK_DEV,
          virtq_packed_state(100, 1, 0, 1) },
        { "driver event structure past the end of memory", GUEST_UVA + PK_DESC,
          GUEST_UVA + g->size, GUEST_UVA + PK_DEV, 0x80008000u },
        { "device event structure below guest memory", GUEST_UVA + PK_DESC, GUEST_UVA + PK_DRV,
          GUEST_UVA - 4, 0x80008000u },
        { "device event structure far outside", GUEST_UVA + PK_DESC, GUEST_UVA + PK_DRV,
          0xfffffffffffffffcull, 0x80008000u },
        { "descriptors running past the end of memory", GUEST_UVA + g->size - 99 * 16,
          GUEST_UVA + PK_DRV, GUEST_UVA + PK_DEV, 0x80008000u },
    };
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK(pk_setup(g, 100), "packed: set up");
        pv.desc_uva = bad[i].desc;
        pv.avail_uva = bad[i].drv;
        pv.used_uva = bad[i].dev;
        vq_set_base(&pv, bad[i].state);
        bool m = vq_map(&pv, &g->mem);
        CHECK(!m && !vq_mapped(&pv) && !pv.pdesc && !pv.drv_event && !pv.dev_event,
              "packed: vq_map refuses %s", bad[i].what);
    }
    CHECK(pk_setup(g, 100), "packed: set up");
    pv.used_idx = 100;      /* not reachable through vq_set_base any more */
    CHECK(!vq_map(&pv, &g->mem) && !vq_mapped(&pv), "packed: vq_map refuses used position >= num");
    /* An aligned event structure cannot straddle the end: the last 4 bytes fit. */
    CHECK(pk_setup(g, 100), "packed: set up");
    pv.avail_uva = GUEST_UVA + g->size - 4;
    CHECK(vq_map(&pv, &g->mem), "packed: an event structure in the last 4 bytes maps");
}

/* Expects the chain at the avail position to break the ring, and guest
 * memory left untouched. */
/* The journal a packed ring keeps for the next daemon (vq_journal): at
 * rest between flushes; a batch saved before it goes into the ring, and a
 * daemon killed while writing it is followed by one that writes it again
 * (vq_pk_resume) and goes on after it. */
static struct vq_journal jr;

static void test_pk_journal(struct fake_guest *g)
{
    CHECK(pk_setup(g, 16), "journal: ring of 16 maps");
    memset(&jr, 0, sizeof(jr));
    jr.word = 0x8000u * 0x10001u;      /* at 0, wrap 1 */
    pv.journal = &jr;
    struct pseg two[2] = { { pk_data(1), 20, 0 }, { pk_data(2), 30, 0 } };
    pk_chain(g, two, 2, 3);
    pk_one(g, 3, 40, 0, 4);
    struct vq_elem el;
    CHECK(vq_pop(&pv, &g->mem, &el, true, false) == VQ_GOT && el.head == 3, "journal: pop 2-desc");
    vq_push(&pv, el.head, 7);
    CHECK(vq_pop(&pv, &g->mem, &el, true, false) == VQ_GOT && el.head == 4, "journal: pop 1-desc");
    vq_push(&pv, el.head, 0);
    CHECK(jr.word == 0x8000u * 0x10001u, "journal: nothing saved before the used descriptors go out");
    vq_flush(&pv);
    CHECK(jr.word == 0x8003u * 0x10001u, "journal: at 3 (wrap 1) once both are written (0x%08x)",
          jr.word);
    CHECK(jr.count == 2 && jr.ent[0] == (0x8000u | 3ull << 16 | 7ull << 32) &&
              jr.ent[1] == (0x8002u | 4ull << 16),
          "journal: the batch as written (0x%llx 0x%llx)", (unsigned long long)jr.ent[0],
          (unsigned long long)jr.ent[1]);
    CHECK(pk_used(g, 3, 7, 2) && pk_used(g, 4, 0, 1), "journal: the driver sees both");
    CHECK(vq_pk_resume(&pv, &jr) == 0x8003u, "journal: at rest: resume where it is");
    /* A daemon killed after saving the next batch (chains at 3 and 4) and
     * writing only the second of its used descriptors. */
    pk_one(g, 4, 50, 0, 5);
    pk_one(g, 5, 50, 0, 6);
    struct virtq_pdesc *r = pring(g);
    jr.count = 2;
    jr.ent[0] = 0x8003u | 5ull << 16 | 9ull << 32;
    jr.ent[1] = 0x8004u | 6ull << 16 | 11ull << 32;
    jr.word = 0x8005u << 16 | 0x8003u;
    r[4].id = 6;
    r[4].len = 11;
    r[4].flags = VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_USED | VIRTQ_DESC_F_WRITE;
    CHECK(vq_pk_resume(&pv, &jr) == 0x8005u && jr.word == 0x8005u * 0x10001u,
          "journal: half-written batch: written again, resume after it");
    CHECK(pk_used(g, 5, 9, 1) && pk_used(g, 6, 11, 1), "journal: the driver sees the whole batch");
    /* A batch naming a position outside the ring is not written. */
    jr.count = 1;
    jr.ent[0] = 0x8000u | 16;
    jr.word = 0x8006u << 16 | 0x8005u;
    uint16_t f5 = r[5].flags;
    CHECK(vq_pk_resume(&pv, &jr) == 0x8005u && r[5].flags == f5,
          "journal: an entry beyond the ring: nothing written, resume before the batch");
    pv.journal = NULL;
}

static void expect_pk_broken(struct fake_guest *g, bool out, bool in, const char *what)
{
    pk_snapshot(g);
    uint32_t base = vq_get_base(&pv);
    enum vq_pop_result r = vq_pop(&pv, &g->mem, &e, out, in);
    CHECK(r == VQ_BROKEN && vq_broken(&pv), "packed, %s: breaks the ring (got %d)", what, r);
    if (vq_broken(&pv))
        printf("  packed, %s -> %s\n", what, vq_broken(&pv));
    CHECK(vq_pop(&pv, &g->mem, &e, out, in) == VQ_BROKEN, "packed, %s: stays broken", what);
    vq_flush(&pv);
    CHECK(vq_get_base(&pv) == base && pk_changed(g, 0, 0) == 0,
          "packed, %s: positions kept, nothing written", what);
}

static void test_pk_hostile(struct fake_guest *g)
{
    uint64_t end = GUEST_BASE + g->size;
    uint64_t t = pk_data(40);                       /* indirect tables */
    struct virtq_pdesc *tbl = (struct virtq_pdesc *)(g->base + (t - GUEST_BASE));

    /* Wrap counters that lie, hiding a descriptor: the ring stalls. */
    static const uint16_t hide[] = { 0, VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_USED, VIRTQ_DESC_F_USED };
    for (unsigned i = 0; i < 3; i++) {
        pk_setup(g, 16);
        pk_one(g, 0, 60, 0, 1);
        pring(g)[0].flags = hide[i];
        pk_snapshot(g);
        CHECK(vq_pop(&pv, &g->mem, &e, true, false) == VQ_EMPTY && !vq_broken(&pv) &&
              pk_base_is(0, true, 0, true) && !vq_enable_notify(&pv) &&
              pk_changed(g, PK_DEV, 4) == 0,
              "packed: flags 0x%04x in lap 1 hide the descriptor (nothing popped)", hide[i]);
    }
    pk_setup(g, 16);
    pk_start(4, false);
    pk_one(g, 0, 60, 0, 1);
    pring(g)[4].flags = VIRTQ_DESC_F_AVAIL;        /* lap 1's available */
    CHECK(vq_pop(&pv, &g->mem, &e, true, false) == VQ_EMPTY && !vq_broken(&pv),
          "packed: lap 1's flags in lap 0 hide the descriptor");
    /* ... or offering one the driver never filled: checked like any other. */
    pk_setup(g, 16);
    pring(g)[0].flags = VIRTQ_DESC_F_AVAIL;        /* addr 0, len 0, id 0 */
    CHECK(vq_pop(&pv, &g->mem, &e, true, false) == VQ_GOT && e.head == 0 && e.n_out == 0 &&
          e.out_len == 0 && !vq_broken(&pv), "packed: an empty descriptor offered: an empty chain");
    vq_push(&pv, e.head, 0);
    vq_flush(&pv);
    pring(g)[1] = (struct virtq_pdesc){ end + 0x1000, 100, 2, VIRTQ_DESC_F_AVAIL };
    expect_pk_broken(g, true, false, "unfilled descriptor offered, address outside memory");
    pk_setup(g, 16);
    pk_round(g, 3);                                 /* used descriptors at 0..2 */
    pk_start(pv.used_idx, pv.used_wrap);
    pring(g)[3].flags = VIRTQ_DESC_F_AVAIL;         /* not filled in this lap */
    pring(g)[3].addr = 0x1000;
    pring(g)[3].len = 64;
    expect_pk_broken(g, true, false, "descriptor never filled offered, address below memory");

    /* Chains longer than the ring, wrapping round to themselves. */
    pk_setup(g, 8);
    pk_start(5, true);
    struct pseg s9[9];
    for (unsigned i = 0; i < 9; i++)
        s9[i] = (struct pseg){ pk_data(i), 10, 0 };
    pk_chain(g, s9, 8, 1);
    pring(g)[4].flags |= VIRTQ_DESC_F_NEXT;         /* the 8th runs on into the 1st */
    expect_pk_broken(g, true, false, "chain of 8 with NEXT everywhere in a ring of 8");
    pk_setup(g, 8);
    pk_start(5, true);
    pk_chain(g, s9, 8, 1);
    CHECK(vq_pop(&pv, &g->mem, &e, true, false) == VQ_GOT && e.n_out == 8 && e.head == 1 &&
          pk_base_is(5, false, 5, true), "packed: a chain as long as the ring is accepted");
    vq_push(&pv, e.head, 0);
    vq_flush(&pv);
    CHECK(pk_used(g, 1, 0, 8) && pk_base_is(5, false, 5, false),
          "packed: its used descriptor at its head; both positions a lap on");

    /* Buffer IDs. */
    static const uint16_t big_id[] = { 16, 17, 0x7fff, 0xffff };
    for (unsigned i = 0; i < 4; i++) {
        pk_setup(g, 16);
        pk_one(g, 0, 60, 0, big_id[i]);
        expect_pk_broken(g, true, false, "buffer ID >= num (single descriptor)");
    }
    pk_setup(g, 16);
    struct pseg s2[2] = { { pk_data(0), 12, 0 }, { pk_data(1), 40, 0 } };
    pk_chain(g, s2, 2, 16);
    expect_pk_broken(g, true, false, "buffer ID >= num in the last descriptor");
    pk_setup(g, 16);
    pk_one(g, 0, 60, 0, 3);
    pk_one(g, 1, 60, 0, 3);
    static struct vq_burst b;
    b.n = b.niov = 0;
    unsigned got = vq_pop_burst(&pv, &g->mem, &b, 64, true, false);
    CHECK(got == 1 && b.c[0].head == 3 && vq_broken(&pv) && pk_base_is(1, true, 0, true),
          "packed: buffer ID reused in flight in one burst: the first popped, then broken (%s)",
          vq_broken(&pv) ? vq_broken(&pv) : "-");
    pk_setup(g, 16);
    pk_one(g, 0, 60, 0, 3);
    pk_chain(g, s2, 2, 3);
    CHECK(vq_pop(&pv, &g->mem, &e, true, false) == VQ_GOT, "packed: ID 3 popped");
    expect_pk_broken(g, true, false, "buffer ID reused in flight (second vq_pop)");
    pk_setup(g, 16);
    pk_one(g, 0, 60, 0, 3);
    CHECK(vq_pop(&pv, &g->mem, &e, true, false) == VQ_GOT, "packed: ID 3 popped");
    vq_push(&pv, 3, 0);
    vq_flush(&pv);
    pk_one(g, 1, 60, 0, 3);
    CHECK(vq_pop(&pv, &g->mem, &e, true, false) == VQ_GOT && e.head == 3 && !vq_broken(&pv),
          "packed: an ID may be reused once its used descriptor is written");

    /* Directions. */
    pk_setup(g, 16);
    pk_one(g, 0, 60, VIRTQ_DESC_F_WRITE, 0);
    expect_pk_broken(g, true, false, "writable descriptor on TX");
    pk_setup(g, 16);
    struct pseg wr[2] = { { pk_data(0), 12, VIRTQ_DESC_F_WRITE }, { pk_data(1), 40, 0 } };
    pk_chain(g, wr, 2, 0);
    expect_pk_broken(g, true, true, "readable after writable");

    /* Indirect tables. */
    pk_setup(g, 16);
    tbl[0] = (struct virtq_pdesc){ pk_data(0), 12, PK_JUNK_ID, 0 };
    tbl[1] = (struct virtq_pdesc){ pk_data(1), 1000, PK_JUNK_ID, VIRTQ_DESC_F_WRITE };
    pk_one(g, 40, 32, VIRTQ_DESC_F_INDIRECT, 9);
    CHECK(vq_pop(&pv, &g->mem, &e, true, true) == VQ_GOT && e.head == 9 && e.n_out == 1 &&
          e.n_in == 1 && e.in_len == 1000 && pk_base_is(1, true, 0, true),
          "packed: valid indirect table (ID from the ring's descriptor, one ring slot)");
    struct {
        const char *what;
        uint64_t addr;
        uint32_t len;
        uint16_t flags;
    } ind[] = {
        { "indirect with NEXT", t, 32, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT },
        { "indirect table misaligned", t + 8, 32, VIRTQ_DESC_F_INDIRECT },
        { "indirect table length 24", t, 24, VIRTQ_DESC_F_INDIRECT },
        { "indirect table length 0", t, 0, VIRTQ_DESC_F_INDIRECT },
        { "indirect table of 17 in a ring of 16", t, 17 * 16, VIRTQ_DESC_F_INDIRECT },
        { "indirect table past the end of memory", end - 16, 32, VIRTQ_DESC_F_INDIRECT },
        { "indirect table below memory", 0x1000, 32, VIRTQ_DESC_F_INDIRECT },
        { "indirect table wrapping 2^64", UINT64_MAX - 15, 32, VIRTQ_DESC_F_INDIRECT },
    };
    for (unsigned i = 0; i < sizeof(ind) / sizeof(ind[0]); i++) {
        pk_setup(g, 16);
        struct pseg s = { ind[i].addr, ind[i].len, ind[i].flags & ~VIRTQ_DESC_F_NEXT };
        pk_chain(g, &s, 1, 0);
        pring(g)[0].flags |= ind[i].flags & VIRTQ_DESC_F_NEXT;
        expect_pk_broken(g, true, true, ind[i].what);
    }
    pk_setup(g, 16);
    tbl[0] = (struct virtq_pdesc){ pk_data(0), 12, 0, 0 };
    tbl[1] = (struct virtq_pdesc){ t, 32, 0, VIRTQ_DESC_F_INDIRECT };
    pk_one(g, 40, 32, VIRTQ_DESC_F_INDIRECT, 0);
    expect_pk_broken(g, true, true, "nested indirect table");
    pk_setup(g, 16);
    struct pseg in2[2] = { { pk_data(0), 12, 0 }, { t, 32, VIRTQ_DESC_F_INDIRECT } };
    tbl[1] = (struct virtq_pdesc){ pk_data(1), 12, 0, 0 };
    pk_chain(g, in2, 2, 0);
    expect_pk_broken(g, true, true, "indirect inside a chain");
    pk_setup(g, 16);
    pv.indirect = false;
    pk_one(g, 40, 32, VIRTQ_DESC_F_INDIRECT, 0);
    expect_pk_broken(g, true, true, "indirect without INDIRECT_DESC negotiated");
    tbl[0] = tbl[1] = (struct virtq_pdesc){ 0, 0, 0, 0 };

    /* A table across two regions (adjacent in guest-physical space). */
    int fd = memfd_create("second", 0);
    CHECK(fd >= 0 && ftruncate(fd, 65536) == 0, "memfd");
    struct vhost_user_mem_region d2 = { end, 65536, GUEST_UVA + 0x10000000ull, 0 };
    struct mem_region r2;
    char err[128];
    bool added = mem_region_map(&r2, &d2, fd, err, sizeof(err)) == 0 &&
                 mem_add(&g->mem, &r2, err, sizeof(err)) == 0;
    close(fd);
    CHECK(added, "second region: %s", added ? "added" : err);
    if (added) {
        pk_setup(g, 16);
        struct virtq_pdesc *last = (struct virtq_pdesc *)(g->base + g->size - 16);
        *last = (struct virtq_pdesc){ pk_data(0), 12, 0, 0 };
        *(struct virtq_pdesc *)r2.host = (struct virtq_pdesc){ pk_data(1), 40, 0, 0 };
        pk_one(g, 0, 32, VIRTQ_DESC_F_INDIRECT, 0);
        pring(g)[0].addr = end - 16;
        expect_pk_broken(g, true, false, "indirect table across two regions");
        memset(last, 0, 16);
        /* A plain buffer across them is fine. */
        pk_setup(g, 16);
        pk_one(g, 0, 100, 0, 0);
        pring(g)[0].addr = end - 40;
        CHECK(vq_pop(&pv, &g->mem, &e, true, false) == VQ_GOT && e.n_out == 2 &&
              e.iov[1].iov_base == r2.host && e.iov[1].iov_len == 60,
              "packed: a buffer across the two regions is split in two");
        CHECK(mem_remove(&g->mem, &d2) == 0, "second region removed");
    }
    /* Event structures outside guest memory: vq_map refuses them
     * (test_pk_base_map); the ring then pops nothing. */
    pk_setup(g, 16);
    pv.avail_uva = GUEST_UVA + g->size + 0x1000;
    CHECK(!vq_map(&pv, &g->mem) && !vq_mapped(&pv),
          "packed: driver event structure outside memory: not mapped");
}

/* The guest rewrites a popped chain's descriptors (flags, ID, address,
 * length) before the device completes it: the device keeps what it read
 * once.  (test_cve's cve_2020_14375_double_fetch_packed counts the loads.) */
static void test_pk_rewrite(struct fake_guest *g)
{
    CHECK(pk_setup(g, 16), "packed: set up");
    struct pseg s2[2] = { { pk_data(0), 12, 0 }, { pk_data(1), 40, 0 } };
    pk_chain(g, s2, 2, 6);
    CHECK(vq_pop(&pv, &g->mem, &e, true, false) == VQ_GOT && e.head == 6 && e.out_len == 52,
          "packed: chain popped");
    void *b0 = e.iov[0].iov_base;
    for (unsigned i = 0; i < 2; i++)
        pring(g)[i] = (struct virtq_pdesc){ GUEST_BASE + g->size + 0x1000, 0xffffffffu, 0xffff,
                                            VIRTQ_DESC_F_USED | VIRTQ_DESC_F_NEXT };
    CHECK(e.iov[0].iov_base == b0 && e.iov[0].iov_len == 12 && e.iov[1].iov_len == 40,
          "packed: the popped chain's iovecs do not follow the rewrite");
    vq_push(&pv, e.head, 0);
    vq_flush(&pv);
    CHECK(pk_used(g, 6, 0, 2) && !vq_broken(&pv) && pk_base_is(2, true, 2, true),
          "packed: the used descriptor names the ID read at pop time; positions from it");
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
    test_pk_single(&g);
    test_pk_multi(&g);
    test_pk_wrap_chain(&g);
    test_pk_laps(&g);
    test_pk_unpop(&g);
    test_pk_rollback(&g);
    test_pk_in_order(&g);
    test_pk_notify(&g);
    test_pk_base_map(&g);
    test_pk_journal(&g);
    test_pk_hostile(&g);
    test_pk_rewrite(&g);
    vq_release(&pv);
    fake_guest_fini(&g);
    test_regions();
    test_region_limits();
    test_bad_regions();
    return check_done("test_vq");
}
