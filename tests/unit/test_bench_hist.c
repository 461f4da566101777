/*
 * test_bench_hist.c - unit tests of the benchmark's log-bucketed histogram
 * (src/bench/hist.c, compiled in here: the test binaries do not link the
 * benchmark's objects).
 */
#include "check.h"
#include "hist.c"

#include <stdlib.h>

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The sample of rank ceil(q * n) of a sorted array (1-based rank). */
static uint64_t exact_quantile(const uint64_t *s, size_t n, double q)
{
    double r = q * (double)n;
    size_t rank = (size_t)r;
    if ((double)rank < r)
        rank++;
    if (rank == 0)
        rank = 1;
    return s[rank - 1];
}

static uint64_t rng_state = 88172645463325252ull;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void test_buckets(void)
{
    /* exact below 2^S */
    for (uint64_t v = 0; v < HIST_SUB; v++) {
        CHECK(hist_index(v) == v, "index(%llu) = %u", (unsigned long long)v, hist_index(v));
        CHECK(hist_bucket_lo((unsigned)v) == v && hist_bucket_hi((unsigned)v) == v,
              "bucket %llu not exact", (unsigned long long)v);
    }
    /* every bucket covers [lo, hi], buckets are contiguous and ordered */
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        uint64_t lo = hist_bucket_lo(i), hi = hist_bucket_hi(i);
        CHECK(lo <= hi, "bucket %u: lo %llu > hi %llu", i, (unsigned long long)lo,
              (unsigned long long)hi);
        CHECK(hist_index(lo) == i, "index(lo of %u) = %u", i, hist_index(lo));
        if (i < HIST_BUCKETS - 1) {
            CHECK(hist_index(hi) == i, "index(hi of %u) = %u", i, hist_index(hi));
            CHECK(hist_bucket_lo(i + 1) == hi + 1, "gap after bucket %u", i);
        }
        /* width within 1/2^S of the bucket's values */
        if (i >= HIST_SUB)
            CHECK((hi - lo + 1) * HIST_SUB <= lo, "bucket %u too wide", i);
    }
    /* huge values go to the last bucket */
    CHECK(hist_index(UINT64_MAX) == HIST_BUCKETS - 1, "UINT64_MAX index %u",
          hist_index(UINT64_MAX));
    CHECK(hist_index(1ull << HIST_MAX_EXP) == HIST_BUCKETS - 1, "2^max index");
    CHECK(hist_index((1ull << HIST_MAX_EXP) - 1) == HIST_BUCKETS - 1, "2^max-1 index");
}

static void test_empty_and_small(void)
{
    struct hist h;
    hist_reset(&h);
    CHECK(hist_quantile(&h, 0.5) == 0, "empty quantile");
    CHECK(hist_mean(&h) == 0.0, "empty mean");

    hist_add(&h, 7);
    CHECK(h.count == 1 && h.min == 7 && h.max == 7, "one sample");
    CHECK(hist_quantile(&h, 0.5) == 7 && hist_quantile(&h, 0.999) == 7, "one-sample quantiles");

    hist_reset(&h);
    for (uint64_t v = 1; v <= 10; v++)
        hist_add(&h, v);
    CHECK(hist_quantile(&h, 0.5) == 5, "p50 of 1..10 = %llu",
          (unsigned long long)hist_quantile(&h, 0.5));
    CHECK(hist_quantile(&h, 0.99) == 10, "p99 of 1..10");
    CHECK(hist_quantile(&h, 0) == 1 && hist_quantile(&h, 1) == 10, "p0/p100");
    CHECK(hist_mean(&h) == 5.5, "mean of 1..10");

    /* values clamp to [min, max] even inside a wide bucket */
    hist_reset(&h);
    hist_add_n(&h, 1000003, 5);
    CHECK(hist_quantile(&h, 0.5) == 1000003, "clamped p50 %llu",
          (unsigned long long)hist_quantile(&h, 0.5));
    CHECK(h.count == 5, "add_n count");
}

static void test_random_accuracy(void)
{
    enum { N = 200000 };
    static uint64_t s[N];
    struct hist h;
    hist_reset(&h);
    for (size_t i = 0; i < N; i++) {
        /* log-uniform over about 1 ns .. 17 s, like latencies with a tail */
        unsigned e = (unsigned)(rng() % 34);
        uint64_t v = (1ull << e) + rng() % (1ull << e);
        s[i] = v;
        hist_add(&h, v);
    }
    qsort(s, N, sizeof s[0], cmp_u64);
    CHECK(h.min == s[0] && h.max == s[N - 1], "min/max exact");
    const double qs[] = { 0.01, 0.1, 0.5, 0.9, 0.99, 0.999, 0.9999 };
    for (size_t k = 0; k < sizeof qs / sizeof qs[0]; k++) {
        uint64_t want = exact_quantile(s, N, qs[k]);
        uint64_t got = hist_quantile(&h, qs[k]);
        double err = want ? ((double)got - (double)want) / (double)want : 0;
        if (err < 0)
            err = -err;
        CHECK(err <= 1.0 / HIST_SUB, "q=%g: got %llu want %llu (err %.4f)", qs[k],
              (unsigned long long)got, (unsigned long long)want, err);
    }
    /* quantiles are monotonic */
    uint64_t prev = 0;
    for (double q = 0; q <= 1.0; q += 0.001) {
        uint64_t v = hist_quantile(&h, q);
        CHECK(v >= prev, "quantile not monotonic at q=%g", q);
        prev = v;
    }
}

static void test_merge(void)
{
    static struct hist a, b, all;
    hist_reset(&a);
    hist_reset(&b);
    hist_reset(&all);
    for (unsigned i = 0; i < 10000; i++) {
        uint64_t v = rng() % 1000000;
        hist_add(i % 3 ? &a : &b, v);
        hist_add(&all, v);
    }
    struct hist m = a;
    hist_merge(&m, &b);
    CHECK(m.count == all.count && m.min == all.min && m.max == all.max, "merge totals");
    CHECK(memcmp(m.b, all.b, sizeof m.b) == 0, "merge buckets");
    CHECK(hist_quantile(&m, 0.99) == hist_quantile(&all, 0.99), "merge p99");
    /* merging an empty histogram changes nothing; into an empty one copies */
    struct hist e;
    hist_reset(&e);
    hist_merge(&m, &e);
    CHECK(m.count == all.count && m.min == all.min, "merge empty");
    hist_merge(&e, &all);
    CHECK(e.count == all.count && e.min == all.min && e.max == all.max, "merge into empty");
}

int main(void)
{
    test_buckets();
    test_empty_and_small();
    test_random_accuracy();
    test_merge();
    return check_done("test_bench_hist");
}
