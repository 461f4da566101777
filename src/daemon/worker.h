/*
 * worker.h - worker threads and the policy that decides when they sleep.
 *
 * Owns: which thread serves which queue (fixed at start-up, round robin),
 * the worker loop (wake, serve with a per-queue weight, flush interrupts,
 * re-enable notifications, sleep), and per-worker counters.
 * Policies live here and nowhere else; today: notify (kick-driven, like
 * vhost-net).  The loop asks next_timeout() how long to sleep.
 * Must not: parse messages or touch ring memory except through net.c.
 */
#ifndef LWV_WORKER_H
#define LWV_WORKER_H

#include <stdint.h>

struct vqueue;
struct port;

struct worker_stats {
    uint64_t wakeups;        /* epoll returned with events */
    uint64_t kick_wakeups;   /* of which for a guest kick */
    uint64_t passes;         /* service passes */
    uint64_t empty_passes;   /* passes that moved nothing */
    uint64_t frames;         /* TX frames handled */
};

int workers_init(unsigned n);
int workers_start(void);
void workers_stop(void);
unsigned workers_count(void);
struct worker *worker_get(unsigned i);
int worker_tid(const struct worker *w);
void worker_get_stats(const struct worker *w, struct worker_stats *out);

/* Start-up only (before workers_start): gives a TX queue / a tap to the
 * next worker in round-robin order. */
void worker_assign_queue(struct vqueue *q);
void worker_assign_tap(struct port *p);

/* Control thread, under the device's write lock. */
void worker_watch_queue(struct vqueue *q);
void worker_unwatch_queue(struct vqueue *q);
/* Asks the serving worker for a pass over q (its state changed). */
void worker_poke_queue(struct vqueue *q);

#endif
