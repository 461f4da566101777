/*
 * test_vuf_policy.c - notification policies against the real daemon, with
 * two userspace frontends: a paced sender a and a receiver b.
 *   - every policy delivers every frame and the daemon's counters agree
 *     with what the frontends counted;
 *   - interval takes fewer guest kicks per frame than notify;
 *   - an idle port costs ~no CPU under interval and adaptive once the idle
 *     period has passed, while poll keeps a core busy;
 *   - switching policies under load loses and reorders nothing.
 * CPU thresholds here are coarse sanity bounds (idle vs. spinning), not
 * performance targets; those live in lwvhost-bench.
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


static struct tport a, b;

/* A number after "key": inside the JSON object of port `port`. */
static unsigned long long port_num(const char *json, const char *port, const char *key)
{
    char pat[96];
    snprintf(pat, sizeof pat, "{\"name\":\"%s\"", port);
    const char *p = strstr(json, pat);
    if (!p)
        return 0;
    snprintf(pat, sizeof pat, "\"%s\":", key);
    p = strstr(p, pat);
    return p ? strtoull(p + strlen(pat), NULL, 10) : 0;
}

/* A number after "key": in the first worker's JSON object. */
static unsigned long long worker0_num(const char *key)
{
    static char buf[1 << 16];
    daemon_ctl("stats json\n", buf, sizeof buf);
    const char *p = strstr(buf, "\"workers\":[");
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    p = p ? strstr(p, pat) : NULL;
    return p ? strtoull(p + strlen(pat), NULL, 10) : 0;
}

struct counters { unsigned long long a_tx, b_rx, a_kicks, calls; };

static void read_counters(struct counters *c)
{
    static char buf[1 << 16];
    daemon_ctl("stats json\n", buf, sizeof buf);
    c->a_tx = port_num(buf, "a", "tx_packets");
    c->b_rx = port_num(buf, "b", "rx_packets");
    c->a_kicks = port_num(buf, "a", "kicks");
    c->calls = port_num(buf, "a", "calls") + port_num(buf, "b", "calls");
}

static void set_policy(const char *mode)
{
    char line[64], buf[256];
    snprintf(line, sizeof line, "policy all %s\n", mode);
    daemon_ctl(line, buf, sizeof buf);
    CHECK(strstr(buf, "set to") != NULL, "policy all %s: %s", mode, buf);
}

/* Sends n frames a->b paced at rate frames/s (0: as fast as the ring
 * allows), receiving on b as they come; returns frames received intact
 * and in order. */
static unsigned paced(unsigned n, double rate, uint32_t flow, const char *switch_between)
{
    static uint8_t frame[64], buf[2048];
    unsigned sent = 0, got = 0, bad = 0;
    uint32_t expect = 0;
    double t0 = t_now(), next = t0, deadline = t0 + 20;
    const char *modes[] = { "notify", "interval:50", "adaptive", "poll", "interval:200" };
    unsigned m = 0;
    double next_switch = t0 + 0.02;
    while (got < n && t_now() < deadline) {
        double now = t_now();
        /* At most half of b's RX ring in flight: if this process is
         * descheduled, what a holds still fits into b's buffers. */
        if (sent < n && sent - got < 128 && (rate <= 0 || now >= next)) {
            vuf_frame_fill(frame, sizeof frame, b.mac, a.mac, sent, flow);
            int r = vuf_send(a.v, 0, frame, sizeof frame);
            if (r == 0) {
                sent++;
                next += rate > 0 ? 1.0 / rate : 0;
            } else if (r != -EAGAIN) {
                note("send: %s", strerror(-r));
                break;
            }
        }
        vuf_tx_reclaim(a.v, 0);
        int len;
        while ((len = vuf_recv(b.v, 0, buf, sizeof buf)) >= 0) {
            uint32_t seq, fl;
            if (vuf_frame_check(buf, (size_t)len, &seq, &fl) == 0 && fl == flow && seq == expect) {
                expect++;
                got++;
            } else {
                bad++;
            }
        }
        if (switch_between && now >= next_switch) {
            char line[64], reply[256];
            snprintf(line, sizeof line, "policy all %s\n", modes[m++ % 5]);
            daemon_ctl(line, reply, sizeof reply);
            next_switch = now + 0.02;
        }
    }
    if (bad) {
        static char st[1 << 16];
        note("%u unexpected or out-of-order frames (expected seq %u)", bad, expect);
        daemon_ctl("stats\n", st, sizeof st);
        note("%s", st);
    }
    return got;
}

static void run_policy(const char *mode, double rate, unsigned n, double *kicks_per_frame)
{
    static uint32_t flow = 100;
    struct counters c0, c1;
    set_policy(mode);
    msleep(30);
    read_counters(&c0);
    unsigned got = paced(n, rate, ++flow, NULL);
    msleep(50);
    read_counters(&c1);
    CHECK(got == n, "%s at %.0f frames/s: %u/%u frames arrived intact and in order", mode, rate,
          got, n);
    CHECK(c1.a_tx - c0.a_tx == n && c1.b_rx - c0.b_rx == n,
          "%s: daemon counted %llu from a and %llu to b (frontends: %u)", mode,
          c1.a_tx - c0.a_tx, c1.b_rx - c0.b_rx, n);
    *kicks_per_frame = (double)(c1.a_kicks - c0.a_kicks) / n;
    note("%s: %.3f kicks/frame, %.3f calls/frame", mode, *kicks_per_frame,
         (double)(c1.calls - c0.calls) / n);
}

/* Daemon CPU seconds over `secs` of idleness. */
static double idle_cpu(double secs)
{
    double c0 = proc_cpu_s(D.pid), t0 = t_now();
    msleep((int)(secs * 1000));
    return (proc_cpu_s(D.pid) - c0) / (t_now() - t0);
}

int main(void)
{
    test_init("policy", 120);
    const char *ports[] = { "a", "b", NULL };
    const char *extra[] = { "--idle-us", "1000", NULL };
    int ok = daemon_start(ports, extra) == 0;
    CHECK(ok, "daemon starts");
    ok = ok && tport_connect(&a, "a", 1, NULL) == 0 && tport_connect(&b, "b", 2, NULL) == 0;
    CHECK(ok, "frontends connect");
    struct tport *all[] = { &a, &b };
    ok = ok && learn_all(all, 2) == 0;
    CHECK(ok, "MACs learned");
    if (!ok) {
        tport_close(&a);
        tport_close(&b);
        return test_finish();   /* stops the daemon */
    }

    double k_notify, k_interval, k_adaptive, k_poll;
    run_policy("notify", 20000, 10000, &k_notify);
    run_policy("interval:100", 20000, 10000, &k_interval);
    run_policy("adaptive", 20000, 10000, &k_adaptive);
    run_policy("poll", 20000, 10000, &k_poll);
    CHECK(k_interval < k_notify / 2, "interval takes fewer kicks per frame than notify "
          "(%.3f vs %.3f)", k_interval, k_notify);
    CHECK(k_poll < 0.05, "poll takes (almost) no kicks: %.3f per frame", k_poll);

    /* Idle: after traffic stops, interval and adaptive fall back to kicks
     * and sleep; poll spins. */
    set_policy("interval:50");
    unsigned got = paced(2000, 20000, 900, NULL);
    CHECK(got == 2000, "interval:50 at 20 k frames/s: %u/2000 intact and in order", got);
    msleep(100);
    double idle_interval = idle_cpu(0.5);
    set_policy("adaptive");
    got = paced(20000, 200000, 901, NULL);
    CHECK(got == 20000, "adaptive at 200 k frames/s: %u/20000 intact and in order", got);
    msleep(300);
    double idle_adaptive = idle_cpu(0.5);
    set_policy("poll");
    msleep(50);
    /* Poll never sleeps, idle or not.  Said with the worker's own counters,
     * not its CPU share: on a loaded machine a spinning thread may get
     * less than half a core, but it still never sleeps. */
    unsigned long long sleep0 = worker0_num("sleep_ns"), passes0 = worker0_num("passes");
    double t0 = t_now();
    msleep(500);
    double slept = (double)(worker0_num("sleep_ns") - sleep0) / 1e9 / (t_now() - t0);
    unsigned long long passes = worker0_num("passes") - passes0;
    note("idle CPU: interval %.1f%%, adaptive %.1f%%; idle poll: slept %.1f%% of the time, "
         "%llu passes", 100 * idle_interval, 100 * idle_adaptive, 100 * slept, passes);
    CHECK(idle_interval < 0.05, "idle under interval: %.1f%% of a core", 100 * idle_interval);
    CHECK(idle_adaptive < 0.05, "idle under adaptive: %.1f%% of a core", 100 * idle_adaptive);
    CHECK(slept < 0.05 && passes > 1000,
          "idle under poll still spins: slept %.1f%% of the time, %llu passes in 0.5 s",
          100 * slept, passes);

    /* Switch policies every 20 ms while frames flow: nothing lost or reordered. */
    unsigned n = 100000;
    got = paced(n, 0, 902, "switch");
    CHECK(got == n, "policy switches under load: %u/%u frames intact and in order", got, n);
    set_policy("notify");
    CHECK(pair_ok(&a, &b, 100, 1000) == 0, "forwarding normal after the switches");

    tport_close(&a);
    tport_close(&b);
    return test_finish();
}
