/*
 * json.c - see json.h.
 */
#include "json.h"

#include <math.h>

void jw_init(struct jw *j, struct sbuf *b)
{
    j->b = b;
    j->depth = 0;
    j->has_item[0] = false;
}

static void put_string(struct sbuf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    sb_putc(b, '"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            sb_putc(b, '\\');
            sb_putc(b, (char)c);
        } else if (c < 0x20) {
            sb_printf(b, "\\u00%c%c", hex[c >> 4], hex[c & 15]);
        } else {
            sb_putc(b, (char)c);
        }
    }
    sb_putc(b, '"');
}

/* The comma and "key": before an item. */
static void item(struct jw *j, const char *key)
{
    if (j->has_item[j->depth])
        sb_putc(j->b, ',');
    j->has_item[j->depth] = true;
    if (key) {
        put_string(j->b, key);
        sb_putc(j->b, ':');
    }
}

static void open_container(struct jw *j, const char *key, char c)
{
    item(j, key);
    sb_putc(j->b, c);
    if (j->depth + 1 < JSON_DEPTH)
        j->depth++;
    j->has_item[j->depth] = false;
}

static void close_container(struct jw *j, char c)
{
    sb_putc(j->b, c);
    if (j->depth)
        j->depth--;
}

void jw_obj(struct jw *j, const char *key) { open_container(j, key, '{'); }
void jw_obj_end(struct jw *j) { close_container(j, '}'); }
void jw_arr(struct jw *j, const char *key) { open_container(j, key, '['); }
void jw_arr_end(struct jw *j) { close_container(j, ']'); }

void jw_str(struct jw *j, const char *key, const char *v)
{
    item(j, key);
    if (v)
        put_string(j->b, v);
    else
        sb_printf(j->b, "null");
}

void jw_u64(struct jw *j, const char *key, uint64_t v)
{
    item(j, key);
    sb_printf(j->b, "%llu", (unsigned long long)v);
}

void jw_int(struct jw *j, const char *key, long long v)
{
    item(j, key);
    sb_printf(j->b, "%lld", v);
}

void jw_bool(struct jw *j, const char *key, bool v)
{
    item(j, key);
    sb_printf(j->b, v ? "true" : "false");
}

void jw_null(struct jw *j, const char *key)
{
    item(j, key);
    sb_printf(j->b, "null");
}

void jw_double(struct jw *j, const char *key, double v, int digits)
{
    item(j, key);
    if (isfinite(v))
        sb_printf(j->b, "%.*f", digits, v);
    else
        sb_printf(j->b, "null");
}
