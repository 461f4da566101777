/*
 * net.h - virtio-net semantics on top of generic virtqueues.
 *
 * Owns: the virtio-net header (parsing what a guest sends, writing what a
 * guest receives), draining a TX queue into the switch, filling a guest's
 * RX buffers (mergeable or not) straight from the source buffers, passing
 * offload requests on or completing them in software (offload.c).
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
/* Largest frame: a 64 KiB TSO frame plus Ethernet and VLAN headers. */
#define FRAME_MAX (65536u + 18u)

/* A frame on its way through the switch: payload scattered over the
 * source's iovecs (guest memory or a local buffer), after skip bytes. */
struct frame {
    const struct iovec *iov;
    unsigned niov;
    size_t skip;
    size_t len;
    uint8_t eth[ETH_HLEN_MIN];   /* private copy of the Ethernet header */
    struct virtio_net_hdr hdr;   /* offload request (checked); num_buffers unused */
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
 * and q->rx_lock).  Returns true if delivered; counts its own drops.  The
 * used entries are written but not published: the caller calls vq_flush
 * once for a batch of frames. */
bool net_rx_deliver(struct vq_elem *scratch, struct vqueue *q, const struct frame *f);

/* True if the device can receive f's segmentation request as it is. */
bool net_takes_gso(const struct vdev *d, const struct frame *f);
/* Delivers a GSO frame to a device that cannot take it: segments it in
 * software into frames with complete checksums (same locking as
 * net_rx_deliver).  Returns the segments delivered. */
unsigned net_rx_deliver_segmented(struct vq_elem *scratch, struct vqueue *q, const struct frame *f);

/* Copies len bytes from (src, skip) to (dst, dskip). Returns bytes copied. */
size_t iov_copy(const struct iovec *dst, unsigned dn, size_t dskip, const struct iovec *src,
                unsigned sn, size_t sskip, size_t len);

#endif
