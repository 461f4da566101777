/*
 * daemon.c - see daemon.h.
 */
#define _GNU_SOURCE
#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "ctl.h"
#include "log.h"
#include "rstate.h"
#include "loop.h"
#include "port.h"
#include "switch.h"
#include "worker.h"

static struct lswitch the_switch;
static struct config cfg;        /* what the daemon runs with (control thread) */
static int saved_argc;           /* the command line, re-read by a reload */
static char **saved_argv;

const struct config *daemon_config(void)
{
    return &cfg;
}

/* ---- systemd's readiness protocol (sd_notify(3), without libsystemd) ------ */

/* Sends state lines to the socket systemd names in $NOTIFY_SOCKET, if any
 * (a Type=notify unit).  Failures only go to the debug log. */
static void notify_systemd(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || (path[0] != '/' && path[0] != '@'))
        return;
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    size_t len = strlen(path);
    if (len >= sizeof(sa.sun_path))
        return;
    memcpy(sa.sun_path, path, len);
    if (path[0] == '@')
        sa.sun_path[0] = 0;   /* an abstract socket */
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, salen) < 0)
        log_debug("systemd notification failed: %s", strerror(errno));
    close(fd);
}

static unsigned live_ports(void)
{
    unsigned n = 0;
    for (unsigned i = 0; i < ports.n; i++)
        n += ports.p[i] != NULL;
    return n;
}

static void notify_ready(void)
{
    char state[128];
    snprintf(state, sizeof(state), "READY=1\nSTATUS=%u port%s, %u worker%s", live_ports(),
             live_ports() == 1 ? "" : "s", cfg.workers, cfg.workers == 1 ? "" : "s");
    notify_systemd(state);
}

/* ---- ports at run time ------------------------------------------------------ */

int daemon_port_add(const char *key, const char *spec, char *err, size_t errlen)
{
    struct port_cfg pc;
    if (config_parse_port(key, spec, &pc, err, errlen) < 0)
        return -1;
    if (port_add(&pc, &cfg.policy, err, errlen) < 0)
        return -1;
    log_info("%s %s added", key, pc.name);
    return 0;
}

int daemon_port_del(const char *key, const char *name, char *err, size_t errlen)
{
    struct port *p = port_find(name);
    enum port_type want = strcmp(key, "tap") == 0      ? PORT_TAP
                          : strcmp(key, "uplink") == 0 ? PORT_UPLINK
                          : strcmp(key, "vxlan") == 0  ? PORT_VXLAN
                                                       : PORT_VHOST;
    if (!p || p->type != want) {
        snprintf(err, errlen, "no %s named %s", want == PORT_VHOST ? "port" : key, name);
        return -1;
    }
    port_del(p, "removed by lwvhostctl");
    return 0;
}

/* ---- the running configuration ---------------------------------------------- */

/* The running configuration: the daemon's options and every port there is
 * now, with the policy it has now where that is not simply the default. */
static void running_config(struct config *out)
{
    *out = cfg;
    out->nports = 0;
    for (unsigned i = 0; i < ports.n; i++) {
        const struct port *p = ports.p[i];
        if (!p)
            continue;
        struct port_cfg *pc = &out->ports[out->nports++];
        *pc = p->cfg;
        struct policy live = policy_unpack(__atomic_load_n(&p->policy, __ATOMIC_RELAXED));
        if (pc->policy_set || !policy_equal(&live, &cfg.policy)) {
            pc->policy_set = true;
            pc->policy = live;
        }
    }
}

int daemon_write_config(FILE *f)
{
    static struct config run;
    running_config(&run);
    return config_write(f, &run, true);
}

int daemon_save(char *err, size_t errlen)
{
    static struct config run;
    if (!cfg.config_path[0]) {
        snprintf(err, errlen, "lwvhostd was started without --config: name a FILE to save to");
        return -1;
    }
    running_config(&run);
    /* Next to the file, then renamed over it: a crash leaves the old file
     * or the new one, never half of one. */
    char tmp[sizeof(cfg.config_path) + 16];
    snprintf(tmp, sizeof(tmp), "%s.XXXXXX", cfg.config_path);
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot write next to %s: %s", cfg.config_path, strerror(errno));
        return -1;
    }
    struct stat st;
    fchmod(fd, stat(cfg.config_path, &st) == 0 ? st.st_mode & 07777 : 0644);
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        unlink(tmp);
        snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
        return -1;
    }
    int rc = config_write(f, &run, false);
    if (fflush(f) != 0 || fsync(fd) != 0)
        rc = -1;
    if (fclose(f) != 0)
        rc = -1;
    if (rc < 0 || rename(tmp, cfg.config_path) < 0) {
        snprintf(err, errlen, "cannot write %s: %s", cfg.config_path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    log_info("configuration saved to %s", cfg.config_path);
    return 0;
}

/* ---- reload (SIGHUP) -------------------------------------------------------- */

/* True when two VXLAN configurations are the same (field by field: the
 * unused remote slots do not count). */
static bool same_vxlan(const struct vxlan_cfg *a, const struct vxlan_cfg *b)
{
    return a->family == b->family && memcmp(&a->local, &b->local, sizeof(a->local)) == 0 &&
           a->nremotes == b->nremotes &&
           memcmp(a->remote, b->remote, a->nremotes * sizeof(a->remote[0])) == 0 &&
           a->vni == b->vni && a->dstport == b->dstport && a->learn == b->learn &&
           a->mtu == b->mtu;
}

/* The options of two port configurations that need the port re-created
 * when they differ: everything but the policy. */
static bool same_port(const struct port_cfg *a, const struct port_cfg *b)
{
    return strcmp(a->name, b->name) == 0 && a->type == b->type &&
           strcmp(a->path, b->path) == 0 && a->client == b->client &&
           (a->queues ? a->queues : 1) == (b->queues ? b->queues : 1) &&
           a->mac_set == b->mac_set && (!a->mac_set || memcmp(a->mac, b->mac, 6) == 0) &&
           a->antispoof == b->antispoof && a->sock_mode == b->sock_mode &&
           a->sock_uid == b->sock_uid && a->sock_gid == b->sock_gid &&
           strcmp(a->ifname, b->ifname) == 0 && a->qdisc_bypass == b->qdisc_bypass &&
           a->xdp == b->xdp && a->xdp_mode == b->xdp_mode && a->xdp_queue == b->xdp_queue &&
           same_vxlan(&a->vx, &b->vx);
}

static const struct port_cfg *find_cfg(const struct config *c, const char *name)
{
    for (unsigned i = 0; i < c->nports; i++)
        if (strcmp(c->ports[i].name, name) == 0)
            return &c->ports[i];
    return NULL;
}

static struct policy effective_policy(const struct port_cfg *pc, const struct config *c)
{
    return pc->policy_set ? pc->policy : c->policy;
}

static void warn_restart_only(const struct config *next)
{
    if (next->workers != cfg.workers)
        log_warn("reload: --workers changed to %u: takes effect at the next start", next->workers);
    if (strcmp(next->state_dir, cfg.state_dir) != 0)
        log_warn("reload: --state-dir changed: takes effect at the next start");
    if (strcmp(next->ctl_path, cfg.ctl_path) != 0 || next->ctl_mode != cfg.ctl_mode ||
        next->ctl_gid != cfg.ctl_gid)
        log_warn("reload: the control socket's options changed: they take effect at the next "
                 "start");
}

/* Makes the ports that came from the configuration what next says; ports
 * added at run time stay unless next names one of them differently. */
static void apply_ports(const struct config *next)
{
    char err[256];
    /* Removals first: they free names, socket paths and MAC addresses. */
    for (unsigned i = 0; i < ports.n; i++) {
        struct port *p = ports.p[i];
        if (!p)
            continue;
        const struct port_cfg *want = find_cfg(next, p->name);
        if (p->from_config && !want)
            port_del(p, "no longer in the configuration");
        else if (want && !same_port(&p->cfg, want))
            port_del(p, "its configuration changed");
    }
    for (unsigned i = 0; i < next->nports; i++) {
        const struct port_cfg *want = &next->ports[i];
        struct port *p = port_find(want->name);
        if (p) {
            /* Unchanged: only a policy the configuration changed. */
            struct policy was = effective_policy(&p->cfg, &cfg), now = effective_policy(want, next);
            if (p->from_config && !policy_equal(&was, &now)) {
                __atomic_store_n(&p->policy, policy_pack(&now), __ATOMIC_RELAXED);
                for (unsigned q = 1; q < 2 * p->queues; q += 2)
                    worker_poke_queue(&p->dev.q[q]);
            }
            p->cfg = *want;
            p->from_config = true;
            continue;
        }
        if (port_add(want, &next->policy, err, sizeof(err)) < 0) {
            log_error("reload: %s", err);
            continue;
        }
        port_find(want->name)->from_config = true;
        log_info("reload: %s %s added", want->type == PORT_VHOST ? "port" : port_type_name(want->type),
                 want->name);
    }
}

static void apply_globals(const struct config *next)
{
    log_set_level(next->log_level);
    workers_set_idle_us(next->idle_us);
    fdb_configure(&the_switch.fdb, next->fdb_age_s, next->fdb_port_max);
}

/* Re-reads the command line and its --config file and applies the
 * difference; on a bad file the daemon runs on as it was. */
static void reload(void)
{
    static struct config next;
    char err[512];
    char state[64];
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    snprintf(state, sizeof(state), "RELOADING=1\nMONOTONIC_USEC=%llu",
             (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000);
    notify_systemd(state);
    config_defaults(&next);
    if (config_parse_args(&next, saved_argc, saved_argv, err, sizeof(err)) != CONFIG_OK) {
        log_error("reload: %s; the configuration stays as it was", err);
        notify_ready();
        return;
    }
    warn_restart_only(&next);
    apply_globals(&next);
    apply_ports(&next);
    /* What cannot change at run time stays as it is running. */
    next.workers = cfg.workers;
    memcpy(next.state_dir, cfg.state_dir, sizeof(next.state_dir));
    memcpy(next.ctl_path, cfg.ctl_path, sizeof(next.ctl_path));
    next.ctl_mode = cfg.ctl_mode;
    next.ctl_gid = cfg.ctl_gid;
    cfg = next;
    log_info("reloaded the configuration: %u port%s", live_ports(), live_ports() == 1 ? "" : "s");
    notify_ready();
}

/* ---- the event loop ----------------------------------------------------------- */

/* Ages the MAC table once a second; returns ms until the next time. */
static int64_t age_fdb(uint64_t now)
{
    static uint64_t next_age_ms;
    if (now >= next_age_ms) {
        unsigned gone = fdb_age(&the_switch.fdb, (uint32_t)(now / 1000));
        if (gone)
            log_debug("MAC table: %u learned address%s aged out", gone, gone == 1 ? "" : "es");
        next_age_ms = now + 1000;
    }
    return (int64_t)(next_age_ms - now);
}

/* Runs once per loop iteration: client-mode reconnects, MAC aging. */
static int tick(void)
{
    uint64_t now = now_ms();
    int64_t next = age_fdb(now);
    int64_t conn = ports_tick(now);
    if (conn >= 0 && conn < next)
        next = conn;
    return (int)next;
}

static int signal_fd = -1;

static void signal_event(void *arg, uint32_t events)
{
    (void)arg;
    (void)events;
    struct signalfd_siginfo si;
    if (read(signal_fd, &si, sizeof(si)) != sizeof(si))
        return;
    if (si.ssi_signo == SIGHUP) {
        log_info("received SIGHUP, reloading the configuration");
        reload();
        return;
    }
    log_info("received %s, shutting down", strsignal((int)si.ssi_signo));
    loop_stop();
}

static int setup_signals(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    /* Blocked before any worker exists, so only the signalfd sees them. */
    if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
        return -1;
    signal(SIGPIPE, SIG_IGN);
    signal_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (signal_fd < 0 || !loop_add(signal_fd, EPOLLIN, signal_event, NULL))
        return -1;
    return 0;
}

static int add_configured_ports(void)
{
    char err[256];
    for (unsigned i = 0; i < cfg.nports; i++) {
        if (port_add(&cfg.ports[i], &cfg.policy, err, sizeof(err)) < 0) {
            log_error("%s", err);
            return -1;
        }
        port_find(cfg.ports[i].name)->from_config = true;
    }
    return 0;
}

int daemon_main(int argc, char **argv)
{
    char err[512];
    config_defaults(&cfg);
    enum config_result r = config_parse_args(&cfg, argc, argv, err, sizeof(err));
    if (r == CONFIG_EXIT)
        return 0;
    if (r == CONFIG_ERROR) {
        fprintf(stderr, "lwvhostd: %s\n", err);
        return 2;
    }
    saved_argc = argc;
    saved_argv = argv;
    log_set_level(cfg.log_level);
    int rc = 1;
    switch_init(&the_switch, &ports);
    ports_init(&the_switch);
    fdb_configure(&the_switch.fdb, cfg.fdb_age_s, cfg.fdb_port_max);
    fdb_age(&the_switch.fdb, (uint32_t)(now_ms() / 1000));   /* start the table's clock */
    if (loop_init() < 0 || setup_signals() < 0 || mem_guard_install() < 0) {
        log_error("cannot set up the event loop: %s", strerror(errno));
        return 1;
    }
    rstate_set_dir(cfg.state_dir);
    if (workers_init(cfg.workers) < 0)
        goto out;
    workers_set_idle_us(cfg.idle_us);
    if (add_configured_ports() < 0)
        goto out;
    if (cfg.ctl_path[0] && ctl_open(cfg.ctl_path) < 0)
        goto out;
    if (cfg.ctl_path[0] && (cfg.ctl_mode >= 0 || cfg.ctl_gid >= 0) &&
        socket_set_perms(cfg.ctl_path, cfg.ctl_mode >= 0 ? cfg.ctl_mode : 0600, -1, cfg.ctl_gid,
                         err, sizeof(err)) < 0) {
        log_error("control socket: %s", err);
        goto out;
    }
    if (workers_start() < 0)
        goto out;
    log_info("lwvhostd %s running: %u port%s, %u worker%s", LWV_VERSION, live_ports(),
             live_ports() == 1 ? "" : "s", cfg.workers, cfg.workers == 1 ? "" : "s");
    notify_ready();
    loop_run(tick);
    notify_systemd("STOPPING=1");
    rc = 0;
out:
    ctl_close();
    ports_remove_all("daemon shutting down");
    workers_stop();
    loop_fini();
    if (signal_fd >= 0)
        close(signal_fd);
    if (rc == 0)
        log_info("stopped");
    return rc;
}
