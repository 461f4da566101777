/*
 * test_vuf_port_churn - 1000 cycles of "port add", a frontend that
 * connects and maps 9 MiB of guest memory (every third cycle with traffic
 * both ways, every fifth a second queue pair), "port del" while it is
 * connected.  A tap is added and removed every tenth cycle (when the
 * daemon may open /dev/net/tun).  Afterwards the daemon's fds, mappings,
 * RSS and virtual size are what they were after the warm-up, and a<->b
 * still forward: a port leaves nothing behind (socket, eventfds, guest
 * memory, queue lists, MAC entries).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

static int ctl_ok(const char *line)
{
    static char ans[1024];
    if (daemon_ctl(line, ans, sizeof ans) < 0)
        return -1;
    if (strncmp(ans, "error:", 6) == 0) {
        note("%s -> %s", line, ans);
        return -1;
    }
    return 0;
}

static int taps_possible;

/* One cycle: add port h (and every tenth cycle tap lwvch0), connect,
 * maybe send, delete while connected.  0 when everything worked. */
static int cycle(int i)
{
    char line[512], path[256];
    sock_path(path, sizeof path, "h");
    snprintf(line, sizeof line, "port add h,path=%s,mac=02:00:00:00:00:0e%s\n", path,
             i % 5 == 4 ? ",queues=2" : "");
    if (ctl_ok(line) < 0)
        return -1;
    if (taps_possible && i % 10 == 0 && ctl_ok("tap add lwvch0\n") < 0)
        return -1;
    struct vuf_opts o;
    struct vuf *v;
    tport_default_opts(&o, "h");
    o.scratch_size = 8u << 20;   /* 9 MiB of guest memory: a leaked map shows */
    o.queue_pairs = i % 5 == 4 ? 2 : 1;
    int r = vuf_connect(&v, &o);
    if (r) {
        note("cycle %d: connect: %s", i, vuf_last_error(NULL));
        return -1;
    }
    if (i % 3 == 0) {
        static uint8_t f[1500];
        uint8_t mac[6] = { 2, 0, 0, 0, 0, 0x0e };
        for (uint32_t k = 0; k < 16; k++) {
            vuf_frame_fill(f, 600, A.mac, mac, k, 0x7ffe0000u);
            vuf_tx_enqueue(v, 0, f, 600, NULL);
        }
        vuf_tx_flush(v, 0);
        vuf_frame_fill(f, 64, mac, A.mac, 0, 0x7ffe0001u);
        for (int k = 0; k < 8; k++)
            vuf_send(A.v, 0, f, 64);
        vuf_tx_reclaim(A.v, 0);
    }
    r = ctl_ok("port del h\n");
    if (taps_possible && i % 10 == 0 && ctl_ok("tap del lwvch0\n") < 0)
        r = -1;
    if (vuf_peer_closed(v, 2000) != 1) {
        note("cycle %d: the frontend did not see its port go", i);
        r = -1;
    }
    vuf_close(v);
    return r;
}

int main(void)
{
    test_init("port_churn", 300);
    /* Under AddressSanitizer freed memory waits in a quarantine (256 MiB
     * by default) and would read as RSS growth here: keep it small for the
     * daemon.  Nothing else changes for other builds. */
    {
        static char opts[512];
        const char *old = getenv("ASAN_OPTIONS");
        snprintf(opts, sizeof opts, "%s%squarantine_size_mb=1", old ? old : "", old ? ":" : "");
        setenv("ASAN_OPTIONS", opts, 1);
    }
    const char *ports[] = { "a", "b", NULL };
    if (start_with_good_pair(ports, NULL, &A, &B))
        return test_finish();
    taps_possible = access("/dev/net/tun", R_OK | W_OK) == 0 && geteuid() == 0;
    if (!taps_possible)
        note("no taps in this run: /dev/net/tun is not usable here");

    for (int i = 0; i < 10; i++)   /* warm-up: allocator pools, first-use structures */
        cycle(i);
    msleep(200);
    tport_drain(&A);
    tport_drain(&B);
    struct snap s0, s1;
    snap_take(&s0);
    note("before: fds %ld maps %ld rss %ld kB vsz %ld kB", s0.fds, s0.maps, s0.rss_kb, s0.vsz_kb);

    const char *env = getenv("LWV_PORT_CHURN_CYCLES");
    int cycles = env && atoi(env) > 0 ? atoi(env) : 1000;
    int fails = 0;
    double t0 = t_now();
    for (int i = 0; i < cycles && daemon_alive(); i++) {
        if (cycle(i))
            fails++;
        if (i % 10 == 9) {
            tport_drain(&A);
            tport_drain(&B);
        }
    }
    note("%d add/connect/del cycles in %.2f s", cycles, t_now() - t0);
    CHECK(fails == 0, "every cycle added, connected and removed its port (%d failed)", fails);
    CHECK(daemon_alive(), "daemon alive");
    if (!daemon_alive())
        return test_finish();
    msleep(200);
    snap_take(&s1);
    note("after:  fds %ld maps %ld rss %ld kB vsz %ld kB", s1.fds, s1.maps, s1.rss_kb, s1.vsz_kb);
    CHECK(s1.fds >= 0 && s1.fds <= s0.fds, "fd count flat: %ld -> %ld", s0.fds, s1.fds);
    CHECK(s1.maps >= 0 && s1.maps <= s0.maps + 2, "mapping count flat: %ld -> %ld", s0.maps,
          s1.maps);
    CHECK(s1.vsz_kb >= 0 && s1.vsz_kb <= s0.vsz_kb + 16 * 1024,
          "virtual size flat (+%ld kB; a leaked 9 MiB guest map per cycle would be GBs)",
          s1.vsz_kb - s0.vsz_kb);
    CHECK(s1.rss_kb >= 0 && s1.rss_kb <= s0.rss_kb + 4 * 1024, "RSS flat: %ld -> %ld kB",
          s0.rss_kb, s1.rss_kb);
    static char ans[8192];
    daemon_ctl("fdb\n", ans, sizeof ans);
    CHECK(!strstr(ans, "02:00:00:00:00:0e"), "no MAC table entry of h is left");
    char path[256];
    sock_path(path, sizeof path, "h");
    struct stat st;
    CHECK(stat(path, &st) < 0 && errno == ENOENT, "h's socket file is gone");
    CHECK(pair_ok(&A, &B, 500, 64) == 0, "a<->b still forward");
    tport_close(&A);
    tport_close(&B);
    return test_finish();
}
