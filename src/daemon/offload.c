/*
 * offload.c - see offload.h.
 */
#include "offload.h"

#include <string.h>

#include "iov.h"

bool offload_hdr_valid(const struct virtio_net_hdr *h, size_t len, const struct offload_caps *c)
{
    bool csum = h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM;
    if (h->flags & ~(VIRTIO_NET_HDR_F_NEEDS_CSUM | VIRTIO_NET_HDR_F_DATA_VALID))
        return false;
    if (csum) {
        size_t start = h->csum_start, off = h->csum_offset;
        if (!c->csum || start >= len || off > len - start || len - start - off < 2)
            return false;
    }
    /* hdr_len is passed on to guests that take GSO: never beyond the frame
     * (as the kernel's tun refuses it from us). */
    if (h->gso_type != VIRTIO_NET_HDR_GSO_NONE && h->hdr_len > len)
        return false;
    switch (h->gso_type) {
    case VIRTIO_NET_HDR_GSO_NONE:
        return true;
    case VIRTIO_NET_HDR_GSO_TCPV4:
        return c->tso4 && csum && h->gso_size > 0;
    case VIRTIO_NET_HDR_GSO_TCPV6:
        return c->tso6 && csum && h->gso_size > 0;
    default:
        return false;   /* UDP fragmentation and ECN are not offered */
    }
}

/* A one's-complement sum over pieces of a byte stream. */
struct csum_acc {
    uint64_t sum;
    bool odd;   /* the next byte is the low half of a 16-bit word */
};

static int csum_piece(void *arg, const uint8_t *p, size_t l)
{
    struct csum_acc *a = arg;
    for (size_t k = 0; k < l; k++) {
        a->sum += a->odd ? p[k] : (uint32_t)p[k] << 8;
        a->odd = !a->odd;
    }
    return 1;
}

uint32_t csum_iov(const struct iovec *iov, unsigned n, size_t skip, size_t len)
{
    struct csum_acc a = { 0, false };
    iov_walk(iov, n, skip, len, csum_piece, &a);
    while (a.sum >> 32)
        a.sum = (a.sum & 0xffffffffu) + (a.sum >> 32);
    return (uint32_t)a.sum;
}

uint16_t csum_fold(uint32_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)sum;
}

static uint32_t csum_buf(const uint8_t *p, size_t len)
{
    struct iovec v = { (void *)p, len };
    return csum_iov(&v, 1, 0, len);
}

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

bool offload_csum_complete(uint8_t *frame, size_t len, const struct virtio_net_hdr *h)
{
    size_t start = h->csum_start, off = h->csum_offset;
    if (start >= len || off > len - start || len - start - off < 2)
        return false;
    /* The sum from csum_start to the end, over the pseudo-header sum the
     * sender left in the field, is the checksum (virtio 1.2, 5.1.6.2). */
    uint16_t sum = (uint16_t)~csum_fold(csum_buf(frame + start, len - start));
    if (sum == 0)
        sum = 0xffff;   /* as the kernel does: 0 in a UDP checksum would mean "none" */
    put16(frame + start + off, sum);
    return true;
}

#define TCP_FIN 0x01
#define TCP_PSH 0x08
#define TCP_CWR 0x80

int gso_segment(const uint8_t *f, size_t len, const struct virtio_net_hdr *h, uint8_t *seg,
                size_t seg_cap, gso_emit_fn emit, void *arg)
{
    size_t l2 = 14;
    if (len < l2)
        return -1;
    uint16_t type = get16(f + 12);
    if (type == 0x8100) {
        l2 += 4;
        if (len < l2)
            return -1;
        type = get16(f + 16);
    }
    bool v4 = type == 0x0800, v6 = type == 0x86dd;
    size_t l3;
    if (v4 && len >= l2 + 20) {
        l3 = (size_t)(f[l2] & 0x0f) * 4;
        if ((f[l2] >> 4) != 4 || l3 < 20 || f[l2 + 9] != 6)
            return -1;
    } else if (v6 && len >= l2 + 40) {
        l3 = 40;
        if ((f[l2] >> 4) != 6 || f[l2 + 6] != 6)
            return -1;   /* extension headers are not segmented here */
    } else {
        return -1;
    }
    size_t l4_off = l2 + l3;
    if (len < l4_off + 20)
        return -1;
    size_t l4 = (size_t)(f[l4_off + 12] >> 4) * 4;
    size_t hdrs = l4_off + l4;
    if (l4 < 20 || len < hdrs)
        return -1;
    size_t mss = h->gso_size, payload = len - hdrs;
    if (mss == 0 || seg_cap < hdrs + (mss < payload ? mss : payload))
        return -1;
    /* A tiny gso_size would make one frame cost thousands of segments
     * (a 64 KiB frame with gso_size 1): refuse what no real stack sends. */
    if ((payload + mss - 1) / mss > GSO_MAX_SEGS)
        return -1;
    uint32_t seq = get32(f + l4_off + 4);
    uint16_t ip_id = v4 ? get16(f + l2 + 4) : 0;
    uint8_t flags = f[l4_off + 13];
    int count = 0;
    for (size_t off = 0; off < payload || (payload == 0 && count == 0); off += mss) {
        size_t chunk = payload - off < mss ? payload - off : mss;
        bool first = off == 0, last = off + chunk >= payload;
        memcpy(seg, f, hdrs);
        memcpy(seg + hdrs, f + hdrs + off, chunk);
        uint8_t *ip = seg + l2, *tcp = seg + l4_off;
        size_t tcp_len = l4 + chunk;
        uint32_t pseudo;
        if (v4) {
            put16(ip + 2, (uint16_t)(l3 + tcp_len));
            put16(ip + 4, (uint16_t)(ip_id + count));
            put16(ip + 10, 0);
            put16(ip + 10, (uint16_t)~csum_fold(csum_buf(ip, l3)));
            pseudo = csum_buf(ip + 12, 8) + 6 + (uint32_t)tcp_len;
        } else {
            put16(ip + 4, (uint16_t)tcp_len);
            pseudo = csum_buf(ip + 8, 32) + 6 + (uint32_t)tcp_len;
        }
        put32(tcp + 4, seq + (uint32_t)off);
        uint8_t fl = flags;
        if (!last)
            fl &= (uint8_t)~(TCP_FIN | TCP_PSH);
        if (!first)
            fl &= (uint8_t)~TCP_CWR;
        tcp[13] = fl;
        put16(tcp + 16, 0);
        put16(tcp + 16, (uint16_t)~csum_fold(pseudo + csum_buf(tcp, tcp_len)));
        count++;
        if (!emit(arg, seg, hdrs + chunk))
            return count;
        if (payload == 0)
            break;
    }
    return count;
}
