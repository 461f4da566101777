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
#include <stddef.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon.h"
#include "device.h"
#include "log.h"
#include "loop.h"
#include "port.h"
#include "switch.h"
#include "vu_ctrl.h"
#include "policy.h"
#include "trace_fmt.h"
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
    if (dev_is_broken(&p->dev))
        return "broken";
    return "connected";
}

static const char *queue_state(const struct vdev *d, const struct vqueue *q)
{
    if (!d->connected)
        return "down";
    if (vq_broken(&q->vq) || dev_is_broken(d))
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
    unsigned n = switch_port_macs(p->sw, p->index, macs, 8);
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
                          (unsigned long long)d->protocol_features, d->mtu,
                          __atomic_load_n(&d->status, __ATOMIC_RELAXED),
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
                  stat_get(&tx->drops_nodest) + stat_get(&tx->drops_spoofed);
    s->kicks = stat_get(&tx->kicks) + stat_get(&rx->kicks);
    s->calls = stat_get(&tx->calls) + stat_get(&rx->calls);
}

static void json_queue(struct sbuf *b, const struct vdev *d, unsigned i)
{
    const struct vqueue *q = &d->q[i];
    const struct q_stats *st = &q->st;
    sb_printf(b, "%s{\"index\":%u,\"dir\":\"%s\",\"state\":\"%s\",\"packets\":%llu,"
              "\"bytes\":%llu,\"drops_full\":%llu,\"drops_invalid\":%llu,"
              "\"drops_nodest\":%llu,\"drops_spoofed\":%llu,\"kicks\":%llu,\"calls\":%llu,\"passes\":%llu,"
              "\"notify_enables\":%llu,\"notify_disables\":%llu,\"batch_hist\":[",
              i ? "," : "", i, i % 2 ? "tx" : "rx", queue_state(d, q),
              (unsigned long long)stat_get(&st->packets), (unsigned long long)stat_get(&st->bytes),
              (unsigned long long)stat_get(&st->drops_full),
              (unsigned long long)stat_get(&st->drops_invalid),
              (unsigned long long)stat_get(&st->drops_nodest),
              (unsigned long long)stat_get(&st->drops_spoofed),
              (unsigned long long)stat_get(&st->kicks), (unsigned long long)stat_get(&st->calls),
              (unsigned long long)stat_get(&st->passes),
              (unsigned long long)stat_get(&q->vq.notify_enables),
              (unsigned long long)stat_get(&q->vq.notify_disables));
    for (unsigned k = 0; k < BATCH_BUCKETS; k++)
        sb_printf(b, "%s%llu", k ? "," : "", (unsigned long long)stat_get(&st->batch[k]));
    sb_printf(b, "]}");
}

/* ---- ring indexes, like QEMU's `info virtio-queue-status` -------------- */

struct ring_snap {
    unsigned index, num;
    uint16_t avail, last_avail, used, guest_used;
    bool mapped, notify_off;
    const char *state, *broken;
};

/* Copies one device's ring state under its write lock, so no worker is in
 * the middle of a pass; returns the number of rings copied. */
static unsigned snap_rings(struct vdev *d, struct ring_snap *r)
{
    unsigned n = 0;
    vu_dev_lock(d);
    for (unsigned i = 0; d->connected && i < 2 * d->max_qp; i++) {
        const struct vqueue *q = &d->q[i];
        if (!q->vq.num)
            continue;
        r[n] = (struct ring_snap){
            .index = i, .num = q->vq.num, .mapped = q->vq.avail && q->vq.used,
            .avail = vq_guest_avail_idx(&q->vq), .last_avail = q->vq.last_avail,
            .used = q->vq.used_idx, .guest_used = vq_guest_used_idx(&q->vq),
            .notify_off = q->vq.notify_off, .state = queue_state(d, q),
            .broken = vq_broken(&q->vq),
        };
        n++;
    }
    vu_dev_unlock(d);
    return n;
}

/* Per ring: the driver's avail index, the next entry we will consume
 * (last_avail), the used index we publish and what guest memory holds.
 * avail - last_avail is waiting for us; last_avail - used is in flight. */
static void render_rings(struct sbuf *b, bool json)
{
    static struct ring_snap r[LWV_MAX_VQS];
    if (json)
        sb_printf(b, "{\"rings\":[");
    else
        sb_printf(b, "%-16s %5s %-3s %-9s %5s %6s %10s %6s %10s %6s %7s %s\n", "PORT", "QUEUE",
                  "DIR", "STATE", "SIZE", "AVAIL", "LAST_AVAIL", "USED", "GUEST_USED", "NOTIFY",
                  "WAITING", "BROKEN");
    bool first = true;
    for (unsigned pi = 0; pi < ports.n; pi++) {
        struct port *p = ports.p[pi];
        if (p->type != PORT_VHOST)
            continue;
        unsigned n = snap_rings(&p->dev, r);
        for (unsigned k = 0; k < n; k++) {
            const struct ring_snap *s = &r[k];
            const char *dir = s->index % 2 ? "tx" : "rx";
            uint16_t waiting = (uint16_t)(s->avail - s->last_avail);
            if (json) {
                sb_printf(b, "%s{\"port\":\"%s\",\"queue\":%u,\"dir\":\"%s\",\"state\":\"%s\","
                          "\"size\":%u,\"mapped\":%s,\"avail_idx\":%u,\"last_avail_idx\":%u,"
                          "\"used_idx\":%u,\"guest_used_idx\":%u,\"notify\":%s,"
                          "\"waiting\":%u,\"broken\":",
                          first ? "" : ",", p->name, s->index, dir, s->state, s->num,
                          s->mapped ? "true" : "false", s->avail, s->last_avail, s->used,
                          s->guest_used, s->notify_off ? "false" : "true", waiting);
                if (s->broken)
                    sb_printf(b, "\"%s\"}", s->broken);
                else
                    sb_printf(b, "null}");
                first = false;
                continue;
            }
            sb_printf(b, "%-16s %5u %-3s %-9s %5u %6u %10u %6u %10u %6s %7u %s\n", p->name,
                      s->index, dir, s->state, s->num, s->avail, s->last_avail, s->used,
                      s->guest_used, s->notify_off ? "off" : "on", waiting,
                      s->broken ? s->broken : "-");
        }
    }
    if (json)
        sb_printf(b, "]}\n");
}

/* ---- worker threads, as pidstat -t would see them ---------------------- */

struct wsample {
    int tid;
    uint64_t utime_ticks, stime_ticks, vcsw, nvcsw;
    struct worker_stats st;
};

/* Reads utime/stime (clock ticks) from /proc/self/task/TID/stat and the
 * context switch counts from .../status. */
static void read_task(int tid, struct wsample *w)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/self/task/%d/stat", tid);
    FILE *f = fopen(path, "r");
    if (f) {
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        buf[n] = 0;
        fclose(f);
        /* Fields after the command name, which may hold spaces: ") S ppid ..." */
        char *rp = strrchr(buf, ')');
        unsigned long long ut = 0, st = 0;
        if (rp && sscanf(rp + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut,
                         &st) == 2) {
            w->utime_ticks = ut;
            w->stime_ticks = st;
        }
    }
    snprintf(path, sizeof(path), "/proc/self/task/%d/status", tid);
    f = fopen(path, "r");
    if (!f)
        return;
    while (fgets(buf, sizeof(buf), f)) {
        unsigned long long v;
        if (sscanf(buf, "voluntary_ctxt_switches: %llu", &v) == 1)
            w->vcsw = v;
        else if (sscanf(buf, "nonvoluntary_ctxt_switches: %llu", &v) == 1)
            w->nvcsw = v;
    }
    fclose(f);
}

static void sample_worker(unsigned i, struct wsample *w)
{
    memset(w, 0, sizeof(*w));
    struct worker *wk = worker_get(i);
    w->tid = worker_tid(wk);
    worker_get_stats(wk, &w->st);
    if (w->tid > 0)
        read_task(w->tid, w);
}

static double ticks_to_s(uint64_t t)
{
    static long hz;
    if (!hz)
        hz = sysconf(_SC_CLK_TCK) > 0 ? sysconf(_SC_CLK_TCK) : 100;
    return (double)t / (double)hz;
}

/* Baseline for "stats delta": one shared previous sample. */
static struct wsample prev_ws[64];
static uint64_t prev_ns;

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void render_workers(struct sbuf *b, bool json, bool delta)
{
    unsigned n = workers_count();
    uint64_t now = mono_ns();
    double dt = prev_ns ? (double)(now - prev_ns) / 1e9 : 0;
    if (json)
        sb_printf(b, "\"workers\":[");
    else if (delta)
        sb_printf(b, "\n%-7s %-8s %7s %7s %7s %9s %9s %10s %9s %9s %9s %-9s\n", "WORKER", "TID",
                  "%usr", "%system", "%CPU", "cswch/s", "nvcswch/s", "frames/s", "wakes/s",
                  "ticks/s", "overslp", "adaptive");
    else
        sb_printf(b, "\n%-7s %-8s %10s %10s %12s %12s %12s %12s %10s %9s %-9s\n", "WORKER", "TID",
                  "CPU-s", "SLEEP-s", "WAKEUPS", "KICK-WAKES", "TICKS", "FRAMES", "OVERSLP",
                  "WAKECOST", "adaptive");
    for (unsigned i = 0; i < n; i++) {
        struct wsample w;
        sample_worker(i, &w);
        const struct worker_stats *st = &w.st;
        char ad[32];
        snprintf(ad, sizeof(ad), "%s", eff_name((enum eff_mode)st->adaptive_eff));
        if (st->adaptive_eff == EFF_INTERVAL)
            snprintf(ad, sizeof(ad), "int:%lluus", (unsigned long long)(st->adaptive_interval_ns / 1000));
        double avg_late = st->timer_wakeups ? (double)st->oversleep_ns / (double)st->timer_wakeups / 1000 : 0;
        if (json) {
            sb_printf(b, "%s{\"id\":%u,\"tid\":%d,\"cpu_ns\":%llu,\"cpu_user_ns\":%llu,"
                      "\"cpu_sys_ns\":%llu,\"ctx_voluntary\":%llu,\"ctx_involuntary\":%llu,"
                      "\"wakeups\":%llu,\"kick_wakeups\":%llu,\"timer_wakeups\":%llu,"
                      "\"passes\":%llu,\"empty_passes\":%llu,\"frames\":%llu,\"sleep_ns\":%llu,"
                      "\"oversleep_ns\":%llu,\"oversleep_max_ns\":%llu,\"wake_cost_ns\":%llu,"
                      "\"calib_oversleep_ns\":%llu,\"adaptive_mode\":\"%s\","
                      "\"adaptive_interval_ns\":%llu,\"adaptive_rate\":%llu,"
                      "\"adaptive_decisions\":%llu}",
                      i ? "," : "", i, w.tid, (unsigned long long)st->cpu_ns,
                      (unsigned long long)(ticks_to_s(w.utime_ticks) * 1e9),
                      (unsigned long long)(ticks_to_s(w.stime_ticks) * 1e9),
                      (unsigned long long)w.vcsw, (unsigned long long)w.nvcsw,
                      (unsigned long long)st->wakeups, (unsigned long long)st->kick_wakeups,
                      (unsigned long long)st->timer_wakeups, (unsigned long long)st->passes,
                      (unsigned long long)st->empty_passes, (unsigned long long)st->frames,
                      (unsigned long long)st->sleep_ns, (unsigned long long)st->oversleep_ns,
                      (unsigned long long)st->oversleep_max_ns,
                      (unsigned long long)st->wake_cost_ns,
                      (unsigned long long)st->calib_oversleep_ns,
                      eff_name((enum eff_mode)st->adaptive_eff),
                      (unsigned long long)st->adaptive_interval_ns,
                      (unsigned long long)st->adaptive_rate,
                      (unsigned long long)st->adaptive_decisions);
        } else if (delta) {
            const struct wsample *p = i < 64 ? &prev_ws[i] : &w;
            double usr = dt ? (ticks_to_s(w.utime_ticks - p->utime_ticks)) / dt * 100 : 0;
            double sys = dt ? (ticks_to_s(w.stime_ticks - p->stime_ticks)) / dt * 100 : 0;
            double cpu = dt ? (double)(st->cpu_ns - p->st.cpu_ns) / 1e9 / dt * 100 : 0;
            double rate = dt ? 1 / dt : 0;
            uint64_t dticks = st->timer_wakeups - p->st.timer_wakeups;
            double late = dticks ? (double)(st->oversleep_ns - p->st.oversleep_ns) / (double)dticks / 1000 : 0;
            sb_printf(b, "%-7u %-8d %7.2f %7.2f %7.2f %9.1f %9.1f %10.0f %9.0f %9.0f %7.1fus %-9s\n",
                      i, w.tid, usr, sys, cpu, (double)(w.vcsw - p->vcsw) * rate,
                      (double)(w.nvcsw - p->nvcsw) * rate,
                      (double)(st->frames - p->st.frames) * rate,
                      (double)(st->wakeups - p->st.wakeups) * rate, (double)dticks * rate, late,
                      ad);
        } else {
            sb_printf(b, "%-7u %-8d %10.3f %10.3f %12llu %12llu %12llu %12llu %8.1fus %7lluns %-9s\n",
                      i, w.tid, (double)st->cpu_ns / 1e9, (double)st->sleep_ns / 1e9,
                      (unsigned long long)st->wakeups, (unsigned long long)st->kick_wakeups,
                      (unsigned long long)st->timer_wakeups, (unsigned long long)st->frames,
                      avg_late, (unsigned long long)st->wake_cost_ns, ad);
        }
        if (delta && i < 64)
            prev_ws[i] = w;
    }
    if (delta)
        prev_ns = now;
    if (json)
        sb_printf(b, "]");
}

static void render_stats(struct sbuf *b, bool json, bool delta)
{
    if (json)
        sb_printf(b, "{\"ports\":[");
    else
        sb_printf(b, "%-16s %-3s %-8s %-13s %12s %14s %9s %12s %14s %9s %10s %10s\n", "PORT", "QP",
                  "STATE", "POLICY", "RX-PKTS", "RX-BYTES", "RX-DROP", "TX-PKTS", "TX-BYTES",
                  "TX-DROP", "KICKS", "CALLS");
    for (unsigned i = 0; i < ports.n; i++) {
        const struct port *p = ports.p[i];
        char pol[32];
        struct policy pp = policy_unpack(__atomic_load_n(&p->policy, __ATOMIC_RELAXED));
        policy_str(&pp, pol, sizeof(pol));
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
                sb_printf(b, "%-16s %-3s %-8s %-13s %12llu %14llu %9llu %12llu %14llu %9llu %10s %10s\n",
                          p->name, "-", "up", "-", (unsigned long long)stat_get(&t->tx_packets),
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
                sb_printf(b, "%-16s %-3u %-8s %-13s %12llu %14llu %9llu %12llu %14llu %9llu %10llu %10llu\n",
                          p->name, qp, queue_state(d, &d->q[2 * qp + 1]), pol,
                          (unsigned long long)s.rx_packets, (unsigned long long)s.rx_bytes,
                          (unsigned long long)s.rx_drops, (unsigned long long)s.tx_packets,
                          (unsigned long long)s.tx_bytes, (unsigned long long)s.tx_drops,
                          (unsigned long long)s.kicks, (unsigned long long)s.calls);
        }
        if (!json)
            continue;
        sb_printf(b, "%s{\"name\":\"%s\",\"type\":\"vhost\",\"state\":\"%s\",\"policy\":\"%s\","
                  "\"rx_packets\":%llu,\"rx_bytes\":%llu,\"rx_drops\":%llu,\"tx_packets\":%llu,"
                  "\"tx_bytes\":%llu,\"tx_drops\":%llu,\"kicks\":%llu,\"calls\":%llu,\"queues\":[",
                  i ? "," : "", p->name, port_state(p), pol, (unsigned long long)tot.rx_packets,
                  (unsigned long long)tot.rx_bytes, (unsigned long long)tot.rx_drops,
                  (unsigned long long)tot.tx_packets, (unsigned long long)tot.tx_bytes,
                  (unsigned long long)tot.tx_drops, (unsigned long long)tot.kicks,
                  (unsigned long long)tot.calls);
        for (unsigned q = 0; q < 2 * d->max_qp; q++)
            json_queue(b, d, q);
        sb_printf(b, "]}");
    }
    if (json)
        sb_printf(b, "],");
    render_workers(b, json, delta);
    if (json)
        sb_printf(b, "}\n");
}

/* Prometheus text exposition format (version 0.0.4). */
static void prom_head(struct sbuf *b, const char *name, const char *type, const char *help)
{
    sb_printf(b, "# HELP lwvhost_%s %s\n# TYPE lwvhost_%s %s\n", name, help, name, type);
}

static void render_prometheus(struct sbuf *b)
{
    static const struct { const char *name, *help; size_t off; } qc[] = {
        { "queue_packets_total", "Frames moved by the queue (rx: to the guest, tx: from it)",
          offsetof(struct q_stats, packets) },
        { "queue_bytes_total", "Bytes moved by the queue", offsetof(struct q_stats, bytes) },
        { "queue_drops_full_total", "Frames dropped: no guest buffer",
          offsetof(struct q_stats, drops_full) },
        { "queue_drops_invalid_total", "Frames dropped: malformed",
          offsetof(struct q_stats, drops_invalid) },
        { "queue_drops_nodest_total", "Frames dropped: destination not ready",
          offsetof(struct q_stats, drops_nodest) },
        { "queue_drops_spoofed_total", "Frames dropped: source MAC not the port's",
          offsetof(struct q_stats, drops_spoofed) },
        { "queue_kicks_total", "Guest kicks received", offsetof(struct q_stats, kicks) },
        { "queue_calls_total", "Interrupts sent to the guest", offsetof(struct q_stats, calls) },
        { "queue_passes_total", "Service passes", offsetof(struct q_stats, passes) },
    };
    for (size_t k = 0; k < sizeof(qc) / sizeof(qc[0]); k++) {
        prom_head(b, qc[k].name, "counter", qc[k].help);
        for (unsigned i = 0; i < ports.n; i++) {
            const struct port *p = ports.p[i];
            if (p->type != PORT_VHOST)
                continue;
            for (unsigned q = 0; q < 2 * p->dev.max_qp; q++) {
                const uint64_t *v = (const uint64_t *)((const char *)&p->dev.q[q].st + qc[k].off);
                sb_printf(b, "lwvhost_%s{port=\"%s\",queue=\"%u\",dir=\"%s\"} %llu\n", qc[k].name,
                          p->name, q, q % 2 ? "tx" : "rx", (unsigned long long)stat_get(v));
            }
        }
    }
    prom_head(b, "port_connected", "gauge", "1 if a frontend is attached");
    for (unsigned i = 0; i < ports.n; i++)
        if (ports.p[i]->type == PORT_VHOST)
            sb_printf(b, "lwvhost_port_connected{port=\"%s\"} %d\n", ports.p[i]->name,
                      ports.p[i]->dev.connected);
    unsigned n = workers_count();
    struct wsample w[64];
    for (unsigned i = 0; i < n && i < 64; i++)
        sample_worker(i, &w[i]);
    prom_head(b, "worker_cpu_seconds_total", "counter", "Worker thread CPU time");
    for (unsigned i = 0; i < n && i < 64; i++)
        sb_printf(b, "lwvhost_worker_cpu_seconds_total{worker=\"%u\",mode=\"user\"} %.3f\n"
                  "lwvhost_worker_cpu_seconds_total{worker=\"%u\",mode=\"system\"} %.3f\n",
                  i, ticks_to_s(w[i].utime_ticks), i, ticks_to_s(w[i].stime_ticks));
    prom_head(b, "worker_context_switches_total", "counter", "Worker context switches");
    for (unsigned i = 0; i < n && i < 64; i++)
        sb_printf(b, "lwvhost_worker_context_switches_total{worker=\"%u\",kind=\"voluntary\"} %llu\n"
                  "lwvhost_worker_context_switches_total{worker=\"%u\",kind=\"involuntary\"} %llu\n",
                  i, (unsigned long long)w[i].vcsw, i, (unsigned long long)w[i].nvcsw);
    prom_head(b, "worker_wakeups_total", "counter", "Worker wake-ups by cause");
    for (unsigned i = 0; i < n && i < 64; i++)
        sb_printf(b, "lwvhost_worker_wakeups_total{worker=\"%u\",cause=\"kick\"} %llu\n"
                  "lwvhost_worker_wakeups_total{worker=\"%u\",cause=\"timer\"} %llu\n",
                  i, (unsigned long long)w[i].st.kick_wakeups, i,
                  (unsigned long long)w[i].st.timer_wakeups);
    prom_head(b, "worker_frames_total", "counter", "Frames handled by the worker");
    for (unsigned i = 0; i < n && i < 64; i++)
        sb_printf(b, "lwvhost_worker_frames_total{worker=\"%u\"} %llu\n", i,
                  (unsigned long long)w[i].st.frames);
    prom_head(b, "worker_oversleep_seconds_total", "counter", "Sum of timer oversleep");
    for (unsigned i = 0; i < n && i < 64; i++)
        sb_printf(b, "lwvhost_worker_oversleep_seconds_total{worker=\"%u\"} %.9f\n", i,
                  (double)w[i].st.oversleep_ns / 1e9);
}

static const char *port_name_of(unsigned i)
{
    return i < ports.n ? ports.p[i]->name : "?";
}

/* trace start | stop | dump [W] | summary [W] */
static void render_trace(struct sbuf *b, const char *sub, const char *warg)
{
    unsigned n = workers_count(), only = UINT32_MAX;
    if (warg) {
        char *end;
        unsigned long v = strtoul(warg, &end, 10);
        if (*end || v >= n) {
            sb_printf(b, "error: no worker '%s' (0..%u)\n", warg, n ? n - 1 : 0);
            return;
        }
        only = (unsigned)v;
    }
    if (strcmp(sub, "start") == 0) {
        if (trace_start(worker_trace_rings(), n) < 0)
            sb_printf(b, "error: out of memory for trace buffers\n");
        else
            sb_printf(b, "tracing %u worker%s (%u events each)\n", n, n == 1 ? "" : "s",
                      TRACE_RING_SIZE);
        return;
    }
    if (strcmp(sub, "stop") == 0) {
        trace_stop();
        sb_printf(b, "tracing stopped\n");
        return;
    }
    bool graph = strcmp(sub, "dump") == 0;
    if (!graph && strcmp(sub, "summary") != 0) {
        sb_printf(b, "error: trace start|stop|dump [WORKER]|summary [WORKER]\n");
        return;
    }
    trace_stop();
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) {
        sb_printf(b, "error: out of memory\n");
        return;
    }
    for (unsigned i = 0; i < n; i++) {
        if (only != UINT32_MAX && i != only)
            continue;
        struct trace_rec *recs;
        size_t nr = trace_snapshot(&worker_trace_rings()[i], &recs);
        if (graph)
            trace_format_graph(f, i, recs, nr, port_name_of);
        trace_format_summary(f, i, recs, nr);
        free(recs);
    }
    fclose(f);
    sb_printf(b, "%s", text ? text : "");
    free(text);
}

/* The MAC table, like `bridge fdb` and `ovs-appctl fdb/show`. */
static void render_fdb(struct sbuf *b, bool json)
{
    static struct fdb_entry e[FDB_SLOTS];
    const struct lswitch *sw = ports.n ? ports.p[0]->sw : NULL;
    if (!sw) {
        sb_printf(b, json ? "{\"fdb\":[]}\n" : "no ports\n");
        return;
    }
    const struct fdb *f = &sw->fdb;
    unsigned n = fdb_list(f, -1, e, FDB_SLOTS);
    struct fdb_stats st;
    fdb_get_stats(f, &st);
    char m[18];
    if (json)
        sb_printf(b, "{\"fdb\":[");
    else
        sb_printf(b, "%-16s %-17s %-8s %s\n", "PORT", "MAC", "TYPE", "AGE");
    for (unsigned i = 0; i < n; i++) {
        const char *port = port_name_of(e[i].port);
        if (json) {
            sb_printf(b, "%s{\"port\":\"%s\",\"mac\":\"%s\",\"static\":%s,\"age\":", i ? "," : "",
                      port, mac_str(e[i].mac, m), e[i].is_static ? "true" : "false");
            if (e[i].is_static)
                sb_printf(b, "null}");
            else
                sb_printf(b, "%u}", e[i].age_s);
        } else if (e[i].is_static) {
            sb_printf(b, "%-16s %-17s %-8s %s\n", port, mac_str(e[i].mac, m), "static", "-");
        } else {
            sb_printf(b, "%-16s %-17s %-8s %u\n", port, mac_str(e[i].mac, m), "learned", e[i].age_s);
        }
    }
    uint32_t age = __atomic_load_n(&f->age_s, __ATOMIC_RELAXED);
    uint32_t max = __atomic_load_n(&f->port_max, __ATOMIC_RELAXED);
    if (json) {
        sb_printf(b, "],\"entries\":%u,\"slots\":%u,\"age_s\":%u,\"max_per_port\":%u,"
                  "\"added\":%llu,\"moved\":%llu,\"aged\":%llu,\"not_learned_full\":%llu,"
                  "\"not_learned_port_limit\":%llu,\"not_moved_live\":%llu}\n", n, FDB_SLOTS, age,
                  max, (unsigned long long)st.added, (unsigned long long)st.moved,
                  (unsigned long long)st.aged, (unsigned long long)st.full,
                  (unsigned long long)st.port_limit, (unsigned long long)st.refused);
        return;
    }
    sb_printf(b, "%u entries (%u slots); learned entries age out after %u s, at most %u per port\n"
              "learned %llu, moved %llu, aged %llu; not learned: bucket full %llu, port limit %llu; "
              "not moved (static, or live on its port) %llu\n", n, FDB_SLOTS, age, max,
              (unsigned long long)st.added, (unsigned long long)st.moved,
              (unsigned long long)st.aged, (unsigned long long)st.full,
              (unsigned long long)st.port_limit, (unsigned long long)st.refused);
}

static void render_policy(struct sbuf *b)
{
    sb_printf(b, "%-16s %-16s %s\n", "PORT", "POLICY", "NOW");
    for (unsigned i = 0; i < ports.n; i++) {
        const struct port *p = ports.p[i];
        if (p->type != PORT_VHOST)
            continue;
        char pol[32], now[64] = "";
        struct policy pp = policy_unpack(__atomic_load_n(&p->policy, __ATOMIC_RELAXED));
        policy_str(&pp, pol, sizeof(pol));
        if (pp.mode == POLICY_ADAPTIVE) {
            /* Effective choice of the worker serving the first TX queue. */
            struct worker_stats ws;
            unsigned wi = 0;
            for (; wi < workers_count(); wi++)
                if (worker_get(wi) == p->dev.q[1].worker)
                    break;
            if (wi < workers_count()) {
                worker_get_stats(worker_get(wi), &ws);
                if (ws.adaptive_eff == EFF_INTERVAL)
                    snprintf(now, sizeof(now), "interval:%llu (worker %u, %llu frames/s)",
                             (unsigned long long)(ws.adaptive_interval_ns / 1000), wi,
                             (unsigned long long)ws.adaptive_rate);
                else
                    snprintf(now, sizeof(now), "%s (worker %u, %llu frames/s)",
                             eff_name((enum eff_mode)ws.adaptive_eff), wi,
                             (unsigned long long)ws.adaptive_rate);
            }
        }
        sb_printf(b, "%-16s %-16s %s\n", p->name, pol, now);
    }
    sb_printf(b, "idle fall-back: %u us\n", workers_idle_us());
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
        if (p->type != PORT_VHOST || (!all && strcmp(p->name, target) != 0))
            continue;
        __atomic_store_n(&p->policy, policy_pack(&pol), __ATOMIC_RELAXED);
        /* Each queue gets a pass under its new policy (a queue leaving
         * interval or poll must re-enable guest kicks). */
        for (unsigned q = 1; q < 2 * p->dev.max_qp; q += 2)
            worker_poke_queue(&p->dev.q[q]);
        changed++;
    }
    char s[32];
    if (!changed)
        sb_printf(b, "error: no vhost-user port named '%s'\n", target);
    else {
        log_info("policy of %s set to %s", all ? "all ports" : target, policy_str(&pol, s, sizeof(s)));
        sb_printf(b, "policy of %u port%s set to %s\n", changed, changed == 1 ? "" : "s", s);
    }
}

char *ctl_execute(const char *line)
{
    struct sbuf b = { 0 };
    char cmd[32] = "", a1[64] = "", a2[64] = "", extra[8] = "";
    int n = sscanf(line, "%31s %63s %63s %7s", cmd, a1, a2, extra);
    bool json = strcmp(a1, "json") == 0;
    if (n >= 1 && n <= 2 && (n == 1 || json) && strcmp(cmd, "ports") == 0)
        render_ports(&b, json);
    else if (n >= 1 && n <= 2 && (n == 1 || json) && strcmp(cmd, "stats") == 0)
        render_stats(&b, json, false);
    else if (n >= 1 && n <= 2 && (n == 1 || json) && strcmp(cmd, "rings") == 0)
        render_rings(&b, json);
    else if (n == 2 && strcmp(cmd, "stats") == 0 && strcmp(a1, "delta") == 0)
        render_stats(&b, false, true);
    else if (n == 2 && strcmp(cmd, "stats") == 0 && strcmp(a1, "prometheus") == 0)
        render_prometheus(&b);
    else if (n >= 1 && n <= 2 && (n == 1 || json) && strcmp(cmd, "fdb") == 0)
        render_fdb(&b, json);
    else if (n == 1 && strcmp(cmd, "policy") == 0)
        render_policy(&b);
    else if (n == 3 && strcmp(cmd, "policy") == 0)
        set_policy(&b, a1, a2);
    else if (n >= 2 && n <= 3 && strcmp(cmd, "trace") == 0)
        render_trace(&b, a1, n == 3 ? a2 : NULL);
    else if (n == 1 && strcmp(cmd, "help") == 0)
        sb_printf(&b, "commands: ports [json] | stats [json|delta|prometheus] | rings [json] | fdb [json] | policy [PORT|all MODE] "
                  "| trace start|stop|dump [WORKER]|summary [WORKER] | help\n");
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
    /* Never take over the socket of another running daemon. */
    if (daemon_clear_stale_socket("control socket", path) < 0)
        return -1;
    listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (listen_fd < 0)
        return -1;
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
