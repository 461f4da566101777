/*
 * main.c - lwvhost-bench command line: `run` (one measured run) and
 * `sweep` (sweep.c).  Exit codes: 0 ok, 1 run failed, 2 usage.
 */
#define _GNU_SOURCE
#include "bench.h"
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vuf.h"

static void on_signal(int sig)
{
    (void)sig;
    bench_stop_requested = 1;
}

void bench_install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

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
    memset(c, 0, sizeof *c);
    c->wl = WL_STREAM;
    c->size = 64;
    c->vms = 2;
    c->streams = 1;
    c->rate = 0;
    c->seconds = 3;
    c->warmup = 0.5;
    c->topo = TOPO_PAIRS;
    c->backend = BK_LWVHOSTD;
    c->window = 64;
    c->inflight = 1;
    c->ring = 256;
    c->backend_cpu = 0;
    c->bench_cpu = 1;
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
    if (c->topo == TOPO_SINK && c->wl != WL_STREAM) {
        snprintf(err, errlen, "--topology sink has nobody to answer: use --workload stream");
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
    if (c->ring & (c->ring - 1)) {
        snprintf(err, errlen, "--ring must be a power of two");
        return -1;
    }
    return 0;
}

int common_option(int id, const char *arg, struct bench_cfg *c, char *err, size_t errlen)
{
    int v;
    switch (id) {
    case OPT_WORKLOAD:
        if ((v = parse_workload(arg)) < 0)
            goto bad;
        c->wl = (enum workload)v;
        return 0;
    case OPT_TOPOLOGY:
        if ((v = parse_topology(arg)) < 0)
            goto bad;
        c->topo = (enum topology)v;
        return 0;
    case OPT_BACKEND:
        if ((v = parse_backend(arg)) < 0)
            goto bad;
        c->backend = (enum backend_kind)v;
        return 0;
    case OPT_WARMUP:
        return parse_double(arg, 0, 60, &c->warmup) ? (snprintf(err, errlen, "--warmup: 0..60 seconds"), -1) : 0;
    case OPT_WINDOW:
        return parse_uint(arg, 2, 32768, &c->window) ? (snprintf(err, errlen, "--window: 2..32768 frames"), -1) : 0;
    case OPT_INFLIGHT:
        return parse_uint(arg, 1, 16384, &c->inflight) ? (snprintf(err, errlen, "--inflight: 1..16384"), -1) : 0;
    case OPT_RING:
        return parse_uint(arg, 64, 4096, &c->ring) ? (snprintf(err, errlen, "--ring: 64..4096"), -1) : 0;
    case OPT_WORKERS:
        return parse_uint(arg, 1, 64, &c->workers) ? (snprintf(err, errlen, "--workers: 1..64"), -1) : 0;
    case OPT_BACKEND_CPU:
        return parse_uint(arg, 0, 4095, (unsigned *)&c->backend_cpu) ? (snprintf(err, errlen, "--backend-cpu: a CPU number"), -1) : 0;
    case OPT_BENCH_CPU:
        return parse_uint(arg, 0, 4095, (unsigned *)&c->bench_cpu) ? (snprintf(err, errlen, "--bench-cpu: a CPU number"), -1) : 0;
    case OPT_NO_PIN:
        c->backend_cpu = c->bench_cpu = -1;
        return 0;
    case OPT_ATTACH:
        c->attach_ctl = arg;
        return 0;
    case OPT_SOCK_DIR:
        c->sock_dir = arg;
        return 0;
    case OPT_LWVHOSTD:
        c->lwvhostd = arg;
        return 0;
    case OPT_TESTPMD:
        c->testpmd = arg;
        return 0;
    case OPT_KEEP_DIR:
        c->keep_dir = arg;
        return 0;
    case OPT_NICE: {
        char *end;
        long nv = strtol(arg, &end, 10);
        if (*end || end == arg || nv < -20 || nv > 19) {
            snprintf(err, errlen, "--nice: -20..19");
            return -1;
        }
        c->nice = (int)nv;
        return 0;
    }
    case OPT_RX_IRQ:
        if (strcmp(arg, "on") && strcmp(arg, "off"))
            goto bad;
        c->rx_irq_off = !strcmp(arg, "off");
        return 0;
    case OPT_QUIET_WAIT:
        return parse_double(arg, 0, 86400, &c->quiet_wait) ? (snprintf(err, errlen, "--quiet-wait: seconds"), -1) : 0;
    case 'v':
        c->verbose = 1;
        return 0;
    default:
        snprintf(err, errlen, "unknown option");
        return -1;
    }
bad:
    snprintf(err, errlen, "unknown value '%s'", arg);
    return -1;
}

/* Last lines of the backend's log, for error messages. */
static void append_log_tail(const struct backend *b, char *err, size_t errlen)
{
    if (!b->log[0])
        return;
    FILE *f = fopen(b->log, "r");
    if (!f)
        return;
    char line[256], last[3][256] = { "", "", "" };
    unsigned n = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        if (line[0])
            snprintf(last[n++ % 3], sizeof last[0], "%s", line);
    }
    fclose(f);
    size_t len = strlen(err);
    for (unsigned i = n > 3 ? n - 3 : 0; i < n && len + 8 < errlen; i++) {
        snprintf(err + len, errlen - len, "%s%s", i == (n > 3 ? n - 3 : 0) ? " [backend log: " : " | ",
                 last[i % 3]);
        len = strlen(err);
    }
    if (n && len + 2 < errlen)
        strcat(err, "]");
}

/* Waits up to `secs` for the machine to be idle: under 15 % of one core
 * busy over two consecutive half seconds.  1 if it was, 0 if not. */
static int wait_quiet(double secs)
{
    double tick = (double)clock_ticks();
    int good = 0;
    for (int64_t end = now_ns() + (int64_t)(secs * 1e9); now_ns() < end && !bench_stop_requested;) {
        uint64_t b0, t0, b1, t1;
        if (proc_cpu_jiffies(&b0, &t0))
            return 0;
        usleep(500000);
        if (proc_cpu_jiffies(&b1, &t1))
            return 0;
        double busy = (double)(b1 - b0) / tick / 0.5 * 100.0;
        good = busy < 15.0 ? good + 1 : 0;
        if (good >= 2)
            return 1;
    }
    return 0;
}

static void pin_bench(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    if (cpu < 0) {
        for (int i = 0; i < online_cpus() && i < CPU_SETSIZE; i++)
            CPU_SET(i, &set);
    } else {
        CPU_SET(cpu, &set);
    }
    sched_setaffinity(0, sizeof set, &set);
}

int bench_run_once(const struct bench_cfg *c0, struct bench_result *r, char *err, size_t errlen)
{
    struct bench_cfg cfg = *c0;
    struct bench_cfg *c = &cfg;
    result_init(r, c);
    if (online_cpus() < 2 || c->backend_cpu >= online_cpus() || c->bench_cpu >= online_cpus()) {
        if (c->backend_cpu >= 0 && !c->quiet)
            fprintf(stderr, "lwvhost-bench: warning: not pinning (%d CPUs online)\n",
                    online_cpus());
        c->backend_cpu = c->bench_cpu = -1;
    }
    if (c->backend == BK_LWVHOSTD && !c->attach_ctl && access(c->lwvhostd, X_OK) < 0) {
        snprintf(err, errlen, "%s: %s (build it with make, or give --lwvhostd PATH)",
                 c->lwvhostd, strerror(errno));
        return -1;
    }
    if (c->backend == BK_LWVHOSTD && !c->attach_ctl && c->policy[0] &&
        !lwvhostd_has_policy(c->lwvhostd)) {
        snprintf(err, errlen, "%s has no --policy option (its --help does not mention it)",
                 c->lwvhostd);
        return -1;
    }
    if (c->quiet_wait > 0 && !wait_quiet(c->quiet_wait)) {
        size_t n = strlen(r->warnings);
        snprintf(r->warnings + n, sizeof r->warnings - n, "%sthe machine was not idle after "
                 "waiting %.0f s", n ? "; " : "", c->quiet_wait);
    }
    struct backend b;
    if (backend_start(&b, c, err, errlen))
        return -1;
    pin_bench(c->bench_cpu);
    int old_nice = getpriority(PRIO_PROCESS, 0);
    if (c->nice && setpriority(PRIO_PROCESS, 0, c->nice) < 0 && !c->quiet)
        fprintf(stderr, "lwvhost-bench: warning: --nice %d: %s\n", c->nice, strerror(errno));
    int rc = engine_run(c, &b, r, err, errlen);
    if (rc)
        append_log_tail(&b, err, errlen);
    backend_stop(&b);
    pin_bench(-1);
    if (c->nice)
        setpriority(PRIO_PROCESS, 0, old_nice);
    return rc;
}

/* ---------------------------------------------------------------- run */

static void run_usage(FILE *f)
{
    fprintf(f,
"Usage: lwvhost-bench run [OPTIONS]\n"
"One measured run: starts the backend (lwvhostd, or DPDK testpmd with --backend\n"
"dpdk) pinned to CPU 0, connects N userspace VMs to it from CPU 1, offers the\n"
"workload, prints throughput, loss, latency, backend CPU and notifications.\n"
"\n"
"Workload:\n"
"  --workload W      stream (one-way frames), tcp (ack every 2nd frame, window),\n"
"                    rr (request/response, latency per transaction); default stream\n"
"  --size BYTES      frame size, Ethernet header included, %u..%u (default 64)\n"
"  --vms N           VMs attached to the backend, 1..%d (default 2)\n"
"  --streams M       queue pairs (flows) per VM, 1..%d (default 1)\n"
"  --rate PPS|max    offered data frames (rr: transactions) per second in all,\n"
"                    paced with a token bucket; k/M suffixes (default max)\n"
"  --seconds S       measured interval (default 3)\n"
"  --warmup S        traffic before the interval (default 0.5)\n"
"  --topology T      pairs (VM 2i -> VM 2i+1), many-to-one (VM i -> VM 0), sink\n"
"                    (frames end in the backend) (default pairs)\n"
"  --window N        tcp: data frames in flight per flow (default 64)\n"
"  --inflight N      rr: transactions in flight per flow (default 1)\n"
"  --ring N          virtqueue size (default 256)\n"
"  --rx-irq on|off   on (default): a VM asks for an interrupt whenever it has\n"
"                    drained its RX ring, as a Linux guest does; off: never, as\n"
"                    a polling driver (DPDK virtio-user) does\n"
"Backend:\n"
"  --backend B       lwvhostd (default) or dpdk (testpmd net_vhost, io or rxonly)\n"
"  --policy P        lwvhostd notification policy: notify, poll, interval:USEC,\n"
"                    adaptive[:LATENCY_USEC] (needs an lwvhostd that has --policy)\n"
"  --workers N       lwvhostd worker threads\n"
"  --attach CTLSOCK  use a running lwvhostd (its control socket) ...\n"
"  --sock-dir DIR    ... whose ports vm0..vmN-1 listen on DIR/vmI.sock\n"
"  --backend-cpu C   CPU for the backend (default 0)\n"
"  --bench-cpu C     CPU for the bench (default 1)\n"
"  --no-pin          pin nothing\n"
"  --lwvhostd PATH   (default: next to this binary, or $LWVHOSTD)\n"
"  --testpmd PATH    (default dpdk-testpmd, or $DPDK_TESTPMD)\n"
"  --keep-dir DIR    put sockets and the backend log in DIR and keep them\n"
"  --quiet-wait S    first wait up to S seconds for the machine to be idle (other\n"
"                    work skews the figures; the report shows how busy it was)\n"
"  --nice N          run the backend and the bench at niceness N (-20..19; negative\n"
"                    needs root): less disturbed by other work on the same CPUs\n"
"Output:\n"
"  --json            print the figures as one JSON object\n"
"  --csv FILE        append the figures as a CSV row (header if FILE is new)\n"
"  -v, --verbose     show the backend command line\n"
"  -h, --help        this help\n"
"Exit status: 0 ok, 1 the run failed, 2 bad usage.\n",
            BENCH_MIN_SIZE, BENCH_MAX_SIZE, BENCH_MAX_VMS, VUF_MAX_QP);
}

static int run_main(int argc, char **argv)
{
    static const struct option opts[] = {
        COMMON_LONG_OPTIONS,
        { "size", required_argument, NULL, 's' },
        { "vms", required_argument, NULL, 'n' },
        { "streams", required_argument, NULL, 'm' },
        { "rate", required_argument, NULL, 'r' },
        { "seconds", required_argument, NULL, 't' },
        { "policy", required_argument, NULL, 'p' },
        { "json", no_argument, NULL, 'j' },
        { "csv", required_argument, NULL, 'c' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct bench_cfg c;
    cfg_defaults(&c);
    int json = 0, o;
    const char *csv = NULL;
    char err[512];
    optind = 1;
    opterr = 0;
    while ((o = getopt_long(argc, argv, "hvs:n:m:r:t:p:jc:", opts, NULL)) != -1) {
        const char *name = argv[optind - 1];
        switch (o) {
        case 'h':
            run_usage(stdout);
            return EXIT_OK;
        case 's':
            if (parse_uint(optarg, BENCH_MIN_SIZE, BENCH_MAX_SIZE, &c.size))
                goto bad_value;
            break;
        case 'n':
            if (parse_uint(optarg, 1, BENCH_MAX_VMS, &c.vms))
                goto bad_value;
            break;
        case 'm':
            if (parse_uint(optarg, 1, VUF_MAX_QP, &c.streams))
                goto bad_value;
            break;
        case 'r':
            if (parse_rate(optarg, &c.rate))
                goto bad_value;
            break;
        case 't':
            if (parse_double(optarg, 0.05, 3600, &c.seconds))
                goto bad_value;
            break;
        case 'p':
            if (check_policy(optarg) || strlen(optarg) >= sizeof c.policy)
                goto bad_value;
            snprintf(c.policy, sizeof c.policy, "%s", optarg);
            break;
        case 'j':
            json = 1;
            break;
        case 'c':
            csv = optarg;
            break;
        case '?':
            fprintf(stderr, "lwvhost-bench run: unknown option or missing value: %s\n"
                            "Try 'lwvhost-bench run --help'.\n", name);
            return EXIT_USAGE;
        default:
            if (common_option(o, optarg, &c, err, sizeof err)) {
                fprintf(stderr, "lwvhost-bench run: %s: %s\n", name, err);
                return EXIT_USAGE;
            }
        }
        continue;
bad_value:
        fprintf(stderr, "lwvhost-bench run: bad value '%s' for %s (see --help)\n", optarg, name);
        return EXIT_USAGE;
    }
    if (optind < argc) {
        fprintf(stderr, "lwvhost-bench run: unexpected argument '%s'\n", argv[optind]);
        return EXIT_USAGE;
    }
    if (cfg_check(&c, err, sizeof err)) {
        fprintf(stderr, "lwvhost-bench run: %s\n", err);
        return EXIT_USAGE;
    }
    bench_install_signals();
    struct bench_result r;
    if (bench_run_once(&c, &r, err, sizeof err)) {
        fprintf(stderr, "lwvhost-bench run: failed: %s\n", err);
        return EXIT_FAIL;
    }
    if (json) {
        report_json(stdout, &r, 0);
        fputc('\n', stdout);
        if (r.warnings[0])
            fprintf(stderr, "lwvhost-bench: warning: %s\n", r.warnings);
    } else {
        report_text(stdout, &r);
    }
    if (csv && report_csv_append(csv, &r)) {
        fprintf(stderr, "lwvhost-bench run: %s: %s\n", csv, strerror(errno));
        return EXIT_FAIL;
    }
    return EXIT_OK;
}

static void usage(FILE *f)
{
    fprintf(f,
"Usage: lwvhost-bench COMMAND [OPTIONS]\n"
"Benchmark of vhost-user backends with userspace VMs (no hypervisor).\n"
"Commands:\n"
"  run      one measured run (lwvhost-bench run --help)\n"
"  sweep    notification policies x offered loads x configurations, with CSV,\n"
"           JSON, a Markdown table and SVG plots (lwvhost-bench sweep --help)\n"
"  help [COMMAND]\n"
"Exit status: 0 ok, 1 a run failed, 2 bad usage.\n");
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help")) {
        usage(stdout);
        return EXIT_OK;
    }
    if (!strcmp(cmd, "help")) {
        if (argc > 2 && !strcmp(argv[2], "run"))
            run_usage(stdout);
        else if (argc > 2 && !strcmp(argv[2], "sweep"))
            sweep_usage(stdout);
        else
            usage(stdout);
        return EXIT_OK;
    }
    if (!strcmp(cmd, "run"))
        return run_main(argc - 1, argv + 1);
    if (!strcmp(cmd, "sweep"))
        return sweep_main(argc - 1, argv + 1);
    fprintf(stderr, "lwvhost-bench: unknown command '%s'\n", cmd);
    usage(stderr);
    return EXIT_USAGE;
}
