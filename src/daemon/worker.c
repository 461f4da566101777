/*
 * worker.c - see worker.h.
 *
 * A worker blocks in one epoll_pwait2 on the kick eventfds of the TX queues
 * it owns, its taps, uplinks and VXLAN ports (their fds: level-triggered)
 * and a private wake eventfd, with the time left to its next tick as the
 * timeout: a timer pass costs that one system call (and a
 * write per guest interrupt).  The eventfds are edge-triggered and never
 * read: every write to them is an event, and nothing needs draining.
 * Each queue runs
 * under its port's policy:
 *   notify    served when its kick fires; kicks suppressed while draining,
 *             re-enabled and the ring checked once more before sleeping;
 *   poll      kicks suppressed, served on every pass, the worker never sleeps;
 *   interval  the first kick switches the queue to timer service with kicks
 *             suppressed: passes run at a fixed cadence of absolute ticks
 *             (deadlines, so oversleep does not accumulate); after an idle
 *             period the queue re-enables kicks, checks once more and waits;
 *   adaptive  the worker's controller (policy.c) picks one of the three.
 * A pass serves a queue for at most WEIGHT frames so one busy guest cannot
 * starve the others, and sends each guest at most one interrupt per queue.
 */
#define _GNU_SOURCE
#include "worker.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "device.h"
#include "fwd.h"
#include "log.h"
#include "port.h"
#include "sysc.h"

#define WEIGHT 256          /* frames per queue per pass (vhost-net uses 256) */
#define MAX_EVENTS 64
#ifndef POLL_EPOLL_EVERY
#define POLL_EPOLL_EVERY 16
#endif
#define CALIBRATION_ROUNDS 200
#define CALIBRATION_SLEEP_NS 20000

/* epoll data tags in the low bits of aligned pointers. */
#define TAG_QUEUE 0u
#define TAG_TAP 1u
#define TAG_WAKE 2u
#define TAG_MASK 7u

struct worker {
    unsigned id;
    pthread_t thread;
    bool running;
    int tid;
    int epfd;
    int wakefd;
    uint64_t armed_ns;        /* absolute deadline of the next tick, 0: none */
    uint64_t period_ns;       /* cadence of the current interval ticks */
    uint64_t last_deadline_ns;/* deadline of the tick that fired last */
    bool tick;                /* the timer fired in this iteration */
    uint64_t tick_late_ns;    /* how late after its deadline */
    /* What the worker serves: published by the control thread (release),
     * read once per iteration (acquire).  A list it replaces is freed only
     * after a grace period (workers_synchronize). */
    struct qlist *queues;
    struct taplist *taps;
    /* Control thread only: the lists being built for the next commit, and
     * how many queues and taps the worker serves (placement). */
    struct qlist *next_queues;
    struct taplist *next_taps;
    unsigned load;
    /* Quiescent states passed (atomic): bumped at the top of every
     * iteration, where the worker holds no pointer to a queue or port. */
    uint64_t qs;
    bool exited;              /* atomic: the loop ended (no more quiescent states) */
    struct adaptive ad;
    struct worker_stats st;
    struct fwd_ctx ctx;
};

/* The queues or taps one worker serves: a list replaced whole, never
 * changed in place, so a worker can read it without a lock. */
struct qlist {
    unsigned n;
    struct vqueue *q[];
};

struct taplist {
    unsigned n;
    struct port *p[];
};

static struct worker **workers;
static unsigned nworkers;
static int stopping;
static uint64_t idle_ns = POLICY_DEFAULT_IDLE_US * 1000ull;
static struct trace_ring *trace_rings;

unsigned workers_count(void) { return nworkers; }
struct worker *worker_get(unsigned i) { return i < nworkers ? workers[i] : NULL; }
int worker_tid(const struct worker *w) { return __atomic_load_n(&w->tid, __ATOMIC_RELAXED); }
struct trace_ring *worker_trace_rings(void) { return trace_rings; }
void workers_set_idle_us(uint32_t us) { __atomic_store_n(&idle_ns, us * 1000ull, __ATOMIC_RELAXED); }
uint32_t workers_idle_us(void) { return (uint32_t)(__atomic_load_n(&idle_ns, __ATOMIC_RELAXED) / 1000); }

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t thread_cpu_ns(clockid_t cid)
{
    struct timespec ts;
    sysc_note();   /* a thread's CPU clock is not in the vDSO */
    if (clock_gettime(cid, &ts) < 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void worker_get_stats(const struct worker *w, struct worker_stats *o)
{
    _Static_assert(sizeof(struct worker_stats) % sizeof(uint64_t) == 0 &&
                       _Alignof(struct worker_stats) == _Alignof(uint64_t),
                   "struct worker_stats must hold only uint64_t fields");
    const uint64_t *from = (const uint64_t *)&w->st;
    uint64_t *to = (uint64_t *)o;
    for (size_t i = 0; i < sizeof(*o) / sizeof(uint64_t); i++)
        to[i] = stat_get(&from[i]);
    o->cpu_ns = 0;
    clockid_t cid;
    if (w->running && pthread_getcpuclockid(w->thread, &cid) == 0)
        o->cpu_ns = thread_cpu_ns(cid);
}

/* Frees a worker that has not started (its fds may be partly made). */
static void worker_free(struct worker *w)
{
    if (w->epfd >= 0)
        close(w->epfd);
    if (w->wakefd >= 0)
        close(w->wakefd);
    free(w->queues);
    free(w->taps);
    free(w->next_queues);
    free(w->next_taps);
    free(w);
}

static struct worker *worker_new(unsigned id)
{
    struct worker *w = calloc(1, sizeof(*w));
    if (!w) {
        log_error("worker %u: out of memory", id);
        return NULL;
    }
    w->id = id;
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    w->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->epfd < 0 || w->wakefd < 0) {
        log_error("worker %u: cannot create epoll/eventfd: %s", id, strerror(errno));
        goto fail;
    }
    struct epoll_event ev = { .events = EPOLLIN | EPOLLET, .data.u64 = TAG_WAKE };
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->wakefd, &ev) < 0)
        goto fail_ctl;
    return w;
fail_ctl:
    log_error("worker %u: epoll_ctl: %s", id, strerror(errno));
fail:
    worker_free(w);
    return NULL;
}

int workers_init(unsigned n)
{
    workers = calloc(n, sizeof(*workers));
    trace_rings = calloc(n, sizeof(*trace_rings));
    if (!workers || !trace_rings) {
        log_error("out of memory for %u workers", n);
        goto fail;
    }
    for (unsigned i = 0; i < n; i++) {
        struct worker *w = worker_new(i);
        if (!w)
            goto fail;
        workers[nworkers++] = w;
    }
    return 0;
fail:
    /* Nothing started yet: undo everything, so a caller may try again. */
    for (unsigned i = 0; i < nworkers; i++)
        worker_free(workers[i]);
    free(workers);
    free(trace_rings);
    workers = NULL;
    trace_rings = NULL;
    nworkers = 0;
    return -1;
}

static void wake(struct worker *w)
{
    uint64_t one = 1;
    sysc_note();
    if (write(w->wakefd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        log_warn("worker %u: wake failed: %s", w->id, strerror(errno));
}

/* The worker with the least to serve (ties: the lowest id). */
static struct worker *least_loaded(void)
{
    struct worker *best = workers[0];
    for (unsigned i = 1; i < nworkers; i++)
        if (workers[i]->load < best->load)
            best = workers[i];
    return best;
}

/* The queue list w will serve after the next commit, copied from the one
 * it serves now on the first change; NULL when out of memory. */
static struct qlist *editable_queues(struct worker *w, unsigned extra)
{
    const struct qlist *from = w->next_queues ? w->next_queues : w->queues;
    unsigned n = from ? from->n : 0;
    struct qlist *l = malloc(sizeof(*l) + (n + extra) * sizeof(l->q[0]));
    if (!l)
        return NULL;
    l->n = n;
    if (n)
        memcpy(l->q, from->q, n * sizeof(l->q[0]));
    free(w->next_queues);
    w->next_queues = l;
    return l;
}

static struct taplist *editable_taps(struct worker *w, unsigned extra)
{
    const struct taplist *from = w->next_taps ? w->next_taps : w->taps;
    unsigned n = from ? from->n : 0;
    struct taplist *l = malloc(sizeof(*l) + (n + extra) * sizeof(l->p[0]));
    if (!l)
        return NULL;
    l->n = n;
    if (n)
        memcpy(l->p, from->p, n * sizeof(l->p[0]));
    free(w->next_taps);
    w->next_taps = l;
    return l;
}

int worker_assign_queue(struct vqueue *q)
{
    struct worker *w = least_loaded();
    struct qlist *l = editable_queues(w, 1);
    if (!l)
        return -1;
    l->q[l->n++] = q;
    w->load++;
    q->worker = w;
    return 0;
}

void worker_release_queue(struct vqueue *q)
{
    struct worker *w = q->worker;
    if (!w)
        return;
    worker_unwatch_queue(q);
    struct qlist *l = editable_queues(w, 0);
    if (l) {
        unsigned k = 0;
        for (unsigned i = 0; i < l->n; i++)
            if (l->q[i] != q)
                l->q[k++] = l->q[i];
        l->n = k;
    } else {
        /* The worker would go on serving a queue about to be freed. */
        log_error("worker %u: out of memory releasing a queue", w->id);
        abort();
    }
    w->load--;
    q->worker = NULL;
}

int worker_assign_tap(struct port *p)
{
    struct worker *w = least_loaded();
    struct taplist *l = editable_taps(w, 1);
    if (!l)
        return -1;
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = (uint64_t)(uintptr_t)p | TAG_TAP };
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, p->tap_fd, &ev) < 0) {
        log_error("worker %u: cannot watch tap %s: %s", w->id, p->name, strerror(errno));
        return -1;
    }
    l->p[l->n++] = p;
    w->load++;
    p->tap_worker = w;
    return 0;
}

void worker_release_tap(struct port *p)
{
    struct worker *w = p->tap_worker;
    if (!w)
        return;
    epoll_ctl(w->epfd, EPOLL_CTL_DEL, p->tap_fd, NULL);
    struct taplist *l = editable_taps(w, 0);
    if (!l) {
        log_error("worker %u: out of memory releasing a tap", w->id);
        abort();
    }
    unsigned k = 0;
    for (unsigned i = 0; i < l->n; i++)
        if (l->p[i] != p)
            l->p[k++] = l->p[i];
    l->n = k;
    w->load--;
    p->tap_worker = NULL;
}

void workers_commit(void)
{
    void *old[2 * 64];
    unsigned nold = 0;
    for (unsigned i = 0; i < nworkers; i++) {
        struct worker *w = workers[i];
        if (w->next_queues) {
            old[nold++] = w->queues;
            __atomic_store_n(&w->queues, w->next_queues, __ATOMIC_RELEASE);
            w->next_queues = NULL;
        }
        if (w->next_taps) {
            old[nold++] = w->taps;
            __atomic_store_n(&w->taps, w->next_taps, __ATOMIC_RELEASE);
            w->next_taps = NULL;
        }
    }
    /* No worker may still be walking a list we free, or hold what the
     * caller is about to free. */
    workers_synchronize();
    for (unsigned i = 0; i < nold; i++)
        free(old[i]);
}

void workers_synchronize(void)
{
    uint64_t seen[64];
    bool wait[64];
    /* Pairs with the fence after a worker's quiescent-state store: either
     * the worker sees what we published before this, or we see it pass a
     * quiescent state after it could have read the old values. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    for (unsigned i = 0; i < nworkers; i++) {
        struct worker *w = workers[i];
        wait[i] = w->running && !__atomic_load_n(&w->exited, __ATOMIC_ACQUIRE);
        if (!wait[i])
            continue;
        seen[i] = __atomic_load_n(&w->qs, __ATOMIC_ACQUIRE);
        wake(w);   /* a sleeping worker passes a quiescent state at once */
    }
    uint64_t start = mono_ns();
    bool warned = false;
    for (unsigned i = 0; i < nworkers; i++) {
        struct worker *w = workers[i];
        while (wait[i] && __atomic_load_n(&w->qs, __ATOMIC_ACQUIRE) == seen[i] &&
               !__atomic_load_n(&w->exited, __ATOMIC_ACQUIRE)) {
            /* Workers never block, so this ends within one pass. */
            struct timespec ts = { 0, 20000 };
            nanosleep(&ts, NULL);
            if (!warned && mono_ns() - start > 1000000000ull) {
                log_warn("worker %u has not finished a pass for 1 s; still waiting", w->id);
                warned = true;
            }
        }
    }
}

void worker_watch_queue(struct vqueue *q)
{
    if (!q->worker || q->kickfd < 0)
        return;
    /* Edge-triggered: every kick is an event, and the eventfd is never
     * read (its count is of no use to us). */
    struct epoll_event ev = { .events = EPOLLIN | EPOLLET,
                              .data.u64 = (uint64_t)(uintptr_t)q | TAG_QUEUE };
    if (epoll_ctl(q->worker->epfd, EPOLL_CTL_ADD, q->kickfd, &ev) < 0)
        log_error("worker %u: cannot watch kick fd: %s", q->worker->id, strerror(errno));
    worker_poke_queue(q);
}

void worker_unwatch_queue(struct vqueue *q)
{
    if (!q->worker || q->kickfd < 0)
        return;
    epoll_ctl(q->worker->epfd, EPOLL_CTL_DEL, q->kickfd, NULL);
}

void worker_poke_queue(struct vqueue *q)
{
    if (!q->worker)
        return;
    __atomic_store_n(&q->recheck, 1, __ATOMIC_RELEASE);
    wake(q->worker);
}

/* ---- policy application ------------------------------------------------ */

static struct policy port_policy(const struct vqueue *q)
{
    return policy_unpack(__atomic_load_n(&q->dev->port->policy, __ATOMIC_RELAXED));
}

/* What q does this pass, and at which period if it is timer-driven. */
static enum eff_mode effective(struct worker *w, const struct vqueue *q, uint64_t *period_ns)
{
    struct policy p = port_policy(q);
    switch (p.mode) {
    case POLICY_POLL:
        return EFF_POLL;
    case POLICY_INTERVAL:
        *period_ns = p.arg_us * 1000ull;
        return EFF_INTERVAL;
    case POLICY_ADAPTIVE:
        *period_ns = w->ad.interval_ns;
        return w->ad.eff;
    case POLICY_NOTIFY:
    default:
        return EFF_NOTIFY;
    }
}

/* One pass over a queue; returns true if it should be served again at
 * once (work left over). */
static bool serve_queue(struct worker *w, struct vqueue *q, uint64_t now)
{
    struct vdev *d = q->dev;
    struct trace_ring *tr = &trace_rings[w->id];
    unsigned pidx = d->port->index;
    bool more = false;
    uint64_t period = 0;
    enum eff_mode eff = effective(w, q, &period);
    /* Never wait for the control plane: it pokes the queue when done. */
    if (pthread_rwlock_tryrdlock(&d->lock) != 0)
        return false;
    if (!dev_queue_ready(d, q)) {
        q->pol.active = false;
        goto out;
    }
    /* A queue without a kick fd cannot wake us: it must be polled. */
    if (q->kickfd < 0)
        eff = EFF_POLL;
    bool was_off = q->vq.notify_off;
    trace(tr, TR_TX_BEGIN, pidx, q->index, eff);
    unsigned n = fwd_tx_pass(&w->ctx, q, WEIGHT, eff == EFF_NOTIFY, &more);
    /* A destination's locks are not kept past its source's pass. */
    fwd_release(&w->ctx);
    trace(tr, TR_TX_END, pidx, q->index, n);
    stat_add(&q->st.passes, 1);
    stat_add(&w->st.frames, n);
    adaptive_account(&w->ad, n);
    if (!was_off && eff != EFF_NOTIFY)
        trace(tr, TR_NOTIFY_OFF, pidx, q->index, 0);
    if (qpolicy_after_pass(&q->pol, eff, now, n, more, __atomic_load_n(&idle_ns, __ATOMIC_RELAXED)) ==
            QP_TRY_SLEEP && eff != EFF_NOTIFY) {
        /* Idle: back to kicks, unless a buffer raced in (then stay). */
        if (vq_enable_notify(&q->vq)) {
            vq_disable_notify(&q->vq);
            more = true;
        } else {
            q->pol.active = false;
            trace(tr, TR_NOTIFY_ON, pidx, q->index, 0);
        }
    }
out:
    pthread_rwlock_unlock(&d->lock);
    return more;
}

static void collect_events(struct worker *w, const struct qlist *ql, struct epoll_event *ev, int n,
                           uint64_t now)
{
    struct trace_ring *tr = &trace_rings[w->id];
    for (int i = 0; i < n; i++) {
        uint64_t tag = ev[i].data.u64 & TAG_MASK;
        void *obj = (void *)(uintptr_t)(ev[i].data.u64 & ~(uint64_t)TAG_MASK);
        if (tag == TAG_QUEUE) {
            struct vqueue *q = obj;
            q->pending = true;
            stat_add(&q->st.kicks, 1);   /* kicks seen: several may make one event */
            stat_add(&w->st.kick_wakeups, 1);
            trace(tr, TR_WAKE_KICK, q->dev->port->index, q->index, 0);
        } else if (tag == TAG_TAP) {
            struct port *hp = obj;
            hp->tap_pending = true;
            if (ev[i].events & EPOLLERR)
                hp->tap_error = true;   /* cleared in the pass, or it wakes us forever */
        } else {
            trace(tr, TR_WAKE_OTHER, 0, 0, 0);   /* a poke: the wake eventfd */
        }
    }
    if (w->armed_ns && now >= w->armed_ns) {
        /* The tick is due: the sleep timed out, or events came just late. */
        uint64_t late = now - w->armed_ns;
        stat_add(&w->st.timer_wakeups, 1);
        stat_add(&w->st.oversleep_ns, late);
        if (late > w->st.oversleep_max_ns)
            stat_add(&w->st.oversleep_max_ns, late - w->st.oversleep_max_ns);
        trace(tr, TR_WAKE_TIMER, 0, 0, late > UINT32_MAX ? UINT32_MAX : (uint32_t)late);
        w->last_deadline_ns = w->armed_ns;
        w->armed_ns = 0;
        w->tick = true;
        w->tick_late_ns = late;
    }
    for (unsigned i = 0; i < ql->n; i++)
        if (__atomic_exchange_n(&ql->q[i]->recheck, 0, __ATOMIC_ACQUIRE))
            ql->q[i]->pending = true;
}

/* The next tick: the sleep in wait_events ends there (0: no tick). */
static void arm_timer(struct worker *w, uint64_t deadline)
{
    w->armed_ns = deadline;
}

static bool have_pwait2 = true;

/* Waits for events: not at all (poll), or until one comes or the armed
 * tick is due.  One system call, epoll_pwait2 with the time left as its
 * timeout (nanoseconds; with a timer slack of 1 ns it ends when asked).
 * Kernels before 5.11 lack it: epoll_wait then, with the time rounded up
 * to a millisecond. */
static int wait_events(struct worker *w, int epfd, struct epoll_event *ev, bool block)
{
    struct timespec ts = { 0, 0 }, *tp = &ts;
    if (block && !w->armed_ns) {
        tp = NULL;
    } else if (block) {
        uint64_t now = mono_ns(), left = w->armed_ns > now ? w->armed_ns - now : 0;
        ts.tv_sec = (time_t)(left / 1000000000ull);
        ts.tv_nsec = (long)(left % 1000000000ull);
    }
    sysc_note();
    if (have_pwait2) {
        int n = epoll_pwait2(epfd, ev, MAX_EVENTS, tp, NULL);
        if (n >= 0 || errno != ENOSYS)
            return n;
        have_pwait2 = false;
        log_warn("epoll_pwait2 is missing (kernel before 5.11): ticks rounded up to 1 ms");
        sysc_note();
    }
    int ms = !tp ? -1 : (int)((ts.tv_sec * 1000000000ll + ts.tv_nsec + 999999) / 1000000);
    return epoll_wait(epfd, ev, MAX_EVENTS, ms);
}

/* After a pass: how long may the worker sleep?  0 = not at all, -1 = until
 * an event; interval queues arm the timer for the next tick. */
static int plan_sleep(struct worker *w, const struct qlist *ql, bool more, uint64_t now)
{
    uint64_t period = 0;
    bool poll = false;
    for (unsigned i = 0; i < ql->n; i++) {
        struct vqueue *q = ql->q[i];
        if (!q->pol.active)
            continue;
        uint64_t p = 0;
        enum eff_mode eff = effective(w, q, &p);
        if (eff == EFF_POLL || eff == EFF_NOTIFY) {
            /* An active queue whose policy just became notify needs one
             * more pass to re-enable its kicks. */
            poll = true;
        } else if (p && (!period || p < period)) {
            period = p;
        }
        q->pending = true;   /* active queues are served on every wake-up */
    }
    if (more || poll) {
        arm_timer(w, 0);
        return 0;
    }
    if (!period) {
        arm_timer(w, 0);
        w->period_ns = 0;
        trace(&trace_rings[w->id], TR_SLEEP, 0, 0, UINT32_MAX);
        return -1;
    }
    /* Keep a fixed cadence of absolute ticks; skip the ones already past. */
    uint64_t next;
    if (w->armed_ns && period == w->period_ns)
        next = w->armed_ns;                   /* woken early: keep the tick */
    else if (w->tick && period == w->period_ns && w->last_deadline_ns)
        next = w->last_deadline_ns + period;
    else
        next = now + period;                  /* cadence (re)starts */
    while (next <= now)
        next += period;
    w->period_ns = period;
    arm_timer(w, next);
    trace(&trace_rings[w->id], TR_SLEEP, 0, 0, (uint32_t)((next - now) / 1000));
    return -1;
}

/* CPU cost of one timer sleep and wake-up on this host, and the typical
 * oversleep, measured once per worker at start.  It sleeps on an epoll set
 * of its own with nothing in it: the worker's set may already hold kick
 * fds, and an edge-triggered event taken here would be lost. */
static void calibrate(struct worker *w, clockid_t cid)
{
    struct epoll_event ev[MAX_EVENTS];
    int empty = epoll_create1(EPOLL_CLOEXEC);
    if (empty < 0)
        return;
    uint64_t cpu0 = thread_cpu_ns(cid), late = 0;
    for (int i = 0; i < CALIBRATION_ROUNDS; i++) {
        uint64_t deadline = mono_ns() + CALIBRATION_SLEEP_NS, now;
        arm_timer(w, deadline);
        do
            wait_events(w, empty, ev, true);
        while ((now = mono_ns()) < deadline);
        late += now - deadline;
        w->armed_ns = 0;
    }
    uint64_t cost = (thread_cpu_ns(cid) - cpu0) / CALIBRATION_ROUNDS;
    stat_add(&w->st.wake_cost_ns, cost);
    stat_add(&w->st.calib_oversleep_ns, late / CALIBRATION_ROUNDS);
    close(empty);
}

static void adaptive_tick(struct worker *w, const struct qlist *ql, clockid_t cid, uint64_t now)
{
    if (now - w->ad.epoch_start_ns < ADAPTIVE_EPOCH_NS)
        return;
    /* The budget: the smallest latency budget among adaptive queues. */
    uint64_t budget = 0;
    uint32_t ring = VIRTQ_MAX_SIZE;
    for (unsigned i = 0; i < ql->n; i++) {
        struct policy p = port_policy(ql->q[i]);
        if (p.mode != POLICY_ADAPTIVE)
            continue;
        uint64_t b = p.arg_us * 1000ull;
        if (!budget || b < budget)
            budget = b;
        /* The ring size changes under the device's write lock (SET_VRING_NUM,
         * a reconnect's reset): read it under the read lock, as a pass does,
         * and skip a device being reconfigured. */
        struct vdev *d = ql->q[i]->dev;
        if (pthread_rwlock_tryrdlock(&d->lock) != 0)
            continue;
        uint32_t num = ql->q[i]->vq.num;
        pthread_rwlock_unlock(&d->lock);
        if (num && num < ring)
            ring = num;
    }
    if (!budget) {
        /* The first adaptive epoch then measures only itself. */
        adaptive_restart(&w->ad, now);
        return;
    }
    if (adaptive_update(&w->ad, now, thread_cpu_ns(cid), budget, ring)) {
        stat_add(&w->st.adaptive_decisions, 1);
        trace(&trace_rings[w->id], TR_POLICY, 0, 0,
              (uint32_t)w->ad.eff << 24 | (uint32_t)(w->ad.interval_ns / 1000 & 0xffffff));
    }
    __atomic_store_n(&w->st.adaptive_eff, (uint64_t)w->ad.eff, __ATOMIC_RELAXED);
    __atomic_store_n(&w->st.adaptive_interval_ns, w->ad.interval_ns, __ATOMIC_RELAXED);
    __atomic_store_n(&w->st.adaptive_rate, (uint64_t)w->ad.rate, __ATOMIC_RELAXED);
    __atomic_store_n(&w->st.adaptive_kick_cost_ns, (uint64_t)w->ad.kick_cost, __ATOMIC_RELAXED);
    __atomic_store_n(&w->st.adaptive_timer_cost_ns, (uint64_t)w->ad.timer_cost, __ATOMIC_RELAXED);
    __atomic_store_n(&w->st.adaptive_frame_ps, (uint64_t)(w->ad.frame_cost * 1000),
                     __ATOMIC_RELAXED);
}

static const struct qlist no_queues = { 0 };

__thread uint64_t sysc_count;

/* The top of an iteration: the worker holds no pointer to a queue, a port
 * or a list the control thread may free, unless its forwarding context
 * still owes an interrupt (then not yet). */
static void pass_quiescent_state(struct worker *w)
{
    if (!fwd_idle(&w->ctx))
        return;
    __atomic_store_n(&w->qs, __atomic_load_n(&w->qs, __ATOMIC_RELAXED) + 1, __ATOMIC_RELEASE);
    /* Pairs with workers_synchronize's fence: our store is visible before
     * we read the lists and pointers again. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct epoll_event ev[MAX_EVENTS];
    char name[16];
    snprintf(name, sizeof(name), "lwv-worker%u", w->id);
    pthread_setname_np(pthread_self(), name);
    __atomic_store_n(&w->tid, (int)gettid(), __ATOMIC_RELAXED);
    trace_self = &trace_rings[w->id];
    /* Timer slack of 1 ns: interval sleeps should end when asked. */
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    clockid_t cid;
    pthread_getcpuclockid(pthread_self(), &cid);
    calibrate(w, cid);
    adaptive_init(&w->ad, w->st.wake_cost_ns, w->st.calib_oversleep_ns, mono_ns(),
                  thread_cpu_ns(cid));
    int timeout = -1;
    unsigned spins = 0;
    while (!__atomic_load_n(&stopping, __ATOMIC_ACQUIRE)) {
        pass_quiescent_state(w);
        uint64_t before_sleep = timeout ? mono_ns() : 0;
        int n = 0;
        /* While polling, look at the fds only every POLL_EPOLL_EVERY passes:
         * epoll_wait is a system call, and pokes arrive as flags anyway. */
        if (timeout != 0 || ++spins >= POLL_EPOLL_EVERY) {
            spins = 0;
            n = wait_events(w, w->epfd, ev, timeout != 0);
        }
        uint64_t now = mono_ns();
        if (timeout)
            stat_add(&w->st.sleep_ns, now - before_sleep);
        if (n < 0 && errno != EINTR) {
            log_error("worker %u: epoll_wait: %s", w->id, strerror(errno));
            break;
        }
        w->tick = false;
        const struct qlist *ql = __atomic_load_n(&w->queues, __ATOMIC_ACQUIRE);
        const struct taplist *tl = __atomic_load_n(&w->taps, __ATOMIC_ACQUIRE);
        if (!ql)
            ql = &no_queues;
        collect_events(w, ql, ev, n > 0 ? n : 0, now);
        if (timeout != 0 && (n > 0 || w->tick)) {
            stat_add(&w->st.wakeups, 1);
            adaptive_wake(&w->ad, w->tick, w->tick_late_ns);
        }
        bool more = false;
        uint64_t before = w->st.frames;
        for (unsigned i = 0; i < ql->n; i++) {
            struct vqueue *q = ql->q[i];
            if (!q->pending)
                continue;
            q->pending = serve_queue(w, q, now);
            more |= q->pending;
        }
        for (unsigned t = 0; tl && t < tl->n; t++) {
            struct port *p = tl->p[t];
            if (!p->tap_pending)
                continue;
            bool tmore;
            unsigned got = p->type == PORT_UPLINK  ? fwd_uplink_pass(&w->ctx, p, WEIGHT, &tmore)
                           : p->type == PORT_VXLAN ? fwd_vxlan_pass(&w->ctx, p, WEIGHT, &tmore)
                                                   : fwd_tap_pass(&w->ctx, p, WEIGHT, &tmore);
            stat_add(&w->st.frames, got);
            p->tap_pending = tmore;
            more |= tmore;
        }
        if (!fwd_flush(&w->ctx))
            more = true;    /* an interrupt decision waits for another worker */
        stat_add(&w->st.passes, 1);
        if (w->st.frames == before)
            stat_add(&w->st.empty_passes, 1);
        adaptive_tick(w, ql, cid, now);
        timeout = plan_sleep(w, ql, more, now);
        __atomic_store_n(&w->st.syscalls, sysc_count, __ATOMIC_RELAXED);
    }
    __atomic_store_n(&w->exited, true, __ATOMIC_RELEASE);
    return NULL;
}

int workers_start(void)
{
    for (unsigned i = 0; i < nworkers; i++) {
        if (pthread_create(&workers[i]->thread, NULL, worker_main, workers[i]) != 0) {
            log_error("cannot start worker %u", i);
            return -1;
        }
        workers[i]->running = true;
    }
    return 0;
}

void workers_stop(void)
{
    __atomic_store_n(&stopping, 1, __ATOMIC_RELEASE);
    for (unsigned i = 0; i < nworkers; i++) {
        struct worker *w = workers[i];
        wake(w);
        if (w->running)
            pthread_join(w->thread, NULL);
        fwd_ctx_fini(&w->ctx);
        worker_free(w);
        free(trace_rings[i].rec);
    }
    free(workers);
    free(trace_rings);
    workers = NULL;
    trace_rings = NULL;
    nworkers = 0;
}
