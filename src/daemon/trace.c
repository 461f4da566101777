/*
 * trace.c - see trace.h.
 */
#include "trace.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

int trace_on;
__thread struct trace_ring *trace_self;

void trace_emit(struct trace_ring *t, enum trace_event ev, unsigned port, unsigned queue,
                uint32_t arg)
{
    struct trace_rec *base = __atomic_load_n(&t->rec, __ATOMIC_ACQUIRE);
    if (!base)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t pos = __atomic_load_n(&t->pos, __ATOMIC_RELAXED);
    struct trace_rec r = { (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec,
                           (uint8_t)ev, (uint8_t)port, (uint16_t)queue, arg };
    struct trace_rec *slot = &base[pos & (TRACE_RING_SIZE - 1)];
    __atomic_store_n(&slot->ts_ns, r.ts_ns, __ATOMIC_RELAXED);
    __atomic_store_n(&slot->event, r.event, __ATOMIC_RELAXED);
    __atomic_store_n(&slot->port, r.port, __ATOMIC_RELAXED);
    __atomic_store_n(&slot->queue, r.queue, __ATOMIC_RELAXED);
    __atomic_store_n(&slot->arg, r.arg, __ATOMIC_RELAXED);
    __atomic_store_n(&t->pos, pos + 1, __ATOMIC_RELEASE);
}

int trace_start(struct trace_ring *rings, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        /* A new trace shows only what happens from now on. */
        __atomic_store_n(&rings[i].since, __atomic_load_n(&rings[i].pos, __ATOMIC_ACQUIRE),
                         __ATOMIC_RELEASE);
        if (__atomic_load_n(&rings[i].rec, __ATOMIC_ACQUIRE))
            continue;
        struct trace_rec *r = calloc(TRACE_RING_SIZE, sizeof(*r));
        if (!r)
            return -1;
        __atomic_store_n(&rings[i].rec, r, __ATOMIC_RELEASE);
    }
    __atomic_store_n(&trace_on, 1, __ATOMIC_RELEASE);
    return 0;
}

void trace_stop(void)
{
    __atomic_store_n(&trace_on, 0, __ATOMIC_RELEASE);
}

size_t trace_snapshot(struct trace_ring *t, struct trace_rec **out)
{
    *out = NULL;
    struct trace_rec *base = __atomic_load_n(&t->rec, __ATOMIC_ACQUIRE);
    if (!base)
        return 0;
    uint64_t end = __atomic_load_n(&t->pos, __ATOMIC_ACQUIRE);
    uint64_t start = end > TRACE_RING_SIZE ? end - TRACE_RING_SIZE : 0;
    uint64_t since = __atomic_load_n(&t->since, __ATOMIC_ACQUIRE);
    if (start < since)
        start = since < end ? since : end;
    size_t n = (size_t)(end - start);
    struct trace_rec *copy = malloc((n ? n : 1) * sizeof(*copy));
    if (!copy)
        return 0;
    for (size_t i = 0; i < n; i++) {
        struct trace_rec *s = &base[(start + i) & (TRACE_RING_SIZE - 1)];
        copy[i].ts_ns = __atomic_load_n(&s->ts_ns, __ATOMIC_RELAXED);
        copy[i].event = __atomic_load_n(&s->event, __ATOMIC_RELAXED);
        copy[i].port = __atomic_load_n(&s->port, __ATOMIC_RELAXED);
        copy[i].queue = __atomic_load_n(&s->queue, __ATOMIC_RELAXED);
        copy[i].arg = __atomic_load_n(&s->arg, __ATOMIC_RELAXED);
    }
    /* Records the writer may have overwritten while we copied are dropped. */
    uint64_t now = __atomic_load_n(&t->pos, __ATOMIC_ACQUIRE);
    /* +1: the slot being written right now counts as overwritten. */
    uint64_t gone = now + 1 > TRACE_RING_SIZE ? now + 1 - TRACE_RING_SIZE : 0;
    size_t lost = gone > start ? (size_t)(gone - start) : 0;
    if (lost >= n) {
        free(copy);
        return 0;
    }
    memmove(copy, copy + lost, (n - lost) * sizeof(*copy));
    *out = copy;
    return n - lost;
}
