/*
 * ctl_cmd.c - the control socket's commands: one table of names, argument
 * counts and handlers.  The views are in ctl_view.c.  Commands that change
 * something: "policy PORT|all MODE" (a port's policy word, then a poke of
 * its queues), "trace start|stop", "port|tap|uplink|vxlan add|del" (daemon.c,
 * port.c)
 * and "save" (rewrites the daemon's --config file).
 */
#include "ctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "ctl_view.h"
#include "daemon.h"
#include "log.h"
#include "policy.h"
#include "port.h"
#include "trace.h"
#include "worker.h"

#define CTL_MAX_WORDS 8
/* A word holds a whole --port or --vxlan value: a socket path and every
 * option, or every remote. */
#define CTL_WORD_MAX CONFIG_VALUE_MAX

struct ctl_cmd {
    const char *name;
    unsigned min_args, max_args;   /* words after the name */
    const char *usage;
    /* argv[0] is the command's name. */
    void (*run)(struct sbuf *b, unsigned argc, char **argv);
};

static void usage_error(struct sbuf *b, const char *usage)
{
    sb_printf(b, "error: usage: %s\n", usage);
}

/* "json" as the only argument, or none. */
static bool json_arg(struct sbuf *b, unsigned argc, char **argv, const char *usage, bool *json)
{
    *json = argc == 2;
    if (argc == 2 && strcmp(argv[1], "json") != 0) {
        usage_error(b, usage);
        return false;
    }
    return true;
}

static void cmd_ports(struct sbuf *b, unsigned argc, char **argv)
{
    bool json;
    if (json_arg(b, argc, argv, "ports [json]", &json))
        view_ports(b, json);
}

static void cmd_rings(struct sbuf *b, unsigned argc, char **argv)
{
    bool json;
    if (json_arg(b, argc, argv, "rings [json]", &json))
        view_rings(b, json);
}

static void cmd_fdb(struct sbuf *b, unsigned argc, char **argv)
{
    bool json;
    if (json_arg(b, argc, argv, "fdb [json]", &json))
        view_fdb(b, json);
}

static void cmd_stats(struct sbuf *b, unsigned argc, char **argv)
{
    const char *how = argc == 2 ? argv[1] : "";
    if (!*how)
        view_stats(b, false, false);
    else if (strcmp(how, "json") == 0)
        view_stats(b, true, false);
    else if (strcmp(how, "delta") == 0)
        view_stats(b, false, true);
    else if (strcmp(how, "prometheus") == 0)
        view_prometheus(b);
    else
        usage_error(b, "stats [json|delta|prometheus]");
}

static void set_policy(struct sbuf *b, const char *target, const char *mode)
{
    struct policy pol;
    char err[160];
    if (policy_parse(mode, &pol, err, sizeof(err)) < 0) {
        sb_printf(b, "error: %s\n", err);
        return;
    }
    bool all = strcmp(target, "all") == 0;
    unsigned changed = 0;
    for (unsigned i = 0; i < ports.n; i++) {
        struct port *p = ports.p[i];
        if (!p || p->type != PORT_VHOST || (!all && strcmp(p->name, target) != 0))
            continue;
        __atomic_store_n(&p->policy, policy_pack(&pol), __ATOMIC_RELAXED);
        /* Each queue gets a pass under its new policy (a queue leaving
         * interval or poll must re-enable guest kicks). */
        for (unsigned q = 1; q < 2 * p->dev.max_qp; q += 2)
            worker_poke_queue(&p->dev.q[q]);
        changed++;
    }
    char s[32];
    if (!changed) {
        sb_printf(b, "error: no vhost-user port named '%s'\n", target);
        return;
    }
    policy_str(&pol, s, sizeof(s));
    log_info("policy of %s set to %s", all ? "all ports" : target, s);
    sb_printf(b, "policy of %u port%s set to %s\n", changed, changed == 1 ? "" : "s", s);
}

static void cmd_policy(struct sbuf *b, unsigned argc, char **argv)
{
    if (argc == 1)
        view_policy(b);
    else if (argc == 3)
        set_policy(b, argv[1], argv[2]);
    else
        usage_error(b, "policy [PORT|all MODE]");
}

static void cmd_trace(struct sbuf *b, unsigned argc, char **argv)
{
    unsigned n = workers_count();
    int only = -1;
    if (argc == 3) {
        char *end;
        unsigned long v = strtoul(argv[2], &end, 10);
        if (*end || v >= n) {
            sb_printf(b, "error: no worker '%s' (0..%u)\n", argv[2], n ? n - 1 : 0);
            return;
        }
        only = (int)v;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "start") == 0 && argc == 2) {
        if (trace_start(worker_trace_rings(), n) < 0)
            sb_printf(b, "error: out of memory for trace buffers\n");
        else
            sb_printf(b, "tracing %u worker%s (%u events each)\n", n, n == 1 ? "" : "s",
                      TRACE_RING_SIZE);
    } else if (strcmp(sub, "stop") == 0 && argc == 2) {
        trace_stop();
        sb_printf(b, "tracing stopped\n");
    } else if (strcmp(sub, "dump") == 0 || strcmp(sub, "summary") == 0) {
        trace_stop();
        view_trace(b, strcmp(sub, "dump") == 0, only);
    } else {
        usage_error(b, "trace start|stop|dump [WORKER]|summary [WORKER]");
    }
}

/* "port add SPEC", "port del NAME", "tap add IFNAME", "tap del IFNAME",
 * "uplink add SPEC", "uplink del NAME", "vxlan add SPEC", "vxlan del NAME". */
static void cmd_port(struct sbuf *b, unsigned argc, char **argv)
{
    const char *kind = argv[0];
    char err[512];
    int rc;
    if (strcmp(argv[1], "add") == 0)
        rc = daemon_port_add(kind, argv[2], err, sizeof(err));
    else if (strcmp(argv[1], "del") == 0)
        rc = daemon_port_del(kind, argv[2], err, sizeof(err));
    else {
        sb_printf(b, "error: usage: %s add|del ...\n", kind);
        return;
    }
    if (rc < 0)
        sb_printf(b, "error: %s\n", err);
    else
        sb_printf(b, "%s %s %s\n", kind, strtok(argv[2], ","),
                  argv[1][0] == 'a' ? "added" : "removed");
}

/* "config": the running configuration, every port, in the --config
 * format (lwvhostctl save FILE writes it). */
static void cmd_config(struct sbuf *b, unsigned argc, char **argv)
{
    (void)argc;
    (void)argv;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) {
        sb_printf(b, "error: out of memory\n");
        return;
    }
    int rc = daemon_write_config(f);
    if (fclose(f) != 0)
        rc = -1;
    if (rc < 0 || !text)
        sb_printf(b, "error: out of memory\n");
    else
        sb_printf(b, "%s", text);
    free(text);
}

static void cmd_save(struct sbuf *b, unsigned argc, char **argv)
{
    (void)argc;
    (void)argv;
    char err[512];
    if (daemon_save(err, sizeof(err)) < 0)
        sb_printf(b, "error: %s\n", err);
    else
        sb_printf(b, "saved to %s\n", daemon_config()->config_path);
}

static void cmd_version(struct sbuf *b, unsigned argc, char **argv)
{
    (void)argc;
    (void)argv;
    sb_printf(b, "lwvhostd %s\n", LWV_VERSION);
}

static void cmd_help(struct sbuf *b, unsigned argc, char **argv);

static const struct ctl_cmd commands[] = {
    { "ports", 0, 1, "ports [json]", cmd_ports },
    { "stats", 0, 1, "stats [json|delta|prometheus]", cmd_stats },
    { "rings", 0, 1, "rings [json]", cmd_rings },
    { "fdb", 0, 1, "fdb [json]", cmd_fdb },
    { "policy", 0, 2, "policy [PORT|all MODE]", cmd_policy },
    { "trace", 1, 2, "trace start|stop|dump [WORKER]|summary [WORKER]", cmd_trace },
    { "port", 2, 2, "port add NAME,path=SOCK[,...] | port del NAME", cmd_port },
    { "tap", 2, 2, "tap add IFNAME | tap del IFNAME", cmd_port },
    { "uplink", 2, 2, "uplink add NAME,ifname=IF[,...] | uplink del NAME", cmd_port },
    { "vxlan", 2, 2, "vxlan add NAME,local=IP,remote=IP,vni=N[,...] | vxlan del NAME", cmd_port },
    { "config", 0, 0, "config", cmd_config },
    { "save", 0, 0, "save", cmd_save },
    { "version", 0, 0, "version", cmd_version },
    { "help", 0, 0, "help", cmd_help },
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void cmd_help(struct sbuf *b, unsigned argc, char **argv)
{
    sb_printf(b, "commands:");
    for (unsigned i = 0; i < NCOMMANDS; i++)
        sb_printf(b, "%s %s", i ? " |" : "", commands[i].usage);
    sb_printf(b, "\n");
}

/* Splits line into at most max words of fewer than CTL_WORD_MAX bytes;
 * returns how many, or -1 if there are more or one is too long. */
static int split(char *line, char **argv, int max)
{
    int n = 0;
    for (char *save = NULL, *w = strtok_r(line, " \t\r\n", &save); w;
         w = strtok_r(NULL, " \t\r\n", &save)) {
        if (n == max || strlen(w) >= CTL_WORD_MAX)
            return -1;
        argv[n++] = w;
    }
    return n;
}

char *ctl_execute(const char *line)
{
    struct sbuf b = { 0 };
    char copy[CTL_LINE_MAX], *argv[CTL_MAX_WORDS];
    snprintf(copy, sizeof(copy), "%s", line);
    int argc = split(copy, argv, CTL_MAX_WORDS);
    const struct ctl_cmd *c = NULL;
    for (unsigned i = 0; argc > 0 && i < NCOMMANDS && !c; i++)
        if (strcmp(argv[0], commands[i].name) == 0)
            c = &commands[i];
    if (!c)
        sb_printf(&b, "error: unknown command '%.64s' (try: help)\n", line);
    else if ((unsigned)argc - 1 < c->min_args || (unsigned)argc - 1 > c->max_args)
        usage_error(&b, c->usage);
    else
        c->run(&b, (unsigned)argc, argv);
    char *answer = sb_take(&b);
    return answer ? answer : strdup("error: out of memory\n");
}
