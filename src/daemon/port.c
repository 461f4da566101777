/*
 * port.c - see port.h.
 *
 * Adding a port builds it completely (device, listening socket or tap,
 * static MAC entry, queues given to workers) before it is published in
 * the table with a release store; workers find it only through the table
 * and the MAC table.  Removing one goes the other way: disconnect the
 * frontend (the device reset happens under its write lock), take its
 * queues or tap from the workers and its slot from the table, wait for a
 * grace period (workers_commit), and only then forget its MAC entries and
 * free it: a worker mid-pass may still be delivering to it until then.
 */
#define _GNU_SOURCE
#include "port.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"
#include "switch.h"
#include "tap.h"
#include "uplink.h"
#include "vu_ctrl.h"
#include "vxlan.h"
#include "worker.h"

#define BACKOFF_MIN_MS 100u
#define BACKOFF_MAX_MS 2000u

struct port_table ports;
static struct lswitch *the_switch;

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

void ports_init(struct lswitch *sw)
{
    the_switch = sw;
}

struct lswitch *ports_switch(void)
{
    return the_switch;
}

struct port *port_find(const char *name)
{
    for (unsigned i = 0; i < ports.n; i++) {
        struct port *p = ports.p[i];
        if (p && strcmp(p->name, name) == 0)
            return p;
    }
    return NULL;
}

/* ---- frontend connections ------------------------------------------------ */

static void conn_event(void *arg, uint32_t events);

static void drop_conn(struct port *p, const char *why)
{
    loop_del(p->conn_watch);
    p->conn_watch = NULL;
    vu_conn_detach(p, why);
    if (p->cfg.client) {
        p->backoff_ms = BACKOFF_MIN_MS;
        p->next_connect_ms = now_ms() + p->backoff_ms;
    }
}

static void start_conn(struct port *p, int fd)
{
    vu_conn_attach(p, fd);
    p->conn_watch = loop_add(fd, EPOLLIN, conn_event, p);
    if (!p->conn_watch)
        drop_conn(p, "cannot watch the connection");
}

static void conn_event(void *arg, uint32_t events)
{
    struct port *p = arg;
    (void)events;
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
    (void)events;
    int fd = accept4(p->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return;
    if (p->conn.fd >= 0 && old_conn_gone(p))
        conn_event(p, 0);   /* reads what is left, sees EOF, frees the device */
    if (p->conn.fd >= 0) {
        log_warn("port %s: refusing a second frontend while one is connected", p->name);
        close(fd);
        return;
    }
    start_conn(p, fd);
}

/* ---- sockets ---------------------------------------------------------------- */

static int fill_addr(struct sockaddr_un *sa, const char *path)
{
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sa->sun_path))
        return -1;
    strcpy(sa->sun_path, path);
    return 0;
}

int socket_clear_stale(const char *what, const char *path, char *err, size_t errlen)
{
    struct sockaddr_un sa;
    struct stat st;
    if (fill_addr(&sa, path) < 0) {
        snprintf(err, errlen, "%s: socket path %s is too long", what, path);
        return -1;
    }
    if (lstat(path, &st) < 0) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errlen, "%s: %s: %s", what, path, strerror(errno));
        return -1;
    }
    if (!S_ISSOCK(st.st_mode)) {
        snprintf(err, errlen, "%s: %s exists and is not a socket", what, path);
        return -1;
    }
    int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe >= 0 && connect(probe, (const struct sockaddr *)&sa, sizeof(sa)) == 0) {
        close(probe);
        snprintf(err, errlen, "%s: %s is in use by another process", what, path);
        return -1;
    }
    if (probe >= 0)
        close(probe);
    if (unlink(path) < 0) {
        snprintf(err, errlen, "%s: cannot remove the stale socket %s: %s", what, path,
                 strerror(errno));
        return -1;
    }
    return 0;
}

int socket_set_perms(const char *path, int mode, long uid, long gid, char *err, size_t errlen)
{
    if (chmod(path, (mode_t)mode) < 0) {
        snprintf(err, errlen, "chmod %s to %04o: %s", path, mode, strerror(errno));
        return -1;
    }
    if ((uid >= 0 || gid >= 0) && chown(path, (uid_t)uid, (gid_t)gid) < 0) {
        snprintf(err, errlen, "chown %s to %ld:%ld: %s", path, uid, gid, strerror(errno));
        return -1;
    }
    return 0;
}

static int open_listener(struct port *p, char *err, size_t errlen)
{
    struct sockaddr_un sa;
    char what[64];
    snprintf(what, sizeof(what), "port %s", p->name);
    if (socket_clear_stale(what, p->cfg.path, err, errlen) < 0)
        return -1;
    fill_addr(&sa, p->cfg.path);
    p->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (p->listen_fd < 0) {
        snprintf(err, errlen, "port %s: socket: %s", p->name, strerror(errno));
        return -1;
    }
    /* Bound under umask 0177 (0600), so never wider than asked. */
    mode_t old = umask(0177);
    int rc = bind(p->listen_fd, (struct sockaddr *)&sa, sizeof(sa));
    umask(old);
    if (rc < 0 || listen(p->listen_fd, 4) < 0) {
        snprintf(err, errlen, "port %s: cannot listen on %s: %s", p->name, p->cfg.path,
                 strerror(errno));
        if (rc == 0)
            unlink(p->cfg.path);
        goto fail;
    }
    p->bound = true;
    int mode = p->cfg.sock_mode >= 0 ? p->cfg.sock_mode : 0660;
    if (socket_set_perms(p->cfg.path, mode, p->cfg.sock_uid, p->cfg.sock_gid, err, errlen) < 0)
        goto fail;
    p->listen_watch = loop_add(p->listen_fd, EPOLLIN, accept_event, p);
    if (!p->listen_watch) {
        snprintf(err, errlen, "port %s: cannot watch its socket", p->name);
        goto fail;
    }
    log_info("port %s: listening on %s (%u queue pair%s)", p->name, p->cfg.path, p->queues,
             p->queues > 1 ? "s" : "");
    return 0;
fail:
    return -1;   /* close_listener undoes what was done */
}

static void close_listener(struct port *p)
{
    loop_del(p->listen_watch);
    p->listen_watch = NULL;
    if (p->listen_fd >= 0)
        close(p->listen_fd);
    p->listen_fd = -1;
    if (p->bound)
        unlink(p->cfg.path);
    p->bound = false;
}

static void try_connect(struct port *p, uint64_t now)
{
    struct sockaddr_un sa;
    fill_addr(&sa, p->cfg.path);
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
                 p->cfg.path, strerror(err));
    p->next_connect_ms = now + p->backoff_ms;
    p->backoff_ms = p->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : p->backoff_ms * 2;
}

int64_t ports_tick(uint64_t now)
{
    int64_t next = -1;
    for (unsigned i = 0; i < ports.n; i++) {
        struct port *p = ports.p[i];
        if (!p || p->type != PORT_VHOST || !p->cfg.client || p->conn.fd >= 0)
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
    return next;
}

/* ---- adding and removing ---------------------------------------------------- */

static bool uplink_clash(const struct port_cfg *pc, const struct port *p, char *why, size_t len);
static bool vxlan_clash(const struct port_cfg *pc, const struct port *p, char *why, size_t len);

/* Why spec cannot join the running ports (a name or socket path another
 * port has), or NULL. */
static const char *clash(const struct port_cfg *pc, char *why, size_t len)
{
    for (unsigned i = 0; i < ports.n; i++) {
        const struct port *p = ports.p[i];
        if (!p)
            continue;
        if (strcmp(p->name, pc->name) == 0) {
            snprintf(why, len, "a port named %s exists already", pc->name);
            return why;
        }
        if (pc->type == PORT_VHOST && p->type == PORT_VHOST &&
            strcmp(p->cfg.path, pc->path) == 0) {
            snprintf(why, len, "port %s: socket %s is port %s's", pc->name, pc->path, p->name);
            return why;
        }
        if (pc->type == PORT_UPLINK && uplink_clash(pc, p, why, len))
            return why;
        if (pc->type == PORT_VXLAN && vxlan_clash(pc, p, why, len))
            return why;
    }
    return NULL;
}

/* True (and why says so) when VXLAN port pc would listen where VXLAN port
 * p does: one local address and UDP port (the bind would fail). */
static bool vxlan_clash(const struct port_cfg *pc, const struct port *p, char *why, size_t len)
{
    if (p->type != PORT_VXLAN || p->cfg.vx.dstport != pc->vx.dstport ||
        memcmp(&p->cfg.vx.local, &pc->vx.local, sizeof(pc->vx.local)) != 0)
        return false;
    char a[INET6_ADDRSTRLEN];
    bool v6 = pc->vx.family == AF_INET6;
    snprintf(why, len, "vxlan %s: %s%s%s:%u is vxlan %s's", pc->name, v6 ? "[" : "",
             vxlan_ip_str(&pc->vx.local, a, sizeof(a)), v6 ? "]" : "", pc->vx.dstport, p->name);
    return true;
}

/* True (and why says so) when uplink pc would take an interface that p
 * already has: another uplink on it, or p is a tap of that name (frames
 * would loop between the two ports). */
static bool uplink_clash(const struct port_cfg *pc, const struct port *p, char *why, size_t len)
{
    if (p->type == PORT_UPLINK && strcmp(p->cfg.ifname, pc->ifname) == 0) {
        snprintf(why, len, "uplink %s: interface %s is uplink %s's", pc->name, pc->ifname,
                 p->name);
        return true;
    }
    if (p->type == PORT_TAP && strcmp(p->name, pc->ifname) == 0) {
        snprintf(why, len, "uplink %s: interface %s is tap port %s", pc->name, pc->ifname,
                 p->name);
        return true;
    }
    return false;
}

static int free_slot(void)
{
    for (unsigned i = 0; i < LWV_MAX_PORTS; i++)
        if (!ports.p[i])
            return (int)i;
    return -1;
}

static struct port *new_port(const struct port_cfg *pc, unsigned index, const struct policy *dflt)
{
    struct port *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->cfg = *pc;
    p->index = index;
    p->type = pc->type;
    p->sw = the_switch;
    snprintf(p->name, sizeof(p->name), "%s", pc->name);
    p->queues = pc->type == PORT_VHOST && pc->queues ? pc->queues : 1;
    memcpy(p->mac, pc->mac, 6);
    p->mac_set = pc->mac_set;
    p->antispoof = pc->antispoof;
    p->listen_fd = -1;
    p->conn.fd = -1;
    p->tap_fd = -1;
    p->backoff_ms = BACKOFF_MIN_MS;
    p->policy = policy_pack(pc->policy_set ? &pc->policy : dflt);
    dev_init(&p->dev, p, p->queues);
    return p;
}

/* Gives p's TX queues (or its tap or uplink socket) to the workers; nothing
 * is committed. */
static int assign_work(struct port *p)
{
    if (port_is_host(p))
        return worker_assign_tap(p);
    for (unsigned qp = 0; qp < p->queues; qp++)
        if (worker_assign_queue(&p->dev.q[2 * qp + 1]) < 0)
            return -1;
    return 0;
}

static void release_work(struct port *p)
{
    if (port_is_host(p)) {
        worker_release_tap(p);
        return;
    }
    for (unsigned qp = 0; qp < p->queues; qp++)
        worker_release_queue(&p->dev.q[2 * qp + 1]);
}

/* Frees a port nobody can reach any more (unpublished, grace period over). */
static void destroy(struct port *p)
{
    fdb_forget_port(&p->sw->fdb, p->index);   /* learned and static */
    if (p->type == PORT_TAP)
        tap_close(p);
    else if (p->type == PORT_UPLINK && p->uplink)
        uplink_close(p);
    else if (p->type == PORT_VXLAN && p->vxlan)
        vxlan_close(p);
    dev_fini(&p->dev);
    free(p);
}

/* Undoes a port_add that failed half-way (p was never published). */
static void abandon(struct port *p)
{
    release_work(p);
    workers_commit();
    close_listener(p);
    destroy(p);
}

int port_add(const struct port_cfg *pc, const struct policy *dflt, char *err, size_t errlen)
{
    char why[200];
    if (clash(pc, why, sizeof(why))) {
        snprintf(err, errlen, "%s", why);
        return -1;
    }
    int slot = free_slot();
    if (slot < 0) {
        snprintf(err, errlen, "port %s: the daemon has %d ports already", pc->name,
                 LWV_MAX_PORTS);
        return -1;
    }
    struct port *p = new_port(pc, (unsigned)slot, dflt);
    if (!p) {
        snprintf(err, errlen, "port %s: out of memory", pc->name);
        return -1;
    }
    if (p->type == PORT_TAP && tap_open(p, p->name) < 0) {
        snprintf(err, errlen, "tap %s: cannot open it (see the daemon's log)", p->name);
        goto fail;
    }
    if (p->type == PORT_UPLINK &&
        uplink_open(p, err, errlen) < 0)
        goto fail;
    if (p->type == PORT_VXLAN && vxlan_open(p, &p->cfg.vx, err, errlen) < 0)
        goto fail;
    if (p->mac_set && switch_add_static(p->sw, p->mac, p->index) < 0) {
        char m[18];
        snprintf(err, errlen, "port %s: mac=%s cannot be a static MAC table entry (another "
                 "port has it)", p->name, mac_str(p->mac, m));
        goto fail;
    }
    if (assign_work(p) < 0) {
        snprintf(err, errlen, "port %s: out of memory assigning it to a worker", p->name);
        goto fail;
    }
    if (p->type == PORT_VHOST && !p->cfg.client && open_listener(p, err, errlen) < 0)
        goto fail;
    workers_commit();
    /* Published fully built: workers load slots with acquire. */
    __atomic_store_n(&ports.p[slot], p, __ATOMIC_RELEASE);
    if ((unsigned)slot >= ports.n)
        __atomic_store_n(&ports.n, (unsigned)slot + 1, __ATOMIC_RELEASE);
    if (p->type == PORT_VHOST && p->cfg.client)
        log_info("port %s: client mode, connecting to %s", p->name, p->cfg.path);
    if (p->type == PORT_VXLAN)
        ports_check_mtu();
    return 0;
fail:
    abandon(p);
    return -1;
}

void port_del(struct port *p, const char *why)
{
    if (p->type == PORT_VHOST) {
        if (p->conn.fd >= 0)
            drop_conn(p, why);
        close_listener(p);
    }
    release_work(p);
    __atomic_store_n(&ports.p[p->index], NULL, __ATOMIC_RELEASE);
    /* Returns after a grace period: no worker holds p, its queues or its
     * tap fd any more. */
    workers_commit();
    log_info("port %s: removed (%s)", p->name, why);
    destroy(p);
}

void ports_remove_all(const char *why)
{
    for (unsigned i = 0; i < ports.n; i++)
        if (ports.p[i])
            port_del(ports.p[i], why);
    __atomic_store_n(&ports.n, 0, __ATOMIC_RELEASE);
}

/* ---- MTU: guests against VXLAN ports ---------------------------------------- */

/* Warns when guest port g may send frames VXLAN port x cannot carry: its
 * MTU (NET_SET_MTU, QEMU's host_mtu; 1500 when none was set) is larger
 * than x's inner MTU.  Such frames are dropped at x and counted. */
static void warn_mtu(const struct port *g, const struct port *x)
{
    uint32_t gm = g->dev.mtu ? g->dev.mtu : 1500;
    if (gm <= x->cfg.vx.mtu)
        return;
    log_warn("port %s: MTU %u%s is larger than vxlan %s's %u: its frames over %u bytes to %s "
             "are dropped (give the guest host_mtu=%u on the QEMU NIC)", g->name, gm,
             g->dev.mtu ? "" : " (no host_mtu set, the guest's default)", x->name,
             x->cfg.vx.mtu, x->cfg.vx.mtu, x->name, x->cfg.vx.mtu);
}

void ports_check_mtu(void)
{
    for (unsigned i = 0; i < ports.n; i++) {
        const struct port *x = ports.p[i];
        if (!x || x->type != PORT_VXLAN)
            continue;
        for (unsigned k = 0; k < ports.n; k++) {
            const struct port *g = ports.p[k];
            if (g && g->type == PORT_VHOST && g->dev.connected)
                warn_mtu(g, x);
        }
    }
}

void port_check_mtu(const struct port *g)
{
    for (unsigned i = 0; i < ports.n; i++) {
        const struct port *x = ports.p[i];
        if (x && x->type == PORT_VXLAN)
            warn_mtu(g, x);
    }
}
