/*
 * test_switch.c - the switch layer alone: burst classification (learning,
 * lookup, flooding, anti-spoofing) and delivery of runs of frames to a
 * guest port, including the try-lock rules: a destination being
 * reconfigured drops and counts, one whose RX queue another worker holds
 * is deferred (or dropped when the caller cannot defer).  No daemon, no
 * TX rings: frames are built in local buffers.
 */
#define _GNU_SOURCE
#include <pthread.h>

#include "netguest.h"

static struct guest ga, gb, gc;

/* A frame from 52:54:00:00:00:src to 52:54:00:00:00:dst in buf. */
static void frame_at(struct frame *f, struct iovec *iov, uint8_t *buf, size_t len, uint8_t dst,
                     uint8_t src, uint8_t seed)
{
    static const struct virtio_net_hdr plain;
    make_frame(buf, len, dst, src, seed);
    net_frame_flat(f, iov, buf, len, &plain);
}

static void setup(void)
{
    switch_init(&sw, &ports);
    guest_init(&ga, 0, "A", feats(true));
    guest_init(&gb, 1, "B", feats(true));
    guest_init(&gc, 2, "C", feats(true));
    ports.n = 3;
}

static void teardown(void)
{
    mem_clear(&ga.port.dev.mem);
    mem_clear(&gb.port.dev.mem);
    mem_clear(&gc.port.dev.mem);
}

static void test_classify(void)
{
    setup();
    uint8_t buf[6][64];
    struct frame f[6];
    struct iovec iov[6];
    int dst[6] = { 0 };
    frame_at(&f[0], &iov[0], buf[0], 60, 0xbb, 0xaa, 0);   /* to B, not yet known */
    frame_at(&f[1], &iov[1], buf[1], 60, 0xbb, 0xaa, 1);
    frame_at(&f[2], &iov[2], buf[2], 60, 0xaa, 0xaa, 2);   /* to A's own MAC */
    frame_at(&f[3], &iov[3], buf[3], 60, 0xcc, 0xaa, 3);   /* to C, known */
    frame_at(&f[4], &iov[4], buf[4], 60, 0xbb, 0xa1, 4);   /* another source on A */
    frame_at(&f[5], &iov[5], buf[5], 60, 0xbb, 0xaa, 5);
    memset(buf[1], 0xff, 6);                                /* broadcast */
    memcpy(f[1].eth, buf[1], 6);
    dst[5] = SW_DROP_INVALID;                               /* left alone */
    switch_learn(&sw, (uint8_t[]){ 0x52, 0x54, 0, 0, 0, 0xcc }, 2);
    switch_classify(&sw, &ga.port, f, 6, dst);
    CHECK(dst[0] == SW_FLOOD, "unknown unicast floods (%d)", dst[0]);
    CHECK(dst[1] == SW_FLOOD, "broadcast floods (%d)", dst[1]);
    CHECK(dst[2] == SW_DROP_SELF, "frame to the sender's own MAC dropped (%d)", dst[2]);
    CHECK(dst[3] == 2, "known unicast goes to its port (%d)", dst[3]);
    CHECK(dst[4] == SW_FLOOD, "B still unknown (%d)", dst[4]);
    CHECK(dst[5] == SW_DROP_INVALID, "a frame marked invalid stays so");
    CHECK(switch_lookup(&sw, (uint8_t[]){ 0x52, 0x54, 0, 0, 0, 0xaa }) == 0 &&
          switch_lookup(&sw, (uint8_t[]){ 0x52, 0x54, 0, 0, 0, 0xa1 }) == 0,
          "both sources learned on A");
    /* The lookup cached for a run must not outlive a learn: B sends to
     * 0xdd (unknown), then from 0xdd (learned on B), then to it again. */
    frame_at(&f[0], &iov[0], buf[0], 60, 0xdd, 0xbb, 6);
    frame_at(&f[1], &iov[1], buf[1], 60, 0xdd, 0xdd, 7);
    frame_at(&f[2], &iov[2], buf[2], 60, 0xdd, 0xbb, 8);
    memset(dst, 0, sizeof(dst));
    switch_classify(&sw, &gb.port, f, 3, dst);
    CHECK(dst[0] == SW_FLOOD && dst[1] == SW_DROP_SELF && dst[2] == SW_DROP_SELF,
          "a learn inside a burst is seen by the frames after it (%d %d %d)", dst[0], dst[1],
          dst[2]);
    /* B sending from C's address does not take it: frames to it still go
     * to C (a live entry is never moved by learning). */
    frame_at(&f[0], &iov[0], buf[0], 60, 0xaa, 0xcc, 9);
    frame_at(&f[1], &iov[1], buf[1], 60, 0xcc, 0xbb, 10);
    memset(dst, 0, sizeof(dst));
    switch_classify(&sw, &gb.port, f, 2, dst);
    CHECK(dst[0] == 0 && dst[1] == 2 && switch_lookup(&sw, (uint8_t[]){ 0x52, 0x54, 0, 0, 0, 0xcc }) == 2,
          "a spoofed source does not move a live entry (%d %d)", dst[0], dst[1]);
    /* Anti-spoofing: only the port's own source MAC passes, and a spoofed
     * frame teaches the switch nothing. */
    ga.port.antispoof = true;
    memcpy(ga.port.mac, (uint8_t[]){ 0x52, 0x54, 0, 0, 0, 0xaa }, 6);
    frame_at(&f[0], &iov[0], buf[0], 60, 0xcc, 0xaa, 9);
    frame_at(&f[1], &iov[1], buf[1], 60, 0xcc, 0x66, 10);
    memset(dst, 0, sizeof(dst));
    switch_classify(&sw, &ga.port, f, 2, dst);
    CHECK(dst[0] == 2 && dst[1] == SW_DROP_SPOOFED, "anti-spoofing (%d %d)", dst[0], dst[1]);
    CHECK(switch_lookup(&sw, (uint8_t[]){ 0x52, 0x54, 0, 0, 0, 0x66 }) < 0,
          "a spoofed source is not learned");
    ga.port.antispoof = false;
    teardown();
}

static void test_deliver(void)
{
    setup();
    for (int i = 0; i < 8; i++)
        post_rx(&gb, 2048);
    uint8_t buf[4][128], got[2048];
    struct frame f[4];
    struct iovec iov[4];
    for (int i = 0; i < 4; i++)
        frame_at(&f[i], &iov[i], buf[i], 100, 0xbb, 0xaa, (uint8_t)i);
    struct vqueue *rxq = &gb.port.dev.q[0];

    /* Another worker holds B's RX queue: the run is deferred, or dropped
     * and counted when the caller cannot defer; nothing is written. */
    struct holder h;
    holder_start(&h, &rxq->rx_lock);
    CHECK(switch_deliver(&ctx.sw, &gb.port, 0, f, 4, true) == 0, "busy queue: run deferred");
    CHECK(switch_deliver(&ctx.sw, &gb.port, 0, f, 1, false) == 1 &&
          stat_get(&rxq->st.drops_nodest) == 1, "busy queue, not deferrable: dropped, counted");
    CHECK(rxq->vq.used_idx == 0 && ctx.sw.held == NULL, "nothing written, no lock kept");
    holder_stop(&h);

    /* The control plane holds B: dropped and counted, never waited for. */
    pthread_rwlock_wrlock(&gb.port.dev.lock);
    CHECK(switch_deliver(&ctx.sw, &gb.port, 0, f, 2, true) == 2 &&
          stat_get(&rxq->st.drops_nodest) == 3, "device being reconfigured: 2 dropped, counted");
    pthread_rwlock_unlock(&gb.port.dev.lock);

    /* Free again: the run goes in whole, published at release. */
    CHECK(switch_deliver(&ctx.sw, &gb.port, 0, f, 4, true) == 4, "run delivered");
    CHECK(ctx.sw.held == rxq && rxq->vq.used->idx == 0, "locks held, not yet published");
    CHECK(fwd_flush(&ctx), "flushed");
    CHECK(rxq->vq.used->idx == 4 && ctx.sw.held == NULL, "published once, locks dropped");
    uint16_t seen = 0, nb;
    bool ok = true;
    for (int i = 0; i < 4; i++)
        ok &= read_rx(&gb, &seen, got, sizeof(got), &nb) == 100 && !memcmp(got, buf[i], 100);
    CHECK(ok, "frames intact and in order");

    /* Flooding reaches every port but the source, each in its own run. */
    post_rx(&gc, 2048);
    switch_flood(&ctx.sw, &sw, &ga.port, 0, &f[0]);
    fwd_flush(&ctx);
    CHECK(rxq->vq.used->idx == 5 && gc.port.dev.q[0].vq.used->idx == 1 &&
          ga.port.dev.q[0].vq.used->idx == 0, "flooded to B and C, not back to A");
    teardown();
}

/* A guest that migrated to another port announces itself (gratuitous ARP
 * or RARP): its address moves there at once, although live on the old
 * port; a plain frame or a non-gratuitous ARP would not move it. */
static void arp_at(struct frame *f, struct iovec *iov, uint8_t *buf, uint8_t src, unsigned et,
                   const uint8_t sip[4], const uint8_t tip[4])
{
    static const struct virtio_net_hdr plain;
    memset(buf, 0, 60);
    memset(buf, 0xff, 6);
    memcpy(buf + 6, (uint8_t[]){ 0x52, 0x54, 0, 0, 0, src }, 6);
    buf[12] = (uint8_t)(et >> 8);
    buf[13] = (uint8_t)et;
    memcpy(buf + 28, sip, 4);
    memcpy(buf + 38, tip, 4);
    net_frame_flat(f, iov, buf, 60, &plain);
}

static void test_announce(void)
{
    setup();
    const uint8_t *m = (uint8_t[]){ 0x52, 0x54, 0, 0, 0, 0x77 };
    static const uint8_t ip1[4] = { 10, 0, 0, 7 }, ip2[4] = { 10, 0, 0, 8 };
    uint8_t buf[64];
    struct frame f;
    struct iovec iov;
    int dst = 0;
    switch_learn(&sw, m, 0);
    arp_at(&f, &iov, buf, 0x77, 0x0806, ip1, ip2);
    switch_classify(&sw, &gb.port, &f, 1, &dst);
    CHECK(switch_lookup(&sw, m) == 0, "an ordinary ARP request from B does not move it");
    arp_at(&f, &iov, buf, 0x77, 0x0806, ip1, ip1);
    dst = 0;
    switch_classify(&sw, &gb.port, &f, 1, &dst);
    CHECK(switch_lookup(&sw, m) == 1, "a gratuitous ARP from B moves it to B at once");
    frame_at(&f, &iov, buf, 60, 0xbb, 0x77, 1);
    dst = 0;
    switch_classify(&sw, &ga.port, &f, 1, &dst);
    CHECK(switch_lookup(&sw, m) == 1, "a frame from the old port does not take it back");
    arp_at(&f, &iov, buf, 0x77, 0x8035, ip1, ip2);
    dst = 0;
    switch_classify(&sw, &gc.port, &f, 1, &dst);
    CHECK(switch_lookup(&sw, m) == 2, "a RARP from C moves it to C");
    teardown();
}

int main(void)
{
    test_classify();
    test_announce();
    test_deliver();
    return check_done("test_switch");
}
