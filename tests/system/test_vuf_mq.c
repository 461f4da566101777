/*
 * test_vuf_mq - multiqueue: ports with queues=2, frontends with 2 queue
 * pairs.  Frames sent on both TX queues must all arrive intact, in order
 * per TX queue, and both RX queues of the receiver must carry traffic.
 * A frontend that sets up only 1 of the 2 pairs (port c) must still get
 * everything on its one RX queue.  Then the most a port may have: two
 * ports of 16 queue pairs, every TX queue to every RX queue.
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

int main(void)
{
    test_init("mq", 120);
    const char *ports[] = { "a,queues=2", "b,queues=2", "c,queues=2", NULL };
    const char *extra[] = { "--workers", "2", NULL };
    if (daemon_start(ports, extra)) {
        CHECK(0, "daemon starts with three queues=2 ports");
        return test_finish();
    }
    CHECK(1, "daemon starts with three queues=2 ports");

    struct tport a, b, c;
    struct vuf_opts o;
    int r;
    tport_default_opts(&o, "a");
    o.queue_pairs = 2;
    r = tport_connect(&a, "a", 0x0a, &o);
    CHECK(r == 0, "frontend a connects with 2 queue pairs");
    if (r)
        return test_finish();
    note("a: GET_QUEUE_NUM %llu, protocol 0x%llx",
         (unsigned long long)vuf_backend_queue_num(a.v), (unsigned long long)vuf_protocol(a.v));
    CHECK(vuf_has_protocol(a.v, VHOST_USER_PROTOCOL_F_MQ), "PROTOCOL_F_MQ negotiated");
    CHECK(vuf_backend_queue_num(a.v) >= 2, "GET_QUEUE_NUM reports >= 2 (%llu)",
          (unsigned long long)vuf_backend_queue_num(a.v));
    tport_default_opts(&o, "b");
    o.queue_pairs = 2;
    o.tx_mode = VUF_TX_INDIRECT;
    r = tport_connect(&b, "b", 0x0b, &o);
    CHECK(r == 0, "frontend b connects with 2 queue pairs");
    tport_default_opts(&o, "c");
    o.queue_pairs = 1;
    r |= tport_connect(&c, "c", 0x0c, &o);
    CHECK(r == 0, "frontend c connects with 1 of 2 queue pairs");
    if (r)
        return test_finish();

    struct tport *all[] = { &a, &b, &c };
    CHECK(learn_all(all, 3) == 0, "broadcasts from each port reach the others");

    struct xres x;
    unsigned sizes[] = { 64, 1500 };
    for (unsigned s = 0; s < 2; s++) {
        unsigned sz = sizes[s];
        r = xfer_ex(&a, 0, 2, &b, b.mac, 1000, sz, 5000, &x);
        CHECK(r == 0, "a->b %u-byte frames over TX queues 0+1: %u/1000 arrived, %u bad, "
              "%u out of order", sz, x.received, x.bad, x.reordered);
        CHECK(x.per_rxq[0] > 0 && x.per_rxq[1] > 0,
              "a->b: both RX queues of b carried traffic (q0 %u, q1 %u)", x.per_rxq[0],
              x.per_rxq[1]);
        r = xfer_ex(&b, 0, 2, &a, a.mac, 1000, sz, 5000, &x);
        CHECK(r == 0, "b->a %u-byte frames over TX queues 0+1: %u/1000 arrived, %u bad, "
              "%u out of order", sz, x.received, x.bad, x.reordered);
        CHECK(x.per_rxq[0] > 0 && x.per_rxq[1] > 0,
              "b->a: both RX queues of a carried traffic (q0 %u, q1 %u)", x.per_rxq[0],
              x.per_rxq[1]);
    }
    /* each TX queue alone */
    for (unsigned q = 0; q < 2; q++) {
        r = xfer_ex(&a, q, 1, &b, b.mac, 300, 64, 5000, &x);
        CHECK(r == 0, "a->b on TX queue %u only: %u/300 arrived (rxq0 %u, rxq1 %u)", q,
              x.received, x.per_rxq[0], x.per_rxq[1]);
    }
    r = xfer_ex(&a, 0, 2, &c, c.mac, 600, 64, 5000, &x);
    CHECK(r == 0, "a->c (c has only pair 0 set up): %u/600 arrived on c's one RX queue",
          x.received);
    r = xfer_ex(&c, 0, 1, &a, a.mac, 600, 64, 5000, &x);
    CHECK(r == 0, "c->a: %u/600 arrived", x.received);
    for (int i = 0; i < 50 && (vuf_tx_inflight(a.v, 0) || vuf_tx_inflight(a.v, 1)); i++) {
        vuf_tx_reclaim(a.v, 0);
        vuf_tx_reclaim(a.v, 1);
        msleep(10);
    }
    CHECK(vuf_tx_inflight(a.v, 0) == 0 && vuf_tx_inflight(a.v, 1) == 0,
          "all TX buffers of a reclaimed on both queues");
    CHECK(daemon_alive(), "daemon alive at the end");
    tport_close(&a);
    tport_close(&b);
    tport_close(&c);
    CHECK(daemon_stop() == 0, "daemon stops");

    /* 16 queue pairs, the most lwvhostd serves. */
    const char *ports16[] = { "d,queues=16", "e,queues=16", NULL };
    if (daemon_start(ports16, extra)) {
        CHECK(0, "daemon starts with two queues=16 ports");
        return test_finish();
    }
    struct tport d, e;
    tport_default_opts(&o, "d");
    o.queue_pairs = 16;
    r = tport_connect(&d, "d", 0x0d, &o);
    tport_default_opts(&o, "e");
    o.queue_pairs = 16;
    r |= tport_connect(&e, "e", 0x0e, &o);
    CHECK(r == 0, "two frontends connect with 16 queue pairs each");
    if (r)
        return test_finish();
    struct tport *de[] = { &d, &e };
    CHECK(learn_all(de, 2) == 0, "d and e learn each other");
    r = xfer_ex(&d, 0, 16, &e, e.mac, 3200, 64, 10000, &x);
    unsigned used = 0;
    for (unsigned q = 0; q < 16; q++)
        used += x.per_rxq[q] > 0;
    CHECK(r == 0 && used == 16, "d->e over all 16 TX queues: %u/3200 in order, %u of 16 RX "
          "queues of e used", x.received, used);
    r = xfer_ex(&e, 0, 16, &d, d.mac, 3200, 1500, 10000, &x);
    CHECK(r == 0, "e->d 1500-byte frames over 16 queues: %u/3200", x.received);
    tport_close(&d);
    tport_close(&e);
    return test_finish();
}
