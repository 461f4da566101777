/*
 * switch.h - the learning L2 switch between ports.
 *
 * Owns: the MAC table (learned and static entries), choosing destination
 * ports and queues, delivering a frame to each (guest RX buffers or the
 * tap), and batching the resulting interrupts per pass.
 * Must not: block on a destination: a destination that is being
 * reconfigured, not ready or full gets the frame dropped and counted.
 */
#ifndef LWV_SWITCH_H
#define LWV_SWITCH_H

#include <stdbool.h>
#include <stdint.h>

#include "net.h"
#include "vq.h"

#define FWD_TOUCHED_MAX 64

/* Per-thread forwarding scratch: descriptor scratch space for both
 * directions and the RX queues that need an interrupt at end of pass. */
struct fwd_ctx {
    struct vq_elem tx_elem;
    struct vq_elem rx_elem;
    unsigned ntouched;
    struct vqueue *touched[FWD_TOUCHED_MAX];
    /* The RX queue whose device read lock and rx_lock we keep between
     * frames, so a batch to one guest takes its locks once. */
    struct vqueue *held;
    unsigned held_frames;
};

void switch_init(void);
void switch_learn(const uint8_t mac[6], unsigned port_index);
/* Port index the MAC was learned on, or -1. */
int switch_lookup(const uint8_t mac[6]);
/* Forgets every MAC learned on a port (it disconnected). */
void switch_forget_port(unsigned port_index);
/* Lists up to max MACs learned on a port; returns how many. */
unsigned switch_port_macs(unsigned port_index, uint8_t (*macs)[6], unsigned max);

/* False if src must not send f: anti-spoofing is on and the frame's
 * source MAC is not the port's own. */
bool switch_source_ok(const struct port *src, const struct frame *f);
/* Learns the source and sends f to its destination(s). qp picks the
 * destination queue pair (modulo what the destination has). */
struct port;
void switch_forward(struct fwd_ctx *ctx, struct port *src, unsigned qp, const struct frame *f);
/* Publishes what was delivered to the held destination and drops its
 * locks.  Call before taking any lock that could block (a source device's
 * lock), and at the end of every pass. */
void switch_release(struct fwd_ctx *ctx);
/* switch_release, then sends the interrupts owed for frames delivered
 * since the last call. */
void switch_flush(struct fwd_ctx *ctx);

#endif
