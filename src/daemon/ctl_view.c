/*
 * ctl_view.c - see ctl_view.h.
 */
#define _GNU_SOURCE
#include "ctl_view.h"

#include <arpa/inet.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "device.h"
#include "fdb.h"
#include "json.h"
#include "policy.h"
#include "port.h"
#include "switch.h"
#include "trace_fmt.h"
#include "uplink.h"
#include "vu_ctrl.h"
#include "vxlan.h"
#include "worker.h"

/* ---- the state words of ports and queues ---------------------------------- */

static const char *port_state(const struct port *p)
{
    if (port_is_host(p))
        return "up";
    if (!p->dev.connected)
        return p->cfg.client ? "connecting" : "listening";
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

static const char *port_name_of(unsigned i)
{
    const struct port *p = i < ports.n ? ports.p[i] : NULL;
    return p ? p->name : "?";
}

static const char *policy_of(const struct port *p, char *buf, size_t len)
{
    struct policy pp = policy_unpack(__atomic_load_n(&p->policy, __ATOMIC_RELAXED));
    return policy_str(&pp, buf, len);
}

/* ---- ports ------------------------------------------------------------------ */

/* Up to 8 MACs of a port, static and learned. */
static unsigned port_macs(const struct port *p, uint8_t (*macs)[6])
{
    return switch_port_macs(p->sw, p->index, macs, 8);
}

/* A VXLAN port's addresses in its JSON ports object. */
static void vxlan_port_json(struct jw *j, const struct port *p)
{
    char a[INET6_ADDRSTRLEN];
    struct vxlan_stats st;
    struct vxlan_info in;
    vxlan_get_stats(p, &st, &in);
    jw_str(j, "family", p->cfg.vx.family == AF_INET6 ? "ipv6" : "ipv4");
    jw_str(j, "local", vxlan_ip_str(&p->cfg.vx.local, a, sizeof(a)));
    jw_u64(j, "dstport", p->cfg.vx.dstport);
    jw_u64(j, "vni", p->cfg.vx.vni);
    jw_u64(j, "mtu", p->cfg.vx.mtu);
    jw_bool(j, "learn", p->cfg.vx.learn);
    jw_u64(j, "src_port_min", in.src_port_lo);
    jw_u64(j, "src_port_max", in.src_port_hi);
    jw_arr(j, "remotes");
    struct in6_addr ip;
    for (unsigned i = 0; i < in.nremotes && vxlan_remote_addr(p, i, &ip); i++)
        jw_str(j, NULL, vxlan_ip_str(&ip, a, sizeof(a)));
    jw_arr_end(j);
    jw_u64(j, "remotes_configured", in.nconf);
    jw_u64(j, "vtep_macs", in.vtep_entries);
}

static void port_json(struct jw *j, const struct port *p)
{
    const struct vdev *d = &p->dev;
    char hex[24], m[18];
    jw_obj(j, NULL);
    jw_str(j, "name", p->name);
    jw_str(j, "type", port_type_name(p->type));
    jw_str(j, "state", port_state(p));
    if (p->type == PORT_UPLINK) {
        jw_str(j, "ifname", p->cfg.ifname);
        jw_str(j, "mode", p->cfg.xdp ? "xdp" : "packet");
        if (p->cfg.xdp)
            jw_u64(j, "queue", p->cfg.xdp_queue);
    }
    if (p->type == PORT_VXLAN)
        vxlan_port_json(j, p);
    if (p->type == PORT_VHOST) {
        jw_str(j, "path", p->cfg.path);
        jw_str(j, "mode", p->cfg.client ? "client" : "server");
        jw_bool(j, "connected", d->connected);
        jw_u64(j, "max_queue_pairs", d->max_qp);
        jw_u64(j, "active_queue_pairs", ready_pairs(d));
        snprintf(hex, sizeof(hex), "0x%llx", (unsigned long long)d->features);
        jw_str(j, "features", hex);
        snprintf(hex, sizeof(hex), "0x%llx", (unsigned long long)d->protocol_features);
        jw_str(j, "protocol_features", hex);
        jw_u64(j, "mtu", d->mtu);
        jw_u64(j, "status", __atomic_load_n(&d->status, __ATOMIC_RELAXED));
        jw_u64(j, "connects", p->connects);
    }
    uint8_t macs[8][6];
    unsigned n = port_macs(p, macs);
    jw_arr(j, "macs");
    for (unsigned i = 0; i < n; i++)
        jw_str(j, NULL, mac_str(macs[i], m));
    jw_arr_end(j);
    jw_obj_end(j);
}

static void port_text(struct sbuf *b, const struct port *p)
{
    const struct vdev *d = &p->dev;
    char qs[24] = "-", fs[20] = "-", ps[20] = "-", mtu[12] = "-", m[18];
    if (p->type == PORT_VHOST) {
        snprintf(qs, sizeof(qs), "%u/%u", ready_pairs(d), d->max_qp);
        if (d->features_set)
            snprintf(fs, sizeof(fs), "0x%llx", (unsigned long long)d->features);
        if (d->connected)
            snprintf(ps, sizeof(ps), "0x%llx", (unsigned long long)d->protocol_features);
        if (d->mtu)
            snprintf(mtu, sizeof(mtu), "%u", d->mtu);
    }
    if (p->type == PORT_VXLAN)
        snprintf(mtu, sizeof(mtu), "%u", p->cfg.vx.mtu);
    sb_printf(b, "%-16s %-6s %-11s %-7s %-18s %-18s %-5s ", p->name,
              port_type_name(p->type), port_state(p), qs, fs, ps, mtu);
    uint8_t macs[8][6];
    unsigned n = port_macs(p, macs);
    for (unsigned i = 0; i < n; i++)
        sb_printf(b, "%s%s", i ? " " : "", mac_str(macs[i], m));
    sb_printf(b, "%s\n", n ? "" : "-");
}

void view_ports(struct sbuf *b, bool json)
{
    if (json) {
        struct jw j;
        jw_init(&j, b);
        jw_obj(&j, NULL);
        jw_arr(&j, "ports");
        for (unsigned i = 0; i < ports.n; i++)
            if (ports.p[i])
                port_json(&j, ports.p[i]);
        jw_arr_end(&j);
        jw_obj_end(&j);
        sb_putc(b, '\n');
        return;
    }
    sb_printf(b, "%-16s %-6s %-11s %-7s %-18s %-18s %-5s %s\n", "PORT", "TYPE", "STATE",
              "QUEUES", "FEATURES", "PROTOCOL", "MTU", "MACS");
    for (unsigned i = 0; i < ports.n; i++)
        if (ports.p[i])
            port_text(b, ports.p[i]);
}

/* ---- statistics ---------------------------------------------------------- */

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

static void sum_add(struct qsum *t, const struct qsum *s)
{
    t->rx_packets += s->rx_packets;
    t->rx_bytes += s->rx_bytes;
    t->rx_drops += s->rx_drops;
    t->tx_packets += s->tx_packets;
    t->tx_bytes += s->tx_bytes;
    t->tx_drops += s->tx_drops;
    t->kicks += s->kicks;
    t->calls += s->calls;
}

static void queue_json(struct jw *j, const struct vdev *d, unsigned i)
{
    const struct vqueue *q = &d->q[i];
    const struct q_stats *st = &q->st;
    jw_obj(j, NULL);
    jw_u64(j, "index", i);
    jw_str(j, "dir", i % 2 ? "tx" : "rx");
    jw_str(j, "state", queue_state(d, q));
    jw_u64(j, "packets", stat_get(&st->packets));
    jw_u64(j, "bytes", stat_get(&st->bytes));
    jw_u64(j, "drops_full", stat_get(&st->drops_full));
    jw_u64(j, "drops_invalid", stat_get(&st->drops_invalid));
    jw_u64(j, "drops_nodest", stat_get(&st->drops_nodest));
    jw_u64(j, "drops_spoofed", stat_get(&st->drops_spoofed));
    jw_u64(j, "kicks", stat_get(&st->kicks));
    jw_u64(j, "calls", stat_get(&st->calls));
    jw_u64(j, "passes", stat_get(&st->passes));
    jw_u64(j, "notify_enables", stat_get(&q->vq.notify_enables));
    jw_u64(j, "notify_disables", stat_get(&q->vq.notify_disables));
    jw_arr(j, "batch_hist");
    for (unsigned k = 0; k < BATCH_BUCKETS; k++)
        jw_u64(j, NULL, stat_get(&st->batch[k]));
    jw_arr_end(j);
    jw_obj_end(j);
}

/* An uplink's own counters in its JSON stats object: why frames from the
 * wire were dropped.  The first four are in tx_drops too ("tx" being into
 * the switch); wire_kernel_drops never reached us (the ring was full). */
static void uplink_stats_json(struct jw *j, const struct port *p)
{
    struct uplink_stats u;
    uplink_get_stats(p, &u);
    jw_str(j, "ifname", p->cfg.ifname);
    jw_u64(j, "wire_truncated", u.rx_truncated);
    jw_u64(j, "wire_bad_header", u.rx_bad_hdr);
    jw_u64(j, "wire_gso_unsupported", u.rx_gso_unsupported);
    jw_u64(j, "wire_bad_ring", u.rx_bad_ring);
    jw_u64(j, "wire_kernel_drops", u.rx_kernel_drops);
    jw_str(j, "mode", u.xdp ? "xdp" : "packet");
    if (!u.xdp)
        return;
    /* The AF_XDP socket's: how it runs, its rings, the kernel's counters. */
    jw_str(j, "xdp_mode", u.xdp_info.native ? "native" : "generic");
    jw_bool(j, "zerocopy", u.xdp_info.zerocopy);
    jw_u64(j, "xdp_queue", u.xdp_info.queue);
    jw_u64(j, "xdp_rx_dropped", u.xsk.rx_dropped);
    jw_u64(j, "xdp_rx_ring_full", u.xsk.rx_ring_full);
    jw_u64(j, "xdp_rx_fill_empty", u.xsk.rx_fill_empty);
    jw_u64(j, "xdp_rx_invalid_descs", u.xsk.rx_invalid_descs);
    jw_u64(j, "xdp_tx_ring_full", u.xsk.tx_ring_full);
    jw_u64(j, "xdp_tx_too_big", u.tx_too_big);
    jw_u64(j, "xdp_tx_bad_offload", u.tx_bad_offload);
    jw_u64(j, "xdp_tx_invalid_descs", u.xsk.tx_invalid_descs);
    jw_u64(j, "xdp_tx_bad_ring", u.xsk.tx_bad_ring);
    jw_u64(j, "xdp_tx_kick_errors", u.xsk.tx_kick_errors);
    jw_u64(j, "xdp_tx_stalled", u.xsk.tx_stalled);
}

/* An uplink's line under its row of the text view (mode=xdp only: how the
 * AF_XDP socket runs and why frames were dropped). */
static void uplink_stats_text(struct sbuf *b, const struct port *p)
{
    struct uplink_stats u;
    uplink_get_stats(p, &u);
    if (!u.xdp)
        return;
    sb_printf(b, "  xdp %s, %s, queue %u: from the wire dropped: bad ring %llu, by the kernel "
              "%llu (fill ring empty %llu); to the wire dropped: ring full %llu, too big %llu, "
              "bad offload %llu; kick errors %llu, stalled %llu\n",
              u.xdp_info.native ? "native" : "generic",
              u.xdp_info.zerocopy ? "zero-copy" : "copy mode", u.xdp_info.queue,
              (unsigned long long)u.rx_bad_ring, (unsigned long long)u.rx_kernel_drops,
              (unsigned long long)u.xsk.rx_fill_empty, (unsigned long long)u.xsk.tx_ring_full,
              (unsigned long long)u.tx_too_big, (unsigned long long)u.tx_bad_offload,
              (unsigned long long)u.xsk.tx_kick_errors, (unsigned long long)u.xsk.tx_stalled);
}

/* A VXLAN port's own counters in its JSON stats object: why datagrams
 * from remotes were refused (in tx_drops too, "tx" being into the switch)
 * and why frames to them were (in rx_drops). */
static void vxlan_stats_json(struct jw *j, const struct port *p)
{
    struct vxlan_stats s;
    struct vxlan_info in;
    vxlan_get_stats(p, &s, &in);
    jw_u64(j, "vni", p->cfg.vx.vni);
    jw_u64(j, "remotes", in.nremotes);
    jw_u64(j, "remotes_learned", s.remotes_learned);
    jw_u64(j, "remotes_full", s.remotes_full);
    jw_u64(j, "vtep_macs", in.vtep_entries);
    jw_u64(j, "vtep_moved", s.vtep_moved);
    jw_u64(j, "vtep_full", s.vtep_full);
    jw_u64(j, "wire_short", s.rx_short);
    jw_u64(j, "wire_bad_flags", s.rx_bad_flags);
    jw_u64(j, "wire_unknown_vni", s.rx_unknown_vni);
    jw_u64(j, "wire_too_long", s.rx_too_long);
    jw_u64(j, "wire_unknown_remote", s.rx_unknown_remote);
    jw_u64(j, "wire_errors", s.rx_errors);
    jw_u64(j, "encap_too_big", s.tx_too_big);
    jw_u64(j, "encap_bad_offload", s.tx_bad_offload);
    jw_u64(j, "encap_no_remote", s.tx_no_remote);
    jw_u64(j, "encap_no_room", s.tx_no_room);
    jw_u64(j, "encap_send_errors", s.tx_send_errors);
    jw_u64(j, "encap_gso_sends", s.tx_gso_sends);
    jw_u64(j, "encap_gso_datagrams", s.tx_gso_datagrams);
    jw_u64(j, "encap_gso_off", s.tx_gso_off);
    jw_u64(j, "decap_gro_buffers", s.rx_gro_buffers);
    jw_u64(j, "decap_gro_segments", s.rx_gro_segments);
    jw_u64(j, "decap_gro_off", s.rx_gro_off);
}

/* A VXLAN port's drop reasons as a line under its row of the text view. */
static void vxlan_stats_text(struct sbuf *b, const struct port *p)
{
    struct vxlan_stats s;
    struct vxlan_info in;
    vxlan_get_stats(p, &s, &in);
    char a[INET6_ADDRSTRLEN];
    bool v6 = p->cfg.vx.family == AF_INET6;
    sb_printf(b, "  vxlan vni %u on %s%s%s:%u, %u remotes (%u learned), %u MACs: from remotes "
              "dropped: short %llu, bad flags %llu, unknown vni %llu, too long %llu, unknown "
              "remote %llu, "
              "errors %llu; to remotes dropped: too big %llu, bad offload %llu, no remote %llu, "
              "no room %llu, send errors %llu; UDP GSO: %llu sends of %llu datagrams%s; "
              "UDP GRO: %llu buffers of %llu datagrams%s\n",
              p->cfg.vx.vni, v6 ? "[" : "", vxlan_ip_str(&p->cfg.vx.local, a, sizeof(a)),
              v6 ? "]" : "", p->cfg.vx.dstport, in.nremotes,
              in.nremotes - in.nconf, in.vtep_entries, (unsigned long long)s.rx_short,
              (unsigned long long)s.rx_bad_flags, (unsigned long long)s.rx_unknown_vni,
              (unsigned long long)s.rx_too_long, (unsigned long long)s.rx_unknown_remote,
              (unsigned long long)s.rx_errors, (unsigned long long)s.tx_too_big,
              (unsigned long long)s.tx_bad_offload, (unsigned long long)s.tx_no_remote,
              (unsigned long long)s.tx_no_room, (unsigned long long)s.tx_send_errors,
              (unsigned long long)s.tx_gso_sends, (unsigned long long)s.tx_gso_datagrams,
              s.tx_gso_off ? " (off: the kernel refused one)" : "",
              (unsigned long long)s.rx_gro_buffers, (unsigned long long)s.rx_gro_segments,
              s.rx_gro_off ? " (off: the kernel refused it)" : "");
}

/* The tap's (and the uplink's) "rx" is what the switch delivered to the
 * host, as for a guest: frames leaving the switch.  Its "tx" is what came
 * from the host or the wire into the switch. */
static void tap_stats(struct sbuf *b, struct jw *j, const struct port *p)
{
    const struct tap_stats *t = &p->tap;
    uint64_t rxp = stat_get(&t->tx_packets), rxb = stat_get(&t->tx_bytes),
             rxd = stat_get(&t->tx_drops), txp = stat_get(&t->rx_packets),
             txb = stat_get(&t->rx_bytes), txd = stat_get(&t->rx_drops);
    if (j) {
        jw_obj(j, NULL);
        jw_str(j, "name", p->name);
        jw_str(j, "type", port_type_name(p->type));
        jw_u64(j, "rx_packets", rxp);
        jw_u64(j, "rx_bytes", rxb);
        jw_u64(j, "rx_drops", rxd);
        jw_u64(j, "tx_packets", txp);
        jw_u64(j, "tx_bytes", txb);
        jw_u64(j, "tx_drops", txd);
        if (p->type == PORT_UPLINK)
            uplink_stats_json(j, p);
        if (p->type == PORT_VXLAN)
            vxlan_stats_json(j, p);
        jw_obj_end(j);
        return;
    }
    sb_printf(b, "%-16s %-3s %-8s %-13s %12llu %14llu %9llu %12llu %14llu %9llu %10s %10s\n",
              p->name, "-", "up", "-", (unsigned long long)rxp, (unsigned long long)rxb,
              (unsigned long long)rxd, (unsigned long long)txp, (unsigned long long)txb,
              (unsigned long long)txd, "-", "-");
    if (p->type == PORT_VXLAN)
        vxlan_stats_text(b, p);
    if (p->type == PORT_UPLINK)
        uplink_stats_text(b, p);
}

static void vhost_stats(struct sbuf *b, struct jw *j, const struct port *p)
{
    const struct vdev *d = &p->dev;
    char pol[32];
    policy_of(p, pol, sizeof(pol));
    struct qsum tot = { 0, 0, 0, 0, 0, 0, 0, 0 };
    for (unsigned qp = 0; qp < d->max_qp; qp++) {
        struct qsum s;
        sum_pair(d, qp, &s);
        sum_add(&tot, &s);
        if (!j)
            sb_printf(b, "%-16s %-3u %-8s %-13s %12llu %14llu %9llu %12llu %14llu %9llu %10llu "
                      "%10llu\n", p->name, qp, queue_state(d, &d->q[2 * qp + 1]), pol,
                      (unsigned long long)s.rx_packets, (unsigned long long)s.rx_bytes,
                      (unsigned long long)s.rx_drops, (unsigned long long)s.tx_packets,
                      (unsigned long long)s.tx_bytes, (unsigned long long)s.tx_drops,
                      (unsigned long long)s.kicks, (unsigned long long)s.calls);
    }
    if (!j)
        return;
    jw_obj(j, NULL);
    jw_str(j, "name", p->name);
    jw_str(j, "type", "vhost");
    jw_str(j, "state", port_state(p));
    jw_str(j, "policy", pol);
    jw_u64(j, "rx_packets", tot.rx_packets);
    jw_u64(j, "rx_bytes", tot.rx_bytes);
    jw_u64(j, "rx_drops", tot.rx_drops);
    jw_u64(j, "tx_packets", tot.tx_packets);
    jw_u64(j, "tx_bytes", tot.tx_bytes);
    jw_u64(j, "tx_drops", tot.tx_drops);
    jw_u64(j, "kicks", tot.kicks);
    jw_u64(j, "calls", tot.calls);
    jw_arr(j, "queues");
    for (unsigned q = 0; q < 2 * d->max_qp; q++)
        queue_json(j, d, q);
    jw_arr_end(j);
    jw_obj_end(j);
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

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static const char *adaptive_now(const struct worker_stats *st, char *buf, size_t len)
{
    if (st->adaptive_eff == EFF_INTERVAL)
        snprintf(buf, len, "int:%lluus", (unsigned long long)(st->adaptive_interval_ns / 1000));
    else
        snprintf(buf, len, "%s", eff_name((enum eff_mode)st->adaptive_eff));
    return buf;
}

static void worker_json(struct jw *j, unsigned i, const struct wsample *w)
{
    const struct worker_stats *st = &w->st;
    jw_obj(j, NULL);
    jw_u64(j, "id", i);
    jw_int(j, "tid", w->tid);
    jw_u64(j, "cpu_ns", st->cpu_ns);
    jw_u64(j, "cpu_user_ns", (uint64_t)(ticks_to_s(w->utime_ticks) * 1e9));
    jw_u64(j, "cpu_sys_ns", (uint64_t)(ticks_to_s(w->stime_ticks) * 1e9));
    jw_u64(j, "ctx_voluntary", w->vcsw);
    jw_u64(j, "ctx_involuntary", w->nvcsw);
    jw_u64(j, "wakeups", st->wakeups);
    jw_u64(j, "kick_wakeups", st->kick_wakeups);
    jw_u64(j, "timer_wakeups", st->timer_wakeups);
    jw_u64(j, "passes", st->passes);
    jw_u64(j, "empty_passes", st->empty_passes);
    jw_u64(j, "frames", st->frames);
    jw_u64(j, "sleep_ns", st->sleep_ns);
    jw_u64(j, "oversleep_ns", st->oversleep_ns);
    jw_u64(j, "oversleep_max_ns", st->oversleep_max_ns);
    jw_u64(j, "wake_cost_ns", st->wake_cost_ns);
    jw_u64(j, "calib_oversleep_ns", st->calib_oversleep_ns);
    jw_str(j, "adaptive_mode", eff_name((enum eff_mode)st->adaptive_eff));
    jw_u64(j, "adaptive_interval_ns", st->adaptive_interval_ns);
    jw_u64(j, "adaptive_rate", st->adaptive_rate);
    jw_u64(j, "adaptive_decisions", st->adaptive_decisions);
    jw_u64(j, "adaptive_kick_cost_ns", st->adaptive_kick_cost_ns);
    jw_u64(j, "adaptive_timer_cost_ns", st->adaptive_timer_cost_ns);
    jw_u64(j, "adaptive_frame_cost_ps", st->adaptive_frame_ps);
    jw_u64(j, "syscalls", st->syscalls);
    jw_obj_end(j);
}

/* Baseline for "stats delta": one shared previous sample. */
#define MAX_SAMPLED 64
static struct wsample prev_ws[MAX_SAMPLED];
static uint64_t prev_ns;

/* What one wake-up cost over a stretch of time: system calls, thread CPU
 * (us) and frames, each divided by the wake-ups; "-" without wake-ups
 * (a polling worker does not sleep). */
static void per_wake(char *buf, size_t len, uint64_t wakes, uint64_t sysc, uint64_t cpu_ns,
                     uint64_t frames)
{
    if (!wakes) {
        snprintf(buf, len, "%7s %7s %7s", "-", "-", "-");
        return;
    }
    double w = (double)wakes;
    snprintf(buf, len, "%7.2f %7.2f %7.1f", (double)sysc / w, (double)cpu_ns / 1000.0 / w,
             (double)frames / w);
}

static void worker_delta(struct sbuf *b, unsigned i, const struct wsample *w, double dt)
{
    const struct wsample *p = i < MAX_SAMPLED ? &prev_ws[i] : w;
    const struct worker_stats *st = &w->st;
    double rate = dt ? 1 / dt : 0;
    double usr = ticks_to_s(w->utime_ticks - p->utime_ticks) * rate * 100;
    double sys = ticks_to_s(w->stime_ticks - p->stime_ticks) * rate * 100;
    double cpu = (double)(st->cpu_ns - p->st.cpu_ns) / 1e9 * rate * 100;
    uint64_t dticks = st->timer_wakeups - p->st.timer_wakeups;
    double late = dticks ? (double)(st->oversleep_ns - p->st.oversleep_ns) / (double)dticks / 1000
                         : 0;
    char ad[32], pw[32];
    per_wake(pw, sizeof(pw), st->wakeups - p->st.wakeups, st->syscalls - p->st.syscalls,
             st->cpu_ns - p->st.cpu_ns, st->frames - p->st.frames);
    sb_printf(b, "%-7u %-8d %7.2f %7.2f %7.2f %9.1f %9.1f %10.0f %9.0f %9.0f %7.1fus %s %-9s\n",
              i, w->tid, usr, sys, cpu, (double)(w->vcsw - p->vcsw) * rate,
              (double)(w->nvcsw - p->nvcsw) * rate, (double)(st->frames - p->st.frames) * rate,
              (double)(st->wakeups - p->st.wakeups) * rate, (double)dticks * rate, late, pw,
              adaptive_now(st, ad, sizeof(ad)));
}

static void worker_text(struct sbuf *b, unsigned i, const struct wsample *w)
{
    const struct worker_stats *st = &w->st;
    double avg_late = st->timer_wakeups
                          ? (double)st->oversleep_ns / (double)st->timer_wakeups / 1000 : 0;
    char ad[32], pw[32];
    per_wake(pw, sizeof(pw), st->wakeups, st->syscalls, st->cpu_ns, st->frames);
    sb_printf(b, "%-7u %-8d %10.3f %10.3f %12llu %12llu %12llu %12llu %8.1fus %7lluns %s %-9s\n",
              i, w->tid, (double)st->cpu_ns / 1e9, (double)st->sleep_ns / 1e9,
              (unsigned long long)st->wakeups, (unsigned long long)st->kick_wakeups,
              (unsigned long long)st->timer_wakeups, (unsigned long long)st->frames, avg_late,
              (unsigned long long)st->wake_cost_ns, pw, adaptive_now(st, ad, sizeof(ad)));
}

static void view_workers(struct sbuf *b, struct jw *j, bool delta)
{
    unsigned n = workers_count();
    uint64_t now = mono_ns();
    double dt = prev_ns ? (double)(now - prev_ns) / 1e9 : 0;
    if (j)
        jw_arr(j, "workers");
    else if (delta)
        sb_printf(b, "\n%-7s %-8s %7s %7s %7s %9s %9s %10s %9s %9s %9s %7s %7s %7s %-9s\n",
                  "WORKER", "TID", "%usr", "%system", "%CPU", "cswch/s", "nvcswch/s",
                  "frames/s", "wakes/s", "ticks/s", "overslp", "sysc/wk", "us/wk", "frm/wk",
                  "adaptive");
    else
        sb_printf(b, "\n%-7s %-8s %10s %10s %12s %12s %12s %12s %10s %9s %7s %7s %7s %-9s\n",
                  "WORKER", "TID", "CPU-s", "SLEEP-s", "WAKEUPS", "KICK-WAKES", "TICKS", "FRAMES",
                  "OVERSLP", "WAKECOST", "SYSC/WK", "US/WK", "FRM/WK", "adaptive");
    for (unsigned i = 0; i < n; i++) {
        struct wsample w;
        sample_worker(i, &w);
        if (j)
            worker_json(j, i, &w);
        else if (delta)
            worker_delta(b, i, &w, dt);
        else
            worker_text(b, i, &w);
        if (delta && i < MAX_SAMPLED)
            prev_ws[i] = w;
    }
    if (delta)
        prev_ns = now;
    if (j)
        jw_arr_end(j);
}

void view_stats(struct sbuf *b, bool json, bool delta)
{
    struct jw jv, *j = NULL;
    if (json) {
        j = &jv;
        jw_init(j, b);
        jw_obj(j, NULL);
        jw_arr(j, "ports");
    } else {
        sb_printf(b, "%-16s %-3s %-8s %-13s %12s %14s %9s %12s %14s %9s %10s %10s\n", "PORT",
                  "QP", "STATE", "POLICY", "RX-PKTS", "RX-BYTES", "RX-DROP", "TX-PKTS",
                  "TX-BYTES", "TX-DROP", "KICKS", "CALLS");
    }
    for (unsigned i = 0; i < ports.n; i++) {
        const struct port *p = ports.p[i];
        if (!p)
            continue;
        if (port_is_host(p))
            tap_stats(b, j, p);
        else
            vhost_stats(b, j, p);
    }
    if (j)
        jw_arr_end(j);
    view_workers(b, j, delta);
    if (j) {
        jw_obj_end(j);
        sb_putc(b, '\n');
    }
}

/* ---- Prometheus text exposition format (version 0.0.4) ------------------ */

static void prom_head(struct sbuf *b, const char *name, const char *type, const char *help)
{
    sb_printf(b, "# HELP lwvhost_%s %s\n# TYPE lwvhost_%s %s\n", name, help, name, type);
}

static void prom_queues(struct sbuf *b)
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
            if (!p || p->type != PORT_VHOST)
                continue;
            for (unsigned q = 0; q < 2 * p->dev.max_qp; q++) {
                const uint64_t *v = (const uint64_t *)((const char *)&p->dev.q[q].st + qc[k].off);
                sb_printf(b, "lwvhost_%s{port=\"%s\",queue=\"%u\",dir=\"%s\"} %llu\n", qc[k].name,
                          p->name, q, q % 2 ? "tx" : "rx", (unsigned long long)stat_get(v));
            }
        }
    }
}

/* One counter per worker, labelled: name{worker="i"[,LABEL="which"]} value. */
static void prom_workers(struct sbuf *b, const struct wsample *w, unsigned n)
{
    prom_head(b, "worker_cpu_seconds_total", "counter", "Worker thread CPU time");
    for (unsigned i = 0; i < n; i++)
        sb_printf(b, "lwvhost_worker_cpu_seconds_total{worker=\"%u\",mode=\"user\"} %.3f\n"
                  "lwvhost_worker_cpu_seconds_total{worker=\"%u\",mode=\"system\"} %.3f\n",
                  i, ticks_to_s(w[i].utime_ticks), i, ticks_to_s(w[i].stime_ticks));
    prom_head(b, "worker_context_switches_total", "counter", "Worker context switches");
    for (unsigned i = 0; i < n; i++)
        sb_printf(b, "lwvhost_worker_context_switches_total{worker=\"%u\",kind=\"voluntary\"} %llu\n"
                  "lwvhost_worker_context_switches_total{worker=\"%u\",kind=\"involuntary\"} %llu\n",
                  i, (unsigned long long)w[i].vcsw, i, (unsigned long long)w[i].nvcsw);
    prom_head(b, "worker_wakeups_total", "counter", "Worker wake-ups by cause");
    for (unsigned i = 0; i < n; i++)
        sb_printf(b, "lwvhost_worker_wakeups_total{worker=\"%u\",cause=\"kick\"} %llu\n"
                  "lwvhost_worker_wakeups_total{worker=\"%u\",cause=\"timer\"} %llu\n",
                  i, (unsigned long long)w[i].st.kick_wakeups, i,
                  (unsigned long long)w[i].st.timer_wakeups);
    prom_head(b, "worker_frames_total", "counter", "Frames handled by the worker");
    for (unsigned i = 0; i < n; i++)
        sb_printf(b, "lwvhost_worker_frames_total{worker=\"%u\"} %llu\n", i,
                  (unsigned long long)w[i].st.frames);
    prom_head(b, "worker_syscalls_total", "counter", "System calls made by the worker thread");
    for (unsigned i = 0; i < n; i++)
        sb_printf(b, "lwvhost_worker_syscalls_total{worker=\"%u\"} %llu\n", i,
                  (unsigned long long)w[i].st.syscalls);
    prom_head(b, "worker_oversleep_seconds_total", "counter", "Sum of timer oversleep");
    for (unsigned i = 0; i < n; i++)
        sb_printf(b, "lwvhost_worker_oversleep_seconds_total{worker=\"%u\"} %.9f\n", i,
                  (double)w[i].st.oversleep_ns / 1e9);
}

/* Frames, bytes and drops of the tap, uplink and VXLAN ports, with the
 * same sense as their JSON stats: dir="rx" leaves the switch for the host
 * or the wire, dir="tx" comes from there into the switch. */
static void prom_host_ports(struct sbuf *b)
{
    static const struct { const char *name, *help; size_t rx, tx; } hc[] = {
        { "host_port_packets_total", "Frames of a tap, uplink or VXLAN port",
          offsetof(struct tap_stats, tx_packets), offsetof(struct tap_stats, rx_packets) },
        { "host_port_bytes_total", "Bytes of a tap, uplink or VXLAN port",
          offsetof(struct tap_stats, tx_bytes), offsetof(struct tap_stats, rx_bytes) },
        { "host_port_drops_total", "Frames a tap, uplink or VXLAN port dropped",
          offsetof(struct tap_stats, tx_drops), offsetof(struct tap_stats, rx_drops) },
    };
    for (size_t k = 0; k < sizeof(hc) / sizeof(hc[0]); k++) {
        prom_head(b, hc[k].name, "counter", hc[k].help);
        for (unsigned i = 0; i < ports.n; i++) {
            const struct port *p = ports.p[i];
            if (!p || !port_is_host(p))
                continue;
            const char *t = (const char *)&p->tap;
            sb_printf(b, "lwvhost_%s{port=\"%s\",type=\"%s\",dir=\"rx\"} %llu\n"
                      "lwvhost_%s{port=\"%s\",type=\"%s\",dir=\"tx\"} %llu\n",
                      hc[k].name, p->name, port_type_name(p->type),
                      (unsigned long long)stat_get((const uint64_t *)(t + hc[k].rx)),
                      hc[k].name, p->name, port_type_name(p->type),
                      (unsigned long long)stat_get((const uint64_t *)(t + hc[k].tx)));
        }
    }
}

/* A counter of an uplink's or VXLAN port's stats struct, at offset off;
 * reason labels it (NULL: the family has one sample per port). */
struct prom_reason {
    const char *reason;
    size_t off;
};

static void prom_uplink_get(const struct port *p, void *st)
{
    uplink_get_stats(p, st);
}

static void prom_vxlan_get(const struct port *p, void *st)
{
    struct vxlan_info in;
    vxlan_get_stats(p, st, &in);
}

/* One metric family: for every port of type t, name{port="P",reason="R"}
 * for each of the n reasons, read from the stats struct get() fills. */
static void prom_reasons(struct sbuf *b, const char *name, const char *help, enum port_type t,
                         void (*get)(const struct port *, void *), const struct prom_reason *r,
                         size_t n)
{
    union {
        struct uplink_stats u;
        struct vxlan_stats v;
    } st;
    prom_head(b, name, "counter", help);
    for (unsigned i = 0; i < ports.n; i++) {
        const struct port *p = ports.p[i];
        if (!p || p->type != t)
            continue;
        get(p, &st);
        for (size_t k = 0; k < n; k++) {
            uint64_t v = *(const uint64_t *)((const char *)&st + r[k].off);
            if (r[k].reason)
                sb_printf(b, "lwvhost_%s{port=\"%s\",reason=\"%s\"} %llu\n", name, p->name,
                          r[k].reason, (unsigned long long)v);
            else
                sb_printf(b, "lwvhost_%s{port=\"%s\"} %llu\n", name, p->name,
                          (unsigned long long)v);
        }
    }
}

#define NREASONS(a) (sizeof(a) / sizeof((a)[0]))

/* The uplinks' and VXLAN ports' own counters: drops by reason (the JSON's
 * wire_* and encap_*), UDP GSO and GRO use, and the sizes of the VXLAN
 * tables. */
static void prom_wire_ports(struct sbuf *b)
{
    static const struct prom_reason up[] = {
        { "truncated", offsetof(struct uplink_stats, rx_truncated) },
        { "bad_header", offsetof(struct uplink_stats, rx_bad_hdr) },
        { "gso_unsupported", offsetof(struct uplink_stats, rx_gso_unsupported) },
        { "bad_ring", offsetof(struct uplink_stats, rx_bad_ring) },
        { "kernel_drops", offsetof(struct uplink_stats, rx_kernel_drops) },
    };
    static const struct prom_reason vwire[] = {
        { "short", offsetof(struct vxlan_stats, rx_short) },
        { "bad_flags", offsetof(struct vxlan_stats, rx_bad_flags) },
        { "unknown_vni", offsetof(struct vxlan_stats, rx_unknown_vni) },
        { "too_long", offsetof(struct vxlan_stats, rx_too_long) },
        { "unknown_remote", offsetof(struct vxlan_stats, rx_unknown_remote) },
        { "errors", offsetof(struct vxlan_stats, rx_errors) },
    };
    static const struct prom_reason vencap[] = {
        { "too_big", offsetof(struct vxlan_stats, tx_too_big) },
        { "bad_offload", offsetof(struct vxlan_stats, tx_bad_offload) },
        { "no_remote", offsetof(struct vxlan_stats, tx_no_remote) },
        { "no_room", offsetof(struct vxlan_stats, tx_no_room) },
        { "send_errors", offsetof(struct vxlan_stats, tx_send_errors) },
    };
    static const struct prom_reason gso_sends[] = {
        { NULL, offsetof(struct vxlan_stats, tx_gso_sends) },
    };
    static const struct prom_reason gso_dgrams[] = {
        { NULL, offsetof(struct vxlan_stats, tx_gso_datagrams) },
    };
    static const struct prom_reason gro_bufs[] = {
        { NULL, offsetof(struct vxlan_stats, rx_gro_buffers) },
    };
    static const struct prom_reason gro_dgrams[] = {
        { NULL, offsetof(struct vxlan_stats, rx_gro_segments) },
    };
    prom_reasons(b, "uplink_wire_drops_total", "Frames from the wire an uplink dropped",
                 PORT_UPLINK, prom_uplink_get, up, NREASONS(up));
    prom_reasons(b, "vxlan_wire_drops_total", "Datagrams from remotes a VXLAN port dropped",
                 PORT_VXLAN, prom_vxlan_get, vwire, NREASONS(vwire));
    prom_reasons(b, "vxlan_encap_drops_total", "Frames to remotes a VXLAN port dropped",
                 PORT_VXLAN, prom_vxlan_get, vencap, NREASONS(vencap));
    prom_reasons(b, "vxlan_gso_sends_total", "UDP GSO sends of a VXLAN port", PORT_VXLAN,
                 prom_vxlan_get, gso_sends, 1);
    prom_reasons(b, "vxlan_gso_datagrams_total", "Datagrams its UDP GSO sends carried",
                 PORT_VXLAN, prom_vxlan_get, gso_dgrams, 1);
    prom_reasons(b, "vxlan_gro_buffers_total",
                 "Received buffers of a VXLAN port that UDP GRO had coalesced", PORT_VXLAN,
                 prom_vxlan_get, gro_bufs, 1);
    prom_reasons(b, "vxlan_gro_datagrams_total", "Datagrams its coalesced buffers carried",
                 PORT_VXLAN, prom_vxlan_get, gro_dgrams, 1);
    static const char *const gauges[][2] = {
        { "vxlan_remotes", "Remote VTEPs of a VXLAN port (configured and learned)" },
        { "vxlan_macs", "MACs a VXLAN port knows the remote of" },
    };
    for (size_t g = 0; g < 2; g++) {
        prom_head(b, gauges[g][0], "gauge", gauges[g][1]);
        for (unsigned i = 0; i < ports.n; i++) {
            const struct port *p = ports.p[i];
            if (!p || p->type != PORT_VXLAN)
                continue;
            struct vxlan_stats st;
            struct vxlan_info in;
            vxlan_get_stats(p, &st, &in);
            sb_printf(b, "lwvhost_%s{port=\"%s\"} %u\n", gauges[g][0], p->name,
                      g == 0 ? in.nremotes : in.vtep_entries);
        }
    }
}

void view_prometheus(struct sbuf *b)
{
    prom_queues(b);
    prom_head(b, "port_connected", "gauge", "1 if a frontend is attached");
    for (unsigned i = 0; i < ports.n; i++)
        if (ports.p[i] && ports.p[i]->type == PORT_VHOST)
            sb_printf(b, "lwvhost_port_connected{port=\"%s\"} %d\n", ports.p[i]->name,
                      ports.p[i]->dev.connected);
    prom_host_ports(b);
    prom_wire_ports(b);
    struct fdb_stats fs;
    fdb_get_stats(&ports_switch()->fdb, &fs);
    prom_head(b, "fdb_not_learned_total", "counter", "Source addresses the MAC table refused");
    sb_printf(b, "lwvhost_fdb_not_learned_total{reason=\"bucket_full\"} %llu\n"
              "lwvhost_fdb_not_learned_total{reason=\"port_limit\"} %llu\n"
              "lwvhost_fdb_not_learned_total{reason=\"live_elsewhere\"} %llu\n",
              (unsigned long long)fs.full, (unsigned long long)fs.port_limit,
              (unsigned long long)fs.refused);
    static struct wsample w[MAX_SAMPLED];
    unsigned n = workers_count() < MAX_SAMPLED ? workers_count() : MAX_SAMPLED;
    for (unsigned i = 0; i < n; i++)
        sample_worker(i, &w[i]);
    prom_workers(b, w, n);
}

/* ---- ring indexes, like QEMU's `info virtio-queue-status` -------------- */

struct ring_snap {
    unsigned index, num;
    uint16_t avail, last_avail, used, guest_used;
    bool mapped, notify_off;
    /* Packed rings: positions with wrap counters, descriptors waiting from
     * last_avail, and both event suppression flags as guest memory holds
     * them. */
    bool packed, avail_wrap, used_wrap;
    unsigned waiting;
    uint16_t drv_flags, dev_flags;
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
            .index = i, .num = q->vq.num, .mapped = vq_mapped(&q->vq),
            .avail = vq_guest_avail_idx(&q->vq), .last_avail = q->vq.last_avail,
            .used = q->vq.used_idx, .guest_used = vq_guest_used_idx(&q->vq),
            .notify_off = q->vq.notify_off, .state = queue_state(d, q),
            .broken = vq_broken(&q->vq), .packed = q->vq.packed,
            .avail_wrap = q->vq.avail_wrap, .used_wrap = q->vq.used_wrap,
        };
        if (q->vq.packed && vq_mapped(&q->vq)) {
            r[n].waiting = vq_pk_waiting(&q->vq);
            r[n].drv_flags = __atomic_load_n(&q->vq.drv_event->flags, __ATOMIC_RELAXED);
            r[n].dev_flags = __atomic_load_n(&q->vq.dev_event->flags, __ATOMIC_RELAXED);
        } else if (!q->vq.packed) {
            r[n].waiting = (uint16_t)(r[n].avail - r[n].last_avail);
        }
        n++;
    }
    vu_dev_unlock(d);
    return n;
}

static void ring_json(struct jw *j, const struct port *p, const struct ring_snap *s)
{
    jw_obj(j, NULL);
    jw_str(j, "port", p->name);
    jw_u64(j, "queue", s->index);
    jw_str(j, "dir", s->index % 2 ? "tx" : "rx");
    jw_str(j, "state", s->state);
    jw_u64(j, "size", s->num);
    jw_str(j, "layout", s->packed ? "packed" : "split");
    jw_bool(j, "mapped", s->mapped);
    if (s->packed) {
        /* Positions in the ring, each with its wrap counter. */
        jw_null(j, "avail_idx");
        jw_u64(j, "last_avail_idx", s->last_avail);
        jw_u64(j, "avail_wrap", s->avail_wrap);
        jw_u64(j, "used_idx", s->used);
        jw_u64(j, "used_wrap", s->used_wrap);
        jw_null(j, "guest_used_idx");
        jw_u64(j, "driver_event_flags", s->drv_flags);
        jw_u64(j, "device_event_flags", s->dev_flags);
    } else {
        jw_u64(j, "avail_idx", s->avail);
        jw_u64(j, "last_avail_idx", s->last_avail);
        jw_u64(j, "used_idx", s->used);
        jw_u64(j, "guest_used_idx", s->guest_used);
    }
    jw_bool(j, "notify", !s->notify_off);
    jw_u64(j, "waiting", s->waiting);
    jw_str(j, "broken", s->broken);
    jw_obj_end(j);
}

/* Per ring: the driver's avail index, the next entry we will consume
 * (last_avail), the used index we publish and what guest memory holds.
 * avail - last_avail is waiting for us; last_avail - used is in flight.
 * A packed ring has no avail or used index in guest memory: it shows its
 * positions as POS:WRAP and counts the descriptors waiting. */
void view_rings(struct sbuf *b, bool json)
{
    static struct ring_snap r[LWV_MAX_VQS];
    struct jw j;
    if (json) {
        jw_init(&j, b);
        jw_obj(&j, NULL);
        jw_arr(&j, "rings");
    } else {
        sb_printf(b, "%-16s %5s %-3s %-9s %5s %6s %10s %6s %10s %6s %7s %s\n", "PORT", "QUEUE",
                  "DIR", "STATE", "SIZE", "AVAIL", "LAST_AVAIL", "USED", "GUEST_USED", "NOTIFY",
                  "WAITING", "BROKEN");
    }
    for (unsigned pi = 0; pi < ports.n; pi++) {
        struct port *p = ports.p[pi];
        if (!p || p->type != PORT_VHOST)
            continue;
        unsigned n = snap_rings(&p->dev, r);
        for (unsigned k = 0; k < n; k++) {
            const struct ring_snap *s = &r[k];
            if (json) {
                ring_json(&j, p, s);
                continue;
            }
            if (s->packed) {
                char la[16], us[16];
                snprintf(la, sizeof(la), "%u:%u", s->last_avail, s->avail_wrap);
                snprintf(us, sizeof(us), "%u:%u", s->used, s->used_wrap);
                sb_printf(b, "%-16s %5u %-3s %-9s %5u %6s %10s %6s %10s %6s %7u %s\n", p->name,
                          s->index, s->index % 2 ? "tx" : "rx", s->state, s->num, "packed", la,
                          us, "-", s->notify_off ? "off" : "on", s->waiting,
                          s->broken ? s->broken : "-");
                continue;
            }
            sb_printf(b, "%-16s %5u %-3s %-9s %5u %6u %10u %6u %10u %6s %7u %s\n", p->name,
                      s->index, s->index % 2 ? "tx" : "rx", s->state, s->num, s->avail,
                      s->last_avail, s->used, s->guest_used, s->notify_off ? "off" : "on",
                      s->waiting, s->broken ? s->broken : "-");
        }
    }
    if (json) {
        jw_arr_end(&j);
        jw_obj_end(&j);
        sb_putc(b, '\n');
    }
}

/* ---- the MAC table, like `bridge fdb` and `ovs-appctl fdb/show` --------- */

static void fdb_json(struct sbuf *b, const struct fdb *f, const struct fdb_entry *e, unsigned n,
                     const struct fdb_stats *st)
{
    struct jw j;
    char m[18];
    jw_init(&j, b);
    jw_obj(&j, NULL);
    jw_arr(&j, "fdb");
    for (unsigned i = 0; i < n; i++) {
        jw_obj(&j, NULL);
        jw_str(&j, "port", port_name_of(e[i].port));
        jw_str(&j, "mac", mac_str(e[i].mac, m));
        jw_bool(&j, "static", e[i].is_static);
        if (e[i].is_static)
            jw_null(&j, "age");
        else
            jw_u64(&j, "age", e[i].age_s);
        jw_obj_end(&j);
    }
    jw_arr_end(&j);
    jw_u64(&j, "entries", n);
    jw_u64(&j, "slots", FDB_SLOTS);
    jw_u64(&j, "age_s", __atomic_load_n(&f->age_s, __ATOMIC_RELAXED));
    jw_u64(&j, "max_per_port", __atomic_load_n(&f->port_max, __ATOMIC_RELAXED));
    jw_u64(&j, "added", st->added);
    jw_u64(&j, "moved", st->moved);
    jw_u64(&j, "aged", st->aged);
    jw_u64(&j, "not_learned_full", st->full);
    jw_u64(&j, "not_learned_port_limit", st->port_limit);
    jw_u64(&j, "not_moved_live", st->refused);
    jw_obj_end(&j);
    sb_putc(b, '\n');
}

void view_fdb(struct sbuf *b, bool json)
{
    static struct fdb_entry e[FDB_SLOTS];
    const struct fdb *f = &ports_switch()->fdb;
    unsigned n = fdb_list(f, -1, e, FDB_SLOTS);
    struct fdb_stats st;
    fdb_get_stats(f, &st);
    if (json) {
        fdb_json(b, f, e, n, &st);
        return;
    }
    char m[18];
    sb_printf(b, "%-16s %-17s %-8s %s\n", "PORT", "MAC", "TYPE", "AGE");
    for (unsigned i = 0; i < n; i++) {
        if (e[i].is_static)
            sb_printf(b, "%-16s %-17s %-8s %s\n", port_name_of(e[i].port), mac_str(e[i].mac, m),
                      "static", "-");
        else
            sb_printf(b, "%-16s %-17s %-8s %u\n", port_name_of(e[i].port), mac_str(e[i].mac, m),
                      "learned", e[i].age_s);
    }
    sb_printf(b, "%u entries (%u slots); learned entries age out after %u s, at most %u per "
              "port\nlearned %llu, moved %llu, aged %llu; not learned: bucket full %llu, port "
              "limit %llu; not moved (static, or live on its port) %llu\n", n, FDB_SLOTS,
              __atomic_load_n(&f->age_s, __ATOMIC_RELAXED),
              __atomic_load_n(&f->port_max, __ATOMIC_RELAXED), (unsigned long long)st.added,
              (unsigned long long)st.moved, (unsigned long long)st.aged,
              (unsigned long long)st.full, (unsigned long long)st.port_limit,
              (unsigned long long)st.refused);
}

/* ---- policies ------------------------------------------------------------ */

/* What adaptive chose on the worker serving the port's first TX queue. */
static void adaptive_choice(const struct port *p, char *now, size_t len)
{
    unsigned wi = 0;
    for (; wi < workers_count(); wi++)
        if (worker_get(wi) == p->dev.q[1].worker)
            break;
    if (wi == workers_count())
        return;
    struct worker_stats ws;
    worker_get_stats(worker_get(wi), &ws);
    if (ws.adaptive_eff == EFF_INTERVAL)
        snprintf(now, len, "interval:%llu (worker %u, %llu frames/s)",
                 (unsigned long long)(ws.adaptive_interval_ns / 1000), wi,
                 (unsigned long long)ws.adaptive_rate);
    else
        snprintf(now, len, "%s (worker %u, %llu frames/s)",
                 eff_name((enum eff_mode)ws.adaptive_eff), wi,
                 (unsigned long long)ws.adaptive_rate);
}

void view_policy(struct sbuf *b)
{
    sb_printf(b, "%-16s %-16s %s\n", "PORT", "POLICY", "NOW");
    for (unsigned i = 0; i < ports.n; i++) {
        const struct port *p = ports.p[i];
        if (!p || p->type != PORT_VHOST)
            continue;
        char pol[32], now[64] = "";
        struct policy pp = policy_unpack(__atomic_load_n(&p->policy, __ATOMIC_RELAXED));
        policy_str(&pp, pol, sizeof(pol));
        if (pp.mode == POLICY_ADAPTIVE)
            adaptive_choice(p, now, sizeof(now));
        sb_printf(b, "%-16s %-16s %s\n", p->name, pol, now);
    }
    sb_printf(b, "idle fall-back: %u us\n", workers_idle_us());
}

/* ---- traces -------------------------------------------------------------- */

void view_trace(struct sbuf *b, bool graph, int worker)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) {
        sb_printf(b, "error: out of memory\n");
        return;
    }
    for (unsigned i = 0; i < workers_count(); i++) {
        if (worker >= 0 && i != (unsigned)worker)
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
