/*
 * sweep.c - `lwvhost-bench sweep`: for every configuration (workload x size
 * x VMs x streams) measure the peak rate under the poll policy, then run
 * every policy at every offered load (a percentage of that peak), and DPDK
 * at the same rates with --dpdk.  Writes DIR/results.csv (row by row, so a
 * partial sweep keeps its rows), results.json, results.md and per
 * configuration cpu-TAG.svg, latency-TAG.svg and cpupkt-TAG.svg.
 */
#define _GNU_SOURCE
#include "bench.h"
#include "cli.h"
#include "json.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#define MAXL 16

struct list {
    unsigned n;
    char v[MAXL][64];
};

struct sweep {
    struct bench_cfg base;
    struct list policies, loads, sizes, vms, streams, workloads;
    double seconds;
    int seconds_given;
    const char *out;
    const char *preset;
    int dpdk;
    int has_policy;          /* the daemon takes --policy (or we attach) */
    char command[2048];
    struct bench_result *res;
    unsigned nres, capres;
    unsigned failed;
    FILE *csv;
};

void sweep_usage(FILE *f)
{
    fprintf(f,
"Usage: lwvhost-bench sweep --out DIR [OPTIONS]\n"
"For each configuration, measures the peak rate under the poll policy, then runs\n"
"each policy at each offered load (percent of that peak).  Prints a progress line\n"
"per run; writes DIR/results.csv, results.json, results.md (Markdown tables and\n"
"the targets of issues 4 and 13) and SVG plots per configuration: backend CPU\n"
"against throughput, p99 latency against throughput, and CPU per packet against\n"
"offered load (log-log: the research's picture), one curve per policy.\n"
"\n"
"  --out DIR            where the results go (created)\n"
"  --preset P           research: stream,tcp x 64,1024 B x 1 and 6 sending VMs\n"
"                       (2 and 12 VMs in pairs) x 1,4 streams, 5 s per run;\n"
"                       demo: notify,interval:50,adaptive,poll at 1,5,10,25,\n"
"                       50,100%%, 64 B stream, 2 VMs, 3 s per run (two minutes)\n"
"  --policies LIST      default notify,interval:50,adaptive,poll\n"
"  --loads LIST         offered load in %% of the peak, rising; default\n"
"                       1,5,10,25,50,100\n"
"  --workloads LIST     stream,tcp,rr (default stream)\n"
"  --sizes LIST         frame sizes (default 64)\n"
"  --vms LIST           VMs attached (default 2)\n"
"  --streams LIST       queue pairs per VM (default 1)\n"
"  --seconds S          measured seconds per run (default 3)\n"
"  --dpdk               also run DPDK's testpmd vhost backend (peak and the same\n"
"                       offered rates) for a row measured in the same sweep\n"
"Options of run also apply: --topology, --warmup, --window, --inflight, --ring,\n"
"--ring-size, --rx-irq, --workers, --attach/--sock-dir, --backend-cpu,\n"
"--bench-cpu, --no-pin, --lwvhostd, --testpmd, --quiet-wait, --nice, -v.  Options\n"
"given override the preset's.\n"
"Without an lwvhostd that has --policy, only its built-in behaviour is measured\n"
"(policy \"default\").\n"
"Exit status: 0 all runs ok, 1 some run failed, 2 bad usage.\n");
}

static int split_list(const char *s, struct list *l)
{
    l->n = 0;
    const char *p = s;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 0 || n >= sizeof l->v[0] || l->n >= MAXL)
            return -1;
        memcpy(l->v[l->n], p, n);
        l->v[l->n][n] = '\0';
        l->n++;
        p += n;
        if (*p == ',')
            p++;
    }
    return l->n ? 0 : -1;
}

static void set_list(struct list *l, const char *s)
{
    if (!l->n)
        split_list(s, l);
}

static int add_result(struct sweep *sw, const struct bench_result *r)
{
    if (sw->nres == sw->capres) {
        unsigned cap = sw->capres ? 2 * sw->capres : 32;
        struct bench_result *n = realloc(sw->res, cap * sizeof *n);
        if (!n)
            return -1;
        sw->res = n;
        sw->capres = cap;
    }
    sw->res[sw->nres++] = *r;
    if (sw->csv) {
        report_csv_row(sw->csv, r);
        fflush(sw->csv);
    }
    return 0;
}

static void config_tag(char *buf, size_t len, const struct bench_result *r)
{
    snprintf(buf, len, "%s-%uB-%uvm-%uq", r->workload, r->size, r->vms, r->streams);
}

static int same_config(const struct bench_result *a, const struct bench_result *b)
{
    return !strcmp(a->workload, b->workload) && a->size == b->size && a->vms == b->vms &&
           a->streams == b->streams;
}

/* True when result i is the first of its configuration (the results of
 * one configuration are reported together, at its first result). */
static int first_of_config(const struct sweep *sw, unsigned i)
{
    for (unsigned j = 0; j < i; j++)
        if (same_config(&sw->res[j], &sw->res[i]))
            return 0;
    return 1;
}

/* One run with a progress line; the result is kept when it succeeded. */
static int one_run(struct sweep *sw, struct bench_cfg *c, const char *kind, double load_pct,
                   unsigned idx, unsigned total, struct bench_result *out)
{
    char tag[64], a[32], b[32], c1[32], c2[32], err[512];
    struct bench_result r;
    snprintf(tag, sizeof tag, "%s %uB %uvm %uq", workload_name(c->wl), c->size, c->vms,
             c->streams);
    const char *pol = c->backend == BK_DPDK ? "dpdk" : c->policy[0] ? c->policy : "default";
    if (isnan(load_pct))
        snprintf(a, sizeof a, "peak");
    else
        snprintf(a, sizeof a, "%.0f%%", load_pct);
    printf("[%*u/%u] %-22s %-13s %-5s ", total >= 100 ? 3 : 2, idx, total, tag, pol, a);
    if (c->rate > 0)
        printf("(offered %s) ", fmt_rate(b, sizeof b, c->rate));
    fflush(stdout);
    if (bench_run_once(c, &r, err, sizeof err)) {
        printf("FAILED: %s\n", err);
        sw->failed++;
        return -1;
    }
    snprintf(r.kind, sizeof r.kind, "%s", kind);
    if (c->backend == BK_DPDK)
        snprintf(r.policy, sizeof r.policy, "dpdk");
    r.load_pct = load_pct;
    char c3[32], c4[32];
    printf("%s, backend CPU %s%%, %s us/pkt, p99 %s us, %s syscalls and %s us per wake-up",
           fmt_rate(a, sizeof a, r.data_pps), fmt_num(b, sizeof b, r.backend_cpu, 1),
           fmt_num(c1, sizeof c1, r.cpu_us_per_pkt, 3), fmt_num(c2, sizeof c2, r.lat_p99, 1),
           fmt_num(c3, sizeof c3, r.syscalls_per_wakeup, 2),
           fmt_num(c4, sizeof c4, r.cpu_us_per_wakeup, 1));
    if (r.loss_pct > 0.01)
        printf(", loss %.2f%%", r.loss_pct);
    if (r.bench_limited)
        printf(" [bench-limited]");
    printf("\n");
    if (r.warnings[0] && c->verbose)
        printf("        warning: %s\n", r.warnings);
    if (add_result(sw, &r))
        return -1;
    if (out)
        *out = r;
    return 0;
}

/* ---------------------------------------------------------------- outputs */

struct target {
    char config[64], name[160], note[256];
    double value, limit;
    int at_least;            /* met when value >= limit (else <=) */
    int met;
};

static const struct bench_result *find(const struct sweep *sw, const struct bench_result *cfg,
                                       const char *policy, const char *kind, double load)
{
    for (unsigned i = 0; i < sw->nres; i++) {
        const struct bench_result *r = &sw->res[i];
        if (!same_config(r, cfg) || strcmp(r->policy, policy) || strcmp(r->kind, kind))
            continue;
        if (!isnan(load) && fabs(r->load_pct - load) > 1e-6)
            continue;
        return r;
    }
    return NULL;
}

static double nearest_load(const struct sweep *sw, double want)
{
    double best = NAN;
    for (unsigned i = 0; i < sw->loads.n; i++) {
        double l = atof(sw->loads.v[i]);
        if (isnan(best) || fabs(l - want) < fabs(best - want))
            best = l;
    }
    return best;
}

/* The next target of configuration `tag`, measured `value` against
 * `limit` (met at or above it if at_least, else at or below); the caller
 * names it and writes its note. */
static struct target *add_target(struct target *t, unsigned *n, const char *tag, double value,
                                 double limit, int at_least)
{
    struct target *x = &t[(*n)++];
    snprintf(x->config, sizeof x->config, "%s", tag);
    x->value = value;
    x->limit = limit;
    x->at_least = at_least;
    x->met = at_least ? value >= limit : value <= limit;
    return x;
}

/* The latency budget of an adaptive policy string, in us. */
static double adaptive_budget(const char *policy)
{
    const char *colon = strchr(policy, ':');
    return colon ? atof(colon + 1) : 50;
}

static int cmp_desc(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* CPU per packet of `policy` as the load falls: the largest rise from one
 * load to the next lower one (at most 1: it never rises), and the load it
 * rose to in *at; NaN with fewer than two loads measured.  *hi_cpp and
 * *lo_cpp get the ends of the curve. */
static double worst_rise(const struct sweep *sw, const struct bench_result *c, const char *policy,
                         double *lo_cpp, double *hi_cpp, double *at)
{
    double loads[MAXL], worst = NAN, prev = NAN;
    for (unsigned i = 0; i < sw->loads.n; i++)
        loads[i] = atof(sw->loads.v[i]);
    qsort(loads, sw->loads.n, sizeof loads[0], cmp_desc);
    *lo_cpp = *hi_cpp = *at = NAN;
    for (unsigned i = 0; i < sw->loads.n; i++) {
        const struct bench_result *r = find(sw, c, policy, "load", loads[i]);
        if (!r || isnan(r->cpu_us_per_pkt) || r->cpu_us_per_pkt <= 0)
            continue;
        if (isnan(*hi_cpp))
            *hi_cpp = r->cpu_us_per_pkt;
        *lo_cpp = r->cpu_us_per_pkt;
        if (!isnan(prev)) {
            double rise = r->cpu_us_per_pkt / prev;
            if (isnan(worst) || rise > worst) {
                worst = rise;
                *at = loads[i];
            }
        }
        prev = r->cpu_us_per_pkt;
    }
    return worst;
}

/* Issue 13's targets for one configuration: adaptive at 10% load against
 * notify (CPU, and p99 within its budget + 10 us), and the curve of CPU
 * per packet against load (adaptive's must not rise as the load falls). */
static unsigned wakeup_targets(const struct sweep *sw, const struct bench_result *c,
                               const char *tag, struct target *t, unsigned max)
{
    unsigned n = 0;
    double low = nearest_load(sw, 10);
    for (unsigned p = 0; p < sw->policies.n && n + 3 <= max; p++) {
        const char *pol = sw->policies.v[p];
        if (strncmp(pol, "adaptive", 8))
            continue;
        const struct bench_result *al = find(sw, c, pol, "load", low);
        const struct bench_result *nl = find(sw, c, "notify", "load", low);
        if (al && nl && nl->backend_cpu > 0) {
            struct target *x = add_target(t, &n, tag, al->backend_cpu / nl->backend_cpu, 0.5, 0);
            snprintf(x->name, sizeof x->name, "backend CPU %s / notify at %.0f%% load", pol, low);
            snprintf(x->note, sizeof x->note, "%.1f%% vs %.1f%% of a core", al->backend_cpu,
                     nl->backend_cpu);
            x = add_target(t, &n, tag, al->lat_p99, adaptive_budget(pol) + 10, 0);
            snprintf(x->name, sizeof x->name, "p99 latency of %s at %.0f%% load, us", pol, low);
            snprintf(x->note, sizeof x->note, "budget %.0f us + 10", adaptive_budget(pol));
        }
        double lo, hi, at, rise = worst_rise(sw, c, pol, &lo, &hi, &at);
        if (!isnan(rise)) {
            struct target *x = add_target(t, &n, tag, rise, 1.0, 0);
            snprintf(x->name, sizeof x->name, "CPU per packet of %s as the load falls: worst "
                     "rise from one load to the next lower", pol);
            snprintf(x->note, sizeof x->note, "worst at %.0f%%; %.3f us/pkt at the highest load, "
                     "%.3f at the lowest", at, hi, lo);
        }
    }
    return n;
}

static unsigned targets(const struct sweep *sw, struct target *t, unsigned max)
{
    unsigned n = 0;
    double mid = nearest_load(sw, 50), low = nearest_load(sw, 10);
    for (unsigned i = 0; i < sw->nres && n + 4 <= max; i++) {
        const struct bench_result *c = &sw->res[i];
        if (!first_of_config(sw, i))
            continue;
        char tag[64];
        config_tag(tag, sizeof tag, c);
        const struct bench_result *pp = find(sw, c, "poll", "peak", NAN);
        const struct bench_result *dp = find(sw, c, "dpdk", "peak", NAN);
        if (pp && dp) {
            struct target *x = add_target(t, &n, tag, pp->data_pps / dp->data_pps, 1.0, 1);
            snprintf(x->name, sizeof x->name, "peak rate of lwvhostd poll / DPDK (%s)", c->topology);
            snprintf(x->note, sizeof x->note, "%.3f vs %.3f Mpps%s", pp->data_pps / 1e6,
                     dp->data_pps / 1e6, x->met ? "" : ": lwvhostd is slower");
        }
        const struct bench_result *an = find(sw, c, "adaptive", "load", mid);
        const struct bench_result *nn = find(sw, c, "notify", "load", mid);
        if (an && nn && !isnan(an->cpu_us_per_pkt) && !isnan(nn->cpu_us_per_pkt)) {
            struct target *x =
                add_target(t, &n, tag, an->cpu_us_per_pkt / nn->cpu_us_per_pkt, 0.5, 0);
            snprintf(x->name, sizeof x->name, "CPU per packet adaptive / notify at %.0f%% load", mid);
            snprintf(x->note, sizeof x->note, "%.3f vs %.3f us/pkt", an->cpu_us_per_pkt,
                     nn->cpu_us_per_pkt);
        }
        const struct bench_result *al = find(sw, c, "adaptive", "load", low);
        const struct bench_result *pl = find(sw, c, "poll", "load", low);
        const struct bench_result *dl = find(sw, c, "dpdk", "load", low);
        const struct bench_result *ref[2] = { pl, dl };
        const char *refname[2] = { "poll", "DPDK" };
        for (int k = 0; k < 2; k++) {
            if (!al || !ref[k] || isnan(al->backend_cpu) || isnan(ref[k]->backend_cpu))
                continue;
            double ratio = ref[k]->backend_cpu > 0 ? al->backend_cpu / ref[k]->backend_cpu : NAN;
            struct target *x = add_target(t, &n, tag, ratio, 0.25, 0);
            snprintf(x->name, sizeof x->name, "backend CPU adaptive / %s at %.0f%% load",
                     refname[k], low);
            snprintf(x->note, sizeof x->note, "%.1f%% vs %.1f%% of a core", al->backend_cpu,
                     ref[k]->backend_cpu);
        }
        n += wakeup_targets(sw, c, tag, t + n, max - n);
    }
    return n;
}

static void write_json(FILE *f, const char *date, const struct sweep *sw,
                       const struct target *t, unsigned nt)
{
    struct utsname u;
    uname(&u);
    fprintf(f, "{\"tool\":\"lwvhost-bench sweep\",\"command\":");
    json_put_str(f, sw->command);
    fprintf(f, ",\"date\":\"%s\",\"host\":{\"cpus\":%d,\"kernel\":", date, online_cpus());
    json_put_str(f, u.release);
    fprintf(f, "},\"settings\":{\"seconds\":%g,\"warmup\":%g,\"preset\":", sw->seconds,
            sw->base.warmup);
    json_put_str(f, sw->preset ? sw->preset : "");
    fprintf(f, ",\"lwvhostd_has_policy\":%s,\"policies\":[", sw->has_policy ? "true" : "false");
    for (unsigned i = 0; i < sw->policies.n; i++) {
        fprintf(f, "%s", i ? "," : "");
        json_put_str(f, sw->policies.v[i]);
    }
    fprintf(f, "],\"loads_pct\":[");
    for (unsigned i = 0; i < sw->loads.n; i++)
        fprintf(f, "%s%s", i ? "," : "", sw->loads.v[i]);
    fprintf(f, "]},\n\"runs\":[\n");
    for (unsigned i = 0; i < sw->nres; i++) {
        report_json(f, &sw->res[i], 1);
        fprintf(f, "%s\n", i + 1 < sw->nres ? "," : "");
    }
    fprintf(f, "],\n\"targets\":[");
    for (unsigned i = 0; i < nt; i++) {
        fprintf(f, "%s\n {\"config\":", i ? "," : "");
        json_put_str(f, t[i].config);
        fprintf(f, ",\"target\":");
        json_put_str(f, t[i].name);
        if (isnan(t[i].value))
            fprintf(f, ",\"ratio\":null");
        else
            fprintf(f, ",\"ratio\":%.4f", t[i].value);
        fprintf(f, ",\"limit\":%.2f,\"met\":%s,\"note\":", t[i].limit,
                t[i].met ? "true" : "false");
        json_put_str(f, t[i].note);
        fprintf(f, "}");
    }
    fprintf(f, "%s]}\n", nt ? "\n" : "");
}

static void md_cell(FILE *f, double v, int prec)
{
    char b[32];
    fprintf(f, " %s |", fmt_num(b, sizeof b, v, prec));
}

static void write_md(FILE *f, const char *date, const struct sweep *sw, const struct target *t,
                     unsigned nt)
{
    fprintf(f, "# lwvhost-bench sweep\n\n`%s`  \n%s, %d CPUs; %g s per run after %g s warm-up; "
               "backend pinned to CPU %d, bench to CPU %d.\n",
            sw->command, date, online_cpus(), sw->seconds, sw->base.warmup, sw->base.backend_cpu,
            sw->base.bench_cpu);
    if (!sw->has_policy)
        fprintf(f, "\nThis lwvhostd has no `--policy`: only its built-in behaviour (\"default\") "
                   "was measured.\n");
    for (unsigned i = 0; i < sw->nres; i++) {
        const struct bench_result *c = &sw->res[i];
        if (!first_of_config(sw, i))
            continue;
        char tag[64];
        config_tag(tag, sizeof tag, c);
        fprintf(f, "\n## %s %u B, %u VMs (%s), %u stream%s per VM\n\n", c->workload, c->size,
                c->vms, c->topology, c->streams, c->streams == 1 ? "" : "s");
        fprintf(f, "| policy | load | offered Mpps | received Mpps | Gbit/s | loss %% | p50 us | "
                   "p99 us | p99.9 us | backend CPU %% | CPU us/pkt | kicks/pkt | calls/pkt | "
                   "syscalls/wake | us/wake | frames/wake | bench CPU %% | notes |\n");
        fprintf(f, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
        for (unsigned j = i; j < sw->nres; j++) {
            const struct bench_result *r = &sw->res[j];
            if (!same_config(r, c))
                continue;
            fprintf(f, "| %s |", r->policy);
            if (isnan(r->load_pct))
                fprintf(f, " peak |");
            else
                fprintf(f, " %.0f%% |", r->load_pct);
            md_cell(f, r->offered_pps / 1e6, 3);
            md_cell(f, r->data_pps / 1e6, 3);
            md_cell(f, r->data_gbps, 3);
            md_cell(f, r->loss_pct, 2);
            md_cell(f, r->lat_p50, 1);
            md_cell(f, r->lat_p99, 1);
            md_cell(f, r->lat_p999, 1);
            md_cell(f, r->backend_cpu, 1);
            md_cell(f, r->cpu_us_per_pkt, 3);
            md_cell(f, r->kicks_per_pkt, 3);
            md_cell(f, r->calls_per_pkt, 3);
            md_cell(f, r->syscalls_per_wakeup, 2);
            md_cell(f, r->cpu_us_per_wakeup, 2);
            md_cell(f, r->frames_per_wakeup, 1);
            md_cell(f, r->bench_cpu, 0);
            fprintf(f, " %s%s%s |\n", r->bench_limited ? "bench-limited" : "",
                    r->bench_limited && r->other_cpu > 20 ? ", " : "",
                    r->other_cpu > 20 ? "noisy machine" : "");
        }
        fprintf(f, "\n![backend CPU against throughput](cpu-%s.svg) "
                   "![p99 latency against throughput](latency-%s.svg) "
                   "![CPU per packet against offered load](cpupkt-%s.svg)\n", tag, tag, tag);
    }
    if (nt) {
        fprintf(f, "\n## Targets (issues 4 and 13)\n\n| configuration | target | ratio | limit | met | "
                   "measured |\n|---|---|---|---|---|---|\n");
        for (unsigned i = 0; i < nt; i++) {
            char b[32];
            fprintf(f, "| %s | %s | %s | %s %.2f | %s | %s |\n", t[i].config, t[i].name,
                    fmt_num(b, sizeof b, t[i].value, 3), t[i].at_least ? ">=" : "<=",
                    t[i].limit, t[i].met ? "yes" : "**no**", t[i].note);
        }
    }
    fprintf(f, "\nOffered and received rates count data frames (rr: transactions). Backend CPU is "
               "%% of one core over the measured interval: lwvhostd's worker threads, DPDK's "
               "whole testpmd. Latency is one-way (stream, tcp) or round trip (rr).\n");
}

/* Writes the sweep's output file DIR/name with writer(), which gets the
 * time now in strftime's datefmt; says so on stderr if it cannot. */
static void write_output(const struct sweep *sw, const char *name, const char *datefmt,
                         void (*writer)(FILE *, const char *, const struct sweep *,
                                        const struct target *, unsigned),
                         const struct target *t, unsigned nt)
{
    char path[4096], date[64];
    snprintf(path, sizeof path, "%s/%s", sw->out, name);
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "lwvhost-bench sweep: %s: %s\n", path, strerror(errno));
        return;
    }
    time_t now = time(NULL);
    strftime(date, sizeof date, datefmt, localtime(&now));
    writer(f, date, sw, t, nt);
    if (fclose(f) != 0)
        fprintf(stderr, "lwvhost-bench sweep: %s: %s\n", path, strerror(errno));
}

static void write_svgs(const struct sweep *sw)
{
    for (unsigned i = 0; i < sw->nres; i++) {
        const struct bench_result *c = &sw->res[i];
        if (!first_of_config(sw, i))
            continue;
        /* one series per policy, in order of appearance */
        const char *names[MAXL + 2];
        unsigned nn = 0;
        for (unsigned j = i; j < sw->nres; j++) {
            if (!same_config(&sw->res[j], c))
                continue;
            unsigned k;
            for (k = 0; k < nn; k++)
                if (!strcmp(names[k], sw->res[j].policy))
                    break;
            if (k == nn && nn < MAXL + 2)
                names[nn++] = sw->res[j].policy;
        }
        struct svg_series s[MAXL + 2];
        /* per series: throughput, CPU, p99, offered load, CPU per packet */
        double *buf = calloc((size_t)sw->nres * 5 * nn + 1, sizeof *buf);
        if (!buf)
            return;
        for (unsigned k = 0; k < nn; k++) {
            double *x = buf + (size_t)k * 5 * sw->nres, *y = x + sw->nres, *l = y + sw->nres;
            double *ld = l + sw->nres, *cpp = ld + sw->nres;
            unsigned n = 0;
            for (unsigned j = i; j < sw->nres; j++) {
                const struct bench_result *r = &sw->res[j];
                if (!same_config(r, c) || strcmp(r->policy, names[k]))
                    continue;
                x[n] = r->data_pps / 1e6;
                y[n] = r->backend_cpu;
                l[n] = r->lat_p99;
                ld[n] = strcmp(r->kind, "load") ? NAN : r->load_pct;   /* peaks: no load */
                cpp[n] = r->cpu_us_per_pkt;
                n++;
            }
            s[k].name = names[k];
            s[k].n = n;
            s[k].x = x;
            s[k].y = y;
        }
        char tag[64], path[1024], title[160];
        config_tag(tag, sizeof tag, c);
        snprintf(title, sizeof title, "Backend CPU: %s %u B, %u VMs, %u stream%s", c->workload,
                 c->size, c->vms, c->streams, c->streams == 1 ? "" : "s");
        snprintf(path, sizeof path, "%s/cpu-%s.svg", sw->out, tag);
        if (svg_plot(path, title, "received, million data frames/s (rr: transactions/s)",
                     "backend CPU, % of one core", s, nn, 0))
            fprintf(stderr, "lwvhost-bench sweep: %s: %s\n", path, strerror(errno));
        for (unsigned k = 0; k < nn; k++)
            s[k].y = buf + (size_t)k * 5 * sw->nres + 2 * sw->nres;
        snprintf(title, sizeof title, "p99 latency: %s %u B, %u VMs, %u stream%s", c->workload,
                 c->size, c->vms, c->streams, c->streams == 1 ? "" : "s");
        snprintf(path, sizeof path, "%s/latency-%s.svg", sw->out, tag);
        if (svg_plot(path, title, "received, million data frames/s (rr: transactions/s)",
                     c->workload[0] == 'r' ? "p99 round-trip latency, us"
                                           : "p99 one-way latency, us", s, nn, SVG_YLOG))
            fprintf(stderr, "lwvhost-bench sweep: %s: %s\n", path, strerror(errno));
        for (unsigned k = 0; k < nn; k++) {
            s[k].x = buf + (size_t)k * 5 * sw->nres + 3 * sw->nres;
            s[k].y = s[k].x + sw->nres;
        }
        snprintf(title, sizeof title, "CPU per packet: %s %u B, %u VMs, %u stream%s",
                 c->workload, c->size, c->vms, c->streams, c->streams == 1 ? "" : "s");
        snprintf(path, sizeof path, "%s/cpupkt-%s.svg", sw->out, tag);
        if (svg_plot(path, title, "offered load, % of the poll peak",
                     "backend CPU per packet, us", s, nn, SVG_XLOG | SVG_YLOG))
            fprintf(stderr, "lwvhost-bench sweep: %s: %s\n", path, strerror(errno));
        free(buf);
    }
}

/* ---------------------------------------------------------------- main */

enum { SO_PRESET = CLI_OWN, SO_POLICIES, SO_LOADS, SO_SIZES, SO_VMS, SO_STREAMS, SO_WORKLOADS,
       SO_SECONDS, SO_OUT, SO_DPDK };

/* What the items of one --LIST option must be. */
enum item_kind { ITEM_POLICY, ITEM_PERCENT, ITEM_UINT, ITEM_WORKLOAD };
struct list_rule {
    const char *opt;
    const struct list *l;
    enum item_kind kind;
    unsigned lo, hi;      /* ITEM_UINT */
    const char *what;     /* for the error message */
};

static int item_ok(const struct list_rule *r, const char *v)
{
    unsigned u;
    double d;
    switch (r->kind) {
    case ITEM_POLICY:
        return !strcmp(v, "default") || !check_policy(v);
    case ITEM_PERCENT:
        return !parse_double(v, 0.1, 1000, &d);
    case ITEM_UINT:
        return !parse_uint(v, r->lo, r->hi, &u);
    case ITEM_WORKLOAD:
        return parse_workload(v) >= 0;
    }
    return 0;
}

static int check_lists(struct sweep *sw, char *err, size_t errlen)
{
    const struct list_rule rules[] = {
        { "--policies", &sw->policies, ITEM_POLICY, 0, 0, "a policy" },
        { "--loads", &sw->loads, ITEM_PERCENT, 0, 0, "a percentage (0.1..1000)" },
        { "--sizes", &sw->sizes, ITEM_UINT, BENCH_MIN_SIZE, BENCH_MAX_SIZE, "a frame size" },
        { "--vms", &sw->vms, ITEM_UINT, 1, BENCH_MAX_VMS, "a number of VMs" },
        { "--streams", &sw->streams, ITEM_UINT, 1, 8, "a number of streams" },
        { "--workloads", &sw->workloads, ITEM_WORKLOAD, 0, 0, "a workload" },
    };
    for (size_t r = 0; r < sizeof(rules) / sizeof(rules[0]); r++) {
        const struct list_rule *rule = &rules[r];
        for (unsigned i = 0; i < rule->l->n; i++) {
            const char *v = rule->l->v[i];
            if (item_ok(rule, v))
                continue;
            if (rule->kind == ITEM_UINT)
                snprintf(err, errlen, "%s: '%s' is not %s (%u..%u)", rule->opt, v, rule->what,
                         rule->lo, rule->hi);
            else
                snprintf(err, errlen, "%s: '%s' is not %s", rule->opt, v, rule->what);
            return -1;
        }
    }
    return 0;
}

int sweep_main(int argc, char **argv)
{
    static const struct option own[] = {
        { "preset", required_argument, NULL, SO_PRESET },
        { "policies", required_argument, NULL, SO_POLICIES },
        { "loads", required_argument, NULL, SO_LOADS },
        { "sizes", required_argument, NULL, SO_SIZES },
        { "vms", required_argument, NULL, SO_VMS },
        { "streams", required_argument, NULL, SO_STREAMS },
        { "workloads", required_argument, NULL, SO_WORKLOADS },
        { "seconds", required_argument, NULL, SO_SECONDS },
        { "out", required_argument, NULL, SO_OUT },
        { "dpdk", no_argument, NULL, SO_DPDK },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    static struct cli cli;
    cli_init(&cli, 0, own);
    static struct sweep sw;
    memset(&sw, 0, sizeof sw);
    cfg_defaults(&sw.base);
    char err[512];
    int o;
    size_t cl = (size_t)snprintf(sw.command, sizeof sw.command, "lwvhost-bench");
    for (int i = 0; i < argc && cl < sizeof sw.command; i++)
        cl += (size_t)snprintf(sw.command + cl, sizeof sw.command - cl, " %s", argv[i]);
    optind = 1;
    opterr = 0;
    while ((o = getopt_long(argc, argv, ":hv", cli.longopts, NULL)) != -1) {
        const char *name = cli_option_name(&cli, o);
        struct list *l = NULL;
        switch (o) {
        case 'h':
            sweep_usage(stdout);
            return EXIT_OK;
        case SO_PRESET:
            if (strcmp(optarg, "research") && strcmp(optarg, "demo")) {
                fprintf(stderr, "lwvhost-bench sweep: unknown preset '%s' (research, demo)\n",
                        optarg);
                return EXIT_USAGE;
            }
            sw.preset = optarg;
            break;
        case SO_POLICIES: l = &sw.policies; break;
        case SO_LOADS: l = &sw.loads; break;
        case SO_SIZES: l = &sw.sizes; break;
        case SO_VMS: l = &sw.vms; break;
        case SO_STREAMS: l = &sw.streams; break;
        case SO_WORKLOADS: l = &sw.workloads; break;
        case SO_SECONDS:
            if (parse_double(optarg, 0.05, 3600, &sw.seconds)) {
                fprintf(stderr, "lwvhost-bench sweep: bad value '%s' for --seconds\n", optarg);
                return EXIT_USAGE;
            }
            sw.seconds_given = 1;
            break;
        case SO_OUT:
            sw.out = optarg;
            break;
        case SO_DPDK:
            sw.dpdk = 1;
            break;
        default:
            if (!strcmp(name, "backend")) {
                fprintf(stderr, "lwvhost-bench sweep: use --dpdk to add DPDK's rows\n");
                return EXIT_USAGE;
            }
            if (cli_take(&cli, "sweep", o, argv, &sw.base))
                return EXIT_USAGE;
        }
        if (l && split_list(optarg, l)) {
            fprintf(stderr, "lwvhost-bench sweep: bad list '%s' for --%s (comma-separated, at "
                            "most %d)\n", optarg, name, MAXL);
            return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "lwvhost-bench sweep: unexpected argument '%s'\n", argv[optind]);
        return EXIT_USAGE;
    }
    if (!sw.out) {
        fprintf(stderr, "lwvhost-bench sweep: --out DIR is required\n");
        return EXIT_USAGE;
    }
    /* The preset, then the defaults, for what was not given (set_list
     * leaves a given list alone).  The demo preset is the defaults. */
    if (sw.preset && !strcmp(sw.preset, "research")) {
        set_list(&sw.workloads, "stream,tcp");
        set_list(&sw.sizes, "64,1024");
        set_list(&sw.vms, "2,12");
        set_list(&sw.streams, "1,4");
        if (!sw.seconds_given)
            sw.seconds = 5;
    }
    set_list(&sw.policies, "notify,interval:50,adaptive,poll");
    set_list(&sw.loads, "1,5,10,25,50,100");
    set_list(&sw.sizes, "64");
    set_list(&sw.vms, "2");
    set_list(&sw.streams, "1");
    set_list(&sw.workloads, "stream");
    if (!sw.seconds_given && sw.seconds == 0)
        sw.seconds = 3;
    if (check_lists(&sw, err, sizeof err)) {
        fprintf(stderr, "lwvhost-bench sweep: %s\n", err);
        return EXIT_USAGE;
    }
    sw.base.seconds = sw.seconds;
    /* every configuration must be valid before anything runs */
    for (unsigned w = 0; w < sw.workloads.n; w++)
        for (unsigned v = 0; v < sw.vms.n; v++) {
            struct bench_cfg c = sw.base;
            c.wl = (enum workload)parse_workload(sw.workloads.v[w]);
            c.vms = (unsigned)atoi(sw.vms.v[v]);
            if (cfg_check(&c, err, sizeof err)) {
                fprintf(stderr, "lwvhost-bench sweep: %s %s VMs: %s\n", sw.workloads.v[w],
                        sw.vms.v[v], err);
                return EXIT_USAGE;
            }
            if (sw.dpdk && (c.backend = BK_DPDK, cfg_check(&c, err, sizeof err))) {
                fprintf(stderr, "lwvhost-bench sweep: --dpdk: %s\n", err);
                return EXIT_USAGE;
            }
        }

    if (!sw.base.attach_ctl && access(sw.base.lwvhostd, X_OK) < 0) {
        fprintf(stderr, "lwvhost-bench sweep: %s: %s (build it with make, or give --lwvhostd "
                        "PATH)\n", sw.base.lwvhostd, strerror(errno));
        return EXIT_FAIL;
    }
    if (sw.base.attach_ctl)
        sw.has_policy = 1;      /* runtime "policy all"; a refusal fails the run */
    else
        sw.has_policy = lwvhostd_has_policy(sw.base.lwvhostd);
    if (!sw.has_policy) {
        fprintf(stderr, "lwvhost-bench sweep: note: %s has no --policy; measuring its built-in "
                        "behaviour only (policy \"default\")\n", sw.base.lwvhostd);
        split_list("default", &sw.policies);
    }
    if (mkdir(sw.out, 0755) < 0 && errno != EEXIST) {
        fprintf(stderr, "lwvhost-bench sweep: %s: %s\n", sw.out, strerror(errno));
        return EXIT_FAIL;
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/results.csv", sw.out);
    sw.csv = fopen(path, "w");
    if (!sw.csv) {
        fprintf(stderr, "lwvhost-bench sweep: %s: %s\n", path, strerror(errno));
        return EXIT_FAIL;
    }
    report_csv_header(sw.csv);
    bench_install_signals();
    sw.base.quiet = 1;

    unsigned nconf = sw.workloads.n * sw.sizes.n * sw.vms.n * sw.streams.n;
    unsigned per = 1 + sw.policies.n * sw.loads.n + (sw.dpdk ? 1 + sw.loads.n : 0);
    unsigned total = nconf * per, idx = 0;
    printf("lwvhost-bench sweep: %u configurations, %u runs of %g s (+%g s warm-up); results "
           "in %s\n", nconf, total, sw.seconds, sw.base.warmup, sw.out);
    for (unsigned w = 0; w < sw.workloads.n && !bench_stop_requested; w++)
    for (unsigned z = 0; z < sw.sizes.n && !bench_stop_requested; z++)
    for (unsigned v = 0; v < sw.vms.n && !bench_stop_requested; v++)
    for (unsigned m = 0; m < sw.streams.n && !bench_stop_requested; m++) {
        struct bench_cfg c = sw.base;
        c.wl = (enum workload)parse_workload(sw.workloads.v[w]);
        c.size = (unsigned)atoi(sw.sizes.v[z]);
        c.vms = (unsigned)atoi(sw.vms.v[v]);
        c.streams = (unsigned)atoi(sw.streams.v[m]);
        c.rate = 0;
        snprintf(c.policy, sizeof c.policy, "%s", sw.has_policy ? "poll" : "");
        struct bench_result peak;
        if (one_run(&sw, &c, "peak", NAN, ++idx, total, &peak) || !(peak.data_pps > 0)) {
            printf("        no peak rate for this configuration: skipping its loads\n");
            idx += per - 1;
            continue;
        }
        double peak_rate = peak.data_pps;
        for (unsigned p = 0; p < sw.policies.n && !bench_stop_requested; p++)
            for (unsigned l = 0; l < sw.loads.n && !bench_stop_requested; l++) {
                double pct = atof(sw.loads.v[l]);
                snprintf(c.policy, sizeof c.policy, "%s",
                         strcmp(sw.policies.v[p], "default") ? sw.policies.v[p] : "");
                c.rate = peak_rate * pct / 100.0;
                one_run(&sw, &c, "load", pct, ++idx, total, NULL);
            }
        if (sw.dpdk && !bench_stop_requested) {
            struct bench_cfg d = c;
            d.backend = BK_DPDK;
            d.policy[0] = '\0';
            d.rate = 0;
            if (one_run(&sw, &d, "peak", NAN, ++idx, total, NULL)) {
                idx += sw.loads.n;
                continue;
            }
            for (unsigned l = 0; l < sw.loads.n && !bench_stop_requested; l++) {
                double pct = atof(sw.loads.v[l]);
                d.rate = peak_rate * pct / 100.0;
                one_run(&sw, &d, "load", pct, ++idx, total, NULL);
            }
        }
    }
    fclose(sw.csv);
    struct target t[16 * 64];
    unsigned nt = targets(&sw, t, sizeof t / sizeof t[0]);
    write_output(&sw, "results.json", "%Y-%m-%dT%H:%M:%S%z", write_json, t, nt);
    write_output(&sw, "results.md", "%Y-%m-%d %H:%M", write_md, t, nt);
    write_svgs(&sw);
    /* the table on stdout too */
    snprintf(path, sizeof path, "%s/results.md", sw.out);
    FILE *f = fopen(path, "r");
    if (f) {
        char line[1024];
        printf("\n");
        while (fgets(line, sizeof line, f))
            if (line[0] == '|' || line[0] == '#')
                fputs(line, stdout);
        fclose(f);
    }
    printf("\nresults: %s/results.{csv,json,md}, %s/*.svg\n", sw.out, sw.out);
    free(sw.res);
    if (bench_stop_requested) {
        fprintf(stderr, "lwvhost-bench sweep: interrupted\n");
        return EXIT_FAIL;
    }
    return sw.failed ? EXIT_FAIL : EXIT_OK;
}
