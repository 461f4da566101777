/*
 * trace_fmt.c - see trace_fmt.h.
 */
#include "trace_fmt.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *qname(port_namer name, const struct trace_rec *r, char *buf, size_t len)
{
    snprintf(buf, len, "%s.q%u", name ? name(r->port) : "?", r->queue);
    return buf;
}

static void line(FILE *out, unsigned worker, uint64_t t0, uint64_t ts, double dur_us,
                 int depth, const char *text)
{
    char dur[24] = "";
    if (dur_us >= 0)
        snprintf(dur, sizeof(dur), "%10.3f us", dur_us);
    fprintf(out, " %u) %14.3f | %13s | %*s%s\n", worker, (double)(ts - t0) / 1000.0, dur,
            2 * depth, "", text);
}

/* The policy a TX pass or an adaptive decision names (enum eff_mode). */
static const char *mode_name(uint32_t code)
{
    return code == 0 ? "notify" : code == 1 ? "interval" : "poll";
}

/* Events printed as a call on one queue: the call's name and its depth. */
static const struct {
    const char *call;
    int depth;
} queue_calls[] = {
    [TR_NOTIFY_ON] = { "kicks_on", 1 },
    [TR_NOTIFY_OFF] = { "kicks_off", 1 },
    [TR_SIGNAL] = { "signal", 2 },
};

void trace_format_graph(FILE *out, unsigned worker, const struct trace_rec *r, size_t n,
                        port_namer name)
{
    fprintf(out, "# worker %u: %zu events\n", worker, n);
    fprintf(out, "# W)  TIME (us)      |   DURATION    |   EVENT\n");
    if (!n)
        return;
    uint64_t t0 = r[0].ts_ns, wake_ts = 0, tx_ts = 0;
    bool in_wake = false;
    char q[48], text[128];
    for (size_t i = 0; i < n; i++) {
        const struct trace_rec *e = &r[i];
        int depth = 1;
        double dur_us = -1;   /* none */
        switch (e->event) {
        case TR_WAKE_KICK:
        case TR_WAKE_TIMER:
        case TR_WAKE_OTHER:
            if (!in_wake) {
                wake_ts = e->ts_ns;
                in_wake = true;
                depth = 0;
                if (e->event == TR_WAKE_KICK)
                    snprintf(text, sizeof(text), "wake(kick %s) {", qname(name, e, q, sizeof(q)));
                else if (e->event == TR_WAKE_TIMER)
                    snprintf(text, sizeof(text), "wake(timer, %.1f us late) {", e->arg / 1000.0);
                else
                    snprintf(text, sizeof(text), "wake(poke) {");
            } else if (e->event == TR_WAKE_KICK) {
                snprintf(text, sizeof(text), "/* and kick %s */", qname(name, e, q, sizeof(q)));
            } else {
                snprintf(text, sizeof(text), "/* and %s */",
                         e->event == TR_WAKE_TIMER ? "timer" : "poke");
            }
            break;
        case TR_TX_BEGIN:
            tx_ts = e->ts_ns;
            snprintf(text, sizeof(text), "tx_pass(%s, %s) {", qname(name, e, q, sizeof(q)),
                     mode_name(e->arg));
            break;
        case TR_TX_END:
            snprintf(text, sizeof(text), "} /* %u descriptors */", e->arg);
            if (tx_ts)
                dur_us = (double)(e->ts_ns - tx_ts) / 1000.0;
            tx_ts = 0;
            break;
        case TR_NOTIFY_ON:
        case TR_NOTIFY_OFF:
        case TR_SIGNAL:
            snprintf(text, sizeof(text), "%s(%s);", queue_calls[e->event].call,
                     qname(name, e, q, sizeof(q)));
            depth = queue_calls[e->event].depth;
            break;
        case TR_POLICY:
            snprintf(text, sizeof(text), "adaptive -> %s %u us;", mode_name(e->arg >> 24),
                     e->arg & 0xffffff);
            break;
        case TR_SLEEP:
            if (e->arg == UINT32_MAX)
                snprintf(text, sizeof(text), "} /* sleep until a kick */");
            else
                snprintf(text, sizeof(text), "} /* sleep %u us */", e->arg);
            if (in_wake)
                dur_us = (double)(e->ts_ns - wake_ts) / 1000.0;
            depth = 0;
            in_wake = false;
            break;
        default:
            continue;   /* an event this view does not show */
        }
        line(out, worker, t0, e->ts_ns, dur_us, depth, text);
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void dist(FILE *out, const char *what, uint64_t *v, size_t n, double scale,
                 const char *unit)
{
    if (!n) {
        fprintf(out, "  %-34s -\n", what);
        return;
    }
    qsort(v, n, sizeof(*v), cmp_u64);
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += (double)v[i];
    fprintf(out, "  %-34s n=%-8zu mean %9.2f  p50 %9.2f  p99 %9.2f  max %9.2f %s\n", what, n,
            sum / (double)n / scale, (double)v[n / 2] / scale, (double)v[(n * 99) / 100] / scale,
            (double)v[n - 1] / scale, unit);
}

void trace_format_summary(FILE *out, unsigned worker, const struct trace_rec *r, size_t n)
{
    uint64_t *per_wake = calloc(n + 1, sizeof(uint64_t));
    uint64_t *intervals = calloc(n + 1, sizeof(uint64_t));
    uint64_t *delay = calloc(n + 1, sizeof(uint64_t));
    uint64_t *late = calloc(n + 1, sizeof(uint64_t));
    uint64_t *pass = calloc(n + 1, sizeof(uint64_t));
    if (!per_wake || !intervals || !delay || !late || !pass)
        goto out;
    size_t nw = 0, ni = 0, nd = 0, nl = 0, np = 0;
    uint64_t kicks = 0, timers = 0, signals = 0, descs = 0, last_wake = 0, tx_begin = 0;
    uint64_t kick_ts = 0;
    bool in_wake = false;
    for (size_t i = 0; i < n; i++) {
        const struct trace_rec *e = &r[i];
        if (e->event == TR_WAKE_KICK || e->event == TR_WAKE_TIMER || e->event == TR_WAKE_OTHER) {
            if (e->event == TR_WAKE_KICK) {
                kicks++;
                if (!kick_ts)
                    kick_ts = e->ts_ns;
            }
            if (e->event == TR_WAKE_TIMER) {
                timers++;
                late[nl++] = e->arg;
            }
            if (!in_wake) {
                if (last_wake)
                    intervals[ni++] = e->ts_ns - last_wake;
                last_wake = e->ts_ns;
                in_wake = true;
                per_wake[nw] = 0;
            }
        } else if (e->event == TR_TX_BEGIN) {
            tx_begin = e->ts_ns;
            if (kick_ts) {
                delay[nd++] = e->ts_ns - kick_ts;
                kick_ts = 0;
            }
        } else if (e->event == TR_TX_END) {
            descs += e->arg;
            if (in_wake)
                per_wake[nw] += e->arg;
            if (tx_begin)
                pass[np++] = e->ts_ns - tx_begin;
        } else if (e->event == TR_SIGNAL) {
            signals++;
        } else if (e->event == TR_SLEEP && in_wake) {
            nw++;
            in_wake = false;
        }
    }
    double span = n > 1 ? (double)(r[n - 1].ts_ns - r[0].ts_ns) / 1e9 : 0;
    fprintf(out, "# worker %u summary: %zu events over %.3f s\n", worker, n, span);
    fprintf(out, "  wake-ups %zu (kick %llu, timer %llu), descriptors %llu, interrupts %llu\n", nw,
            (unsigned long long)kicks, (unsigned long long)timers, (unsigned long long)descs,
            (unsigned long long)signals);
    dist(out, "descriptors per wake-up", per_wake, nw, 1, "");
    dist(out, "interval between wake-ups", intervals, ni, 1000, "us");
    dist(out, "kick to service", delay, nd, 1000, "us");
    dist(out, "TX pass duration", pass, np, 1000, "us");
    dist(out, "timer oversleep", late, nl, 1000, "us");
out:
    free(per_wake);
    free(intervals);
    free(delay);
    free(late);
    free(pass);
}
