/*
 * hist.h - a log-bucketed histogram of non-negative integer samples (the
 * benchmark records latencies in nanoseconds).
 *
 * Values below 2^HIST_SUB_BITS are counted exactly; above, every power of
 * two is split into 2^HIST_SUB_BITS equal sub-buckets, so a quantile is
 * within 1/2^HIST_SUB_BITS (about 3 %) of the true sample value.  Values
 * at or above 2^HIST_MAX_EXP land in the last bucket (max stays exact).
 * Fixed size, no allocation: add, merge and reset are O(1) or O(buckets).
 */
#ifndef LWV_BENCH_HIST_H
#define LWV_BENCH_HIST_H

#include <stdint.h>

#define HIST_SUB_BITS  5
#define HIST_SUB       (1u << HIST_SUB_BITS)
#define HIST_MAX_EXP   44                    /* 2^44 ns: about 4.9 hours */
#define HIST_BUCKETS   ((HIST_MAX_EXP - HIST_SUB_BITS + 1) * HIST_SUB)

struct hist {
    uint64_t count;
    uint64_t min, max;
    double sum;
    uint64_t b[HIST_BUCKETS];
};

void hist_reset(struct hist *h);
void hist_add(struct hist *h, uint64_t v);
void hist_add_n(struct hist *h, uint64_t v, uint64_t n);
void hist_merge(struct hist *dst, const struct hist *src);
/* Bucket index of v, and the smallest and largest value of a bucket. */
unsigned hist_index(uint64_t v);
uint64_t hist_bucket_lo(unsigned i);
uint64_t hist_bucket_hi(unsigned i);
/* Value at quantile q (0..1): the middle of the bucket holding the sample of
 * rank ceil(q * count), clamped to [min, max].  0 when empty. */
uint64_t hist_quantile(const struct hist *h, double q);
double hist_mean(const struct hist *h);

#endif
