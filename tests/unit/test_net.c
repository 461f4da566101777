/*
 * test_net.c - the datapath without sockets: two fake guests joined by
 * the switch.  Frames written into guest A's TX ring must arrive intact in
 * guest B's RX buffers (mergeable and not), drops must be counted, and a
 * hostile TX ring must stop A without harming B.
 */
#define _GNU_SOURCE
#include <sys/mman.h>
#include <unistd.h>

#include "netguest.h"

static struct guest ga, gb;

/* A worker's pass over A's TX queue: serve, then publish and signal. */
static unsigned tx_pass(bool *more)
{
    unsigned n = fwd_tx_pass(&ctx, &ga.port.dev.q[1], 256, true, more);
    fwd_flush(&ctx);
    return n;
}


static void test_forward(bool mergeable)
{
    switch_init(&sw, &ports);
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
    unsigned n = tx_pass(&more);
    fwd_flush(&ctx);
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
    CHECK(switch_lookup(&sw, (uint8_t[]){ 0x52, 0x54, 0, 0, 0, 0xaa }) == 0, "A's MAC learned");
    CHECK(stat_get(&gb.port.dev.q[0].st.packets) == 4, "B counted 4 RX frames");
    mem_clear(&ga.port.dev.mem);
    mem_clear(&gb.port.dev.mem);
}

/* Live migration: with B's dirty log on (LOG_ALL), a run of frames into B
 * marks exactly the pages of the bytes written into B's buffers (data and
 * headers, as the used entries say) and of B's RX used ring (entries,
 * index and flags); with a log mapped but logging off, nothing. */
static unsigned log_diff(const uint8_t *log, const uint8_t *want, unsigned bytes)
{
    unsigned d = 0;
    for (unsigned i = 0; i < bytes * 8; i++)
        d += ((log[i / 8] ^ want[i / 8]) >> (i % 8)) & 1;
    return d;
}

static void mark(uint8_t *want, uint64_t gpa, uint64_t len)
{
    for (uint64_t pg = gpa / LOG_PAGE; len && pg <= (gpa + len - 1) / LOG_PAGE; pg++)
        want[pg / 8] |= (uint8_t)(1u << (pg % 8));
}

static void test_dirty_log(bool mergeable, bool on)
{
    switch_init(&sw, &ports);
    guest_init(&ga, 0, "A", feats(mergeable));
    guest_init(&gb, 1, "B", feats(mergeable));
    enum { LOG_BYTES = (GPA + MEM_SIZE) / LOG_PAGE / 8 };
    int fd = memfd_create("log", 0);
    char err[160] = "";
    CHECK(fd >= 0 && ftruncate(fd, 4096) == 0 &&
              mem_log_map(&gb.port.dev.mem, fd, LOG_BYTES, 0, err, sizeof(err)) == 0,
          "log mapped (%s)", err);
    uint8_t *log = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    gb.port.dev.mem.log_all = on;
    uint32_t buflen = mergeable ? 512 : 2048;
    for (int i = 0; i < 16; i++)
        post_rx(&gb, buflen);
    uint8_t f[1514];
    size_t sizes[] = { 60, 1514, 300, 1000 };
    for (int i = 0; i < 4; i++) {
        make_frame(f, sizes[i], 0xbb, 0xaa, (uint8_t)i);
        send_tx(&ga, f, (uint32_t)sizes[i], VIRTIO_NET_HDR_LEN);
    }
    bool more;
    unsigned n = tx_pass(&more);
    CHECK(n == 4, "4 frames served (%u)", n);
    static uint8_t want[LOG_BYTES];
    memset(want, 0, sizeof(want));
    struct vq *rx = &gb.port.dev.q[0].vq;
    if (on) {
        for (uint16_t i = 0; i < rx->used->idx; i++) {
            struct virtq_used_elem u = rx->used->ring[i % RING];
            mark(want, rx->desc[u.id].addr, u.len);
        }
        mark(want, rx->used_gpa, virtq_used_size(RING));
    }
    unsigned d = log_diff(log, want, LOG_BYTES);
    CHECK(d == 0, "%s, %s: %s (%u pages differ)", mergeable ? "mergeable" : "one buffer each",
          on ? "logging on" : "logging off", on ? "exactly the written pages are dirty"
                                                : "nothing is logged", d);
    munmap(log, 4096);
    mem_log_unmap(&gb.port.dev.mem);
    mem_clear(&ga.port.dev.mem);
    mem_clear(&gb.port.dev.mem);
}

static void test_drops_and_hostile(void)
{
    switch_init(&sw, &ports);
    guest_init(&ga, 0, "A", feats(true));
    guest_init(&gb, 1, "B", feats(true));
    uint8_t f[1514];
    bool more;
    /* No RX buffers in B: dropped and counted, A's buffer still completed. */
    make_frame(f, 100, 0xbb, 0xaa, 1);
    send_tx(&ga, f, 100, VIRTIO_NET_HDR_LEN);
    CHECK(tx_pass(&more) == 1, "served");
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
    tx_pass(&more);
    fwd_flush(&ctx);
    CHECK(stat_get(&gb.port.dev.q[0].st.drops_full) == 2, "oversized frame dropped");
    uint8_t got[2048];
    uint16_t seen = 0, nb;
    CHECK(read_rx(&gb, &seen, got, sizeof(got), &nb) == 200 && memcmp(got, f, 200) == 0,
          "the next frame used the buffers the dropped one left");
    /* A chain no longer than the header is dropped, not forwarded. */
    send_tx(&ga, f, 0, VIRTIO_NET_HDR_LEN);
    tx_pass(&more);
    CHECK(stat_get(&ga.port.dev.q[1].st.drops_invalid) == 1, "header-only chain dropped");
    /* A header claiming GSO (not negotiated) is dropped. */
    send_tx(&ga, f, 200, VIRTIO_NET_HDR_LEN);
    struct vq *tx = &ga.port.dev.q[1].vq;
    uint16_t head = tx->avail->ring[(tx->avail->idx - 1) % RING];
    ((struct virtio_net_hdr *)gptr(&ga, tx->desc[head].addr))->gso_type = 1;
    tx_pass(&more);
    CHECK(stat_get(&ga.port.dev.q[1].st.drops_invalid) == 2, "GSO header dropped");
    /* A looping chain breaks A only. */
    uint16_t i = ga.tx_desc_next++ % RING;
    tx->desc[i] = (struct virtq_desc){ GPA + 0x40000, 64, VIRTQ_DESC_F_NEXT, i };
    tx->avail->ring[tx->avail->idx % RING] = i;
    tx->avail->idx++;
    tx_pass(&more);
    CHECK(ga.port.dev.broken, "A marked broken");
    CHECK(ga.port.dev.status & VIRTIO_STATUS_NEEDS_RESET, "A's status says NEEDS_RESET");
    CHECK(!dev_queue_ready(&ga.port.dev, &ga.port.dev.q[1]), "A no longer served");
    CHECK(!gb.port.dev.broken && dev_queue_ready(&gb.port.dev, &gb.port.dev.q[0]), "B unharmed");
    mem_clear(&ga.port.dev.mem);
    mem_clear(&gb.port.dev.mem);
}

static uint16_t fold(uint32_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)sum;
}

static uint32_t sum16(const uint8_t *p, size_t len)
{
    uint32_t s = 0;
    for (size_t i = 0; i + 1 < len; i += 2)
        s += (uint32_t)(p[i] << 8 | p[i + 1]);
    if (len & 1)
        s += (uint32_t)p[len - 1] << 8;
    return s;
}

/* Builds Ethernet + IPv4 or IPv6 + TCP/UDP with `payload` bytes; the L4
 * checksum field holds the pseudo-header sum, as a guest leaves it for
 * NEEDS_CSUM.  Returns the frame length; fills h. */
static size_t build_l4(uint8_t *f, bool v6, bool tcp, size_t payload, struct virtio_net_hdr *h)
{
    memset(f, 0, 128);
    make_frame(f, 14, 0xbb, 0xaa, 0);
    size_t l3 = v6 ? 40 : 20, l4 = tcp ? 20 : 8, l4off = 14 + l3;
    f[12] = v6 ? 0x86 : 0x08;
    f[13] = v6 ? 0xdd : 0x00;
    uint8_t *ip = f + 14, *t = f + l4off;
    size_t l4len = l4 + payload;
    uint32_t pseudo;
    if (v6) {
        ip[0] = 0x60; ip[4] = (uint8_t)(l4len >> 8); ip[5] = (uint8_t)l4len;
        ip[6] = tcp ? 6 : 17; ip[7] = 64;
        ip[8] = 0xfd; ip[23] = 1; ip[24] = 0xfd; ip[39] = 2;
        pseudo = sum16(ip + 8, 32);
    } else {
        ip[0] = 0x45; ip[2] = (uint8_t)((20 + l4len) >> 8); ip[3] = (uint8_t)(20 + l4len);
        ip[4] = 0x12; ip[5] = 0x34; ip[8] = 64; ip[9] = tcp ? 6 : 17;
        ip[12] = 10; ip[15] = 1; ip[16] = 10; ip[19] = 2;
        uint16_t c = (uint16_t)~fold(sum16(ip, 20));
        ip[10] = (uint8_t)(c >> 8); ip[11] = (uint8_t)c;
        pseudo = sum16(ip + 12, 8);
    }
    pseudo += (tcp ? 6 : 17) + (uint32_t)l4len;
    t[0] = 0x30; t[1] = 0x39; t[2] = 0x00; t[3] = 0x50;
    if (tcp) {
        t[4] = 0x01; t[5] = 0x02; t[6] = 0x03; t[7] = 0x04;   /* seq 0x01020304 */
        t[12] = 0x50; t[13] = 0x18 | 0x01 | 0x80;            /* ACK PSH FIN CWR */
    } else {
        t[4] = (uint8_t)(l4len >> 8); t[5] = (uint8_t)l4len;
    }
    for (size_t i = 0; i < payload; i++)
        t[l4 + i] = (uint8_t)(i * 13 + 1);
    uint16_t ph = fold(pseudo);
    size_t co = tcp ? 16 : 6;
    t[co] = (uint8_t)(ph >> 8); t[co + 1] = (uint8_t)ph;
    memset(h, 0, sizeof(*h));
    h->flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
    h->csum_start = (uint16_t)l4off;
    h->csum_offset = (uint16_t)co;
    return l4off + l4len;
}

/* True if the frame's IPv4 header checksum (if any) and L4 checksum verify. */
static bool checksums_ok(const uint8_t *f, size_t len)
{
    bool v6 = f[12] == 0x86;
    size_t l3 = v6 ? 40 : 20, l4off = 14 + l3;
    const uint8_t *ip = f + 14;
    uint32_t pseudo;
    if (v6) {
        pseudo = sum16(ip + 8, 32) + ip[6];
    } else {
        if (fold(sum16(ip, 20)) != 0xffff)
            return false;
        pseudo = sum16(ip + 12, 8) + ip[9];
    }
    pseudo += (uint32_t)(len - l4off);
    return fold(pseudo + sum16(f + l4off, len - l4off)) == 0xffff;
}

static uint64_t offload_feats(bool guest_csum, bool guest_tso)
{
    return feats(true) | 1ull << VIRTIO_NET_F_CSUM | 1ull << VIRTIO_NET_F_HOST_TSO4 |
           1ull << VIRTIO_NET_F_HOST_TSO6 |
           (guest_csum ? 1ull << VIRTIO_NET_F_GUEST_CSUM : 0) |
           (guest_tso ? 1ull << VIRTIO_NET_F_GUEST_TSO4 | 1ull << VIRTIO_NET_F_GUEST_TSO6 : 0);
}

static void test_offloads(void)
{
    static uint8_t f[8192], got[70000];
    struct virtio_net_hdr h;
    bool more;
    uint16_t seen, nb;

    /* Partial checksum to a guest without GUEST_CSUM: completed by us. */
    for (int v6 = 0; v6 < 2; v6++) {
        switch_init(&sw, &ports);
        guest_init(&ga, 0, "A", offload_feats(true, true));
        guest_init(&gb, 1, "B", offload_feats(false, false));
        for (int i = 0; i < 64; i++)
            post_rx(&gb, 2048);
        size_t len = build_l4(f, v6, false, 333, &h);
        send_tx_hdr(&ga, f, (uint32_t)len, VIRTIO_NET_HDR_LEN, &h);
        tx_pass(&more);
        seen = 0;
        int n = read_rx(&gb, &seen, got, sizeof(got), &nb);
        CHECK(n == (int)len && checksums_ok(got, len) && last_rx_hdr.flags == 0,
              "v%d UDP partial checksum completed for a guest without GUEST_CSUM", v6 ? 6 : 4);
        CHECK(stat_get(&gb.port.dev.q[0].st.sw_offload) == 1, "counted as software offload");
        mem_clear(&ga.port.dev.mem);
        mem_clear(&gb.port.dev.mem);
    }

    /* To a guest with GUEST_CSUM and GUEST_TSO: passed through untouched. */
    switch_init(&sw, &ports);
    guest_init(&ga, 0, "A", offload_feats(true, true));
    guest_init(&gb, 1, "B", offload_feats(true, true));
    for (int i = 0; i < 64; i++)
        post_rx(&gb, 4096);
    size_t len = build_l4(f, false, true, 3000, &h);
    h.gso_type = 1;   /* TCPV4 */
    h.gso_size = 1000;
    h.hdr_len = 54;
    send_tx_hdr(&ga, f, (uint32_t)len, VIRTIO_NET_HDR_LEN, &h);
    tx_pass(&more);
    seen = 0;
    int n = read_rx(&gb, &seen, got, sizeof(got), &nb);
    CHECK(n == (int)len && memcmp(got, f, len) == 0, "TSO frame delivered whole (%d)", n);
    CHECK(last_rx_hdr.flags == VIRTIO_NET_HDR_F_NEEDS_CSUM && last_rx_hdr.gso_type == 1 &&
          last_rx_hdr.gso_size == 1000 && last_rx_hdr.csum_start == 34 &&
          last_rx_hdr.csum_offset == 16, "offload header passed through");
    mem_clear(&ga.port.dev.mem);
    mem_clear(&gb.port.dev.mem);

    /* To a guest without TSO: segmented in software, every segment valid. */
    for (int v6 = 0; v6 < 2; v6++) {
        switch_init(&sw, &ports);
        guest_init(&ga, 0, "A", offload_feats(true, true));
        guest_init(&gb, 1, "B", offload_feats(false, false));
        for (int i = 0; i < 64; i++)
            post_rx(&gb, 2048);
        len = build_l4(f, v6, true, 2500, &h);
        h.gso_type = v6 ? 4 : 1;
        h.gso_size = 1000;
        send_tx_hdr(&ga, f, (uint32_t)len, VIRTIO_NET_HDR_LEN, &h);
        tx_pass(&more);
        seen = 0;
        size_t l4off = v6 ? 54 : 34, total = 0;
        int segs = 0;
        bool ok = true;
        while ((n = read_rx(&gb, &seen, got, sizeof(got), &nb)) > 0) {
            size_t pay = (size_t)n - l4off - 20;
            uint32_t seq = (uint32_t)got[l4off + 4] << 24 | (uint32_t)got[l4off + 5] << 16 |
                           (uint32_t)got[l4off + 6] << 8 | got[l4off + 7];
            uint8_t fl = got[l4off + 13];
            bool last = total + pay == 2500;
            ok &= checksums_ok(got, (size_t)n) && pay <= 1000 && seq == 0x01020304u + total &&
                  memcmp(got + l4off + 20, f + l4off + 20 + total, pay) == 0 &&
                  !!(fl & 0x01) == last && !!(fl & 0x80) == (segs == 0) && last_rx_hdr.gso_type == 0;
            total += pay;
            segs++;
        }
        CHECK(segs == 3 && total == 2500 && ok,
              "v%d TSO frame segmented: %d segments, %zu bytes, all valid: %d", v6 ? 6 : 4, segs,
              total, ok);
        mem_clear(&ga.port.dev.mem);
        mem_clear(&gb.port.dev.mem);
    }

    /* Bad offload requests are dropped and counted, never forwarded. */
    switch_init(&sw, &ports);
    guest_init(&ga, 0, "A", feats(true));   /* no CSUM, no TSO negotiated */
    guest_init(&gb, 1, "B", offload_feats(true, true));
    for (int i = 0; i < 64; i++)
        post_rx(&gb, 2048);
    len = build_l4(f, false, false, 100, &h);
    send_tx_hdr(&ga, f, (uint32_t)len, VIRTIO_NET_HDR_LEN, &h);
    tx_pass(&more);
    CHECK(stat_get(&ga.port.dev.q[1].st.drops_invalid) == 1, "NEEDS_CSUM without CSUM dropped");
    mem_clear(&ga.port.dev.mem);
    mem_clear(&gb.port.dev.mem);

    switch_init(&sw, &ports);
    guest_init(&ga, 0, "A", offload_feats(true, true));
    guest_init(&gb, 1, "B", offload_feats(true, true));
    for (int i = 0; i < 64; i++)
        post_rx(&gb, 2048);
    struct { uint16_t start, off; uint8_t gso; uint16_t gso_size; uint8_t flags; } bad[] = {
        { 200, 6, 0, 0, VIRTIO_NET_HDR_F_NEEDS_CSUM },      /* csum_start beyond the frame */
        { 34, 150, 0, 0, VIRTIO_NET_HDR_F_NEEDS_CSUM },     /* field beyond the frame */
        { 34, 16, 3, 1000, VIRTIO_NET_HDR_F_NEEDS_CSUM },   /* UDP fragmentation */
        { 34, 16, 1, 1000, 0 },                             /* TSO without NEEDS_CSUM */
        { 34, 16, 1, 0, VIRTIO_NET_HDR_F_NEEDS_CSUM },      /* TSO with gso_size 0 */
        { 34, 16, 0x81, 1000, VIRTIO_NET_HDR_F_NEEDS_CSUM },/* ECN not offered */
        { 34, 16, 0, 0, 0x10 },                             /* unknown flag */
    };
    len = build_l4(f, false, true, 100, &h);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        h.csum_start = bad[i].start;
        h.csum_offset = bad[i].off;
        h.gso_type = bad[i].gso;
        h.gso_size = bad[i].gso_size;
        h.flags = bad[i].flags;
        send_tx_hdr(&ga, f, (uint32_t)len, VIRTIO_NET_HDR_LEN, &h);
    }
    tx_pass(&more);
    CHECK(stat_get(&ga.port.dev.q[1].st.drops_invalid) == sizeof(bad) / sizeof(bad[0]) &&
          gb.port.dev.q[0].vq.used->idx == 0, "%llu of %zu bad offload headers dropped",
          (unsigned long long)stat_get(&ga.port.dev.q[1].st.drops_invalid),
          sizeof(bad) / sizeof(bad[0]));
    /* A gso_size that would split one frame into thousands of segments is
     * refused rather than let one guest burn the worker's time. */
    mem_clear(&gb.port.dev.mem);
    guest_init(&gb, 1, "B", offload_feats(false, false));
    for (int i = 0; i < 64; i++)
        post_rx(&gb, 2048);
    len = build_l4(f, false, true, 4000, &h);
    h.gso_type = 1;
    h.gso_size = 8;
    send_tx_hdr(&ga, f, (uint32_t)len, VIRTIO_NET_HDR_LEN, &h);
    tx_pass(&more);
    CHECK(gb.port.dev.q[0].vq.used->idx == 0 &&
          stat_get(&gb.port.dev.q[0].st.drops_invalid) == 1, "500-segment GSO frame dropped");
    /* A TSO frame whose headers are not TCP cannot be segmented: dropped. */
    mem_clear(&gb.port.dev.mem);
    guest_init(&gb, 1, "B", offload_feats(false, false));
    for (int i = 0; i < 64; i++)
        post_rx(&gb, 2048);
    len = build_l4(f, false, false, 3000, &h);
    h.gso_type = 1;
    h.gso_size = 1000;
    send_tx_hdr(&ga, f, (uint32_t)len, VIRTIO_NET_HDR_LEN, &h);
    tx_pass(&more);
    CHECK(gb.port.dev.q[0].vq.used->idx == 0 &&
          stat_get(&gb.port.dev.q[0].st.drops_invalid) == 1, "unsegmentable TSO frame dropped");
    mem_clear(&ga.port.dev.mem);
    mem_clear(&gb.port.dev.mem);
}

/* The net layer alone: net_rx_run fills an RX queue with a run of frames,
 * no switch, no TX ring. */
static void test_rx_run(void)
{
    switch_init(&sw, &ports);
    guest_init(&gb, 1, "B", feats(true));
    struct vqueue *q = &gb.port.dev.q[0];
    struct vq *vq = &q->vq;
    uint8_t f[128];
    struct virtio_net_hdr h;

    /* A partial checksum completed into a first chain of 24 three-byte
     * buffers: the field (chain byte 52) lies in the 18th of them. */
    size_t len = build_l4(f, false, false, 18, &h);
    uint64_t area = galloc(&gb, 72);
    memset(gptr(&gb, area), 0x55, 72);
    for (uint16_t i = 0; i < 24; i++)
        vq->desc[i] = (struct virtq_desc){ area + 3u * i, 3,
                                           VIRTQ_DESC_F_WRITE | (i < 23 ? VIRTQ_DESC_F_NEXT : 0),
                                           (uint16_t)(i + 1) };
    vq->avail->ring[0] = 0;
    vq->avail->idx = 1;
    gb.rx_desc_next = 24;
    struct frame fr;
    struct iovec iov;
    net_frame_flat(&fr, &iov, f, len, &h);
    CHECK(len == 60 && net_rx_run(&ctx.sw.rx, q, &fr, 1) == 1, "frame in a 24-buffer chain");
    vq_flush(vq);
    const uint8_t *got = gptr(&gb, area);
    CHECK(vq->used->idx == 1 && vq->used->ring[0].len == 72, "one used entry of 72 bytes");
    CHECK(checksums_ok(got + VIRTIO_NET_HDR_LEN, len) &&
          ((const struct virtio_net_hdr *)got)->flags == 0 &&
          stat_get(&q->st.sw_offload) == 1,
          "checksum written into the 18th buffer of the chain, header says it is complete");

    /* A run meets a ring with room for two of four frames: two delivered,
     * the others dropped and counted at once (no buffer would appear). */
    post_rx(&gb, 2048);
    post_rx(&gb, 2048);
    struct frame run[4];
    struct iovec riov[4];
    uint8_t rf[4][100];
    static const struct virtio_net_hdr plain;
    for (int i = 0; i < 4; i++) {
        make_frame(rf[i], 100, 0xbb, 0xaa, (uint8_t)i);
        net_frame_flat(&run[i], &riov[i], rf[i], 100, &plain);
    }
    CHECK(net_rx_run(&ctx.sw.rx, q, run, 4) == 2, "two of four delivered");
    vq_flush(vq);
    CHECK(vq->used->idx == 3 && stat_get(&q->st.drops_full) == 2 && vq->last_avail == 3,
          "two counted as full, no chain taken beyond the two used");
    mem_clear(&gb.port.dev.mem);
}

int main(void)
{
    test_forward(true);
    test_forward(false);
    test_drops_and_hostile();
    test_offloads();
    test_rx_run();
    test_dirty_log(true, true);
    test_dirty_log(false, true);
    test_dirty_log(true, false);
    return check_done("test_net");
}
