/*
 * lwvhostctl - asks a running lwvhostd about its ports, counters, policies
 * and traces, and changes policies at run time.
 *
 * Owns: the command line of the tool; turns it into control-socket command
 * lines (one per connection) and prints the answers.  Must not interpret
 * the answers beyond spotting an "error:" reply (exit status 1).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_SOCK "/run/lwvhost/ctl.sock"

static void usage(FILE *out)
{
    fprintf(out,
"Usage: lwvhostctl [-s SOCKET] COMMAND [ARGS]\n"
"Commands:\n"
"  ports [--json]            ports: state, negotiated features, queue pairs in use,\n"
"                            MTU, MAC addresses learned\n"
"  stats [--json|--prometheus] [--watch SECONDS]\n"
"                            per-queue-pair packets, bytes, drops, kicks and\n"
"                            interrupts, and per-worker CPU and wake-ups. With\n"
"                            --watch, refreshes every SECONDS with rates over the\n"
"                            interval (%%usr %%system cswch/s ... like pidstat -t)\n"
"  rings [--json]            each ring's indexes: the guest's avail index, the next\n"
"                            entry lwvhostd will take, the used index it publishes\n"
"                            and the one in guest memory (like QEMU's\n"
"                            info virtio-queue-status)\n"
"  fdb [--json]              the switch's MAC table: port, MAC, static or\n"
"                            learned, seconds since its last frame (like\n"
"                            bridge fdb and ovs-appctl fdb/show)\n"
"  policy                    each port's policy (and adaptive's current choice)\n"
"  policy PORT|all MODE      change policies at run time: notify, poll,\n"
"                            interval:USEC, adaptive[:LATENCY_USEC]\n"
"  trace [--seconds S] [--worker N] [--summary]\n"
"                            record the workers' events for S seconds (default 1)\n"
"                            and print them as a function graph and a summary\n"
"Options:\n"
"  -s, --socket PATH   the daemon's control socket (lwvhostd --ctl), default\n"
"                      $LWVHOST_CTL or " DEFAULT_SOCK "\n"
"  -h, --help          this help\n");
}

static const char *sock_path;

/* Sends one command line; writes the answer to stdout (stderr for an
 * error answer).  Returns 0, 1 for an error answer or I/O failure. */
static int request_to(const char *line, int quiet);

static int request(const char *line)
{
    return request_to(line, 0);
}

static int request_to(const char *line, int quiet)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(sock_path) >= sizeof(sa.sun_path)) {
        fprintf(stderr, "lwvhostctl: socket path too long\n");
        return 1;
    }
    strcpy(sa.sun_path, sock_path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        fprintf(stderr, "lwvhostctl: cannot reach lwvhostd at %s: %s\n", sock_path,
                strerror(errno));
        if (fd >= 0)
            close(fd);
        return 1;
    }
    size_t len = strlen(line);
    if (write(fd, line, len) != (ssize_t)len) {
        fprintf(stderr, "lwvhostctl: write: %s\n", strerror(errno));
        close(fd);
        return 1;
    }
    char buf[8192];
    ssize_t r;
    int first = 1, status = 0;
    while ((r = read(fd, buf, sizeof(buf))) > 0) {
        if (first && r >= 6 && memcmp(buf, "error:", 6) == 0)
            status = 1;
        first = 0;
        if (!quiet || status)
            fwrite(buf, 1, (size_t)r, status ? stderr : stdout);
    }
    fflush(stdout);
    close(fd);
    return status;
}

static int parse_seconds(const char *s, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || v <= 0 || v > 86400)
        return -1;
    *out = v;
    return 0;
}

static void sleep_s(double s)
{
    struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static int cmd_stats(int argc, char **argv)
{
    static const struct option opts[] = {
        { "json", no_argument, NULL, 'j' },
        { "prometheus", no_argument, NULL, 'p' },
        { "watch", required_argument, NULL, 'w' },
        { NULL, 0, NULL, 0 },
    };
    int json = 0, prom = 0, o;
    double watch = 0;
    optind = 1;
    while ((o = getopt_long(argc, argv, "jpw:", opts, NULL)) != -1) {
        if (o == 'j') json = 1;
        else if (o == 'p') prom = 1;
        else if (o == 'w' && parse_seconds(optarg, &watch) == 0) ;
        else { fprintf(stderr, "lwvhostctl stats: bad option (see --help)\n"); return 2; }
    }
    if (optind < argc || json + prom > 1) {
        fprintf(stderr, "lwvhostctl stats: [--json|--prometheus] [--watch SECONDS]\n");
        return 2;
    }
    const char *line = json ? "stats json\n" : prom ? "stats prometheus\n" : "stats\n";
    if (watch <= 0)
        return request(line);
    /* Text watch mode: the daemon computes rates since the previous
     * "stats delta"; the first sample only sets the baseline. */
    int rc = json || prom ? 0 : request_to("stats delta\n", 1);
    if (rc)
        return rc;
    for (;;) {
        sleep_s(watch);
        if (!json && !prom) {
            time_t t = time(NULL);
            char ts[32];
            strftime(ts, sizeof(ts), "%H:%M:%S", localtime(&t));
            printf("\n%s\n", ts);
            fflush(stdout);
        }
        rc = request(json || prom ? line : "stats delta\n");
        if (rc)
            return rc;
    }
}

static int cmd_trace(int argc, char **argv)
{
    static const struct option opts[] = {
        { "seconds", required_argument, NULL, 's' },
        { "worker", required_argument, NULL, 'w' },
        { "summary", no_argument, NULL, 'S' },
        { NULL, 0, NULL, 0 },
    };
    double secs = 1;
    const char *worker = NULL;
    int summary = 0, o;
    optind = 1;
    while ((o = getopt_long(argc, argv, "s:w:S", opts, NULL)) != -1) {
        if (o == 's' && parse_seconds(optarg, &secs) == 0) ;
        else if (o == 'w') worker = optarg;
        else if (o == 'S') summary = 1;
        else { fprintf(stderr, "lwvhostctl trace: bad option (see --help)\n"); return 2; }
    }
    if (optind < argc) {
        fprintf(stderr, "lwvhostctl trace: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (request("trace start\n"))
        return 1;
    sleep_s(secs);
    char line[64];
    snprintf(line, sizeof(line), "trace %s%s%s\n", summary ? "summary" : "dump",
             worker ? " " : "", worker ? worker : "");
    return request(line);
}

/* A view that takes only --json: ports, rings, fdb. */
static int cmd_view(const char *cmd, int argc, char **argv)
{
    char line[64];
    if (argc == 1) {
        snprintf(line, sizeof(line), "%s\n", cmd);
        return request(line);
    }
    if (argc == 2 && (!strcmp(argv[1], "--json") || !strcmp(argv[1], "-j"))) {
        snprintf(line, sizeof(line), "%s json\n", cmd);
        return request(line);
    }
    fprintf(stderr, "lwvhostctl %s: [--json]\n", cmd);
    return 2;
}

int main(int argc, char **argv)
{
    sock_path = getenv("LWVHOST_CTL");
    if (!sock_path || !*sock_path)
        sock_path = DEFAULT_SOCK;
    /* Global options come before the command. */
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if ((!strcmp(argv[i], "-s") || !strcmp(argv[i], "--socket")) && i + 1 < argc)
            sock_path = argv[++i];
        else if (!strncmp(argv[i], "--socket=", 9))
            sock_path = argv[i] + 9;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "lwvhostctl: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (i >= argc) {
        usage(stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    const char *cmd = argv[i];
    int sub_argc = argc - i;
    char **sub_argv = argv + i;
    if (!strcmp(cmd, "ports") || !strcmp(cmd, "rings") || !strcmp(cmd, "fdb"))
        return cmd_view(cmd, sub_argc, sub_argv);
    if (!strcmp(cmd, "stats"))
        return cmd_stats(sub_argc, sub_argv);
    if (!strcmp(cmd, "trace"))
        return cmd_trace(sub_argc, sub_argv);
    if (!strcmp(cmd, "policy")) {
        if (sub_argc == 1)
            return request("policy\n");
        if (sub_argc == 3 && strlen(sub_argv[1]) < 64 && strlen(sub_argv[2]) < 64) {
            char line[160];
            snprintf(line, sizeof(line), "policy %s %s\n", sub_argv[1], sub_argv[2]);
            return request(line);
        }
        fprintf(stderr, "lwvhostctl policy: [PORT|all MODE]\n");
        return 2;
    }
    if (!strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "lwvhostctl: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
