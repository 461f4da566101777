/*
 * fdb.c - see fdb.h.
 *
 * A bucket is FDB_WAYS consecutive 64-bit words, so a lookup reads one
 * cache line.  A word is claimed with a compare-and-swap from 0 and freed
 * with one back to 0; two workers learning the same address at once may
 * each claim a slot, and the one at the higher index then gives its slot
 * back, so an address has one entry.  Counters of learned entries per port
 * are atomic; two learners racing past a port's limit can overshoot it by
 * the number of workers, no more.
 */
#include "fdb.h"

#include <string.h>
#include <sys/random.h>
#include <time.h>

#define STATIC_BIT (1ull << 15)
#define PORT_MASK 0xfffull

static uint64_t word_key(uint64_t w) { return w >> 16; }
static unsigned word_port(uint64_t w) { return (unsigned)(w & PORT_MASK) - 1; }
static bool word_static(uint64_t w) { return w & STATIC_BIT; }

static uint64_t load(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }

static bool cas(uint64_t *p, uint64_t old, uint64_t new)
{
    return __atomic_compare_exchange_n(p, &old, new, false, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
}

static void count(uint64_t *c) { __atomic_fetch_add(c, 1, __ATOMIC_RELAXED); }

static uint32_t now_clock(const struct fdb *f) { return __atomic_load_n(&f->clock, __ATOMIC_RELAXED); }

void fdb_init(struct fdb *f)
{
    memset(f, 0, sizeof(*f));
    if (getrandom(&f->seed, sizeof(f->seed), GRND_NONBLOCK) != sizeof(f->seed)) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        f->seed = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t)ts.tv_sec;
    }
    f->seed |= 1;
    fdb_configure(f, FDB_DEFAULT_AGE_S, FDB_DEFAULT_PORT_MAX);
}

void fdb_configure(struct fdb *f, uint32_t age_s, uint32_t port_max)
{
    __atomic_store_n(&f->age_s, age_s, __ATOMIC_RELAXED);
    __atomic_store_n(&f->port_max, port_max, __ATOMIC_RELAXED);
}

/* First slot of key's bucket. */
static unsigned bucket(const struct fdb *f, uint64_t key)
{
    uint64_t h = (key ^ f->seed) * 0x9e3779b97f4a7c15ull;
    h ^= h >> 29;
    h *= f->seed;
    return (unsigned)(h >> 40) & (FDB_SLOTS - 1) & ~(FDB_WAYS - 1);
}

static bool expired(const struct fdb *f, unsigned s, uint32_t clock)
{
    uint32_t seen = __atomic_load_n(&f->seen[s], __ATOMIC_RELAXED);
    return clock - seen > __atomic_load_n(&f->age_s, __ATOMIC_RELAXED);
}

static void refresh(struct fdb *f, unsigned s, uint32_t clock)
{
    /* A store only when the second changed: no line ping-pong per frame. */
    if (__atomic_load_n(&f->seen[s], __ATOMIC_RELAXED) != clock)
        __atomic_store_n(&f->seen[s], clock, __ATOMIC_RELAXED);
}

static void port_count(struct fdb *f, unsigned port, int delta)
{
    if (port <= FDB_MAX_PORTS)
        __atomic_fetch_add(&f->learned[port], (uint32_t)delta, __ATOMIC_RELAXED);
}

static bool port_full(const struct fdb *f, unsigned port)
{
    return __atomic_load_n(&f->learned[port], __ATOMIC_RELAXED) >=
           __atomic_load_n(&f->port_max, __ATOMIC_RELAXED);
}

/* Frees the learned entries for key in the bucket other than the one at
 * keep (a racing learner claimed a second slot). */
static void drop_duplicates(struct fdb *f, unsigned b, uint64_t key, unsigned keep)
{
    for (unsigned i = 0; i < FDB_WAYS; i++) {
        unsigned s = b + i;
        uint64_t v = load(&f->slot[s]);
        if (s == keep || !v || word_key(v) != key || word_static(v))
            continue;
        if (s > keep && cas(&f->slot[s], v, 0))
            port_count(f, word_port(v), -1);
    }
}

/* Learning; claim moves a learned entry of another port at once. */
static enum fdb_learn learn(struct fdb *f, uint64_t key, unsigned port, bool claim)
{
    if ((key >> 40) & 1 || key == 0 || port >= FDB_MAX_PORTS)
        return FDB_IGNORED;
    uint64_t want = key << 16 | (port + 1);
    uint32_t clock = now_clock(f);
    unsigned b = bucket(f, key);
    int free_slot = -1;
    for (unsigned i = 0; i < FDB_WAYS; i++) {
        unsigned s = b + i;
        uint64_t v = load(&f->slot[s]);
        if (!v) {
            if (free_slot < 0)
                free_slot = (int)s;
            continue;
        }
        if (word_key(v) != key)
            continue;
        if (v == want) {
            refresh(f, s, clock);
            return FDB_KNOWN;
        }
        /* The address lives on another port: move it only once that entry
         * has aged out (and never a static one). */
        if (word_static(v) || (!claim && !expired(f, s, clock)) || port_full(f, port)) {
            count(&f->st.refused);
            return FDB_REFUSED;
        }
        __atomic_store_n(&f->seen[s], clock, __ATOMIC_RELAXED);
        if (!cas(&f->slot[s], v, want))
            return FDB_REFUSED;   /* lost a race: the next frame tries again */
        port_count(f, word_port(v), -1);
        port_count(f, port, 1);
        count(&f->st.moved);
        return FDB_MOVED;
    }
    if (free_slot < 0) {
        count(&f->st.full);
        return FDB_FULL;
    }
    if (port_full(f, port)) {
        count(&f->st.port_limit);
        return FDB_PORT_LIMIT;
    }
    unsigned s = (unsigned)free_slot;
    __atomic_store_n(&f->seen[s], clock, __ATOMIC_RELAXED);
    if (!cas(&f->slot[s], 0, want))
        return FDB_FULL;          /* lost a race for the slot: tried again later */
    port_count(f, port, 1);
    count(&f->st.added);
    drop_duplicates(f, b, key, s);
    return FDB_ADDED;
}

int fdb_lookup(const struct fdb *f, uint64_t key)
{
    unsigned b = bucket(f, key);
    for (unsigned i = 0; i < FDB_WAYS; i++) {
        uint64_t v = __atomic_load_n(&f->slot[b + i], __ATOMIC_RELAXED);
        if (v && word_key(v) == key)
            return (int)word_port(v);
    }
    return -1;
}

/* One attempt at placing a static entry: 1 placed, 0 raced (try again),
 * -1 impossible. */
static int place_static(struct fdb *f, uint64_t key, unsigned port)
{
    uint64_t want = key << 16 | STATIC_BIT | (port + 1);
    unsigned b = bucket(f, key);
    int free_slot = -1, learned_slot = -1;
    for (unsigned i = 0; i < FDB_WAYS; i++) {
        unsigned s = b + i;
        uint64_t v = load(&f->slot[s]);
        if (v && word_key(v) == key) {
            if (word_static(v))
                return word_port(v) == port ? 1 : -1;
            /* A learned entry for the address (on any port) gives way. */
            if (!cas(&f->slot[s], v, want))
                return 0;
            port_count(f, word_port(v), -1);
            return 1;
        }
        if (!v && free_slot < 0)
            free_slot = (int)s;
        if (v && !word_static(v) && learned_slot < 0)
            learned_slot = (int)s;
    }
    /* A configured address outranks learned ones: with no free slot, a
     * learned entry of the bucket is forgotten (its next frame learns it
     * again if there is room). */
    int s = free_slot >= 0 ? free_slot : learned_slot;
    if (s < 0)
        return -1;
    uint64_t old = load(&f->slot[s]);
    if (free_slot >= 0 ? old != 0 : (!old || word_static(old)))
        return 0;
    if (!cas(&f->slot[s], old, want))
        return 0;
    if (old)
        port_count(f, word_port(old), -1);
    return 1;
}

int fdb_add_static(struct fdb *f, uint64_t key, unsigned port)
{
    if ((key >> 40) & 1 || key == 0 || port >= FDB_MAX_PORTS)
        return -1;
    int r;
    while ((r = place_static(f, key, port)) == 0)
        ;   /* a learner took the slot meanwhile: look again */
    return r > 0 ? 0 : -1;
}

/* Frees every entry of port (with statics or without). */
static void forget(struct fdb *f, unsigned port, bool statics)
{
    for (unsigned s = 0; s < FDB_SLOTS; s++) {
        uint64_t v = load(&f->slot[s]);
        if (!v || word_port(v) != port || (word_static(v) && !statics))
            continue;
        if (cas(&f->slot[s], v, 0) && !word_static(v))
            port_count(f, port, -1);
    }
}

void fdb_forget_learned(struct fdb *f, unsigned port)
{
    forget(f, port, false);
}

void fdb_forget_port(struct fdb *f, unsigned port)
{
    forget(f, port, true);
}

unsigned fdb_age(struct fdb *f, uint32_t now_s)
{
    __atomic_store_n(&f->clock, now_s, __ATOMIC_RELAXED);
    unsigned gone = 0;
    for (unsigned s = 0; s < FDB_SLOTS; s++) {
        uint64_t v = load(&f->slot[s]);
        if (!v || word_static(v) || !expired(f, s, now_s))
            continue;
        if (cas(&f->slot[s], v, 0)) {
            port_count(f, word_port(v), -1);
            gone++;
        }
    }
    if (gone)
        __atomic_fetch_add(&f->st.aged, gone, __ATOMIC_RELAXED);
    return gone;
}

unsigned fdb_list(const struct fdb *f, int port, struct fdb_entry *out, unsigned max)
{
    uint32_t clock = now_clock(f);
    unsigned n = 0;
    for (unsigned s = 0; s < FDB_SLOTS && n < max; s++) {
        uint64_t v = __atomic_load_n(&f->slot[s], __ATOMIC_RELAXED);
        if (!v || (port >= 0 && word_port(v) != (unsigned)port))
            continue;
        struct fdb_entry *e = &out[n++];
        uint64_t k = word_key(v);
        for (int i = 0; i < 6; i++)
            e->mac[i] = (uint8_t)(k >> (40 - 8 * i));
        e->port = word_port(v);
        e->is_static = word_static(v);
        e->age_s = e->is_static ? 0 : clock - __atomic_load_n(&f->seen[s], __ATOMIC_RELAXED);
    }
    return n;
}

void fdb_get_stats(const struct fdb *f, struct fdb_stats *o)
{
    o->added = __atomic_load_n(&f->st.added, __ATOMIC_RELAXED);
    o->moved = __atomic_load_n(&f->st.moved, __ATOMIC_RELAXED);
    o->aged = __atomic_load_n(&f->st.aged, __ATOMIC_RELAXED);
    o->full = __atomic_load_n(&f->st.full, __ATOMIC_RELAXED);
    o->port_limit = __atomic_load_n(&f->st.port_limit, __ATOMIC_RELAXED);
    o->refused = __atomic_load_n(&f->st.refused, __ATOMIC_RELAXED);
}

enum fdb_learn fdb_learn(struct fdb *f, uint64_t key, unsigned port)
{
    return learn(f, key, port, false);
}

enum fdb_learn fdb_claim(struct fdb *f, uint64_t key, unsigned port)
{
    return learn(f, key, port, true);
}
