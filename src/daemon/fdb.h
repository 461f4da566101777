/*
 * fdb.h - the switch's forwarding database: which port each MAC lives on.
 *
 * Owns: the table of static entries (a port's configured mac=) and learned
 * ones, learning from source addresses, lookup, aging, the per-port limit
 * on learned addresses, and the counters of what it refused.  Its rules are
 * those of a switch that resists CAM-table floods:
 *  - a static entry is never aged, never moved by learning, and stays when
 *    its port's frontend goes away;
 *  - learning never evicts a live entry of another port: a full bucket or a
 *    port at its limit simply stops learning (counted), and an address that
 *    lives on another port moves only once that entry has aged out;
 *  - learned entries not refreshed for age_s seconds are forgotten.
 * The hash is keyed with a random seed, so a guest cannot aim its addresses
 * at one bucket.
 * Must not: know about frames, rings or locks.  Lookups and learning are
 * lock-free (relaxed atomics on 64-bit words) from any worker; aging runs on
 * the control thread.
 */
#ifndef LWV_FDB_H
#define LWV_FDB_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define FDB_WAYS 8u                 /* entries per bucket: one cache line */
#define FDB_SLOTS 8192u             /* power of two, a multiple of FDB_WAYS */
#define FDB_MAX_PORTS 4095u         /* port index + 1 fits in 12 bits */
#define FDB_DEFAULT_AGE_S 300u      /* as Linux bridges and Open vSwitch */
#define FDB_DEFAULT_PORT_MAX 1024u

enum fdb_learn {
    FDB_KNOWN,           /* already there (refreshed) */
    FDB_ADDED,
    FDB_MOVED,           /* an aged entry of another port taken over (or claimed) */
    FDB_FULL,            /* its bucket has no free slot */
    FDB_PORT_LIMIT,      /* the port has learned its maximum */
    FDB_REFUSED,         /* static, or live on another port */
    FDB_IGNORED,         /* a group or all-zero address */
};

struct fdb_stats {
    uint64_t added, moved, aged, full, port_limit, refused;
};

struct fdb {
    uint64_t seed;
    uint32_t age_s;
    uint32_t port_max;
    uint32_t clock;                       /* seconds, advanced by fdb_age (atomic) */
    uint32_t learned[FDB_MAX_PORTS + 1];  /* learned entries per port (atomic) */
    struct fdb_stats st;                  /* atomic counters */
    /* Each word: MAC << 16 | STATIC bit | port index + 1; 0 is free. */
    _Alignas(64) uint64_t slot[FDB_SLOTS];
    uint32_t seen[FDB_SLOTS];             /* clock when the entry last learned */
};

/* An entry as fdb_list reports it. */
struct fdb_entry {
    uint8_t mac[6];
    unsigned port;
    bool is_static;
    uint32_t age_s;      /* seconds since the last frame from it (0 for static) */
};

/* Empties the table; a fresh random seed; default age and limit. */
void fdb_init(struct fdb *f);
void fdb_configure(struct fdb *f, uint32_t age_s, uint32_t port_max);

/* A MAC as a 48-bit number, first byte most significant (bit 40 is the
 * group bit).  Inline: the switch takes two per frame. */
static inline uint64_t fdb_key(const uint8_t mac[6])
{
    uint32_t hi;
    uint16_t lo;
    memcpy(&hi, mac, 4);
    memcpy(&lo, mac + 4, 2);
    return (uint64_t)__builtin_bswap32(hi) << 16 | __builtin_bswap16(lo);
}

enum fdb_learn fdb_learn(struct fdb *f, uint64_t key, unsigned port);
/* As fdb_learn, but a learned entry of another port moves at once, however
 * fresh (never a static one): the address has moved for certain, as a
 * migrated guest's announcement (SEND_RARP) says. */
enum fdb_learn fdb_claim(struct fdb *f, uint64_t key, unsigned port);
/* Port index of key, or -1. */
int fdb_lookup(const struct fdb *f, uint64_t key);
/* Adds a static entry; -1 if the address is a group address, is static on
 * another port already, or its bucket is full of static entries. */
int fdb_add_static(struct fdb *f, uint64_t key, unsigned port);
/* Forgets what a port learned (its frontend went away); statics stay. */
void fdb_forget_learned(struct fdb *f, unsigned port);
/* Forgets everything of a port, statics too (the port is deleted). */
void fdb_forget_port(struct fdb *f, unsigned port);
/* Advances the clock to now_s and forgets learned entries older than the
 * age; returns how many went.  Control thread, about once a second. */
unsigned fdb_age(struct fdb *f, uint32_t now_s);
/* Lists up to max entries (of one port, or of all when port < 0). */
unsigned fdb_list(const struct fdb *f, int port, struct fdb_entry *out, unsigned max);
void fdb_get_stats(const struct fdb *f, struct fdb_stats *out);

#endif
