/*
 * test_vuf_churn - a frontend connects to port h, negotiates (to varying
 * depths, sometimes with traffic in flight) and disconnects abruptly, 100
 * times.  Afterwards the daemon runs, a<->b still forward, h works for a
 * good frontend, and the daemon's fd count, mappings, RSS and virtual size
 * are about what they were (a leaked fd, guest-memory mapping or buffer per
 * connection would show).
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

static struct tport A, B;

struct snap { long fds, maps, rss_kb, vsz_kb; };

static void snap_take(struct snap *s)
{
    s->fds = proc_fd_count(D.pid);
    s->maps = proc_maps_count(D.pid, NULL);
    s->rss_kb = proc_status_kb(D.pid, "VmRSS");
    s->vsz_kb = proc_status_kb(D.pid, "VmSize");
}

static unsigned refused;   /* connections the daemon turned away */

/* One connection; depth 0..4. */
static int cycle_once(int i, int *was_refused)
{
    *was_refused = 0;
    struct vuf_opts o;
    struct vuf *v;
    tport_default_opts(&o, "h");
    o.scratch_size = 8u << 20;   /* 9 MiB of guest memory: a leaked map shows */
    o.nregions = (i % 5 == 4) ? 2 : 1;
    o.queue_pairs = 1;
    int r = vuf_open(&v, &o);
    if (r) {
        note("cycle %d: open: %s", i, vuf_last_error(NULL));
        return -1;
    }
    int depth = i % 5;
    if (depth >= 1 && (r = vuf_negotiate(v))) {
        /* the daemon may turn a new connection away until it has seen the
         * previous one hang up: retried by the caller */
        if (r == -ECONNRESET && vuf_features(v) == 0 && vuf_device_features(v) == 0) {
            *was_refused = 1;
            vuf_close(v);
            return -1;
        }
        goto out;
    }
    if (depth >= 2 && (r = vuf_set_mem_table(v)))
        goto out;
    if (depth == 2) {
        /* rings half set up: only the RX ring */
        r = vuf_setup_ring(v, 0);
        goto out;
    }
    if (depth >= 3) {
        if ((r = vuf_setup_ring(v, 0)) || (r = vuf_setup_ring(v, 1)) ||
            (r = vuf_enable_ring(v, 0, 1)) || (r = vuf_enable_ring(v, 1, 1)))
            goto out;
        vuf_kick(v, 0);
        vuf_kick(v, 1);
        /* traffic in flight both ways, then vanish without GET_VRING_BASE */
        static uint8_t f[1500];
        uint8_t mac[6] = { 0x02, 0, 0, 0, 0, 0x0e };
        for (int k = 0; k < 32; k++) {
            vuf_frame_fill(f, 1500, MAC_BCAST, mac, (uint32_t)k, 7);
            vuf_tx_enqueue(v, 0, f, 1500, NULL);
        }
        vuf_tx_flush(v, 0);
        vuf_frame_fill(f, 64, MAC_BCAST, A.mac, 0, 8);
        for (int k = 0; k < 8; k++)
            vuf_send(A.v, 0, f, 64);
        vuf_tx_reclaim(A.v, 0);
    }
out:
    if (r)
        note("cycle %d (depth %d): %s (%s)", i, depth, strerror(-r), vuf_last_error(v));
    vuf_close(v);
    return r ? -1 : 0;
}

static int cycle(int i)
{
    for (int tries = 0; tries < 50; tries++) {
        int ref;
        int r = cycle_once(i, &ref);
        if (!ref)
            return r;
        refused++;
        msleep(10);
    }
    note("cycle %d: refused 50 times", i);
    return -1;
}

int main(void)
{
    test_init("churn", 240);
    const char *ports[] = { "a", "b", "h", NULL };
    if (start_with_good_pair(ports, NULL, &A, &B))
        return test_finish();

    /* warm-up: allocator pools, first-use structures */
    for (int i = 0; i < 10; i++)
        cycle(i);
    msleep(300);
    tport_drain(&A);
    tport_drain(&B);
    struct snap s0, s1;
    snap_take(&s0);
    note("before: fds %ld maps %ld rss %ld kB vsz %ld kB", s0.fds, s0.maps, s0.rss_kb, s0.vsz_kb);

    /* 1000 cycles (issue 5); LWV_CHURN_CYCLES to change. */
    const char *env = getenv("LWV_CHURN_CYCLES");
    int cycles = env && atoi(env) > 0 ? atoi(env) : 1000;
    int fails = 0;
    double t0 = t_now();
    for (int i = 0; i < cycles; i++) {
        if (cycle(i))
            fails++;
        if (!daemon_alive())
            break;
        if (i % 10 == 9) {
            tport_drain(&A);
            tport_drain(&B);
        }
    }
    note("%d cycles in %.2f s; %u connections refused by the daemon and retried "
         "(it had not yet seen the previous one hang up)", cycles, t_now() - t0, refused);
    CHECK(fails == 0, "every connection negotiated as far as asked (%d failed)", fails);
    CHECK(daemon_alive(), "daemon alive after %d abrupt disconnects", cycles);
    if (!daemon_alive())
        return test_finish();

    /* let the daemon notice the last hang-up */
    for (int i = 0; i < 30; i++) {
        snap_take(&s1);
        if (s1.fds <= s0.fds && s1.maps <= s0.maps)
            break;
        msleep(100);
    }
    snap_take(&s1);
    note("after:  fds %ld maps %ld rss %ld kB vsz %ld kB", s1.fds, s1.maps, s1.rss_kb, s1.vsz_kb);
    CHECK(s1.fds >= 0 && s1.fds <= s0.fds + 2, "fd count flat: %ld -> %ld", s0.fds, s1.fds);
    CHECK(s1.maps >= 0 && s1.maps <= s0.maps + 4, "mapping count flat: %ld -> %ld", s0.maps,
          s1.maps);
    CHECK(s1.vsz_kb >= 0 && s1.vsz_kb <= s0.vsz_kb + 32 * 1024,
          "virtual size flat (+%ld kB; a leaked 9 MiB guest map per cycle would be GBs)",
          s1.vsz_kb - s0.vsz_kb);
    CHECK(s1.rss_kb >= 0 && s1.rss_kb <= s0.rss_kb + 4 * 1024, "RSS flat: %ld -> %ld kB",
          s0.rss_kb, s1.rss_kb);

    struct xres x1, x2;
    int r1 = xfer(&A, &B, B.mac, 500, 1500, &x1);
    int r2 = xfer(&B, &A, A.mac, 500, 64, &x2);
    CHECK(r1 == 0 && r2 == 0, "a<->b still forward (%u/500, %u/500)", x1.received, x2.received);
    good_frontend_then_idle(&A, NULL, 200, 64);
    tport_close(&A);
    tport_close(&B);
    return test_finish();
}
