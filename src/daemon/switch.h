/*
 * switch.h - the learning L2 switch between ports.
 *
 * Owns: its forwarding database (fdb.c: static and learned entries, aging,
 * limits), classifying a burst of frames (source check, learning, destination lookup, each done once per
 * run of frames with the same address), delivering runs of frames to a
 * port by its type (a guest's RX queue through net.c, the tap, the
 * uplink's socket, or the VXLAN port's remotes), the
 * destination locks it holds while doing so, and the interrupts owed per
 * pass.  The port table it switches between is handed to switch_init.
 * Must not: block on a destination (every lock here is a try-lock: a
 * destination that is being reconfigured, not ready or full gets the frame
 * dropped and counted, one being filled by another worker may be deferred),
 * pop frames from a source or decide when to run (fwd.c, worker.c).
 */
#ifndef LWV_SWITCH_H
#define LWV_SWITCH_H

#include <stdbool.h>
#include <stdint.h>

#include "fdb.h"
#include "net.h"

struct port;
struct port_table;
struct vqueue;

struct lswitch {
    const struct port_table *ports;
    struct fdb fdb;
};

/* Where classification sends a frame: a port index (>= 0) or one of these. */
enum {
    SW_FLOOD = -1,          /* group address or unknown unicast: every other port */
    SW_DROP_SELF = -2,      /* addressed to the port it came from */
    SW_DROP_SPOOFED = -3,   /* anti-spoofing: not the port's own source MAC */
    SW_DROP_INVALID = -4,   /* set by the caller: malformed */
};

#define SW_TOUCHED_MAX 64

/* One thread's delivery state: RX scratch, the destination whose locks it
 * holds between runs, and the RX queues owed an interrupt decision. */
struct sw_ctx {
    struct net_rx_scratch rx;
    struct vqueue *held;
    unsigned held_frames;
    unsigned ntouched;
    struct vqueue *touched[SW_TOUCHED_MAX];
};

/* An empty table (default aging and limits) switching between the ports
 * of table. */
void switch_init(struct lswitch *sw, const struct port_table *table);
enum fdb_learn switch_learn(struct lswitch *sw, const uint8_t mac[6], unsigned port_index);
/* The MAC is on port_index now (a migrated guest announcing itself): a
 * learned entry elsewhere moves at once (fdb_claim). */
enum fdb_learn switch_claim(struct lswitch *sw, const uint8_t mac[6], unsigned port_index);
/* A port's configured MAC: a static entry (-1 if it cannot be one). */
int switch_add_static(struct lswitch *sw, const uint8_t mac[6], unsigned port_index);
/* Port index the MAC lives on, or -1. */
int switch_lookup(const struct lswitch *sw, const uint8_t mac[6]);
/* Forgets every MAC a port learned (its frontend went away); its static
 * entry stays. */
void switch_forget_port(struct lswitch *sw, unsigned port_index);
/* The port in slot index of the table, or NULL (out of range, or a free
 * slot: a port being removed).  Any thread. */
struct port *switch_port(const struct lswitch *sw, int index);
/* Lists up to max MACs of a port, static and learned; returns how many. */
unsigned switch_port_macs(const struct lswitch *sw, unsigned port_index, uint8_t (*macs)[6],
                          unsigned max);

/* Classifies the n frames f that came in on src: dst[i] becomes a port
 * index or one of SW_*.  Frames the caller marked SW_DROP_INVALID are left
 * alone.  Learns each source MAC (once per run of equal ones). */
void switch_classify(struct lswitch *sw, const struct port *src, const struct frame *f,
                     unsigned n, int *dst);
/* Delivers the n frames of f, in order, to port dst on its queue pair qp
 * (modulo the pairs it has).  Returns the frames taken, delivered or
 * dropped and counted; fewer than n only when may_defer is set and the
 * destination queue is being filled by another worker right now: the caller
 * keeps the rest and offers them again later. */
unsigned switch_deliver(struct sw_ctx *c, struct port *dst, unsigned qp, const struct frame *f,
                        unsigned n, bool may_defer);
/* Delivers f to every port of sw but src (never deferred). */
void switch_flood(struct sw_ctx *c, const struct lswitch *sw, const struct port *src, unsigned qp,
                  const struct frame *f);
/* Publishes what was delivered to the held destination and drops its
 * locks.  Call at the end of every source queue's pass. */
void switch_release(struct sw_ctx *c);
/* switch_release, then sends the interrupts owed for frames delivered
 * since the last call.  Returns false if some decision had to wait
 * because another worker held the queue: call again after the next pass. */
bool switch_flush(struct sw_ctx *c);

#endif
