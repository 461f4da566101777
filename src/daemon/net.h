/*
 * net.h - virtio-net semantics on top of generic virtqueues.
 *
 * Owns: the virtio-net header (parsing what a guest sends, writing what a
 * guest receives), filling a guest's RX buffers (mergeable or not) straight
 * from the source buffers, a run of frames at a time, and passing offload
 * requests on or completing them in software (offload.c).
 * Must not: choose destinations (switch.c), take locks or decide when to
 * run (fwd.c, worker.c).  It sees one device at a time, handed to it with
 * the locks its caller documents.
 */
#ifndef LWV_NET_H
#define LWV_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "device.h"
#include "virtio.h"
#include "vq.h"

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
    const uint8_t *flat;         /* the whole frame when it is contiguous, else NULL */
    uint8_t eth[ETH_HLEN_MIN];   /* private copy of the Ethernet header */
    struct virtio_net_hdr hdr;   /* offload request (checked); num_buffers unused */
};

/* Reads and checks the header of a TX chain from a device with caps c and
 * fills f (whose iovecs are the chain's).  False: a frame to drop. */
bool net_tx_parse(const struct dev_caps *c, const struct vq_chain *chain, struct frame *f);
/* Fills f from a flat buffer holding a frame of len bytes and its header
 * h (already checked). */
void net_frame_flat(struct frame *f, struct iovec *iov, const uint8_t *data, size_t len,
                    const struct virtio_net_hdr *h);

/* RX chains popped for the run being delivered. */
struct net_rx_scratch {
    struct vq_burst b;
    unsigned next;               /* first chain of b not used yet */
    struct log_batch lb;         /* dirty-log bits of this run (migration) */
};

/* Delivers the n frames of f, in order, into q's guest buffers (caller
 * holds q->dev->lock for reading and q->rx_lock, and has checked that q is
 * ready).  Frames the guest cannot take as they are (GSO it did not
 * negotiate) are segmented in software.  The used entries are written but
 * not published: the caller calls vq_flush once for a batch of runs.
 * Counts its own drops; returns the frames delivered. */
unsigned net_rx_run(struct net_rx_scratch *s, struct vqueue *q, const struct frame *f, unsigned n);

/* True if the device can receive f's segmentation request as it is. */
bool net_takes_gso(const struct vdev *d, const struct frame *f);

#endif
