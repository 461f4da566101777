/*
 * fwd.h - the forwarding loop: pop -> classify -> deliver, a burst at a time.
 *
 * Owns: the burst.  A TX pass takes up to FWD_BURST chains from a guest's
 * TX queue at once (vq.c), parses their virtio-net headers (net.c),
 * classifies the whole burst (switch.c) and hands each run of frames with
 * one destination to the switch; then it completes the chains it took, in
 * ring order, with one used-index store and one interrupt decision per
 * pass.  A tap pass does the same with frames read from the host, an
 * uplink pass with frames in its receive ring, a VXLAN pass with frames
 * decapsulated from the datagrams it read.  Counters
 * are kept in locals and published once per pass.  Also owns the
 * per-thread forwarding context.
 * Must not: decide when to run or sleep (worker.c), parse messages, or take
 * a lock that can block: the caller holds the source device's read lock,
 * and destinations are try-locked by the switch.
 */
#ifndef LWV_FWD_H
#define LWV_FWD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net.h"
#include "switch.h"
#include "vq.h"

/* Chains per TX burst (at most VQ_BURST_MAX). */
#define FWD_BURST 32
/* Frames per tap burst. */
#define FWD_TAP_BURST 16

struct port;

struct fwd_ctx {
    struct vq_burst tx;                 /* the TX chains of the burst */
    struct frame frames[VQ_BURST_MAX];
    int dst[VQ_BURST_MAX];              /* port index or SW_* */
    uint16_t heads[VQ_BURST_MAX];
    struct sw_ctx sw;                   /* delivery state */
    uint8_t *tap_buf;                   /* FWD_TAP_BURST frames, allocated on first use */
    struct iovec tap_iov[FWD_TAP_BURST];
};

/* Serves up to budget frames from TX queue q (caller holds q->dev->lock
 * for reading and has checked readiness), with guest kicks suppressed.
 * Returns the frames taken; *more is set when the queue still has work (or
 * some was deferred because a destination was busy).  With rearm, a queue
 * found empty gets its kicks re-enabled and is checked once more (the
 * kick-driven policy); without, kicks stay suppressed. */
unsigned fwd_tx_pass(struct fwd_ctx *ctx, struct vqueue *q, unsigned budget, bool rearm,
                     bool *more);
/* Reads up to budget frames from tap port p into the switch. */
unsigned fwd_tap_pass(struct fwd_ctx *ctx, struct port *p, unsigned budget, bool *more);
/* Reads up to budget frames from uplink port p's receive ring into the
 * switch (clearing a socket error its worker saw first). */
unsigned fwd_uplink_pass(struct fwd_ctx *ctx, struct port *p, unsigned budget, bool *more);
/* Reads up to budget datagrams from VXLAN port p into the switch (their
 * inner frames; clearing a socket error its worker saw first). */
unsigned fwd_vxlan_pass(struct fwd_ctx *ctx, struct port *p, unsigned budget, bool *more);
/* Switches one frame of len bytes as if port src had sent it (e.g. the
 * RARP announcing a migrated guest), and flushes. */
void fwd_inject(struct fwd_ctx *ctx, struct port *src, const uint8_t *data, size_t len);
/* Publishes and unlocks the held destination (end of each source's pass). */
void fwd_release(struct fwd_ctx *ctx);
/* fwd_release, then the interrupts owed; false: call again after the next
 * pass (see switch_flush). */
bool fwd_flush(struct fwd_ctx *ctx);
void fwd_ctx_fini(struct fwd_ctx *ctx);
/* True when the context holds no destination and owes no interrupt: it
 * keeps no pointer to any queue. */
bool fwd_idle(const struct fwd_ctx *ctx);

#endif
