/*
 * engine.c - the workloads and one measured run (see bench.h).
 *
 * Every VM is a vuf frontend; one thread busy-polls all of them.  A flow is
 * (sending VM, queue pair, receiving VM): pairs: VM 2i -> VM 2i+1 on every
 * queue pair; many-to-one: VM i -> VM 0; sink: VM i -> its own MAC (lwvhostd
 * drops a frame addressed to its source port; testpmd runs rxonly); out:
 * VM i -> BENCH_OUT_MAC, which no VM has, so lwvhostd floods every frame
 * out of its ports that are not VMs (tap, uplink, VXLAN).
 *
 * Frames (Ethernet, ethertype 0x88b5, at least 60 bytes):
 *   0 dst, 6 src, 12 type 0x88b5, 14 magic "LWB1", 18 kind, 20 flow (u32),
 *   24 seq (u32), 28 send time (u64 ns, CLOCK_MONOTONIC), 36 ack (u32),
 *   then zeros.  All fields little-endian host order (one process).
 *
 * Phases: connect, learn + probe every flow (barrier), baseline counters,
 * warmup, measured interval (snapshots A and B taken by a helper thread so
 * the rings keep being served), drain (no new data; replies still flow),
 * final counters for the loss accounting.
 *
 * Owns: its VMs (closed at the end).  Must not: start or stop the backend.
 */
#define _GNU_SOURCE
#include "bench.h"
#include "vuf.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define FR_MAGIC     0x3142574cu      /* "LWB1" little-endian */
#define FR_HDR       40u
#define ACK_SIZE     64u
#define TX_BATCH     32u              /* data frames per flow per loop */
#define RX_BUDGET    64u              /* frames per queue per loop */
#define DELACK_NS    200000           /* tcp: ack a lone frame after 200 us */
#define TCP_RTO_NS   20000000         /* tcp: window stalled 20 ms: give up on it */
#define RR_RTO_NS    50000000         /* rr: transaction lost after 50 ms */
#define TIMER_NS     50000            /* timer checks every 50 us */

enum fkind { FK_DATA = 1, FK_ACK, FK_REQ, FK_RESP, FK_LEARN, FK_PROBE, FK_PROBE_REPLY };

/* A flow's sequence numbers and windows: what the warm-up leaves behind
 * and the measured run starts without. */
struct flow_seq {
    uint32_t next_seq;      /* sender: next to send */
    uint32_t acked;         /* tcp: next seq the receiver expects */
    unsigned outstanding;   /* rr: requests without a response */
    int rx_started;         /* receiver: seen a first frame */
    uint32_t expect;        /* highest seq seen + 1 */
    unsigned unacked;       /* frames not yet acknowledged */
};

struct flow {
    unsigned id, src, dst, q;
    uint8_t *tmpl;          /* data/request frame, src -> dst */
    uint8_t *rtmpl;         /* ack/response frame, dst -> src */
    unsigned rlen;
    struct flow_seq s;      /* sequence state, cleared when measuring starts */
    /* sender */
    double tokens;
    int64_t tok_ns;
    int64_t ack_ns;         /* tcp: last ack progress */
    int64_t resp_ns;
    /* receiver */
    int64_t unacked_ns;
    int probed;             /* 1: probe arrived, 2: reply arrived */
    int probe_sent;
};

struct vm {
    struct vuf *v;
    uint8_t mac[6];
    uint8_t dirty[VUF_MAX_QP];
};

struct counters {
    uint64_t tx_frames, rx_frames, rx_bytes;
    uint64_t data_tx, data_rx, data_rx_bytes, trans;
    uint64_t gaps, reordered, bad, reply_drops, timeouts, late;
    uint64_t send_attempts, send_blocked;
    uint64_t busy_ns;
    uint64_t taken, taken_bytes;    /* sink: frames reclaimed from TX rings */
    uint64_t kicks, calls;          /* frontend side */
};

struct snapshot {
    int ok;
    int64_t t;                      /* ns, middle of the backend read */
    struct backend_snap s;
    uint64_t jbusy, jtotal;
    char err[200];
};

struct eng {
    const struct bench_cfg *c;
    struct backend *b;
    struct vm vm[BENCH_MAX_VMS];
    unsigned nvm;
    struct flow *f;
    unsigned nf;
    double rate_f;          /* per flow, frames/s; 0 = unlimited */
    double burst;
    int sending;
    int record_lat;
    int need_probe;         /* probe completion needed per flow: 1 or 3 */
    int debug;              /* $LWVBENCH_DEBUG: print tcp window stalls */
    int64_t now;            /* clock at the last receive pass */
    struct counters k;
    struct hist lat;
    int64_t next_timer;
    uint64_t prev_done[BENCH_MAX_VMS];   /* tx_done at the last look */
    char *err;
    size_t errlen;
    int failed;
    /* helper thread for snapshots */
    pthread_t th;
    int th_started;
    sem_t go;
    int th_quit;
    int snap_req, snap_done;
    struct snapshot snaps[2];
};

const char *workload_name(enum workload w)
{
    return w == WL_TCP ? "tcp" : w == WL_RR ? "rr" : "stream";
}

const char *topology_name(enum topology t)
{
    return t == TOPO_M2O ? "many-to-one" : t == TOPO_SINK ? "sink" : t == TOPO_OUT ? "out" : "pairs";
}

const char *backend_name(enum backend_kind k)
{
    return k == BK_DPDK ? "dpdk" : "lwvhostd";
}

static void fail(struct eng *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(struct eng *e, const char *fmt, ...)
{
    if (e->failed)
        return;
    e->failed = 1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->err, e->errlen, fmt, ap);
    va_end(ap);
}

static void warn(struct bench_result *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warn(struct bench_result *r, const char *fmt, ...)
{
    size_t n = strlen(r->warnings);
    if (n && n + 2 < sizeof r->warnings) {
        strcpy(r->warnings + n, "; ");
        n += 2;
    }
    if (n + 1 >= sizeof r->warnings)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->warnings + n, sizeof r->warnings - n, fmt, ap);
    va_end(ap);
}

void result_init(struct bench_result *r, const struct bench_cfg *c)
{
    /* every figure starts as "not available" */
    double *first = &r->interval_s, *last = &r->other_cpu;
    memset(r, 0, sizeof *r);
    for (double *p = first; p <= last; p++)
        *p = NAN;
    r->offered_pps = c->rate > 0 ? c->rate : NAN;
    r->load_pct = NAN;
    snprintf(r->workload, sizeof r->workload, "%s", workload_name(c->wl));
    snprintf(r->topology, sizeof r->topology, "%s", topology_name(c->topo));
    snprintf(r->backend, sizeof r->backend, "%s", backend_name(c->backend));
    snprintf(r->policy, sizeof r->policy, "%s",
             c->backend == BK_DPDK ? "poll(dpdk)" : c->policy[0] ? c->policy : "default");
    snprintf(r->kind, sizeof r->kind, "run");
    snprintf(r->rx_irq, sizeof r->rx_irq, "%s", c->rx_irq_off ? "off" : "on");
    snprintf(r->ring, sizeof r->ring, "%s", c->packed ? "packed" : "split");
    r->ring_size = c->ring;
    r->size = c->size;
    r->vms = c->vms;
    r->streams = c->streams;
}

/* ---------------------------------------------------------------- frames */

static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

static void frame_init(uint8_t *fr, unsigned len, const uint8_t dst[6], const uint8_t src[6],
                       enum fkind kind, uint32_t flow)
{
    memset(fr, 0, len);
    memcpy(fr, dst, 6);
    memcpy(fr + 6, src, 6);
    fr[12] = 0x88;
    fr[13] = 0xb5;
    put32(fr + 14, FR_MAGIC);
    fr[18] = (uint8_t)kind;
    put32(fr + 20, flow);
}

static void vm_mac(unsigned i, uint8_t mac[6])
{
    const uint8_t m[6] = { 0x02, 0x4c, 0x57, 0x00, (uint8_t)(i >> 8), (uint8_t)i };
    memcpy(mac, m, 6);
}

/* ---------------------------------------------------------------- sending */

static int tx_frame(struct eng *e, unsigned vmi, unsigned q, const uint8_t *fr, unsigned len)
{
    int r = vuf_tx_enqueue(e->vm[vmi].v, q, fr, len, NULL);
    if (r == 0) {
        e->vm[vmi].dirty[q] = 1;
        e->k.tx_frames++;
        return 0;
    }
    if (r != -EAGAIN)
        fail(e, "vm%u queue %u: send: %s (%s)", vmi, q, strerror(-r), vuf_last_error(e->vm[vmi].v));
    return r;
}

static void flush_dirty(struct eng *e)
{
    for (unsigned i = 0; i < e->nvm; i++)
        for (unsigned q = 0; q < e->c->streams; q++)
            if (e->vm[i].dirty[q]) {
                e->vm[i].dirty[q] = 0;
                int r = vuf_tx_flush(e->vm[i].v, q);
                if (r < 0)
                    fail(e, "vm%u queue %u: flush: %s", i, q, strerror(-r));
            }
}

static unsigned sender_step(struct eng *e, struct flow *f, int64_t now)
{
    const struct bench_cfg *c = e->c;
    unsigned allow = TX_BATCH;
    if (e->rate_f > 0) {
        f->tokens += (double)(now - f->tok_ns) * e->rate_f * 1e-9;
        f->tok_ns = now;
        if (f->tokens > e->burst)
            f->tokens = e->burst;
        if (f->tokens < 1.0)
            return 0;
        if (f->tokens < allow)
            allow = (unsigned)f->tokens;
    }
    if (c->wl == WL_TCP) {
        uint32_t inflight = f->s.next_seq - f->s.acked;
        if (inflight >= c->window)
            return 0;
        if (c->window - inflight < allow)
            allow = c->window - inflight;
    } else if (c->wl == WL_RR) {
        if (f->s.outstanding >= c->inflight)
            return 0;
        if (c->inflight - f->s.outstanding < allow)
            allow = c->inflight - f->s.outstanding;
    }
    struct vuf *v = e->vm[f->src].v;
    unsigned k;
    e->k.send_attempts++;
    for (k = 0; k < allow; k++) {
        put32(f->tmpl + 24, f->s.next_seq);
        put64(f->tmpl + 28, (uint64_t)now);
        int r = vuf_tx_enqueue(v, f->q, f->tmpl, c->size, NULL);
        if (r == -EAGAIN) {
            e->k.send_blocked++;
            break;
        }
        if (r < 0) {
            fail(e, "vm%u queue %u: send: %s (%s)", f->src, f->q, strerror(-r),
                 vuf_last_error(v));
            break;
        }
        if (c->wl == WL_TCP && f->s.next_seq == f->s.acked)
            f->ack_ns = now;            /* window was empty: start the stall clock */
        if (c->wl == WL_RR && f->s.outstanding++ == 0)
            f->resp_ns = now;
        f->s.next_seq++;
        f->tokens -= 1.0;
        e->k.tx_frames++;
        e->k.data_tx++;
    }
    if (k) {
        int r = vuf_tx_flush(v, f->q);
        if (r < 0)
            fail(e, "vm%u queue %u: flush: %s", f->src, f->q, strerror(-r));
    }
    return k;
}

static void send_ack(struct eng *e, struct flow *f)
{
    put32(f->rtmpl + 36, f->s.expect);
    if (tx_frame(e, f->dst, f->q, f->rtmpl, f->rlen))
        e->k.reply_drops++;
    f->s.unacked = 0;
}

/* ---------------------------------------------------------------- receiving */

static void seq_account(struct eng *e, struct flow *f, uint32_t seq)
{
    if (!f->s.rx_started) {
        f->s.rx_started = 1;
        if (seq)
            e->k.gaps += seq;
        f->s.expect = seq + 1;
        return;
    }
    int32_t d = (int32_t)(seq - f->s.expect);
    if (d == 0) {
        f->s.expect++;
    } else if (d > 0) {
        e->k.gaps += (uint32_t)d;
        f->s.expect = seq + 1;
    } else {
        e->k.reordered++;
        if (e->k.gaps)
            e->k.gaps--;
    }
}

/* A path probe reached the flow's destination (which answers it when the
 * engine waits for both directions), or its reply came back. */
static void on_probe(struct eng *e, unsigned vmi, struct flow *f, unsigned kind)
{
    if (kind == FK_PROBE_REPLY) {
        if (vmi == f->src)
            f->probed |= 2;
        return;
    }
    if (vmi != f->dst) {
        e->k.bad++;
        return;
    }
    f->probed |= 1;
    if (e->need_probe == 3) {
        uint8_t pr[ACK_SIZE];
        frame_init(pr, sizeof pr, e->vm[f->src].mac, e->vm[f->dst].mac, FK_PROBE_REPLY, f->id);
        tx_frame(e, f->dst, f->q, pr, sizeof pr);
    }
}

static void handle(struct eng *e, unsigned vmi, const uint8_t *fr, int len, int64_t now)
{
    const struct bench_cfg *c = e->c;
    if (len < (int)FR_HDR || fr[12] != 0x88 || fr[13] != 0xb5 || get32(fr + 14) != FR_MAGIC) {
        e->k.bad++;
        return;
    }
    unsigned kind = fr[18];
    uint32_t fid = get32(fr + 20);
    if (kind == FK_LEARN)
        return;
    if (fid >= e->nf) {
        e->k.bad++;
        return;
    }
    struct flow *f = &e->f[fid];
    uint32_t seq = get32(fr + 24);
    uint64_t ts = get64(fr + 28);
    if (kind == FK_PROBE || kind == FK_PROBE_REPLY) {
        on_probe(e, vmi, f, kind);
        return;
    }
    if (kind != FK_DATA && kind != FK_REQ && kind != FK_ACK && kind != FK_RESP) {
        e->k.bad++;
        return;
    }
    /* Data and requests go to the flow's destination, acks and responses
     * back to its source: anything else arrived where it should not. */
    unsigned to = kind == FK_DATA || kind == FK_REQ ? f->dst : f->src;
    if (vmi != to) {
        e->k.bad++;
        return;
    }
    e->k.rx_frames++;
    e->k.rx_bytes += (unsigned)len;
    switch (kind) {
    case FK_DATA:
    case FK_REQ:
        e->k.data_rx++;
        e->k.data_rx_bytes += (unsigned)len;
        seq_account(e, f, seq);
        if (kind == FK_REQ) {
            put32(f->rtmpl + 24, seq);
            put64(f->rtmpl + 28, ts);
            if (tx_frame(e, f->dst, f->q, f->rtmpl, f->rlen))
                e->k.reply_drops++;
            return;
        }
        if (e->record_lat && (int64_t)ts <= now)
            hist_add(&e->lat, (uint64_t)(now - (int64_t)ts));
        if (c->wl == WL_TCP) {
            if (f->s.unacked++ == 0)
                f->unacked_ns = now;
            if (f->s.unacked >= 2)
                send_ack(e, f);
        }
        return;
    case FK_ACK: {
        uint32_t ack = get32(fr + 36);
        if ((int32_t)(ack - f->s.acked) > 0 && (int32_t)(f->s.next_seq - ack) >= 0) {
            f->s.acked = ack;
            f->ack_ns = now;
        }
        return;
    }
    case FK_RESP:
        if (!f->s.outstanding) {
            e->k.late++;
            return;
        }
        f->s.outstanding--;
        f->resp_ns = now;
        e->k.trans++;
        if (e->record_lat && (int64_t)ts <= now)
            hist_add(&e->lat, (uint64_t)(now - (int64_t)ts));
        return;
    }
}

static unsigned rx_drain(struct eng *e, unsigned vmi, unsigned q, int64_t now)
{
    uint8_t buf[64];
    unsigned n;
    for (n = 0; n < RX_BUDGET; n++) {
        int len = vuf_recv(e->vm[vmi].v, q, buf, sizeof buf);
        if (len == -EAGAIN)
            break;
        if (len < 0) {
            fail(e, "vm%u queue %u: receive: %s (%s)", vmi, q, strerror(-len),
                 vuf_last_error(e->vm[vmi].v));
            break;
        }
        handle(e, vmi, buf, len, now);
    }
    if (n) {
        /* the buffers go back once per batch, as a driver refills */
        int r = vuf_rx_flush(e->vm[vmi].v, q);
        if (r < 0)
            fail(e, "vm%u queue %u: RX refill: %s", vmi, q, strerror(-r));
    }
    return n;
}

/* Reclaims every TX ring; counts what the backend took (sink accounting). */
static void reclaim_all(struct eng *e)
{
    for (unsigned i = 0; i < e->nvm; i++) {
        struct vuf_stats st;
        for (unsigned q = 0; q < e->c->streams; q++)
            vuf_tx_reclaim(e->vm[i].v, q);
        vuf_get_stats(e->vm[i].v, &st);
        uint64_t d = st.tx_done - e->prev_done[i];
        e->prev_done[i] = st.tx_done;
        e->k.taken += d;
        e->k.taken_bytes += d * e->c->size;
    }
}

static void timers(struct eng *e, int64_t now)
{
    const struct bench_cfg *c = e->c;
    if (c->wl == WL_STREAM)
        return;
    for (unsigned i = 0; i < e->nf; i++) {
        struct flow *f = &e->f[i];
        if (c->wl == WL_TCP) {
            if (f->s.unacked && now - f->unacked_ns > DELACK_NS)
                send_ack(e, f);
            if (f->s.next_seq != f->s.acked && now - f->ack_ns > TCP_RTO_NS) {
                if (e->debug && !vuf_is_packed(e->vm[f->src].v)) {
                    struct vuf_ring_view a, d;
                    vuf_ring_view(e->vm[f->src].v, 2 * f->q + 1, &a);
                    vuf_ring_view(e->vm[f->dst].v, 2 * f->q + 1, &d);
                    struct pollfd pk = { .fd = d.kick_fd, .events = POLLIN };
                    int pend = poll(&pk, 1, 0);
                    fprintf(stderr, "rto flow %u vm%u->vm%u q%u next %u acked %u expect %u unacked %u "
                            "src tx avail %u used %u ev %u | dst tx avail %u used %u ev %u "
                            "kick pending %d\n",
                            f->id, f->src, f->dst, f->q, f->s.next_seq,
                            f->s.acked, f->s.expect, f->s.unacked, a.avail->idx, a.used->idx, *a.avail_event,
                            d.avail->idx, d.used->idx, *d.avail_event, pend);
                }
                e->k.timeouts++;
                f->s.acked = f->s.next_seq;
            }
        } else if (f->s.outstanding && now - f->resp_ns > RR_RTO_NS) {
            e->k.timeouts += f->s.outstanding;
            f->s.outstanding = 0;
        }
    }
}

/* One pass over every flow and queue.  Returns frames moved. */
static unsigned loop_once(struct eng *e)
{
    unsigned work = 0;
    int64_t now = now_ns();
    if (e->sending)
        for (unsigned i = 0; i < e->nf && !e->failed; i++)
            work += sender_step(e, &e->f[i], now);
    now = now_ns();
    e->now = now;
    for (unsigned i = 0; i < e->nvm; i++)
        for (unsigned q = 0; q < e->c->streams; q++)
            work += rx_drain(e, i, q, now);
    if (now >= e->next_timer) {
        timers(e, now);
        e->next_timer = now + TIMER_NS;
    }
    flush_dirty(e);
    return work;
}

/* Interrupts (call eventfd writes) since the last look; the bench polls
 * and never waits on them, so the counters are read only here. */
static uint64_t read_calls(struct eng *e)
{
    uint64_t sum = 0;
    for (unsigned i = 0; i < e->nvm; i++)
        for (unsigned r = 0; r < 2 * e->c->streams; r++) {
            struct vuf_ring_view rv;
            uint64_t val;
            if (vuf_ring_view(e->vm[i].v, r, &rv) == 0 && rv.call_fd >= 0 &&
                read(rv.call_fd, &val, sizeof val) == sizeof val)
                sum += val;
        }
    return sum;
}

static uint64_t frontend_kicks(struct eng *e)
{
    uint64_t sum = 0;
    for (unsigned i = 0; i < e->nvm; i++) {
        struct vuf_stats st;
        vuf_get_stats(e->vm[i].v, &st);
        sum += st.kicks;
    }
    return sum;
}

/* ---------------------------------------------------------------- snapshots */

static void take_snapshot(struct eng *e, struct snapshot *s)
{
    int64_t t0 = now_ns();
    s->ok = backend_snap(e->b, &s->s, s->err, sizeof s->err) == 0;
    int64_t t1 = now_ns();
    s->t = t0 + (t1 - t0) / 2;
    if (proc_cpu_jiffies(&s->jbusy, &s->jtotal))
        s->jbusy = s->jtotal = 0;
}

static void *snap_thread(void *arg)
{
    struct eng *e = arg;
    for (;;) {
        while (sem_wait(&e->go) < 0 && errno == EINTR)
            ;
        if (__atomic_load_n(&e->th_quit, __ATOMIC_ACQUIRE))
            break;
        int k = __atomic_load_n(&e->snap_req, __ATOMIC_ACQUIRE);
        take_snapshot(e, &e->snaps[(k - 1) & 1]);
        __atomic_store_n(&e->snap_done, k, __ATOMIC_RELEASE);
    }
    return NULL;
}

static double rusage_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 +
           (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
}

/* ---------------------------------------------------------------- setup */

/* Where a flow's data and probe frames go: the receiving VM, or for
 * --topology out a MAC no VM has. */
static const uint8_t *flow_dst_mac(const struct eng *e, const struct flow *f)
{
    static const uint8_t out_mac[6] = BENCH_OUT_MAC;
    return e->c->topo == TOPO_OUT ? out_mac : e->vm[f->dst].mac;
}

static int build_flows(struct eng *e)
{
    const struct bench_cfg *c = e->c;
    unsigned senders = c->topo == TOPO_PAIRS ? c->vms / 2 : c->topo == TOPO_M2O ? c->vms - 1 : c->vms;
    e->nf = senders * c->streams;
    e->f = calloc(e->nf, sizeof *e->f);
    if (!e->f)
        return -1;
    unsigned n = 0;
    for (unsigned s = 0; s < senders; s++) {
        unsigned src, dst;
        if (c->topo == TOPO_PAIRS) {
            src = 2 * s;
            dst = 2 * s + 1;
        } else if (c->topo == TOPO_M2O) {
            src = s + 1;
            dst = 0;
        } else {
            src = dst = s;
        }
        for (unsigned q = 0; q < c->streams; q++) {
            struct flow *f = &e->f[n];
            f->id = n;
            f->src = src;
            f->dst = dst;
            f->q = q;
            f->rlen = c->wl == WL_RR ? c->size : ACK_SIZE;
            f->tmpl = malloc(c->size);
            f->rtmpl = malloc(f->rlen);
            if (!f->tmpl || !f->rtmpl) {
                /* The caller frees the n flows made before this one. */
                free(f->tmpl);
                free(f->rtmpl);
                f->tmpl = f->rtmpl = NULL;
                e->nf = n;
                return -1;
            }
            frame_init(f->tmpl, c->size, flow_dst_mac(e, f), e->vm[src].mac,
                       c->wl == WL_RR ? FK_REQ : FK_DATA, n);
            frame_init(f->rtmpl, f->rlen, e->vm[src].mac, e->vm[dst].mac,
                       c->wl == WL_RR ? FK_RESP : FK_ACK, n);
            n++;
        }
    }
    return 0;
}

static int connect_vms(struct eng *e)
{
    const struct bench_cfg *c = e->c;
    struct vuf_opts o;
    memset(&o, 0, sizeof o);
    o.queue_pairs = c->streams;
    o.ring_size = c->ring;
    o.packed = c->packed;
    if (c->size + VIRTIO_NET_HDR_LEN > 2048)
        o.tx_buf_size = c->size + VIRTIO_NET_HDR_LEN;
    o.timeout_ms = 5000;
    o.rx_no_irq = c->rx_irq_off;
    o.rx_batch = 1;
    for (unsigned i = 0; i < c->vms; i++) {
        char path[300];
        backend_sock_path(e->b, i, path, sizeof path);
        o.path = path;
        vm_mac(i, e->vm[i].mac);
        int r = vuf_connect(&e->vm[i].v, &o);
        if (r) {
            fail(e, "vm%u: connecting to %s: %s (%s)", i, path, strerror(-r), vuf_last_error(NULL));
            return -1;
        }
        e->nvm = i + 1;
    }
    return 0;
}

/* Learning broadcasts, then a probe per flow until each came through. */
static int barrier(struct eng *e)
{
    const struct bench_cfg *c = e->c;
    int64_t start = now_ns(), next_send = 0;
    int64_t limit = (c->backend == BK_DPDK ? 15 : 5) * 1000000000ll;
    e->need_probe = c->wl == WL_STREAM ? 1 : 3;
    for (;;) {
        int64_t now = now_ns();
        unsigned done = 0;
        for (unsigned i = 0; i < e->nf; i++) {
            struct flow *f = &e->f[i];
            if (topo_one_way(c->topo))
                f->probed = f->probed || (f->probe_sent && vuf_tx_inflight(e->vm[f->src].v, f->q) == 0);
            done += topo_one_way(c->topo) ? f->probed != 0 : f->probed == e->need_probe;
        }
        if (done == e->nf)
            break;
        if (bench_stop_requested) {
            fail(e, "interrupted");
            return -1;
        }
        if (now - start > limit) {
            for (unsigned i = 0; i < e->nf; i++)
                if (!(topo_one_way(c->topo) ? e->f[i].probed != 0 : e->f[i].probed == e->need_probe)) {
                    fail(e, "no frame came through the backend for vm%u -> vm%u queue %u "
                         "within %lld s (%s)", e->f[i].src, e->f[i].dst, e->f[i].q,
                         (long long)(limit / 1000000000), e->f[i].probed ? "the reply did not come back" : "nothing arrived");
                    return -1;
                }
        }
        if (now >= next_send) {
            uint8_t fr[ACK_SIZE];
            static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
            for (unsigned i = 0; i < e->nvm && !topo_one_way(c->topo); i++) {
                frame_init(fr, sizeof fr, bcast, e->vm[i].mac, FK_LEARN, 0);
                tx_frame(e, i, 0, fr, sizeof fr);
            }
            for (unsigned i = 0; i < e->nf; i++) {
                struct flow *f = &e->f[i];
                if (f->probed == e->need_probe)
                    continue;
                frame_init(fr, sizeof fr, flow_dst_mac(e, f), e->vm[f->src].mac, FK_PROBE, f->id);
                if (tx_frame(e, f->src, f->q, fr, sizeof fr) == 0)
                    f->probe_sent = 1;
            }
            flush_dirty(e);
            next_send = now + 100000000;
        }
        for (unsigned i = 0; i < e->nvm; i++)
            for (unsigned q = 0; q < c->streams; q++) {
                vuf_tx_reclaim(e->vm[i].v, q);
                rx_drain(e, i, q, now);
            }
        flush_dirty(e);
        if (e->failed)
            return -1;
    }
    /* settle: let stragglers arrive, then start from clean counters */
    int64_t until = now_ns() + 30000000;
    while (now_ns() < until && !e->failed)
        loop_once(e);
    reclaim_all(e);
    for (unsigned i = 0; i < e->nf; i++) {
        memset(&e->f[i].s, 0, sizeof(e->f[i].s));
    }
    return e->failed ? -1 : 0;
}

static void sub_snap(const struct backend_snap *a, const struct backend_snap *b,
                     struct backend_snap *d)
{
    *d = *b;
    d->tx_packets = b->tx_packets - a->tx_packets;
    d->rx_packets = b->rx_packets - a->rx_packets;
    d->drops = b->drops - a->drops;
    d->kicks = b->kicks - a->kicks;
    d->calls = b->calls - a->calls;
    d->wakeups = b->wakeups - a->wakeups;
    d->syscalls = b->syscalls - a->syscalls;
    d->cpu_ns = b->cpu_ns - a->cpu_ns;
    d->cpu_user_ns = b->cpu_user_ns - a->cpu_user_ns;
    d->cpu_sys_ns = b->cpu_sys_ns - a->cpu_sys_ns;
    d->ctx_vol = b->ctx_vol - a->ctx_vol;
    d->ctx_invol = b->ctx_invol - a->ctx_invol;
    d->proc_workers_ns = b->proc_workers_ns - a->proc_workers_ns;
    d->proc_total_ns = b->proc_total_ns - a->proc_total_ns;
    d->proc_user_ticks = b->proc_user_ticks - a->proc_user_ticks;
    d->proc_sys_ticks = b->proc_sys_ticks - a->proc_sys_ticks;
    d->proc_wk_user_ticks = b->proc_wk_user_ticks - a->proc_wk_user_ticks;
    d->proc_wk_sys_ticks = b->proc_wk_sys_ticks - a->proc_wk_sys_ticks;
    /* a worker set that changed makes the /proc worker sum meaningless */
    int same = a->nworkers == b->nworkers;
    for (unsigned i = 0; same && i < a->nworkers; i++)
        same = a->worker_tid[i] == b->worker_tid[i];
    d->have_proc_workers = a->have_proc_workers && b->have_proc_workers && same;
    d->have_cpu_ns = a->have_cpu_ns && b->have_cpu_ns && same;
    d->have_user_sys = a->have_user_sys && b->have_user_sys && same;
    d->have_ctx = a->have_ctx && b->have_ctx && same;
    d->have_proc = a->have_proc && b->have_proc;
    d->have_ports = a->have_ports && b->have_ports;
    d->have_wakeups = a->have_wakeups && b->have_wakeups;
}

static double pct(double part, double whole)
{
    return whole > 0 ? 100.0 * part / whole : NAN;
}

/* ---------------------------------------------------------------- run */

static void compute(struct eng *e, struct bench_result *r, const struct counters *ka,
                    const struct counters *kb, double ta, double tb, double ua, double ub,
                    const struct snapshot *sa, const struct snapshot *sb,
                    const struct snapshot *sz, const struct snapshot *sc)
{
    const struct bench_cfg *c = e->c;
    double dt = (tb - ta) * 1e-9;
    r->flows = e->nf;
    r->interval_s = dt;
    int sink = topo_one_way(c->topo);
    double rx = sink ? (double)(kb->taken - ka->taken) : (double)(kb->rx_frames - ka->rx_frames);
    double rxb = sink ? (double)(kb->taken_bytes - ka->taken_bytes)
                      : (double)(kb->rx_bytes - ka->rx_bytes);
    r->sent_pps = (double)(kb->data_tx - ka->data_tx) / dt;
    r->rx_pps = rx / dt;
    r->rx_gbps = rxb * 8 / dt * 1e-9;
    if (c->wl == WL_RR) {
        r->tps = (double)(kb->trans - ka->trans) / dt;
        r->data_pps = r->tps;
        r->data_gbps = (double)(kb->trans - ka->trans) * c->size * 8 / dt * 1e-9;
    } else if (sink) {
        r->data_pps = r->rx_pps;
        r->data_gbps = r->rx_gbps;
    } else {
        r->data_pps = (double)(kb->data_rx - ka->data_rx) / dt;
        r->data_gbps = (double)(kb->data_rx_bytes - ka->data_rx_bytes) * 8 / dt * 1e-9;
    }

    /* accounting over the whole traffic period (counters start at 0) */
    const struct counters *k = &e->k;
    r->tx_frames = (double)k->tx_frames;
    r->rx_frames = sink ? (double)k->taken : (double)k->rx_frames;
    r->data_sent = (double)k->data_tx;
    r->data_received = sink ? (double)k->taken : (double)k->data_rx;
    r->lost = r->data_sent - r->data_received;
    r->loss_pct = r->data_sent > 0 ? 100.0 * r->lost / r->data_sent : NAN;
    r->seq_gaps = (double)k->gaps;
    r->reordered = (double)k->reordered;
    r->bad_frames = (double)k->bad;
    r->reply_drops = (double)k->reply_drops;
    r->timeouts = c->wl == WL_STREAM ? NAN : (double)k->timeouts;
    if (sz->ok && sc->ok && sz->s.have_ports && sc->s.have_ports) {
        struct backend_snap d;
        sub_snap(&sz->s, &sc->s, &d);
        r->backend_tx_packets = (double)d.tx_packets;
        r->backend_rx_packets = (double)d.rx_packets;
        r->backend_drops = (double)d.drops;
        r->unaccounted = sink ? r->tx_frames - r->backend_tx_packets
                              : r->tx_frames - r->rx_frames - r->backend_drops;
    } else if (sink) {
        r->unaccounted = r->tx_frames - r->rx_frames;
    }

    if (e->lat.count) {
        r->lat_samples = (double)e->lat.count;
        r->lat_p50 = hist_quantile(&e->lat, 0.50) * 1e-3;
        r->lat_p99 = hist_quantile(&e->lat, 0.99) * 1e-3;
        r->lat_p999 = hist_quantile(&e->lat, 0.999) * 1e-3;
        r->lat_mean = hist_mean(&e->lat) * 1e-3;
        r->lat_max = (double)e->lat.max * 1e-3;
    }

    /* CPU over the interval */
    r->bench_cpu = pct(ub - ua, dt);
    r->bench_busy = pct((double)(kb->busy_ns - ka->busy_ns) * 1e-9, dt);
    r->tx_blocked_pct = pct((double)(kb->send_blocked - ka->send_blocked),
                            (double)(kb->send_attempts - ka->send_attempts));
    double pkts = rx;
    if (sa->ok && sb->ok) {
        struct backend_snap d;
        sub_snap(&sa->s, &sb->s, &d);
        double bdt = (double)(sb->t - sa->t) * 1e-9;
        double tick = (double)clock_ticks();
        if (d.have_cpu_ns)
            r->backend_cpu_stat = pct((double)d.cpu_ns * 1e-9, bdt);
        if (d.have_proc_workers)
            r->backend_cpu_proc = pct((double)d.proc_workers_ns * 1e-9, bdt);
        if (d.have_proc)
            r->backend_proc_cpu = pct((double)d.proc_total_ns * 1e-9, bdt);
        if (c->backend == BK_DPDK)
            r->backend_cpu = r->backend_proc_cpu;
        else
            r->backend_cpu = !isnan(r->backend_cpu_stat) ? r->backend_cpu_stat : r->backend_cpu_proc;
        if (d.have_user_sys) {
            r->backend_cpu_user = pct((double)d.cpu_user_ns * 1e-9, bdt);
            r->backend_cpu_sys = pct((double)d.cpu_sys_ns * 1e-9, bdt);
        } else if (d.have_proc_workers) {
            r->backend_cpu_user = pct((double)d.proc_wk_user_ticks / tick, bdt);
            r->backend_cpu_sys = pct((double)d.proc_wk_sys_ticks / tick, bdt);
        } else if (d.have_proc && c->backend == BK_DPDK) {
            r->backend_cpu_user = pct((double)d.proc_user_ticks / tick, bdt);
            r->backend_cpu_sys = pct((double)d.proc_sys_ticks / tick, bdt);
        }
        if (d.have_ctx) {
            r->ctx_vol_per_s = (double)d.ctx_vol / bdt;
            r->ctx_invol_per_s = (double)d.ctx_invol / bdt;
        }
        if (pkts > 0) {
            double p = pkts / dt * bdt;     /* packets over the backend's window */
            if (!isnan(r->backend_cpu))
                r->cpu_us_per_pkt = r->backend_cpu / 100.0 * bdt * 1e6 / p;
            if (d.have_ports) {
                r->kicks_per_pkt = (double)d.kicks / p;
                r->calls_per_pkt = (double)d.calls / p;
            }
            if (d.have_wakeups)
                r->wakeups_per_pkt = (double)d.wakeups / p;
            if (d.have_wakeups && d.wakeups) {
                double w = (double)d.wakeups;
                r->frames_per_wakeup = p / w;
                if (!isnan(r->backend_cpu))
                    r->cpu_us_per_wakeup = r->backend_cpu / 100.0 * bdt * 1e6 / w;
                if (d.have_syscalls)
                    r->syscalls_per_wakeup = (double)d.syscalls / w;
            }
        }
        if (sa->jtotal && sb->jtotal > sa->jtotal) {
            double busy = (double)(sb->jbusy - sa->jbusy) / tick;
            double other = pct(busy, bdt) - (isnan(r->backend_proc_cpu) ? 0 : r->backend_proc_cpu) -
                           (isnan(r->bench_cpu) ? 0 : r->bench_cpu);
            r->other_cpu = other < 0 ? 0 : other;
        }
        if (!isnan(r->backend_cpu_stat) && !isnan(r->backend_cpu_proc)) {
            double diff = fabs(r->backend_cpu_stat - r->backend_cpu_proc);
            if (diff > 3.0 && diff > 0.05 * r->backend_cpu_proc) {
                r->cpu_mismatch = 1;
                warn(r, "worker CPU from lwvhostd's stats (%.1f%%) and /proc (%.1f%%) disagree",
                     r->backend_cpu_stat, r->backend_cpu_proc);
            }
        }
    } else {
        warn(r, "backend counters unavailable: %s", !sa->ok ? sa->err : sb->err);
    }
    if (pkts > 0 && (isnan(r->kicks_per_pkt) || c->backend == BK_DPDK)) {
        /* what the frontend saw: kicks it wrote, interrupts it was sent */
        r->kicks_per_pkt = (double)(kb->kicks - ka->kicks) / pkts;
        r->calls_per_pkt = (double)(kb->calls - ka->calls) / pkts;
    }

    /* is the bench itself the bottleneck? */
    if (c->rate > 0) {
        if (r->sent_pps < 0.97 * c->rate && r->tx_blocked_pct < 1.0) {
            r->bench_limited = 1;
            warn(r, "the bench offered only %.0f of %.0f frames/s without the backend "
                 "pushing back: the bench is the bottleneck, the figure does not judge "
                 "the backend", r->sent_pps, c->rate);
        } else if (r->sent_pps < 0.97 * c->rate) {
            warn(r, "offered %.0f of %.0f frames/s: the backend pushed back (TX rings full)",
                 r->sent_pps, c->rate);
        }
    } else if (r->bench_busy >= 95.0 && (isnan(r->tx_blocked_pct) || r->tx_blocked_pct < 25.0)) {
        r->bench_limited = 1;
        warn(r, "the bench was busy %.0f%% of the time and its TX rings were full for only "
             "%.0f%% of its sends: the bench is (close to) the bottleneck, the figure does not "
             "judge the backend", r->bench_busy, r->tx_blocked_pct);
    }
    if (r->other_cpu > 20.0)
        warn(r, "other processes used %.0f%% of a core during the run: noisy figure",
             r->other_cpu);
    if (k->bad)
        warn(r, "%llu malformed or misdelivered frames", (unsigned long long)k->bad);
    if (!isnan(r->unaccounted) && fabs(r->unaccounted) > 0)
        warn(r, "%.0f frames neither received nor counted as dropped by the backend",
             r->unaccounted);
}

/* Marks one end of the measured interval (1: start, 2: end): the bench's
 * counters into *k and its CPU seconds into *cpu_s, and asks the snapshot
 * thread for the backend's side.  Latencies are recorded inside only. */
static void mark_interval(struct eng *e, int which, uint64_t kick0, struct counters *k,
                          double *cpu_s)
{
    reclaim_all(e);
    e->k.kicks = frontend_kicks(e) - kick0;
    e->k.calls += read_calls(e);
    *k = e->k;
    *cpu_s = rusage_s();
    e->record_lat = which == 1;
    __atomic_store_n(&e->snap_req, which, __ATOMIC_RELEASE);
    sem_post(&e->go);
}

int engine_run(const struct bench_cfg *c, struct backend *b, struct bench_result *r,
               char *err, size_t errlen)
{
    struct eng *e = calloc(1, sizeof *e);
    if (!e) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    e->c = c;
    e->b = b;
    e->debug = getenv("LWVBENCH_DEBUG") != NULL;
    e->err = err;
    e->errlen = errlen;
    hist_reset(&e->lat);
    int rc = -1;
    struct snapshot sz, sc;
    memset(&sz, 0, sizeof sz);
    memset(&sc, 0, sizeof sc);

    if (connect_vms(e))
        goto out;
    if (build_flows(e)) {
        fail(e, "out of memory");
        goto out;
    }
    if (barrier(e))
        goto out;
    if (sem_init(&e->go, 0, 0) || pthread_create(&e->th, NULL, snap_thread, e)) {
        fail(e, "cannot start the snapshot thread");
        goto out;
    }
    e->th_started = 1;

    /* baseline: counters start now */
    memset(&e->k, 0, sizeof e->k);
    read_calls(e);
    uint64_t kick0 = frontend_kicks(e);
    take_snapshot(e, &sz);
    if (!sz.ok && c->backend == BK_LWVHOSTD) {
        fail(e, "%s", sz.err);
        goto out;
    }

    unsigned senders = e->nf;
    e->rate_f = c->rate > 0 ? c->rate / senders : 0;
    e->burst = e->rate_f * 1e-3 > 2.0 ? e->rate_f * 1e-3 : 2.0;
    int64_t t0 = now_ns();
    for (unsigned i = 0; i < e->nf; i++) {
        e->f[i].tok_ns = t0;
        e->f[i].ack_ns = t0;
        e->f[i].resp_ns = t0;
    }
    e->sending = 1;
    e->next_timer = t0;

    enum { P_WARM, P_WAIT_A, P_MEASURE, P_WAIT_B, P_DRAIN } phase = P_WARM;
    int64_t t_a = 0, t_b = 0, t_end = 0, last_rx = 0, prev = t0;
    double u_a = 0, u_b = 0;
    struct counters ka, kb;
    memset(&ka, 0, sizeof ka);
    memset(&kb, 0, sizeof kb);
    for (;;) {
        unsigned work = loop_once(e);
        int64_t now = e->now;     /* read by loop_once: clock reads are not free */
        if (work)
            e->k.busy_ns += (uint64_t)(now - prev);
        prev = now;
        if (work)
            last_rx = now;
        if (e->failed)
            goto out;
        if (bench_stop_requested) {
            fail(e, "interrupted");
            goto out;
        }
        switch (phase) {
        case P_WARM:
            if (now - t0 >= (int64_t)(c->warmup * 1e9)) {
                mark_interval(e, 1, kick0, &ka, &u_a);
                t_a = now;
                phase = P_WAIT_A;
            }
            break;
        case P_WAIT_A:
            if (__atomic_load_n(&e->snap_done, __ATOMIC_ACQUIRE) == 1)
                phase = P_MEASURE;
            /* the interval runs from t_a anyway */
            __attribute__((fallthrough));
        case P_MEASURE:
            if (phase == P_MEASURE && now - t_a >= (int64_t)(c->seconds * 1e9)) {
                mark_interval(e, 2, kick0, &kb, &u_b);
                t_b = now;
                phase = P_WAIT_B;
            }
            break;
        case P_WAIT_B:
            if (__atomic_load_n(&e->snap_done, __ATOMIC_ACQUIRE) == 2) {
                e->sending = 0;
                t_end = now;
                last_rx = now;
                phase = P_DRAIN;
            }
            break;
        case P_DRAIN: {
            int quiet = now - last_rx > 30000000;
            if (quiet || now - t_end > 2000000000ll) {
                reclaim_all(e);
                unsigned inflight = 0;
                for (unsigned i = 0; i < e->nvm; i++)
                    for (unsigned q = 0; q < c->streams; q++)
                        inflight += vuf_tx_inflight(e->vm[i].v, q);
                if (!inflight || now - t_end > 2000000000ll)
                    goto done;
            }
            break;
        }
        }
    }
done:
    /* tcp: a data frame waiting for its delayed ack is not a loss */
    reclaim_all(e);
    take_snapshot(e, &sc);
    if (!e->snaps[0].ok || !e->snaps[1].ok)
        warn(r, "backend counters unavailable");
    compute(e, r, &ka, &kb, (double)t_a, (double)t_b, u_a, u_b, &e->snaps[0], &e->snaps[1],
            &sz, &sc);
    rc = 0;
out:
    if (e->th_started) {
        __atomic_store_n(&e->th_quit, 1, __ATOMIC_RELEASE);
        sem_post(&e->go);
        pthread_join(e->th, NULL);
        sem_destroy(&e->go);
    }
    for (unsigned i = 0; i < e->nvm; i++)
        vuf_close(e->vm[i].v);
    if (e->f)
        for (unsigned i = 0; i < e->nf; i++) {
            free(e->f[i].tmpl);
            free(e->f[i].rtmpl);
        }
    free(e->f);
    free(e);
    return rc;
}
