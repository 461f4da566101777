/*
 * daemon.c - see daemon.h.
 */
#define _GNU_SOURCE
#include "daemon.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "config.h"
#include "ctl.h"
#include "log.h"
#include "loop.h"
#include "port.h"
#include "switch.h"
#include "tap.h"
#include "vu_ctrl.h"
#include "worker.h"

#define BACKOFF_MIN_MS 100u
#define BACKOFF_MAX_MS 2000u

struct port_table ports;
static struct lswitch the_switch;
static struct loop_watch *listen_watch[LWV_MAX_PORTS], *conn_watch[LWV_MAX_PORTS];

const char *mac_str(const uint8_t m[6], char buf[18])
{
    snprintf(buf, 18, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
    return buf;
}

int mac_parse(const char *s, uint8_t mac[6])
{
    unsigned v[6];
    char end;
    if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &end) != 6)
        return -1;
    if (strlen(s) != 17)
        return -1;
    for (int i = 0; i < 6; i++)
        mac[i] = (uint8_t)v[i];
    return 0;
}

static void conn_event(void *arg, uint32_t events);

static void drop_conn(struct port *p, const char *why)
{
    loop_del(conn_watch[p->index]);
    conn_watch[p->index] = NULL;
    vu_conn_detach(p, why);
    if (p->client) {
        p->backoff_ms = BACKOFF_MIN_MS;
        p->next_connect_ms = now_ms() + p->backoff_ms;
    }
}

static void start_conn(struct port *p, int fd)
{
    vu_conn_attach(p, fd);
    conn_watch[p->index] = loop_add(fd, EPOLLIN, conn_event, p);
    if (!conn_watch[p->index])
        drop_conn(p, "cannot watch the connection");
}

static void conn_event(void *arg, uint32_t events)
{
    struct port *p = arg;
    if (vu_conn_readable(p) < 0)
        drop_conn(p, errno ? strerror(errno) : "closed by the frontend or on error");
}

/* A frontend that closed and reconnected at once: its hang-up may not
 * have been processed yet when the new connection is accepted. */
static bool old_conn_gone(const struct port *p)
{
    struct pollfd pfd = { .fd = p->conn.fd, .events = POLLIN | POLLRDHUP };
    return poll(&pfd, 1, 0) == 1 && (pfd.revents & (POLLHUP | POLLRDHUP | POLLERR));
}

static void accept_event(void *arg, uint32_t events)
{
    struct port *p = arg;
    int fd = accept4(p->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return;
    if (p->conn.fd >= 0 && old_conn_gone(p))
        conn_event(p, 0);   /* reads what is left, sees EOF, frees the port */
    if (p->conn.fd >= 0) {
        log_warn("port %s: refusing a second frontend while one is connected", p->name);
        close(fd);
        return;
    }
    start_conn(p, fd);
}

static int fill_addr(struct sockaddr_un *sa, const char *path)
{
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sa->sun_path))
        return -1;
    strcpy(sa->sun_path, path);
    return 0;
}

int daemon_clear_stale_socket(const char *what, const char *path)
{
    struct sockaddr_un sa;
    struct stat st;
    if (fill_addr(&sa, path) < 0)
        return -1;
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : -1;
    if (!S_ISSOCK(st.st_mode)) {
        log_error("%s: %s exists and is not a socket", what, path);
        return -1;
    }
    int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe >= 0 && connect(probe, (const struct sockaddr *)&sa, sizeof(sa)) == 0) {
        close(probe);
        log_error("%s: %s is in use by another process", what, path);
        return -1;
    }
    if (probe >= 0)
        close(probe);
    return unlink(path);
}

/* Gives a socket we created its final permissions and owner.  It was
 * bound under umask 0177 (0600), so it is never wider than asked. */
static int set_socket_perms(const char *path, int mode, long uid, long gid)
{
    if (chmod(path, (mode_t)mode) < 0) {
        log_error("chmod %s to %04o: %s", path, mode, strerror(errno));
        return -1;
    }
    if ((uid >= 0 || gid >= 0) && chown(path, (uid_t)uid, (gid_t)gid) < 0) {
        log_error("chown %s to %ld:%ld: %s", path, uid, gid, strerror(errno));
        return -1;
    }
    return 0;
}

static int open_listener(struct port *p)
{
    struct sockaddr_un sa;
    char what[64];
    snprintf(what, sizeof(what), "port %s", p->name);
    if (fill_addr(&sa, p->path) < 0 || daemon_clear_stale_socket(what, p->path) < 0) {
        log_error("port %s: cannot use socket path %s", p->name, p->path);
        return -1;
    }
    p->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (p->listen_fd < 0)
        return -1;
    mode_t old = umask(0177);
    int rc = bind(p->listen_fd, (struct sockaddr *)&sa, sizeof(sa));
    umask(old);
    if (rc == 0 && set_socket_perms(p->path, p->sock_mode, p->sock_uid, p->sock_gid) < 0)
        rc = -1;
    if (rc < 0 || listen(p->listen_fd, 4) < 0) {
        log_error("port %s: cannot listen on %s: %s", p->name, p->path, strerror(errno));
        close(p->listen_fd);
        p->listen_fd = -1;
        return -1;
    }
    listen_watch[p->index] = loop_add(p->listen_fd, EPOLLIN, accept_event, p);
    log_info("port %s: listening on %s (%u queue pair%s)", p->name, p->path, p->queues,
             p->queues > 1 ? "s" : "");
    return listen_watch[p->index] ? 0 : -1;
}

static void try_connect(struct port *p, uint64_t now)
{
    struct sockaddr_un sa;
    fill_addr(&sa, p->path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
        p->backoff_ms = BACKOFF_MIN_MS;
        start_conn(p, fd);
        return;
    }
    int err = errno;
    if (fd >= 0)
        close(fd);
    if (p->backoff_ms == BACKOFF_MIN_MS)
        log_info("port %s: waiting for a frontend at %s (%s); retrying with backoff", p->name,
                 p->path, strerror(err));
    p->next_connect_ms = now + p->backoff_ms;
    p->backoff_ms = p->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : p->backoff_ms * 2;
}

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
    for (unsigned i = 0; i < ports.n; i++) {
        struct port *p = ports.p[i];
        if (p->type != PORT_VHOST || !p->client || p->conn.fd >= 0)
            continue;
        if (now >= p->next_connect_ms)
            try_connect(p, now);
        if (p->conn.fd < 0) {
            int64_t wait = (int64_t)(p->next_connect_ms - now);
            if (wait < 0)
                wait = 0;
            if (next < 0 || wait < next)
                next = wait;
        }
    }
    return (int)next;
}

static int signal_fd = -1;

static void signal_event(void *arg, uint32_t events)
{
    struct signalfd_siginfo si;
    if (read(signal_fd, &si, sizeof(si)) != sizeof(si))
        return;
    log_info("received %s, shutting down", strsignal((int)si.ssi_signo));
    loop_stop();
}

static int setup_signals(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    /* Blocked before any worker exists, so only the signalfd sees them. */
    if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
        return -1;
    signal(SIGPIPE, SIG_IGN);
    signal_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (signal_fd < 0 || !loop_add(signal_fd, EPOLLIN, signal_event, NULL))
        return -1;
    return 0;
}

static struct port *make_port(const struct port_cfg *pc, unsigned index,
                              const struct policy *dflt)
{
    struct port *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->index = index;
    p->type = pc->type;
    p->sw = &the_switch;
    snprintf(p->name, sizeof(p->name), "%s", pc->name);
    snprintf(p->path, sizeof(p->path), "%s", pc->path);
    p->client = pc->client;
    p->queues = pc->queues ? pc->queues : 1;
    memcpy(p->mac, pc->mac, 6);
    p->mac_set = pc->mac_set;
    p->antispoof = pc->antispoof;
    p->sock_mode = pc->sock_mode >= 0 ? pc->sock_mode : 0660;
    p->sock_uid = pc->sock_uid;
    p->sock_gid = pc->sock_gid;
    p->listen_fd = -1;
    p->conn.fd = -1;
    p->tap_fd = -1;
    p->backoff_ms = BACKOFF_MIN_MS;
    p->policy = policy_pack(pc->policy_set ? &pc->policy : dflt);
    dev_init(&p->dev, p, p->queues);
    return p;
}

static int build_ports(const struct config *cfg)
{
    for (unsigned i = 0; i < cfg->nports; i++) {
        struct port *p = make_port(&cfg->ports[i], i, &cfg->policy);
        if (!p)
            return -1;
        ports.p[ports.n++] = p;
        if (p->type == PORT_TAP) {
            if (tap_open(p, p->name) < 0)
                return -1;
            worker_assign_tap(p);
            continue;
        }
        for (unsigned qp = 0; qp < p->queues; qp++)
            worker_assign_queue(&p->dev.q[2 * qp + 1]);
        if (p->mac_set && switch_add_static(p->sw, p->mac, p->index) < 0) {
            char m[18];
            log_error("port %s: mac=%s cannot be a static MAC table entry (another port has it)",
                      p->name, mac_str(p->mac, m));
            return -1;
        }
        if (p->client)
            log_info("port %s: client mode, connecting to %s", p->name, p->path);
        else if (open_listener(p) < 0)
            return -1;
    }
    return 0;
}

static void shutdown_ports(void)
{
    for (unsigned i = 0; i < ports.n; i++) {
        struct port *p = ports.p[i];
        if (p->type != PORT_VHOST)
            continue;
        if (p->conn.fd >= 0)
            drop_conn(p, "daemon shutting down");
        if (p->listen_fd >= 0) {
            loop_del(listen_watch[i]);
            close(p->listen_fd);
            unlink(p->path);
        }
    }
}

static void free_ports(void)
{
    for (unsigned i = 0; i < ports.n; i++) {
        struct port *p = ports.p[i];
        if (p->type == PORT_TAP)
            tap_close(p);
        mem_clear(&p->dev.mem);
        free(p);
    }
    ports.n = 0;
}

int daemon_main(int argc, char **argv)
{
    static struct config cfg;
    char err[512];
    config_defaults(&cfg);
    enum config_result r = config_parse_args(&cfg, argc, argv, err, sizeof(err));
    if (r == CONFIG_EXIT)
        return 0;
    if (r == CONFIG_ERROR) {
        fprintf(stderr, "lwvhostd: %s\n", err);
        return 2;
    }
    log_level = cfg.log_level;
    int rc = 1;
    switch_init(&the_switch, &ports);
    fdb_configure(&the_switch.fdb, cfg.fdb_age_s, cfg.fdb_port_max);
    fdb_age(&the_switch.fdb, (uint32_t)(now_ms() / 1000));   /* start the table's clock */
    if (loop_init() < 0 || setup_signals() < 0 || mem_guard_install() < 0) {
        log_error("cannot set up the event loop: %s", strerror(errno));
        return 1;
    }
    if (workers_init(cfg.workers) < 0)
        goto out;
    workers_set_idle_us(cfg.idle_us);
    if (build_ports(&cfg) < 0)
        goto out;
    if (cfg.ctl_path[0] && ctl_open(cfg.ctl_path) < 0)
        goto out;
    if (cfg.ctl_path[0] && (cfg.ctl_mode >= 0 || cfg.ctl_gid >= 0) &&
        set_socket_perms(cfg.ctl_path, cfg.ctl_mode >= 0 ? cfg.ctl_mode : 0600, -1, cfg.ctl_gid) < 0)
        goto out;
    if (workers_start() < 0)
        goto out;
    log_info("lwvhostd running: %u port%s, %u worker%s", ports.n, ports.n == 1 ? "" : "s",
             cfg.workers, cfg.workers == 1 ? "" : "s");
    loop_run(tick);
    rc = 0;
out:
    shutdown_ports();
    ctl_close();
    workers_stop();
    free_ports();
    loop_fini();
    if (signal_fd >= 0)
        close(signal_fd);
    if (rc == 0)
        log_info("stopped");
    return rc;
}
