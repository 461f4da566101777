/*
 * policy.h - notification policies: when a worker serves a queue and when
 * it sleeps.  The interval and adaptive ideas live here and in worker.c,
 * nowhere else.
 *
 * Owns: policy syntax (notify, poll, interval:USEC, adaptive[:LATENCY_USEC]),
 * the per-queue state machine (kick-driven vs. timer/poll-driven, with the
 * idle fall-back to notifications) and the adaptive controller.  Pure logic
 * on numbers and a clock value passed in, so it is tested with a fake clock.
 * Must not: touch rings, fds or threads (worker.c applies the decisions).
 */
#ifndef LWV_POLICY_H
#define LWV_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum policy_mode { POLICY_NOTIFY = 0, POLICY_POLL = 1, POLICY_INTERVAL = 2, POLICY_ADAPTIVE = 3 };

#define POLICY_DEFAULT_INTERVAL_US 50
#define POLICY_DEFAULT_LATENCY_US 50
#define POLICY_DEFAULT_IDLE_US 1000
#define POLICY_MAX_ARG_US 1000000

struct policy {
    enum policy_mode mode;
    uint32_t arg_us;     /* interval period, or adaptive latency budget */
};

int policy_parse(const char *s, struct policy *out, char *err, size_t errlen);
const char *policy_str(const struct policy *p, char *buf, size_t len);
/* Policies are stored packed in one word so workers read them atomically. */
uint64_t policy_pack(const struct policy *p);
static inline bool policy_equal(const struct policy *a, const struct policy *b)
{
    return a->mode == b->mode && a->arg_us == b->arg_us;
}
struct policy policy_unpack(uint64_t v);

/* What a queue does in the next pass. */
enum eff_mode { EFF_NOTIFY = 0, EFF_INTERVAL = 1, EFF_POLL = 2 };
const char *eff_name(enum eff_mode e);

/* Per-queue state, owned by the serving worker. */
struct qpolicy {
    bool active;            /* guest kicks suppressed; served on ticks or polls */
    uint64_t last_work_ns;  /* last pass that moved a frame */
};

enum qpolicy_next { QP_KEEP_ACTIVE, QP_TRY_SLEEP };

/* After a pass over the queue that moved `frames` (with `more` left):
 * QP_TRY_SLEEP means: re-enable guest notifications, check the ring once
 * more, and go back to waiting for kicks if it is still empty. */
enum qpolicy_next qpolicy_after_pass(struct qpolicy *s, enum eff_mode eff, uint64_t now_ns,
                                     unsigned frames, bool more, uint64_t idle_ns);

/* The adaptive controller, one per worker.  It keeps a cost model of its
 * own worker, measured as it runs: the CPU of a kick-driven wake-up, of a
 * timer wake-up, and of a frame (least squares would be overkill: each
 * epoch refines the term that dominated it).  Every epoch it estimates the
 * arrival rate and picks the schedule the model says is cheapest:
 *   notify    one wake-up per kick (kicks/frame also measured),
 *   interval  one wake-up per period, the longest the latency budget and
 *             3/8 of a ring allow, unless ticks found rings 3/4 full at
 *             this rate (ring pressure: then notify),
 *   poll      only when the worker is saturated (measured CPU).
 * Wake-up costs are seeded from the worker's calibration, so the first
 * decisions are sane before anything was measured. */
#define ADAPTIVE_EPOCH_NS 10000000ull    /* 10 ms */

struct adaptive {
    uint64_t wake_cost_ns;     /* CPU of one timer sleep + wake-up (calibrated; shown) */
    uint64_t epoch_start_ns;
    uint64_t epoch_cpu_start_ns;
    uint64_t frames, passes, empty_passes;
    uint64_t kick_wakes, timer_wakes;   /* wake-ups this epoch, by cause */
    uint64_t big_passes;       /* passes that moved big_batch frames or more */
    uint32_t big_batch;        /* 3/4 of the smallest ring, from the last update */
    double rate;               /* frames per second, smoothed */
    double pressure_rate;      /* rate at which ticks let rings fill up (0: none) */
    unsigned pressure_epochs;  /* epochs left before timer batching is tried again */
    unsigned since_explore;    /* epochs since the other schedule was last tried */
    unsigned exploring;        /* epochs left of trying it */
    uint64_t explorations;
    double busy;               /* CPU fraction over the last epoch */
    /* The cost model (ns of worker CPU), measured. */
    double kick_cost;          /* per kick-driven wake-up, frames apart */
    double timer_cost;         /* per timer wake-up, frames apart */
    double frame_cost;         /* per frame */
    double kick_share;         /* measured kicks per frame / the batching model's */
    double late;               /* how late a tick comes (ns), measured */
    uint64_t late_sum;         /* this epoch's, over timer_wakes */
    double cost_notify, cost_interval;  /* last predictions, ns of CPU per second */
    enum eff_mode eff;
    uint64_t interval_ns;
    uint64_t decisions;
};

/* Seeds: the calibrated cost of a wake-up and how late the timer came. */
void adaptive_init(struct adaptive *a, uint64_t wake_cost_ns, uint64_t late_ns, uint64_t now_ns,
                   uint64_t cpu_ns);
void adaptive_account(struct adaptive *a, unsigned frames);
/* No adaptive queue this epoch: start the next one afresh at now. */
void adaptive_restart(struct adaptive *a, uint64_t now_ns);
/* The worker slept and woke up: by its timer (late_ns after the tick), or
 * by a kick or a poke. */
void adaptive_wake(struct adaptive *a, bool timer, uint64_t late_ns);
/* Call at least once per epoch; returns true if the decision changed. */
bool adaptive_update(struct adaptive *a, uint64_t now_ns, uint64_t cpu_ns, uint64_t budget_ns,
                     uint32_t ring_size);

#endif
