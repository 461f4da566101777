/*
 * json.h - a small JSON reader (for lwvhostd's "stats json") and a string
 * escaper for the benchmark's own JSON output.
 *
 * The parser builds a tree of malloc'ed nodes; numbers keep an exact
 * uint64 when they are non-negative integers (packet counters).  Depth is
 * limited; strings keep only the escapes \" \\ \/ \b \f \n \r \t (\uXXXX
 * becomes '?').
 */
#ifndef LWV_BENCH_JSON_H
#define LWV_BENCH_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum json_type { JSON_NULL, JSON_BOOL, JSON_NUM, JSON_STR, JSON_ARR, JSON_OBJ };

struct json {
    enum json_type type;
    char *key;              /* member name inside an object, else NULL */
    char *str;              /* JSON_STR */
    double num;             /* JSON_NUM (and JSON_BOOL: 0/1) */
    int is_u64;             /* JSON_NUM that is a non-negative integer */
    uint64_t u64;
    struct json *child;     /* first element / member */
    struct json *next;      /* next sibling */
};

/* NULL on error (message in err). */
struct json *json_parse(const char *text, char *err, size_t errlen);
void json_free(struct json *j);

const struct json *json_get(const struct json *obj, const char *key);
const struct json *json_at(const struct json *arr, unsigned i);
unsigned json_len(const struct json *arr);
/* 1 and *out set if v is a number (u64: a non-negative integer). */
int json_u64(const struct json *v, uint64_t *out);
int json_num(const struct json *v, double *out);
const char *json_str(const struct json *v);

/* Writes s as a JSON string literal, quotes included. */
void json_put_str(FILE *f, const char *s);

#endif
