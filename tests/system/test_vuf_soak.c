/*
 * test_vuf_soak - the soak of issue 5: "mixed traffic with random frontend
 * disconnects and policy switches: no crash, memory and fd counts flat,
 * counters consistent".  Runs LWV_SOAK_SECONDS (default 20, so the suite
 * stays short; the documented full soak is LWV_SOAK_SECONDS=600) after a
 * 3 s warm-up; LWV_SOAK_SEED=N replays the same random choices (the seed
 * is printed).
 *
 * Set-up: lwvhostd with ports p0..p3 (server mode) and two workers.  The
 * frontends differ so every datapath variant runs at once: p0 direct
 * descriptors and CSUM+GUEST_CSUM; p1 packed rings (VIRTIO_F_RING_PACKED)
 * of 200 entries, indirect tables, CSUM only and 512-byte (mergeable) RX
 * buffers; p2 two-descriptor chains, no offloads
 * and 128-entry rings; p3 guest memory in two regions and CSUM+GUEST_CSUM.
 *
 * Traffic: each round every connected frontend sends a burst (1..160
 * frames, until its ring is full) of 60..1514-byte frames: unicast to a
 * random other port (connected or not), broadcast, or to a MAC nobody
 * has; from the CSUM ports a quarter are IPv4/UDP frames with a partial
 * checksum (NEEDS_CSUM), which the daemon must pass on to GUEST_CSUM
 * receivers untouched and complete for the others; one in 200 frames has
 * an invalid header (checksum start beyond the frame) that the daemon must
 * drop and count.  Every frame carries its source port, destination class,
 * kind, a sequence number per (source, destination class) and an FNV hash
 * of its payload, so a receiver finds any corrupted, duplicated,
 * reordered, misaddressed or foreign frame, and any header (offload) error.
 * Meanwhile: a random port (or all) gets a random policy (notify, poll,
 * interval:N, adaptive[:N]) every 0.1-0.5 s, and the answer must say so;
 * now and then a receiver stops reading for 50-300 ms (its ring fills,
 * the daemon must drop and count); about once a second a frontend hangs
 * up abruptly (half the time right after a burst, so both its rings hold
 * frames), and 20-250 ms later connects again with fresh guest memory and
 * sends a broadcast first so its MAC is learned again.
 *
 * Counters.  The daemon's per-port counters live as long as the port
 * (dev_reset does not clear them), so the test takes the daemon's
 * counters of a port while nothing is connected to it (after the daemon
 * has processed the hang-up) as the base of the next frontend generation.
 * tx_packets counts every frame the daemon took from a TX ring (including
 * the invalid ones, which are also counted in drops_invalid); rx_packets
 * every frame written into a guest's RX ring; rx_drops the frames a
 * destination could not take (ring full, not ready, invalid for it).
 * Frames may be lost only there, or with a frontend that hung up.
 *   - At a hang-up: taken := tx_packets since the base must lie between
 *     what the frontend saw completed and what it published; as TX rings
 *     are served in order, exactly the first `taken` frames were taken
 *     (the rest are lost in the dead ring, which is allowed).  Invalid
 *     frames among them == the daemon's tx drops.  rx_packets since the
 *     base lies between what the frontend read and that plus its RX ring
 *     size (delivered, but unread when it went away).
 *   - Every 0.6-1.2 s a quiet point: traffic stops, every port is
 *     connected, every TX ring is completed and every receiver drained
 *     until the daemon's counters agree exactly with the frontends' (5 s at
 *     most): tx_packets == frames published (all completed), rx_packets ==
 *     frames read, tx drops == invalid frames sent.  For a port connected
 *     through the whole interval, the frames that had to reach it (taken
 *     by the daemon from other ports: addressed to it, broadcast or
 *     unknown) minus those it read must be at most its rx_drops of the
 *     interval, and exactly equal in a calm interval, one without any
 *     hang-up or connect (then no MAC was forgotten, so no unicast was
 *     flooded: the port must also have seen no frame for another port).
 *     About 40% of the intervals are calm.  Then one frame to each port
 *     must raise its RX interrupt (the receivers here poll, and would not
 *     notice a lost one otherwise).
 *   - Resources: at each quiet point (all four connected) the daemon's fd
 *     and mapping counts must equal those after the warm-up; with nothing
 *     connected at the end they must equal those with nothing connected
 *     after the warm-up.  RSS: see RSS_* below.  (A daemon built with a
 *     sanitizer: fds only, see `sanitized`.)
 * Finally the daemon must be alive and exit 0 on SIGTERM.
 *
 * Single-threaded: the frontends, the traffic and the control commands
 * all run in the test's main thread.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "systest.h"

#include <stdbool.h>

#define NP 4
#define CLS_BCAST NP          /* destination classes: port 0..NP-1, then */
#define CLS_UNKNOWN (NP + 1)  /* broadcast and a MAC that no port has */
#define NCLS (NP + 2)

enum kind { K_PLAIN, K_CSUM, K_INVALID };
enum fstate { UP, CLOSING, DOWN };

#define SOAK_HDR 20           /* "SOAK", src, cls, kind, gen, seq, len, 0, hash */
#define ETHERTYPE_SOAK 0x88b5
#define LOG_SIZE 1024         /* > any ring: frames published, not yet known taken */
#define NOTE_MAX 12           /* details printed per kind of problem */

/*
 * RSS bounds, against the figures right after the warm-up (all four
 * frontends just reconnected).  RssAnon (heap, stacks, thread-local
 * buffers) is where a per-connection or per-frame leak shows: after the
 * warm-up nothing should allocate any more, so 1 MiB covers allocator noise
 * (the control thread's reply buffers, a 64 KiB thread-local buffer first
 * touched late) but not a leak of even 100 bytes per frame or 1 KiB per
 * reconnect over the 10-minute soak.  VmRSS also counts the guest-memory
 * pages (shared memfd) the daemon has touched in the current connections:
 * rings and RX/TX buffers, about 1 MiB each for p0 and p3, 0.65 MiB for
 * p1 and 0.4 MiB for p2, ~3.2 MiB in all, little of it touched right
 * after a reconnect.  So VmRSS may grow by those 3.2 MiB plus the 1 MiB of
 * anon noise, rounded up to 5 MiB; a leaked guest-memory map per
 * reconnect would show in the mapping count first.
 */
#define RSS_ANON_GROWTH_KB 1024
#define RSS_GROWTH_KB (5 * 1024)

struct pstat {
    bool connected;
    unsigned long long rx_packets, rx_drops, tx_packets, tx_drops, tx_invalid;
};

struct txlog {
    uint8_t cls, kind;
};

struct fe {
    struct tport t;
    unsigned idx;
    char name[8];
    char path[256];
    struct vuf_opts o;        /* fixed per port; fresh memory every connect */
    bool csum_tx, guest_csum;
    enum fstate state;
    unsigned gen;
    double stall_until, t_reconnect;
    bool relearn;             /* next frame is a broadcast (MAC learning) */
    /* this generation */
    uint64_t published, taken, recv, invalid_taken;
    struct txlog log[LOG_SIZE];
    struct pstat base;        /* daemon counters when it began (port idle) */
    /* this interval (since the last quiet point) */
    bool stable;
    uint64_t expect_int, got_int, flood_int;
    unsigned long long drops_q;   /* rx_drops at the last quiet point */
};

static struct fe P[NP];
static int64_t last_seq[NP][NP][NCLS];   /* receiver, source, class */
static uint32_t next_seq[NP][NCLS];
static const uint8_t MAC_UNKNOWN[6] = { 0x02, 0, 0, 0, 0, 0xee };

static struct {
    uint64_t sent, taken, received, lost_in_ring, unread_at_close, flooded, invalid_sent;
    uint64_t bad, dup, reorder;
    unsigned disconnects, mid_traffic, reconnect_fail, policy_ok, policy_fail, stalls;
    unsigned quiet, quiet_calm, hangup_problems, quiet_problems, res_problems, irq_problems;
} S;

static bool all_stable;   /* no hang-up and no connect in this interval */

/* ---- random numbers (xorshift64*, seeded, so a run can be replayed) ---- */
static uint64_t rng;
static uint32_t rnd(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return (uint32_t)((rng * 2685821657736338717ull) >> 32);
}
static unsigned rnd_in(unsigned lo, unsigned hi) { return lo + rnd() % (hi - lo + 1); }
static double rnd_t(double lo, double hi) { return lo + (hi - lo) * (rnd() / 4294967296.0); }

/* ---- frames --------------------------------------------------------- */
static void put16(uint8_t *p, unsigned v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static unsigned get16(const uint8_t *p) { return (unsigned)p[0] << 8 | p[1]; }

static uint32_t sum16(const uint8_t *p, size_t n, uint32_t s)
{
    for (size_t i = 0; i < n; i += 2)
        s += (uint32_t)p[i] << 8 | (i + 1 < n ? p[i + 1] : 0);
    return s;
}
static unsigned fold(uint32_t s)
{
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return s;
}

static uint32_t fnv(uint32_t h, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

static void port_mac(unsigned i, uint8_t m[6])
{
    memset(m, 0, 6);
    m[0] = 0x02;
    m[5] = (uint8_t)(i + 1);
}

static void cls_mac(unsigned cls, uint8_t m[6])
{
    if (cls == CLS_BCAST)
        memcpy(m, MAC_BCAST, 6);
    else if (cls == CLS_UNKNOWN)
        memcpy(m, MAC_UNKNOWN, 6);
    else
        port_mac(cls, m);
}

static uint8_t pattern(uint32_t seq, unsigned src, size_t i)
{
    return (uint8_t)(seq * 131u + i * 7u + src * 29u + (i >> 8));
}

/* Ethernet + IPv4 + UDP headers of a checksum frame, the UDP checksum
 * field holding the pseudo-header sum (as a guest sends CHECKSUM_PARTIAL). */
static void ip_udp_headers(uint8_t *p, unsigned src, unsigned cls, uint32_t seq, size_t len)
{
    put16(p + 12, 0x0800);
    uint8_t *ip = p + 14;
    memset(ip, 0, 28);
    ip[0] = 0x45;
    put16(ip + 2, (unsigned)(len - 14));
    put16(ip + 4, seq & 0xffff);
    put16(ip + 6, 0x4000);
    ip[8] = 64;
    ip[9] = 17;
    ip[12] = 10;
    ip[15] = (uint8_t)(src + 1);
    ip[16] = 10;
    ip[19] = (uint8_t)(cls == CLS_BCAST ? 255 : cls == CLS_UNKNOWN ? 254 : cls + 1);
    put16(ip + 10, ~fold(sum16(ip, 20, 0)) & 0xffff);
    uint8_t *udp = ip + 20;
    put16(udp, 4000 + src);
    put16(udp + 2, 5000 + cls);
    put16(udp + 4, (unsigned)(len - 34));
    put16(udp + 6, fold(sum16(ip + 12, 8, 17 + (uint32_t)(len - 34))));
}

static uint32_t frame_hash(const uint8_t *p, size_t off, size_t len)
{
    uint32_t h = fnv(2166136261u, p, 12);
    h = fnv(h, p + off, 16);
    return fnv(h, p + off + SOAK_HDR, len - off - SOAK_HDR);
}

static void build(uint8_t *p, size_t len, unsigned src, unsigned cls, enum kind kind,
                  uint32_t seq, unsigned gen, struct virtio_net_hdr *h)
{
    size_t off = kind == K_CSUM ? 42 : 14;
    cls_mac(cls, p);
    port_mac(src, p + 6);
    memset(h, 0, sizeof *h);
    if (kind == K_CSUM) {
        ip_udp_headers(p, src, cls, seq, len);
        h->flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
        h->csum_start = 34;
        h->csum_offset = 6;
    } else {
        put16(p + 12, ETHERTYPE_SOAK);
        if (kind == K_INVALID) {
            h->flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;   /* starts beyond the frame */
            h->csum_start = (uint16_t)(len + 8);
        }
    }
    uint8_t *s = p + off;
    memcpy(s, "SOAK", 4);
    s[4] = (uint8_t)src;
    s[5] = (uint8_t)cls;
    s[6] = (uint8_t)kind;
    s[7] = (uint8_t)gen;
    memcpy(s + 8, &seq, 4);
    put16(s + 12, (unsigned)len);
    put16(s + 14, 0);
    for (size_t i = off + SOAK_HDR; i < len; i++)
        p[i] = pattern(seq, src, i);
    uint32_t hash = frame_hash(p, off, len);
    memcpy(s + 16, &hash, 4);
}

/* ---- the daemon's counters -------------------------------------------- */
static unsigned long long jnum(const char *from, const char *end, const char *key)
{
    char pat[48];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(from, pat);
    return p && p < end ? strtoull(p + strlen(pat), NULL, 10) : ~0ull;
}

/* Reads `stats json`; 0, or -1 if it cannot be read or parsed. */
static int read_stats(struct pstat ps[NP])
{
    static char buf[1 << 16];
    if (daemon_ctl("stats json\n", buf, sizeof buf) < 0)
        return -1;
    for (unsigned i = 0; i < NP; i++) {
        char pat[48];
        snprintf(pat, sizeof pat, "{\"name\":\"%s\",", P[i].name);
        const char *b = strstr(buf, pat);
        if (!b)
            return -1;
        const char *e = strstr(b + 1, "{\"name\":");
        if (!e)
            e = strstr(b, "\"workers\"");
        if (!e)
            e = buf + strlen(buf);
        const char *st = strstr(b, "\"state\":\"");
        const char *txq = strstr(b, "{\"index\":1,");
        if (!st || st > e || !txq || txq > e)
            return -1;
        ps[i].connected = !strncmp(st + 9, "connected\"", 10);
        ps[i].rx_packets = jnum(b, e, "rx_packets");
        ps[i].rx_drops = jnum(b, e, "rx_drops");
        ps[i].tx_packets = jnum(b, e, "tx_packets");
        ps[i].tx_drops = jnum(b, e, "tx_drops");
        ps[i].tx_invalid = jnum(txq, e, "drops_invalid");
        if (ps[i].rx_packets == ~0ull || ps[i].rx_drops == ~0ull || ps[i].tx_packets == ~0ull ||
            ps[i].tx_drops == ~0ull || ps[i].tx_invalid == ~0ull)
            return -1;
    }
    return 0;
}

/* ---- /proc figures ------------------------------------------------------ */
struct figs { long fds, maps, rss, anon, shmem, vsz; };

static void figs_take(struct figs *f)
{
    f->fds = proc_fd_count(D.pid);
    f->maps = proc_maps_count(D.pid, NULL);
    f->rss = proc_status_kb(D.pid, "VmRSS");
    f->anon = proc_status_kb(D.pid, "RssAnon");
    f->shmem = proc_status_kb(D.pid, "RssShmem");
    f->vsz = proc_status_kb(D.pid, "VmSize");
}

/* ---- problems: counted, the first few printed ------------------------- */
static unsigned noted[16];
#define PROBLEM(slot, ctr, ...)                 \
    do {                                        \
        (ctr)++;                                \
        if (noted[slot]++ < NOTE_MAX)           \
            note(__VA_ARGS__);                  \
    } while (0)

/* ---- frontends ---------------------------------------------------------- */
static void fe_init(unsigned i)
{
    struct fe *f = &P[i];
    memset(f, 0, sizeof *f);
    f->idx = i;
    snprintf(f->name, sizeof f->name, "p%u", i);
    sock_path(f->path, sizeof f->path, f->name);
    f->o.path = f->path;
    f->o.timeout_ms = 3000;
    f->o.features = VUF_DEFAULT_FEATURES;
    switch (i) {
    case 0:
        f->o.tx_mode = VUF_TX_DIRECT;
        f->csum_tx = f->guest_csum = true;
        break;
    case 1:
        /* Packed rings of a size no split ring can have. */
        f->o.packed = 1;
        f->o.ring_size = 200;
        f->o.tx_mode = VUF_TX_INDIRECT;
        f->o.rx_buf_size = 512;
        f->csum_tx = true;
        break;
    case 2:
        f->o.tx_mode = VUF_TX_CHAIN2;
        f->o.ring_size = 128;
        break;
    default:
        f->o.nregions = 2;
        f->csum_tx = f->guest_csum = true;
        break;
    }
    if (f->csum_tx)
        f->o.features |= 1ull << VIRTIO_NET_F_CSUM;
    if (f->guest_csum)
        f->o.features |= 1ull << VIRTIO_NET_F_GUEST_CSUM;
    f->state = DOWN;
}

static unsigned rx_ring(const struct fe *f) { return f->o.ring_size ? f->o.ring_size : 256; }

static int fe_open(struct fe *f)
{
    if (tport_connect(&f->t, f->name, (uint8_t)(f->idx + 1), &f->o) != 0) {
        S.reconnect_fail++;
        f->t_reconnect = t_now() + 0.05;
        return -1;
    }
    bool offl = vuf_has_feature(f->t.v, VIRTIO_NET_F_CSUM) == f->csum_tx &&
                vuf_has_feature(f->t.v, VIRTIO_NET_F_GUEST_CSUM) == f->guest_csum;
    if (!offl)
        PROBLEM(0, S.hangup_problems, "%s: checksum features not negotiated as asked", f->name);
    f->gen++;
    f->state = UP;
    f->published = f->taken = f->recv = f->invalid_taken = 0;
    f->relearn = true;
    f->stable = false;
    f->stall_until = 0;
    all_stable = false;
    return 0;
}

/* The daemon took the frame logged at position `taken` of f's TX ring. */
static void credit(struct fe *f)
{
    struct txlog *l = &f->log[f->taken++ % LOG_SIZE];
    S.taken++;
    if (l->kind == K_INVALID) {
        f->invalid_taken++;
        return;
    }
    for (unsigned k = 0; k < NP; k++)
        if (k != f->idx && (l->cls == k || l->cls >= NP))
            P[k].expect_int++;
}

static void reclaim(struct fe *f)
{
    int r = vuf_tx_reclaim(f->t.v, 0);
    if (r < 0)
        PROBLEM(1, S.bad, "%s: TX reclaim: %s (%s)", f->name, strerror(-r),
                vuf_last_error(f->t.v));
    struct vuf_stats st;
    vuf_get_stats(f->t.v, &st);
    while (f->taken < st.tx_done)
        credit(f);
}

static unsigned pick_size(unsigned min)
{
    unsigned r = rnd() % 100, s;
    if (r < 45)
        s = rnd_in(60, 128);
    else if (r < 80)
        s = rnd_in(60, 1514);
    else
        s = rnd_in(1400, 1514);
    return s < min ? min : s;
}

/* Up to n frames from f (fewer when its ring fills), then one publish;
 * to >= 0: plain frames to that destination class only. */
static void send_burst(struct fe *f, unsigned n, int to)
{
    static uint8_t frame[2048];
    unsigned src = f->idx;
    for (unsigned k = 0; k < n; k++) {
        unsigned r = rnd() % 100, cls;
        if (to >= 0)
            cls = (unsigned)to;
        else if (f->relearn || (r >= 65 && r < 85))
            cls = CLS_BCAST;
        else if (r >= 85)
            cls = CLS_UNKNOWN;
        else
            cls = (src + rnd_in(1, NP - 1)) % NP;
        enum kind kind = K_PLAIN;
        if (to < 0 && !f->relearn) {
            if (rnd() % 200 == 0)
                kind = K_INVALID;
            else if (f->csum_tx && rnd() % 4 == 0)
                kind = K_CSUM;
        }
        size_t len = pick_size(kind == K_CSUM ? 42 + SOAK_HDR : 14 + SOAK_HDR);
        uint32_t seq = kind == K_INVALID ? 0 : next_seq[src][cls];
        struct virtio_net_hdr h;
        build(frame, len, src, cls, kind, seq, f->gen, &h);
        int rc = vuf_tx_enqueue(f->t.v, 0, frame, len, &h);
        if (rc == -EAGAIN)
            break;
        if (rc) {
            PROBLEM(1, S.bad, "%s: send: %s (%s)", f->name, strerror(-rc),
                    vuf_last_error(f->t.v));
            break;
        }
        if (kind == K_INVALID)
            S.invalid_sent++;
        else
            next_seq[src][cls]++;
        f->log[f->published++ % LOG_SIZE] = (struct txlog){ (uint8_t)cls, (uint8_t)kind };
        f->relearn = false;
        S.sent++;
    }
    int r = vuf_tx_flush(f->t.v, 0);
    if (r < 0)
        PROBLEM(1, S.bad, "%s: publish: %s", f->name, strerror(-r));
}

/* Checks one received frame; returns a reason if it is wrong. */
static const char *verify(const struct fe *f, const uint8_t *p, int len,
                          const struct virtio_net_hdr *h, unsigned *src_o, unsigned *cls_o,
                          uint32_t *seq_o)
{
    static uint8_t ref[64];
    if (len < 14 + SOAK_HDR)
        return "runt";
    size_t off;
    unsigned et = get16(p + 12);
    if (et == ETHERTYPE_SOAK)
        off = 14;
    else if (et == 0x0800 && len >= 42 + SOAK_HDR)
        off = 42;
    else
        return "not a frame of this test";
    const uint8_t *s = p + off;
    if (memcmp(s, "SOAK", 4))
        return "no SOAK magic";
    unsigned src = s[4], cls = s[5], kind = s[6];
    uint32_t seq, hash;
    memcpy(&seq, s + 8, 4);
    memcpy(&hash, s + 16, 4);
    if (get16(s + 12) != (unsigned)len)
        return "length differs from the one sent";
    if (src >= NP || cls >= NCLS || kind > K_INVALID)
        return "bad source, class or kind";
    if (hash != frame_hash(p, off, (size_t)len))
        return "payload hash mismatch (corrupted)";
    for (int i = (int)off + SOAK_HDR; i < len; i++)
        if (p[i] != pattern(seq, src, (size_t)i))
            return "payload pattern mismatch (corrupted)";
    uint8_t m[6];
    cls_mac(cls, m);
    if (memcmp(p, m, 6))
        return "destination MAC does not match the class";
    port_mac(src, m);
    if (memcmp(p + 6, m, 6))
        return "source MAC does not match the source port";
    if (src == f->idx)
        return "a port received its own frame";
    if (kind == K_INVALID)
        return "a frame with an invalid header was delivered";
    if ((kind == K_CSUM) != (off == 42))
        return "kind does not match the frame layout";
    if (kind == K_PLAIN) {
        if (h->flags || h->gso_type)
            return "offload flags on a plain frame";
    } else {
        memcpy(ref, p, 14);
        ip_udp_headers(ref, src, cls, seq, (size_t)len);
        if (memcmp(ref + 12, p + 12, 40 - 12))
            return "IPv4/UDP headers changed";
        uint32_t pseudo = sum16(p + 26, 8, 17 + (uint32_t)(len - 34));
        if (f->guest_csum) {
            if (h->flags != VIRTIO_NET_HDR_F_NEEDS_CSUM || h->csum_start != 34 ||
                h->csum_offset != 6)
                return "NEEDS_CSUM not passed on to a GUEST_CSUM receiver";
            if (get16(p + 40) != get16(ref + 40))
                return "partial checksum changed for a GUEST_CSUM receiver";
        } else {
            if (h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM)
                return "NEEDS_CSUM passed to a receiver without GUEST_CSUM";
            if (fold(sum16(p + 34, (size_t)len - 34, pseudo)) != 0xffff)
                return "UDP checksum not completed correctly";
        }
    }
    *src_o = src;
    *cls_o = cls;
    *seq_o = seq;
    return NULL;
}

static unsigned receive(struct fe *f, unsigned max)
{
    static uint8_t buf[4096];
    unsigned n = 0;
    while (n < max) {
        struct virtio_net_hdr h;
        int len = vuf_recv_ex(f->t.v, 0, buf, sizeof buf, &h, NULL);
        if (len == -EAGAIN)
            break;
        if (len < 0) {
            PROBLEM(1, S.bad, "%s: receive: %s (%s)", f->name, strerror(-len),
                    vuf_last_error(f->t.v));
            break;
        }
        n++;
        f->recv++;
        S.received++;
        unsigned src = 0, cls = 0;
        uint32_t seq = 0;
        const char *why = verify(f, buf, len, &h, &src, &cls, &seq);
        if (why) {
            PROBLEM(2, S.bad, "%s received a bad frame (%d bytes): %s", f->name, len, why);
            continue;
        }
        int64_t *last = &last_seq[f->idx][src][cls];
        if ((int64_t)seq <= *last) {
            if ((int64_t)seq == *last)
                PROBLEM(3, S.dup, "%s: duplicate p%u->class %u seq %u", f->name, src, cls, seq);
            else
                PROBLEM(3, S.reorder, "%s: p%u->class %u seq %u after %lld", f->name, src, cls,
                        seq, (long long)*last);
            continue;
        }
        *last = seq;
        if (cls == f->idx || cls >= NP) {
            f->got_int++;
        } else {
            f->flood_int++;
            S.flooded++;
        }
    }
    return n;
}

/* Abrupt hang-up, possibly right after a burst (frames in both rings). */
static void fe_close(struct fe *f, bool mid_traffic)
{
    if (mid_traffic) {
        send_burst(f, rnd_in(16, 128), -1);
        S.mid_traffic++;
    }
    reclaim(f);
    tport_close(&f->t);
    f->state = CLOSING;
    f->stable = false;
    all_stable = false;
    S.disconnects++;
}

/* The daemon has processed f's hang-up: check the generation's counters and
 * make the daemon's present counters the base of the next one. */
static void fe_closed(struct fe *f, const struct pstat *ps)
{
    unsigned long long tx = ps->tx_packets - f->base.tx_packets;
    if (tx < f->taken || tx > f->published) {
        PROBLEM(4, S.hangup_problems, "%s gen %u hang-up: daemon took %llu frames; frontend "
                "published %llu, saw %llu completed", f->name, f->gen, tx,
                (unsigned long long)f->published, (unsigned long long)f->taken);
    } else {
        while (f->taken < tx)
            credit(f);
        S.lost_in_ring += f->published - tx;
    }
    unsigned long long inv = ps->tx_invalid - f->base.tx_invalid;
    unsigned long long txd = ps->tx_drops - f->base.tx_drops;
    if (inv != f->invalid_taken || txd != f->invalid_taken)
        PROBLEM(4, S.hangup_problems, "%s gen %u hang-up: %llu invalid frames taken, daemon "
                "counted %llu invalid, %llu tx drops", f->name, f->gen,
                (unsigned long long)f->invalid_taken, inv, txd);
    unsigned long long rx = ps->rx_packets - f->base.rx_packets;
    if (rx < f->recv || rx > f->recv + rx_ring(f))
        PROBLEM(4, S.hangup_problems, "%s gen %u hang-up: daemon delivered %llu frames, "
                "frontend read %llu (RX ring %u)", f->name, f->gen, rx,
                (unsigned long long)f->recv, rx_ring(f));
    else
        S.unread_at_close += rx - f->recv;
    f->base = *ps;
    f->state = DOWN;
    f->t_reconnect = t_now() + rnd_t(0.02, 0.25);
}

/* Waits (up to 3 s) until the daemon has seen every CLOSING port go. */
static void settle_closing(bool wait)
{
    double until = t_now() + 3;
    for (;;) {
        bool any = false;
        for (unsigned i = 0; i < NP; i++)
            any |= P[i].state == CLOSING;
        if (!any)
            return;
        struct pstat ps[NP];
        if (read_stats(ps) == 0) {
            for (unsigned i = 0; i < NP; i++)
                if (P[i].state == CLOSING && !ps[i].connected)
                    fe_closed(&P[i], &ps[i]);
        }
        if (!wait)
            return;
        if (t_now() > until || !daemon_alive()) {
            for (unsigned i = 0; i < NP; i++)
                if (P[i].state == CLOSING)
                    PROBLEM(4, S.hangup_problems, "%s: the daemon did not see the hang-up "
                            "within 3 s", P[i].name);
            return;
        }
        msleep(2);
    }
}

/* ---- policies --------------------------------------------------------- */
static void policy_switch(void)
{
    static const unsigned iv[] = { 20, 50, 100, 250, 1000 };
    char mode[32], line[64], reply[256];
    unsigned r = rnd() % 100;
    if (r < 30)
        snprintf(mode, sizeof mode, "notify");
    else if (r < 45)
        snprintf(mode, sizeof mode, "poll");
    else if (r < 70)
        snprintf(mode, sizeof mode, "interval:%u", iv[rnd() % 5]);
    else if (r < 85)
        snprintf(mode, sizeof mode, "adaptive");
    else
        snprintf(mode, sizeof mode, "adaptive:%u", iv[rnd() % 5]);
    const char *target = rnd() % 5 == 0 ? "all" : P[rnd() % NP].name;
    snprintf(line, sizeof line, "policy %s %s\n", target, mode);
    reply[0] = 0;
    daemon_ctl(line, reply, sizeof reply);
    char want[64];
    snprintf(want, sizeof want, "port%s set to %s%s", strcmp(target, "all") ? "" : "s", mode,
             strcmp(mode, "adaptive") ? "" : ":");
    if (!strncmp(reply, "policy of ", 10) && strstr(reply, want)) {
        S.policy_ok++;
    } else {
        S.policy_fail++;
        if (noted[5]++ < NOTE_MAX)
            note("'policy %s %s' answered: %s", target, mode, reply);
    }
}

/* ---- quiet points ------------------------------------------------------- */
static struct figs base_conn, base_none;
static bool have_base;
static long rss_max, anon_max;
/* A daemon built with ASan or TSan reserves terabytes of shadow memory;
 * its allocator keeps freed memory in quarantine and maps new regions as
 * it goes, so its mapping count and RSS grow without any leak (and
 * LeakSanitizer checks for leaks when it exits).  Then only fds are
 * compared. */
static bool sanitized;

static void compare_figs(const char *when, const struct figs *b, const struct figs *f)
{
    if (f->fds != b->fds || (!sanitized && f->maps != b->maps))
        PROBLEM(6, S.res_problems, "%s: daemon has %ld fds and %ld mappings, %ld and %ld after "
                "the warm-up", when, f->fds, f->maps, b->fds, b->maps);
}

/* One frame to each port must raise its RX interrupt (call eventfd),
 * whatever policies, reconnects and drops came before: a receiver that
 * polls, as the soak's do, would not notice a lost interrupt. */
static void irq_ping(const char *when)
{
    for (unsigned k = 0; k < NP; k++) {
        struct fe *f = &P[k], *src = &P[(k + 1) % NP];
        struct vuf_stats s0, s1;
        vuf_wait_ring(f->t.v, 0, 0);   /* absorbs interrupts already sent */
        vuf_get_stats(f->t.v, &s0);
        send_burst(src, 1, (int)k);
        double until = t_now() + 2;
        do {
            vuf_wait_ring(f->t.v, 0, 10);
            vuf_get_stats(f->t.v, &s1);
        } while (s1.interrupts == s0.interrupts && t_now() < until);
        if (s1.interrupts == s0.interrupts)
            PROBLEM(10, S.irq_problems, "%s: a frame %s->%s raised no interrupt within 2 s",
                    when, src->name, f->name);
        receive(f, ~0u);
        reclaim(src);
    }
}

/*
 * Stops the traffic, brings every port up, completes every TX ring and
 * drains every receiver until the daemon's counters agree with the
 * frontends' (or 5 s pass), then checks the interval.
 */
static void quiet_point(void)
{
    settle_closing(true);
    for (unsigned i = 0; i < NP; i++)
        for (int tries = 0; P[i].state == DOWN && tries < 20; tries++)
            if (fe_open(&P[i]))
                msleep(50);
    for (unsigned i = 0; i < NP; i++) {
        if (P[i].state != UP)
            return;   /* reported as a reconnect failure */
        if (P[i].relearn)
            send_burst(&P[i], 1, -1);
    }
    struct pstat ps[NP];
    double until = t_now() + 5;
    bool agree = false, have = false;
    while (!agree && t_now() < until) {
        bool idle = true;
        for (unsigned i = 0; i < NP; i++) {
            reclaim(&P[i]);
            receive(&P[i], ~0u);
            idle &= vuf_tx_inflight(P[i].t.v, 0) == 0;
        }
        if (!idle) {
            msleep(1);
            continue;
        }
        if (read_stats(ps) < 0)
            break;
        have = true;
        agree = true;
        for (unsigned i = 0; i < NP; i++) {
            struct fe *f = &P[i];
            agree &= ps[i].rx_packets - f->base.rx_packets == f->recv &&
                     ps[i].tx_packets - f->base.tx_packets == f->published &&
                     f->taken == f->published;
        }
        if (!agree)
            msleep(2);
    }
    if (!have) {
        PROBLEM(7, S.quiet_problems, "quiet point: no statistics from the daemon");
        return;
    }
    S.quiet++;
    if (all_stable)
        S.quiet_calm++;
    char when[48];
    snprintf(when, sizeof when, "quiet point %u%s", S.quiet, all_stable ? " (calm)" : "");
    for (unsigned i = 0; i < NP; i++) {
        struct fe *f = &P[i];
        unsigned long long rx = ps[i].rx_packets - f->base.rx_packets;
        unsigned long long tx = ps[i].tx_packets - f->base.tx_packets;
        unsigned long long inv = ps[i].tx_invalid - f->base.tx_invalid;
        unsigned long long txd = ps[i].tx_drops - f->base.tx_drops;
        if (!agree && (rx != f->recv || tx != f->published || f->taken != f->published))
            PROBLEM(7, S.quiet_problems, "%s %s gen %u: daemon rx %llu tx %llu; frontend read "
                    "%llu, published %llu, completed %llu (after 5 s)", when, f->name, f->gen,
                    rx, tx, (unsigned long long)f->recv, (unsigned long long)f->published,
                    (unsigned long long)f->taken);
        if (inv != f->invalid_taken || txd != f->invalid_taken)
            PROBLEM(8, S.quiet_problems, "%s %s: %llu invalid frames taken; daemon counted %llu "
                    "invalid, %llu tx drops", when, f->name,
                    (unsigned long long)f->invalid_taken, inv, txd);
        unsigned long long drops = ps[i].rx_drops - f->drops_q;
        if (f->stable) {
            long long missing = (long long)f->expect_int - (long long)f->got_int;
            bool ok = missing >= 0 && (unsigned long long)missing <= drops;
            if (all_stable)
                ok = ok && (unsigned long long)missing == drops && f->flood_int == 0;
            if (!ok)
                PROBLEM(9, S.quiet_problems, "%s %s: %llu frames for it were taken, it read "
                        "%llu (%lld missing), %llu counted as dropped, %llu frames for "
                        "other ports flooded to it", when, f->name,
                        (unsigned long long)f->expect_int, (unsigned long long)f->got_int,
                        missing, drops, (unsigned long long)f->flood_int);
        }
        f->drops_q = ps[i].rx_drops;
        f->expect_int = f->got_int = f->flood_int = 0;
        f->stable = true;
        f->stall_until = 0;
    }
    all_stable = true;
    if (have_base) {
        struct figs fg;
        figs_take(&fg);
        compare_figs(when, &base_conn, &fg);
        if (fg.rss > rss_max)
            rss_max = fg.rss;
        if (fg.anon > anon_max)
            anon_max = fg.anon;
    }
    irq_ping(when);
}

/* ---- the run ------------------------------------------------------------ */
struct sched {
    double next_policy, next_quiet, next_progress;
    double disc[3];
    unsigned ndisc;
};

static void plan_interval(struct sched *s, double now)
{
    double len = rnd_t(0.6, 1.2);
    s->next_quiet = now + len;
    s->ndisc = rnd() % 10 < 4 ? 0 : rnd_in(1, 3);   /* 40% calm */
    for (unsigned k = 0; k < s->ndisc; k++)
        s->disc[k] = now + rnd_t(0.05, 0.7 * len);
}

static void run(double secs, struct sched *s, const char *phase)
{
    double t0 = t_now(), end = t0 + secs, last_closing = 0;
    plan_interval(s, t0);
    s->next_progress = t0 + 30;
    while (daemon_alive()) {
        double now = t_now();
        if (now >= s->next_quiet) {
            quiet_point();
            if (now >= end)
                break;
            plan_interval(s, t_now());
            continue;
        }
        if (now >= end && s->next_quiet > now + 0.05)
            s->next_quiet = now;   /* finish with a quiet point */
        /* traffic */
        for (unsigned i = 0; i < NP; i++) {
            if (P[i].state != UP)
                continue;
            unsigned r = rnd() % 100;
            unsigned n = r < 60 ? rnd_in(1, 4) : r < 90 ? rnd_in(5, 32) : rnd_in(33, 160);
            send_burst(&P[i], n, -1);
        }
        for (unsigned i = 0; i < NP; i++) {
            if (P[i].state != UP)
                continue;
            reclaim(&P[i]);
            if (now >= P[i].stall_until)
                receive(&P[i], 512);
        }
        /* events */
        for (unsigned k = 0; k < s->ndisc; k++) {
            if (now < s->disc[k])
                continue;
            s->disc[k] = s->disc[--s->ndisc];
            unsigned up[NP], nup = 0;
            for (unsigned j = 0; j < NP; j++)
                if (P[j].state == UP)
                    up[nup++] = j;
            if (nup > NP - 2)   /* at most two ports down at a time */
                fe_close(&P[up[rnd() % nup]], rnd() % 2);
            break;
        }
        for (unsigned i = 0; i < NP; i++)
            if (P[i].state == DOWN && now >= P[i].t_reconnect)
                fe_open(&P[i]);
        if (now - last_closing > 0.005) {
            settle_closing(false);
            last_closing = now;
        }
        if (now >= s->next_policy) {
            policy_switch();
            s->next_policy = now + rnd_t(0.1, 0.5);
            if (rnd() % 3 == 0) {
                struct fe *f = &P[rnd() % NP];
                if (f->state == UP) {
                    f->stall_until = now + rnd_t(0.05, 0.3);
                    S.stalls++;
                }
            }
        }
        if (now >= s->next_progress) {
            note("%s %.0f s: sent %llu, received %llu, %u hang-ups, %u policy switches, "
                 "%u quiet points", phase, now - t0, (unsigned long long)S.sent,
                 (unsigned long long)S.received, S.disconnects, S.policy_ok, S.quiet);
            s->next_progress = now + 30;
        }
        /* pace: ~10k rounds/s at most, leaving the daemon CPU */
        struct timespec ts = { 0, 50000 };
        nanosleep(&ts, NULL);
    }
}

static void close_all_settled(void)
{
    for (unsigned i = 0; i < NP; i++)
        if (P[i].state == UP) {
            reclaim(&P[i]);
            tport_close(&P[i].t);
            P[i].state = CLOSING;
        }
    settle_closing(true);
}

int main(void)
{
    const char *env = getenv("LWV_SOAK_SECONDS");
    double secs = env && atof(env) > 0 ? atof(env) : 20;
    test_init("soak", (unsigned)secs + 120);
    env = getenv("LWV_SOAK_SEED");
    uint64_t seed = env && *env ? strtoull(env, NULL, 0)
                                : (uint64_t)time(NULL) ^ (uint64_t)getpid() << 32;
    rng = seed ? seed : 1;
    note("seed %llu (LWV_SOAK_SEED to replay), %.0f s (LWV_SOAK_SECONDS)",
         (unsigned long long)seed, secs);
    for (unsigned i = 0; i < NP; i++)
        fe_init(i);
    memset(last_seq, 0xff, sizeof last_seq);   /* -1: nothing seen yet */

    const char *ports[] = { "p0", "p1", "p2", "p3", NULL };
    const char *extra[] = { "--workers", "2", NULL };
    if (daemon_start(ports, extra)) {
        CHECK(0, "daemon starts with 4 ports and 2 workers");
        return test_finish();
    }
    int r = 0;
    for (unsigned i = 0; i < NP; i++)
        r |= fe_open(&P[i]);
    CHECK(r == 0, "4 frontends connect (direct, indirect+512-byte buffers, chains+128 ring, "
          "2 memory regions)");
    if (r) {
        close_all_settled();
        return test_finish();
    }

    /* warm-up: the same mix for 3 s, then everything closed and reopened,
     * so the figures are those of a daemon that has seen it all once */
    struct sched s = { 0 };
    double t0 = t_now();
    run(3, &s, "warm-up");
    close_all_settled();
    msleep(100);
    figs_take(&base_none);
    quiet_point();   /* reconnects all, relearns, drains */
    figs_take(&base_conn);
    sanitized = base_conn.vsz > 1L << 30;   /* kB: over a TiB */
    have_base = true;
    rss_max = base_conn.rss;
    anon_max = base_conn.anon;
    note("after warm-up: none connected: %ld fds, %ld maps, RSS %ld kB; all connected: %ld "
         "fds, %ld maps, RSS %ld kB (anon %ld kB), VmSize %ld kB", base_none.fds,
         base_none.maps, base_none.rss, base_conn.fds, base_conn.maps, base_conn.rss,
         base_conn.anon, base_conn.vsz);

    double t1 = t_now();
    run(secs, &s, "soak");
    double dur = t_now() - t1;
    bool alive = daemon_alive();
    CHECK(alive, "daemon alive after %.0f s of soak", dur);

    struct figs end_conn = { 0 }, end_none = { 0 };
    struct pstat ps[NP];
    unsigned long long rx_drops = 0;
    if (alive) {
        figs_take(&end_conn);
        if (read_stats(ps) == 0)
            for (unsigned i = 0; i < NP; i++)
                rx_drops += ps[i].rx_drops;
        close_all_settled();
        msleep(100);
        figs_take(&end_none);
        compare_figs("all closed at the end", &base_none, &end_none);
    }

    CHECK(S.bad == 0, "every frame received intact, as addressed, with the right offload "
          "header (%llu bad)", (unsigned long long)S.bad);
    CHECK(S.dup == 0 && S.reorder == 0, "no frame duplicated or reordered per (source, "
          "destination) (%llu duplicates, %llu out of order)", (unsigned long long)S.dup,
          (unsigned long long)S.reorder);
    CHECK(S.hangup_problems == 0, "counters consistent at every one of %u hang-ups (%u "
          "mid-traffic) and every reconnect", S.disconnects, S.mid_traffic);
    CHECK(S.quiet_problems == 0, "counters exact at all %u quiet points (%u calm); no "
          "silent loss", S.quiet, S.quiet_calm);
    CHECK(S.reconnect_fail == 0, "every reconnect accepted (%u refused or failed)",
          S.reconnect_fail);
    CHECK(S.policy_fail == 0 && S.policy_ok > 0, "%u policy switches acknowledged (%u not)",
          S.policy_ok, S.policy_fail);
    CHECK(S.disconnects >= (unsigned)(secs / 2) && (S.quiet_calm > 0 || S.quiet < 10) &&
          S.sent > 1000,
          "the soak did what it should (%u hang-ups, %u calm intervals, %llu frames)",
          S.disconnects, S.quiet_calm, (unsigned long long)S.sent);
    CHECK(S.irq_problems == 0, "every frame sent at a quiet point raised the receiver's "
          "interrupt (%u did not)", S.irq_problems);
    if (sanitized) {
        CHECK(S.res_problems == 0, "fd counts flat: %ld with all connected, %ld with none, as "
              "after the warm-up", end_conn.fds, end_none.fds);
        note("sanitizer build of the daemon (VmSize %ld GiB): mappings %ld -> %ld and RSS %ld "
             "-> %ld kB not compared (sanitizer allocator)", base_conn.vsz >> 20,
             base_conn.maps, end_conn.maps, base_conn.rss, rss_max);
    } else {
        CHECK(S.res_problems == 0, "fd and mapping counts flat: %ld/%ld with all connected, "
              "%ld/%ld with none, as after the warm-up", end_conn.fds, end_conn.maps,
              end_none.fds, end_none.maps);
        CHECK(anon_max - base_conn.anon < RSS_ANON_GROWTH_KB,
              "anonymous RSS flat: %ld kB after the warm-up, at most %ld kB (bound +%d kB)",
              base_conn.anon, anon_max, RSS_ANON_GROWTH_KB);
        CHECK(rss_max - base_conn.rss < RSS_GROWTH_KB,
              "RSS bounded: %ld kB after the warm-up, at most %ld kB (bound +%d kB for guest "
              "memory the daemon touches and allocator noise)", base_conn.rss, rss_max,
              RSS_GROWTH_KB);
    }
    note("soak %.1f s (+%.1f s warm-up): sent %llu (%.0f/s), taken by the daemon %llu, "
         "received %llu, dropped by the daemon %llu (ring full/not ready), lost in hung-up "
         "TX rings %llu, delivered but unread at hang-up %llu, flooded %llu, invalid sent %llu; "
         "%u hang-ups, %u policy switches, %u receiver stalls, %u quiet points; fds %ld -> "
         "%ld, maps %ld -> %ld, RSS %ld -> %ld kB (anon %ld -> %ld, guest memory %ld -> %ld)",
         dur, t1 - t0, (unsigned long long)S.sent,
         (double)S.sent / (t_now() - t0), (unsigned long long)S.taken,
         (unsigned long long)S.received, rx_drops, (unsigned long long)S.lost_in_ring,
         (unsigned long long)S.unread_at_close, (unsigned long long)S.flooded,
         (unsigned long long)S.invalid_sent, S.disconnects, S.policy_ok, S.stalls, S.quiet,
         base_conn.fds, end_conn.fds, base_conn.maps, end_conn.maps, base_conn.rss,
         end_conn.rss, base_conn.anon, end_conn.anon, base_conn.shmem, end_conn.shmem);
    return test_finish();
}
