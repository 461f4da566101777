/*
 * test_net.c - the datapath without sockets: two fake guests joined by
 * the switch.  Frames written into guest A's TX ring must arrive intact in
 * guest B's RX buffers (mergeable and not), drops must be counted, and a
 * hostile TX ring must stop A without harming B.
 */
#define _GNU_SOURCE
#include <sys/mman.h>
#include <unistd.h>

#include "check.h"
#include "device.h"
#include "net.h"
#include "port.h"
#include "switch.h"

#define MEM_SIZE (4u << 20)
#define GPA 0x200000ull
#define UVA 0x7e0000000000ull
#define RING 256u

struct guest {
    struct port port;
    uint8_t *host;
    uint64_t next_gpa;     /* bump allocator for buffers */
    uint16_t rx_desc_next, tx_desc_next;
};

static struct guest ga, gb;
static struct fwd_ctx ctx;

static void *gptr(struct guest *g, uint64_t gpa) { return g->host + (gpa - GPA); }

static uint64_t galloc(struct guest *g, uint64_t len)
{
    uint64_t a = g->next_gpa;
    g->next_gpa += (len + 63) & ~63ull;
    return a;
}

/* Lays out ring i at fixed offsets and makes it ready. */
static void setup_ring(struct guest *g, unsigned i)
{
    struct vqueue *q = &g->port.dev.q[i];
    uint64_t base = UVA + (uint64_t)i * 0x10000;
    q->vq.num = RING;
    q->vq.desc_uva = base;
    q->vq.avail_uva = base + virtq_desc_size(RING);
    q->vq.used_uva = base + 0x8000;
    q->vq.addr_set = true;
    q->kick_set = true;
    q->enable = 1;
    CHECK(vq_map(&q->vq, &g->port.dev.mem), "ring %u maps", i);
}

static void guest_init(struct guest *g, unsigned index, const char *name, uint64_t features)
{
    memset(g, 0, sizeof(*g));
    struct port *p = &g->port;
    p->index = index;
    p->type = PORT_VHOST;
    snprintf(p->name, sizeof(p->name), "%s", name);
    p->conn.fd = -1;
    dev_init(&p->dev, p, 1);
    int fd = memfd_create(name, 0);
    CHECK(fd >= 0 && ftruncate(fd, MEM_SIZE) == 0, "memfd");
    struct vhost_user_mem_region d = { GPA, MEM_SIZE, UVA, 0 };
    struct mem_region r;
    char err[128];
    CHECK(mem_region_map(&r, &d, fd, err, sizeof(err)) == 0, "map: %s", err);
    close(fd);
    mem_add(&p->dev.mem, &r);
    g->host = r.host;
    g->next_gpa = GPA + 0x40000;
    p->dev.connected = true;
    p->dev.features = features;
    p->dev.features_set = true;
    setup_ring(g, 0);
    setup_ring(g, 1);
    ports.p[index] = p;
    if (ports.n <= index)
        ports.n = index + 1;
}

static void post_rx(struct guest *g, uint32_t len)
{
    struct vq *vq = &g->port.dev.q[0].vq;
    uint16_t i = g->rx_desc_next++ % RING;
    vq->desc[i] = (struct virtq_desc){ galloc(g, len), len, VIRTQ_DESC_F_WRITE, 0 };
    vq->avail->ring[vq->avail->idx % RING] = i;
    vq->avail->idx++;
}

/* Queues one frame (header + data) on A's TX ring in two descriptors. */
static void send_tx(struct guest *g, const uint8_t *frame, uint32_t len, unsigned hlen)
{
    struct vq *vq = &g->port.dev.q[1].vq;
    uint16_t h = g->tx_desc_next++ % RING, n = g->tx_desc_next++ % RING;
    uint64_t hdr = galloc(g, hlen), data = galloc(g, len);
    memset(gptr(g, hdr), 0, hlen);
    memcpy(gptr(g, data), frame, len);
    vq->desc[h] = (struct virtq_desc){ hdr, hlen, VIRTQ_DESC_F_NEXT, n };
    vq->desc[n] = (struct virtq_desc){ data, len, 0, 0 };
    vq->avail->ring[vq->avail->idx % RING] = h;
    vq->avail->idx++;
}

static void make_frame(uint8_t *f, size_t len, uint8_t dst_last, uint8_t src_last, uint8_t seed)
{
    static const uint8_t base[6] = { 0x52, 0x54, 0, 0, 0, 0 };
    memcpy(f, base, 6);
    f[5] = dst_last;
    memcpy(f + 6, base, 6);
    f[11] = src_last;
    f[12] = 0x08; f[13] = 0x00;
    for (size_t i = 14; i < len; i++)
        f[i] = (uint8_t)(seed + i * 7);
}

/* Reads B's next used RX entry back into a linear frame; returns the
 * frame length or -1. */
static int read_rx(struct guest *g, uint16_t *used_seen, uint8_t *out, size_t cap, uint16_t *nbufs)
{
    struct vq *vq = &g->port.dev.q[0].vq;
    if (vq->used->idx == *used_seen)
        return -1;
    struct virtq_used_elem u = vq->used->ring[*used_seen % RING];
    struct virtq_desc d = vq->desc[u.id];
    struct virtio_net_hdr *h = gptr(g, d.addr);
    *nbufs = h->num_buffers;
    size_t hlen = VIRTIO_NET_HDR_LEN, total = 0;
    for (uint16_t b = 0; b < *nbufs; b++) {
        u = vq->used->ring[(*used_seen)++ % RING];
        d = vq->desc[u.id];
        size_t skip = b == 0 ? hlen : 0;
        if (u.len < skip || total + (u.len - skip) > cap)
            return -1;
        memcpy(out + total, (uint8_t *)gptr(g, d.addr) + skip, u.len - skip);
        total += u.len - skip;
    }
    return (int)total;
}

static uint64_t feats(bool mrg)
{
    return 1ull << VIRTIO_F_VERSION_1 | (mrg ? 1ull << VIRTIO_NET_F_MRG_RXBUF : 0);
}

static void test_forward(bool mergeable)
{
    switch_init();
    guest_init(&ga, 0, "A", feats(mergeable));
    guest_init(&gb, 1, "B", feats(mergeable));
    /* Mergeable: small buffers so a 1500-byte frame needs several. */
    uint32_t buflen = mergeable ? 512 : 2048;
    for (int i = 0; i < 64; i++)
        post_rx(&gb, buflen);
    uint8_t f[1514], got[4096];
    size_t sizes[] = { 60, 64, 500, 1514 };
    for (int i = 0; i < 4; i++) {
        make_frame(f, sizes[i], 0xbb, 0xaa, (uint8_t)i);
        send_tx(&ga, f, (uint32_t)sizes[i], VIRTIO_NET_HDR_LEN);
    }
    bool more;
    unsigned n = net_tx_pass(&ctx, &ga.port.dev.q[1], 256, true, &more);
    switch_flush(&ctx);
    CHECK(n == 4 && !more, "4 frames served (%u)", n);
    CHECK(ga.port.dev.q[1].vq.used->idx == 4, "TX completions published");
    uint16_t seen = 0, nb;
    for (int i = 0; i < 4; i++) {
        make_frame(f, sizes[i], 0xbb, 0xaa, (uint8_t)i);
        int len = read_rx(&gb, &seen, got, sizeof(got), &nb);
        CHECK(len == (int)sizes[i] && memcmp(got, f, sizes[i]) == 0,
              "frame %d (%zu bytes) intact (got %d, %u buffers)", i, sizes[i], len, nb);
        if (mergeable && sizes[i] == 1514)
            CHECK(nb == 3, "1514 bytes in 512-byte buffers takes 3 (got %u)", nb);
        if (!mergeable)
            CHECK(nb == 1, "num_buffers is 1 without MRG_RXBUF");
    }
    CHECK(switch_lookup((uint8_t[]){ 0x52, 0x54, 0, 0, 0, 0xaa }) == 0, "A's MAC learned");
    CHECK(stat_get(&gb.port.dev.q[0].st.packets) == 4, "B counted 4 RX frames");
    mem_clear(&ga.port.dev.mem);
    mem_clear(&gb.port.dev.mem);
}

static void test_drops_and_hostile(void)
{
    switch_init();
    guest_init(&ga, 0, "A", feats(true));
    guest_init(&gb, 1, "B", feats(true));
    uint8_t f[1514];
    bool more;
    /* No RX buffers in B: dropped and counted, A's buffer still completed. */
    make_frame(f, 100, 0xbb, 0xaa, 1);
    send_tx(&ga, f, 100, VIRTIO_NET_HDR_LEN);
    CHECK(net_tx_pass(&ctx, &ga.port.dev.q[1], 256, true, &more) == 1, "served");
    CHECK(stat_get(&gb.port.dev.q[0].st.drops_full) == 1, "drop counted when B has no buffers");
    CHECK(gb.port.dev.q[0].vq.used->idx == 0, "nothing half-written into B");
    /* Room for 1000 bytes only: a 1514-byte frame is refused whole and the
     * buffers stay available for the next frame. */
    post_rx(&gb, 500);
    post_rx(&gb, 500);
    make_frame(f, 1514, 0xbb, 0xaa, 2);
    send_tx(&ga, f, 1514, VIRTIO_NET_HDR_LEN);
    make_frame(f, 200, 0xbb, 0xaa, 3);
    send_tx(&ga, f, 200, VIRTIO_NET_HDR_LEN);
    net_tx_pass(&ctx, &ga.port.dev.q[1], 256, true, &more);
    switch_flush(&ctx);
    CHECK(stat_get(&gb.port.dev.q[0].st.drops_full) == 2, "oversized frame dropped");
    uint8_t got[2048];
    uint16_t seen = 0, nb;
    CHECK(read_rx(&gb, &seen, got, sizeof(got), &nb) == 200 && memcmp(got, f, 200) == 0,
          "the next frame used the buffers the dropped one left");
    /* A chain no longer than the header is dropped, not forwarded. */
    send_tx(&ga, f, 0, VIRTIO_NET_HDR_LEN);
    net_tx_pass(&ctx, &ga.port.dev.q[1], 256, true, &more);
    CHECK(stat_get(&ga.port.dev.q[1].st.drops_invalid) == 1, "header-only chain dropped");
    /* A header claiming GSO (not negotiated) is dropped. */
    send_tx(&ga, f, 200, VIRTIO_NET_HDR_LEN);
    struct vq *tx = &ga.port.dev.q[1].vq;
    uint16_t head = tx->avail->ring[(tx->avail->idx - 1) % RING];
    ((struct virtio_net_hdr *)gptr(&ga, tx->desc[head].addr))->gso_type = 1;
    net_tx_pass(&ctx, &ga.port.dev.q[1], 256, true, &more);
    CHECK(stat_get(&ga.port.dev.q[1].st.drops_invalid) == 2, "GSO header dropped");
    /* A looping chain breaks A only. */
    uint16_t i = ga.tx_desc_next++ % RING;
    tx->desc[i] = (struct virtq_desc){ GPA + 0x40000, 64, VIRTQ_DESC_F_NEXT, i };
    tx->avail->ring[tx->avail->idx % RING] = i;
    tx->avail->idx++;
    net_tx_pass(&ctx, &ga.port.dev.q[1], 256, true, &more);
    CHECK(ga.port.dev.broken, "A marked broken");
    CHECK(ga.port.dev.status & VIRTIO_STATUS_NEEDS_RESET, "A's status says NEEDS_RESET");
    CHECK(!dev_queue_ready(&ga.port.dev, &ga.port.dev.q[1]), "A no longer served");
    CHECK(!gb.port.dev.broken && dev_queue_ready(&gb.port.dev, &gb.port.dev.q[0]), "B unharmed");
    mem_clear(&ga.port.dev.mem);
    mem_clear(&gb.port.dev.mem);
}

static void test_csum(void)
{
    /* IPv4/UDP frame whose UDP checksum field holds the pseudo-header sum
     * (as the kernel leaves it for CHECKSUM_PARTIAL); completing it must
     * give the checksum computed from scratch. */
    uint8_t f[60] = { 0 };
    f[12] = 0x08;
    uint8_t *ip = f + 14, *udp = ip + 20;
    ip[0] = 0x45; ip[9] = 17;
    ip[12] = 10; ip[15] = 1; ip[16] = 10; ip[19] = 2;
    udp[4] = 0; udp[5] = 26;
    for (int i = 8; i < 26; i++)
        udp[i] = (uint8_t)i;
    /* Reference: full checksum over pseudo header + UDP with field 0. */
    uint32_t sum = 0x0a00 + 0x0001 + 0x0a00 + 0x0002 + 17 + 26;
    for (int i = 0; i < 26; i += 2)
        sum += (uint32_t)(udp[i] << 8 | udp[i + 1]);
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    uint16_t want = (uint16_t)~sum;
    uint32_t ph = 0x0a00 + 0x0001 + 0x0a00 + 0x0002 + 17 + 26;
    while (ph >> 16)
        ph = (ph & 0xffff) + (ph >> 16);
    udp[6] = (uint8_t)(ph >> 8);
    udp[7] = (uint8_t)ph;
    struct virtio_net_hdr h = { .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .csum_start = 34,
                                .csum_offset = 6 };
    CHECK(net_csum_complete(f, 60, &h), "checksum completed");
    CHECK((udp[6] << 8 | udp[7]) == want, "checksum 0x%04x, want 0x%04x", udp[6] << 8 | udp[7],
          want);
    h.csum_start = 58;
    CHECK(!net_csum_complete(f, 60, &h), "csum field beyond the frame refused");
    h.csum_start = 70;
    CHECK(!net_csum_complete(f, 60, &h), "csum_start beyond the frame refused");
}

int main(void)
{
    test_forward(true);
    test_forward(false);
    test_drops_and_hostile();
    test_csum();
    return check_done("test_net");
}
