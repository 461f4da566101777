/*
 * test_vuf_client - a port in client mode (--port c,...,client=on): the
 * test listens on c.sock and the daemon connects to it.  The daemon must
 * connect even though it started before anyone listened, forward frames
 * between c and the server-mode port a, and reconnect after the frontend
 * drops the connection.
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

static int listen_c(struct tport *c)
{
    struct vuf_opts o;
    tport_default_opts(&o, "c");
    o.server = 1;
    o.timeout_ms = 10000;
    return tport_connect(c, "c", 0x0c, &o);
}

int main(void)
{
    test_init("client", 120);
    const char *ports[] = { "a", "c,client=on", NULL };
    if (daemon_start(ports, NULL)) {
        CHECK(0, "daemon starts");
        return test_finish();
    }
    struct tport A, C;
    int r = tport_connect(&A, "a", 0x0a, NULL);
    CHECK(r == 0, "frontend a connects to the daemon (server-mode port)");
    if (r)
        return test_finish();
    msleep(300);   /* the daemon has already tried c.sock and found nobody */
    double t0 = t_now();
    r = listen_c(&C);
    CHECK(r == 0, "the daemon connects to our c.sock within 10 s (%.1f s) and negotiates",
          t_now() - t0);
    if (r)
        return test_finish();

    for (int round = 0; round < 2; round++) {
        struct tport *ac[] = { &A, &C };
        CHECK(learn_all(ac, 2) == 0, "round %d: broadcasts a<->c", round);
        struct xres x;
        r = xfer(&A, &C, C.mac, 300, 1500, &x);
        CHECK(r == 0, "round %d: a->c %u/300 intact, in order", round, x.received);
        r = xfer(&C, &A, A.mac, 300, 64, &x);
        CHECK(r == 0, "round %d: c->a %u/300 intact, in order", round, x.received);
        if (round == 1)
            break;
        tport_close(&C);   /* abrupt: the daemon must notice and reconnect */
        t0 = t_now();
        r = listen_c(&C);
        CHECK(r == 0, "the daemon reconnects after the frontend went away (%.1f s)",
              t_now() - t0);
        if (r)
            break;
    }
    CHECK(daemon_alive(), "daemon alive at the end");
    tport_close(&C);
    tport_close(&A);
    return test_finish();
}
