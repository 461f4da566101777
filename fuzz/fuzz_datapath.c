/*
 * fuzz_datapath.c - libFuzzer target: the datapath (src/daemon/vq.c,
 * net.c, switch.c) on a fuzzed guest.  Guest A's memory image and its TX
 * ring state (descriptors, indirect tables, avail/used indexes, virtio-net
 * headers, frames) and guest B's RX ring and buffers come from the input;
 * fwd_tx_pass serves A's TX ring into the switch, which delivers to B and
 * to C, a well-behaved guest with valid RX buffers; fwd_flush sends the
 * interrupts.  Devices are set up as tests/unit/test_net.c sets them up.
 *
 * Every guest memory region sits between 8 MiB of PROT_NONE on each side,
 * so any access outside guest memory faults and is reported as a crash.
 * A's TX ring and B's RX ring are split or packed (virtio 1.2, 2.8) as
 * the input says; C's is split.
 *
 * After each input: every chain taken from a ring was completed exactly
 * once or given back (last_avail == used_idx on every ring; on a packed
 * ring the wrap counters equal too and its log of popped chains empty), C
 * is never marked broken, and every header C received has num_buffers in
 * range and no checksum or GSO field beyond its frame.
 *
 * Input: a 12-byte configuration, then memory writes until the end.
 *   0  A's features, 1  B's features: bit 0 VERSION_1, 1 MRG_RXBUF,
 *      2 INDIRECT_DESC, 3 EVENT_IDX, 4 CSUM, 5 GUEST_CSUM,
 *      6 HOST_TSO4+6, 7 GUEST_TSO4+6
 *   2  ring sizes: 1 << (n % 9) with n = low nibble (A TX), high (B RX)
 *   3  bits 0-1 A's memory layout, 2-3 B's: 0 one region; 1 two regions
 *      adjacent in guest-physical space; 2 two with a 4 KiB hole between;
 *      3 two, the second just below the first.  Bit 4: re-arm kicks when
 *      empty.  Bits 5-7: passes - 1
 *   4  u16 A's starting ring index, 6 u16 B's (as SET_VRING_BASE sets;
 *      packed: bits 0-14 the position, modulo the size, 15 its wrap counter)
 *   8  budget per pass (0: 256); 9 bit 0: A's TX ring is queue pair 1
 *   10 bit 0: A's ring packed, bit 1: B's ring packed (the device then has
 *      VIRTIO_F_RING_PACKED)
 *   11 packed rings' size when not 0 (any size), else the power of two
 * A write: u8 sel (bit 0: guest B, bit 1: region 1), u16 offset (modulo
 * the region size), u8 len, len bytes.  Regions are 32 KiB: region 0 at
 * guest-physical 0x10000; each guest's ring is at offset 0 of region 0:
 * descriptors at 0x0, avail at 0x1000, used at 0x2000 (packed: the
 * descriptor ring at 0x0, the driver's event structure at 0x1000, the
 * device's at 0x2000).  The writes are the ring contents: descriptors
 * with their flags, wrap bits, buffer IDs and chains, indirect tables,
 * event structures, headers and frames.
 */
#include "fuzz_common.h"

#include <assert.h>
#include <sys/mman.h>

#include "device.h"
#include "fwd.h"
#include "net.h"
#include "port.h"
#include "switch.h"

#define REG_SIZE (32u << 10)
#define GUARD (8u << 20)
#define GPA0 0x10000ull
#define UVA0 0x700000000000ull
#define UVA1 0x700010000000ull
#define DESC_OFF 0x0
#define AVAIL_OFF 0x1000
#define USED_OFF 0x2000

#define C_RING 64u
#define C_BUFS 24u       /* 48 KiB from GPA0 + 0x3000, across into region 1 */
#define C_BUF 2048u

struct gdev {
    struct port port;
    uint8_t *host[2];
};

static struct gdev A, B, C;
static struct fwd_ctx ctx;
static struct lswitch sw;

static uint8_t *guarded_region(void)
{
    uint8_t *p = mmap(NULL, 2 * (size_t)GUARD + REG_SIZE, PROT_NONE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED || mprotect(p + GUARD, REG_SIZE, PROT_READ | PROT_WRITE) < 0)
        abort();
    return p + GUARD;
}

static void gdev_init(struct gdev *g, unsigned index, const char *name)
{
    struct port *p = &g->port;
    p->index = index;
    p->type = PORT_VHOST;
    snprintf(p->name, sizeof(p->name), "%s", name);
    p->conn.fd = p->listen_fd = p->tap_fd = -1;
    p->queues = 2;
    dev_init(&p->dev, p, 2);
    g->host[0] = guarded_region();
    g->host[1] = guarded_region();
    p->sw = &sw;
    ports.p[index] = p;
}

/* Guest-physical layout of the two regions; the host memory is not
 * contiguous whatever the layout. */
static void gdev_layout(struct gdev *g, unsigned layout)
{
    struct guest_mem *m = &g->port.dev.mem;
    memset(m->r, 0, sizeof(m->r));
    m->r[0] = (struct mem_region){ .gpa = GPA0, .size = REG_SIZE, .uva = UVA0,
                                   .host = g->host[0], .page = 4096 };
    m->n = 1;
    if (layout == 0)
        return;
    uint64_t gpa1 = layout == 1 ? GPA0 + REG_SIZE : layout == 2 ? GPA0 + REG_SIZE + 4096
                                                                : GPA0 - REG_SIZE;
    m->r[1] = (struct mem_region){ .gpa = gpa1, .size = REG_SIZE, .uva = UVA1,
                                   .host = g->host[1], .page = 4096 };
    m->n = 2;
}

static uint64_t features(uint8_t b)
{
    static const uint64_t bit[8] = {
        1ull << VIRTIO_F_VERSION_1,
        1ull << VIRTIO_NET_F_MRG_RXBUF,
        1ull << VIRTIO_RING_F_INDIRECT_DESC,
        1ull << VIRTIO_RING_F_EVENT_IDX,
        1ull << VIRTIO_NET_F_CSUM,
        1ull << VIRTIO_NET_F_GUEST_CSUM,
        1ull << VIRTIO_NET_F_HOST_TSO4 | 1ull << VIRTIO_NET_F_HOST_TSO6,
        1ull << VIRTIO_NET_F_GUEST_TSO4 | 1ull << VIRTIO_NET_F_GUEST_TSO6,
    };
    uint64_t f = 0;
    for (int i = 0; i < 8; i++)
        if (b & (1u << i))
            f |= bit[i];
    return f;
}

/* A fresh device state with one ring (queue qi) at the start of region 0;
 * packed if feat has VIRTIO_F_RING_PACKED. */
static struct vqueue *gdev_reset(struct gdev *g, uint64_t feat, unsigned qi, uint32_t num,
                                 uint16_t start)
{
    struct vdev *d = &g->port.dev;
    for (unsigned i = 0; i < LWV_MAX_VQS; i++) {
        struct vqueue *q = &d->q[i];
        struct vq_pk *pk = q->vq.pk;     /* packed rings' log, kept as dev_reset keeps it */
        memset(&q->vq, 0, sizeof(q->vq));
        q->vq.pk = pk;
        q->kick_set = false;
        q->enable = -1;
        q->signal_pending = false;
        memset(&q->st, 0, sizeof(q->st));
    }
    d->connected = true;
    dev_set_features(d, feat);
    d->features_set = true;
    d->broken = false;
    d->status = 0;
    struct vqueue *q = &d->q[qi];
    q->vq.num = num;
    q->vq.desc_uva = UVA0 + DESC_OFF;
    q->vq.avail_uva = UVA0 + AVAIL_OFF;
    q->vq.used_uva = UVA0 + USED_OFF;
    q->vq.addr_set = true;
    q->vq.event_idx = dev_has_feature(d, VIRTIO_RING_F_EVENT_IDX);
    q->vq.indirect = dev_has_feature(d, VIRTIO_RING_F_INDIRECT_DESC);
    if (q->vq.packed) {
        uint16_t pos = (uint16_t)((start & 0x7fff) % num);
        vq_set_base(&q->vq, virtq_packed_state(pos, start >> 15, pos, start >> 15));
    } else {
        vq_set_base(&q->vq, start);
    }
    q->kick_set = true;
    q->enable = 1;
    if (!vq_map(&q->vq, &d->mem))
        abort();
    return q;
}

/* C: mergeable RX buffers that do not overlap, all posted; C takes
 * checksum and TSO offloads, so headers reach it as the sender wrote them
 * (after validation). */
static void c_reset(void)
{
    memset(C.host[0], 0, REG_SIZE);
    gdev_layout(&C, 1);
    struct vqueue *q = gdev_reset(&C, features(0xaf), 0, C_RING, 0);
    for (uint16_t i = 0; i < C_BUFS; i++) {
        q->vq.desc[i] = (struct virtq_desc){ GPA0 + 0x3000 + (uint64_t)i * C_BUF, C_BUF,
                                             VIRTQ_DESC_F_WRITE, 0 };
        q->vq.avail->ring[i] = i;
    }
    q->vq.avail->idx = C_BUFS;
}

static void c_read(uint64_t gpa, void *dst, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        uint64_t a = gpa + i - GPA0;
        ((uint8_t *)dst)[i] = a < REG_SIZE ? C.host[0][a] : C.host[1][a - REG_SIZE];
    }
}

/* Every frame C received has a header with num_buffers in range and no
 * offload field beyond the frame (the CVE-2024-11614 property). */
static void c_check_headers(void)
{
    struct vq *vq = &C.port.dev.q[0].vq;
    uint16_t n = vq->used_idx;
    for (uint16_t i = 0; i < n;) {
        struct virtq_used_elem u = vq->used->ring[i % C_RING];
        assert(u.id < C_BUFS && u.len >= VIRTIO_NET_HDR_LEN && u.len <= C_BUF);
        struct virtio_net_hdr h;
        c_read(vq->desc[u.id].addr, &h, sizeof(h));
        assert(h.num_buffers >= 1 && h.num_buffers <= n - i);
        size_t len = 0;
        for (uint16_t b = 0; b < h.num_buffers; b++)
            len += vq->used->ring[(i + b) % C_RING].len;
        len -= VIRTIO_NET_HDR_LEN;
        if (h.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM)
            assert((size_t)h.csum_start + h.csum_offset + 2 <= len);
        if (h.gso_type != VIRTIO_NET_HDR_GSO_NONE)
            assert((h.gso_type == 1 || h.gso_type == 4) && h.gso_size > 0 && h.hdr_len <= len);
        i = (uint16_t)(i + h.num_buffers);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_log_init();
    gdev_init(&A, 0, "A");
    gdev_init(&B, 1, "B");
    gdev_init(&C, 2, "C");
    ports.n = 3;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cursor c = { data, size };
    uint8_t cfg[12];
    cur_bytes(&c, cfg, sizeof(cfg));
    for (int i = 0; i < 2; i++) {
        memset(A.host[i], 0, REG_SIZE);
        memset(B.host[i], 0, REG_SIZE);
    }
    gdev_layout(&A, cfg[3] & 3);
    gdev_layout(&B, (cfg[3] >> 2) & 3);
    bool rearm = cfg[3] & 0x10;
    unsigned passes = (cfg[3] >> 5) + 1u;
    unsigned budget = cfg[8] ? cfg[8] : 256;
    uint16_t a_start = (uint16_t)(cfg[4] | cfg[5] << 8), b_start = (uint16_t)(cfg[6] | cfg[7] << 8);
    unsigned a_qi = cfg[9] & 1 ? 3 : 1;
    bool a_pk = cfg[10] & 1, b_pk = cfg[10] & 2;
    uint32_t a_num = a_pk && cfg[11] ? cfg[11] : 1u << ((cfg[2] & 15) % 9);
    uint32_t b_num = b_pk && cfg[11] ? cfg[11] : 1u << ((cfg[2] >> 4) % 9);
    uint64_t packed = 1ull << VIRTIO_F_RING_PACKED;
    struct vqueue *tx = gdev_reset(&A, features(cfg[0]) | (a_pk ? packed : 0), a_qi, a_num, a_start);
    struct vqueue *rx = gdev_reset(&B, features(cfg[1]) | (b_pk ? packed : 0), 0, b_num, b_start);
    c_reset();

    while (cur_left(&c)) {
        uint8_t sel = cur_u8(&c);
        uint32_t off = cur_u16(&c) % REG_SIZE;
        uint8_t len = cur_u8(&c);
        uint8_t buf[256];
        cur_bytes(&c, buf, len);
        uint8_t *dst = (sel & 1 ? B.host : A.host)[(sel >> 1) & 1];
        memcpy(dst + off, buf, len < REG_SIZE - off ? len : REG_SIZE - off);
    }
    /* The used rings are the device's: they start where the device is. */
    if (!a_pk)
        tx->vq.used->idx = a_start;
    if (!b_pk)
        rx->vq.used->idx = b_start;

    switch_init(&sw, &ports);
    ports_init(&sw);
    for (unsigned i = 0; i < passes; i++) {
        bool more = false;
        pthread_rwlock_rdlock(&A.port.dev.lock);
        unsigned n = 0;
        if (dev_queue_ready(&A.port.dev, tx))
            n = fwd_tx_pass(&ctx, tx, budget, rearm, &more);
        pthread_rwlock_unlock(&A.port.dev.lock);
        fwd_flush(&ctx);
        if (!n && !more)
            break;
    }

    if (log_get_level() >= LOG_DEBUG) {
        const struct q_stats *a = &tx->st, *b = &rx->st, *cc = &C.port.dev.q[0].st;
        fprintf(stderr, "A tx: %llu frames, %llu invalid%s%s | B rx: %llu frames, %llu full, "
                "%llu invalid%s%s | C rx: %llu frames\n",
                (unsigned long long)a->packets, (unsigned long long)a->drops_invalid,
                tx->vq.broken_reason ? ", broken: " : "",
                tx->vq.broken_reason ? tx->vq.broken_reason : "",
                (unsigned long long)b->packets, (unsigned long long)b->drops_full,
                (unsigned long long)b->drops_invalid, rx->vq.broken_reason ? ", broken: " : "",
                rx->vq.broken_reason ? rx->vq.broken_reason : "", (unsigned long long)cc->packets);
    }
    /* No chain lost or completed twice, on any ring. */
    assert(tx->vq.last_avail == tx->vq.used_idx);
    assert(rx->vq.last_avail == rx->vq.used_idx);
    struct vq *pk_rings[2] = { a_pk ? &tx->vq : NULL, b_pk ? &rx->vq : NULL };
    for (int i = 0; i < 2; i++)
        if (pk_rings[i]) {
            assert(pk_rings[i]->avail_wrap == pk_rings[i]->used_wrap);
            assert(pk_rings[i]->pk->head == pk_rings[i]->pk->tail);
        }
    assert(C.port.dev.q[0].vq.last_avail == C.port.dev.q[0].vq.used_idx);
    /* C's buffers are valid: nothing A or B does may break it. */
    assert(!C.port.dev.broken);
    c_check_headers();
    return 0;
}
