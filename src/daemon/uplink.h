/*
 * uplink.h - the uplink port: frames between the switch and a host
 * network interface (a NIC, a bond, a veth), through an AF_PACKET socket
 * (mode=packet) or an AF_XDP socket (mode=xdp, xsk.c).
 *
 * Owns: the packet socket (bound to one interface for every protocol,
 * promiscuous, PACKET_VNET_HDR so checksum and TSO metadata pass as with
 * the tap, PACKET_IGNORE_OUTGOING so our own transmissions are not read
 * back, PACKET_QDISC_BYPASS when asked), its TPACKET_V3 receive ring (the
 * mapping, the walk over the blocks the kernel hands over with every
 * offset and length checked, giving blocks back), the checks on what the
 * kernel wrote there (lengths, the virtio-net header through offload.c,
 * VLAN tags it took off the frame), and batched transmission with
 * sendmmsg that drops and counts rather than wait.  In mode=xdp it has
 * xsk.c open the AF_XDP socket and turns what xsk.c hands over into
 * frames and back: frames from the wire go to the switch as plain frames
 * (no offload metadata), frames to the wire are copied into the UMEM with
 * their offload requests completed in software (offload.c: checksums
 * finished, TSO frames segmented), since AF_XDP carries no virtio-net
 * header.
 * Must not: touch guest rings or choose destinations (fwd.c and the switch
 * do, with the frames read here), or block: the socket is non-blocking and
 * a full transmit path drops.
 *
 * Threads: uplink_open/uplink_close are the control thread's (close only
 * once no worker can reach the port: port.c's grace period).  The receive
 * side (uplink_recv_burst/uplink_recv_done/uplink_clear_error) is the port's
 * worker's alone.  uplink_send may run on any worker at once: it shares
 * only the socket (the kernel serialises) and atomic counters; in mode=xdp
 * it takes the AF_XDP socket's transmit lock (xsk.c), which also guards
 * the segmentation buffers.
 */
#ifndef LWV_UPLINK_H
#define LWV_UPLINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "virtio.h"
#include "xsk.h"

struct port;
struct frame;

/* Frames one receive burst may hand out (at most VQ_BURST_MAX). */
#define UPLINK_RX_BURST 16

/* Counters only the uplink has (besides the tap_stats of its port); all
 * its receive drops are also in the port's rx_drops. */
struct uplink_stats {
    uint64_t rx_truncated;   /* the ring held less than the frame, or it was shorter than
                              * an Ethernet header or longer than the largest frame */
    uint64_t rx_bad_hdr;     /* a virtio-net header the switch must not pass on */
    uint64_t rx_gso_unsupported; /* a GSO kind the switch cannot carry: UDP, TCP with ECN */
    uint64_t rx_bad_ring;    /* packet or block descriptors out of bounds (block skipped) */
    uint64_t rx_kernel_drops;/* frames the kernel dropped: the ring was full (mode=xdp: also
                              * too long for a UMEM frame, or no free one) */
    /* mode=xdp only (all zero with mode=packet) */
    bool xdp;
    struct xsk_info xdp_info;     /* native or generic, zero-copy or not, the queue */
    uint64_t tx_too_big;          /* frames (or segments) to the wire longer than a UMEM frame */
    uint64_t tx_bad_offload;      /* offload requests that could not be completed in software */
    struct xsk_stats xsk;         /* the socket's rings, ours and the kernel's counters */
};

/* Opens the uplink of port p as p->cfg says (ifname; mode=packet:
 * qdisc_bypass, frames we send skip the interface's queueing discipline;
 * mode=xdp: queue and xdp_mode) and sets p->tap_fd to the socket its
 * worker polls.  On failure err says why; nothing is left open or
 * attached. */
int uplink_open(struct port *p, char *err, size_t errlen);
/* Closes the socket and unmaps the ring (no worker may use p any more);
 * mode=xdp: the XDP program is detached. */
void uplink_close(struct port *p);
/* Sends n frames to the wire, as few system calls as the batch allows;
 * drops and counts what the kernel refuses or has no room for. */
void uplink_send(struct port *p, const struct frame *f, unsigned n);
/* Describes up to max (<= UPLINK_RX_BURST) frames from the receive ring in
 * f; they stay valid until uplink_recv_done.  *nread counts every packet
 * walked (dropped ones too); *empty is set when the ring ran dry. */
unsigned uplink_recv_burst(struct port *p, struct frame *f, unsigned max, unsigned *nread,
                           bool *empty);
/* Gives a block whose frames were all delivered back to the kernel. */
void uplink_recv_done(struct port *p);
/* Reads and clears the socket's pending error (the interface went down, or
 * away), so that it stops waking the worker; logs it. */
void uplink_clear_error(struct port *p);
/* The uplink's own counters (control thread: it also collects the kernel's
 * ring drops, which reset when read). */
void uplink_get_stats(const struct port *p, struct uplink_stats *out);

/* ---- the block walk, exposed for tests/unit/test_uplink.c ---------------- */

/* Where a walk over one TPACKET_V3 block is. */
struct uplink_blk_iter {
    const uint8_t *blk;
    size_t size;          /* the block's size: nothing is read beyond blk + size */
    uint32_t left;        /* packets not walked yet */
    size_t off;           /* offset of the next packet's header */
    size_t vnet_len;      /* bytes of virtio-net header before each frame */
};

/* One frame of a block, checked. */
struct uplink_pkt {
    const uint8_t *data;  /* the frame as the kernel stored it (VLAN tag taken off) */
    size_t len;
    struct virtio_net_hdr hdr;   /* for the frame as it leaves (tag put back) */
    bool vlan;            /* the kernel took a tag off: put tci/tpid back after the MACs */
    uint16_t vlan_tci, vlan_tpid;
};

enum uplink_pkt_rc {
    UPLINK_PKT_OK,
    UPLINK_PKT_END,        /* no more packets in the block */
    UPLINK_PKT_BAD_RING,   /* a descriptor out of bounds: the rest of the block is skipped */
    UPLINK_PKT_TRUNCATED,  /* this frame is dropped, the walk goes on */
    UPLINK_PKT_BAD_HDR,    /* this frame is dropped, the walk goes on */
    UPLINK_PKT_GSO_UNSUPPORTED, /* likewise: a UDP or ECN GSO frame */
};

/* Starts walking a block the kernel handed over (size bytes at blk, frames
 * preceded by vnet_len header bytes).  False when its own descriptor is
 * out of bounds. */
bool uplink_blk_begin(struct uplink_blk_iter *it, const uint8_t *blk, size_t size,
                      size_t vnet_len);
/* The next packet of the block, checked; see enum uplink_pkt_rc. */
enum uplink_pkt_rc uplink_blk_next(struct uplink_blk_iter *it, struct uplink_pkt *pkt);

#endif
