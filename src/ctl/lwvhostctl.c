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
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "version.h"

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
"  port add NAME,path=SOCK[,...]\n"
"                            add a vhost-user port to the running daemon; the\n"
"                            argument is written as lwvhostd's --port value\n"
"  port del NAME             remove a port: its guest sees the link go down, its\n"
"                            socket and MAC table entries go\n"
"  tap add IFNAME, tap del IFNAME\n"
"                            add or remove a host tap port\n"
"  uplink add NAME,ifname=IF[,mode=packet|xdp][,KEY=VALUE...], uplink del NAME\n"
"                            add or remove an uplink port: a host interface\n"
"                            attached through a packet socket (mode=packet:\n"
"                            qdisc_bypass=on) or an AF_XDP socket (mode=xdp:\n"
"                            queue=N, xdp_mode=auto|native|generic); the\n"
"                            argument is written as lwvhostd's --uplink value\n"
"  vxlan add NAME,local=IP,remote=IP[,remote=IP...],vni=N[,dstport=P][,learn=on][,mtu=N],\n"
"  vxlan del NAME            add or remove a VXLAN port (RFC 7348): remote VTEPs\n"
"                            over UDP/IPv4 or IPv6; the argument is written as\n"
"                            lwvhostd's --vxlan value\n"
"  save [FILE]               write the running configuration (lwvhostd.conf(5)):\n"
"                            to FILE, or over the daemon's own --config file\n"
"  version                   lwvhostctl's version and the running daemon's\n"
"Options:\n"
"  -s, --socket PATH   the daemon's control socket (lwvhostd --ctl), default\n"
"                      $LWVHOST_CTL or " DEFAULT_SOCK "\n"
"  -h, --help          this help\n");
}

static const char *sock_path;

/* Sends one command line; writes the answer to out (NULL: nowhere), or to
 * stderr if it is an error answer.  Returns 0, 1 for an error answer or
 * an I/O failure. */
static int request_to(const char *line, FILE *out)
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
        if (status)
            fwrite(buf, 1, (size_t)r, stderr);
        else if (out && fwrite(buf, 1, (size_t)r, out) != (size_t)r)
            status = 1;
    }
    if (r < 0)
        status = 1;
    fflush(stdout);
    close(fd);
    return status;
}

static int request(const char *line)
{
    return request_to(line, stdout);
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

/* What a command line says once parsed: the options any command may take
 * (each command's table says which) and the positional arguments. */
struct args {
    int json, prom, summary;
    double watch;          /* stats: 0 = once */
    double secs;           /* trace */
    const char *worker;    /* trace: NULL = all */
    char **pos;
    int npos;
};

/* One option: its long name and letter, and where its value goes in struct
 * args (a flag sets an int to 1). */
enum opt_kind { OPT_FLAG, OPT_SECONDS, OPT_STRING };
struct opt {
    const char *name;
    char letter;
    enum opt_kind kind;
    size_t field;   /* offsetof(struct args, ...) */
};

#define MAX_OPTS 8

static int take_option(const struct opt *op, const char *arg, struct args *a)
{
    void *to = (char *)a + op->field;
    switch (op->kind) {
    case OPT_FLAG:
        *(int *)to = 1;
        return 0;
    case OPT_SECONDS:
        return parse_seconds(arg, to);
    case OPT_STRING:
        *(const char **)to = arg;
        return 0;
    }
    return -1;
}

/* Parses a command's options (getopt_long, against its table ending in a
 * row without a name) into *a; what is left are positional arguments.
 * Returns 0, or 2 (the exit status) after saying what was wrong. */
static int parse_options(const char *cmd, int argc, char **argv, const struct opt *ops,
                         struct args *a)
{
    struct option longopts[MAX_OPTS + 1] = { { 0 } };
    char shortopts[2 * MAX_OPTS + 2] = ":";
    size_t sl = 1;
    unsigned n = 0;
    for (; ops && ops[n].name && n < MAX_OPTS; n++) {
        int has_arg = ops[n].kind == OPT_FLAG ? no_argument : required_argument;
        longopts[n] = (struct option){ ops[n].name, has_arg, NULL, ops[n].letter };
        shortopts[sl++] = ops[n].letter;
        if (has_arg)
            shortopts[sl++] = ':';
    }
    optind = 1;
    if (n) {   /* without options, "-x" stays a positional argument */
        int o;
        while ((o = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
            const struct opt *op = NULL;
            for (unsigned k = 0; k < n; k++)
                if (ops[k].letter == o)
                    op = &ops[k];
            if (!op || take_option(op, optarg, a) < 0) {
                fprintf(stderr, "lwvhostctl %s: bad option or value: %s (see --help)\n", cmd,
                        argv[optind - 1]);
                return 2;
            }
        }
    }
    a->pos = argv + optind;
    a->npos = argc - optind;
    return 0;
}

/* A view that takes only --json: ports, rings, fdb. */
static int cmd_view(const char *cmd, const struct args *a)
{
    char line[64];
    snprintf(line, sizeof(line), "%s%s\n", cmd, a->json ? " json" : "");
    return request(line);
}

static int cmd_stats(const char *cmd, const struct args *a)
{
    (void)cmd;
    if (a->json + a->prom > 1) {
        fprintf(stderr, "lwvhostctl stats: --json and --prometheus exclude each other\n");
        return 2;
    }
    int plain = !a->json && !a->prom;
    const char *line = a->json ? "stats json\n" : a->prom ? "stats prometheus\n" : "stats\n";
    if (a->watch <= 0)
        return request(line);
    /* Text watch mode: the daemon computes rates since the previous
     * "stats delta"; the first sample only sets the baseline. */
    int rc = plain ? request_to("stats delta\n", NULL) : 0;
    if (rc)
        return rc;
    for (;;) {
        sleep_s(a->watch);
        if (plain) {
            time_t t = time(NULL);
            char ts[32];
            strftime(ts, sizeof(ts), "%H:%M:%S", localtime(&t));
            printf("\n%s\n", ts);
            fflush(stdout);
        }
        rc = request(plain ? "stats delta\n" : line);
        if (rc)
            return rc;
    }
}

static int cmd_trace(const char *cmd, const struct args *a)
{
    (void)cmd;
    if (a->worker && strlen(a->worker) > 16) {
        fprintf(stderr, "lwvhostctl trace: --worker %s is not a worker number\n", a->worker);
        return 2;
    }
    if (request("trace start\n"))
        return 1;
    sleep_s(a->secs);
    char line[64];
    snprintf(line, sizeof(line), "trace %s%s%s\n", a->summary ? "summary" : "dump",
             a->worker ? " " : "", a->worker ? a->worker : "");
    return request(line);
}

static int cmd_policy(const char *cmd, const struct args *a)
{
    (void)cmd;
    if (a->npos == 0)
        return request("policy\n");
    if (strlen(a->pos[0]) >= 64 || strlen(a->pos[1]) >= 64) {
        fprintf(stderr, "lwvhostctl policy: port or mode too long\n");
        return 2;
    }
    char line[160];
    snprintf(line, sizeof(line), "policy %s %s\n", a->pos[0], a->pos[1]);
    return request(line);
}

/* "port add SPEC", "port del NAME", and the same for "tap", "uplink" and
 * "vxlan". */
static int cmd_port(const char *cmd, const struct args *a)
{
    const char *verb = a->pos[0], *arg = a->pos[1];
    if ((strcmp(verb, "add") && strcmp(verb, "del")) || strlen(arg) >= 4096) {
        fprintf(stderr, "lwvhostctl %s: %s add|del ARG (see --help)\n", cmd, cmd);
        return 2;
    }
    char line[4200];
    snprintf(line, sizeof(line), "%s %s %s\n", cmd, verb, arg);
    return request(line);
}

/* "save": the daemon rewrites its own --config file.  "save FILE": we
 * write the running configuration to FILE ourselves (with our own
 * permissions and working directory), through a temporary file renamed
 * over it, so FILE is never half written. */
static int cmd_save(const char *cmd, const struct args *a)
{
    (void)cmd;
    if (a->npos == 0)
        return request("save\n");
    const char *file = a->pos[0];
    char tmp[4096];
    if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", file) >= (int)sizeof(tmp)) {
        fprintf(stderr, "lwvhostctl save: file name too long\n");
        return 2;
    }
    int fd = mkstemp(tmp);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        fprintf(stderr, "lwvhostctl save: cannot write next to %s: %s\n", file, strerror(errno));
        if (fd >= 0) {
            close(fd);
            unlink(tmp);
        }
        return 1;
    }
    fchmod(fd, 0644);
    int rc = request_to("config\n", f);
    if (fclose(f) != 0)
        rc = 1;
    if (rc == 0 && rename(tmp, file) < 0) {
        fprintf(stderr, "lwvhostctl save: %s: %s\n", file, strerror(errno));
        rc = 1;
    }
    if (rc) {
        unlink(tmp);
        return rc;
    }
    printf("saved to %s\n", file);
    return 0;
}

static int cmd_version(const char *cmd, const struct args *a)
{
    (void)cmd;
    (void)a;
    printf("lwvhostctl %s\n", LWV_VERSION);
    return request("version\n");
}

static int cmd_help(const char *cmd, const struct args *a)
{
    (void)cmd;
    (void)a;
    usage(stdout);
    return 0;
}

static const struct opt json_opts[] = {
    { "json", 'j', OPT_FLAG, offsetof(struct args, json) },
    { NULL, 0, OPT_FLAG, 0 },
};

static const struct opt stats_opts[] = {
    { "json", 'j', OPT_FLAG, offsetof(struct args, json) },
    { "prometheus", 'p', OPT_FLAG, offsetof(struct args, prom) },
    { "watch", 'w', OPT_SECONDS, offsetof(struct args, watch) },
    { NULL, 0, OPT_FLAG, 0 },
};

static const struct opt trace_opts[] = {
    { "seconds", 's', OPT_SECONDS, offsetof(struct args, secs) },
    { "worker", 'w', OPT_STRING, offsetof(struct args, worker) },
    { "summary", 'S', OPT_FLAG, offsetof(struct args, summary) },
    { NULL, 0, OPT_FLAG, 0 },
};

/* The commands: name, options, how many positional arguments (none, or
 * exactly one of the two counts), what runs them, usage on a bad line. */
static const struct command {
    const char *name;
    const struct opt *opts;
    int npos_a, npos_b;
    int (*run)(const char *cmd, const struct args *a);
    const char *synopsis;
} commands[] = {
    { "ports", json_opts, 0, 0, cmd_view, "[--json]" },
    { "rings", json_opts, 0, 0, cmd_view, "[--json]" },
    { "fdb", json_opts, 0, 0, cmd_view, "[--json]" },
    { "stats", stats_opts, 0, 0, cmd_stats, "[--json|--prometheus] [--watch SECONDS]" },
    { "trace", trace_opts, 0, 0, cmd_trace, "[--seconds S] [--worker N] [--summary]" },
    { "policy", NULL, 0, 2, cmd_policy, "[PORT|all MODE]" },
    { "port", NULL, 2, 2, cmd_port, "add NAME,path=SOCK[,...] | del NAME" },
    { "tap", NULL, 2, 2, cmd_port, "add IFNAME | del IFNAME" },
    { "uplink", NULL, 2, 2, cmd_port, "add NAME,ifname=IF[,...] | del NAME" },
    { "vxlan", NULL, 2, 2, cmd_port, "add NAME,local=IP,remote=IP,vni=N[,...] | del NAME" },
    { "save", NULL, 0, 1, cmd_save, "[FILE]" },
    { "version", NULL, 0, 0, cmd_version, "" },
    { "help", NULL, 0, 0, cmd_help, "" },
};

static int run_command(int argc, char **argv)
{
    const struct command *c = NULL;
    for (size_t k = 0; k < sizeof(commands) / sizeof(commands[0]); k++)
        if (!strcmp(argv[0], commands[k].name))
            c = &commands[k];
    if (!c) {
        fprintf(stderr, "lwvhostctl: unknown command '%s'\n", argv[0]);
        usage(stderr);
        return 2;
    }
    struct args a = { .secs = 1 };
    int rc = parse_options(c->name, argc, argv, c->opts, &a);
    if (rc)
        return rc;
    if (a.npos != c->npos_a && a.npos != c->npos_b) {
        fprintf(stderr, "lwvhostctl %s: unexpected arguments; usage: lwvhostctl %s %s\n",
                c->name, c->name, c->synopsis);
        return 2;
    }
    return c->run(c->name, &a);
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
    return run_command(argc - i, argv + i);
}
