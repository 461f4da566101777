/*
 * net.h - virtio-net semantics on top of generic virtqueues.
 *
 * Owns: the virtio-net header (parsing what a guest sends, writing what a
 * guest receives), draining a TX queue into the switch, filling a guest's
 * RX buffers (mergeable or not) straight from the source buffers, and
 * checksum completion for frames that carry a partial checksum.
 * Must not: choose destinations (switch.c) or decide when to run (worker.c).
 */
#ifndef LWV_NET_H
#define LWV_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "device.h"
#include "virtio.h"

#define ETH_HLEN_MIN 14
#define FRAME_MAX 65535u

/* A frame on its way through the switch: payload scattered over the
 * source's iovecs (guest memory or a local buffer), after skip bytes. */
struct frame {
    const struct iovec *iov;
    unsigned niov;
    size_t skip;
    size_t len;
    uint8_t eth[ETH_HLEN_MIN];   /* private copy of the Ethernet header */
};

struct fwd_ctx;

/* Serves up to budget frames from a TX queue (caller holds the device's
 * read lock and has checked readiness), with guest kicks suppressed.
 * Returns the frames handled; *more is set when the queue still has work.
 * With rearm, a queue found empty gets its kicks re-enabled and is checked
 * once more (the kick-driven policy); without, kicks stay suppressed. */
unsigned net_tx_pass(struct fwd_ctx *ctx, struct vqueue *q, unsigned budget, bool rearm,
                     bool *more);

/* Copies f into q's guest buffers (caller holds q->dev->lock for reading
 * and q->rx_lock).  Returns true if delivered; counts its own drops. */
bool net_rx_deliver(struct vq_elem *scratch, struct vqueue *q, const struct frame *f);

/* Completes a partial checksum described by hdr in a linear frame.
 * Returns false if csum_start/csum_offset point outside the frame. */
bool net_csum_complete(uint8_t *frame, size_t len, const struct virtio_net_hdr *hdr);

/* Copies len bytes from (src, skip) to (dst, dskip). Returns bytes copied. */
size_t iov_copy(const struct iovec *dst, unsigned dn, size_t dskip, const struct iovec *src,
                unsigned sn, size_t sskip, size_t len);

#endif
