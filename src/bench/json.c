/*
 * json.c - see json.h.  Recursive descent over a NUL-terminated text.
 */
#include "json.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define JSON_MAX_DEPTH 32

struct jp {
    const char *s;
    const char *start;
    char *err;
    size_t errlen;
    int failed;
};

static void jp_fail(struct jp *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void jp_fail(struct jp *p, const char *fmt, ...)
{
    if (p->failed)
        return;
    p->failed = 1;
    if (!p->err || !p->errlen)
        return;
    char msg[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(p->err, p->errlen, "JSON offset %ld: %s", (long)(p->s - p->start), msg);
}

static void skip_ws(struct jp *p)
{
    while (*p->s == ' ' || *p->s == '\t' || *p->s == '\n' || *p->s == '\r')
        p->s++;
}

static struct json *node(struct jp *p, enum json_type t)
{
    struct json *j = calloc(1, sizeof *j);
    if (!j)
        jp_fail(p, "out of memory");
    else
        j->type = t;
    return j;
}

static char *parse_string_raw(struct jp *p)
{
    if (*p->s != '"') {
        jp_fail(p, "string expected");
        return NULL;
    }
    p->s++;
    size_t cap = 16, len = 0;
    char *out = malloc(cap);
    if (!out) {
        jp_fail(p, "out of memory");
        return NULL;
    }
    for (;;) {
        char c = *p->s;
        if (c == '\0') {
            jp_fail(p, "unterminated string");
            free(out);
            return NULL;
        }
        p->s++;
        if (c == '"')
            break;
        if ((unsigned char)c < 0x20) {
            jp_fail(p, "control character in string");
            free(out);
            return NULL;
        }
        if (c == '\\') {
            char e = *p->s++;
            switch (e) {
            case '"': c = '"'; break;
            case '\\': c = '\\'; break;
            case '/': c = '/'; break;
            case 'b': c = '\b'; break;
            case 'f': c = '\f'; break;
            case 'n': c = '\n'; break;
            case 'r': c = '\r'; break;
            case 't': c = '\t'; break;
            case 'u':
                for (int k = 0; k < 4; k++) {
                    if (!isxdigit((unsigned char)*p->s)) {
                        jp_fail(p, "bad \\u escape");
                        free(out);
                        return NULL;
                    }
                    p->s++;
                }
                c = '?';
                break;
            default:
                jp_fail(p, "bad escape");
                free(out);
                return NULL;
            }
        }
        if (len + 2 > cap) {
            cap *= 2;
            char *n = realloc(out, cap);
            if (!n) {
                jp_fail(p, "out of memory");
                free(out);
                return NULL;
            }
            out = n;
        }
        out[len++] = c;
    }
    out[len] = '\0';
    return out;
}

static struct json *parse_value(struct jp *p, int depth);

/* One or more digits; -1 (the error set) if there is none. */
static int take_digits(struct jp *p)
{
    if (!isdigit((unsigned char)*p->s)) {
        jp_fail(p, "bad number");
        return -1;
    }
    while (isdigit((unsigned char)*p->s))
        p->s++;
    return 0;
}

static struct json *parse_number(struct jp *p)
{
    const char *b = p->s;
    int is_int = 1;
    if (*p->s == '-') {
        is_int = 0;
        p->s++;
    }
    if (take_digits(p) < 0)
        return NULL;
    if (*p->s == '.') {
        is_int = 0;
        p->s++;
        if (take_digits(p) < 0)
            return NULL;
    }
    if (*p->s == 'e' || *p->s == 'E') {
        is_int = 0;
        p->s++;
        if (*p->s == '+' || *p->s == '-')
            p->s++;
        if (take_digits(p) < 0)
            return NULL;
    }
    struct json *j = node(p, JSON_NUM);
    if (!j)
        return NULL;
    char tmp[64];
    size_t n = (size_t)(p->s - b);
    if (n >= sizeof tmp) {
        /* absurdly long: parse as double only */
        j->num = strtod(b, NULL);
        return j;
    }
    memcpy(tmp, b, n);
    tmp[n] = '\0';
    j->num = strtod(tmp, NULL);
    if (is_int) {
        errno = 0;
        unsigned long long u = strtoull(tmp, NULL, 10);
        if (errno == 0) {
            j->is_u64 = 1;
            j->u64 = u;
        }
    }
    return j;
}

static struct json *parse_container(struct jp *p, int depth, int is_obj)
{
    struct json *j = node(p, is_obj ? JSON_OBJ : JSON_ARR);
    if (!j)
        return NULL;
    p->s++;   /* { or [ */
    skip_ws(p);
    char close = is_obj ? '}' : ']';
    if (*p->s == close) {
        p->s++;
        return j;
    }
    struct json **tail = &j->child;
    for (;;) {
        skip_ws(p);
        char *key = NULL;
        if (is_obj) {
            key = parse_string_raw(p);
            if (!key)
                break;
            skip_ws(p);
            if (*p->s != ':') {
                jp_fail(p, "':' expected");
                free(key);
                break;
            }
            p->s++;
        }
        struct json *v = parse_value(p, depth + 1);
        if (!v) {
            free(key);
            break;
        }
        v->key = key;
        *tail = v;
        tail = &v->next;
        skip_ws(p);
        if (*p->s == ',') {
            p->s++;
            continue;
        }
        if (*p->s == close) {
            p->s++;
            return j;
        }
        jp_fail(p, "',' or '%c' expected", close);
        break;
    }
    json_free(j);
    return NULL;
}

static struct json *parse_value(struct jp *p, int depth)
{
    if (depth > JSON_MAX_DEPTH) {
        jp_fail(p, "nested too deeply");
        return NULL;
    }
    skip_ws(p);
    char c = *p->s;
    if (c == '{' || c == '[')
        return parse_container(p, depth, c == '{');
    if (c == '"') {
        char *s = parse_string_raw(p);
        if (!s)
            return NULL;
        struct json *j = node(p, JSON_STR);
        if (!j) {
            free(s);
            return NULL;
        }
        j->str = s;
        return j;
    }
    if (c == '-' || isdigit((unsigned char)c))
        return parse_number(p);
    static const struct { const char *word; enum json_type t; double v; } words[] = {
        { "true", JSON_BOOL, 1 }, { "false", JSON_BOOL, 0 }, { "null", JSON_NULL, 0 },
    };
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        size_t n = strlen(words[i].word);
        if (strncmp(p->s, words[i].word, n) == 0) {
            p->s += n;
            struct json *j = node(p, words[i].t);
            if (j)
                j->num = words[i].v;
            return j;
        }
    }
    jp_fail(p, "unexpected character '%c'", c ? c : '0');
    return NULL;
}

struct json *json_parse(const char *text, char *err, size_t errlen)
{
    struct jp p = { .s = text, .start = text, .err = err, .errlen = errlen };
    if (err && errlen)
        err[0] = '\0';
    struct json *j = parse_value(&p, 0);
    if (!j)
        return NULL;
    skip_ws(&p);
    if (*p.s != '\0') {
        jp_fail(&p, "trailing characters");
        json_free(j);
        return NULL;
    }
    return j;
}

void json_free(struct json *j)
{
    while (j) {
        struct json *next = j->next;
        json_free(j->child);
        free(j->key);
        free(j->str);
        free(j);
        j = next;
    }
}

const struct json *json_get(const struct json *obj, const char *key)
{
    if (!obj || obj->type != JSON_OBJ)
        return NULL;
    for (const struct json *c = obj->child; c; c = c->next)
        if (c->key && strcmp(c->key, key) == 0)
            return c;
    return NULL;
}

const struct json *json_at(const struct json *arr, unsigned i)
{
    if (!arr || (arr->type != JSON_ARR && arr->type != JSON_OBJ))
        return NULL;
    const struct json *c = arr->child;
    while (c && i--)
        c = c->next;
    return c;
}

unsigned json_len(const struct json *arr)
{
    unsigned n = 0;
    if (arr && (arr->type == JSON_ARR || arr->type == JSON_OBJ))
        for (const struct json *c = arr->child; c; c = c->next)
            n++;
    return n;
}

int json_u64(const struct json *v, uint64_t *out)
{
    if (!v || v->type != JSON_NUM)
        return 0;
    if (v->is_u64)
        *out = v->u64;
    else if (v->num >= 0 && v->num < 18446744073709551616.0)
        *out = (uint64_t)v->num;
    else
        return 0;
    return 1;
}

int json_num(const struct json *v, double *out)
{
    if (!v || v->type != JSON_NUM)
        return 0;
    *out = v->num;
    return 1;
}

const char *json_str(const struct json *v)
{
    return v && v->type == JSON_STR ? v->str : NULL;
}

void json_put_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        switch (c) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (c < 0x20)
                fprintf(f, "\\u%04x", c);
            else
                fputc(c, f);
        }
    }
    fputc('"', f);
}
