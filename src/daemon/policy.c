/*
 * policy.c - see policy.h.
 */
#include "policy.h"

#include <errno.h>
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

void adaptive_init(struct adaptive *a, uint64_t wake_cost_ns, uint64_t now, uint64_t cpu_ns)
{
    memset(a, 0, sizeof(*a));
    a->wake_cost_ns = wake_cost_ns ? wake_cost_ns : 5000;
    a->ring_half = 128;
    a->epoch_start_ns = now;
    a->epoch_cpu_start_ns = cpu_ns;
    a->eff = EFF_NOTIFY;
}

void adaptive_account(struct adaptive *a, unsigned frames)
{
    a->frames += frames;
    a->passes++;
    if (frames > a->max_batch)
        a->max_batch = frames;
    if (a->ring_half && frames >= a->ring_half)
        a->big_passes++;
    if (!frames)
        a->empty_passes++;
}

/* Hysteresis: leave notify when at least one frame is expected per budget,
 * return to it only below half of that; leave poll only when most polls
 * find nothing. */
#define ENTER_BATCHING 1.0
#define LEAVE_BATCHING 0.5
#define POLL_BUSY 0.85
#define LEAVE_POLL_EMPTY 0.6
#define PRESSURE_EPOCHS 100    /* 1 s */

bool adaptive_update(struct adaptive *a, uint64_t now, uint64_t cpu_ns, uint64_t budget_ns,
                     uint32_t ring_size)
{
    uint64_t dt = now - a->epoch_start_ns;
    if (dt < ADAPTIVE_EPOCH_NS)
        return false;
    double secs = (double)dt / 1e9;
    double rate = (double)a->frames / secs;
    /* Smooth, but follow a rising load at once so a burst is not met
     * with a long sleep. */
    a->rate = rate > a->rate ? rate : 0.5 * a->rate + 0.5 * rate;
    a->busy = (double)(cpu_ns - a->epoch_cpu_start_ns) / (double)dt;
    double empty = a->passes ? (double)a->empty_passes / (double)a->passes : 1.0;

    enum eff_mode want = a->eff;
    uint64_t interval = a->interval_ns;
    /* Ring pressure: a tick found half a ring or more waiting, so sleeping
     * between ticks throttles the guest (its ring fills before we come
     * back, whatever the nominal period).  Kick-driven service keeps up and
     * still sleeps when a ring runs dry; batching by timer is tried again
     * only once the rate has clearly fallen. */
    /* One late tick (the timer oversleeps now and then) is not pressure;
     * a tenth of the passes finding half a ring is. */
    a->ring_half = ring_size / 2;
    uint64_t busy_passes = a->passes - a->empty_passes;
    if (a->eff == EFF_INTERVAL && a->big_passes >= 2 && a->big_passes * 10 >= busy_passes) {
        a->pressure_rate = a->rate;
        a->pressure_epochs = PRESSURE_EPOCHS;
    } else if (a->pressure_rate > 0 &&
               (a->rate < 0.5 * a->pressure_rate || --a->pressure_epochs == 0)) {
        a->pressure_rate = 0;   /* load fell, or time to probe batching again */
    }
    double per_budget = a->rate * (double)budget_ns / 1e9;   /* frames per budget */
    double threshold = a->eff == EFF_NOTIFY ? ENTER_BATCHING : LEAVE_BATCHING;
    if (per_budget < threshold) {
        want = EFF_NOTIFY;
    } else {
        /* The longest period the latency budget allows, capped so a period
         * gathers at most half a ring. */
        double cap = a->rate > 0 ? 0.5 * (double)ring_size / a->rate * 1e9 : (double)budget_ns;
        double period = (double)budget_ns < cap ? (double)budget_ns : cap;
        /* Poll only when the worker is saturated: measured, so a host whose
         * wake-ups are dear (sleeping every period costs most of the core)
         * gets there from interval by itself. */
        bool saturated = a->eff == EFF_POLL ? empty < LEAVE_POLL_EMPTY : a->busy > POLL_BUSY;
        if (saturated) {
            want = EFF_POLL;
        } else if (a->pressure_rate > 0 && a->rate >= 0.8 * a->pressure_rate) {
            want = EFF_NOTIFY;
        } else {
            want = EFF_INTERVAL;
            interval = (uint64_t)period;
        }
    }
    bool changed = want != a->eff || (want == EFF_INTERVAL && interval != a->interval_ns);
    a->eff = want;
    a->interval_ns = interval;
    a->epoch_start_ns = now;
    a->epoch_cpu_start_ns = cpu_ns;
    a->frames = a->passes = a->empty_passes = a->big_passes = 0;
    a->max_batch = 0;
    if (changed)
        a->decisions++;
    return changed;
}
