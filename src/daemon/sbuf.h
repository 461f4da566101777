/*
 * sbuf.h - a growable text buffer for the control socket's answers.
 *
 * Owns: appending formatted text; remembering that memory ran out (the
 * answer is then replaced by an error, never half sent).
 * Must not: know what the text says (views, JSON) or where it goes.
 */
#ifndef LWV_SBUF_H
#define LWV_SBUF_H

#include <stdbool.h>
#include <stddef.h>

struct sbuf {
    char *p;          /* NUL-terminated once anything was written */
    size_t len, cap;
    bool oom;
};

void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_putc(struct sbuf *b, char c);
/* Hands the text over (malloc'd): the caller frees it.  NULL if memory ran
 * out on the way. */
char *sb_take(struct sbuf *b);

#endif
