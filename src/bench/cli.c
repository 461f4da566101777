/*
 * cli.c - the command-line pieces `run` and `sweep` share: value parsers,
 * the configuration's defaults and consistency check, and one table of the
 * options that set a struct bench_cfg field (name, kind of value, range,
 * field).  Must not run anything: main.c and sweep.c do.
 */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "vuf.h"

int parse_workload(const char *s)
{
    if (!strcmp(s, "stream")) return WL_STREAM;
    if (!strcmp(s, "tcp")) return WL_TCP;
    if (!strcmp(s, "rr")) return WL_RR;
    return -1;
}

int parse_topology(const char *s)
{
    if (!strcmp(s, "pairs")) return TOPO_PAIRS;
    if (!strcmp(s, "many-to-one") || !strcmp(s, "m2o")) return TOPO_M2O;
    if (!strcmp(s, "sink")) return TOPO_SINK;
    if (!strcmp(s, "out")) return TOPO_OUT;
    return -1;
}

int parse_backend(const char *s)
{
    if (!strcmp(s, "lwvhostd")) return BK_LWVHOSTD;
    if (!strcmp(s, "dpdk")) return BK_DPDK;
    return -1;
}

int check_policy(const char *s)
{
    const char *colon = strchr(s, ':');
    size_t n = colon ? (size_t)(colon - s) : strlen(s);
    int need_arg = 0, may_arg = 0;
    if (n == 6 && !strncmp(s, "notify", n)) {
    } else if (n == 4 && !strncmp(s, "poll", n)) {
    } else if (n == 8 && !strncmp(s, "interval", n)) {
        need_arg = may_arg = 1;
    } else if (n == 8 && !strncmp(s, "adaptive", n)) {
        may_arg = 1;
    } else {
        return -1;
    }
    if (colon) {
        if (!may_arg)
            return -1;
        char *end;
        errno = 0;
        unsigned long v = strtoul(colon + 1, &end, 10);
        if (errno || end == colon + 1 || *end || v == 0 || v > 10000000)
            return -1;
    } else if (need_arg) {
        return -1;
    }
    return 0;
}

int parse_uint(const char *s, unsigned min, unsigned max, unsigned *out)
{
    char *end;
    errno = 0;
    if (!*s || *s == '-')
        return -1;
    unsigned long v = strtoul(s, &end, 0);
    if (errno || *end || v < min || v > max)
        return -1;
    *out = (unsigned)v;
    return 0;
}

int parse_double(const char *s, double min, double max, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || isnan(v) || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* PPS with an optional k/M suffix, or "max" (0). */
int parse_rate(const char *s, double *out)
{
    if (!strcmp(s, "max")) {
        *out = 0;
        return 0;
    }
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || isnan(v) || v <= 0)
        return -1;
    if (*end == 'k' || *end == 'K') {
        v *= 1e3;
        end++;
    } else if (*end == 'M' || *end == 'm') {
        v *= 1e6;
        end++;
    }
    if (*end || v > 1e9)
        return -1;
    *out = v;
    return 0;
}

void cfg_defaults(struct bench_cfg *c)
{
    *c = (struct bench_cfg){
        .wl = WL_STREAM,
        .size = 64,
        .vms = 2,
        .streams = 1,
        .rate = 0,          /* max */
        .seconds = 3,
        .warmup = 0.5,
        .topo = TOPO_PAIRS,
        .backend = BK_LWVHOSTD,
        .window = 64,
        .inflight = 1,
        .ring = 256,
        .backend_cpu = 0,
        .bench_cpu = 1,
    };
    bench_default_paths(c);
}

int cfg_check(const struct bench_cfg *c, char *err, size_t errlen)
{
    if (c->topo == TOPO_PAIRS && (c->vms < 2 || c->vms % 2)) {
        snprintf(err, errlen, "--topology pairs needs an even number of VMs (got %u; for one "
                 "VM use --topology sink)", c->vms);
        return -1;
    }
    if (c->topo == TOPO_M2O && c->vms < 2) {
        snprintf(err, errlen, "--topology many-to-one needs at least 2 VMs");
        return -1;
    }
    if (topo_one_way(c->topo) && c->wl != WL_STREAM) {
        snprintf(err, errlen, "--topology %s has nobody to answer: use --workload stream",
                 topology_name(c->topo));
        return -1;
    }
    if (c->backend == BK_DPDK && c->topo == TOPO_OUT) {
        snprintf(err, errlen, "--topology out needs lwvhostd with a tap, uplink or VXLAN port "
                 "(--attach)");
        return -1;
    }
    if (c->backend == BK_DPDK && c->topo == TOPO_M2O) {
        snprintf(err, errlen, "--backend dpdk pairs its ports (io forwarding): use --topology "
                 "pairs or sink");
        return -1;
    }
    if (c->backend == BK_DPDK && c->policy[0]) {
        snprintf(err, errlen, "--policy applies to lwvhostd only");
        return -1;
    }
    if (c->backend == BK_DPDK && c->attach_ctl) {
        snprintf(err, errlen, "--attach works with lwvhostd only");
        return -1;
    }
    if (!!c->attach_ctl != !!c->sock_dir) {
        snprintf(err, errlen, "--attach CTLSOCK and --sock-dir DIR go together");
        return -1;
    }
    if (c->wl == WL_TCP && (c->window < 2 || c->window > c->ring)) {
        snprintf(err, errlen, "--window must be 2..%u (the ring size)", c->ring);
        return -1;
    }
    if (c->wl == WL_RR && c->inflight > c->ring / 2) {
        snprintf(err, errlen, "--inflight must be 1..%u (half the ring)", c->ring / 2);
        return -1;
    }
    if (!c->packed && (c->ring & (c->ring - 1))) {
        snprintf(err, errlen, "--ring-size must be a power of two with split rings (packed "
                 "rings take any size)");
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------ option table */

/* How an option's value is read and where it goes. */
enum cfg_kind {
    CFG_UINT,      /* unsigned, lo..hi */
    CFG_INT,       /* int, lo..hi (may be negative) */
    CFG_DOUBLE,    /* double, lo..hi */
    CFG_RATE,      /* double: frames/s with k/M, or max (0) */
    CFG_STRING,    /* const char *, kept as given */
    CFG_POLICY,    /* char[] policy, checked */
    CFG_CHOICE,    /* an enum, through choose() */
    CFG_OFF,       /* int: on -> 0, off -> 1 */
    CFG_FLAG,      /* int: set to 1 (no value) */
    CFG_NO_PIN,    /* both CPUs -1 (no value) */
    CFG_RING,      /* split or packed (packed), or the old spelling of the
                      ring size: a number, as CFG_UINT into field */
};

struct cfg_opt {
    const char *name;
    char letter;          /* short option, or 0 */
    enum cfg_kind kind;
    size_t field;         /* offsetof(struct bench_cfg, ...) */
    double lo, hi;
    const char *what;     /* what a good value is, for the error message */
    int (*choose)(const char *);   /* CFG_CHOICE: the enum value, or -1 */
};

_Static_assert(sizeof(enum workload) == sizeof(int) && sizeof(enum topology) == sizeof(int) &&
                   sizeof(enum backend_kind) == sizeof(int),
               "CFG_CHOICE stores enums as int");

#define FIELD(f) offsetof(struct bench_cfg, f)

/* Options every command takes. */
static const struct cfg_opt common_opts[] = {
    { "workload", 0, CFG_CHOICE, FIELD(wl), 0, 0, "stream, tcp or rr", parse_workload },
    { "topology", 0, CFG_CHOICE, FIELD(topo), 0, 0, "pairs, many-to-one, sink or out",
      parse_topology },
    { "backend", 0, CFG_CHOICE, FIELD(backend), 0, 0, "lwvhostd or dpdk", parse_backend },
    { "warmup", 0, CFG_DOUBLE, FIELD(warmup), 0, 60, "a number of seconds", NULL },
    { "window", 0, CFG_UINT, FIELD(window), 2, 32768, "a number of frames", NULL },
    { "inflight", 0, CFG_UINT, FIELD(inflight), 1, 16384, "a number of transactions", NULL },
    { "ring", 0, CFG_RING, FIELD(ring), 64, 4096, "split, packed or a ring size", NULL },
    { "ring-size", 0, CFG_UINT, FIELD(ring), 64, 4096, "a ring size", NULL },
    { "workers", 0, CFG_UINT, FIELD(workers), 1, 64, "a number of threads", NULL },
    { "backend-cpu", 0, CFG_INT, FIELD(backend_cpu), 0, 4095, "a CPU number", NULL },
    { "bench-cpu", 0, CFG_INT, FIELD(bench_cpu), 0, 4095, "a CPU number", NULL },
    { "no-pin", 0, CFG_NO_PIN, 0, 0, 0, NULL, NULL },
    { "attach", 0, CFG_STRING, FIELD(attach_ctl), 0, 0, NULL, NULL },
    { "sock-dir", 0, CFG_STRING, FIELD(sock_dir), 0, 0, NULL, NULL },
    { "lwvhostd", 0, CFG_STRING, FIELD(lwvhostd), 0, 0, NULL, NULL },
    { "testpmd", 0, CFG_STRING, FIELD(testpmd), 0, 0, NULL, NULL },
    { "keep-dir", 0, CFG_STRING, FIELD(keep_dir), 0, 0, NULL, NULL },
    { "quiet-wait", 0, CFG_DOUBLE, FIELD(quiet_wait), 0, 86400, "a number of seconds", NULL },
    { "nice", 0, CFG_INT, FIELD(nice), -20, 19, "a niceness", NULL },
    { "rx-irq", 0, CFG_OFF, FIELD(rx_irq_off), 0, 0, "on or off", NULL },
    { "verbose", 'v', CFG_FLAG, FIELD(verbose), 0, 0, NULL, NULL },
    { NULL, 0, CFG_FLAG, 0, 0, 0, NULL, NULL },
};

/* Options of `run` alone (sweep takes lists of these instead). */
static const struct cfg_opt run_opts[] = {
    { "size", 's', CFG_UINT, FIELD(size), BENCH_MIN_SIZE, BENCH_MAX_SIZE, "a frame size", NULL },
    { "vms", 'n', CFG_UINT, FIELD(vms), 1, BENCH_MAX_VMS, "a number of VMs", NULL },
    { "streams", 'm', CFG_UINT, FIELD(streams), 1, VUF_MAX_QP, "a number of queue pairs", NULL },
    { "rate", 'r', CFG_RATE, FIELD(rate), 0, 0, "frames/s (k/M suffixes) or max", NULL },
    { "seconds", 't', CFG_DOUBLE, FIELD(seconds), 0.05, 3600, "a number of seconds", NULL },
    { "policy", 'p', CFG_POLICY, FIELD(policy), 0, 0,
      "notify, poll, interval:USEC or adaptive[:USEC]", NULL },
    { NULL, 0, CFG_FLAG, 0, 0, 0, NULL, NULL },
};

#undef FIELD

/* Parses arg as row r says into c; -1 if it is not a good value. */
static int take_value(const struct cfg_opt *r, const char *arg, struct bench_cfg *c)
{
    void *to = (char *)c + r->field;
    unsigned u;
    int v;
    switch (r->kind) {
    case CFG_UINT:
        return parse_uint(arg, (unsigned)r->lo, (unsigned)r->hi, to);
    case CFG_INT:
        /* Negative values in range (niceness) parse after their sign. */
        if (arg[0] == '-' && r->lo < 0 && !parse_uint(arg + 1, 0, (unsigned)-r->lo, &u)) {
            *(int *)to = -(int)u;
            return 0;
        }
        if (parse_uint(arg, 0, (unsigned)r->hi, &u))
            return -1;
        *(int *)to = (int)u;
        return 0;
    case CFG_DOUBLE:
        return parse_double(arg, r->lo, r->hi, to);
    case CFG_RATE:
        return parse_rate(arg, to);
    case CFG_STRING:
        *(const char **)to = arg;
        return 0;
    case CFG_POLICY:
        if (check_policy(arg) || strlen(arg) >= sizeof(c->policy))
            return -1;
        snprintf(c->policy, sizeof(c->policy), "%s", arg);
        return 0;
    case CFG_CHOICE:
        if ((v = r->choose(arg)) < 0)
            return -1;
        *(int *)to = v;
        return 0;
    case CFG_OFF:
        if (strcmp(arg, "on") && strcmp(arg, "off"))
            return -1;
        *(int *)to = !strcmp(arg, "off");
        return 0;
    case CFG_FLAG:
        *(int *)to = 1;
        return 0;
    case CFG_NO_PIN:
        c->backend_cpu = c->bench_cpu = -1;
        return 0;
    case CFG_RING:
        if (!strcmp(arg, "split") || !strcmp(arg, "packed")) {
            c->packed = !strcmp(arg, "packed");
            return 0;
        }
        return parse_uint(arg, (unsigned)r->lo, (unsigned)r->hi, to);
    }
    return -1;
}

static unsigned add_rows(struct cli *cli, const struct cfg_opt *rows)
{
    unsigned n = 0;
    for (; rows[n].name && cli->nrows < CLI_MAX_ROWS; n++) {
        const struct cfg_opt *r = &rows[n];
        int has_arg = r->kind == CFG_FLAG || r->kind == CFG_NO_PIN ? no_argument
                                                                    : required_argument;
        cli->rows[cli->nrows] = r;
        cli->longopts[cli->nopts++] =
            (struct option){ r->name, has_arg, NULL, r->letter ? r->letter : CLI_ROW + (int)cli->nrows };
        cli->nrows++;
    }
    return n;
}

void cli_init(struct cli *cli, int with_run_options, const struct option *own)
{
    memset(cli, 0, sizeof(*cli));
    add_rows(cli, common_opts);
    if (with_run_options)
        add_rows(cli, run_opts);
    for (; own && own->name && cli->nopts < CLI_MAX_OPTS; own++)
        cli->longopts[cli->nopts++] = *own;
    cli->longopts[cli->nopts] = (struct option){ NULL, 0, NULL, 0 };
}

/* The row getopt_long's answer o stands for, or NULL. */
static const struct cfg_opt *find_row(const struct cli *cli, int o)
{
    if (o >= CLI_ROW && o < CLI_ROW + (int)cli->nrows)
        return cli->rows[o - CLI_ROW];
    for (unsigned k = 0; k < cli->nrows; k++)
        if (cli->rows[k]->letter && cli->rows[k]->letter == o)
            return cli->rows[k];
    return NULL;
}

int cli_option(const struct cli *cli, int o, const char *arg, struct bench_cfg *c, char *err,
               size_t errlen)
{
    const struct cfg_opt *r = find_row(cli, o);
    if (!r) {
        snprintf(err, errlen, "--%s: not an option of this command", cli_option_name(cli, o));
        return 1;
    }
    if (take_value(r, arg, c) == 0)
        return 0;
    if (r->kind == CFG_UINT || r->kind == CFG_INT || r->kind == CFG_DOUBLE ||
        r->kind == CFG_RING)
        snprintf(err, errlen, "--%s: '%s' is not %s (%g..%g)", r->name, arg, r->what, r->lo,
                 r->hi);
    else
        snprintf(err, errlen, "--%s: '%s' is not %s", r->name, arg, r->what);
    return -1;
}

const char *cli_option_name(const struct cli *cli, int o)
{
    for (unsigned k = 0; k < cli->nopts; k++)
        if (cli->longopts[k].val == o)
            return cli->longopts[k].name;
    return "?";
}

int cli_take(const struct cli *cli, const char *cmd, int o, char **argv, struct bench_cfg *c)
{
    char err[256];
    if (o == '?' || o == ':') {
        fprintf(stderr, "lwvhost-bench %s: unknown option or missing value: %s\n"
                        "Try 'lwvhost-bench %s --help'.\n", cmd, argv[optind - 1], cmd);
        return -1;
    }
    if (cli_option(cli, o, optarg, c, err, sizeof err)) {
        fprintf(stderr, "lwvhost-bench %s: %s\n", cmd, err);
        return -1;
    }
    return 0;
}
