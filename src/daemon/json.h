/*
 * json.h - a small JSON writer for the control socket's views.
 *
 * Owns: commas, nesting, quoting and escaping: a view says which members
 * and values it has, in order, and gets compact JSON ({"a":1,"b":[2,3]}).
 * Must not: know what the members mean, or read JSON.
 */
#ifndef LWV_JSON_H
#define LWV_JSON_H

#include <stdbool.h>
#include <stdint.h>

#include "sbuf.h"

#define JSON_DEPTH 16

struct jw {
    struct sbuf *b;
    unsigned depth;
    bool has_item[JSON_DEPTH];   /* a comma goes before the next item */
};

void jw_init(struct jw *j, struct sbuf *b);
/* key: the member's name inside an object, NULL inside an array or at the
 * top. */
void jw_obj(struct jw *j, const char *key);
void jw_obj_end(struct jw *j);
void jw_arr(struct jw *j, const char *key);
void jw_arr_end(struct jw *j);
void jw_str(struct jw *j, const char *key, const char *v);   /* NULL: null */
void jw_u64(struct jw *j, const char *key, uint64_t v);
void jw_int(struct jw *j, const char *key, long long v);
void jw_bool(struct jw *j, const char *key, bool v);
void jw_null(struct jw *j, const char *key);
/* A number with digits after the point (a non-finite one is null). */
void jw_double(struct jw *j, const char *key, double v, int digits);

#endif
