/*
 * test_uplink.c - the uplink's walk over TPACKET_V3 ring blocks
 * (uplink_blk_begin/uplink_blk_next) on blocks made here: good frames, VLAN
 * tags the kernel took off, frames cut short, runts and giants, virtio-net
 * headers the switch must not pass on, and descriptors that point outside
 * the block, loop or overlap.  Every block lives in a buffer of exactly its
 * size on the heap, so under ASan (make asan) a read past it fails the test.
 * Ends with 3000 random blocks: the walk must end, and every frame it hands
 * out must lie inside the block.
 */
#include <linux/if_packet.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "net.h"
#include "offload.h"
#include "uplink.h"

#define VNET 10u
#define FIRST 64u          /* offset of the first packet header */
#define MACOFF 96u         /* tp_mac: header (48), room, the 10-byte vnet header */

struct pktspec {
    uint32_t snaplen, len, status;
    uint16_t mac, vlan_tci, vlan_tpid;
    struct virtio_net_hdr h;
    uint32_t next;         /* 0: computed (packed after this one) */
};

static uint8_t *new_block(size_t size)
{
    uint8_t *b = calloc(1, size);
    if (!b)
        abort();
    return b;
}

/* Writes the block descriptor. */
static void put_desc(uint8_t *b, uint32_t npkts, uint32_t first)
{
    struct tpacket_block_desc d;
    memset(&d, 0, sizeof d);
    d.version = TPACKET_V3;
    d.hdr.bh1.block_status = TP_STATUS_USER;
    d.hdr.bh1.num_pkts = npkts;
    d.hdr.bh1.offset_to_first_pkt = first;
    memcpy(b, &d, sizeof d);
}

/* Writes packet p at off (its frame bytes: i + off, so they can be
 * recognised); returns the offset of the next packet. */
static size_t put_pkt(uint8_t *b, size_t size, size_t off, const struct pktspec *p)
{
    struct tpacket3_hdr h;
    memset(&h, 0, sizeof h);
    uint16_t mac = p->mac ? p->mac : MACOFF;
    size_t next = p->next ? p->next : ((mac + p->snaplen + 15) & ~15u);
    h.tp_next_offset = (uint32_t)next;
    h.tp_snaplen = p->snaplen;
    h.tp_len = p->len;
    h.tp_status = TP_STATUS_USER | p->status;
    h.tp_mac = mac;
    h.hv1.tp_vlan_tci = p->vlan_tci;
    h.hv1.tp_vlan_tpid = p->vlan_tpid;
    memcpy(b + off, &h, sizeof h);
    if (off + mac <= size && off + mac >= VNET)
        memcpy(b + off + mac - VNET, &p->h, VNET);
    for (size_t i = 0; i < p->snaplen && off + mac + i < size; i++)
        b[off + mac + i] = (uint8_t)(i + off);
    return off + next;
}

/* A block of one packet p; the verdict of its first uplink_blk_next. */
static enum uplink_pkt_rc one(const struct pktspec *p, size_t size, struct uplink_pkt *out)
{
    uint8_t *b = new_block(size);
    put_desc(b, 1, FIRST);
    put_pkt(b, size, FIRST, p);
    struct uplink_blk_iter it;
    enum uplink_pkt_rc rc = UPLINK_PKT_END;
    if (uplink_blk_begin(&it, b, size, VNET)) {
        rc = uplink_blk_next(&it, out);
        if (rc == UPLINK_PKT_OK && (out->data < b || out->data + out->len > b + size))
            rc = UPLINK_PKT_END;   /* reported as a failure by the caller */
        if (uplink_blk_next(&it, out) != UPLINK_PKT_END)
            rc = UPLINK_PKT_END;
    }
    free(b);
    return rc;
}

static void good_blocks(void)
{
    size_t size = 8192;
    uint8_t *b = new_block(size);
    static const uint32_t lens[] = { 60, 1514, 14 };
    put_desc(b, 3, FIRST);
    size_t off = FIRST, offs[3];
    for (unsigned i = 0; i < 3; i++) {
        struct pktspec p = { .snaplen = lens[i], .len = lens[i] };
        offs[i] = off;
        off = put_pkt(b, size, off, &p);
    }
    struct uplink_blk_iter it;
    struct uplink_pkt pk;
    CHECK(uplink_blk_begin(&it, b, size, VNET), "a good block opens");
    unsigned ok = 0;
    for (unsigned i = 0; i < 3; i++)
        ok += uplink_blk_next(&it, &pk) == UPLINK_PKT_OK && pk.len == lens[i] &&
              pk.data == b + offs[i] + MACOFF && pk.data[1] == (uint8_t)(1 + offs[i]) && !pk.vlan;
    CHECK(ok == 3, "its 3 frames (60, 1514 and 14 bytes) come out where they are: %u", ok);
    CHECK(uplink_blk_next(&it, &pk) == UPLINK_PKT_END &&
              uplink_blk_next(&it, &pk) == UPLINK_PKT_END,
          "then the block ends, and stays ended");
    free(b);

    b = new_block(size);
    put_desc(b, 0, 0);
    CHECK(uplink_blk_begin(&it, b, size, VNET) && uplink_blk_next(&it, &pk) == UPLINK_PKT_END,
          "an empty block (retired by the timer) ends at once");
    free(b);

    struct pktspec p = { .snaplen = 100, .len = 100, .status = TP_STATUS_VLAN_VALID,
                         .vlan_tci = 0x0123 };
    p.h.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
    p.h.csum_start = 34;
    p.h.csum_offset = 6;
    CHECK(one(&p, size, &pk) == UPLINK_PKT_OK && pk.vlan && pk.vlan_tci == 0x0123 &&
              pk.vlan_tpid == 0x8100 && pk.hdr.csum_start == 38 && pk.len == 100,
          "a VLAN tag the kernel took off is reported (tpid 0x8100), csum_start moves by 4 "
          "(%u)", pk.hdr.csum_start);
    p.status = TP_STATUS_VLAN_VALID | TP_STATUS_VLAN_TPID_VALID;
    p.vlan_tpid = 0x88a8;
    CHECK(one(&p, size, &pk) == UPLINK_PKT_OK && pk.vlan_tpid == 0x88a8,
          "with TPID_VALID the kernel's tpid is kept (0x%x)", pk.vlan_tpid);

    struct pktspec t = { .snaplen = 1514, .len = 1514 };
    t.h.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
    t.h.gso_type = VIRTIO_NET_HDR_GSO_TCPV4;
    t.h.gso_size = 1448;
    t.h.hdr_len = 66;
    t.h.csum_start = 34;
    t.h.csum_offset = 16;
    CHECK(one(&t, size, &pk) == UPLINK_PKT_OK && pk.hdr.gso_size == 1448 &&
              pk.hdr.gso_type == VIRTIO_NET_HDR_GSO_TCPV4,
          "a TCPv4 TSO header the kernel made passes as it is");
}

static void lengths(void)
{
    struct uplink_pkt pk;
    size_t big = 160 * 1024;
    struct pktspec p = { .snaplen = 100, .len = 200 };
    CHECK(one(&p, 8192, &pk) == UPLINK_PKT_TRUNCATED, "snaplen < len (the ring cut it): dropped");
    p.snaplen = p.len = 13;
    CHECK(one(&p, 8192, &pk) == UPLINK_PKT_TRUNCATED, "13 bytes (no Ethernet header): dropped");
    p.snaplen = p.len = 14;
    CHECK(one(&p, 8192, &pk) == UPLINK_PKT_OK, "14 bytes: taken");
    p.snaplen = p.len = FRAME_MAX;
    CHECK(one(&p, big, &pk) == UPLINK_PKT_OK, "FRAME_MAX (%u) bytes: taken", FRAME_MAX);
    p.snaplen = p.len = FRAME_MAX + 1;
    CHECK(one(&p, big, &pk) == UPLINK_PKT_TRUNCATED, "FRAME_MAX + 1 bytes: dropped");
    p.snaplen = p.len = FRAME_MAX - 2;
    p.status = TP_STATUS_VLAN_VALID;
    CHECK(one(&p, big, &pk) == UPLINK_PKT_TRUNCATED,
          "FRAME_MAX - 2 bytes with a tag to put back (FRAME_MAX + 2): dropped");

    /* A bad frame does not end the walk. */
    uint8_t *b = new_block(8192);
    put_desc(b, 2, FIRST);
    struct pktspec cut = { .snaplen = 64, .len = 1000 }, fine = { .snaplen = 64, .len = 64 };
    put_pkt(b, 8192, put_pkt(b, 8192, FIRST, &cut) - 0, &fine);
    struct uplink_blk_iter it;
    uplink_blk_begin(&it, b, 8192, VNET);
    CHECK(uplink_blk_next(&it, &pk) == UPLINK_PKT_TRUNCATED &&
              uplink_blk_next(&it, &pk) == UPLINK_PKT_OK && pk.len == 64,
          "after a frame cut short, the next frame of the block is taken");
    free(b);
}

static enum uplink_pkt_rc with_hdr(uint8_t flags, uint8_t gso, uint16_t gso_size,
                                   uint16_t hdr_len, uint16_t start, uint16_t off)
{
    struct uplink_pkt pk;
    struct pktspec p = { .snaplen = 200, .len = 200 };
    p.h.flags = flags;
    p.h.gso_type = gso;
    p.h.gso_size = gso_size;
    p.h.hdr_len = hdr_len;
    p.h.csum_start = start;
    p.h.csum_offset = off;
    return one(&p, 8192, &pk);
}

static void headers(void)
{
    const uint8_t C = VIRTIO_NET_HDR_F_NEEDS_CSUM, T4 = VIRTIO_NET_HDR_GSO_TCPV4;
    CHECK(with_hdr(C, 0, 0, 0, 34, 16) == UPLINK_PKT_OK, "a partial checksum at 34+16: taken");
    CHECK(with_hdr(C, 0, 0, 0, 0, 0) == UPLINK_PKT_BAD_HDR,
          "a checksum into the destination MAC (start 0): dropped");
    CHECK(with_hdr(C, 0, 0, 0, 6, 2) == UPLINK_PKT_BAD_HDR,
          "a checksum into the source MAC (start 6): dropped");
    CHECK(with_hdr(C, 0, 0, 0, 199, 0) == UPLINK_PKT_BAD_HDR,
          "a checksum field past the end (start 199 of 200): dropped");
    CHECK(with_hdr(C, 0, 0, 0, 190, 60000) == UPLINK_PKT_BAD_HDR,
          "a checksum offset far past the end: dropped");
    CHECK(with_hdr(C, 0, 0, 0, 65535, 65535) == UPLINK_PKT_BAD_HDR, "start and offset 65535: dropped");
    CHECK(with_hdr(0x80, 0, 0, 0, 0, 0) == UPLINK_PKT_BAD_HDR, "an unknown flag: dropped");
    CHECK(with_hdr(0, T4, 1448, 54, 0, 0) == UPLINK_PKT_BAD_HDR,
          "TSO without a checksum request: dropped");
    CHECK(with_hdr(C, T4, 0, 54, 34, 16) == UPLINK_PKT_BAD_HDR, "TSO with gso_size 0: dropped");
    CHECK(with_hdr(C, T4, 100, 201, 34, 16) == UPLINK_PKT_BAD_HDR,
          "TSO with hdr_len past the frame: dropped");
    CHECK(with_hdr(C, 9, 100, 54, 34, 16) == UPLINK_PKT_BAD_HDR, "an unknown GSO type: dropped");
    CHECK(with_hdr(C, 5, 100, 42, 34, 6) == UPLINK_PKT_GSO_UNSUPPORTED,
          "UDP segmentation (GSO_UDP_L4): dropped as unsupported");
    CHECK(with_hdr(C, T4 | VIRTIO_NET_HDR_GSO_ECN, 100, 54, 34, 16) == UPLINK_PKT_GSO_UNSUPPORTED,
          "TSO with ECN: dropped as unsupported");
    CHECK(with_hdr(C, T4, 100, 54, 34, 16) == UPLINK_PKT_OK, "TSO with gso_size 100: taken");
}

static void ring_bounds(void)
{
    struct uplink_blk_iter it;
    struct uplink_pkt pk;
    uint8_t *b = new_block(8192);
    put_desc(b, 1, 8192 - 20);
    CHECK(!uplink_blk_begin(&it, b, 8192, VNET), "first packet header past the block: refused");
    put_desc(b, 1, 8);
    CHECK(!uplink_blk_begin(&it, b, 8192, VNET), "first packet inside the block descriptor: refused");
    put_desc(b, 1, 0xffffffffu);
    CHECK(!uplink_blk_begin(&it, b, 8192, VNET), "first packet at 4 GiB: refused");
    CHECK(!uplink_blk_begin(&it, b, 16, VNET), "a block smaller than its descriptor: refused");

    struct pktspec p = { .snaplen = 200, .len = 200, .mac = 8000 };
    put_desc(b, 1, FIRST);
    put_pkt(b, 8192, FIRST, &p);
    uplink_blk_begin(&it, b, 8192, VNET);
    CHECK(uplink_blk_next(&it, &pk) == UPLINK_PKT_BAD_RING && uplink_blk_next(&it, &pk) == UPLINK_PKT_END,
          "a frame running past the block's end: the block is given up");
    p.mac = 40;
    put_pkt(b, 8192, FIRST, &p);
    uplink_blk_begin(&it, b, 8192, VNET);
    CHECK(uplink_blk_next(&it, &pk) == UPLINK_PKT_BAD_RING,
          "a frame overlapping its own header and vnet header (tp_mac 40): given up");
    p.mac = 0xffff;
    p.snaplen = p.len = 0xffffffffu;
    put_pkt(b, 8192, FIRST, &p);
    uplink_blk_begin(&it, b, 8192, VNET);
    CHECK(uplink_blk_next(&it, &pk) == UPLINK_PKT_BAD_RING, "tp_mac 65535, snaplen 4 GiB: given up");

    /* Links between packets. */
    struct pktspec loop = { .snaplen = 60, .len = 60, .next = 0 };
    put_desc(b, 1000000, FIRST);
    memset(b + FIRST, 0, 8192 - FIRST);
    put_pkt(b, 8192, FIRST, &loop);
    struct tpacket3_hdr h;
    memcpy(&h, b + FIRST, sizeof h);
    h.tp_next_offset = 0;                    /* points at itself */
    memcpy(b + FIRST, &h, sizeof h);
    uplink_blk_begin(&it, b, 8192, VNET);
    CHECK(uplink_blk_next(&it, &pk) == UPLINK_PKT_BAD_RING && uplink_blk_next(&it, &pk) == UPLINK_PKT_END,
          "a packet whose next is itself (a loop): given up at once");
    h.tp_next_offset = 8192;                 /* past the end */
    memcpy(b + FIRST, &h, sizeof h);
    uplink_blk_begin(&it, b, 8192, VNET);
    CHECK(uplink_blk_next(&it, &pk) == UPLINK_PKT_BAD_RING, "a next offset past the block: given up");
    h.tp_next_offset = 16;                   /* into its own header */
    memcpy(b + FIRST, &h, sizeof h);
    uplink_blk_begin(&it, b, 8192, VNET);
    CHECK(uplink_blk_next(&it, &pk) == UPLINK_PKT_BAD_RING,
          "a next offset inside this packet's header: given up");

    /* A million packets claimed, each 48 bytes on: the walk still ends at
     * the block's end. */
    put_desc(b, 1000000, FIRST);
    for (size_t off = FIRST; off + 48 <= 8192; off += 48) {
        memset(&h, 0, sizeof h);
        h.tp_next_offset = 48;
        h.tp_mac = 48 + VNET;
        memcpy(b + off, &h, sizeof h);
    }
    uplink_blk_begin(&it, b, 8192, VNET);
    unsigned steps = 0;
    enum uplink_pkt_rc rc;
    while ((rc = uplink_blk_next(&it, &pk)) != UPLINK_PKT_END && steps < 100000)
        steps++;
    CHECK(steps <= 8192 / 48 + 1, "1000000 packets claimed in 8 KiB: the walk ends after %u", steps);
    free(b);
}

/* Random descriptors: the walk ends and hands out only frames inside. */
static void random_blocks(void)
{
    unsigned bad = 0, frames = 0;
    srand(16);
    for (unsigned k = 0; k < 3000; k++) {
        size_t size = 256 + (size_t)(rand() % 4096);
        uint8_t *b = new_block(size);
        for (size_t i = 0; i < size; i++)
            b[i] = (uint8_t)rand();
        /* Plausible fields half the time, so the walk gets going. */
        if (k % 2) {
            put_desc(b, (uint32_t)(rand() % 40), FIRST);
            for (size_t off = FIRST; off + 48 <= size; off += 64) {
                struct tpacket3_hdr h;
                memcpy(&h, b + off, sizeof h);
                h.tp_next_offset = (uint32_t)(rand() % 3 ? 64 : rand() % 200);
                h.tp_mac = (uint16_t)(48 + rand() % 40);
                h.tp_snaplen = h.tp_len = (uint32_t)(rand() % 80);
                memcpy(b + off, &h, sizeof h);
            }
        }
        struct uplink_blk_iter it;
        struct uplink_pkt pk;
        if (uplink_blk_begin(&it, b, size, VNET)) {
            unsigned steps = 0;
            enum uplink_pkt_rc rc;
            while ((rc = uplink_blk_next(&it, &pk)) != UPLINK_PKT_END && steps <= size) {
                steps++;
                if (rc == UPLINK_PKT_OK) {
                    frames++;
                    bad += pk.data < b + 48 || pk.data + pk.len > b + size ||
                           pk.len < ETH_HLEN_MIN;
                }
            }
            bad += steps > size / 48 + 1;
        }
        free(b);
    }
    CHECK(bad == 0, "3000 random blocks: every walk ended, %u frames handed out, all inside "
          "their block (%u bad)", frames, bad);
}

int main(void)
{
    good_blocks();
    lengths();
    headers();
    ring_bounds();
    random_blocks();
    return check_done("test_uplink");
}
