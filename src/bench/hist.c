/*
 * hist.c - see hist.h.
 *
 * Index of v >= 2^S (S = HIST_SUB_BITS): with e the position of its top bit,
 * shift = e - S and m = v >> shift (so 2^S <= m < 2^(S+1)), the index is
 * shift * 2^S + m.  For shift 0 that is v itself, which joins it seamlessly
 * to the exact buckets below 2^S.
 */
#include "hist.h"

#include <string.h>

void hist_reset(struct hist *h)
{
    memset(h, 0, sizeof *h);
}

unsigned hist_index(uint64_t v)
{
    if (v < HIST_SUB)
        return (unsigned)v;
    if (v >> HIST_MAX_EXP)
        return HIST_BUCKETS - 1;
    unsigned e = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = e - HIST_SUB_BITS;
    return shift * HIST_SUB + (unsigned)(v >> shift);
}

uint64_t hist_bucket_lo(unsigned i)
{
    if (i < HIST_SUB)
        return i;
    unsigned shift = i / HIST_SUB - 1;
    uint64_t m = i % HIST_SUB + HIST_SUB;
    return m << shift;
}

uint64_t hist_bucket_hi(unsigned i)
{
    if (i < HIST_SUB)
        return i;
    unsigned shift = i / HIST_SUB - 1;
    uint64_t m = i % HIST_SUB + HIST_SUB;
    return ((m + 1) << shift) - 1;
}

void hist_add_n(struct hist *h, uint64_t v, uint64_t n)
{
    if (!n)
        return;
    if (!h->count || v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
    h->count += n;
    h->sum += (double)v * (double)n;
    h->b[hist_index(v)] += n;
}

void hist_add(struct hist *h, uint64_t v)
{
    hist_add_n(h, v, 1);
}

void hist_merge(struct hist *dst, const struct hist *src)
{
    if (!src->count)
        return;
    if (!dst->count || src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
    dst->count += src->count;
    dst->sum += src->sum;
    for (unsigned i = 0; i < HIST_BUCKETS; i++)
        dst->b[i] += src->b[i];
}

uint64_t hist_quantile(const struct hist *h, double q)
{
    if (!h->count)
        return 0;
    if (q <= 0)
        return h->min;
    if (q >= 1)
        return h->max;
    /* rank of the wanted sample, 1-based: ceil(q * count) */
    double r = q * (double)h->count;
    uint64_t rank = (uint64_t)r;
    if ((double)rank < r)
        rank++;
    if (rank == 0)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= rank) {
            uint64_t lo = hist_bucket_lo(i), hi = hist_bucket_hi(i);
            uint64_t v = lo + (hi - lo) / 2;
            if (v < h->min)
                v = h->min;
            if (v > h->max)
                v = h->max;
            return v;
        }
    }
    return h->max;
}

double hist_mean(const struct hist *h)
{
    return h->count ? h->sum / (double)h->count : 0.0;
}
