/*
 * fuzz_common.h - small helpers shared by the libFuzzer targets in fuzz/:
 * a cursor over the fuzz input that reads zeros once the input runs out,
 * and the daemon's log
 * level (silent unless LWV_FUZZ_LOG names a level; fuzz/run.sh sets
 * "debug" and sends the daemon's stderr to /dev/null, so every log line
 * is still formatted).
 */
#ifndef LWV_FUZZ_COMMON_H
#define LWV_FUZZ_COMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "procfd.h"

#define FUZZ_UNUSED __attribute__((unused))

struct cursor {
    const uint8_t *p;
    size_t n;
};

static FUZZ_UNUSED int cur_left(const struct cursor *c)
{
    return c->n > 0;
}

static FUZZ_UNUSED uint8_t cur_u8(struct cursor *c)
{
    if (!c->n)
        return 0;
    c->n--;
    return *c->p++;
}

static FUZZ_UNUSED uint16_t cur_u16(struct cursor *c)
{
    uint16_t lo = cur_u8(c);
    return (uint16_t)(lo | cur_u8(c) << 8);
}

static FUZZ_UNUSED uint32_t cur_u32(struct cursor *c)
{
    uint32_t lo = cur_u16(c);
    return lo | (uint32_t)cur_u16(c) << 16;
}

/* Copies up to n bytes into dst, zero-filling what the input lacks;
 * returns how many came from the input. */
static FUZZ_UNUSED size_t cur_bytes(struct cursor *c, void *dst, size_t n)
{
    size_t k = n < c->n ? n : c->n;
    if (k)
        memcpy(dst, c->p, k);
    if (n > k)
        memset((uint8_t *)dst + k, 0, n - k);
    c->p += k;
    c->n -= k;
    return k;
}

static FUZZ_UNUSED void fuzz_log_init(void)
{
    const char *l = getenv("LWV_FUZZ_LOG");
    int v = l ? log_level_parse(l) : -1;
    log_set_level(v);   /* -1: below LOG_ERROR, nothing is printed */
}

#endif
