/*
 * net.c - see net.h.
 */
#include "net.h"

#include <string.h>

#include "log.h"
#include "offload.h"
#include "port.h"
#include "switch.h"

size_t iov_copy(const struct iovec *dst, unsigned dn, size_t dskip, const struct iovec *src,
                unsigned sn, size_t sskip, size_t len)
{
    unsigned di = 0, si = 0;
    while (di < dn && dskip >= dst[di].iov_len)
        dskip -= dst[di++].iov_len;
    while (si < sn && sskip >= src[si].iov_len)
        sskip -= src[si++].iov_len;
    size_t done = 0;
    while (done < len && di < dn && si < sn) {
        size_t dl = dst[di].iov_len - dskip;
        size_t sl = src[si].iov_len - sskip;
        size_t chunk = dl < sl ? dl : sl;
        if (chunk > len - done)
            chunk = len - done;
        memcpy((uint8_t *)dst[di].iov_base + dskip, (const uint8_t *)src[si].iov_base + sskip,
               chunk);
        done += chunk;
        dskip += chunk;
        sskip += chunk;
        if (dskip == dst[di].iov_len) {
            di++;
            dskip = 0;
        }
        if (sskip == src[si].iov_len) {
            si++;
            sskip = 0;
        }
    }
    return done;
}

bool net_takes_gso(const struct vdev *d, const struct frame *f)
{
    switch (f->hdr.gso_type) {
    case VIRTIO_NET_HDR_GSO_NONE:
        return true;
    case VIRTIO_NET_HDR_GSO_TCPV4:
        return dev_has_feature(d, VIRTIO_NET_F_GUEST_TSO4);
    case VIRTIO_NET_HDR_GSO_TCPV6:
        return dev_has_feature(d, VIRTIO_NET_F_GUEST_TSO6);
    default:
        return false;
    }
}

struct seg_ctx {
    struct vq_elem *scratch;
    struct vqueue *q;
    unsigned delivered;
};

static bool deliver_segment(void *arg, uint8_t *seg, size_t len)
{
    struct seg_ctx *c = arg;
    struct iovec iov = { seg, len };
    struct frame f = { .iov = &iov, .niov = 1, .skip = 0, .len = len };
    memcpy(f.eth, seg, ETH_HLEN_MIN);
    if (!net_rx_deliver(c->scratch, c->q, &f))
        return false;   /* the guest is full: the rest would be dropped too */
    c->delivered++;
    return true;
}

unsigned net_rx_deliver_segmented(struct vq_elem *scratch, struct vqueue *q, const struct frame *f)
{
    static __thread uint8_t linear[FRAME_MAX], seg[FRAME_MAX];
    size_t n = iov_copy(&(struct iovec){ linear, sizeof(linear) }, 1, 0, f->iov, f->niov, f->skip,
                        f->len);
    struct seg_ctx c = { scratch, q, 0 };
    if (n != f->len || gso_segment(linear, n, &f->hdr, seg, sizeof(seg), deliver_segment, &c) < 0) {
        stat_add(&q->st.drops_invalid, 1);
        return 0;
    }
    stat_add(&q->st.sw_offload, 1);
    return c.delivered;
}

/* Reads and checks the header of a TX chain; fills f.  Returns false for
 * a frame to drop (counted by the caller). */
static bool parse_tx(struct vqueue *q, const struct vq_elem *e, struct frame *f)
{
    unsigned hlen = dev_hdr_len(q->dev);
    if (e->out_len < hlen + ETH_HLEN_MIN || e->out_len - hlen > FRAME_MAX)
        return false;
    struct virtio_net_hdr h;
    memset(&h, 0, sizeof(h));
    iov_to_buf(e->iov, e->n_out, 0, &h, hlen);
    const struct vdev *d = q->dev;
    struct offload_caps caps = { dev_has_feature(d, VIRTIO_NET_F_CSUM),
                                 dev_has_feature(d, VIRTIO_NET_F_HOST_TSO4),
                                 dev_has_feature(d, VIRTIO_NET_F_HOST_TSO6) };
    size_t len = (size_t)(e->out_len - hlen);
    if (!offload_hdr_valid(&h, len, &caps))
        return false;
    h.num_buffers = 0;
    f->hdr = h;
    f->iov = e->iov;
    f->niov = e->n_out;
    f->skip = hlen;
    f->len = len;
    iov_to_buf(e->iov, e->n_out, hlen, f->eth, ETH_HLEN_MIN);
    return true;
}

unsigned net_tx_pass(struct fwd_ctx *ctx, struct vqueue *q, unsigned budget, bool rearm,
                     bool *more)
{
    struct vdev *d = q->dev;
    struct vq *vq = &q->vq;
    struct vq_elem *e = &ctx->tx_elem;
    unsigned done = 0;
    uint64_t bytes = 0;
    *more = false;
    vq_disable_notify(vq);
    while (done < budget) {
        enum vq_pop_result r = vq_pop(vq, &d->mem, e, true, false);
        if (r == VQ_BROKEN) {
            dev_mark_broken(d, q, vq->broken_reason);
            break;
        }
        if (r == VQ_EMPTY) {
            if (!rearm || !vq_enable_notify(vq))
                break;
            vq_disable_notify(vq);
            continue;
        }
        struct frame f;
        if (!parse_tx(q, e, &f)) {
            stat_add(&q->st.drops_invalid, 1);
        } else if (!switch_source_ok(d->port, &f)) {
            stat_add(&q->st.drops_spoofed, 1);
        } else {
            bytes += f.len;
            switch_forward(ctx, d->port, q->index / 2, &f);
        }
        vq_push(vq, e->head, 0);
        done++;
    }
    if (done == budget)
        *more = true;
    unsigned bucket = done ? 64u - (unsigned)__builtin_clzll(done) : 0;
    stat_add(&q->st.batch[bucket < BATCH_BUCKETS ? bucket : BATCH_BUCKETS - 1], 1);
    if (done) {
        vq_flush(vq);
        stat_add(&q->st.packets, done);
        stat_add(&q->st.bytes, bytes);
        if (vq_should_signal(vq))
            dev_signal(q);
    }
    return done;
}

/* Where the header of the first RX chain lives, remembered while more
 * chains are gathered for a mergeable frame. */
#define HDR_IOV_MAX 16

bool net_rx_deliver(struct vq_elem *e, struct vqueue *q, const struct frame *f)
{
    struct vdev *d = q->dev;
    struct vq *vq = &q->vq;
    unsigned hlen = dev_hdr_len(d);
    bool mergeable = dev_has_feature(d, VIRTIO_NET_F_MRG_RXBUF);
    size_t need = hlen + f->len;
    size_t copied = 0;      /* frame bytes written */
    uint16_t chains = 0;
    struct iovec hdr_iov[HDR_IOV_MAX];
    unsigned hdr_niov = 0;
    uint16_t used_start = vq->used_idx;
    /* A partial checksum the guest cannot take is completed here, into the
     * first buffer, which must then hold the checksum field. */
    bool need_csum = (f->hdr.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) &&
                     !dev_has_feature(d, VIRTIO_NET_F_GUEST_CSUM);
    size_t csum_at = (size_t)f->hdr.csum_start + f->hdr.csum_offset;
    struct iovec first_iov[HDR_IOV_MAX];
    unsigned first_niov = 0;
    size_t first_len = 0;

    while (hlen + copied < need) {
        enum vq_pop_result r = vq_pop(vq, &d->mem, e, false, true);
        if (r == VQ_BROKEN) {
            dev_mark_broken(d, q, vq->broken_reason);
            goto rollback;
        }
        if (r == VQ_EMPTY || (!mergeable && e->in_len < need)) {
            if (r == VQ_GOT)
                chains++;
            stat_add(&q->st.drops_full, 1);
            goto rollback;
        }
        size_t skip = 0;
        if (chains == 0) {
            /* The header must fit in the first chain (virtio 1.2 5.1.6.3). */
            if (e->in_len < hlen) {
                chains++;
                stat_add(&q->st.drops_invalid, 1);
                goto rollback;
            }
            size_t left = hlen;
            for (unsigned i = 0; i < e->n_in && left > 0; i++) {
                if (hdr_niov == HDR_IOV_MAX) {
                    chains++;
                    stat_add(&q->st.drops_invalid, 1);
                    goto rollback;
                }
                hdr_iov[hdr_niov] = e->iov[e->n_out + i];
                if (hdr_iov[hdr_niov].iov_len > left)
                    hdr_iov[hdr_niov].iov_len = left;
                left -= hdr_iov[hdr_niov].iov_len;
                hdr_niov++;
            }
            skip = hlen;
            for (unsigned i = 0; i < e->n_in && first_niov < HDR_IOV_MAX; i++)
                first_iov[first_niov++] = e->iov[e->n_out + i];
        }
        size_t room = (size_t)(e->in_len > SIZE_MAX ? SIZE_MAX : e->in_len) - skip;
        size_t chunk = f->len - copied < room ? f->len - copied : room;
        size_t n = iov_copy(&e->iov[e->n_out], e->n_in, skip, f->iov, f->niov, f->skip + copied,
                            chunk);
        copied += n;
        if (chains == 0)
            first_len = n;
        vq_push(vq, e->head, (uint32_t)(skip + n));
        chains++;
        if (n < chunk) {
            /* The source ran short of what it announced: cannot happen for
             * a consistent frame; treat as invalid rather than loop. */
            stat_add(&q->st.drops_invalid, 1);
            goto rollback;
        }
    }
    struct virtio_net_hdr h;
    memset(&h, 0, sizeof(h));
    if (need_csum) {
        if (csum_at + 2 > first_len) {
            stat_add(&q->st.drops_invalid, 1);
            goto rollback;
        }
        uint16_t c = (uint16_t)~csum_fold(csum_iov(f->iov, f->niov, f->skip + f->hdr.csum_start,
                                                   f->len - f->hdr.csum_start));
        uint8_t be[2] = { (uint8_t)(c >> 8), (uint8_t)c };
        buf_to_iov(first_iov, first_niov, hlen + csum_at, be, 2);
        stat_add(&q->st.sw_offload, 1);
    } else if (f->hdr.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
        h.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
        h.csum_start = f->hdr.csum_start;
        h.csum_offset = f->hdr.csum_offset;
    }
    if (f->hdr.gso_type != VIRTIO_NET_HDR_GSO_NONE) {
        h.gso_type = f->hdr.gso_type;
        h.gso_size = f->hdr.gso_size;
        h.hdr_len = f->hdr.hdr_len;
    }
    h.num_buffers = mergeable ? chains : 1;
    buf_to_iov(hdr_iov, hdr_niov, 0, &h, hlen);
    /* Not published yet: the caller flushes once per batch. */
    stat_add(&q->st.packets, 1);
    stat_add(&q->st.bytes, f->len);
    return true;

rollback:
    vq_unpop(vq, chains);
    vq->used_idx = used_start;
    return false;
}
