/*
 * test_vuf_forward - frontends exchange frames through lwvhostd's switch.
 *
 * Ports a, b, c, d.  a sends with direct descriptors, b with indirect
 * tables and 512-byte mergeable RX buffers (a 1500-byte frame spans
 * several), c with two-descriptor chains, d with guest memory in two
 * regions (buffers at GPA 4 GiB).  After one broadcast from each port
 * (learning), 64-, 1500- and mixed-size unicast frames go both ways; every
 * frame must arrive intact and in order, and unicast between learned MACs
 * must not reach the other ports.
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

static unsigned count_vuf_frames(struct tport *t)
{
    static uint8_t buf[65536];
    unsigned n = 0;
    for (unsigned q = 0; q < t->nq; q++) {
        int len;
        while ((len = vuf_recv(t->v, q, buf, sizeof buf)) != -EAGAIN) {
            if (len < 0)
                break;
            if (len >= (int)VUF_FRAME_MIN && !memcmp(buf + 14, "VUF1", 4))
                n++;
        }
    }
    return n;
}

int main(void)
{
    test_init("forward", 120);
    const char *ports[] = { "a", "b", "c", "d", NULL };
    if (daemon_start(ports, NULL)) {
        CHECK(0, "daemon starts and listens on 4 sockets");
        return test_finish();
    }
    CHECK(1, "daemon starts and listens on 4 sockets");

    struct tport a, b, c, d;
    struct vuf_opts o;
    int r;

    tport_default_opts(&o, "a");
    o.tx_mode = VUF_TX_DIRECT;
    r = tport_connect(&a, "a", 0x0a, &o);
    CHECK(r == 0, "frontend a connects and negotiates (direct TX)");
    if (r)
        return test_finish();
    note("a: offered features 0x%llx acked 0x%llx protocol offered 0x%llx acked 0x%llx",
         (unsigned long long)vuf_device_features(a.v), (unsigned long long)vuf_features(a.v),
         (unsigned long long)vuf_device_protocol(a.v), (unsigned long long)vuf_protocol(a.v));
    CHECK(vuf_has_feature(a.v, VIRTIO_F_VERSION_1), "VERSION_1 negotiated");
    CHECK(vuf_has_feature(a.v, VIRTIO_NET_F_MRG_RXBUF), "MRG_RXBUF negotiated");
    CHECK(vuf_has_feature(a.v, VIRTIO_RING_F_EVENT_IDX), "EVENT_IDX negotiated");
    CHECK(vuf_has_feature(a.v, VIRTIO_RING_F_INDIRECT_DESC), "INDIRECT_DESC negotiated");
    CHECK(vuf_has_protocol(a.v, VHOST_USER_PROTOCOL_F_REPLY_ACK), "REPLY_ACK negotiated");

    tport_default_opts(&o, "b");
    o.tx_mode = VUF_TX_INDIRECT;
    o.rx_buf_size = 512;
    r = tport_connect(&b, "b", 0x0b, &o);
    CHECK(r == 0, "frontend b connects (indirect TX, 512-byte RX buffers)");
    tport_default_opts(&o, "c");
    o.tx_mode = VUF_TX_CHAIN2;
    r |= tport_connect(&c, "c", 0x0c, &o);
    CHECK(r == 0, "frontend c connects (2-descriptor chains)");
    tport_default_opts(&o, "d");
    o.nregions = 2;
    r |= tport_connect(&d, "d", 0x0d, &o);
    CHECK(r == 0, "frontend d connects (two memory regions)");
    if (r)
        return test_finish();

    struct tport *all[] = { &a, &b, &c, &d };
    CHECK(learn_all(all, 4) == 0, "a broadcast from each port reaches every other port");

    struct xres x;
    static const unsigned sizes[] = { 64, 1500 };
    for (unsigned s = 0; s < 2; s++) {
        unsigned sz = sizes[s], n = sz == 64 ? 1000 : 400;
        struct { struct tport *src, *dst; } dir[] = { { &a, &b }, { &b, &a }, { &c, &d }, { &d, &c } };
        for (unsigned k = 0; k < 4; k++) {
            int rr = xfer(dir[k].src, dir[k].dst, dir[k].dst->mac, n, sz, &x);
            CHECK(rr == 0, "%s->%s %u x %u bytes: %u arrived, %u bad, %u out of order",
                  dir[k].src->name, dir[k].dst->name, n, sz, x.received, x.bad, x.reordered);
        }
    }
    struct vuf_stats sb;
    vuf_get_stats(b.v, &sb);
    CHECK(sb.rx_bufs > sb.rx_frames,
          "b (512-byte buffers) got multi-buffer frames: %llu buffers for %llu frames",
          (unsigned long long)sb.rx_bufs, (unsigned long long)sb.rx_frames);

    /* sizes from 60 to 1514, one frame at a time so order is exact */
    {
        static uint8_t frame[2048], buf[65536];
        unsigned ok = 0, n = 300;
        for (unsigned i = 0; i < n; i++) {
            unsigned sz = 60 + (i * 97) % (1514 - 60 + 1);
            vuf_frame_fill(frame, sz, d.mac, b.mac, i, 999);
            if (vuf_send(b.v, 0, frame, sz))
                break;
            int len = vuf_recv_wait(d.v, 0, buf, sizeof buf, 2000);
            uint32_t seq, flow;
            if (len == (int)sz && !vuf_frame_check(buf, (size_t)len, &seq, &flow) &&
                seq == i && flow == 999)
                ok++;
            vuf_tx_reclaim(b.v, 0);
        }
        CHECK(ok == n, "b->d %u frames of sizes 60..1514, one at a time: %u intact", n, ok);
    }

    /* no flooding of unicast between learned MACs */
    tport_drain(&c);
    tport_drain(&d);
    CHECK(xfer(&a, &b, b.mac, 200, 64, &x) == 0 && xfer(&b, &a, a.mac, 200, 64, &x) == 0,
          "a<->b unicast again (200 each way)");
    msleep(100);
    unsigned leak_c = count_vuf_frames(&c), leak_d = count_vuf_frames(&d);
    CHECK(leak_c == 0 && leak_d == 0,
          "unicast a<->b not flooded to c or d (c saw %u, d saw %u)", leak_c, leak_d);

    /* an interrupt arrives for a frame */
    {
        static uint8_t frame[64], buf[2048];
        struct vuf_stats s0, s1;
        msleep(50);
        tport_drain(&a);
        vuf_wait_ring(a.v, 0, 0);   /* absorb stale interrupts */
        vuf_get_stats(a.v, &s0);
        vuf_frame_fill(frame, 64, a.mac, b.mac, 0, 4242);
        vuf_send(b.v, 0, frame, 64);
        int w = vuf_wait_ring(a.v, 0, 2000);
        int len = vuf_recv_wait(a.v, 0, buf, sizeof buf, 2000);
        vuf_get_stats(a.v, &s1);
        CHECK(w == 1 && s1.interrupts > s0.interrupts && len == 64,
              "a single frame raises a call interrupt (wait %d, irqs %llu->%llu, len %d)", w,
              (unsigned long long)s0.interrupts, (unsigned long long)s1.interrupts, len);
    }
    /* kick suppression is in use: far fewer kicks than frames */
    {
        struct vuf_stats sa;
        vuf_get_stats(a.v, &sa);
        note("a: %llu frames sent, %llu kicks, %llu suppressed, %llu interrupts",
             (unsigned long long)sa.tx_frames, (unsigned long long)sa.kicks,
             (unsigned long long)sa.kicks_suppressed, (unsigned long long)sa.interrupts);
    }
    CHECK(!vuf_ring_broken(a.v, 0) && !vuf_ring_broken(a.v, 1) && !vuf_ring_broken(b.v, 0) &&
          !vuf_ring_broken(b.v, 1) && !vuf_ring_broken(c.v, 0) && !vuf_ring_broken(d.v, 0),
          "no ring saw a used-ring protocol error");
    CHECK(daemon_alive(), "daemon alive at the end");

    tport_close(&a);
    tport_close(&b);
    tport_close(&c);
    tport_close(&d);
    return test_finish();
}
