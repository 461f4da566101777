/*
 * test_cve.c - the known vhost bugs of issue 5, one test per table row that
 * the other tests do not already cover, run in-process against the
 * daemon's own code: guests whose memory regions are fenced by PROT_NONE
 * (any access outside guest memory faults), a control-plane port driven
 * through vu_conn_attach/readable/detach over a real socket pair, and real
 * worker threads for the starvation case.  Each test feeds the bad input
 * and then checks that the process is intact (no fault, no fd or mapping
 * left behind), that the device wrote nowhere but into the used rings and
 * the device-writable buffers of the guest, and that two well-behaved
 * ports p and q still forward (others_forward).
 *
 * Table rows (issue 5) and the tests that cover them:
 *  descriptor range not fully mapped or spanning two regions
 *    (CVE-2018-1059, CVE-2013-0311): test_vq "buffer running past the end
 *    of memory", "buffer below guest memory", "address wrapping 2^64",
 *    "buffer split across adjacent regions", "buffer running into a hole";
 *    test_vuf_ring_hostile "TX desc address outside memory", "TX desc
 *    straddling the end of memory", "RX buffers outside memory", "RX
 *    buffers straddling the end of memory"
 *  more fds than the message takes; repeated SET_VRING_NUM (CVE-2019-14818):
 *    test_vuf_ctrl_hostile "SET_MEM_TABLE (1 region) with 9 fds", "... with
 *    2 fds", "SET_VRING_KICK with 2 fds", "SET_VRING_CALL with 20 fds";
 *    here: cve_2019_14818_repeated_vring_num
 *  SET_LOG_BASE size+offset overflow; dirty-log write past the log
 *    (CVE-2020-10722): here: cve_2020_10722_log_base
 *  vring index truncated or beyond the queues (CVE-2020-10723):
 *    test_vuf_ctrl_hostile "SET_VRING_NUM ring index 255", "SET_VRING_BASE
 *    ring index 0x10000", "SET_VRING_ENABLE ring index 2 on a 1-pair port",
 *    "SET_VRING_ADDR ring index 1000", "SET_VRING_KICK ring index 254",
 *    "SET_VRING_CALL ring index 3 on a 1-pair port", "GET_VRING_BASE ring
 *    index 77"; here, for indexes that a narrower type would truncate onto
 *    a real ring: cve_2020_10723_truncated_index
 *  descriptor with zero length and bad address (CVE-2020-10725,
 *    CVE-2016-6490, CVE-2019-14835): test_vq "zero-length descriptor with
 *    a bad address is ignored" (one TX pop); here, TX, RX and indirect
 *    through the datapath: cve_2020_10725_zero_len_bad_addr
 *  descriptor rewritten by the guest after it was checked (CVE-2020-14375):
 *    here: cve_2020_14375_double_fetch
 *  fds attached to messages that take none, never closed (CVE-2022-0669):
 *    test_vuf_ctrl_hostile "40 fd-less messages carrying 3 fds each" and
 *    "daemon fd count back near baseline"
 *  virtio-net header split over several descriptors, or a chain no longer
 *    than the header (CVE-2022-2132): test_net "header-only chain dropped";
 *    here: cve_2022_2132_split_header
 *  csum_start/csum_offset or gso fields beyond the packet (CVE-2024-11614):
 *    test_net test_csum; here, through the datapath:
 *    cve_2024_11614_offload_fields
 *  indirect table straddling regions, nested, oversized, misaligned (QEMU
 *    libvhost-user issue 2149, vringh): test_vq "nested indirect",
 *    "misaligned indirect table", "indirect length not a multiple of 16",
 *    "indirect table past the end of memory"; test_vuf_ring_hostile "TX
 *    indirect table of 300 descriptors", "TX nested indirect table", "TX
 *    indirect table length 40", "TX indirect table address outside
 *    memory", "TX indirect table at an address not 16-aligned"; here,
 *    across two regions: indirect_straddling_regions
 *  chain loops; next >= ring size; avail index jumping more than the ring
 *    size: test_vq "chain loop", "next beyond the ring", "avail idx jump >
 *    ring size", "head beyond the ring", "indirect loop";
 *    test_vuf_ring_hostile "TX chain loop 200->201->200", "TX chain
 *    self-loop", "TX desc next=300", "TX chain through all 256
 *    descriptors", "TX avail->idx jumping by 300", "TX avail ring head 1000"
 *  a guest keeping its ring full forever (CVE-2019-3900): here:
 *    cve_2019_3900_ring_full_forever
 *  a hostile chain inside a burst of good ones (the burst datapath): here:
 *    mixed_bursts
 *  memory regions overlapping, zero-sized, wrapping, or more than the
 *    slots (DPDK ADD_MEM_REG checks): test_vuf_ctrl_hostile "mem regions
 *    overlapping in GPA", "... in user address", "mem region GPA wrapping
 *    past 2^64", "zero-sized mem region", "SET_MEM_TABLE nregions=9",
 *    (all SET_MEM_TABLE); here, ADD_MEM_REG: add_mem_reg_checks
 *  packed rings (VIRTIO_F_RING_PACKED, virtio 1.2 2.8): wrap counters that
 *    lie (flags hiding a descriptor, or offering one never filled), buffer
 *    ID >= ring size or reused while in flight, chains past the ring end
 *    (legal) or longer than the ring, indirect tables (straddling regions,
 *    nested, with NEXT, in a chain, misaligned, bad length, oversized,
 *    outside memory, not negotiated), event structures outside memory or
 *    misaligned, flags and descriptors rewritten after they were read:
 *    test_vq test_pk_hostile (every case listed there), test_pk_base_map
 *    ("vq_map refuses ..."), test_pk_rewrite; here, through the datapath:
 *    cve_2020_14375_double_fetch_packed, packed_wrap_counter_lie,
 *    packed_id_beyond_ring (TX and RX), packed_id_reused_in_flight,
 *    packed_chain_wraps, packed_indirect, packed_event_outside_memory
 *  message shorter or longer than its type, truncated control data, EOF
 *    mid-message: test_vuf_ctrl_hostile "SET_FEATURES with 4-byte payload",
 *    "SET_VRING_ADDR with 24-byte payload", "SET_MEM_TABLE truncated by 8
 *    bytes", "SET_FEATURES with 70000-byte payload", "header claiming a
 *    0xffffffff-byte payload", "SET_VRING_CALL with 20 fds" (more than the
 *    control buffer holds), "EOF after 6 header bytes", "EOF after header +
 *    10 of 40 payload bytes (with an fd)", "EOF after half a SET_VRING_ADDR"
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "check.h"
#include "procfd.h"
#include "device.h"
#include "fwd.h"
#include "log.h"
#include "net.h"
#include "port.h"
#include "switch.h"
#include "trace.h"
#include "vhost_user.h"
#include "vu_ctrl.h"
#include "worker.h"


/* ---- fenced guests ------------------------------------------------------ */

#define REG 0x40000u              /* two regions of 256 KiB per guest */
#define FENCE (4u << 20)          /* PROT_NONE on each side of a region */
#define GPA0 0x100000ull          /* region 0; region 1 follows it at GPA0 + REG */
#define UVA0 0x7e0000000000ull
#define UVA1 0x7e1000000000ull
#define RING 256u
#define TXQ 1
#define RXQ 0
/* Ring layout in region 0: each table on its own pages. */
#define TX_DESC 0x0000u
#define TX_AVAIL 0x1000u
#define TX_USED 0x2000u
#define RX_DESC 0x4000u
#define RX_AVAIL 0x5000u
#define RX_USED 0x6000u
#define DATA 0x8000u
#define MAX_ALLOW 600

struct range {
    uint64_t gpa, len;
};

struct seg {
    uint64_t gpa;
    uint32_t len;
    uint16_t flags;
};

struct guest {
    struct port port;
    uint8_t *host[2];
    uint8_t *snap[2];
    uint64_t next;                 /* bump allocator (GPA) */
    uint16_t tx_desc, rx_desc;     /* next free descriptor */
    uint16_t rx_seen;              /* used entries of RX read so far */
    unsigned nallow;
    struct range allow[MAX_ALLOW]; /* where the device may write */
    /* Packed rings: the driver's side of each (next position to fill and
     * next used position, with their wrap counters; next buffer ID), and
     * the receive buffers by ID. */
    struct pkdrv {
        uint16_t pos, upos, id;
        bool wrap, uwrap;
    } ptx, prx;
    uint8_t prx_n[RING];
    struct seg prx_seg[RING][2];
};

static struct guest gtx, grx, gp, gq;  /* hostile sender, hostile receiver, p, q */
static struct fwd_ctx ctx;
static struct lswitch sw;

static const uint8_t MAC_TX[6] = { 2, 0, 0, 0, 0, 1 };
static const uint8_t MAC_RX[6] = { 2, 0, 0, 0, 0, 2 };
static const uint8_t MAC_P[6] = { 2, 0, 0, 0, 0, 3 };
static const uint8_t MAC_Q[6] = { 2, 0, 0, 0, 0, 4 };
static const uint8_t MAC_CP[6] = { 2, 0, 0, 0, 0, 5 };
static const uint8_t MAC_BC[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

static uint8_t *fenced(void)
{
    uint8_t *p = mmap(NULL, 2 * (size_t)FENCE + REG, PROT_NONE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED || mprotect(p + FENCE, REG, PROT_READ | PROT_WRITE) < 0) {
        perror("fenced region");
        exit(1);
    }
    return p + FENCE;
}

static uint8_t *gptr(struct guest *g, uint64_t gpa)
{
    if (gpa >= GPA0 && gpa < GPA0 + REG)
        return g->host[0] + (gpa - GPA0);
    if (gpa >= GPA0 + REG && gpa < GPA0 + 2 * REG)
        return g->host[1] + (gpa - GPA0 - REG);
    fprintf(stderr, "test bug: gpa 0x%llx outside the guest\n", (unsigned long long)gpa);
    exit(1);
}

/* Writes bytes at gpa, across the region boundary if need be. */
static void put(struct guest *g, uint64_t gpa, const void *src, size_t len)
{
    for (size_t i = 0; i < len; i++)
        *gptr(g, gpa + i) = ((const uint8_t *)src)[i];
}

static uint64_t galloc(struct guest *g, uint64_t len, uint64_t align)
{
    g->next = (g->next + align - 1) & ~(align - 1);
    uint64_t a = g->next;
    g->next += len;
    if (g->next > GPA0 + 2 * REG) {
        fprintf(stderr, "test bug: guest memory exhausted\n");
        exit(1);
    }
    return a;
}

static struct vq *txvq(struct guest *g) { return &g->port.dev.q[TXQ].vq; }
static struct vq *rxvq(struct guest *g) { return &g->port.dev.q[RXQ].vq; }

static void allow(struct guest *g, uint64_t gpa, uint64_t len)
{
    if (g->nallow < MAX_ALLOW)
        g->allow[g->nallow++] = (struct range){ gpa, len };
}

/* A ring of num entries; packed if the device has RING_PACKED (avail and
 * used are then the driver's and the device's event structures, both
 * sides at position 0 with wrap counters 1).  False if it does not map. */
static bool ring_try(struct guest *g, unsigned qi, uint32_t num, uint64_t desc_uva,
                     uint64_t avail_uva, uint64_t used_uva)
{
    struct vqueue *q = &g->port.dev.q[qi];
    struct vq_pk *pk = q->vq.pk;     /* the packed log, kept as dev_reset keeps it */
    memset(&q->vq, 0, sizeof(q->vq));
    q->vq.pk = pk;
    q->vq.num = num;
    q->vq.desc_uva = desc_uva;
    q->vq.avail_uva = avail_uva;
    q->vq.used_uva = used_uva;
    q->vq.addr_set = true;
    q->vq.indirect = dev_has_feature(&g->port.dev, VIRTIO_RING_F_INDIRECT_DESC);
    q->vq.event_idx = dev_has_feature(&g->port.dev, VIRTIO_RING_F_EVENT_IDX);
    q->vq.in_order = dev_has_feature(&g->port.dev, VIRTIO_F_IN_ORDER);
    q->vq.packed = dev_has_feature(&g->port.dev, VIRTIO_F_RING_PACKED);
    if (q->vq.packed)
        vq_set_base(&q->vq, virtq_packed_state(0, 1, 0, 1));
    q->kick_set = true;
    q->enable = 1;
    q->signal_pending = false;
    memset(&q->st, 0, sizeof(q->st));
    return vq_map(&q->vq, &g->port.dev.mem);
}

static void ring_setup_n(struct guest *g, unsigned qi, uint32_t num, uint32_t desc,
                         uint32_t avail, uint32_t used)
{
    if (!ring_try(g, qi, num, UVA0 + desc, UVA0 + avail, UVA0 + used)) {
        fprintf(stderr, "test bug: ring %u does not map\n", qi);
        exit(1);
    }
}

static void ring_setup(struct guest *g, unsigned qi, uint32_t desc, uint32_t avail, uint32_t used)
{
    ring_setup_n(g, qi, RING, desc, avail, used);
}

static uint64_t feats(bool mrg)
{
    return 1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_RING_F_INDIRECT_DESC |
           (mrg ? 1ull << VIRTIO_NET_F_MRG_RXBUF : 0);
}

/* Everything back to a fresh, ready device with empty rings. */
static void guest_reset(struct guest *g, uint64_t features)
{
    struct vdev *d = &g->port.dev;
    memset(g->host[0], 0, REG);
    memset(g->host[1], 0, REG);
    dev_set_features(d, features);
    d->features_set = true;
    d->connected = true;
    d->broken = false;
    d->status = 0;
    ring_setup(g, TXQ, TX_DESC, TX_AVAIL, TX_USED);
    ring_setup(g, RXQ, RX_DESC, RX_AVAIL, RX_USED);
    g->next = GPA0 + DATA;
    g->tx_desc = g->rx_desc = g->rx_seen = 0;
    g->nallow = 0;
    if (dev_has_feature(d, VIRTIO_F_RING_PACKED)) {
        /* Used descriptors go into the descriptor rings; the device's
         * event structures are the device's. */
        g->ptx = g->prx = (struct pkdrv){ 0, 0, 0, true, true };
        memset(g->prx_n, 0, sizeof(g->prx_n));
        allow(g, GPA0 + TX_DESC, virtq_pdesc_size(RING));
        allow(g, GPA0 + RX_DESC, virtq_pdesc_size(RING));
        allow(g, GPA0 + TX_USED, sizeof(struct virtq_pevent));
        allow(g, GPA0 + RX_USED, sizeof(struct virtq_pevent));
        return;
    }
    allow(g, GPA0 + TX_USED, virtq_used_size(RING) + 2);
    allow(g, GPA0 + RX_USED, virtq_used_size(RING) + 2);
}

static void guest_init(struct guest *g, unsigned index, const char *name, const uint8_t mac[6])
{
    struct port *p = &g->port;
    memset(g, 0, sizeof(*g));
    p->index = index;
    p->type = PORT_VHOST;
    snprintf(p->name, sizeof(p->name), "%s", name);
    p->conn.fd = p->listen_fd = p->tap_fd = -1;
    p->queues = 1;
    memcpy(p->mac, mac, 6);
    p->mac_set = true;
    dev_init(&p->dev, p, 1);
    g->host[0] = fenced();
    g->host[1] = fenced();
    g->snap[0] = malloc(REG);
    g->snap[1] = malloc(REG);
    struct guest_mem *m = &p->dev.mem;
    m->r[0] = (struct mem_region){ .gpa = GPA0, .size = REG, .uva = UVA0, .host = g->host[0],
                                   .page = 4096 };
    m->r[1] = (struct mem_region){ .gpa = GPA0 + REG, .size = REG, .uva = UVA1,
                                   .host = g->host[1], .page = 4096 };
    m->n = 2;
    p->sw = &sw;
    ports.p[index] = p;
    if (ports.n <= index)
        ports.n = index + 1;
    guest_reset(g, feats(true));
}

/* ---- building chains ---------------------------------------------------- */

static void post(struct vq *vq, uint16_t head)
{
    vq->avail->ring[vq->avail->idx % RING] = head;
    __atomic_store_n(&vq->avail->idx, (uint16_t)(vq->avail->idx + 1), __ATOMIC_RELEASE);
}

/* Writes a chain of n descriptors into a ring (consecutive free slots) and
 * returns its head; the caller posts it. */
static uint16_t chain(struct vq *vq, uint16_t *next, const struct seg *s, unsigned n)
{
    uint16_t head = *next;
    for (unsigned i = 0; i < n; i++) {
        uint16_t at = (uint16_t)((*next)++ % RING);
        uint16_t link = (uint16_t)(*next % RING);
        vq->desc[at] = (struct virtq_desc){ s[i].gpa, s[i].len,
                                            (uint16_t)(s[i].flags |
                                                       (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0)),
                                            i + 1 < n ? link : 0 };
    }
    return (uint16_t)(head % RING);
}

static void tx_chain(struct guest *g, const struct seg *s, unsigned n)
{
    post(txvq(g), chain(txvq(g), &g->tx_desc, s, n));
}

/* A receive chain; its writable buffers are where the device may write. */
static void rx_chain(struct guest *g, const struct seg *s, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        if (s[i].flags & VIRTQ_DESC_F_WRITE)
            allow(g, s[i].gpa, s[i].len);
    post(rxvq(g), chain(rxvq(g), &g->rx_desc, s, n));
}

static void rx_buffers(struct guest *g, unsigned n, uint32_t len)
{
    for (unsigned i = 0; i < n; i++) {
        struct seg s = { galloc(g, len, 64), len, VIRTQ_DESC_F_WRITE };
        rx_chain(g, &s, 1);
    }
}

static void make_frame(uint8_t *f, size_t len, const uint8_t dst[6], const uint8_t src[6],
                       uint8_t seed)
{
    memcpy(f, dst, 6);
    memcpy(f + 6, src, 6);
    f[12] = 0x08;
    f[13] = 0x00;
    for (size_t i = 14; i < len; i++)
        f[i] = (uint8_t)(seed + i * 13);
}

/* Header + frame in guest memory, returns the GPA of the header. */
static uint64_t store(struct guest *g, const void *hdr, size_t hlen, const uint8_t *f, size_t len)
{
    uint64_t a = galloc(g, hlen + len, 64);
    put(g, a, hdr, hlen);
    put(g, a + hlen, f, len);
    return a;
}

/* Serves g's TX ring once, as a worker does, and sends the interrupts. */
static unsigned tx_pass(struct guest *g)
{
    struct vdev *d = &g->port.dev;
    unsigned n = 0;
    bool more;
    pthread_rwlock_rdlock(&d->lock);
    if (dev_queue_ready(d, &d->q[TXQ]))
        n = fwd_tx_pass(&ctx, &d->q[TXQ], 256, true, &more);
    pthread_rwlock_unlock(&d->lock);
    fwd_flush(&ctx);
    return n;
}

/* Reads the next frame delivered into g's RX ring (direct chains); returns
 * its length without the header, or -1 if none. */
static int rx_take(struct guest *g, uint8_t *out, size_t cap, struct virtio_net_hdr *hdr)
{
    struct vq *vq = rxvq(g);
    uint16_t used = __atomic_load_n(&vq->used->idx, __ATOMIC_ACQUIRE);
    if (used == g->rx_seen)
        return -1;
    size_t hlen = dev_hdr_len(&g->port.dev), total = 0;
    unsigned nbufs = 1;
    uint8_t h[VIRTIO_NET_HDR_LEN] = { 0 };
    for (unsigned b = 0; b < nbufs; b++) {
        if (used == g->rx_seen)
            return -1;
        struct virtq_used_elem u = vq->used->ring[g->rx_seen++ % RING];
        size_t left = u.len, off = 0;
        for (uint16_t i = (uint16_t)u.id;;) {
            struct virtq_desc d = vq->desc[i % RING];
            size_t n = d.len < left ? d.len : left;
            for (size_t k = 0; k < n; k++, off++) {
                uint8_t byte = *gptr(g, d.addr + k);
                if (b == 0 && off < hlen)
                    h[off] = byte;
                else if (total < cap)
                    out[total++] = byte;
            }
            left -= n;
            if (!left || !(d.flags & VIRTQ_DESC_F_NEXT))
                break;
            i = d.next;
        }
        if (b == 0) {
            memcpy(hdr, h, sizeof(*hdr));
            if (dev_has_feature(&g->port.dev, VIRTIO_NET_F_MRG_RXBUF))
                nbufs = hdr->num_buffers;
        }
    }
    return (int)total;
}

/* ---- checks shared by the tests ------------------------------------------ */

static void snap(struct guest *g)
{
    memcpy(g->snap[0], g->host[0], REG);
    memcpy(g->snap[1], g->host[1], REG);
}

/* The device wrote only where it may: used rings and writable buffers. */
static void check_confined(struct guest *g, const char *what)
{
    uint64_t bad = 0;
    unsigned nbad = 0;
    for (unsigned r = 0; r < 2; r++)
        for (uint64_t off = 0; off < REG; off++) {
            if (g->host[r][off] == g->snap[r][off])
                continue;
            uint64_t gpa = GPA0 + r * REG + off;
            bool ok = false;
            for (unsigned i = 0; i < g->nallow && !ok; i++)
                ok = gpa >= g->allow[i].gpa && gpa - g->allow[i].gpa < g->allow[i].len;
            if (!ok && !nbad++)
                bad = gpa;
        }
    CHECK(nbad == 0, "%s: %s: device wrote only into used rings and writable buffers "
          "(%u bytes elsewhere, first at gpa 0x%llx)", what, g->port.name, nbad,
          (unsigned long long)bad);
}

static unsigned frames_seq;

/* p sends a frame to q; it must arrive intact, and neither is broken. */
static void others_forward(const char *what)
{
    guest_reset(&gp, feats(true));
    guest_reset(&gq, feats(true));
    switch_learn(&sw, MAC_Q, gq.port.index);
    rx_buffers(&gq, 4, 2048);
    uint8_t f[200], got[2048];
    make_frame(f, sizeof(f), MAC_Q, MAC_P, (uint8_t)++frames_seq);
    uint8_t hdr[VIRTIO_NET_HDR_LEN] = { 0 };
    struct seg s = { store(&gp, hdr, sizeof(hdr), f, sizeof(f)), sizeof(hdr) + sizeof(f), 0 };
    tx_chain(&gp, &s, 1);
    unsigned n = tx_pass(&gp);
    struct virtio_net_hdr h;
    int len = rx_take(&gq, got, sizeof(got), &h);
    CHECK(n == 1 && len == (int)sizeof(f) && memcmp(got, f, sizeof(f)) == 0 &&
          !gp.port.dev.broken && !gq.port.dev.broken,
          "%s: other ports still forward (sent %u, got %d bytes)", what, n, len);
}

static long fd_count(void)
{
    return proc_fd_count(0);
}

/* Mappings of the memfds the tests hand to the daemon ("cp-guest" and
 * "log"), our own mapping included: what a leak of guest memory would
 * pile up (counting all mappings would count the allocator's too). */
static long maps_count(void)
{
    return proc_maps_count(0, "/memfd:cp-guest") + proc_maps_count(0, "/memfd:log");
}

/* ---- packed rings ----------------------------------------------------------- */

/* A guest with packed rings (virtio 1.2, 2.8): the descriptor rings at
 * TX_DESC and RX_DESC, the driver's event structures at TX_AVAIL and
 * RX_AVAIL, the device's at TX_USED and RX_USED. */
static uint64_t pfeats(void)
{
    return feats(true) | 1ull << VIRTIO_F_RING_PACKED;
}

static uint16_t pk_avail_flags(bool wrap)
{
    return wrap ? VIRTQ_DESC_F_AVAIL : VIRTQ_DESC_F_USED;
}

static void pk_step(uint16_t *pos, bool *wrap)
{
    if (++*pos == RING) {
        *pos = 0;
        *wrap = !*wrap;
    }
}

/* The driver makes a chain available at its position: descriptors in
 * ring order (wrapping past the end), the buffer ID in the last, the
 * head's flags stored last. */
static void pk_put_chain(struct vq *vq, struct pkdrv *d, const struct seg *s, unsigned n,
                         uint16_t id)
{
    struct virtq_pdesc *r = vq->pdesc;
    uint16_t head = d->pos, head_flags = 0;
    for (unsigned i = 0; i < n; i++) {
        uint16_t f = (uint16_t)(s[i].flags | (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0) |
                                pk_avail_flags(d->wrap));
        r[d->pos].addr = s[i].gpa;
        r[d->pos].len = s[i].len;
        r[d->pos].id = id;
        if (i == 0)
            head_flags = f;
        else
            r[d->pos].flags = f;
        pk_step(&d->pos, &d->wrap);
    }
    __atomic_store_n(&r[head].flags, head_flags, __ATOMIC_RELEASE);
}

static void pk_tx_chain(struct guest *g, const struct seg *s, unsigned n, uint16_t id)
{
    pk_put_chain(txvq(g), &g->ptx, s, n, id);
}

/* A frame in one descriptor, with the next free buffer ID. */
static void pk_tx_frame(struct guest *g, const uint8_t *f, size_t len)
{
    uint8_t hdr[VIRTIO_NET_HDR_LEN] = { 0 };
    struct seg s = { store(g, hdr, sizeof(hdr), f, len), (uint32_t)(sizeof(hdr) + len), 0 };
    pk_tx_chain(g, &s, 1, (uint16_t)(g->ptx.id++ % RING));
}

/* Both sides of g's TX ring at pos with wrap counter wrap. */
static void pk_start_tx(struct guest *g, uint16_t pos, bool wrap)
{
    vq_set_base(txvq(g), virtq_packed_state(pos, wrap, pos, wrap));
    g->ptx.pos = g->ptx.upos = pos;
    g->ptx.wrap = g->ptx.uwrap = wrap;
}

/* The used descriptor at the driver's used position: used in its lap,
 * naming id; the driver then skips the chain's ndesc descriptors. */
static bool pk_tx_used(struct guest *g, uint16_t id, unsigned ndesc)
{
    struct pkdrv *d = &g->ptx;
    struct virtq_pdesc u = txvq(g)->pdesc[d->upos];
    uint16_t want = d->uwrap ? VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_USED : 0;
    bool ok = (u.flags & (VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_USED)) == want && u.id == id;
    if (!ok)
        note("TX used descriptor at %u: id %u flags 0x%x, expected id %u wrap %d", d->upos, u.id,
             u.flags, id, d->uwrap);
    for (unsigned i = 0; i < ndesc; i++)
        pk_step(&d->upos, &d->uwrap);
    return ok;
}

/* True if nothing was written at the TX ring's next used position since
 * the last snap (all-zero flags would pass for used ones in lap 0). */
static bool pk_tx_no_more_used(struct guest *g)
{
    const uint8_t *now = (const uint8_t *)&txvq(g)->pdesc[g->ptx.upos];
    return !memcmp(now, g->snap[0] + TX_DESC + 16u * g->ptx.upos, 16);
}

/* A receive chain with the next buffer ID; its writable buffers are where
 * the device may write. */
static void pk_rx_chain(struct guest *g, const struct seg *s, unsigned n)
{
    uint16_t id = (uint16_t)(g->prx.id++ % RING);
    for (unsigned i = 0; i < n; i++) {
        if (s[i].flags & VIRTQ_DESC_F_WRITE)
            allow(g, s[i].gpa, s[i].len);
        if (i < 2)
            g->prx_seg[id][i] = s[i];
    }
    g->prx_n[id] = (uint8_t)n;
    pk_put_chain(rxvq(g), &g->prx, s, n, id);
}

static void pk_rx_buffers(struct guest *g, unsigned n, uint32_t len)
{
    for (unsigned i = 0; i < n; i++) {
        struct seg s = { galloc(g, len, 64), len, VIRTQ_DESC_F_WRITE };
        pk_rx_chain(g, &s, 1);
    }
}

/* Reads the next frame delivered into g's packed RX ring (chains of at
 * most 2 descriptors); returns its length without the header, -1 if none,
 * -2 if a used descriptor names a buffer that was not posted. */
static int pk_rx_take(struct guest *g, uint8_t *out, size_t cap, struct virtio_net_hdr *hdr)
{
    struct pkdrv *d = &g->prx;
    const struct virtq_pdesc *r = rxvq(g)->pdesc;
    size_t hlen = dev_hdr_len(&g->port.dev), total = 0;
    unsigned nbufs = 1;
    uint8_t h[VIRTIO_NET_HDR_LEN] = { 0 };
    for (unsigned b = 0; b < nbufs; b++) {
        struct virtq_pdesc u = r[d->upos];
        if (!!(u.flags & VIRTQ_DESC_F_AVAIL) != d->uwrap ||
            !!(u.flags & VIRTQ_DESC_F_USED) != d->uwrap)
            return -1;
        if (u.id >= RING || !g->prx_n[u.id] || g->prx_n[u.id] > 2)
            return -2;
        size_t left = u.len, off = 0;
        for (unsigned i = 0; i < g->prx_n[u.id] && left; i++) {
            const struct seg *s = &g->prx_seg[u.id][i];
            size_t n = s->len < left ? s->len : left;
            for (size_t k = 0; k < n; k++, off++) {
                uint8_t byte = *gptr(g, s->gpa + k);
                if (b == 0 && off < hlen)
                    h[off] = byte;
                else if (total < cap)
                    out[total++] = byte;
            }
            left -= n;
        }
        for (unsigned i = 0; i < g->prx_n[u.id]; i++)
            pk_step(&d->upos, &d->uwrap);
        g->prx_n[u.id] = 0;
        if (b == 0) {
            memcpy(hdr, h, sizeof(*hdr));
            if (dev_has_feature(&g->port.dev, VIRTIO_NET_F_MRG_RXBUF))
                nbufs = hdr->num_buffers;
        }
    }
    return (int)total;
}

/* ---- the control-plane port ---------------------------------------------- */

#define CP_MEM (1u << 20)
#define CP_UVA 0x7d0000000000ull
#define CP_DATA 0x80000u

static struct port cp;
static int cp_fe = -1;
static int cp_memfd = -1;
static uint8_t *cp_mem;
static uint16_t cp_tx_next;

enum outcome { ACK = 0, NACK = 1, CLOSED = -1, NOREPLY = -2 };

static void cp_open(void)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        perror("socketpair");
        exit(1);
    }
    cp_fe = sv[0];
    vu_conn_attach(&cp, sv[1]);
    cp_tx_next = 0;
}

static void cp_close(void)
{
    vu_conn_detach(&cp, "test: closed");
    if (cp_fe >= 0)
        close(cp_fe);
    cp_fe = -1;
}

/* Sends one message (header and payload in one write), lets the daemon
 * handle it, and reads its reply if there is one. */
static enum outcome cp_msg(uint32_t req, uint32_t flags, const void *payload, uint32_t size,
                           const int *fds, unsigned nfds, union vhost_user_payload *reply)
{
    struct vhost_user_hdr h = { req, flags, size };
    struct iovec iov[2] = { { &h, sizeof(h) }, { (void *)payload, size } };
    if (cp_fe < 0 || send_fds(cp_fe, iov, size ? 2 : 1, fds, nfds, MSG_NOSIGNAL) < 0)
        return CLOSED;
    if (vu_conn_readable(&cp) < 0) {
        cp_close();
        return CLOSED;
    }
    struct vhost_user_hdr rh;
    if (recv(cp_fe, &rh, sizeof(rh), MSG_DONTWAIT) != (ssize_t)sizeof(rh))
        return NOREPLY;
    union vhost_user_payload rp;
    memset(&rp, 0, sizeof(rp));
    if (rh.size > sizeof(rp) || (rh.size && recv(cp_fe, &rp, rh.size, MSG_DONTWAIT) != (ssize_t)rh.size))
        return CLOSED;
    if (reply)
        *reply = rp;
    return rp.u64 ? NACK : ACK;
}

/* With NEED_REPLY: ACK, NACK or CLOSED. */
static enum outcome cp_req(uint32_t req, const void *payload, uint32_t size, const int *fds,
                           unsigned nfds)
{
    return cp_msg(req, VHOST_USER_VERSION | VHOST_USER_NEED_REPLY_MASK, payload, size, fds,
                  nfds, NULL);
}

static enum outcome cp_u64(uint32_t req, uint64_t v, const int *fds, unsigned nfds)
{
    return cp_req(req, &v, sizeof(v), fds, nfds);
}

static enum outcome cp_state(uint32_t req, uint32_t index, uint32_t num)
{
    struct vhost_user_vring_state s = { index, num };
    return cp_req(req, &s, sizeof(s), NULL, 0);
}

/* SET_VRING_KICK/CALL with a fresh eventfd (ours is closed at once). */
static enum outcome cp_vring_fd(uint32_t req, uint64_t v)
{
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    enum outcome o = cp_u64(req, v, &fd, 1);
    close(fd);
    return o;
}

/* Rings near the end of the 1 MiB: a ring of 32768 no longer fits. */
static void cp_ring_offsets(unsigned i, uint64_t *desc, uint64_t *avail, uint64_t *used)
{
    uint64_t base = 0xf0000ull - 0x10000ull * i;
    *desc = base;
    *avail = base + 0x1000;
    *used = base + 0x2000;
}

static enum outcome cp_ring_addr(unsigned i, uint32_t flags, uint64_t log)
{
    uint64_t d, a, u;
    cp_ring_offsets(i, &d, &a, &u);
    struct vhost_user_vring_addr va = { i, flags, CP_UVA + d, CP_UVA + u, CP_UVA + a, log };
    return cp_req(VHOST_USER_SET_VRING_ADDR, &va, sizeof(va), NULL, 0);
}

/* Negotiation with REPLY_ACK and memory slots; returns true if all was
 * acknowledged.  Memory: with_mem ? one 1 MiB region at gpa 0 : none. */
static bool cp_negotiate(bool with_mem)
{
    union vhost_user_payload r;
    memset(&r, 0, sizeof(r));
    bool ok = cp_msg(VHOST_USER_GET_FEATURES, VHOST_USER_VERSION, NULL, 0, NULL, 0, &r) != CLOSED &&
              r.u64 != 0;
    uint64_t pf = 1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK | 1ull << VHOST_USER_PROTOCOL_F_MQ |
                  1ull << VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS |
                  1ull << VHOST_USER_PROTOCOL_F_STATUS;
    cp_msg(VHOST_USER_SET_PROTOCOL_FEATURES, VHOST_USER_VERSION, &pf, 8, NULL, 0, NULL);
    ok &= cp_u64(VHOST_USER_SET_FEATURES,
                 1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_NET_F_MRG_RXBUF |
                 1ull << VIRTIO_RING_F_INDIRECT_DESC | 1ull << VHOST_USER_F_PROTOCOL_FEATURES,
                 NULL, 0) == ACK;
    ok &= cp_req(VHOST_USER_SET_OWNER, NULL, 0, NULL, 0) == ACK;
    if (with_mem) {
        struct vhost_user_memory m = { .nregions = 1 };
        m.regions[0] = (struct vhost_user_mem_region){ 0, CP_MEM, CP_UVA, 0 };
        ok &= cp_req(VHOST_USER_SET_MEM_TABLE, &m, 8 + sizeof(m.regions[0]), &cp_memfd, 1) == ACK;
    }
    return ok;
}

static bool cp_rings(void)
{
    bool ok = true;
    for (unsigned i = 0; i < 2; i++) {
        ok &= cp_state(VHOST_USER_SET_VRING_NUM, i, RING) == ACK;
        ok &= cp_ring_addr(i, 0, 0) == ACK;
        ok &= cp_state(VHOST_USER_SET_VRING_BASE, i, 0) == ACK;
        ok &= cp_vring_fd(VHOST_USER_SET_VRING_KICK, i) == ACK;
        ok &= cp_vring_fd(VHOST_USER_SET_VRING_CALL, i) == ACK;
        ok &= cp_state(VHOST_USER_SET_VRING_ENABLE, i, 1) == ACK;
    }
    return ok;
}

/* A frame from the control-plane port's TX ring must reach q. */
static void cp_forward(const char *what)
{
    guest_reset(&gq, feats(true));
    rx_buffers(&gq, 4, 2048);
    struct vqueue *q = &cp.dev.q[TXQ];
    bool ready = dev_queue_ready(&cp.dev, q);
    unsigned n = 0;
    if (ready) {
        uint64_t d, a, u;
        cp_ring_offsets(TXQ, &d, &a, &u);
        struct virtq_desc *desc = (struct virtq_desc *)(cp_mem + d);
        struct virtq_avail *av = (struct virtq_avail *)(cp_mem + a);
        uint8_t f[120];
        make_frame(f, sizeof(f), MAC_Q, MAC_CP, (uint8_t)++frames_seq);
        memset(cp_mem + CP_DATA, 0, VIRTIO_NET_HDR_LEN);
        memcpy(cp_mem + CP_DATA + VIRTIO_NET_HDR_LEN, f, sizeof(f));
        uint16_t i = cp_tx_next++ % RING;
        desc[i] = (struct virtq_desc){ CP_DATA, VIRTIO_NET_HDR_LEN + sizeof(f), 0, 0 };
        av->ring[av->idx % RING] = i;
        __atomic_store_n(&av->idx, (uint16_t)(av->idx + 1), __ATOMIC_RELEASE);
        pthread_rwlock_rdlock(&cp.dev.lock);
        bool more;
        n = fwd_tx_pass(&ctx, q, 256, true, &more);
        pthread_rwlock_unlock(&cp.dev.lock);
        fwd_flush(&ctx);
        uint8_t got[2048];
        struct virtio_net_hdr h;
        int len = rx_take(&gq, got, sizeof(got), &h);
        CHECK(n == 1 && len == (int)sizeof(f) && memcmp(got, f, sizeof(f)) == 0,
              "%s: the port's ring still forwards (sent %u, got %d bytes)", what, n, len);
    } else {
        CHECK(ready, "%s: the port's TX ring is ready", what);
    }
}

static void cp_reset_memory(void)
{
    memset(cp_mem, 0, CP_MEM);
}

/* ---- CVE-2019-14818: more fds than taken; repeated SET_VRING_NUM --------- */

static void cve_2019_14818_repeated_vring_num(void)
{
    printf("== cve_2019_14818_repeated_vring_num\n");
    long fds0 = fd_count(), maps0 = maps_count();
    cp_reset_memory();
    cp_open();
    bool ok = cp_negotiate(true) && cp_rings();
    CHECK(ok, "session set up");
    cp_forward("before");
    long fds1 = fd_count(), maps1 = maps_count();
    /* The same ring resized, re-addressed and given new notifiers again
     * and again, with and without a ring in use. */
    static const uint32_t sizes[] = { 256, 1024, 2, 32768, 16, 256, 1, 4096 };
    unsigned refused = 0;
    for (unsigned i = 0; i < 400; i++) {
        refused += cp_state(VHOST_USER_SET_VRING_NUM, TXQ, sizes[i % 8]) != ACK;
        if (i % 4 == 0) {
            cp_ring_addr(TXQ, 0, 0);
            cp_vring_fd(VHOST_USER_SET_VRING_KICK, TXQ);
            cp_vring_fd(VHOST_USER_SET_VRING_CALL, TXQ);
            cp_vring_fd(VHOST_USER_SET_VRING_CALL, RXQ);
        }
    }
    CHECK(refused == 0, "400 SET_VRING_NUM of valid sizes accepted (%u refused)", refused);
    CHECK(cp_state(VHOST_USER_SET_VRING_NUM, TXQ, 3) == NACK, "size 3 refused");
    CHECK(cp.conn.fd >= 0 && cp.dev.mem.n == 1, "connection and memory table intact");
    CHECK(fd_count() == fds1, "no fd piled up: %ld -> %ld", fds1, fd_count());
    CHECK(maps_count() == maps1, "no mapping piled up: %ld -> %ld", maps1, maps_count());
    /* Size 32768 does not fit in the memory left after the ring's address:
     * the ring is not used until it fits again. */
    cp_state(VHOST_USER_SET_VRING_NUM, TXQ, 32768);
    CHECK(!dev_queue_ready(&cp.dev, &cp.dev.q[TXQ]), "a ring that no longer fits is not served");
    cp_state(VHOST_USER_SET_VRING_NUM, TXQ, RING);
    cp_ring_addr(TXQ, 0, 0);
    cp_forward("after 400 resizes");
    /* More fds than the message takes: refused, none of them kept. */
    int efd[8];
    for (int i = 0; i < 8; i++)
        efd[i] = eventfd(0, EFD_CLOEXEC);
    uint64_t v = TXQ;
    CHECK(cp_req(VHOST_USER_SET_VRING_KICK, &v, 8, efd, 8) == CLOSED,
          "SET_VRING_KICK with 8 fds closes the connection");
    for (int i = 0; i < 8; i++)
        close(efd[i]);
    cp_close();
    CHECK(fd_count() == fds0, "every fd closed after the session: %ld -> %ld", fds0, fd_count());
    CHECK(maps_count() == maps0, "every mapping gone after the session: %ld -> %ld", maps0,
          maps_count());
    others_forward("repeated SET_VRING_NUM");
}

/* ---- CVE-2020-10722: SET_LOG_BASE, dirty logging -------------------------- */

/* Live migration's dirty log (issue 15): offered now.  A log that wraps,
 * lies beyond its file or does not cover guest memory is refused and
 * closes that connection; a good one is mapped and answered; the log
 * address of a ring must be guest memory; a TX pass with logging on sets
 * the bit of exactly the page its used ring is on, and the daemon never
 * writes at the log address itself. */
static bool cp_log_session(void)
{
    cp_open();
    uint64_t pf = 1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK | 1ull << VHOST_USER_PROTOCOL_F_LOG_SHMFD;
    bool ok = cp_negotiate(true);
    ok &= cp_msg(VHOST_USER_SET_PROTOCOL_FEATURES, VHOST_USER_VERSION, &pf, 8, NULL, 0, NULL) ==
          NOREPLY;
    return ok;
}

static void cve_2020_10722_log_base(void)
{
    printf("== cve_2020_10722_log_base\n");
    long fds0 = fd_count(), maps0 = maps_count();
    cp_reset_memory();
    CHECK(cp_log_session(), "session set up");
    union vhost_user_payload r;
    cp_msg(VHOST_USER_GET_FEATURES, VHOST_USER_VERSION, NULL, 0, NULL, 0, &r);
    CHECK(r.u64 & (1ull << VHOST_F_LOG_ALL), "LOG_ALL is offered");
    cp_msg(VHOST_USER_GET_PROTOCOL_FEATURES, VHOST_USER_VERSION, NULL, 0, NULL, 0, &r);
    CHECK(r.u64 & (1ull << VHOST_USER_PROTOCOL_F_LOG_SHMFD), "LOG_SHMFD is offered");
    /* 1 MiB of guest memory: 256 pages, 32 bytes of log. */
    int logfd = memfd_create("log", MFD_CLOEXEC);
    CHECK(logfd >= 0 && ftruncate(logfd, 4096) == 0, "log memfd");
    static const struct vhost_user_log bad[] = {
        { 0xfffffffffffff000ull, 0x2000 },   /* size + offset wraps */
        { 0x1000, 0xfffffffffffff800ull },
        { 0x100000, 0 },                     /* larger than the file */
        { 4096, 1 },                         /* beyond the file by a byte */
        { 16, 0 },                           /* covers half of guest memory */
        { 0, 0 },                            /* empty */
    };
    long maps1 = maps_count();
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (cp_fe < 0)
            CHECK(cp_log_session(), "session set up again");
        enum outcome o = cp_msg(VHOST_USER_SET_LOG_BASE, VHOST_USER_VERSION, &bad[i],
                                sizeof(bad[i]), &logfd, 1, NULL);
        CHECK(o == CLOSED, "SET_LOG_BASE size 0x%llx offset 0x%llx refused, connection closed (%d)",
              (unsigned long long)bad[i].mmap_size, (unsigned long long)bad[i].mmap_offset, o);
        CHECK(maps_count() <= maps1, "no log mapped");
    }
    CHECK(cp_log_session(), "session set up again");
    maps1 = maps_count();
    struct vhost_user_log good = { 32, 0 };
    CHECK(cp_msg(VHOST_USER_SET_LOG_BASE, VHOST_USER_VERSION, &good, sizeof(good), &logfd, 1,
                 NULL) == ACK && maps_count() == maps1 + 1,
          "a log covering guest memory is mapped and answered");
    CHECK(cp_req(VHOST_USER_SET_LOG_FD, NULL, 0, &logfd, 1) == NACK, "SET_LOG_FD refused");
    CHECK(cp_u64(VHOST_USER_SET_FEATURES, 1ull << VIRTIO_F_VERSION_1 | 1ull << VHOST_F_LOG_ALL |
                 1ull << VHOST_USER_F_PROTOCOL_FEATURES, NULL, 0) == ACK,
          "SET_FEATURES with LOG_ALL accepted");
    CHECK(cp_rings(), "rings set up");
    CHECK(cp_ring_addr(TXQ, 1u << VHOST_VRING_F_LOG, CP_MEM + 0x1000) == NACK,
          "a log address outside guest memory is refused");
    uint64_t d, a, u, canary = 0xc0000;
    cp_ring_offsets(TXQ, &d, &a, &u);
    CHECK(cp_ring_addr(TXQ, 1u << VHOST_VRING_F_LOG, canary) == ACK,
          "a log address in guest memory is taken");
    memset(cp_mem + canary, 0xa5, 0x10000);
    uint8_t *log = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, logfd, 0);
    CHECK(log != MAP_FAILED, "the test maps the log too");
    memset(log, 0, 32);
    for (int i = 0; i < 4; i++)
        cp_forward("traffic with the dirty log on");
    unsigned want = (unsigned)(u / LOG_PAGE), wrong = 0;
    for (unsigned pg = 0; pg < 256; pg++)
        wrong += (((log[pg / 8] >> (pg % 8)) & 1) != (pg == want));
    CHECK(wrong == 0, "exactly the TX used ring's page (%u) is dirty (%u pages differ)", want,
          wrong);
    bool intact = true;
    for (unsigned i = 0; i < 0x10000; i++)
        intact &= cp_mem[canary + i] == 0xa5;
    CHECK(intact, "nothing written at the log address");
    munmap(log, 4096);
    cp_close();
    close(logfd);
    CHECK(fd_count() == fds0, "every fd closed (the refused log fd too): %ld -> %ld", fds0,
          fd_count());
    CHECK(maps_count() == maps0, "no mapping left: %ld -> %ld", maps0, maps_count());
    others_forward("SET_LOG_BASE");
}

/* The dirty log at run time: logging turned on before a log exists logs
 * nothing and harms nothing; a log replaced while rings run is used from
 * then on; a log whose file the frontend shrinks under us breaks only
 * that device (the SIGBUS guard), never the daemon. */
static void log_at_run_time(void)
{
    printf("== log_at_run_time\n");
    CHECK(mem_guard_install() == 0, "SIGBUS guard installed (as the daemon does)");
    long fds0 = fd_count(), maps0 = maps_count();
    cp_reset_memory();
    CHECK(cp_log_session(), "session set up");
    CHECK(cp_u64(VHOST_USER_SET_FEATURES, 1ull << VIRTIO_F_VERSION_1 | 1ull << VHOST_F_LOG_ALL |
                 1ull << VHOST_USER_F_PROTOCOL_FEATURES, NULL, 0) == ACK,
          "LOG_ALL before any log: accepted");
    CHECK(cp_rings() && cp_ring_addr(TXQ, 1u << VHOST_VRING_F_LOG, 0xc0000) == ACK,
          "rings set up, one asking for logging");
    cp_forward("logging on, no log yet");
    int fd[2];
    struct vhost_user_log good = { 32, 0 };
    for (int i = 0; i < 2; i++) {
        fd[i] = memfd_create("log", MFD_CLOEXEC);
        CHECK(fd[i] >= 0 && ftruncate(fd[i], 4096) == 0, "log memfd %d", i);
        CHECK(cp_msg(VHOST_USER_SET_LOG_BASE, VHOST_USER_VERSION, &good, sizeof(good), &fd[i], 1,
                     NULL) == ACK, "log %d mapped while the rings run", i);
        cp_forward("traffic after a new log");
    }
    uint8_t *l0 = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd[0], 0);
    uint8_t *l1 = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd[1], 0);
    uint64_t d, a, u;
    cp_ring_offsets(TXQ, &d, &a, &u);
    unsigned pg = (unsigned)(u / LOG_PAGE);
    CHECK(l0 != MAP_FAILED && l1 != MAP_FAILED && (l1[pg / 8] >> (pg % 8) & 1),
          "the new log gets the used ring's page");
    munmap(l0, 4096);
    munmap(l1, 4096);
    /* The frontend shrinks the log's file: the next logged write faults. */
    CHECK(ftruncate(fd[1], 0) == 0, "log file shrunk to nothing");
    pthread_rwlock_rdlock(&cp.dev.lock);
    mem_log_gpa(&cp.dev.mem, u, 8, NULL);
    pthread_rwlock_unlock(&cp.dev.lock);
    CHECK(dev_is_broken(&cp.dev), "a log shrunk under the daemon breaks that device only");
    cp_close();
    close(fd[0]);
    close(fd[1]);
    CHECK(fd_count() == fds0, "every fd closed: %ld -> %ld", fds0, fd_count());
    CHECK(maps_count() == maps0, "no mapping left: %ld -> %ld", maps0, maps_count());
    others_forward("a log shrunk under the daemon");
}

/* ---- CVE-2020-10723: ring indexes a narrower type would truncate ---------- */

static void cve_2020_10723_truncated_index(void)
{
    printf("== cve_2020_10723_truncated_index\n");
    long fds0 = fd_count();
    cp_reset_memory();
    cp_open();
    CHECK(cp_negotiate(true) && cp_rings(), "session set up");
    int kick1 = cp.dev.q[TXQ].kickfd, call1 = cp.dev.q[TXQ].callfd;
    int kick0 = cp.dev.q[RXQ].kickfd, call0 = cp.dev.q[RXQ].callfd;
    uint32_t num1 = cp.dev.q[TXQ].vq.num;
    /* Each lands on ring 0 or 1 if cut to 8 or 16 bits. */
    static const uint32_t idx32[] = { 0x100, 0x101, 0x10000, 0x10001, 0x80000001u, 0xffffffffu };
    static const uint32_t reqs[] = { VHOST_USER_SET_VRING_NUM, VHOST_USER_SET_VRING_BASE,
                                     VHOST_USER_SET_VRING_ENABLE, VHOST_USER_GET_VRING_BASE };
    unsigned bad = 0;
    for (unsigned r = 0; r < 4; r++)
        for (unsigned i = 0; i < sizeof(idx32) / sizeof(idx32[0]); i++) {
            struct vhost_user_vring_state s = { idx32[i], r == 2 ? 0 : 64 };
            enum outcome o = r == 3 ? cp_msg(reqs[r], VHOST_USER_VERSION, &s, 8, NULL, 0, NULL)
                                    : cp_req(reqs[r], &s, 8, NULL, 0);
            if (o == CLOSED) {
                cp_open();
                cp_negotiate(true);
                cp_rings();
                kick1 = cp.dev.q[TXQ].kickfd;
                call1 = cp.dev.q[TXQ].callfd;
                kick0 = cp.dev.q[RXQ].kickfd;
                call0 = cp.dev.q[RXQ].callfd;
            } else if (o == ACK) {
                bad++;
                printf("  request %u with ring index 0x%x accepted\n", reqs[r], idx32[i]);
            }
        }
    CHECK(bad == 0, "ring-state requests with indexes beyond the 2 rings refused");
    CHECK(cp.dev.q[TXQ].vq.num == num1 && cp.dev.q[TXQ].enable == 1 && cp.dev.q[RXQ].enable == 1 &&
          cp.dev.q[TXQ].kick_set, "rings 0 and 1 unchanged");
    /* u64 payloads: index in bits 0-7, NOFD in bit 8, anything else is
     * reserved and must not be cut away. */
    static const uint64_t idx64[] = { 0x201, 0x1000, 0x100000001ull, 0x8000000000000000ull,
                                      0x8000000000000001ull, 0x2 };
    static const uint32_t fdreqs[] = { VHOST_USER_SET_VRING_KICK, VHOST_USER_SET_VRING_CALL,
                                       VHOST_USER_SET_VRING_ERR };
    bad = 0;
    for (unsigned r = 0; r < 3; r++)
        for (unsigned i = 0; i < sizeof(idx64) / sizeof(idx64[0]); i++) {
            enum outcome o = cp_vring_fd(fdreqs[r], idx64[i]);
            if (o == ACK) {
                bad++;
                printf("  request %u with 0x%llx accepted\n", fdreqs[r],
                       (unsigned long long)idx64[i]);
            }
        }
    CHECK(bad == 0, "SET_VRING_KICK/CALL/ERR with reserved bits or ring 2 refused");
    CHECK(cp.dev.q[TXQ].kickfd == kick1 && cp.dev.q[TXQ].callfd == call1 &&
          cp.dev.q[RXQ].kickfd == kick0 && cp.dev.q[RXQ].callfd == call0 &&
          cp.dev.q[TXQ].errfd < 0 && cp.dev.q[RXQ].errfd < 0,
          "the fds of rings 0 and 1 were not replaced");
    cp_forward("after truncated indexes");
    cp_close();
    CHECK(fd_count() == fds0, "no fd left: %ld -> %ld", fds0, fd_count());
    others_forward("truncated ring indexes");
}

/* ---- CVE-2020-10725 & co: zero-length descriptors with bad addresses ----- */

static void cve_2020_10725_zero_len_bad_addr(void)
{
    printf("== cve_2020_10725_zero_len_bad_addr\n");
    static const uint64_t bad_addr[] = { 0, 0xdead000000000000ull, 0xfffffffffffffff0ull,
                                         GPA0 + 2 * REG };
    uint8_t f[300], got[4096];
    uint8_t hdr[VIRTIO_NET_HDR_LEN] = { 0 };
    for (unsigned k = 0; k < 4; k++) {
        guest_reset(&gtx, feats(true));
        guest_reset(&grx, feats(true));
        switch_learn(&sw, MAC_RX, grx.port.index);
        uint64_t a = bad_addr[k];
        make_frame(f, sizeof(f), MAC_RX, MAC_TX, (uint8_t)k);
        uint64_t h = store(&gtx, hdr, sizeof(hdr), f, sizeof(f));
        /* TX: zero-length pieces before, between and after real ones. */
        struct seg tx[] = { { a, 0, 0 }, { h, 12, 0 }, { a, 0, 0 }, { h + 12, 100, 0 },
                            { a + 4096, 0, 0 }, { h + 112, sizeof(f) - 100, 0 }, { a, 0, 0 } };
        tx_chain(&gtx, tx, 7);
        /* TX through an indirect table holding zero-length entries. */
        uint64_t t = galloc(&gtx, 4 * 16, 16);
        struct virtq_desc tbl[4] = { { a, 0, VIRTQ_DESC_F_NEXT, 1 }, { h, 12, VIRTQ_DESC_F_NEXT, 2 },
                                     { a, 0, VIRTQ_DESC_F_NEXT, 3 }, { h + 12, sizeof(f), 0, 0 } };
        put(&gtx, t, tbl, sizeof(tbl));
        struct seg ind = { t, sizeof(tbl), VIRTQ_DESC_F_INDIRECT };
        tx_chain(&gtx, &ind, 1);
        /* A chain made of zero-length pieces only: a frame too short. */
        struct seg none[] = { { a, 0, 0 }, { a + 64, 0, 0 } };
        tx_chain(&gtx, none, 2);
        /* RX: zero-length writable pieces with the bad address. */
        for (int i = 0; i < 2; i++) {
            struct seg rx[] = { { a, 0, VIRTQ_DESC_F_WRITE }, { galloc(&grx, 2048, 64), 2048,
                                VIRTQ_DESC_F_WRITE }, { a, 0, VIRTQ_DESC_F_WRITE } };
            rx_chain(&grx, rx, 3);
        }
        snap(&gtx);
        snap(&grx);
        unsigned n = tx_pass(&gtx);
        CHECK(n == 3 && !gtx.port.dev.broken && !grx.port.dev.broken,
              "addr 0x%llx: 3 chains served, nobody broken (n %u)", (unsigned long long)a, n);
        CHECK(stat_get(&gtx.port.dev.q[TXQ].st.drops_invalid) == 1,
              "addr 0x%llx: the chain of zero-length pieces only is dropped as too short",
              (unsigned long long)a);
        struct virtio_net_hdr rh;
        int l1 = rx_take(&grx, got, sizeof(got), &rh);
        bool ok1 = l1 == (int)sizeof(f) && !memcmp(got, f, sizeof(f));
        int l2 = rx_take(&grx, got, sizeof(got), &rh);
        bool ok2 = l2 == (int)sizeof(f) && !memcmp(got, f, sizeof(f));
        CHECK(ok1 && ok2, "addr 0x%llx: both frames arrive intact (%d, %d)",
              (unsigned long long)a, l1, l2);
        check_confined(&gtx, "zero-length, bad address");
        check_confined(&grx, "zero-length, bad address");
    }
    others_forward("zero-length descriptors with bad addresses");
}

/* ---- CVE-2020-14375: double fetch ---------------------------------------- */

/*
 * A guest may rewrite a descriptor at any moment; the device is safe only if
 * every value it uses was read once into a local and checked there.  A real
 * race cannot be won on demand, and flipping a descriptor between two pops
 * only tests each pop on its own.  What can be asserted is the cause: here
 * every load from the descriptor tables, an indirect table and the avail
 * ring is trapped (the pages are PROT_NONE; the fault handler counts the
 * address, opens the page and single-steps the load; the trap handler
 * closes it again), through a whole TX pass and the switch's RX delivery.
 * No byte of a descriptor or avail entry may be loaded twice: there is no
 * second fetch for a rewrite to slip into.  Descriptors outside the chains
 * must not be loaded at all.
 */
/* ThreadSanitizer delivers signals through its own handler and
 * re-executes trapped loads: the count is only exact without it. */
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define LWV_TSAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define LWV_TSAN 1
#endif

#if defined(__x86_64__) && !defined(LWV_TSAN)
#define TRAP_MAX 4
#define TF_FLAG 0x100

struct trap {
    uint8_t *base;
    size_t len;
    uint8_t count[4096];     /* loads at each byte */
    uint8_t wcount[4096];    /* stores at each byte */
};

static struct trap traps[TRAP_MAX];
static unsigned ntraps;
static volatile sig_atomic_t trap_open = -1;   /* trap whose page is open */
static unsigned trap_faults, trap_foreign;

static void trap_protect(int prot)
{
    for (unsigned i = 0; i < ntraps; i++)
        mprotect(traps[i].base, traps[i].len, prot);
}

static void on_segv(int sig, siginfo_t *si, void *uc_)
{
    (void)sig;
    ucontext_t *uc = uc_;
    uint8_t *a = si->si_addr;
    for (unsigned i = 0; i < ntraps; i++) {
        if (a < traps[i].base || a >= traps[i].base + traps[i].len)
            continue;
        /* Bit 1 of the page fault's error code: a store. */
        uint8_t *c = uc->uc_mcontext.gregs[REG_ERR] & 2 ? traps[i].wcount : traps[i].count;
        if (c[a - traps[i].base] < 255)
            c[a - traps[i].base]++;
        trap_faults++;
        mprotect(traps[i].base, traps[i].len, PROT_READ | PROT_WRITE);
        trap_open = (sig_atomic_t)i;
        uc->uc_mcontext.gregs[REG_EFL] |= TF_FLAG;
        return;
    }
    trap_foreign++;
    signal(SIGSEGV, SIG_DFL);   /* a real fault: let it kill us */
}

static void on_trap(int sig, siginfo_t *si, void *uc_)
{
    (void)sig;
    (void)si;
    ucontext_t *uc = uc_;
    if (trap_open >= 0) {
        mprotect(traps[trap_open].base, traps[trap_open].len, PROT_NONE);
        trap_open = -1;
    }
    uc->uc_mcontext.gregs[REG_EFL] &= ~(greg_t)TF_FLAG;
}

static void trap_add(uint8_t *page)
{
    traps[ntraps].base = page;
    traps[ntraps].len = 4096;
    memset(traps[ntraps].count, 0, sizeof(traps[ntraps].count));
    memset(traps[ntraps].wcount, 0, sizeof(traps[ntraps].wcount));
    ntraps++;
}

/* Bytes [off, off+len) of trap t: none loaded twice; returns loads seen. */
static unsigned loads(unsigned t, size_t off, size_t len, bool *twice)
{
    unsigned n = 0;
    for (size_t i = off; i < off + len; i++) {
        n += traps[t].count[i];
        if (traps[t].count[i] > 1)
            *twice = true;
    }
    return n;
}

static void cve_2020_14375_double_fetch(void)
{
    printf("== cve_2020_14375_double_fetch\n");
    guest_reset(&gtx, feats(true));
    guest_reset(&grx, feats(true));
    switch_learn(&sw, MAC_RX, grx.port.index);
    uint8_t hdr[VIRTIO_NET_HDR_LEN] = { 0 }, f[400], g[400], got[4096];
    make_frame(f, sizeof(f), MAC_RX, MAC_TX, 1);
    make_frame(g, sizeof(g), MAC_RX, MAC_TX, 2);
    struct vq *tx = txvq(&gtx), *rx = rxvq(&grx);
    /* Frame 1: three descriptors scattered over the table (10 -> 70 -> 33). */
    uint64_t h1 = store(&gtx, hdr, sizeof(hdr), f, sizeof(f));
    tx->desc[10] = (struct virtq_desc){ h1, 12, VIRTQ_DESC_F_NEXT, 70 };
    tx->desc[70] = (struct virtq_desc){ h1 + 12, 150, VIRTQ_DESC_F_NEXT, 33 };
    tx->desc[33] = (struct virtq_desc){ h1 + 162, sizeof(f) - 150, 0, 0 };
    /* Frame 2: an indirect table on its own page, walked 0 -> 2 -> 1. */
    uint64_t h2 = store(&gtx, hdr, sizeof(hdr), g, sizeof(g));
    uint64_t tg = galloc(&gtx, 4096, 4096);
    struct virtq_desc tbl[3] = { { h2, 12, VIRTQ_DESC_F_NEXT, 2 },
                                 { h2 + 212, sizeof(g) - 200, 0, 0 },
                                 { h2 + 12, 200, VIRTQ_DESC_F_NEXT, 1 } };
    put(&gtx, tg, tbl, sizeof(tbl));
    tx->desc[90] = (struct virtq_desc){ tg, sizeof(tbl), VIRTQ_DESC_F_INDIRECT, 0 };
    post(tx, 10);
    post(tx, 90);
    /* RX: mergeable, two-descriptor chains of 300 bytes: each frame takes
     * two chains, four chains in all (descriptors 5/6, 7/8, 9/10, 11/12). */
    grx.rx_desc = 5;
    for (int i = 0; i < 4; i++) {
        struct seg s[2] = { { galloc(&grx, 100, 64), 100, VIRTQ_DESC_F_WRITE },
                            { galloc(&grx, 200, 64), 200, VIRTQ_DESC_F_WRITE } };
        rx_chain(&grx, s, 2);
    }
    struct sigaction sa, old_segv, old_trap;
    memset(&sa, 0, sizeof(sa));
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sa.sa_sigaction = on_segv;
    sigaction(SIGSEGV, &sa, &old_segv);
    sa.sa_sigaction = on_trap;
    sigaction(SIGTRAP, &sa, &old_trap);
    ntraps = 0;
    trap_add((uint8_t *)tx->desc);                    /* 0 */
    trap_add(gptr(&gtx, tg));                         /* 1 */
    trap_add((uint8_t *)tx->avail);                   /* 2 */
    trap_add((uint8_t *)rx->desc);                    /* 3 */
    trap_faults = trap_foreign = 0;
    trap_protect(PROT_NONE);
    unsigned n = tx_pass(&gtx);
    trap_protect(PROT_READ | PROT_WRITE);
    ntraps = 0;
    sigaction(SIGSEGV, &old_segv, NULL);
    sigaction(SIGTRAP, &old_trap, NULL);

    CHECK(n == 2 && trap_foreign == 0, "two frames served under the traps (%u; %u loads trapped)",
          n, trap_faults);
    struct virtio_net_hdr rh;
    int l1 = rx_take(&grx, got, sizeof(got), &rh);
    bool ok1 = l1 == (int)sizeof(f) && !memcmp(got, f, sizeof(f)) && rh.num_buffers == 2;
    int l2 = rx_take(&grx, got, sizeof(got), &rh);
    bool ok2 = l2 == (int)sizeof(g) && !memcmp(got, g, sizeof(g)) && rh.num_buffers == 2;
    CHECK(ok1 && ok2, "both frames delivered intact in two buffers each (%d, %d)", l1, l2);
    bool twice = false;
    unsigned in_chain = 0, outside = 0;
    for (unsigned i = 0; i < RING; i++) {
        bool used = i == 10 || i == 70 || i == 33 || i == 90;
        unsigned l = loads(0, i * 16, 16, &twice);
        if (used)
            in_chain += l > 0;
        else
            outside += l;
    }
    CHECK(in_chain == 4, "TX: each of the 4 descriptors in chains was read (%u)", in_chain);
    CHECK(outside == 0, "TX: no descriptor outside the chains read (%u loads)", outside);
    unsigned tbl_read = 0;
    for (unsigned i = 0; i < 3; i++)
        tbl_read += loads(1, i * 16, 16, &twice) > 0;
    CHECK(tbl_read == 3 && loads(1, 48, 4096 - 48, &twice) == 0,
          "indirect: the 3 entries read, nothing past the table");
    unsigned heads = loads(2, 4, 2, &twice) > 0;
    heads += loads(2, 6, 2, &twice) > 0;
    CHECK(heads == 2, "avail: both head entries read");
    bool rx_twice = false;
    unsigned rx_read = 0, rx_outside = 0;
    for (unsigned i = 0; i < RING; i++) {
        unsigned l = loads(3, i * 16, 16, &rx_twice);
        if (i >= 5 && i <= 12)
            rx_read += l > 0;
        else
            rx_outside += l;
    }
    CHECK(rx_read == 8 && rx_outside == 0, "RX: the 8 descriptors of 4 chains read, no other "
          "(%u, %u loads elsewhere)", rx_read, rx_outside);
    CHECK(!twice, "no byte of a TX descriptor, indirect entry or avail head loaded twice");
    CHECK(!rx_twice, "no byte of an RX descriptor loaded twice");
    others_forward("double fetch");
}

/* The same for packed rings: every load from the TX and RX descriptor
 * rings and an indirect table trapped through a TX pass whose first chain
 * runs past the ring's end, from a packed sender to a packed receiver.
 * The device writes used descriptors into the same rings: stores are
 * counted apart.  Every byte of a descriptor in a chain is loaded at most
 * once (the flags that make it available included); of the descriptor
 * after the last chain only the flags are read (polled: it is not
 * available), and no other descriptor is touched. */
static void cve_2020_14375_double_fetch_packed(void)
{
    printf("== cve_2020_14375_double_fetch_packed\n");
    guest_reset(&gtx, pfeats());
    guest_reset(&grx, pfeats());
    switch_learn(&sw, MAC_RX, grx.port.index);
    uint8_t hdr[VIRTIO_NET_HDR_LEN] = { 0 }, f[400], g[400], got[4096];
    make_frame(f, sizeof(f), MAC_RX, MAC_TX, 11);
    make_frame(g, sizeof(g), MAC_RX, MAC_TX, 12);
    struct vq *tx = txvq(&gtx), *rx = rxvq(&grx);
    /* Frame 1: three descriptors at 254, 255 and 0 (the last in lap 0). */
    pk_start_tx(&gtx, RING - 2, true);
    uint64_t h1 = store(&gtx, hdr, sizeof(hdr), f, sizeof(f));
    struct seg s1[3] = { { h1, 12, 0 }, { h1 + 12, 150, 0 }, { h1 + 162, sizeof(f) - 150, 0 } };
    pk_tx_chain(&gtx, s1, 3, 77);
    /* Frame 2: an indirect table of 3 on its own page, at position 1. */
    uint64_t h2 = store(&gtx, hdr, sizeof(hdr), g, sizeof(g));
    uint64_t tg = galloc(&gtx, 4096, 4096);
    struct virtq_pdesc tbl[3] = { { h2, 12, 0, 0 }, { h2 + 12, 200, 0, 0 },
                                  { h2 + 212, sizeof(g) - 200, 0, 0 } };
    put(&gtx, tg, tbl, sizeof(tbl));
    struct seg si = { tg, sizeof(tbl), VIRTQ_DESC_F_INDIRECT };
    pk_tx_chain(&gtx, &si, 1, 78);
    /* RX: mergeable, two-descriptor chains of 300 bytes at 0-7. */
    for (int i = 0; i < 4; i++) {
        struct seg s[2] = { { galloc(&grx, 100, 64), 100, VIRTQ_DESC_F_WRITE },
                            { galloc(&grx, 200, 64), 200, VIRTQ_DESC_F_WRITE } };
        pk_rx_chain(&grx, s, 2);
    }
    struct sigaction sa, old_segv, old_trap;
    memset(&sa, 0, sizeof(sa));
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sa.sa_sigaction = on_segv;
    sigaction(SIGSEGV, &sa, &old_segv);
    sa.sa_sigaction = on_trap;
    sigaction(SIGTRAP, &sa, &old_trap);
    ntraps = 0;
    trap_add((uint8_t *)tx->pdesc);                   /* 0 */
    trap_add(gptr(&gtx, tg));                         /* 1 */
    trap_add((uint8_t *)rx->pdesc);                   /* 2 */
    snap(&gtx);
    snap(&grx);
    trap_faults = trap_foreign = 0;
    trap_protect(PROT_NONE);
    unsigned n = tx_pass(&gtx);
    trap_protect(PROT_READ | PROT_WRITE);
    ntraps = 0;
    sigaction(SIGSEGV, &old_segv, NULL);
    sigaction(SIGTRAP, &old_trap, NULL);

    CHECK(n == 2 && trap_foreign == 0 && !gtx.port.dev.broken && !grx.port.dev.broken,
          "packed: two frames served under the traps (%u; %u accesses trapped)", n, trap_faults);
    struct virtio_net_hdr rh;
    int l1 = pk_rx_take(&grx, got, sizeof(got), &rh);
    bool ok1 = l1 == (int)sizeof(f) && !memcmp(got, f, sizeof(f)) && rh.num_buffers == 2;
    int l2 = pk_rx_take(&grx, got, sizeof(got), &rh);
    bool ok2 = l2 == (int)sizeof(g) && !memcmp(got, g, sizeof(g)) && rh.num_buffers == 2;
    CHECK(ok1 && ok2, "packed: both frames delivered intact in two buffers each (%d, %d)", l1, l2);
    bool twice = false, polled = false;
    unsigned in_chain = 0, outside = 0, next_other = 0;
    for (unsigned i = 0; i < RING; i++) {
        if (i == RING - 2 || i == RING - 1 || i == 0 || i == 1)
            in_chain += loads(0, i * 16, 16, &twice) > 0;
        else if (i == 2)   /* polled: its flags may be read more than once */
            next_other += loads(0, i * 16, 14, &polled);
        else
            outside += loads(0, i * 16, 16, &twice);
    }
    CHECK(in_chain == 4, "packed TX: each of the 4 descriptors in chains was read (%u)", in_chain);
    CHECK(outside == 0 && next_other == 0, "packed TX: nothing else read (%u loads elsewhere, %u "
          "of the next descriptor's address, length or ID)", outside, next_other);
    unsigned tbl_read = 0;
    for (unsigned i = 0; i < 3; i++)
        tbl_read += loads(1, i * 16, 16, &twice) > 0;
    CHECK(tbl_read == 3 && loads(1, 48, 4096 - 48, &twice) == 0,
          "packed indirect: the 3 entries read, nothing past the table");
    bool rx_twice = false;
    unsigned rx_read = 0, rx_outside = 0, rx_next = 0;
    for (unsigned i = 0; i < RING; i++) {
        if (i < 8)
            rx_read += loads(2, i * 16, 16, &rx_twice) > 0;
        else if (i == 8)
            rx_next += loads(2, i * 16, 14, &polled);
        else
            rx_outside += loads(2, i * 16, 16, &rx_twice);
    }
    CHECK(rx_read == 8 && rx_outside == 0 && rx_next == 0, "packed RX: the 8 descriptors of 4 "
          "chains read, no other (%u, %u loads elsewhere, %u after)", rx_read, rx_outside, rx_next);
    unsigned tx_w = 0, rx_w = 0;
    for (unsigned i = 0; i < 4096; i++) {
        tx_w += traps[0].wcount[i];
        rx_w += traps[2].wcount[i];
    }
    CHECK(tx_w > 0 && rx_w > 0, "packed: used descriptors were written under the traps (%u, %u "
          "stores)", tx_w, rx_w);
    CHECK(!twice, "packed: no byte of a TX descriptor or indirect entry loaded twice");
    CHECK(!rx_twice, "packed: no byte of an RX descriptor loaded twice");
    check_confined(&gtx, "packed double fetch");
    check_confined(&grx, "packed double fetch");
    others_forward("packed double fetch");
}
#else
static void cve_2020_14375_double_fetch(void)
{
    printf("== cve_2020_14375_double_fetch: skipped (needs x86-64, and no ThreadSanitizer)\n");
}

static void cve_2020_14375_double_fetch_packed(void)
{
    printf("== cve_2020_14375_double_fetch_packed: skipped (needs x86-64, and no ThreadSanitizer)\n");
}
#endif

/* ---- CVE-2022-2132: split headers, chains shorter than the header -------- */

static void cve_2022_2132_split_header(void)
{
    printf("== cve_2022_2132_split_header\n");
    uint8_t f[200], got[4096];
    struct virtio_net_hdr rh;
    uint8_t hdr[VIRTIO_NET_HDR_LEN] = { 0 };
    guest_reset(&gtx, feats(true));
    guest_reset(&grx, feats(true));
    switch_learn(&sw, MAC_RX, grx.port.index);
    make_frame(f, sizeof(f), MAC_RX, MAC_TX, 7);
    uint64_t h = store(&gtx, hdr, sizeof(hdr), f, sizeof(f));
    /* TX header in 12 one-byte descriptors, then the frame. */
    struct seg s12[13];
    for (int i = 0; i < 12; i++)
        s12[i] = (struct seg){ h + (uint64_t)i, 1, 0 };
    s12[12] = (struct seg){ h + 12, sizeof(f), 0 };
    tx_chain(&gtx, s12, 13);
    /* Header in 5 + 7 bytes, the second piece running on into the frame. */
    struct seg s2[] = { { h, 5, 0 }, { h + 5, 7 + 50, 0 }, { h + 62, sizeof(f) - 50, 0 } };
    tx_chain(&gtx, s2, 3);
    /* Chains no longer than the header, or than header + Ethernet header. */
    struct seg short1[] = { { h, 5, 0 }, { h + 5, 6, 0 } };            /* 11 bytes */
    struct seg short2[] = { { h, 6, 0 }, { h + 6, 6, 0 } };            /* exactly 12 */
    struct seg short3[] = { { h, 12, 0 }, { h + 12, 13, 0 } };         /* 12 + 13 */
    struct seg short4[] = { { h, 1, 0 } };
    tx_chain(&gtx, short1, 2);
    tx_chain(&gtx, short2, 2);
    tx_chain(&gtx, short3, 2);
    tx_chain(&gtx, short4, 1);
    tx_chain(&gtx, s2, 3);   /* and a good one afterwards */
    /* RX: header split over 12 one-byte buffers, then room for the frame;
     * then a first buffer shorter than the header (the frame is refused:
     * virtio 1.2 5.1.6.3.1), then normal buffers. */
    struct seg r12[13];
    for (int i = 0; i < 12; i++)
        r12[i] = (struct seg){ galloc(&grx, 1, 64), 1, VIRTQ_DESC_F_WRITE };
    r12[12] = (struct seg){ galloc(&grx, 2048, 64), 2048, VIRTQ_DESC_F_WRITE };
    rx_chain(&grx, r12, 13);
    snap(&gtx);
    snap(&grx);
    unsigned n = tx_pass(&gtx);
    CHECK(n == 7 && !gtx.port.dev.broken, "7 chains served, sender not stopped (%u)", n);
    CHECK(stat_get(&gtx.port.dev.q[TXQ].st.drops_invalid) == 4,
          "the 4 chains too short for header + Ethernet header dropped (%llu)",
          (unsigned long long)stat_get(&gtx.port.dev.q[TXQ].st.drops_invalid));
    int l = rx_take(&grx, got, sizeof(got), &rh);
    CHECK(l == (int)sizeof(f) && !memcmp(got, f, sizeof(f)) && rh.num_buffers == 1,
          "frame with a 12-piece TX header arrives intact in a 12-piece RX header (%d, %u)", l,
          rh.num_buffers);
    CHECK(stat_get(&grx.port.dev.q[RXQ].st.drops_full) == 2 && !grx.port.dev.broken,
          "the next two frames found no buffers and were dropped");
    check_confined(&grx, "split headers");
    /* First RX buffer shorter than the header. */
    for (unsigned sz = 1; sz < VIRTIO_NET_HDR_LEN; sz += 5) {
        guest_reset(&grx, feats(true));
        struct seg r[] = { { galloc(&grx, sz, 64), sz, VIRTQ_DESC_F_WRITE } };
        rx_chain(&grx, r, 1);
        rx_buffers(&grx, 1, 2048);
        tx_chain(&gtx, s2, 3);
        snap(&grx);
        uint64_t inv = stat_get(&grx.port.dev.q[RXQ].st.drops_invalid);
        tx_pass(&gtx);
        CHECK(stat_get(&grx.port.dev.q[RXQ].st.drops_invalid) == inv + 1 && !grx.port.dev.broken,
              "RX chain of %u bytes (< header) refused, receiver not stopped", sz);
        CHECK(rx_take(&grx, got, sizeof(got), &rh) == -1, "nothing delivered into it");
        check_confined(&grx, "RX first buffer shorter than the header");
        /* The refused chain stays at the head of the ring: the guest gets
         * nothing more until it replaces it. */
    }
    others_forward("split headers");
}

/* ---- CVE-2024-11614: checksum and GSO fields beyond the packet ----------- */

/* NULL if no field of a received header (l bytes of frame; l < 0: none
 * received) points beyond the frame, else which one does. */
static const char *header_beyond(const struct virtio_net_hdr *h, int l)
{
    if (l < 0)
        return NULL;
    size_t len = (size_t)l;
    if ((h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) &&
        (size_t)h->csum_start + h->csum_offset + 2 > len)
        return "csum_start + csum_offset beyond the frame";
    if (h->gso_type != VIRTIO_NET_HDR_GSO_NONE) {
        if (h->gso_type != 1 && h->gso_type != 4)
            return "a GSO type that was not negotiated";
        if (h->gso_size == 0)
            return "gso_size 0";
        if (h->hdr_len > len)
            return "hdr_len beyond the frame";
    }
    return NULL;
}

static void cve_2024_11614_offload_fields(void)
{
    printf("== cve_2024_11614_offload_fields\n");
    struct {
        const char *what;
        struct virtio_net_hdr h;
        bool arp;
    } cases[] = {
        { "csum_start at the end of the frame", { .flags = 1, .csum_start = 60, .csum_offset = 0 }, 0 },
        { "csum field one byte past the end", { .flags = 1, .csum_start = 58, .csum_offset = 1 }, 0 },
        { "csum_offset 0xffff", { .flags = 1, .csum_start = 14, .csum_offset = 0xffff }, 0 },
        { "csum_start and offset 0xffff", { .flags = 1, .csum_start = 0xffff, .csum_offset = 0xffff }, 0 },
        { "GSO TCPv4 with gso_size 0", { .flags = 1, .gso_type = 1, .hdr_len = 54, .gso_size = 0,
                                         .csum_start = 34, .csum_offset = 16 }, 0 },
        { "GSO TCPv4, hdr_len 0xffff, on a frame that is not TCP",
          { .flags = 1, .gso_type = 1, .hdr_len = 0xffff, .gso_size = 1000, .csum_start = 14,
            .csum_offset = 6 }, 1 },
        { "GSO TCPv4 without a checksum request", { .gso_type = 1, .hdr_len = 54, .gso_size = 8 }, 0 },
        { "GSO UDP (not offered)", { .flags = 1, .gso_type = 3, .gso_size = 8, .csum_start = 34,
                                     .csum_offset = 6 }, 0 },
        { "GSO type 5 (unknown)", { .flags = 1, .gso_type = 5, .gso_size = 8, .csum_start = 34,
                                    .csum_offset = 6 }, 0 },
        { "GSO TCPv4 | ECN", { .flags = 1, .gso_type = 0x81, .gso_size = 8, .csum_start = 34,
                               .csum_offset = 16 }, 0 },
    };
    /* The sender negotiated checksum and TSO offload.  Receivers take
     * neither (whatever is forwarded must be completed or segmented on the
     * way, where a field beyond the frame would make the device read or
     * write out of bounds), or both (the header would be passed on to a
     * guest as it is). */
    uint64_t tx_feats = feats(true) | 1ull << VIRTIO_NET_F_CSUM | 1ull << VIRTIO_NET_F_HOST_TSO4 |
                        1ull << VIRTIO_NET_F_HOST_TSO6;
    uint64_t rx_offload = 1ull << VIRTIO_NET_F_GUEST_CSUM | 1ull << VIRTIO_NET_F_GUEST_TSO4 |
                          1ull << VIRTIO_NET_F_GUEST_TSO6;
    for (unsigned k = 0; k < 2 * sizeof(cases) / sizeof(cases[0]); k++) {
        unsigned c = k / 2;
        uint64_t rx_feats = feats(true) | (k & 1 ? rx_offload : 0);
        guest_reset(&gtx, tx_feats);
        guest_reset(&grx, rx_feats);
        guest_reset(&gq, rx_feats);
        rx_buffers(&grx, 16, 2048);
        rx_buffers(&gq, 16, 2048);
        uint8_t f[60];
        make_frame(f, sizeof(f), MAC_BC, MAC_TX, (uint8_t)c);
        if (cases[c].arp) {
            f[12] = 0x08;
            f[13] = 0x06;
        } else {
            f[23] = 6;   /* an IPv4 header claiming TCP */
            f[14] = 0x45;
        }
        uint64_t h = store(&gtx, &cases[c].h, VIRTIO_NET_HDR_LEN, f, sizeof(f));
        struct seg s = { h, VIRTIO_NET_HDR_LEN + sizeof(f), 0 };
        tx_chain(&gtx, &s, 1);
        snap(&grx);
        snap(&gq);
        unsigned n = tx_pass(&gtx);
        CHECK(n == 1 && !gtx.port.dev.broken, "%s: served, sender not stopped", cases[c].what);
        /* Dropped, or (passed on or repaired) with every field inside the
         * frame the receiver gets: no receiver sees a field beyond it. */
        struct guest *rcv[2] = { &grx, &gq };
        for (int r = 0; r < 2; r++) {
            uint8_t got[4096];
            struct virtio_net_hdr rh;
            int l = rx_take(rcv[r], got, sizeof(got), &rh);
            const char *why = header_beyond(&rh, l);
            CHECK(!why, "%s, receiver %s offloads: %s (got %d bytes)", cases[c].what,
                  k & 1 ? "with" : "without", why ? why : "dropped or sane", l);
        }
        check_confined(&grx, cases[c].what);
        check_confined(&gq, cases[c].what);
    }
    others_forward("offload fields beyond the packet");
}

/* ---- indirect tables straddling two regions ------------------------------- */

static void indirect_straddling_regions(void)
{
    printf("== indirect_straddling_regions\n");
    uint8_t hdr[VIRTIO_NET_HDR_LEN] = { 0 }, f[100], got[4096];
    struct virtio_net_hdr rh;
    /* TX: a 4-entry table whose first two entries are the last 32 bytes of
     * region 0 and the rest the first bytes of region 1 (contiguous in
     * guest-physical space, not in the host's). */
    guest_reset(&gtx, feats(true));
    guest_reset(&grx, feats(true));
    switch_learn(&sw, MAC_RX, grx.port.index);
    rx_buffers(&grx, 8, 2048);
    make_frame(f, sizeof(f), MAC_RX, MAC_TX, 3);
    uint64_t h = store(&gtx, hdr, sizeof(hdr), f, sizeof(f));
    uint64_t t = GPA0 + REG - 32;
    struct virtq_desc tbl[4] = { { h, 6, VIRTQ_DESC_F_NEXT, 1 }, { h + 6, 6, VIRTQ_DESC_F_NEXT, 2 },
                                 { h + 12, 50, VIRTQ_DESC_F_NEXT, 3 }, { h + 62, 50, 0, 0 } };
    put(&gtx, t, tbl, sizeof(tbl));
    struct seg s = { t, sizeof(tbl), VIRTQ_DESC_F_INDIRECT };
    tx_chain(&gtx, &s, 1);
    snap(&gtx);
    snap(&grx);
    tx_pass(&gtx);
    int l = rx_take(&grx, got, sizeof(got), &rh);
    bool refused = gtx.port.dev.broken && l < 0;
    bool intact = !gtx.port.dev.broken && l == (int)sizeof(f) && !memcmp(got, f, sizeof(f));
    CHECK(refused || intact, "TX table across regions: refused (sender stopped) or read "
          "correctly from both (broken %d, got %d)", gtx.port.dev.broken, l);
    check_confined(&gtx, "TX indirect table across regions");
    check_confined(&grx, "TX indirect table across regions");
    /* A plain buffer across the same boundary is legal and must work. */
    guest_reset(&gtx, feats(true));
    uint64_t b = GPA0 + REG - 40;
    put(&gtx, b, hdr, sizeof(hdr));
    put(&gtx, b + sizeof(hdr), f, sizeof(f));
    struct seg s2 = { b, sizeof(hdr) + sizeof(f), 0 };
    tx_chain(&gtx, &s2, 1);
    tx_pass(&gtx);
    l = rx_take(&grx, got, sizeof(got), &rh);
    CHECK(!gtx.port.dev.broken && l == (int)sizeof(f) && !memcmp(got, f, sizeof(f)),
          "a buffer across the regions is forwarded intact (%d)", l);
    /* RX: the receiver's indirect table across the boundary. */
    guest_reset(&gtx, feats(true));
    guest_reset(&grx, feats(true));
    uint64_t rb = galloc(&grx, 2048, 64);
    struct virtq_desc rt[2] = { { rb, 1024, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1 },
                                { rb + 1024, 1024, VIRTQ_DESC_F_WRITE, 0 } };
    put(&grx, GPA0 + REG - 16, rt, sizeof(rt));
    allow(&grx, rb, 2048);
    struct seg rs = { GPA0 + REG - 16, sizeof(rt), VIRTQ_DESC_F_INDIRECT };
    post(rxvq(&grx), chain(rxvq(&grx), &grx.rx_desc, &rs, 1));
    h = store(&gtx, hdr, sizeof(hdr), f, sizeof(f));
    struct seg s3 = { h, sizeof(hdr) + sizeof(f), 0 };
    tx_chain(&gtx, &s3, 1);
    snap(&grx);
    tx_pass(&gtx);
    l = rx_take(&grx, got, sizeof(got), &rh);
    refused = grx.port.dev.broken && l < 0;
    intact = !grx.port.dev.broken && l >= 0;
    CHECK(refused || intact, "RX table across regions: refused or used correctly (broken %d)",
          grx.port.dev.broken);
    CHECK(!gtx.port.dev.broken, "the sender is not stopped by the receiver's table");
    check_confined(&grx, "RX indirect table across regions");
    others_forward("indirect tables across regions");
}

/* ---- DPDK ADD_MEM_REG checks ----------------------------------------------- */

static enum outcome add_reg(uint64_t gpa, uint64_t size, uint64_t uva, uint64_t off, int fd)
{
    struct vhost_user_mem_single m = { 0, { gpa, size, uva, off } };
    return cp_req(VHOST_USER_ADD_MEM_REG, &m, sizeof(m), &fd, 1);
}

static void add_mem_reg_checks(void)
{
    printf("== add_mem_reg_checks\n");
    long fds0 = fd_count(), maps0 = maps_count();
    cp_reset_memory();
    cp_open();
    CHECK(cp_negotiate(false), "session set up without a memory table");
    union vhost_user_payload r;
    cp_msg(VHOST_USER_GET_MAX_MEM_SLOTS, VHOST_USER_VERSION, NULL, 0, NULL, 0, &r);
    uint64_t slots = r.u64;
    CHECK(slots == VU_MAX_MEM_SLOTS, "GET_MAX_MEM_SLOTS says %llu", (unsigned long long)slots);
    CHECK(add_reg(0, CP_MEM, CP_UVA, 0, cp_memfd) == ACK, "a valid region added");
    CHECK(cp_rings(), "rings set up in it");
    int efd = eventfd(0, EFD_CLOEXEC), p[2];
    CHECK(pipe2(p, O_CLOEXEC) == 0, "pipe");
    long maps1 = maps_count(), fds1 = fd_count();
    struct {
        const char *what;
        uint64_t gpa, size, uva, off;
        int fd;
    } bad[] = {
        { "the same region again", 0, CP_MEM, CP_UVA, 0, cp_memfd },
        { "overlapping in guest-physical space", CP_MEM / 2, CP_MEM / 2, CP_UVA + 0x10000000, 0,
          cp_memfd },
        { "overlapping in user address", 0x10000000, 0x1000, CP_UVA + CP_MEM - 0x1000, 0,
          cp_memfd },
        { "zero-sized", 0x10000000, 0, CP_UVA + 0x10000000, 0, cp_memfd },
        { "guest-physical wrapping 2^64", 0xfffffffffffff000ull, 0x2000, CP_UVA + 0x10000000, 0,
          cp_memfd },
        { "user address wrapping 2^64", 0x10000000, 0x2000, 0xfffffffffffff000ull, 0, cp_memfd },
        { "mmap_offset + size wrapping", 0x10000000, 0x2000, CP_UVA + 0x10000000,
          0xfffffffffffff000ull, cp_memfd },
        { "beyond the end of its file", 0x10000000, 0x2000, CP_UVA + 0x10000000, CP_MEM - 0x1000,
          cp_memfd },
        { "backed by an eventfd", 0x10000000, 0x1000, CP_UVA + 0x10000000, 0, efd },
        { "backed by a pipe", 0x10000000, 0x1000, CP_UVA + 0x10000000, 0, p[0] },
        /* Found by fuzz_vu_msg: a ring aligned in frontend addresses was
         * misaligned in ours when the region's offset was not. */
        { "with an odd file offset", 0x10000000, 0x1000, CP_UVA + 0x10000000, 0x1001, cp_memfd },
        { "with a user address not 16-byte aligned", 0x10000000, 0x1000, CP_UVA + 0x10000008, 0,
          cp_memfd },
        { "with a guest address not 16-byte aligned", 0x10000004, 0x1000, CP_UVA + 0x10000000, 0,
          cp_memfd },
    };
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        enum outcome o = add_reg(bad[i].gpa, bad[i].size, bad[i].uva, bad[i].off, bad[i].fd);
        CHECK(o == NACK && cp.dev.mem.n == 1, "ADD_MEM_REG %s refused (%d, %u regions)",
              bad[i].what, o, cp.dev.mem.n);
    }
    CHECK(maps_count() == maps1 && fd_count() == fds1, "nothing mapped or kept by the refusals");
    cp_forward("after refused regions");
    /* Fill every slot, then one more. */
    unsigned added = 1;
    for (unsigned i = 1; i < slots; i++)
        added += add_reg(0x10000000ull * i, 0x1000, CP_UVA + 0x10000000ull * i, 0x1000 * (i % 16),
                         cp_memfd) == ACK;
    CHECK(added == slots && cp.dev.mem.n == slots, "%u regions fill the %llu slots", added,
          (unsigned long long)slots);
    CHECK(add_reg(0x900000000ull, 0x1000, CP_UVA + 0x900000000ull, 0, cp_memfd) == NACK &&
              cp.dev.mem.n == slots, "one more than the slots refused");
    cp_forward("with every slot used");
    /* Removing: one that is not there fails, one that is goes. */
    struct vhost_user_mem_single m = { 0, { 0x123000, 0x1000, CP_UVA + 0x123000, 0 } };
    CHECK(cp_req(VHOST_USER_REM_MEM_REG, &m, sizeof(m), NULL, 0) == NACK, "REM_MEM_REG of an "
          "unknown region refused");
    m.region = (struct vhost_user_mem_region){ 0x10000000ull * 5, 0x1000, CP_UVA + 0x10000000ull * 5,
                                               0x5000 };
    CHECK(cp_req(VHOST_USER_REM_MEM_REG, &m, sizeof(m), NULL, 0) == ACK &&
              cp.dev.mem.n == slots - 1, "REM_MEM_REG of a region removes it");
    CHECK(add_reg(0x900000000ull, 0x1000, CP_UVA + 0x900000000ull, 0, cp_memfd) == ACK,
          "its slot can be used again");
    /* Removing the region the rings are in stops them instead of leaving
     * them pointing at unmapped memory. */
    m.region = (struct vhost_user_mem_region){ 0, CP_MEM, CP_UVA, 0 };
    CHECK(cp_req(VHOST_USER_REM_MEM_REG, &m, sizeof(m), NULL, 0) == ACK, "ring region removed");
    CHECK(!dev_queue_ready(&cp.dev, &cp.dev.q[TXQ]) && !cp.dev.q[TXQ].vq.desc,
          "rings in removed memory are no longer served");
    close(efd);
    close(p[0]);
    close(p[1]);
    cp_close();
    CHECK(fd_count() == fds0 && maps_count() == maps0, "all fds and mappings gone (%ld -> %ld, "
          "%ld -> %ld)", fds0, fd_count(), maps0, maps_count());
    others_forward("ADD_MEM_REG checks");
}

/* ---- CVE-2019-3900: a guest keeping its ring full forever ---------------- */

static volatile int refill_stop;

/* The hostile guest: whatever the device completes is made available
 * again at once, so its TX ring never has fewer than RING entries, and
 * the device is kicked whenever it asks for kicks. */
static void *refill(void *arg)
{
    struct vqueue *q = arg;
    struct vq *vq = &q->vq;
    uint16_t last = 0;
    while (!__atomic_load_n(&refill_stop, __ATOMIC_ACQUIRE)) {
        uint16_t used = __atomic_load_n(&vq->used->idx, __ATOMIC_ACQUIRE);
        if (used != last || !last) {
            __atomic_store_n(&vq->avail->idx, (uint16_t)(used + vq->num), __ATOMIC_RELEASE);
            __atomic_thread_fence(__ATOMIC_SEQ_CST);
            uint64_t one = 1;
            if (!(__atomic_load_n(&vq->used->flags, __ATOMIC_RELAXED) & VIRTQ_USED_F_NO_NOTIFY) &&
                write(q->kickfd, &one, sizeof(one)) < 0 && errno != EAGAIN)
                perror("kick");
            last = used;
        }
        sched_yield();
    }
    return NULL;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(int ms)
{
    struct timespec ts = { 0, ms * 1000000L };
    nanosleep(&ts, NULL);
}

/* The hostile guest's TX ring: bigger than the per-pass weight, so that
 * only the weight can end a pass while the guest keeps it full. */
#define FLOOD_RING 4096u
#define FLOOD_DESC 0x10000u
#define FLOOD_AVAIL 0x20000u
#define FLOOD_USED 0x23000u
#define FLOOD_DATA 0x30000u
#define WEIGHT 256u

static void cve_2019_3900_ring_full_forever(void)
{
    printf("== cve_2019_3900_ring_full_forever\n");
    /* The flood goes to the hostile guest's own MAC: the switch drops it
     * after the TX ring has been served, so only the serving costs. */
    guest_reset(&gtx, feats(true));
    guest_reset(&gp, feats(true));
    guest_reset(&gq, feats(true));
    ring_setup_n(&gtx, TXQ, FLOOD_RING, FLOOD_DESC, FLOOD_AVAIL, FLOOD_USED);
    gtx.next = GPA0 + FLOOD_DATA;
    switch_learn(&sw, MAC_TX, gtx.port.index);
    switch_learn(&sw, MAC_Q, gq.port.index);
    uint8_t hdr[VIRTIO_NET_HDR_LEN] = { 0 }, f[64], g[100];
    make_frame(f, sizeof(f), MAC_TX, MAC_TX, 9);
    uint64_t h = store(&gtx, hdr, sizeof(hdr), f, sizeof(f));
    struct vq *tx = txvq(&gtx);
    for (unsigned i = 0; i < FLOOD_RING; i++) {
        tx->desc[i] = (struct virtq_desc){ h, sizeof(hdr) + sizeof(f), 0, 0 };
        tx->avail->ring[i] = (uint16_t)i;
    }
    tx->avail->idx = (uint16_t)FLOOD_RING;
    rx_buffers(&gq, 4, 2048);

    if (workers_init(1) < 0) {
        CHECK(0, "worker set up");
        return;
    }
    struct vqueue *qa = &gtx.port.dev.q[TXQ], *qb = &gp.port.dev.q[TXQ];
    worker_assign_queue(qa);
    worker_assign_queue(qb);
    workers_commit();
    struct vqueue *qs[2] = { qa, qb };
    for (int i = 0; i < 2; i++) {
        pthread_rwlock_wrlock(&qs[i]->dev->lock);
        qs[i]->kickfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        worker_watch_queue(qs[i]);
        pthread_rwlock_unlock(&qs[i]->dev->lock);
    }
    trace_start(worker_trace_rings(), workers_count());
    refill_stop = 0;
    pthread_t th;
    pthread_create(&th, NULL, refill, qa);
    workers_start();
    uint64_t one = 1;
    if (write(qa->kickfd, &one, 8) != 8)
        perror("kick");
    /* Until the flood is on (the worker calibrates its timer first). */
    for (double t = now_s(); stat_get(&qa->st.packets) < 8 * WEIGHT && now_s() - t < 5;)
        sleep_ms(1);
    /* p, on the same worker, sends one frame to q. */
    make_frame(g, sizeof(g), MAC_Q, MAC_P, 10);
    struct seg s = { store(&gp, hdr, sizeof(hdr), g, sizeof(g)), sizeof(hdr) + sizeof(g), 0 };
    tx_chain(&gp, &s, 1);
    if (write(qb->kickfd, &one, 8) != 8)
        perror("kick");
    double t0 = now_s(), waited = 0;
    while (__atomic_load_n(&rxvq(&gq)->used->idx, __ATOMIC_ACQUIRE) == 0 &&
           (waited = now_s() - t0) < 2)
        sleep_ms(1);
    sleep_ms(5);   /* the flood goes on afterwards */
    trace_stop();
    struct trace_rec *recs;
    size_t nrec = trace_snapshot(&worker_trace_rings()[0], &recs);
    __atomic_store_n(&refill_stop, 1, __ATOMIC_RELEASE);
    pthread_join(th, NULL);
    workers_stop();
    for (int i = 0; i < 2; i++) {
        close(qs[i]->kickfd);
        qs[i]->kickfd = -1;
        qs[i]->worker = NULL;
    }

    uint8_t got[2048];
    struct virtio_net_hdr rh;
    int l = rx_take(&gq, got, sizeof(got), &rh);
    CHECK(l == (int)sizeof(g) && !memcmp(got, g, sizeof(g)),
          "p's frame reached q while the flood went on (%d bytes after %.1f ms)", l, waited * 1000);
    CHECK(!gtx.port.dev.broken, "the flooding guest is served, not stopped");
    /* From the worker's trace: the flooding queue was served in passes of
     * at most the weight, before and after p's frame; after p's kick woke
     * the worker, p was served before the flood got more than one pass. */
    size_t kick = nrec;
    unsigned full_before = 0, after = 0, over = 0, a_between = 0, max = 0;
    bool b_served = false;
    for (size_t i = 0; i < nrec; i++) {
        const struct trace_rec *t = &recs[i];
        if (t->event == TR_TX_END && t->port == gtx.port.index) {
            over += t->arg > WEIGHT;
            max = t->arg > max ? t->arg : max;
            if (kick == nrec)
                full_before += t->arg == WEIGHT;
            else if (!b_served)
                a_between++;
            else
                after++;
        }
        if (t->event == TR_WAKE_KICK && t->port == gp.port.index && kick == nrec)
            kick = i;
        if (t->event == TR_TX_END && t->port == gp.port.index && t->arg > 0 && kick < nrec)
            b_served = true;
    }
    free(recs);
    CHECK(full_before >= 3 && after >= 1, "the ring stayed full: %u passes of %u frames before "
          "p's frame, %u after", full_before, WEIGHT, after);
    CHECK(over == 0, "no pass over the flooding ring took more than %u frames (largest %u)",
          WEIGHT, max);
    CHECK(kick < nrec && b_served && a_between <= 1, "p was served within one pass of the flood "
          "after its kick (%u passes of the flood in between)", a_between);
    others_forward("ring full forever");
}

/* ---- bursts mixing good and hostile chains -------------------------------- */

/*
 * The datapath takes a ring's chains a burst at a time.  A hostile chain in
 * the middle of a burst must stop only its device, and the good chains
 * before it must be delivered and completed exactly once; on the receiving
 * side, a hostile RX chain stops the receiver after the frames that found
 * good buffers, and the sender is not harmed.
 */
struct bad_chain {
    const char *what;
    struct seg s[2];
    unsigned n;
};

static void mixed_bursts(void)
{
    printf("== mixed_bursts\n");
    const uint64_t out = GPA0 + 2 * REG + 0x1000;   /* past guest memory */
    const struct bad_chain tx_bad[] = {
        { "desc outside memory", { { out, 100, 0 } }, 1 },
        { "desc straddling the end of memory", { { GPA0 + 2 * REG - 50, 100, 0 } }, 1 },
        { "device-writable desc on TX", { { GPA0 + DATA, 100, VIRTQ_DESC_F_WRITE } }, 1 },
        { "nested indirect", { { GPA0 + DATA, 32, VIRTQ_DESC_F_INDIRECT } }, 1 },
    };
    uint8_t hdr[VIRTIO_NET_HDR_LEN] = { 0 }, f[5][200], got[4096];
    struct virtio_net_hdr rh;
    for (unsigned k = 0; k < sizeof(tx_bad) / sizeof(tx_bad[0]); k++) {
        guest_reset(&gtx, feats(true));
        guest_reset(&grx, feats(true));
        switch_learn(&sw, MAC_RX, grx.port.index);
        rx_buffers(&grx, 8, 2048);
        /* An indirect table whose entry is itself indirect. */
        uint64_t t = galloc(&gtx, 32, 16);
        struct virtq_desc tbl[2] = { { GPA0 + DATA, 32, VIRTQ_DESC_F_INDIRECT, 0 }, { 0, 0, 0, 0 } };
        put(&gtx, t, tbl, sizeof(tbl));
        struct bad_chain b = tx_bad[k];
        if (b.s[0].flags & VIRTQ_DESC_F_INDIRECT)
            b.s[0].gpa = t;
        for (int i = 0; i < 5; i++) {
            make_frame(f[i], sizeof(f[i]), MAC_RX, MAC_TX, (uint8_t)(40 * k + i));
            struct seg s = { store(&gtx, hdr, sizeof(hdr), f[i], sizeof(f[i])),
                             sizeof(hdr) + sizeof(f[i]), 0 };
            tx_chain(&gtx, &s, 1);
            if (i == 2)
                tx_chain(&gtx, b.s, b.n);
        }
        snap(&gtx);
        snap(&grx);
        unsigned n = tx_pass(&gtx);
        bool order = true;
        for (int i = 0; i < 3; i++)
            order &= rx_take(&grx, got, sizeof(got), &rh) == (int)sizeof(f[i]) &&
                     !memcmp(got, f[i], sizeof(f[i]));
        CHECK(n == 3 && order && rx_take(&grx, got, sizeof(got), &rh) < 0,
              "TX %s: the 3 frames before it delivered once, in order, nothing after (n %u)",
              b.what, n);
        CHECK(txvq(&gtx)->used->idx == 3 && gtx.port.dev.broken && !grx.port.dev.broken,
              "TX %s: those 3 completed, the sender stopped, the receiver not", b.what);
        check_confined(&gtx, b.what);
        check_confined(&grx, b.what);
    }

    /* RX: two good buffers, then a chain the device may not write into. */
    const struct bad_chain rx_bad[] = {
        { "RX buffer outside memory", { { out, 2048, VIRTQ_DESC_F_WRITE } }, 1 },
        { "readable desc on RX", { { GPA0 + DATA, 2048, 0 } }, 1 },
    };
    for (unsigned k = 0; k < sizeof(rx_bad) / sizeof(rx_bad[0]); k++) {
        guest_reset(&gtx, feats(true));
        guest_reset(&grx, feats(true));
        switch_learn(&sw, MAC_RX, grx.port.index);
        rx_buffers(&grx, 2, 2048);
        post(rxvq(&grx), chain(rxvq(&grx), &grx.rx_desc, rx_bad[k].s, rx_bad[k].n));
        rx_buffers(&grx, 2, 2048);
        for (int i = 0; i < 4; i++) {
            make_frame(f[i], sizeof(f[i]), MAC_RX, MAC_TX, (uint8_t)(90 + 10 * k + i));
            struct seg s = { store(&gtx, hdr, sizeof(hdr), f[i], sizeof(f[i])),
                             sizeof(hdr) + sizeof(f[i]), 0 };
            tx_chain(&gtx, &s, 1);
        }
        snap(&gtx);
        snap(&grx);
        unsigned n = tx_pass(&gtx);
        bool order = true;
        for (int i = 0; i < 2; i++)
            order &= rx_take(&grx, got, sizeof(got), &rh) == (int)sizeof(f[i]) &&
                     !memcmp(got, f[i], sizeof(f[i]));
        CHECK(n == 4 && txvq(&gtx)->used->idx == 4 && !gtx.port.dev.broken,
              "%s: the sender's 4 chains all completed, the sender unharmed", rx_bad[k].what);
        CHECK(order && rx_take(&grx, got, sizeof(got), &rh) < 0 && grx.port.dev.broken,
              "%s: the 2 frames before it delivered once, then the receiver stopped",
              rx_bad[k].what);
        check_confined(&gtx, rx_bad[k].what);
        check_confined(&grx, rx_bad[k].what);
    }
    others_forward("mixed bursts");
}

/* ---- packed rings: hostile drivers -------------------------------------------- */

/*
 * A packed sender's TX ring through the datapath: good frames, then the
 * hostile part, then good frames again.  The good frames before it are
 * delivered once, in order, and their used descriptors written; a
 * hostile chain that breaks the ring stops only its device.
 */
static uint8_t pk_f[8][200];

/* Makes n good frames of gtx available, the next IDs; their bytes are in
 * pk_f. */
static void pk_tx_frames(unsigned n, uint8_t seed)
{
    for (unsigned i = 0; i < n; i++) {
        make_frame(pk_f[i], sizeof(pk_f[i]), MAC_RX, MAC_TX, (uint8_t)(seed + i));
        pk_tx_frame(&gtx, pk_f[i], sizeof(pk_f[i]));
    }
}

/* Resets gtx (packed) and grx (split, 8 buffers) and makes n good frames
 * of gtx available (IDs from 0). */
static void pk_tx_begin(unsigned n, uint8_t seed)
{
    guest_reset(&gtx, pfeats());
    guest_reset(&grx, feats(true));
    switch_learn(&sw, MAC_RX, grx.port.index);
    rx_buffers(&grx, 8, 2048);
    pk_tx_frames(n, seed);
}

/* After a pass: frames first..first+n-1 of pk_f arrived, in order, and
 * nothing else; the sender broken or not as expected, the receiver not. */
static void pk_tx_expect(const char *what, unsigned first, unsigned n, unsigned served,
                         unsigned got_n, bool broken)
{
    uint8_t got[4096];
    struct virtio_net_hdr rh;
    bool order = true;
    for (unsigned i = first; i < first + n; i++)
        order &= rx_take(&grx, got, sizeof(got), &rh) == (int)sizeof(pk_f[i]) &&
                 !memcmp(got, pk_f[i], sizeof(pk_f[i]));
    CHECK(got_n == served && order && rx_take(&grx, got, sizeof(got), &rh) < 0,
          "%s: %u frames served, the %u good ones delivered once, in order, nothing else "
          "(served %u)", what, served, n, got_n);
    bool sb = gtx.port.dev.broken;
    CHECK(sb == broken && !grx.port.dev.broken, "%s: the sender %s, the receiver not (%s)", what,
          broken ? "stopped" : "not stopped", vq_broken(txvq(&gtx)) ? vq_broken(txvq(&gtx)) : "-");
    check_confined(&gtx, what);
    check_confined(&grx, what);
}

static void packed_wrap_counter_lie(void)
{
    printf("== packed_wrap_counter_lie\n");
    /* Descriptor 2 with flags that lie about its lap (both bits set, as a
     * used descriptor of lap 1 has): the ring stalls there, unbroken. */
    static const uint16_t lies[] = { VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_USED, 0,
                                     VIRTQ_DESC_F_USED };
    for (unsigned k = 0; k < 3; k++) {
        pk_tx_begin(4, (uint8_t)(10 * k));
        struct virtq_pdesc *r = txvq(&gtx)->pdesc;
        uint16_t real = r[2].flags;
        r[2].flags = lies[k];
        snap(&gtx);
        snap(&grx);
        unsigned n = tx_pass(&gtx);
        pk_tx_expect("packed flags hiding descriptor 2", 0, 2, 2, n, false);
        CHECK(pk_tx_used(&gtx, 0, 1) && pk_tx_used(&gtx, 1, 1) && pk_tx_no_more_used(&gtx) &&
              r[2].flags == lies[k] && r[2].id == 2,
              "packed flags 0x%04x: used descriptors for the 2 served, none after", lies[k]);
        /* The driver sets the right flags: the rest goes out. */
        r[2].flags = real;
        snap(&gtx);
        snap(&grx);
        n = tx_pass(&gtx);
        pk_tx_expect("packed flags then corrected", 2, 2, 2, n, false);
        CHECK(pk_tx_used(&gtx, 2, 1) && pk_tx_used(&gtx, 3, 1) && pk_tx_no_more_used(&gtx),
              "packed flags corrected: used descriptors for the other 2");
    }
    /* Flags offering a descriptor the driver never filled: checked like
     * any other.  All zero but its flags, it names buffer ID 0, in flight. */
    pk_tx_begin(2, 40);
    struct virtq_pdesc *r = txvq(&gtx)->pdesc;
    r[2] = (struct virtq_pdesc){ 0, 0, 0, VIRTQ_DESC_F_AVAIL };
    snap(&gtx);
    snap(&grx);
    unsigned n = tx_pass(&gtx);
    pk_tx_expect("packed unfilled descriptor offered (ID 0 in flight)", 0, 2, 2, n, true);
    /* With IDs 5 and 6 before it, it is an empty chain (dropped as too
     * short, completed); then one pointing outside guest memory. */
    pk_tx_begin(0, 0);
    gtx.ptx.id = 5;
    pk_tx_frames(2, 45);
    r[2] = (struct virtq_pdesc){ 0, 0, 0, VIRTQ_DESC_F_AVAIL };
    r[3] = (struct virtq_pdesc){ GPA0 + 2 * REG + 0x1000, 100, 3, VIRTQ_DESC_F_AVAIL };
    snap(&gtx);
    snap(&grx);
    n = tx_pass(&gtx);
    pk_tx_expect("packed unfilled descriptors offered", 0, 2, 3, n, true);
    CHECK(stat_get(&gtx.port.dev.q[TXQ].st.drops_invalid) == 1 && pk_tx_used(&gtx, 5, 1) &&
          pk_tx_used(&gtx, 6, 1) && pk_tx_used(&gtx, 0, 1) && pk_tx_no_more_used(&gtx),
          "packed: the empty chain dropped and completed, nothing after the bad one");
    others_forward("packed wrap counter lies");
}

static void packed_id_beyond_ring(void)
{
    printf("== packed_id_beyond_ring\n");
    static const uint16_t ids[] = { RING, RING + 1, 0x7fff, 0xffff };
    for (unsigned k = 0; k < 4; k++) {
        pk_tx_begin(2, (uint8_t)(50 + k));
        uint8_t hdr[VIRTIO_NET_HDR_LEN] = { 0 };
        /* Two descriptors, the ID beyond the ring in the last (which is the
         * one that counts); then a good frame. */
        uint64_t h = store(&gtx, hdr, sizeof(hdr), pk_f[0], sizeof(pk_f[0]));
        struct seg s[2] = { { h, 12, 0 }, { h + 12, sizeof(pk_f[0]), 0 } };
        pk_tx_chain(&gtx, s, 2, ids[k]);
        pk_tx_frame(&gtx, pk_f[0], sizeof(pk_f[0]));
        snap(&gtx);
        snap(&grx);
        unsigned n = tx_pass(&gtx);
        pk_tx_expect("packed TX buffer ID beyond the ring", 0, 2, 2, n, true);
        CHECK(pk_tx_used(&gtx, 0, 1) && pk_tx_used(&gtx, 1, 1) && pk_tx_no_more_used(&gtx),
              "packed TX ID 0x%x: the 2 before it completed, nothing after", ids[k]);
    }
    /* RX: a packed receiver's third buffer names an ID beyond its ring. */
    guest_reset(&gtx, feats(true));
    guest_reset(&grx, pfeats());
    switch_learn(&sw, MAC_RX, grx.port.index);
    pk_rx_buffers(&grx, 2, 2048);
    struct seg bad = { galloc(&grx, 2048, 64), 2048, VIRTQ_DESC_F_WRITE };
    allow(&grx, bad.gpa, bad.len);
    pk_put_chain(rxvq(&grx), &grx.prx, &bad, 1, RING + 5);
    pk_rx_buffers(&grx, 2, 2048);
    uint8_t hdr[VIRTIO_NET_HDR_LEN] = { 0 }, got[4096];
    for (int i = 0; i < 4; i++) {
        make_frame(pk_f[i], sizeof(pk_f[i]), MAC_RX, MAC_TX, (uint8_t)(60 + i));
        struct seg s = { store(&gtx, hdr, sizeof(hdr), pk_f[i], sizeof(pk_f[i])),
                         sizeof(hdr) + sizeof(pk_f[i]), 0 };
        tx_chain(&gtx, &s, 1);
    }
    snap(&gtx);
    snap(&grx);
    unsigned n = tx_pass(&gtx);
    struct virtio_net_hdr rh;
    bool order = true;
    for (int i = 0; i < 2; i++)
        order &= pk_rx_take(&grx, got, sizeof(got), &rh) == (int)sizeof(pk_f[i]) &&
                 !memcmp(got, pk_f[i], sizeof(pk_f[i]));
    CHECK(n == 4 && txvq(&gtx)->used->idx == 4 && !gtx.port.dev.broken,
          "packed RX ID beyond the ring: the sender's 4 chains completed, the sender unharmed");
    CHECK(order && pk_rx_take(&grx, got, sizeof(got), &rh) == -1 && grx.port.dev.broken,
          "packed RX ID beyond the ring: 2 frames delivered, then the receiver stopped (%s)",
          vq_broken(rxvq(&grx)) ? vq_broken(rxvq(&grx)) : "-");
    check_confined(&gtx, "packed RX ID beyond the ring");
    check_confined(&grx, "packed RX ID beyond the ring");
    others_forward("packed buffer IDs beyond the ring");
}

static void packed_id_reused_in_flight(void)
{
    printf("== packed_id_reused_in_flight\n");
    /* IDs 0 and 1, then 1 again while the first 1 is in flight (one
     * burst), then a good frame. */
    pk_tx_begin(2, 70);
    gtx.ptx.id = 1;
    pk_tx_frame(&gtx, pk_f[0], sizeof(pk_f[0]));
    pk_tx_frame(&gtx, pk_f[1], sizeof(pk_f[1]));
    snap(&gtx);
    snap(&grx);
    unsigned n = tx_pass(&gtx);
    pk_tx_expect("packed ID reused in flight", 0, 2, 2, n, true);
    CHECK(pk_tx_used(&gtx, 0, 1) && pk_tx_used(&gtx, 1, 1) && pk_tx_no_more_used(&gtx),
          "packed ID reused: the 2 before it completed once, nothing after");
    /* The same ID in a later pass, after its used descriptor went out, is
     * fine: IDs are reused once completed. */
    pk_tx_begin(2, 80);
    n = tx_pass(&gtx);
    gtx.ptx.id = 0;
    uint8_t got[4096];
    struct virtio_net_hdr rh;
    rx_take(&grx, got, sizeof(got), &rh);
    rx_take(&grx, got, sizeof(got), &rh);
    pk_tx_frame(&gtx, pk_f[0], sizeof(pk_f[0]));
    pk_tx_frame(&gtx, pk_f[1], sizeof(pk_f[1]));
    snap(&gtx);
    snap(&grx);
    n += tx_pass(&gtx);
    pk_tx_expect("packed IDs reused after completion", 0, 2, 4, n, false);
    others_forward("packed ID reused in flight");
}

static void packed_chain_wraps(void)
{
    printf("== packed_chain_wraps\n");
    /* A frame in 3 descriptors at 254, 255 and 0, then one at 1: legal. */
    pk_tx_begin(0, 0);
    pk_start_tx(&gtx, RING - 2, true);
    uint8_t hdr[VIRTIO_NET_HDR_LEN] = { 0 };
    make_frame(pk_f[0], sizeof(pk_f[0]), MAC_RX, MAC_TX, 90);
    make_frame(pk_f[1], sizeof(pk_f[1]), MAC_RX, MAC_TX, 91);
    uint64_t h = store(&gtx, hdr, sizeof(hdr), pk_f[0], sizeof(pk_f[0]));
    struct seg s3[3] = { { h, 12, 0 }, { h + 12, 100, 0 }, { h + 112, sizeof(pk_f[0]) - 100, 0 } };
    pk_tx_chain(&gtx, s3, 3, 7);
    pk_tx_frame(&gtx, pk_f[1], sizeof(pk_f[1]));
    CHECK(txvq(&gtx)->pdesc[0].flags == VIRTQ_DESC_F_USED && gtx.ptx.pos == 2 && !gtx.ptx.wrap,
          "packed: test chain runs into lap 0");
    snap(&gtx);
    snap(&grx);
    unsigned n = tx_pass(&gtx);
    pk_tx_expect("packed chain past the ring end", 0, 2, 2, n, false);
    CHECK(pk_tx_used(&gtx, 7, 3) && pk_tx_used(&gtx, 0, 1) && pk_tx_no_more_used(&gtx),
          "packed chain past the end: used descriptors at 254 (lap 1) and 1 (lap 0)");
    CHECK(vq_get_base(txvq(&gtx)) == virtq_packed_state(2, 0, 2, 0),
          "packed chain past the end: both positions at 2, wrap counters 0");
    /* A chain longer than the ring: after two good frames (0 and 1,
     * completed), NEXT on every descriptor from 2 round to 1 and on to 2
     * again. */
    pk_tx_begin(2, 92);
    snap(&gtx);
    snap(&grx);
    n = tx_pass(&gtx);
    pk_tx_expect("packed: two frames before the long chain", 0, 2, 2, n, false);
    struct virtq_pdesc *r = txvq(&gtx)->pdesc;
    for (unsigned i = 2; i < RING + 2; i++) {
        uint16_t fl = (uint16_t)(VIRTQ_DESC_F_NEXT | pk_avail_flags(i < RING));
        r[i % RING] = (struct virtq_pdesc){ GPA0 + DATA, 12, 5, fl };
    }
    snap(&gtx);
    snap(&grx);
    n = tx_pass(&gtx);
    pk_tx_expect("packed chain longer than the ring", 0, 0, 0, n, true);
    others_forward("packed chains past the ring end");
}

static void packed_indirect(void)
{
    printf("== packed_indirect\n");
    /* A table of 4 whose first two entries end region 0 and the last two
     * begin region 1 (contiguous in guest-physical space only). */
    pk_tx_begin(1, 100);
    uint8_t hdr[VIRTIO_NET_HDR_LEN] = { 0 };
    make_frame(pk_f[1], sizeof(pk_f[1]), MAC_RX, MAC_TX, 101);
    uint64_t h = store(&gtx, hdr, sizeof(hdr), pk_f[1], sizeof(pk_f[1]));
    uint64_t t = GPA0 + REG - 32;
    struct virtq_pdesc tbl[4] = { { h, 6, 0, 0 }, { h + 6, 6, 0, 0 }, { h + 12, 100, 0, 0 },
                                  { h + 112, sizeof(pk_f[1]) - 100, 0, 0 } };
    put(&gtx, t, tbl, sizeof(tbl));
    struct seg s = { t, sizeof(tbl), VIRTQ_DESC_F_INDIRECT };
    pk_tx_chain(&gtx, &s, 1, 1);
    snap(&gtx);
    snap(&grx);
    unsigned n = tx_pass(&gtx);
    uint8_t got[4096];
    struct virtio_net_hdr rh;
    int l1 = rx_take(&grx, got, sizeof(got), &rh);
    bool first = l1 == (int)sizeof(pk_f[0]) && !memcmp(got, pk_f[0], sizeof(pk_f[0]));
    int l2 = rx_take(&grx, got, sizeof(got), &rh);
    bool refused = gtx.port.dev.broken && l2 < 0 && n == 1;
    bool intact = !gtx.port.dev.broken && n == 2 && l2 == (int)sizeof(pk_f[1]) &&
                  !memcmp(got, pk_f[1], sizeof(pk_f[1]));
    CHECK(first && (refused || intact), "packed TX table across regions: refused (sender "
          "stopped) or read correctly from both (broken %d, served %u, got %d)",
          gtx.port.dev.broken, n, l2);
    CHECK(!grx.port.dev.broken, "packed TX table across regions: the receiver not stopped");
    check_confined(&gtx, "packed indirect table across regions");
    check_confined(&grx, "packed indirect table across regions");
    /* Nested: an entry of the table is itself indirect; then the table
     * inside a chain, with NEXT, misaligned, of a bad length, too long. */
    struct {
        const char *what;
        uint64_t addr;
        uint32_t len;
        uint16_t flags;
        bool in_chain;
    } bad[] = {
        { "packed nested indirect table", 0, 32, VIRTQ_DESC_F_INDIRECT, false },
        { "packed indirect inside a chain", 0, 32, VIRTQ_DESC_F_INDIRECT, true },
        { "packed indirect with NEXT", 0, 32, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, false },
        { "packed indirect table misaligned", 8, 32, VIRTQ_DESC_F_INDIRECT, false },
        { "packed indirect table length 40", 0, 40, VIRTQ_DESC_F_INDIRECT, false },
        { "packed indirect table of 257", 0, 257 * 16, VIRTQ_DESC_F_INDIRECT, false },
        { "packed indirect table outside memory", GPA0 + 2 * REG, 32, VIRTQ_DESC_F_INDIRECT,
          false },
    };
    for (unsigned k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        pk_tx_begin(2, (uint8_t)(110 + 3 * k));
        uint64_t tt = galloc(&gtx, 257 * 16, 16);
        struct virtq_pdesc nt[2] = { { GPA0 + DATA, 12, 0, 0 }, { tt, 32, 0, 0 } };
        if (k == 0)
            nt[1].flags = VIRTQ_DESC_F_INDIRECT;
        put(&gtx, tt, nt, sizeof(nt));
        uint64_t a = bad[k].addr >= GPA0 ? bad[k].addr : tt + bad[k].addr;
        struct seg sb[2] = { { GPA0 + DATA, 12, 0 }, { a, bad[k].len, VIRTQ_DESC_F_INDIRECT } };
        uint16_t at = gtx.ptx.pos;
        if (bad[k].in_chain) {
            pk_tx_chain(&gtx, sb, 2, 2);
        } else {
            pk_tx_chain(&gtx, &sb[1], 1, 2);
            txvq(&gtx)->pdesc[at].flags |= bad[k].flags & VIRTQ_DESC_F_NEXT;
        }
        pk_tx_frame(&gtx, pk_f[0], sizeof(pk_f[0]));
        snap(&gtx);
        snap(&grx);
        n = tx_pass(&gtx);
        pk_tx_expect(bad[k].what, 0, 2, 2, n, true);
    }
    others_forward("packed indirect tables");
}

static void packed_event_outside_memory(void)
{
    printf("== packed_event_outside_memory\n");
    /* Event structures just past either region (in the PROT_NONE fence),
     * far away, or wrapping: the ring does not map and is not served. */
    static const struct {
        const char *what;
        uint64_t drv, dev;
    } c[] = {
        { "driver event structure just past region 0", UVA0 + REG, UVA0 + TX_USED },
        { "device event structure just past region 1", UVA0 + TX_AVAIL, UVA1 + REG },
        { "device event structure below region 0", UVA0 + TX_AVAIL, UVA0 - 4 },
        { "driver event structure at 2^64 - 4", 0xfffffffffffffffcull, UVA0 + TX_USED },
    };
    for (unsigned k = 0; k < sizeof(c) / sizeof(c[0]); k++) {
        pk_tx_begin(2, (uint8_t)(130 + k));
        bool mapped = ring_try(&gtx, TXQ, RING, UVA0 + TX_DESC, c[k].drv, c[k].dev);
        struct vqueue *q = &gtx.port.dev.q[TXQ];
        CHECK(!mapped && !vq_mapped(&q->vq) && !dev_queue_ready(&gtx.port.dev, q),
              "packed %s: the ring does not map", c[k].what);
        snap(&gtx);
        snap(&grx);
        unsigned n = tx_pass(&gtx);
        pk_tx_expect(c[k].what, 0, 0, 0, n, false);
    }
    /* In the last 4 bytes of a region they are fine. */
    pk_tx_begin(2, 140);
    bool mapped = ring_try(&gtx, TXQ, RING, UVA0 + TX_DESC, UVA0 + REG - 4, UVA1 + REG - 4);
    gtx.ptx.upos = 0;
    gtx.ptx.uwrap = true;
    allow(&gtx, GPA0 + 2 * REG - 4, 4);
    snap(&gtx);
    snap(&grx);
    unsigned n = mapped ? tx_pass(&gtx) : 0;
    CHECK(mapped, "packed: event structures in the last 4 bytes of the regions map");
    pk_tx_expect("packed event structures at the regions' ends", 0, 2, 2, n, false);
    others_forward("packed event structures outside guest memory");
}

int main(void)
{
    log_set_level(LOG_WARN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    switch_init(&sw, &ports);
    guest_init(&gtx, 0, "tx", MAC_TX);
    guest_init(&grx, 1, "rx", MAC_RX);
    guest_init(&gp, 2, "p", MAC_P);
    guest_init(&gq, 3, "q", MAC_Q);
    cp.index = 4;
    cp.type = PORT_VHOST;
    snprintf(cp.name, sizeof(cp.name), "cp");
    cp.conn.fd = cp.listen_fd = cp.tap_fd = -1;
    cp.queues = 1;
    dev_init(&cp.dev, &cp, 1);
    cp.sw = &sw;
    ports.p[4] = &cp;
    ports.n = 5;
    cp_memfd = memfd_create("cp-guest", MFD_CLOEXEC);
    if (cp_memfd < 0 || ftruncate(cp_memfd, CP_MEM) < 0) {
        perror("memfd");
        return 1;
    }
    cp_mem = mmap(NULL, CP_MEM, PROT_READ | PROT_WRITE, MAP_SHARED, cp_memfd, 0);
    if (cp_mem == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    switch_learn(&sw, MAC_Q, gq.port.index);
    others_forward("baseline");

    cve_2019_14818_repeated_vring_num();
    cve_2020_10722_log_base();
    log_at_run_time();
    cve_2020_10723_truncated_index();
    cve_2020_10725_zero_len_bad_addr();
    cve_2020_14375_double_fetch();
    cve_2022_2132_split_header();
    cve_2024_11614_offload_fields();
    indirect_straddling_regions();
    add_mem_reg_checks();
    mixed_bursts();
    cve_2020_14375_double_fetch_packed();
    packed_wrap_counter_lie();
    packed_id_beyond_ring();
    packed_id_reused_in_flight();
    packed_chain_wraps();
    packed_indirect();
    packed_event_outside_memory();
    cve_2019_3900_ring_full_forever();   /* last: it starts and stops the workers */
    return check_done("test_cve");
}
