/*
 * ctl.c - see ctl.h.  Protocol: the client sends one line ("stats json\n"),
 * the daemon answers with text and closes.  An answer that starts with
 * "error:" reports a bad command.
 */
#define _GNU_SOURCE
#include "ctl.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "device.h"
#include "log.h"
#include "loop.h"
#include "port.h"
#include "switch.h"
#include "vu_ctrl.h"
#include "worker.h"

#define CTL_LINE_MAX 1024
#define CTL_CLIENTS_MAX 16

struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
};

static void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = b->cap - b->len;
        int n = b->p ? vsnprintf(b->p + b->len, room, fmt, ap) : -1;
        va_end(ap);
        if (n >= 0 && (size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (n >= 0 && cap - b->len <= (size_t)n)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
}

static const char *port_state(const struct port *p)
{
    if (p->type == PORT_TAP)
        return "up";
    if (!p->dev.connected)
        return p->client ? "connecting" : "listening";
    if (__atomic_load_n(&p->dev.broken, __ATOMIC_RELAXED))
        return "broken";
    return "connected";
}

static const char *queue_state(const struct vdev *d, const struct vqueue *q)
{
    if (!d->connected)
        return "down";
    if (q->vq.broken_reason || __atomic_load_n(&d->broken, __ATOMIC_RELAXED))
        return "broken";
    if (dev_queue_ready(d, q))
        return "ready";
    if (q->enable == 0)
        return "disabled";
    return "stopped";
}

static unsigned ready_pairs(const struct vdev *d)
{
    unsigned n = 0;
    for (unsigned i = 0; i < d->max_qp; i++)
        if (dev_queue_ready(d, &d->q[2 * i]) || dev_queue_ready(d, &d->q[2 * i + 1]))
            n++;
    return n;
}

static void macs_text(struct sbuf *b, const struct port *p, bool json)
{
    uint8_t macs[8][6];
    unsigned n = switch_port_macs(p->index, macs, 8);
    char s[18];
    for (unsigned i = 0; i < n; i++)
        sb_printf(b, json ? "%s\"%s\"" : "%s%s", i ? (json ? "," : " ") : "", mac_str(macs[i], s));
    if (!n && !json)
        sb_printf(b, "-");
}

static void render_ports(struct sbuf *b, bool json)
{
    if (json)
        sb_printf(b, "{\"ports\":[");
    else
        sb_printf(b, "%-16s %-6s %-11s %-7s %-18s %-18s %-5s %s\n", "PORT", "TYPE", "STATE",
                  "QUEUES", "FEATURES", "PROTOCOL", "MTU", "MACS");
    for (unsigned i = 0; i < ports.n; i++) {
        const struct port *p = ports.p[i];
        const struct vdev *d = &p->dev;
        bool vh = p->type == PORT_VHOST;
        if (json) {
            sb_printf(b, "%s{\"name\":\"%s\",\"type\":\"%s\",\"state\":\"%s\"", i ? "," : "",
                      p->name, vh ? "vhost" : "tap", port_state(p));
            if (vh)
                sb_printf(b, ",\"path\":\"%s\",\"mode\":\"%s\",\"connected\":%s,"
                          "\"max_queue_pairs\":%u,\"active_queue_pairs\":%u,"
                          "\"features\":\"0x%llx\",\"protocol_features\":\"0x%llx\","
                          "\"mtu\":%u,\"status\":%u,\"connects\":%llu",
                          p->path, p->client ? "client" : "server",
                          d->connected ? "true" : "false", d->max_qp, ready_pairs(d),
                          (unsigned long long)d->features,
                          (unsigned long long)d->protocol_features, d->mtu, d->status,
                          (unsigned long long)p->connects);
            sb_printf(b, ",\"macs\":[");
            macs_text(b, p, true);
            sb_printf(b, "]}");
            continue;
        }
        char qs[24], fs[20] = "-", ps[20] = "-", mtu[12] = "-";
        if (vh) {
            snprintf(qs, sizeof(qs), "%u/%u", ready_pairs(d), d->max_qp);
            if (d->features_set)
                snprintf(fs, sizeof(fs), "0x%llx", (unsigned long long)d->features);
            if (d->connected)
                snprintf(ps, sizeof(ps), "0x%llx", (unsigned long long)d->protocol_features);
            if (d->mtu)
                snprintf(mtu, sizeof(mtu), "%u", d->mtu);
        } else {
            snprintf(qs, sizeof(qs), "-");
        }
        sb_printf(b, "%-16s %-6s %-11s %-7s %-18s %-18s %-5s ", p->name, vh ? "vhost" : "tap",
                  port_state(p), qs, fs, ps, mtu);
        macs_text(b, p, false);
        sb_printf(b, "\n");
    }
    if (json)
        sb_printf(b, "]}\n");
}

struct qsum {
    uint64_t rx_packets, rx_bytes, rx_drops, tx_packets, tx_bytes, tx_drops, kicks, calls;
};

static void sum_pair(const struct vdev *d, unsigned qp, struct qsum *s)
{
    const struct q_stats *rx = &d->q[2 * qp].st, *tx = &d->q[2 * qp + 1].st;
    s->rx_packets = stat_get(&rx->packets);
    s->rx_bytes = stat_get(&rx->bytes);
    s->rx_drops = stat_get(&rx->drops_full) + stat_get(&rx->drops_invalid) +
                  stat_get(&rx->drops_nodest);
    s->tx_packets = stat_get(&tx->packets);
    s->tx_bytes = stat_get(&tx->bytes);
    s->tx_drops = stat_get(&tx->drops_invalid) + stat_get(&tx->drops_full) +
                  stat_get(&tx->drops_nodest);
    s->kicks = stat_get(&tx->kicks) + stat_get(&rx->kicks);
    s->calls = stat_get(&tx->calls) + stat_get(&rx->calls);
}

static void json_queue(struct sbuf *b, const struct vdev *d, unsigned i)
{
    const struct vqueue *q = &d->q[i];
    const struct q_stats *st = &q->st;
    sb_printf(b, "%s{\"index\":%u,\"dir\":\"%s\",\"state\":\"%s\",\"packets\":%llu,"
              "\"bytes\":%llu,\"drops_full\":%llu,\"drops_invalid\":%llu,"
              "\"drops_nodest\":%llu,\"kicks\":%llu,\"calls\":%llu,\"passes\":%llu}",
              i ? "," : "", i, i % 2 ? "tx" : "rx", queue_state(d, q),
              (unsigned long long)stat_get(&st->packets), (unsigned long long)stat_get(&st->bytes),
              (unsigned long long)stat_get(&st->drops_full),
              (unsigned long long)stat_get(&st->drops_invalid),
              (unsigned long long)stat_get(&st->drops_nodest),
              (unsigned long long)stat_get(&st->kicks), (unsigned long long)stat_get(&st->calls),
              (unsigned long long)stat_get(&st->passes));
}

static void render_stats(struct sbuf *b, bool json)
{
    if (json)
        sb_printf(b, "{\"ports\":[");
    else
        sb_printf(b, "%-16s %-3s %-8s %12s %14s %9s %12s %14s %9s %10s %10s\n", "PORT", "QP",
                  "STATE", "RX-PKTS", "RX-BYTES", "RX-DROP", "TX-PKTS", "TX-BYTES", "TX-DROP",
                  "KICKS", "CALLS");
    for (unsigned i = 0; i < ports.n; i++) {
        const struct port *p = ports.p[i];
        if (p->type == PORT_TAP) {
            const struct tap_stats *t = &p->tap;
            /* For the tap, "rx" is what the switch delivered to the host
             * side, as for a guest: frames leaving the switch. */
            if (json)
                sb_printf(b, "%s{\"name\":\"%s\",\"type\":\"tap\",\"rx_packets\":%llu,"
                          "\"rx_bytes\":%llu,\"rx_drops\":%llu,\"tx_packets\":%llu,"
                          "\"tx_bytes\":%llu,\"tx_drops\":%llu}", i ? "," : "", p->name,
                          (unsigned long long)stat_get(&t->tx_packets),
                          (unsigned long long)stat_get(&t->tx_bytes),
                          (unsigned long long)stat_get(&t->tx_drops),
                          (unsigned long long)stat_get(&t->rx_packets),
                          (unsigned long long)stat_get(&t->rx_bytes),
                          (unsigned long long)stat_get(&t->rx_drops));
            else
                sb_printf(b, "%-16s %-3s %-8s %12llu %14llu %9llu %12llu %14llu %9llu %10s %10s\n",
                          p->name, "-", "up", (unsigned long long)stat_get(&t->tx_packets),
                          (unsigned long long)stat_get(&t->tx_bytes),
                          (unsigned long long)stat_get(&t->tx_drops),
                          (unsigned long long)stat_get(&t->rx_packets),
                          (unsigned long long)stat_get(&t->rx_bytes),
                          (unsigned long long)stat_get(&t->rx_drops), "-", "-");
            continue;
        }
        const struct vdev *d = &p->dev;
        struct qsum tot = { 0 };
        for (unsigned qp = 0; qp < d->max_qp; qp++) {
            struct qsum s;
            sum_pair(d, qp, &s);
            tot.rx_packets += s.rx_packets; tot.rx_bytes += s.rx_bytes; tot.rx_drops += s.rx_drops;
            tot.tx_packets += s.tx_packets; tot.tx_bytes += s.tx_bytes; tot.tx_drops += s.tx_drops;
            tot.kicks += s.kicks; tot.calls += s.calls;
            if (!json)
                sb_printf(b, "%-16s %-3u %-8s %12llu %14llu %9llu %12llu %14llu %9llu %10llu %10llu\n",
                          p->name, qp, queue_state(d, &d->q[2 * qp + 1]),
                          (unsigned long long)s.rx_packets, (unsigned long long)s.rx_bytes,
                          (unsigned long long)s.rx_drops, (unsigned long long)s.tx_packets,
                          (unsigned long long)s.tx_bytes, (unsigned long long)s.tx_drops,
                          (unsigned long long)s.kicks, (unsigned long long)s.calls);
        }
        if (!json)
            continue;
        sb_printf(b, "%s{\"name\":\"%s\",\"type\":\"vhost\",\"state\":\"%s\",\"rx_packets\":%llu,"
                  "\"rx_bytes\":%llu,\"rx_drops\":%llu,\"tx_packets\":%llu,\"tx_bytes\":%llu,"
                  "\"tx_drops\":%llu,\"kicks\":%llu,\"calls\":%llu,\"queues\":[",
                  i ? "," : "", p->name, port_state(p), (unsigned long long)tot.rx_packets,
                  (unsigned long long)tot.rx_bytes, (unsigned long long)tot.rx_drops,
                  (unsigned long long)tot.tx_packets, (unsigned long long)tot.tx_bytes,
                  (unsigned long long)tot.tx_drops, (unsigned long long)tot.kicks,
                  (unsigned long long)tot.calls);
        for (unsigned q = 0; q < 2 * d->max_qp; q++)
            json_queue(b, d, q);
        sb_printf(b, "]}");
    }
    if (json)
        sb_printf(b, "],\"workers\":[");
    else
        sb_printf(b, "\n%-8s %-8s %12s %12s %12s %12s %12s\n", "WORKER", "TID", "WAKEUPS",
                  "KICK-WAKES", "PASSES", "EMPTY", "FRAMES");
    for (unsigned i = 0; i < workers_count(); i++) {
        struct worker_stats ws;
        struct worker *w = worker_get(i);
        worker_get_stats(w, &ws);
        if (json)
            sb_printf(b, "%s{\"id\":%u,\"tid\":%d,\"wakeups\":%llu,\"kick_wakeups\":%llu,"
                      "\"passes\":%llu,\"empty_passes\":%llu,\"frames\":%llu}", i ? "," : "", i,
                      worker_tid(w), (unsigned long long)ws.wakeups,
                      (unsigned long long)ws.kick_wakeups, (unsigned long long)ws.passes,
                      (unsigned long long)ws.empty_passes, (unsigned long long)ws.frames);
        else
            sb_printf(b, "%-8u %-8d %12llu %12llu %12llu %12llu %12llu\n", i, worker_tid(w),
                      (unsigned long long)ws.wakeups, (unsigned long long)ws.kick_wakeups,
                      (unsigned long long)ws.passes, (unsigned long long)ws.empty_passes,
                      (unsigned long long)ws.frames);
    }
    if (json)
        sb_printf(b, "]}\n");
}

char *ctl_execute(const char *line)
{
    struct sbuf b = { 0 };
    char cmd[32] = "", arg[32] = "", extra[8] = "";
    int n = sscanf(line, "%31s %31s %7s", cmd, arg, extra);
    bool json = strcmp(arg, "json") == 0;
    if (n >= 1 && n <= 2 && (n == 1 || json) && strcmp(cmd, "ports") == 0)
        render_ports(&b, json);
    else if (n >= 1 && n <= 2 && (n == 1 || json) && strcmp(cmd, "stats") == 0)
        render_stats(&b, json);
    else if (n == 1 && strcmp(cmd, "help") == 0)
        sb_printf(&b, "commands: ports [json] | stats [json] | help\n");
    else
        sb_printf(&b, "error: unknown command '%.64s' (try: help)\n", line);
    if (b.oom) {
        free(b.p);
        return strdup("error: out of memory\n");
    }
    return b.p;
}

/* ---- socket ------------------------------------------------------------ */

struct ctl_client {
    int fd;
    struct loop_watch *watch;
    char in[CTL_LINE_MAX];
    size_t inlen;
    char *out;
    size_t outlen, outoff;
};

static int listen_fd = -1;
static struct loop_watch *listen_watch;
static char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
static unsigned nclients;

static void client_close(struct ctl_client *c)
{
    loop_del(c->watch);
    close(c->fd);
    free(c->out);
    free(c);
    nclients--;
}

static void client_write(struct ctl_client *c)
{
    while (c->outoff < c->outlen) {
        ssize_t w = send(c->fd, c->out + c->outoff, c->outlen - c->outoff,
                         MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EAGAIN) {
                loop_mod(c->watch, EPOLLOUT);
                return;
            }
            break;
        }
        c->outoff += (size_t)w;
    }
    client_close(c);
}

static void client_event(void *arg, uint32_t events)
{
    struct ctl_client *c = arg;
    if (c->out) {
        client_write(c);
        return;
    }
    ssize_t r = recv(c->fd, c->in + c->inlen, sizeof(c->in) - 1 - c->inlen, MSG_DONTWAIT);
    if (r < 0 && errno == EAGAIN)
        return;
    if (r <= 0) {
        client_close(c);
        return;
    }
    c->inlen += (size_t)r;
    c->in[c->inlen] = 0;
    char *nl = strchr(c->in, '\n');
    if (!nl && c->inlen < sizeof(c->in) - 1)
        return;
    if (nl)
        *nl = 0;
    c->out = ctl_execute(c->in);
    if (!c->out) {
        client_close(c);
        return;
    }
    c->outlen = strlen(c->out);
    client_write(c);
}

static void accept_event(void *arg, uint32_t events)
{
    int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return;
    if (nclients >= CTL_CLIENTS_MAX) {
        close(fd);
        return;
    }
    struct ctl_client *c = calloc(1, sizeof(*c));
    if (!c) {
        close(fd);
        return;
    }
    c->fd = fd;
    c->watch = loop_add(fd, EPOLLIN, client_event, c);
    if (!c->watch) {
        close(fd);
        free(c);
        return;
    }
    nclients++;
}

int ctl_open(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof(sa.sun_path)) {
        log_error("control socket path too long: %s", path);
        return -1;
    }
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (listen_fd < 0)
        return -1;
    unlink(path);
    mode_t old = umask(0177);   /* created 0600 from the start: no window */
    int rc = bind(listen_fd, (struct sockaddr *)&sa, sizeof(sa));
    umask(old);
    if (rc < 0 || listen(listen_fd, 8) < 0) {
        log_error("control socket %s: %s", path, strerror(errno));
        close(listen_fd);
        listen_fd = -1;
        return -1;
    }
    snprintf(sock_path, sizeof(sock_path), "%s", path);
    listen_watch = loop_add(listen_fd, EPOLLIN, accept_event, NULL);
    return listen_watch ? 0 : -1;
}

void ctl_close(void)
{
    if (listen_fd < 0)
        return;
    loop_del(listen_watch);
    close(listen_fd);
    unlink(sock_path);
    listen_fd = -1;
}
