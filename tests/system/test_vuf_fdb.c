/*
 * test_vuf_fdb.c - the switch's MAC table against a real daemon:
 *  - a configured mac= is a static entry: it survives its frontend going
 *    away, and another port sending from it does not take it;
 *  - a guest sending from thousands of addresses (a CAM-table flood)
 *    learns at most --fdb-max-per-port of them, evicts nobody, and unicast
 *    between the other guests never reaches it;
 *  - learned entries age out after --fdb-age; static ones do not.
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

static struct tport A, B, C;
static char js[1 << 20];

/* Occurrences of needle in haystack. */
static unsigned count_of(const char *hay, const char *needle)
{
    unsigned n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

static unsigned long long json_num(const char *hay, const char *key)
{
    const char *p = strstr(hay, key);
    return p ? strtoull(p + strlen(key), NULL, 10) : ~0ull;
}

/* Frames from src to dst_mac, with source MAC smac (forged or not). */
static void send_from(struct tport *src, const uint8_t smac[6], const uint8_t dst_mac[6],
                      unsigned n, uint32_t flow)
{
    uint8_t frame[128];
    for (unsigned i = 0; i < n; i++) {
        vuf_frame_fill(frame, sizeof frame, dst_mac, smac, i, flow);
        while (vuf_send(src->v, 0, frame, sizeof frame) == -EAGAIN)
            vuf_tx_reclaim(src->v, 0);
    }
    vuf_tx_reclaim(src->v, 0);
}

int main(void)
{
    test_init("fdb", 90);
    const char *ports[] = { "a,mac=02:00:00:00:00:0a", "b", "c", NULL };
    const char *extra[] = { "--fdb-max-per-port", "16", "--fdb-age", "2", NULL };
    if (daemon_start(ports, extra)) {
        CHECK(0, "daemon starts");
        return test_finish();
    }
    CHECK(daemon_ctl("fdb json\n", js, sizeof js) == 0 &&
          strstr(js, "{\"port\":\"a\",\"mac\":\"02:00:00:00:00:0a\",\"static\":true"),
          "a's configured MAC is a static entry before anything connects");

    /* The bug: a's frontend connects and goes away; its MAC must stay. */
    CHECK(tport_connect(&A, "a", 0x0a, NULL) == 0, "a connects");
    tport_close(&A);
    msleep(200);
    CHECK(daemon_ctl("ports json\n", js, sizeof js) == 0 && strstr(js, "02:00:00:00:00:0a"),
          "after a's frontend left, ports still shows its MAC");
    int r = tport_connect(&A, "a", 0x0a, NULL) | tport_connect(&B, "b", 0x0b, NULL) |
            tport_connect(&C, "c", 0x0c, NULL);
    CHECK(r == 0, "a, b and c connect");
    if (r)
        return test_finish();
    struct tport *abc[] = { &A, &B, &C };
    CHECK(learn_all(abc, 3) == 0, "they learn each other");

    /* b sends from a's address: the static entry does not move, and c's
     * unicast to a still reaches a, never b. */
    send_from(&B, A.mac, C.mac, 20, 7001);
    msleep(100);
    tport_drain(&C);
    int got = daemon_ctl("fdb json\n", js, sizeof js);
    unsigned long long refused = json_num(js, "\"not_moved_live\":");
    CHECK(got == 0 && strstr(js, "{\"port\":\"a\",\"mac\":\"02:00:00:00:00:0a\",\"static\":true") &&
          refused >= 1 && refused != ~0ull, "b sending from a's MAC did not move it (refused %llu)",
          refused);
    struct xres x;
    int xr = xfer(&C, &A, A.mac, 50, 100, &x);
    unsigned stray = tport_drain(&B);
    CHECK(xr == 0 && stray == 0, "c->a unicast reaches a (%u/50), b sees none (%u)", x.received,
          stray);

    /* The flood: b sends from 20000 source addresses (more than the table holds). */
    uint8_t smac[6] = { 0x02, 0xbb, 0, 0, 0, 0 };
    uint8_t frame[128];
    for (unsigned i = 0; i < 20000; i++) {
        smac[3] = (uint8_t)(i >> 8);
        smac[4] = (uint8_t)i;
        vuf_frame_fill(frame, sizeof frame, MAC_BCAST, smac, i, 7002);
        while (vuf_send(B.v, 0, frame, sizeof frame) == -EAGAIN) {
            vuf_tx_reclaim(B.v, 0);
            tport_drain(&A);
            tport_drain(&C);
        }
    }
    msleep(200);
    tport_drain(&A);
    tport_drain(&C);
    CHECK(daemon_ctl("fdb json\n", js, sizeof js) == 0, "fdb json");
    unsigned on_b = count_of(js, "{\"port\":\"b\"");
    unsigned long long limited = json_num(js, "\"not_learned_port_limit\":");
    CHECK(on_b == 16, "b holds 16 learned addresses, its limit (%u)", on_b);
    CHECK(limited >= 20000 - 16 && limited != ~0ull, "the rest were refused and counted (%llu)",
          limited);
    CHECK(strstr(js, "\"mac\":\"02:00:00:00:00:0c\"") && strstr(js, "\"mac\":\"02:00:00:00:00:0a\""),
          "c's and a's entries are still there");
    int ok = pair_ok(&A, &C, 200, 300);
    stray = tport_drain(&B);
    CHECK(ok == 0 && stray == 0, "a<->c unicast flows and none of it reaches b (%u did)", stray);

    /* Aging: 2 s without frames from b's addresses; a's static stays. */
    msleep(3500);
    CHECK(daemon_ctl("fdb json\n", js, sizeof js) == 0, "fdb json after aging");
    unsigned left = count_of(js, "{\"port\":\"b\"");
    unsigned long long aged = json_num(js, "\"aged\":");
    CHECK(left == 0 && aged >= 16 && aged != ~0ull, "b's learned addresses aged out (%u left, "
          "%llu aged)", left, aged);
    CHECK(strstr(js, "{\"port\":\"a\",\"mac\":\"02:00:00:00:00:0a\",\"static\":true") != NULL,
          "a's static entry did not age");
    tport_close(&A);
    tport_close(&B);
    tport_close(&C);
    return test_finish();
}
