/*
 * net.c - see net.h.
 */
#include "net.h"

#include <string.h>

#include "log.h"
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

static uint32_t csum_add(uint32_t sum, const uint8_t *p, size_t len)
{
    for (; len > 1; p += 2, len -= 2)
        sum += (uint32_t)(p[0] << 8 | p[1]);
    if (len)
        sum += (uint32_t)(p[0] << 8);
    return sum;
}

bool net_csum_complete(uint8_t *frame, size_t len, const struct virtio_net_hdr *hdr)
{
    size_t start = hdr->csum_start, off = hdr->csum_offset;
    if (start >= len || off > len - start || 2 > len - start - off)
        return false;
    uint32_t sum = csum_add(0, frame + start, len - start);
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    uint16_t c = (uint16_t)~sum;
    frame[start + off] = (uint8_t)(c >> 8);
    frame[start + off + 1] = (uint8_t)c;
    return true;
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
    /* We offer neither checksum nor segmentation offload, so a guest must
     * send complete frames; anything else is a driver bug. */
    if (h.gso_type != VIRTIO_NET_HDR_GSO_NONE || (h.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM))
        return false;
    f->iov = e->iov;
    f->niov = e->n_out;
    f->skip = hlen;
    f->len = (size_t)(e->out_len - hlen);
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
        if (parse_tx(q, e, &f)) {
            bytes += f.len;
            switch_forward(ctx, d->port, q->index / 2, &f);
        } else {
            stat_add(&q->st.drops_invalid, 1);
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
        }
        size_t room = (size_t)(e->in_len > SIZE_MAX ? SIZE_MAX : e->in_len) - skip;
        size_t chunk = f->len - copied < room ? f->len - copied : room;
        size_t n = iov_copy(&e->iov[e->n_out], e->n_in, skip, f->iov, f->niov, f->skip + copied,
                            chunk);
        copied += n;
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
    h.num_buffers = mergeable ? chains : 1;
    buf_to_iov(hdr_iov, hdr_niov, 0, &h, hlen);
    vq_flush(vq);
    stat_add(&q->st.packets, 1);
    stat_add(&q->st.bytes, f->len);
    return true;

rollback:
    vq_unpop(vq, chains);
    vq->used_idx = used_start;
    return false;
}
