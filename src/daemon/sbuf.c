/*
 * sbuf.c - see sbuf.h.
 */
#include "sbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

/* Makes room for need more bytes and a NUL; false if memory ran out. */
static bool grow(struct sbuf *b, size_t need)
{
    if (b->oom)
        return false;
    if (b->cap - b->len > need)
        return true;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - b->len <= need)
        cap *= 2;
    char *np = realloc(b->p, cap);
    if (!np) {
        b->oom = true;
        return false;
    }
    b->p = np;
    b->cap = cap;
    return true;
}

void sb_printf(struct sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !grow(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void sb_putc(struct sbuf *b, char c)
{
    if (!grow(b, 1))
        return;
    b->p[b->len++] = c;
    b->p[b->len] = 0;
}

char *sb_take(struct sbuf *b)
{
    if (b->oom) {
        free(b->p);
        b->p = NULL;
        return NULL;
    }
    if (!b->p && !grow(b, 0))
        return NULL;
    if (b->len == 0)
        b->p[0] = 0;
    char *p = b->p;
    b->p = NULL;
    b->len = b->cap = 0;
    return p;
}
