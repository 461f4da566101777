/*
 * worker.c - see worker.h.
 *
 * A worker sleeps in epoll_wait on the kick eventfds of the TX queues it
 * owns, its taps, and a private wake eventfd.  A pass serves every pending
 * queue for at most WEIGHT frames, so one busy guest cannot starve the
 * others; a queue that still has work stays pending and the next sleep is
 * zero.  Before a queue is left idle, net_tx_pass re-enables guest
 * notifications and checks the ring once more, so a kick that raced with
 * the pass is never lost.
 */
#define _GNU_SOURCE
#include "worker.h"

#include <errno.h>
#include <stdio.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "device.h"
#include "log.h"
#include "net.h"
#include "port.h"
#include "switch.h"
#include "tap.h"

#define WEIGHT 256          /* frames per queue per pass (vhost-net uses 256) */
#define MAX_EVENTS 64

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
    unsigned nq, capq;
    struct vqueue **queues;
    unsigned ntap;
    struct port *taps[LWV_MAX_PORTS];
    bool tap_pending[LWV_MAX_PORTS];
    struct worker_stats st;
    struct fwd_ctx ctx;
};

static struct worker **workers;
static unsigned nworkers;
static unsigned next_assign;
static int stopping;

unsigned workers_count(void) { return nworkers; }
struct worker *worker_get(unsigned i) { return i < nworkers ? workers[i] : NULL; }
int worker_tid(const struct worker *w) { return __atomic_load_n(&w->tid, __ATOMIC_RELAXED); }

void worker_get_stats(const struct worker *w, struct worker_stats *o)
{
    o->wakeups = stat_get(&w->st.wakeups);
    o->kick_wakeups = stat_get(&w->st.kick_wakeups);
    o->passes = stat_get(&w->st.passes);
    o->empty_passes = stat_get(&w->st.empty_passes);
    o->frames = stat_get(&w->st.frames);
}

int workers_init(unsigned n)
{
    workers = calloc(n, sizeof(*workers));
    if (!workers)
        return -1;
    for (unsigned i = 0; i < n; i++) {
        struct worker *w = calloc(1, sizeof(*w));
        if (!w)
            return -1;
        w->id = i;
        w->epfd = epoll_create1(EPOLL_CLOEXEC);
        w->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (w->epfd < 0 || w->wakefd < 0) {
            log_error("worker %u: cannot create epoll/eventfd: %s", i, strerror(errno));
            free(w);
            return -1;
        }
        struct epoll_event ev = { .events = EPOLLIN, .data.u64 = TAG_WAKE };
        epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->wakefd, &ev);
        workers[nworkers++] = w;
    }
    return 0;
}

void worker_assign_queue(struct vqueue *q)
{
    struct worker *w = workers[next_assign++ % nworkers];
    if (w->nq == w->capq) {
        unsigned cap = w->capq ? 2 * w->capq : 16;
        struct vqueue **nqs = realloc(w->queues, cap * sizeof(*nqs));
        if (!nqs) {
            log_error("out of memory assigning queues");
            abort();
        }
        w->queues = nqs;
        w->capq = cap;
    }
    w->queues[w->nq++] = q;
    q->worker = w;
}

void worker_assign_tap(struct port *p)
{
    struct worker *w = workers[next_assign++ % nworkers];
    w->taps[w->ntap++] = p;
    p->tap_worker = w;
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = (uint64_t)(uintptr_t)p | TAG_TAP };
    epoll_ctl(w->epfd, EPOLL_CTL_ADD, p->tap_fd, &ev);
}

static void wake(struct worker *w)
{
    uint64_t one = 1;
    if (write(w->wakefd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        log_warn("worker %u: wake failed: %s", w->id, strerror(errno));
}

void worker_watch_queue(struct vqueue *q)
{
    if (!q->worker || q->kickfd < 0)
        return;
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = (uint64_t)(uintptr_t)q | TAG_QUEUE };
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

/* Reads the kick counter so the level-triggered epoll quiets down. */
static void drain_kicks(struct vqueue *q)
{
    if (q->kickfd < 0)
        return;
    uint64_t n;
    if (read(q->kickfd, &n, sizeof(n)) == sizeof(n))
        stat_add(&q->st.kicks, n);
}

/* One pass over a queue; returns true if it still has work. */
static bool serve_queue(struct worker *w, struct vqueue *q)
{
    struct vdev *d = q->dev;
    bool more = false;
    pthread_rwlock_rdlock(&d->lock);
    drain_kicks(q);
    if (dev_queue_ready(d, q)) {
        unsigned n = net_tx_pass(&w->ctx, q, WEIGHT, &more);
        stat_add(&q->st.passes, 1);
        stat_add(&w->st.frames, n);
        /* A queue without a kick fd is polled (vhost-user spec). */
        if (q->kickfd < 0)
            more = true;
    }
    pthread_rwlock_unlock(&d->lock);
    return more;
}

/* The notify policy: sleep until a kick unless work is left over. */
static int next_timeout(bool more)
{
    return more ? 0 : -1;
}

static void collect_events(struct worker *w, struct epoll_event *ev, int n)
{
    for (int i = 0; i < n; i++) {
        uint64_t tag = ev[i].data.u64 & TAG_MASK;
        void *obj = (void *)(uintptr_t)(ev[i].data.u64 & ~(uint64_t)TAG_MASK);
        if (tag == TAG_QUEUE) {
            ((struct vqueue *)obj)->pending = true;
            stat_add(&w->st.kick_wakeups, 1);
        } else if (tag == TAG_TAP) {
            for (unsigned t = 0; t < w->ntap; t++)
                if (w->taps[t] == obj)
                    w->tap_pending[t] = true;
        } else {
            uint64_t v;
            if (read(w->wakefd, &v, sizeof(v)) < 0 && errno != EAGAIN)
                log_debug("worker %u: wake read: %s", w->id, strerror(errno));
        }
    }
    for (unsigned i = 0; i < w->nq; i++)
        if (__atomic_exchange_n(&w->queues[i]->recheck, 0, __ATOMIC_ACQUIRE))
            w->queues[i]->pending = true;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct epoll_event ev[MAX_EVENTS];
    char name[16];
    snprintf(name, sizeof(name), "lwv-worker%u", w->id);
    pthread_setname_np(pthread_self(), name);
    __atomic_store_n(&w->tid, (int)gettid(), __ATOMIC_RELAXED);
    bool more = false;
    while (!__atomic_load_n(&stopping, __ATOMIC_ACQUIRE)) {
        int n = epoll_wait(w->epfd, ev, MAX_EVENTS, next_timeout(more));
        if (n < 0 && errno != EINTR) {
            log_error("worker %u: epoll_wait: %s", w->id, strerror(errno));
            break;
        }
        if (n > 0)
            stat_add(&w->st.wakeups, 1);
        collect_events(w, ev, n > 0 ? n : 0);
        more = false;
        uint64_t before = w->st.frames;
        for (unsigned i = 0; i < w->nq; i++) {
            struct vqueue *q = w->queues[i];
            if (!q->pending)
                continue;
            q->pending = serve_queue(w, q);
            more |= q->pending;
        }
        for (unsigned t = 0; t < w->ntap; t++) {
            if (!w->tap_pending[t])
                continue;
            bool tmore;
            stat_add(&w->st.frames, tap_rx_pass(&w->ctx, w->taps[t], WEIGHT, &tmore));
            w->tap_pending[t] = tmore;
            more |= tmore;
        }
        switch_flush(&w->ctx);
        stat_add(&w->st.passes, 1);
        if (w->st.frames == before)
            stat_add(&w->st.empty_passes, 1);
    }
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
        close(w->epfd);
        close(w->wakefd);
        free(w->queues);
        free(w);
    }
    free(workers);
    workers = NULL;
    nworkers = 0;
}
