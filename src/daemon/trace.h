/*
 * trace.h - a per-worker event trace, like ftrace's function graph for the
 * datapath: wake-ups (by kick or timer), TX passes with descriptor counts,
 * notification enable/disable, interrupts sent, sleeps.
 *
 * Owns: the trace rings and the global on/off switch.  When tracing is off
 * an event costs one predictable branch.  Each ring has one writer (its
 * worker); the control thread reads a snapshot and discards whatever the
 * writer may have overwritten meanwhile.
 * Must not: allocate or block on the datapath.
 */
#ifndef LWV_TRACE_H
#define LWV_TRACE_H

#include <stddef.h>
#include <stdint.h>

enum trace_event {
    TR_WAKE_KICK = 1,    /* q = queue whose kick woke us */
    TR_WAKE_TIMER,       /* arg = oversleep in ns */
    TR_WAKE_OTHER,
    TR_TX_BEGIN,         /* arg = what the queue does this pass (enum eff_mode) */
    TR_TX_END,           /* arg = descriptors handled */
    TR_NOTIFY_ON,        /* kicks re-enabled (back to waiting) */
    TR_NOTIFY_OFF,       /* kicks suppressed (timer/poll driven) */
    TR_SIGNAL,           /* interrupt sent to port/q */
    TR_SLEEP,            /* arg = planned sleep in us, or ~0 for "until a kick" */
    TR_POLICY,           /* adaptive decision: arg = eff << 24 | interval_us */
};

struct trace_rec {
    uint64_t ts_ns;
    uint8_t event;
    uint8_t port;
    uint16_t queue;
    uint32_t arg;
};

#define TRACE_RING_SIZE 65536u   /* records per worker, power of two */

struct trace_ring {
    struct trace_rec *rec;   /* NULL until tracing is first enabled */
    uint64_t pos;            /* records ever written */
    uint64_t since;          /* pos when the current trace started */
};

extern int trace_on;
/* The calling thread's ring (a worker's), or NULL: lets shared code such
 * as interrupt delivery record events for whichever worker runs it. */
extern __thread struct trace_ring *trace_self;

void trace_emit(struct trace_ring *t, enum trace_event ev, unsigned port, unsigned queue,
                uint32_t arg);

static inline void trace(struct trace_ring *t, enum trace_event ev, unsigned port,
                         unsigned queue, uint32_t arg)
{
    if (__builtin_expect(__atomic_load_n(&trace_on, __ATOMIC_RELAXED), 0))
        trace_emit(t, ev, port, queue, arg);
}

/* Control thread: allocates rings (first time) and switches tracing. */
int trace_start(struct trace_ring *rings, unsigned n);
void trace_stop(void);
/* Copies the records still intact, oldest first; returns how many.
 * *out is malloc'd. */
size_t trace_snapshot(struct trace_ring *t, struct trace_rec **out);

#endif
