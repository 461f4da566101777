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
"                    (frames end in the backend), out (frames to a MAC no VM has,\n"
"                    flooded out of lwvhostd's tap, uplink or VXLAN port; use\n"
"                    --attach) (default pairs)\n"
"  --window N        tcp: data frames in flight per flow (default 64)\n"
"  --inflight N      rr: transactions in flight per flow (default 1)\n"
"  --ring split|packed  virtqueue layout (default split); packed needs a backend\n"
"                    that offers VIRTIO_F_RING_PACKED\n"
"  --ring-size N     virtqueue size, 64..4096, a power of two for split rings\n"
"                    (default 256; --ring N is the old spelling)\n"
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
    static const struct option own[] = {
        { "json", no_argument, NULL, 'j' },
        { "csv", required_argument, NULL, 'c' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    static struct cli cli;
    cli_init(&cli, 1, own);
    struct bench_cfg c;
    cfg_defaults(&c);
    int json = 0, o;
    const char *csv = NULL;
    char err[512];
    optind = 1;
    opterr = 0;
    while ((o = getopt_long(argc, argv, ":hvs:n:m:r:t:p:jc:", cli.longopts, NULL)) != -1) {
        switch (o) {
        case 'h':
            run_usage(stdout);
            return EXIT_OK;
        case 'j':
            json = 1;
            break;
        case 'c':
            csv = optarg;
            break;
        default:
            if (cli_take(&cli, "run", o, argv, &c))
                return EXIT_USAGE;
        }
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
