/*
 * net.c - see net.h.
 *
 * RX fill: the chains of a run are popped as a burst (their heads and
 * descriptors read once, their first buffer lines prefetched for writing),
 * then each frame takes the next chain.  The common case, a whole frame
 * from one contiguous source into one buffer of one chain, is two memcpys
 * and a used entry; everything else (mergeable frames over several chains,
 * scattered sources, checksums completed in software) takes the general
 * path, which keeps of the first chain only the slices it still has to
 * write (the header, the checksum field), so later chains may reuse the
 * burst's space.
 */
#include "net.h"

#include <string.h>

#include "iov.h"
#include "log.h"
#include "offload.h"

bool net_takes_gso(const struct vdev *d, const struct frame *f)
{
    switch (f->hdr.gso_type) {
    case VIRTIO_NET_HDR_GSO_NONE:
        return true;
    case VIRTIO_NET_HDR_GSO_TCPV4:
        return d->caps.guest_tso4;
    case VIRTIO_NET_HDR_GSO_TCPV6:
        return d->caps.guest_tso6;
    default:
        return false;
    }
}

bool net_tx_parse(const struct dev_caps *c, const struct vq_chain *ch, struct frame *f)
{
    unsigned hlen = c->hdr_len;
    if (ch->out_len < hlen + ETH_HLEN_MIN || ch->out_len - hlen > FRAME_MAX)
        return false;
    size_t len = (size_t)(ch->out_len - hlen);
    const struct iovec *v = ch->iov;
    const uint8_t *base = v[0].iov_base;
    struct virtio_net_hdr *h = &f->hdr;
    /* Header and Ethernet header are copied once into the frame's own
     * storage; everything decided about the frame is decided on these
     * copies.  (Copied straight there: a copy through a local costs a
     * store-forwarding stall per frame.) */
    if (v[0].iov_len >= hlen + ETH_HLEN_MIN) {
        memcpy(h, base, VIRTIO_NET_HDR_LEN_LEGACY);
        memcpy(f->eth, base + hlen, ETH_HLEN_MIN);
    } else {
        iov_to_buf(v, ch->n_out, 0, h, VIRTIO_NET_HDR_LEN_LEGACY);
        iov_to_buf(v, ch->n_out, hlen, f->eth, ETH_HLEN_MIN);
    }
    h->num_buffers = 0;   /* ours to fill on the way out */
    if (h->flags || h->gso_type) {
        struct offload_caps oc = { c->csum, c->host_tso4, c->host_tso6 };
        if (!offload_hdr_valid(h, len, &oc))
            return false;
    }
    f->iov = v;
    f->niov = ch->n_out;
    f->skip = hlen;
    f->len = len;
    f->flat = v[0].iov_len >= hlen + len ? base + hlen : NULL;
    return true;
}

void net_frame_flat(struct frame *f, struct iovec *iov, const uint8_t *data, size_t len,
                    const struct virtio_net_hdr *h)
{
    iov->iov_base = (void *)data;
    iov->iov_len = len;
    f->iov = iov;
    f->niov = 1;
    f->skip = 0;
    f->len = len;
    f->flat = data;
    f->hdr = *h;
    f->hdr.num_buffers = 0;
    memcpy(f->eth, data, ETH_HLEN_MIN);
}

enum rx_status { RX_OK, RX_DROPPED, RX_FULL, RX_BROKEN };

/* Counters of one run, added to the queue's once at its end. */
struct rx_counts {
    uint64_t packets, bytes, drops_full, drops_invalid, drops_nodest, sw_offload;
};

/* The next chain for the frame being written: a pre-popped one, else a
 * fresh burst of up to want chains (the burst's space is reused: every
 * chain taken before is written completely). */
static const struct vq_chain *chain_next(struct net_rx_scratch *s, struct vqueue *q, unsigned want)
{
    if (s->next == s->b.n) {
        s->b.n = s->b.niov = 0;
        s->next = 0;
        if (!vq_pop_burst(&q->vq, &q->dev->mem, &s->b, want, false, true))
            return NULL;
    }
    return &s->b.c[s->next++];
}

/* Gives back the chains a failed frame took (chains of them) and every
 * chain popped after them, and forgets its used entries. */
static void rx_rollback(struct net_rx_scratch *s, struct vqueue *q, unsigned chains,
                        uint32_t used_start)
{
    vq_used_rollback(&q->vq, used_start);
    vq_unpop(&q->vq, (uint16_t)(chains + s->b.n - s->next));
    s->b.n = s->b.niov = 0;
    s->next = 0;
}

/* Live migration: marks the first len bytes of c's writable buffers (what
 * the device wrote into them) dirty.  The header and a completed checksum
 * lie in those bytes too. */
static void rx_log(struct net_rx_scratch *s, struct vqueue *q, const struct vq_chain *c,
                   size_t len)
{
    const struct guest_mem *m = &q->dev->mem;
    const struct iovec *v = c->iov + c->n_out;
    for (unsigned i = 0; i < c->n_in && len; i++) {
        size_t l = v[i].iov_len < len ? v[i].iov_len : len;
        mem_log_host(m, v[i].iov_base, l, &s->lb);
        len -= l;
    }
}

/* The header a guest receives with f. */
static void rx_hdr(struct virtio_net_hdr *h, const struct frame *f, bool csum_done)
{
    memset(h, 0, sizeof(*h));
    if ((f->hdr.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) && !csum_done) {
        h->flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
        h->csum_start = f->hdr.csum_start;
        h->csum_offset = f->hdr.csum_offset;
    }
    if (f->hdr.gso_type != VIRTIO_NET_HDR_GSO_NONE) {
        h->gso_type = f->hdr.gso_type;
        h->gso_size = f->hdr.gso_size;
        h->hdr_len = f->hdr.hdr_len;
    }
}

/* Writes the header of a frame that needs no offload (flags and GSO type
 * zero) into one buffer: two stores, not a copy of a built structure. */
static void put_plain_hdr(uint8_t *dst, unsigned hlen, uint16_t num_buffers)
{
    uint64_t w0 = 0;                                     /* flags..csum_start */
    uint32_t w1 = (uint32_t)num_buffers << 16;           /* csum_offset, num_buffers */
    memcpy(dst, &w0, 8);
    memcpy(dst + 8, &w1, hlen == VIRTIO_NET_HDR_LEN ? 4 : 2);
}

/* The checksum a partial-checksum frame is completed with, big-endian. */
static void frame_csum(const struct frame *f, uint8_t be[2])
{
    uint16_t c = (uint16_t)~csum_fold(csum_iov(f->iov, f->niov, f->skip + f->hdr.csum_start,
                                               f->len - f->hdr.csum_start));
    be[0] = (uint8_t)(c >> 8);
    be[1] = (uint8_t)c;
}

/* Status of a failed chain fetch: the ring broke or it is out of buffers. */
static enum rx_status no_chain(struct vqueue *q)
{
    return vq_broken(&q->vq) ? RX_BROKEN : RX_FULL;
}

/* Writes f over one or more chains (the general path). c is its first
 * chain, already taken.  Kept out of line so the common path stays small. */
static __attribute__((noinline)) enum rx_status rx_general(struct net_rx_scratch *s, struct vqueue *q, const struct frame *f,
                                 const struct vq_chain *c, unsigned want, struct rx_counts *cnt)
{
    const struct dev_caps *caps = &q->dev->caps;
    unsigned hlen = caps->hdr_len;
    size_t need = hlen + f->len;
    bool need_csum = (f->hdr.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) && !caps->guest_csum;
    size_t csum_at = (size_t)f->hdr.csum_start + f->hdr.csum_offset;   /* in the frame */
    uint32_t used_start = vq_used_begin(&q->vq);
    struct iovec hdr_sl[VIRTIO_NET_HDR_LEN], csum_sl[2];
    int hdr_n = 0, csum_n = 0;
    unsigned chains = 0;
    size_t copied = 0;
    enum rx_status st;

    for (;;) {
        const struct iovec *wv = c->iov + c->n_out;
        chains++;
        size_t skip = 0;
        if (chains == 1) {
            /* The header must fit in the first chain (virtio 1.2 5.1.6.3). */
            if (c->in_len < hlen) {
                cnt->drops_invalid++;
                st = RX_DROPPED;
                goto rollback;
            }
            if (!caps->mrg_rxbuf && c->in_len < need) {
                cnt->drops_full++;
                st = RX_DROPPED;
                goto rollback;
            }
            hdr_n = iov_slice(wv, c->n_in, 0, hlen, hdr_sl, VIRTIO_NET_HDR_LEN);
            skip = hlen;
            if (need_csum) {
                /* Completed in the first chain, which must hold the field. */
                uint64_t first_len = c->in_len - hlen < f->len ? c->in_len - hlen : f->len;
                if (csum_at + 2 > first_len) {
                    cnt->drops_invalid++;
                    st = RX_DROPPED;
                    goto rollback;
                }
                csum_n = iov_slice(wv, c->n_in, hlen + csum_at, 2, csum_sl, 2);
            }
            if (hdr_n < 0 || (need_csum && csum_n < 0)) {
                cnt->drops_invalid++;   /* cannot happen: both lie inside the chain */
                st = RX_DROPPED;
                goto rollback;
            }
        }
        uint64_t room = c->in_len - skip;
        size_t chunk = f->len - copied < room ? f->len - copied : (size_t)room;
        size_t n = iov_copy(wv, c->n_in, skip, f->iov, f->niov, f->skip + copied, chunk);
        copied += n;
        vq_push(&q->vq, c->head, (uint32_t)(skip + n));
        if (mem_logging(&q->dev->mem))
            rx_log(s, q, c, skip + n);
        if (n < chunk) {
            /* The source ran short of what it announced: cannot happen for
             * a consistent frame; treat as invalid rather than loop. */
            cnt->drops_invalid++;
            st = RX_DROPPED;
            goto rollback;
        }
        if (copied == f->len)
            break;
        c = chain_next(s, q, want);
        if (!c) {
            /* Out of buffers mid-frame: this frame is dropped, but a
             * smaller one may still fit in what it gives back. */
            st = no_chain(q);
            if (st == RX_FULL) {
                cnt->drops_full++;
                st = RX_DROPPED;
            }
            goto rollback;
        }
    }
    struct virtio_net_hdr h;
    rx_hdr(&h, f, need_csum);
    h.num_buffers = caps->mrg_rxbuf ? (uint16_t)chains : 1;
    buf_to_iov(hdr_sl, (unsigned)hdr_n, 0, &h, hlen);
    if (need_csum) {
        uint8_t be[2];
        frame_csum(f, be);
        buf_to_iov(csum_sl, (unsigned)csum_n, 0, be, 2);
        cnt->sw_offload++;
    }
    if (mem_logging(&q->dev->mem)) {
        /* Written after the chains were logged: logged again, after. */
        for (int i = 0; i < hdr_n; i++)
            mem_log_host(&q->dev->mem, hdr_sl[i].iov_base, hdr_sl[i].iov_len, &s->lb);
        for (int i = 0; need_csum && i < csum_n; i++)
            mem_log_host(&q->dev->mem, csum_sl[i].iov_base, csum_sl[i].iov_len, &s->lb);
    }
    vq_used_end(&q->vq);    /* the header is in: its used entries may go out */
    cnt->packets++;
    cnt->bytes += f->len;
    return RX_OK;

rollback:
    rx_rollback(s, q, chains, used_start);
    return st;
}

/* Writes one frame the guest can take as it is. */
static enum rx_status rx_one(struct net_rx_scratch *s, struct vqueue *q, const struct frame *f,
                             unsigned want, struct rx_counts *cnt)
{
    const struct vq_chain *c = chain_next(s, q, want);
    if (!c) {
        enum rx_status st = no_chain(q);
        if (st == RX_FULL)
            cnt->drops_full++;
        return st;
    }
    const struct dev_caps *caps = &q->dev->caps;
    unsigned hlen = caps->hdr_len;
    size_t need = hlen + f->len;
    /* The common case: the whole frame, contiguous, into one buffer. */
    if (c->n_in == 1 && f->flat && c->in_len >= need) {
        uint8_t *dst = c->iov[c->n_out].iov_base;
        bool need_csum = (f->hdr.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) && !caps->guest_csum;
        if (!f->hdr.flags && !f->hdr.gso_type) {
            put_plain_hdr(dst, hlen, 1);
        } else {
            struct virtio_net_hdr h;
            rx_hdr(&h, f, need_csum);
            h.num_buffers = 1;
            memcpy(dst, &h, hlen);
        }
        memcpy(dst + hlen, f->flat, f->len);
        if (need_csum) {
            /* offload_hdr_valid put the field inside the frame. */
            frame_csum(f, dst + hlen + f->hdr.csum_start + f->hdr.csum_offset);
            cnt->sw_offload++;
        }
        vq_push(&q->vq, c->head, (uint32_t)need);
        if (mem_logging(&q->dev->mem))
            rx_log(s, q, c, need);
        cnt->packets++;
        cnt->bytes += f->len;
        return RX_OK;
    }
    return rx_general(s, q, f, c, want, cnt);
}

struct seg_ctx {
    struct net_rx_scratch *s;
    struct vqueue *q;
    struct rx_counts *cnt;
    enum rx_status st;
};

static bool deliver_segment(void *arg, uint8_t *seg, size_t len)
{
    struct seg_ctx *c = arg;
    static const struct virtio_net_hdr plain;   /* segments carry full checksums */
    struct iovec iov;
    struct frame f;
    net_frame_flat(&f, &iov, seg, len, &plain);
    c->st = rx_one(c->s, c->q, &f, 1, c->cnt);
    return c->st == RX_OK || c->st == RX_DROPPED;
}

/* Segments a GSO frame the guest did not negotiate into frames with
 * complete checksums and writes each (each counts as a packet). */
static enum rx_status rx_segmented(struct net_rx_scratch *s, struct vqueue *q, const struct frame *f,
                                   struct rx_counts *cnt)
{
    static __thread uint8_t linear[FRAME_MAX], seg[FRAME_MAX];
    size_t n = iov_to_buf(f->iov, f->niov, f->skip, linear, f->len);
    struct seg_ctx c = { s, q, cnt, RX_OK };
    uint64_t before = cnt->packets;
    if (n != f->len || gso_segment(linear, n, &f->hdr, seg, sizeof(seg), deliver_segment, &c) < 0) {
        cnt->drops_invalid++;
        return RX_DROPPED;
    }
    cnt->sw_offload++;
    if (c.st == RX_BROKEN)
        return RX_BROKEN;
    /* Some segments in: the frame was delivered, if not whole. */
    return cnt->packets > before ? RX_OK : c.st;
}

unsigned net_rx_run(struct net_rx_scratch *s, struct vqueue *q, const struct frame *f, unsigned n)
{
    struct rx_counts cnt = { 0, 0, 0, 0, 0, 0 };
    unsigned delivered = 0;
    s->b.n = s->b.niov = 0;
    s->next = 0;
    mem_log_batch_init(&s->lb);
    /* A kick on an RX queue would only say "more buffers": we never wait
     * for them (a full guest drops), so the driver need not pay for one
     * (without event indexes, DPDK's virtio-user kicks on every refill). */
    vq_disable_notify(&q->vq);
    for (unsigned i = 0; i < n; i++) {
        enum rx_status st = net_takes_gso(q->dev, &f[i]) ? rx_one(s, q, &f[i], n - i, &cnt)
                                                           : rx_segmented(s, q, &f[i], &cnt);
        if (st == RX_OK) {
            delivered++;
            continue;
        }
        if (st == RX_FULL) {
            /* Not one buffer left: the rest of the run finds none either. */
            cnt.drops_full += n - i - 1;
            break;
        }
        if (st == RX_BROKEN) {
            dev_mark_broken(q->dev, q, vq_broken(&q->vq));
            cnt.drops_nodest += n - i;
            break;
        }
    }
    /* Chains popped for frames that were dropped go back to the ring. */
    if (s->next < s->b.n)
        vq_unpop(&q->vq, (uint16_t)(s->b.n - s->next));
    mem_log_flush(&q->dev->mem, &s->lb);
    s->b.n = s->b.niov = 0;
    s->next = 0;
    stat_add(&q->st.packets, cnt.packets);
    stat_add(&q->st.bytes, cnt.bytes);
    if (cnt.drops_full)
        stat_add(&q->st.drops_full, cnt.drops_full);
    if (cnt.drops_invalid)
        stat_add(&q->st.drops_invalid, cnt.drops_invalid);
    if (cnt.drops_nodest)
        stat_add_shared(&q->st.drops_nodest, cnt.drops_nodest);   /* also bumped lock-free */
    if (cnt.sw_offload)
        stat_add(&q->st.sw_offload, cnt.sw_offload);
    return delivered;
}
