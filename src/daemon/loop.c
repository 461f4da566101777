/*
 * loop.c - see loop.h.  Deleted watches are parked until the end of the
 * iteration, because an event for them may still sit in the batch that
 * epoll_wait returned.
 */
#include "loop.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

struct loop_watch {
    int fd;
    loop_fn fn;
    void *arg;
    bool dead;
    struct loop_watch *prev, *next;   /* in live_list, then in dead_list */
};

static int epfd = -1;
static bool stop;
static struct loop_watch *live_list, *dead_list;

static void unlink_watch(struct loop_watch **head, struct loop_watch *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        *head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    w->prev = w->next = NULL;
}

static void push_watch(struct loop_watch **head, struct loop_watch *w)
{
    w->prev = NULL;
    w->next = *head;
    if (*head)
        (*head)->prev = w;
    *head = w;
}

uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int loop_init(void)
{
    epfd = epoll_create1(EPOLL_CLOEXEC);
    return epfd < 0 ? -1 : 0;
}

static void reap(void)
{
    while (dead_list) {
        struct loop_watch *w = dead_list;
        unlink_watch(&dead_list, w);
        free(w);
    }
}

void loop_fini(void)
{
    while (live_list)
        loop_del(live_list);
    reap();
    if (epfd >= 0)
        close(epfd);
    epfd = -1;
}

struct loop_watch *loop_add(int fd, uint32_t events, loop_fn fn, void *arg)
{
    struct loop_watch *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->fd = fd;
    w->fn = fn;
    w->arg = arg;
    struct epoll_event ev = { .events = events, .data.ptr = w };
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        log_error("event loop: cannot watch fd %d: %s", fd, strerror(errno));
        free(w);
        return NULL;
    }
    push_watch(&live_list, w);
    return w;
}

void loop_mod(struct loop_watch *w, uint32_t events)
{
    struct epoll_event ev = { .events = events, .data.ptr = w };
    epoll_ctl(epfd, EPOLL_CTL_MOD, w->fd, &ev);
}

void loop_del(struct loop_watch *w)
{
    if (!w || w->dead)
        return;
    epoll_ctl(epfd, EPOLL_CTL_DEL, w->fd, NULL);
    w->dead = true;
    unlink_watch(&live_list, w);
    push_watch(&dead_list, w);
}

void loop_stop(void)
{
    stop = true;
}

void loop_run(int (*tick)(void))
{
    struct epoll_event ev[32];
    while (!stop) {
        int timeout = tick ? tick() : -1;
        if (stop)
            break;
        int n = epoll_wait(epfd, ev, 32, timeout);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            log_error("event loop: epoll_wait: %s", strerror(errno));
            break;
        }
        for (int i = 0; i < n; i++) {
            struct loop_watch *w = ev[i].data.ptr;
            if (!w->dead)
                w->fn(w->arg, ev[i].events);
        }
        reap();
    }
}
