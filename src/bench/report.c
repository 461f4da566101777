/*
 * report.c - one run's figures as text, JSON and CSV (see bench.h).  The
 * JSON and CSV share one field table, so both always carry the same
 * columns; a figure that is not available is null / empty.
 */
#include "bench.h"
#include "json.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

enum fkind { F_STR, F_UINT, F_DBL, F_INT };

struct field {
    const char *name;
    enum fkind kind;
    size_t off;
    int prec;
};

#define S(n, m)    { n, F_STR, offsetof(struct bench_result, m), 0 }
#define U(n, m)    { n, F_UINT, offsetof(struct bench_result, m), 0 }
#define I(n, m)    { n, F_INT, offsetof(struct bench_result, m), 0 }
#define D(n, m, p) { n, F_DBL, offsetof(struct bench_result, m), p }

static const struct field fields[] = {
    S("workload", workload), S("topology", topology), S("backend", backend),
    S("policy", policy), S("kind", kind), S("rx_irq", rx_irq), S("ring", ring),
    U("ring_size", ring_size), U("size", size), U("vms", vms), U("streams", streams),
    U("flows", flows), D("load_pct", load_pct, 1), D("offered_pps", offered_pps, 0),
    D("interval_s", interval_s, 3), D("sent_pps", sent_pps, 0), D("rx_pps", rx_pps, 0),
    D("rx_gbps", rx_gbps, 4), D("data_pps", data_pps, 0), D("data_gbps", data_gbps, 4),
    D("tps", tps, 0), D("tx_frames", tx_frames, 0), D("rx_frames", rx_frames, 0),
    D("data_sent", data_sent, 0), D("data_received", data_received, 0), D("lost", lost, 0),
    D("loss_pct", loss_pct, 4), D("seq_gaps", seq_gaps, 0), D("reordered", reordered, 0),
    D("bad_frames", bad_frames, 0), D("reply_drops", reply_drops, 0),
    D("timeouts", timeouts, 0), D("backend_tx_packets", backend_tx_packets, 0),
    D("backend_rx_packets", backend_rx_packets, 0), D("backend_drops", backend_drops, 0),
    D("unaccounted", unaccounted, 0), D("lat_samples", lat_samples, 0),
    D("lat_p50_us", lat_p50, 2), D("lat_p99_us", lat_p99, 2), D("lat_p999_us", lat_p999, 2),
    D("lat_mean_us", lat_mean, 2), D("lat_max_us", lat_max, 2),
    D("backend_cpu_pct", backend_cpu, 2), D("backend_cpu_stat_pct", backend_cpu_stat, 2),
    D("backend_cpu_proc_pct", backend_cpu_proc, 2),
    D("backend_cpu_user_pct", backend_cpu_user, 2),
    D("backend_cpu_sys_pct", backend_cpu_sys, 2),
    D("backend_proc_cpu_pct", backend_proc_cpu, 2), D("ctx_vol_per_s", ctx_vol_per_s, 1),
    D("ctx_invol_per_s", ctx_invol_per_s, 1), D("cpu_us_per_pkt", cpu_us_per_pkt, 4),
    D("kicks_per_pkt", kicks_per_pkt, 4), D("calls_per_pkt", calls_per_pkt, 4),
    D("wakeups_per_pkt", wakeups_per_pkt, 4), D("syscalls_per_wakeup", syscalls_per_wakeup, 2),
    D("cpu_us_per_wakeup", cpu_us_per_wakeup, 2), D("frames_per_wakeup", frames_per_wakeup, 2),
    D("bench_cpu_pct", bench_cpu, 1),
    D("bench_busy_pct", bench_busy, 1), D("tx_blocked_pct", tx_blocked_pct, 2),
    D("other_cpu_pct", other_cpu, 1), I("bench_limited", bench_limited),
    I("cpu_mismatch", cpu_mismatch), S("warnings", warnings),
};
#define NFIELDS (sizeof fields / sizeof fields[0])

const char *fmt_num(char *buf, size_t len, double v, int prec)
{
    if (isnan(v) || isinf(v))
        snprintf(buf, len, "n/a");
    else
        snprintf(buf, len, "%.*f", prec, v);
    return buf;
}

double si_prefix(double v, const char **prefix)
{
    double a = fabs(v);
    *prefix = a >= 1e6 ? "M" : a >= 1e3 ? "k" : "";
    return a >= 1e6 ? v / 1e6 : a >= 1e3 ? v / 1e3 : v;
}

const char *fmt_rate(char *buf, size_t len, double pps)
{
    const char *p;
    double v = si_prefix(pps, &p);
    if (isnan(pps))
        snprintf(buf, len, "n/a");
    else
        snprintf(buf, len, "%.*f %spps", *p == 'M' ? 3 : *p == 'k' ? 1 : 0, v, p);
    return buf;
}

static void put_value(FILE *f, const struct bench_result *r, const struct field *fd, int json)
{
    const char *base = (const char *)r;
    switch (fd->kind) {
    case F_STR:
        if (json) {
            json_put_str(f, base + fd->off);
        } else {
            /* CSV: quote, double the quotes */
            const char *s = base + fd->off;
            if (strpbrk(s, ",\"\n")) {
                fputc('"', f);
                for (; *s; s++) {
                    if (*s == '"')
                        fputc('"', f);
                    fputc(*s == '\n' ? ' ' : *s, f);
                }
                fputc('"', f);
            } else {
                fputs(s, f);
            }
        }
        break;
    case F_UINT: {
        unsigned v;
        memcpy(&v, base + fd->off, sizeof v);
        fprintf(f, "%u", v);
        break;
    }
    case F_INT: {
        int v;
        memcpy(&v, base + fd->off, sizeof v);
        fprintf(f, "%d", v);
        break;
    }
    case F_DBL: {
        double v;
        memcpy(&v, base + fd->off, sizeof v);
        if (isnan(v) || isinf(v))
            fputs(json ? "null" : "", f);
        else
            fprintf(f, "%.*f", fd->prec, v);
        break;
    }
    }
}

void report_json(FILE *f, const struct bench_result *r, int indent)
{
    fprintf(f, "%*s{", indent, "");
    for (size_t i = 0; i < NFIELDS; i++) {
        fprintf(f, "%s\"%s\":", i ? "," : "", fields[i].name);
        put_value(f, r, &fields[i], 1);
    }
    fputc('}', f);
}

void report_csv_header(FILE *f)
{
    for (size_t i = 0; i < NFIELDS; i++)
        fprintf(f, "%s%s", i ? "," : "", fields[i].name);
    fputc('\n', f);
}

void report_csv_row(FILE *f, const struct bench_result *r)
{
    for (size_t i = 0; i < NFIELDS; i++) {
        if (i)
            fputc(',', f);
        put_value(f, r, &fields[i], 0);
    }
    fputc('\n', f);
}

int report_csv_append(const char *path, const struct bench_result *r)
{
    FILE *f = fopen(path, "a");
    if (!f)
        return -1;
    if (ftell(f) == 0)
        report_csv_header(f);
    report_csv_row(f, r);
    return fclose(f) == 0 ? 0 : -1;
}

void report_text(FILE *f, const struct bench_result *r)
{
    char a[32], b[32], c[32], d[32];
    fprintf(f, "%s %uB, %u VMs (%s), %u stream%s per VM, %u flows, backend %s, policy %s, "
               "RX interrupts %s, %s rings of %u\n",
            r->workload, r->size, r->vms, r->topology, r->streams, r->streams == 1 ? "" : "s",
            r->flows, r->backend, r->policy, r->rx_irq, r->ring, r->ring_size);
    fprintf(f, "  offered      %s, sent %s over %.2f s\n",
            isnan(r->offered_pps) ? "max" : fmt_rate(a, sizeof a, r->offered_pps),
            fmt_rate(b, sizeof b, r->sent_pps), r->interval_s);
    fprintf(f, "  received     %s  %s Gbit/s   (all frames: %s  %s Gbit/s)\n",
            fmt_rate(a, sizeof a, r->data_pps), fmt_num(b, sizeof b, r->data_gbps, 3),
            fmt_rate(c, sizeof c, r->rx_pps), fmt_num(d, sizeof d, r->rx_gbps, 3));
    if (!isnan(r->tps))
        fprintf(f, "  transactions %.0f/s\n", r->tps);
    fprintf(f, "  loss         %s %% (%.0f of %.0f data frames; backend drops %s, "
               "unaccounted %s, reordered %.0f)\n",
            fmt_num(a, sizeof a, r->loss_pct, 3), r->lost, r->data_sent,
            fmt_num(b, sizeof b, r->backend_drops, 0), fmt_num(c, sizeof c, r->unaccounted, 0),
            r->reordered);
    if (!isnan(r->timeouts) && (r->timeouts > 0 || r->reply_drops > 0))
        fprintf(f, "               timeouts %.0f, replies dropped at the sender %.0f\n",
                r->timeouts, r->reply_drops);
    if (!isnan(r->lat_samples))
        fprintf(f, "  latency      p50 %s us  p99 %s us  p99.9 %s us  (%s, %.0f samples)\n",
                fmt_num(a, sizeof a, r->lat_p50, 1), fmt_num(b, sizeof b, r->lat_p99, 1),
                fmt_num(c, sizeof c, r->lat_p999, 1),
                strcmp(r->workload, "rr") == 0 ? "round trip" : "one-way", r->lat_samples);
    else
        fprintf(f, "  latency      n/a\n");
    fprintf(f, "  backend CPU  %s %% of a core", fmt_num(a, sizeof a, r->backend_cpu, 1));
    if (strcmp(r->backend, "lwvhostd") == 0)
        fprintf(f, " (workers: stats %s %%, /proc %s %%; whole process %s %%)",
                fmt_num(b, sizeof b, r->backend_cpu_stat, 1),
                fmt_num(c, sizeof c, r->backend_cpu_proc, 1),
                fmt_num(d, sizeof d, r->backend_proc_cpu, 1));
    fprintf(f, "\n               user %s %%, sys %s %%, %s us per packet\n",
            fmt_num(a, sizeof a, r->backend_cpu_user, 1), fmt_num(b, sizeof b, r->backend_cpu_sys, 1),
            fmt_num(c, sizeof c, r->cpu_us_per_pkt, 3));
    fprintf(f, "  per packet   %s kicks, %s calls, %s worker wakeups\n",
            fmt_num(a, sizeof a, r->kicks_per_pkt, 4), fmt_num(b, sizeof b, r->calls_per_pkt, 4),
            fmt_num(c, sizeof c, r->wakeups_per_pkt, 4));
    fprintf(f, "  per wake-up  %s system calls, %s us of backend CPU, %s frames\n",
            fmt_num(a, sizeof a, r->syscalls_per_wakeup, 2),
            fmt_num(b, sizeof b, r->cpu_us_per_wakeup, 2),
            fmt_num(c, sizeof c, r->frames_per_wakeup, 1));
    if (!isnan(r->ctx_vol_per_s))
        fprintf(f, "  switches     %.0f voluntary/s, %.0f involuntary/s\n", r->ctx_vol_per_s,
                r->ctx_invol_per_s);
    fprintf(f, "  bench        CPU %s %%, busy %s %%, TX ring full %s %% of sends; other "
               "processes %s %% of a core\n",
            fmt_num(a, sizeof a, r->bench_cpu, 0), fmt_num(b, sizeof b, r->bench_busy, 0),
            fmt_num(c, sizeof c, r->tx_blocked_pct, 1), fmt_num(d, sizeof d, r->other_cpu, 0));
    if (r->warnings[0]) {
        const char *p = r->warnings;
        while (*p) {
            const char *end = strstr(p, "; ");
            size_t n = end ? (size_t)(end - p) : strlen(p);
            fprintf(f, "  warning: %.*s\n", (int)n, p);
            p += n;
            if (*p)
                p += 2;
        }
    }
}
