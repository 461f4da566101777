/*
 * test_fdb.c - the forwarding database alone (fdb.c): static entries,
 * learning without eviction, the per-port limit, aging, moves of aged
 * entries, a full bucket, and two threads learning the same addresses at
 * once (one entry each, counts exact).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fdb.h"

static struct fdb f;

static uint64_t mac(unsigned port, unsigned i)
{
    return 0x020000000000ull | (uint64_t)port << 24 | i;
}

static unsigned entries_of(int port)
{
    static struct fdb_entry e[FDB_SLOTS];
    return fdb_list(&f, port, e, FDB_SLOTS);
}

static void test_static(void)
{
    fdb_init(&f);
    uint64_t a = mac(0, 1);
    CHECK(fdb_add_static(&f, a, 0) == 0 && fdb_lookup(&f, a) == 0, "static entry added");
    CHECK(fdb_add_static(&f, a, 0) == 0, "adding it again is harmless");
    CHECK(fdb_add_static(&f, a, 3) < 0, "the same address static on another port: refused");
    CHECK(fdb_add_static(&f, 0x010000000001ull, 0) < 0, "a group address cannot be static");
    CHECK(fdb_learn(&f, a, 5) == FDB_REFUSED && fdb_lookup(&f, a) == 0,
          "learning from another port does not move it");
    fdb_forget_learned(&f, 0);
    CHECK(fdb_lookup(&f, a) == 0, "it survives its port's frontend going away");
    CHECK(fdb_age(&f, 1000000) == 0 && fdb_lookup(&f, a) == 0, "it never ages");
    fdb_forget_port(&f, 0);
    CHECK(fdb_lookup(&f, a) < 0, "it goes with its port");
    /* A learned entry gives way to a configured one. */
    uint64_t b = mac(0, 2);
    CHECK(fdb_learn(&f, b, 4) == FDB_ADDED && fdb_add_static(&f, b, 1) == 0 &&
          fdb_lookup(&f, b) == 1 && f.learned[4] == 0, "configuration outranks learning");
}

static void test_learning(void)
{
    fdb_init(&f);
    fdb_configure(&f, 300, 100);
    fdb_age(&f, 1000);
    uint64_t v = mac(1, 7);
    CHECK(fdb_learn(&f, v, 1) == FDB_ADDED && fdb_learn(&f, v, 1) == FDB_KNOWN, "learn, refresh");
    CHECK(fdb_learn(&f, v, 2) == FDB_REFUSED && fdb_lookup(&f, v) == 1,
          "a live entry is not moved by another port");
    CHECK(fdb_learn(&f, 0xffffffffffffull, 1) == FDB_IGNORED && fdb_learn(&f, 0, 1) == FDB_IGNORED,
          "broadcast and zero are never learned");
    /* The flood: port 9 sends from 5000 addresses; port 1's entries stay. */
    for (unsigned i = 0; i < 50; i++)
        fdb_learn(&f, mac(1, 100 + i), 1);
    unsigned limited = 0;
    for (unsigned i = 0; i < 5000; i++)
        limited += fdb_learn(&f, mac(9, i), 9) == FDB_PORT_LIMIT;
    bool kept = fdb_lookup(&f, v) == 1;
    for (unsigned i = 0; i < 50; i++)
        kept &= fdb_lookup(&f, mac(1, 100 + i)) == 1;
    CHECK(f.learned[9] == 100 && entries_of(9) == 100 && limited == 4900,
          "the flooder holds its limit of 100 (%u, %u refused)", f.learned[9], limited);
    CHECK(kept && f.learned[1] == 51, "no entry of port 1 was evicted");
    /* Aging: 300 s without a frame. */
    fdb_learn(&f, mac(1, 100), 1);    /* refreshed at 1000 */
    CHECK(fdb_age(&f, 1300) == 0, "nothing is older than 300 s yet");
    fdb_age(&f, 1250);
    fdb_learn(&f, mac(1, 101), 1);    /* refreshed at 1250 */
    unsigned gone = fdb_age(&f, 1301);
    CHECK(gone == 150 && fdb_lookup(&f, mac(1, 101)) == 1 && f.learned[1] == 1 &&
          f.learned[9] == 0, "aged: all but the one refreshed later (%u gone)", gone);
    /* An aged entry may move; then the old port's count drops. */
    fdb_learn(&f, v, 1);
    fdb_age(&f, 1602);                /* v, learned at 1301, is past its age */
    fdb_learn(&f, mac(2, 1), 2);
    fdb_age(&f, 1603);
    CHECK(fdb_lookup(&f, v) < 0, "aged out");
    fdb_learn(&f, v, 1);
    f.clock = 2000;                   /* older than the age, not yet swept */
    CHECK(fdb_learn(&f, v, 2) == FDB_MOVED && fdb_lookup(&f, v) == 2 && f.learned[1] == 0,
          "an entry past its age moves to the port that now sends from it");
}

static void test_full_bucket(void)
{
    fdb_init(&f);
    fdb_configure(&f, 300, FDB_SLOTS);
    /* Fill the table from many ports: learning stops, nothing is evicted. */
    unsigned added = 0, full = 0;
    for (unsigned i = 0; i < 4 * FDB_SLOTS; i++) {
        enum fdb_learn r = fdb_learn(&f, mac(i % 64, i), i % 64);
        added += r == FDB_ADDED;
        full += r == FDB_FULL;
    }
    unsigned total = 0;
    for (unsigned p = 0; p < 64; p++)
        total += f.learned[p];
    struct fdb_stats st;
    fdb_get_stats(&f, &st);
    CHECK(added == total && total == entries_of(-1) && full > 0 && st.full == full,
          "full buckets refuse (%u refused, %u held of %u slots)", full, total, FDB_SLOTS);
    /* Whatever was learned first is still there. */
    bool first = true;
    for (unsigned i = 0; i < 64; i++)
        first &= fdb_lookup(&f, mac(i % 64, i)) == (int)(i % 64);
    CHECK(first, "the first addresses learned were never evicted");
}

struct racer {
    unsigned from;
    unsigned n;
};

static void *race(void *arg)
{
    const struct racer *r = arg;
    for (unsigned round = 0; round < 20; round++)
        for (unsigned i = 0; i < r->n; i++)
            fdb_learn(&f, mac(3, r->from + i), 3);
    return NULL;
}

static void test_races(void)
{
    fdb_init(&f);
    fdb_configure(&f, 300, FDB_SLOTS);
    struct racer r = { 0, 2000 };
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, race, &r);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    static struct fdb_entry e[FDB_SLOTS];
    unsigned n = fdb_list(&f, 3, e, FDB_SLOTS);
    bool once = true;
    for (unsigned i = 0; i < n; i++)
        for (unsigned j = i + 1; j < n; j++)
            once &= memcmp(e[i].mac, e[j].mac, 6) != 0;
    CHECK(once && n == f.learned[3] && n <= 2000 && n > 1500,
          "two threads learning the same 2000 addresses: each once, count exact (%u, %u)", n,
          f.learned[3]);
}

/* A migrated guest's announcement (SEND_RARP) moves its MAC at once; the
 * source's port then cannot take it back while the new entry is fresh;
 * a static entry is never claimed. */
static void test_claim(void)
{
    fdb_init(&f);
    fdb_configure(&f, 300, 100);
    uint64_t a = mac(0, 7), s = mac(0, 8);
    CHECK(fdb_learn(&f, a, 1) == FDB_ADDED && fdb_lookup(&f, a) == 1, "learned on port 1");
    CHECK(fdb_learn(&f, a, 2) == FDB_REFUSED, "a frame from port 2 does not move a live entry");
    CHECK(fdb_claim(&f, a, 2) == FDB_MOVED && fdb_lookup(&f, a) == 2,
          "a claim from port 2 moves it at once");
    CHECK(fdb_learn(&f, a, 1) == FDB_REFUSED && fdb_lookup(&f, a) == 2,
          "the old port's frames do not take it back");
    CHECK(fdb_claim(&f, a, 2) == FDB_KNOWN, "claiming it again on port 2: known");
    CHECK(fdb_add_static(&f, s, 3) == 0 && fdb_claim(&f, s, 4) == FDB_REFUSED &&
              fdb_lookup(&f, s) == 3,
          "a static entry is never claimed");
}

int main(void)
{
    test_static();
    test_claim();
    test_learning();
    test_full_bucket();
    test_races();
    return check_done("test_fdb");
}
