/*
 * vuf-probe - send N test frames of size S from port A to port B through a
 * vhost-user backend (lwvhostd, DPDK net_vhost, ...) using the vuf frontend
 * library, and report what came back.
 *
 * Owns: nothing but its own two frontends.  Must not: touch the backend.
 *
 *   vuf-probe -a A.sock [-b B.sock] [-n N] [-s SIZE] [-q PAIRS] [-r RING]
 *             [-m direct|chain|indirect] [-R REGIONS] [-x RXBUF] [-t MS]
 *             [-w WINDOW] [-B] [-2] [-S] [-v]
 *   -b omitted: frames come back on A (e.g. testpmd --forward-mode=macswap).
 *   -B  broadcast destination (default: B's MAC, after one broadcast each
 *       way so a learning switch knows both MACs)
 *   -2  bidirectional: B sends N frames to A as well
 *   -S  listen on the socket paths (backend in client mode)
 *   -w  max frames in flight per direction (default: half of what the
 *       receiver's RX ring holds, so a correct backend never drops)
 * Output: one line "sent=... received=... bad=... reordered=..."; exit 0 only
 * if every frame arrived intact and in order per flow.
 */
#define _GNU_SOURCE
#include "vuf.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const uint8_t mac_a[6] = { 0x02, 0, 0, 0, 0, 0x0a };
static const uint8_t mac_b[6] = { 0x02, 0, 0, 0, 0, 0x0b };
static const uint8_t mac_bc[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

struct side {
    struct vuf *v;
    const uint8_t *mac, *peer_mac;
    unsigned flow_base;
    uint64_t sent, received, bad, reordered, learn_seen;
    uint32_t next_seq[2 * VUF_MAX_QP];   /* expected next seq per flow */
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void usage(void)
{
    fprintf(stderr, "usage: vuf-probe -a A.sock [-b B.sock] [-n N] [-s SIZE] [-q PAIRS] "
                    "[-r RING] [-m direct|chain|indirect] [-R 1|2] [-x RXBUF] [-t MS] "
                    "[-w WINDOW] [-B] [-2] [-S] [-v]\n");
    exit(2);
}

/* Receive everything pending on every queue of s; frames from `from`. */
static void drain(struct side *s, unsigned nq, int verbose)
{
    uint8_t buf[65536];
    for (unsigned q = 0; q < nq; q++) {
        for (;;) {
            int n = vuf_recv(s->v, q, buf, sizeof buf);
            if (n == -EAGAIN)
                break;
            if (n < 0) {
                fprintf(stderr, "recv: %s (%s)\n", strerror(-n), vuf_last_error(s->v));
                s->bad++;
                return;
            }
            uint32_t seq, flow;
            if (vuf_frame_check(buf, (size_t)n, &seq, &flow) || flow >= 2 * VUF_MAX_QP) {
                s->bad++;
                if (verbose)
                    fprintf(stderr, "bad frame of %d bytes on queue %u\n", n, q);
                continue;
            }
            if (seq == 0xffffffffu) {   /* learning broadcast */
                s->learn_seen++;
                continue;
            }
            if (seq != s->next_seq[flow]) {
                s->reordered++;
                if (verbose)
                    fprintf(stderr, "flow %u: seq %u, expected %u\n", flow, seq,
                            s->next_seq[flow]);
            }
            s->next_seq[flow] = seq + 1;
            s->received++;
        }
    }
}

int main(int argc, char **argv)
{
    const char *pa = NULL, *pb = NULL;
    unsigned n = 1000, size = 64, nq = 1, ring = 256, regions = 1, rxbuf = 0;
    unsigned window = 0;
    int timeout = 5000, bcast = 0, bidir = 0, server = 0, verbose = 0;
    enum vuf_tx_mode mode = VUF_TX_DIRECT;
    int c;

    while ((c = getopt(argc, argv, "a:b:n:s:q:r:m:R:x:t:w:B2Sv")) != -1) {
        switch (c) {
        case 'a': pa = optarg; break;
        case 'b': pb = optarg; break;
        case 'n': n = (unsigned)strtoul(optarg, NULL, 0); break;
        case 's': size = (unsigned)strtoul(optarg, NULL, 0); break;
        case 'q': nq = (unsigned)strtoul(optarg, NULL, 0); break;
        case 'r': ring = (unsigned)strtoul(optarg, NULL, 0); break;
        case 'R': regions = (unsigned)strtoul(optarg, NULL, 0); break;
        case 'x': rxbuf = (unsigned)strtoul(optarg, NULL, 0); break;
        case 't': timeout = atoi(optarg); break;
        case 'w': window = (unsigned)strtoul(optarg, NULL, 0); break;
        case 'm':
            if (!strcmp(optarg, "direct")) mode = VUF_TX_DIRECT;
            else if (!strcmp(optarg, "chain")) mode = VUF_TX_CHAIN2;
            else if (!strcmp(optarg, "indirect")) mode = VUF_TX_INDIRECT;
            else usage();
            break;
        case 'B': bcast = 1; break;
        case '2': bidir = 1; break;
        case 'S': server = 1; break;
        case 'v': verbose = 1; break;
        default: usage();
        }
    }
    if (!pa || size < VUF_FRAME_MIN || nq == 0 || nq > VUF_MAX_QP)
        usage();
    if (!pb)
        bidir = 0;

    struct vuf_opts o;
    memset(&o, 0, sizeof o);
    o.server = server;
    o.queue_pairs = nq;
    o.ring_size = ring;
    o.nregions = regions;
    o.rx_buf_size = rxbuf;
    o.tx_mode = mode;
    o.tx_buf_size = size + VIRTIO_NET_HDR_LEN > 2048 ? size + VIRTIO_NET_HDR_LEN : 0;

    struct side A = { .mac = mac_a, .peer_mac = pb ? mac_b : mac_a, .flow_base = 0 };
    struct side B = { .mac = mac_b, .peer_mac = mac_a, .flow_base = VUF_MAX_QP };
    int r;
    o.path = pa;
    if ((r = vuf_connect(&A.v, &o))) {
        fprintf(stderr, "vuf-probe: %s: %s (%s)\n", pa, strerror(-r), vuf_last_error(NULL));
        return 1;
    }
    if (pb) {
        o.path = pb;
        if ((r = vuf_connect(&B.v, &o))) {
            fprintf(stderr, "vuf-probe: %s: %s (%s)\n", pb, strerror(-r), vuf_last_error(NULL));
            vuf_close(A.v);
            return 1;
        }
    }
    if (verbose)
        fprintf(stderr, "features 0x%llx protocol 0x%llx queue_num %llu\n",
                (unsigned long long)vuf_features(A.v), (unsigned long long)vuf_protocol(A.v),
                (unsigned long long)vuf_backend_queue_num(A.v));

    struct side *rx = pb ? &B : &A;   /* receiver of A's frames */
    uint8_t frame[65536];

    /* Learning broadcasts, one each way (so a learning switch knows both
     * MACs), repeated until seen: also a barrier for backends that bring a
     * port up asynchronously after the handshake. */
    {
        double until = now_s() + 3.0, next = 0;
        while (now_s() < until && (!rx->learn_seen || (pb && !A.learn_seen))) {
            if (now_s() >= next) {
                vuf_frame_fill(frame, size, mac_bc, mac_a, 0xffffffffu, 0);
                vuf_send(A.v, 0, frame, size);
                vuf_tx_reclaim(A.v, 0);
                if (pb) {
                    vuf_frame_fill(frame, size, mac_bc, mac_b, 0xffffffffu, VUF_MAX_QP);
                    vuf_send(B.v, 0, frame, size);
                    vuf_tx_reclaim(B.v, 0);
                }
                next = now_s() + 0.2;
            }
            drain(&A, nq, verbose);
            if (pb)
                drain(&B, nq, verbose);
            vuf_wait(rx->v, 10);
        }
        if (!rx->learn_seen || (pb && !A.learn_seen))
            fprintf(stderr, "vuf-probe: learning broadcast did not come through\n");
        usleep(50000);
        drain(&A, nq, verbose);
        if (pb)
            drain(&B, nq, verbose);
    }
    if (!window) {
        unsigned rxb = rxbuf ? rxbuf : 2048;
        unsigned per = (size + VIRTIO_NET_HDR_LEN + rxb - 1) / rxb;
        window = ring / per / 2;
        if (window == 0)
            window = 1;
    }

    double t0 = now_s(), deadline = t0 + timeout / 1000.0;
    struct side *senders[2] = { &A, bidir ? &B : NULL };
    uint64_t want = (uint64_t)n * (bidir ? 2 : 1);
    while (now_s() < deadline) {
        int progress = 0;
        for (int si = 0; si < 2; si++) {
            struct side *s = senders[si];
            if (!s)
                continue;
            unsigned batch = 0;
            struct side *dst = s == &A ? rx : &A;
            while (s->sent < n && batch < 64 && s->sent - dst->received < window) {
                unsigned q = (unsigned)(s->sent % nq);
                vuf_frame_fill(frame, size, bcast ? mac_bc : s->peer_mac, s->mac,
                               (uint32_t)(s->sent / nq), s->flow_base + q);
                r = vuf_tx_enqueue(s->v, q, frame, size, NULL);
                if (r == -EAGAIN)
                    break;
                if (r) {
                    fprintf(stderr, "send: %s (%s)\n", strerror(-r), vuf_last_error(s->v));
                    goto out;
                }
                s->sent++;
                batch++;
                progress = 1;
                if (s->sent % nq == 0 || s->sent == n)
                    for (unsigned k = 0; k < nq; k++)
                        vuf_tx_flush(s->v, k);
            }
            for (unsigned k = 0; k < nq; k++) {
                vuf_tx_flush(s->v, k);
                vuf_tx_reclaim(s->v, k);
            }
        }
        uint64_t before = A.received + B.received + A.bad + B.bad;
        drain(rx, nq, verbose);
        if (bidir)
            drain(&A, nq, verbose);
        if (A.received + B.received + A.bad + B.bad != before)
            progress = 1;
        if (A.received + (pb ? B.received : 0) >= want)
            break;
        if (!progress)
            vuf_wait(rx->v, 2);
    }
out:;
    double dt = now_s() - t0;
    struct vuf_stats sa, sb;
    vuf_get_stats(A.v, &sa);
    memset(&sb, 0, sizeof sb);
    if (pb)
        vuf_get_stats(B.v, &sb);
    uint64_t got = pb ? B.received + A.received : A.received;
    uint64_t bad = A.bad + B.bad, reord = A.reordered + B.reordered;
    printf("sent=%llu received=%llu bad=%llu reordered=%llu size=%u queues=%u "
           "kicks=%llu/%llu suppressed=%llu/%llu irqs=%llu/%llu time=%.3fs pps=%.0f\n",
           (unsigned long long)(A.sent + B.sent), (unsigned long long)got,
           (unsigned long long)bad, (unsigned long long)reord, size, nq,
           (unsigned long long)sa.kicks, (unsigned long long)sb.kicks,
           (unsigned long long)sa.kicks_suppressed, (unsigned long long)sb.kicks_suppressed,
           (unsigned long long)sa.interrupts, (unsigned long long)sb.interrupts,
           dt, dt > 0 ? got / dt : 0.0);
    vuf_close(A.v);
    if (pb)
        vuf_close(B.v);
    return (got == want && bad == 0 && reord == 0) ? 0 : 1;
}
