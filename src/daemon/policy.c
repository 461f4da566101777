/*
 * policy.c - see policy.h.
 */
#include "policy.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const mode_names[] = { "notify", "poll", "interval", "adaptive" };

int policy_parse(const char *s, struct policy *out, char *err, size_t len)
{
    char name[16];
    const char *colon = strchr(s, ':');
    size_t n = colon ? (size_t)(colon - s) : strlen(s);
    if (n == 0 || n >= sizeof(name))
        goto bad;
    memcpy(name, s, n);
    name[n] = 0;
    int mode = -1;
    for (int i = 0; i < 4; i++)
        if (strcmp(name, mode_names[i]) == 0)
            mode = i;
    if (mode < 0)
        goto bad;
    out->mode = (enum policy_mode)mode;
    out->arg_us = mode == POLICY_INTERVAL ? POLICY_DEFAULT_INTERVAL_US
                : mode == POLICY_ADAPTIVE ? POLICY_DEFAULT_LATENCY_US : 0;
    if (!colon)
        return 0;
    if (mode == POLICY_NOTIFY || mode == POLICY_POLL) {
        snprintf(err, len, "policy %s takes no argument", name);
        return -1;
    }
    char *end;
    errno = 0;
    unsigned long v = strtoul(colon + 1, &end, 10);
    if (errno || end == colon + 1 || *end || colon[1] == '-' || v == 0 || v > POLICY_MAX_ARG_US) {
        snprintf(err, len, "policy %s: '%s' is not a number of microseconds (1..%d)", name,
                 colon + 1, POLICY_MAX_ARG_US);
        return -1;
    }
    out->arg_us = (uint32_t)v;
    return 0;
bad:
    snprintf(err, len, "unknown policy '%.40s' (notify, poll, interval:USEC, "
             "adaptive[:LATENCY_USEC])", s);
    return -1;
}

const char *policy_str(const struct policy *p, char *buf, size_t len)
{
    if (p->mode == POLICY_INTERVAL || p->mode == POLICY_ADAPTIVE)
        snprintf(buf, len, "%s:%u", mode_names[p->mode], p->arg_us);
    else
        snprintf(buf, len, "%s", mode_names[p->mode]);
    return buf;
}

uint64_t policy_pack(const struct policy *p)
{
    return (uint64_t)p->mode << 32 | p->arg_us;
}

struct policy policy_unpack(uint64_t v)
{
    struct policy p = { (enum policy_mode)(v >> 32), (uint32_t)v };
    return p;
}

const char *eff_name(enum eff_mode e)
{
    static const char *const names[] = { "notify", "interval", "poll" };
    return names[e];
}

enum qpolicy_next qpolicy_after_pass(struct qpolicy *s, enum eff_mode eff, uint64_t now,
                                     unsigned frames, bool more, uint64_t idle_ns)
{
    if (frames > 0 || !s->active)
        s->last_work_ns = now;
    if (eff == EFF_NOTIFY) {
        s->active = false;
        return more ? QP_KEEP_ACTIVE : QP_TRY_SLEEP;
    }
    s->active = true;
    /* Polling never sleeps; an interval queue goes back to notifications
     * once it has had nothing to do for idle_ns, so an idle guest costs no
     * CPU and can always shut down. */
    if (eff == EFF_INTERVAL && !more && now - s->last_work_ns >= idle_ns)
        return QP_TRY_SLEEP;
    return QP_KEEP_ACTIVE;
}

static void start_epoch(struct adaptive *a, uint64_t now, uint64_t cpu_ns)
{
    a->epoch_start_ns = now;
    a->epoch_cpu_start_ns = cpu_ns;
    a->frames = a->passes = a->empty_passes = a->big_passes = 0;
    a->kick_wakes = a->timer_wakes = a->late_sum = 0;
}

/* The CPU clock is read only at the next update (a system call we need
 * not pay on a worker without adaptive queues); that update starts the
 * epoch instead of judging it. */
#define CPU_UNKNOWN UINT64_MAX

void adaptive_restart(struct adaptive *a, uint64_t now)
{
    start_epoch(a, now, CPU_UNKNOWN);
}

void adaptive_init(struct adaptive *a, uint64_t wake_cost_ns, uint64_t late_ns, uint64_t now,
                   uint64_t cpu_ns)
{
    memset(a, 0, sizeof(*a));
    a->wake_cost_ns = wake_cost_ns ? wake_cost_ns : 5000;
    /* Seeds: both kinds of wake-up cost what the calibration measured, and
     * frames nothing until a frame-heavy epoch tells (the wake-up terms
     * then carry the frames' share, which only favours fewer wake-ups). */
    a->kick_cost = a->timer_cost = (double)a->wake_cost_ns;
    a->kick_share = 1.0;
    a->late = (double)late_ns;
    a->big_batch = 192;
    a->eff = EFF_NOTIFY;
    start_epoch(a, now, cpu_ns);
}

void adaptive_account(struct adaptive *a, unsigned frames)
{
    a->frames += frames;
    a->passes++;
    if (a->big_batch && frames >= a->big_batch)
        a->big_passes++;
    if (!frames)
        a->empty_passes++;
}

void adaptive_wake(struct adaptive *a, bool timer, uint64_t late_ns)
{
    if (timer) {
        a->timer_wakes++;
        a->late_sum += late_ns;
    } else
        a->kick_wakes++;
}

/* The batching model: while a wake-up is served (kick_cost of CPU), kicks
 * are suppressed and the frames that arrive ride along, so a frame takes
 * 1 / (1 + rate * cost) kick-driven wake-ups. */
static double batching(double rate, double kick_cost)
{
    return 1.0 / (1.0 + rate * kick_cost / 1e9);
}

/* Kick-driven wake-ups per frame expected at `rate` frames/s: the model,
 * scaled by what notify epochs measured. */
static double kicks_per_frame(const struct adaptive *a, double rate)
{
    double k = a->kick_share * batching(rate, a->kick_cost);
    return k > 1.0 ? 1.0 : k;
}

/* Hysteresis: a schedule replaces the current one only if the model says
 * it is this much cheaper; leave poll only when most polls find nothing. */
#define SWITCH_GAIN 0.8
#define POLL_BUSY 0.85
#define LEAVE_POLL_EMPTY 0.6
#define LEAVE_POLL_BUSY 0.7    /* predicted CPU of the way out of poll */
#define PRESSURE_EPOCHS 100    /* 1 s */
/* Exploration: a schedule not in use is not measured, and an estimate
 * from a bad moment would keep it out for good.  Every 2 s, if the other
 * schedule is predicted within 1.5x, it runs for 80 ms to be measured. */
#define EXPLORE_EVERY 200
#define EXPLORE_EPOCHS 8
#define EXPLORE_WITHIN 1.5
/* Learning: an epoch teaches the wake-up cost when it had fewer frames
 * than this per wake-up, the frame cost when it had more; too few
 * wake-ups or frames teach nothing. */
#define FRAME_HEAVY 8.0
#define MIN_SAMPLES 20
#define LEARN 0.125            /* weight of a new sample */
#define COST_MIN 50.0          /* ns: bounds of a believable sample */
#define COST_MAX 1e6

/* One epoch's sample moves an estimate by LEARN of the difference, and
 * never by more than a factor of two: a burst of page faults on a new
 * guest's memory is not what its wake-ups cost. */
static void learn(double *est, double sample)
{
    if (*est > 0 && sample > 2 * *est)
        sample = 2 * *est;
    if (*est > 0 && sample < *est / 2)
        sample = *est / 2;
    if (sample < COST_MIN)
        sample = COST_MIN;
    if (sample > COST_MAX)
        sample = COST_MAX;
    *est += LEARN * (sample - *est);
}

/* Refines the cost model from one epoch: `cpu` ns of worker CPU for its
 * frames and wake-ups. */
static void learn_costs(struct adaptive *a, double cpu, double secs)
{
    double f = (double)a->frames, kw = (double)a->kick_wakes, tw = (double)a->timer_wakes;
    double wakes = kw + tw;
    if (tw >= MIN_SAMPLES)
        a->late += LEARN * ((double)a->late_sum / tw - a->late);
    /* Polling (or no sleeps) teaches nothing: the core is spent whatever
     * the frames cost. */
    if (wakes < MIN_SAMPLES)
        return;
    if (f / wakes >= FRAME_HEAVY) {
        learn(&a->frame_cost, (cpu - kw * a->kick_cost - tw * a->timer_cost) / f);
    } else if (tw >= 0.8 * wakes) {
        learn(&a->timer_cost, (cpu - f * a->frame_cost - kw * a->kick_cost) / tw);
    } else if (kw >= 0.8 * wakes) {
        learn(&a->kick_cost, (cpu - f * a->frame_cost - tw * a->timer_cost) / kw);
    }
    /* How kicks batch here, against the model's expectation. */
    if (a->eff == EFF_NOTIFY && f >= MIN_SAMPLES && tw == 0) {
        double share = kw / f / batching(f / secs, a->kick_cost);
        share = share < 0.1 ? 0.1 : share > 2.0 ? 2.0 : share;
        a->kick_share += LEARN * (share - a->kick_share);
    }
}

/* Ring pressure: ticks found three quarters of a ring or more waiting
 * (periods are sized for 3/8), so sleeping between ticks throttles
 * the guest (its ring fills before we come back, whatever the nominal
 * period).  Kick-driven service keeps up and still sleeps when a ring runs
 * dry; batching by timer is tried again only once the rate has clearly
 * fallen.  One late tick (the timer oversleeps now and then) is not
 * pressure; a tenth of the passes finding that much is. */
static void track_pressure(struct adaptive *a)
{
    uint64_t busy_passes = a->passes - a->empty_passes;
    if (a->eff == EFF_INTERVAL && a->big_passes >= 2 && a->big_passes * 10 >= busy_passes) {
        a->pressure_rate = a->rate;
        a->pressure_epochs = PRESSURE_EPOCHS;
    } else if (a->pressure_rate > 0) {
        /* Ticks throttled the guest, so the rate they saw was low: kicks
         * show the rate the guest really offers. */
        if (a->rate > a->pressure_rate)
            a->pressure_rate = a->rate;
        if (a->rate < 0.5 * a->pressure_rate || --a->pressure_epochs == 0)
            a->pressure_rate = 0;   /* load fell, or time to probe batching again */
    }
}

/* The cheaper of notify and interval at the current rate, by the model
 * (ns of CPU per second beyond the frames' own, the same either way).  A
 * tick comes `late` after its deadline; period_ns 0: no period works. */
static enum eff_mode cheaper_schedule(struct adaptive *a, uint64_t period_ns)
{
    a->cost_notify = a->rate * kicks_per_frame(a, a->rate) * a->kick_cost;
    if (!period_ns) {
        a->cost_interval = INFINITY;
        return EFF_NOTIFY;
    }
    a->cost_interval = a->timer_cost * 1e9 / ((double)period_ns + a->late);
    if (a->eff == EFF_INTERVAL)
        return a->cost_notify < SWITCH_GAIN * a->cost_interval ? EFF_NOTIFY : EFF_INTERVAL;
    if (a->eff == EFF_NOTIFY)
        return a->cost_interval < SWITCH_GAIN * a->cost_notify ? EFF_INTERVAL : EFF_NOTIFY;
    return a->cost_interval < a->cost_notify ? EFF_INTERVAL : EFF_NOTIFY;   /* from poll */
}

bool adaptive_update(struct adaptive *a, uint64_t now, uint64_t cpu_ns, uint64_t budget_ns,
                     uint32_t ring_size)
{
    uint64_t dt = now - a->epoch_start_ns;
    if (dt < ADAPTIVE_EPOCH_NS)
        return false;
    if (a->epoch_cpu_start_ns == CPU_UNKNOWN) {
        start_epoch(a, now, cpu_ns);
        return false;
    }
    double secs = (double)dt / 1e9;
    double rate = (double)a->frames / secs;
    double cpu = (double)(cpu_ns - a->epoch_cpu_start_ns);
    /* Smooth, but follow a rising load at once so a burst is not met
     * with a long sleep. */
    a->rate = rate > a->rate ? rate : 0.5 * a->rate + 0.5 * rate;
    a->busy = cpu / (double)dt;
    double empty = a->passes ? (double)a->empty_passes / (double)a->passes : 1.0;
    learn_costs(a, cpu, secs);
    a->big_batch = ring_size * 3 / 4;
    track_pressure(a);

    /* The longest period the latency budget allows, capped so a period
     * gathers at most 3/8 of a ring (a tick comes late now and then, far
     * later than on average: room for twice the expected batch before
     * pressure shows; half a ring measured no better, a quarter worse);
     * ticks come `late`, so that is taken off.
     * A period shorter than the lateness is no schedule: the timer is too
     * coarse for it (then kicks or polling). */
    double cap = a->rate > 0 ? 0.375 * (double)ring_size / a->rate * 1e9 : (double)budget_ns;
    double span = ((double)budget_ns < cap ? (double)budget_ns : cap) - a->late;
    uint64_t period = span >= a->late && span >= 1000 ? (uint64_t)span : 0;
    enum eff_mode want = cheaper_schedule(a, period);
    if (a->exploring > 0) {
        a->exploring--;
        want = a->eff;          /* measuring it: keep it (saturation aside) */
    } else if (++a->since_explore >= EXPLORE_EVERY && period && a->rate > 0 &&
               (a->eff == EFF_NOTIFY || a->eff == EFF_INTERVAL)) {
        a->since_explore = 0;
        double cur = a->eff == EFF_NOTIFY ? a->cost_notify : a->cost_interval;
        double other = a->eff == EFF_NOTIFY ? a->cost_interval : a->cost_notify;
        if (want == a->eff && other < EXPLORE_WITHIN * cur) {
            want = a->eff == EFF_NOTIFY ? EFF_INTERVAL : EFF_NOTIFY;
            a->exploring = EXPLORE_EPOCHS;
            a->explorations++;
        }
    }
    /* Poll only when the worker is saturated: measured, so a host whose
     * wake-ups are dear gets there from interval or notify by itself.
     * Polling always measures 100%, so it is left when most polls find
     * nothing, or when the model says the schedule it would take instead
     * leaves the core clearly unsaturated. */
    bool saturated;
    if (a->eff == EFF_POLL) {
        double instead = want == EFF_INTERVAL ? a->cost_interval : a->cost_notify;
        double predicted = (instead + a->rate * a->frame_cost) / 1e9;
        saturated = empty < LEAVE_POLL_EMPTY && predicted > LEAVE_POLL_BUSY;
    } else {
        saturated = a->busy > POLL_BUSY;
    }
    if (saturated && a->rate > 0)
        want = EFF_POLL;
    else if (want == EFF_INTERVAL && a->pressure_rate > 0 && a->rate >= 0.8 * a->pressure_rate)
        want = EFF_NOTIFY;
    /* A period within 1/16 of the current one is the same schedule: the
     * lateness and the rate wobble, and each change is a decision. */
    uint64_t interval = a->interval_ns;
    if (want == EFF_INTERVAL && (a->eff != EFF_INTERVAL || period > interval + interval / 16 ||
                                 period + interval / 16 < interval))
        interval = period;
    bool changed = want != a->eff || (want == EFF_INTERVAL && interval != a->interval_ns);
    a->eff = want;
    a->interval_ns = interval;
    start_epoch(a, now, cpu_ns);
    if (changed)
        a->decisions++;
    return changed;
}
