/*
 * worker.h - worker threads and the policy that decides when they sleep.
 *
 * Owns: which thread serves which queue (the least loaded worker, at any
 * time; lists replaced whole and freed after a grace period),
 * the worker loop (wake on a kick, a timer tick or a poke; serve with a
 * per-queue weight; flush interrupts; decide the next sleep) and
 * per-worker counters and traces.  Policies (policy.c) decide; the loop
 * applies: kick-driven (notify), busy polling (poll), fixed-cadence passes
 * with the idle fall-back (interval) and the adaptive controller.
 * Must not: parse messages, or touch ring memory except through fwd.c (the
 * passes) and vq.c's notification suppression; never wait for a device
 * lock: a queue whose device is being reconfigured is skipped, and the
 * control plane pokes it when it is done (docs/threading.md).
 */
#ifndef LWV_WORKER_H
#define LWV_WORKER_H

#include <stdint.h>

#include "policy.h"
#include "trace.h"

struct vqueue;
struct port;

/* Every field is a uint64_t (a counter or a gauge; worker.c checks the
 * size and alignment it implies), so
 * a snapshot is one relaxed atomic load per field. */
struct worker_stats {
    uint64_t wakeups;         /* returns from the sleep with something to do */
    uint64_t kick_wakeups;    /* events for a guest kick */
    uint64_t timer_wakeups;   /* interval ticks */
    uint64_t passes;          /* service passes */
    uint64_t empty_passes;    /* passes that moved nothing */
    uint64_t frames;          /* frames handled (guest TX and tap RX) */
    uint64_t sleep_ns;        /* time spent blocked */
    uint64_t oversleep_ns;    /* sum of (woke - tick deadline) */
    uint64_t oversleep_max_ns;
    uint64_t cpu_ns;          /* thread CPU clock, user + system */
    uint64_t wake_cost_ns;    /* calibrated CPU of one timer sleep + wake-up */
    uint64_t calib_oversleep_ns;
    uint64_t adaptive_decisions;
    uint64_t adaptive_eff;    /* enum eff_mode */
    uint64_t adaptive_interval_ns;
    uint64_t adaptive_rate;   /* frames/s the controller estimates */
    uint64_t adaptive_kick_cost_ns;   /* its cost model (policy.h), measured: */
    uint64_t adaptive_timer_cost_ns;  /*   per kick wake-up, per timer wake-up, */
    uint64_t adaptive_frame_ps;       /*   per frame (picoseconds) */
    uint64_t syscalls;        /* system calls the thread made (sysc.h) */
};

int workers_init(unsigned n);
int workers_start(void);
void workers_stop(void);
unsigned workers_count(void);
struct worker *worker_get(unsigned i);
int worker_tid(const struct worker *w);
void worker_get_stats(const struct worker *w, struct worker_stats *out);
struct trace_ring *worker_trace_rings(void);

/* Idle time after which an interval queue goes back to guest kicks. */
void workers_set_idle_us(uint32_t us);
uint32_t workers_idle_us(void);

/* Control thread: which worker serves what.  worker_assign_* gives a TX
 * queue or a tap to the worker with the least to serve (-1: out of
 * memory), worker_release_* takes it away (the queue's kick fd, the tap's
 * fd are no longer watched).  Changes take effect at workers_commit(),
 * which returns once no worker can still be using what was released: the
 * caller may then free it. */
int worker_assign_queue(struct vqueue *q);
void worker_release_queue(struct vqueue *q);
int worker_assign_tap(struct port *p);
void worker_release_tap(struct port *p);
void workers_commit(void);
/* Waits until every running worker has passed a quiescent state (the top
 * of its loop, holding no pointer to a queue or port) after this call
 * began: a grace period, as in RCU's QSBR flavour.  Workers never block,
 * so it ends within one pass of each. */
void workers_synchronize(void);

/* Control thread, under the device's write lock. */
void worker_watch_queue(struct vqueue *q);
void worker_unwatch_queue(struct vqueue *q);
/* Asks the serving worker for a pass over q (its state or policy changed). */
void worker_poke_queue(struct vqueue *q);

#endif
