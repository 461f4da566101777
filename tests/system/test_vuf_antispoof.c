/*
 * test_vuf_antispoof.c - a port with antispoof=on forwards only frames
 * whose source MAC is the port's own; the rest are dropped and counted,
 * and the switch never learns the forged address.  Also: listening sockets
 * get the permissions and group they were configured with.
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

int main(void)
{
    test_init("antispoof", 60);
    /* tport_connect gives port a the MAC 02:00:00:00:00:0a. */
    const char *ports[] = { "a,mac=02:00:00:00:00:0a,antispoof=on", "b,mode=0640,group=0", NULL };
    const char *extra[] = { "--ctl-mode", "0660", NULL };
    if (daemon_start(ports, extra)) {
        CHECK(0, "daemon starts");
        return test_finish();
    }
    /* Socket permissions as configured (and the default 0660). */
    struct stat st;
    char path[256];
    sock_path(path, sizeof path, "b");
    memset(&st, 0, sizeof st);
    int sr = stat(path, &st);
    CHECK(sr == 0 && (st.st_mode & 0777) == 0640 && st.st_gid == 0,
          "b.sock is 0640, group 0 (%o)", (unsigned)(st.st_mode & 0777));
    sock_path(path, sizeof path, "a");
    sr = stat(path, &st);
    CHECK(sr == 0 && (st.st_mode & 0777) == 0660, "a.sock has the default 0660 (%o)",
          (unsigned)(st.st_mode & 0777));
    sock_path(path, sizeof path, "ctl");
    sr = stat(path, &st);
    CHECK(sr == 0 && (st.st_mode & 0777) == 0660, "ctl.sock is 0660 (%o)",
          (unsigned)(st.st_mode & 0777));
    int r = tport_connect(&A, "a", 0x0a, NULL) | tport_connect(&B, "b", 0x0b, NULL);
    CHECK(r == 0, "frontends connect");
    if (r)
        return test_finish();
    struct tport *ab[] = { &A, &B };
    CHECK(learn_all(ab, 2) == 0, "a (its own MAC) and b learn each other");

    /* Forged source addresses: unicast to b and broadcast. */
    static const uint8_t forged[6] = { 0x02, 0, 0, 0, 0, 0x99 };
    uint8_t frame[128], buf[2048];
    for (uint32_t i = 0; i < 50; i++) {
        vuf_frame_fill(frame, sizeof frame, i % 2 ? B.mac : MAC_BCAST, forged, i, 4242);
        while (vuf_send(A.v, 0, frame, sizeof frame) == -EAGAIN)
            vuf_tx_reclaim(A.v, 0);
    }
    msleep(200);
    unsigned leaked = 0;
    while (vuf_recv(B.v, 0, buf, sizeof buf) >= 0)
        leaked++;
    CHECK(leaked == 0, "no frame with a forged source reached b (%u did)", leaked);

    /* The switch must not have learned the forged address (on any port). */
    static char js[1 << 16];
    CHECK(daemon_ctl("ports json\n", js, sizeof js) == 0 && strstr(js, "\"macs\""),
          "ports json");
    CHECK(strstr(js, "02:00:00:00:00:99") == NULL && strstr(js, "02:00:00:00:00:0a") != NULL,
          "the forged MAC was not learned; a's own was");

    CHECK(daemon_ctl("stats json\n", js, sizeof js) == 0, "stats json");
    const char *p = strstr(js, "\"drops_spoofed\":");
    /* a's queue 0 (rx) comes first, then queue 1 (tx) with the count. */
    p = p ? strstr(p + 1, "\"drops_spoofed\":") : NULL;
    unsigned long long spoofed = p ? strtoull(p + 16, NULL, 10) : 0;
    CHECK(spoofed == 50, "50 spoofed frames counted on a's TX queue (%llu)", spoofed);

    CHECK(pair_ok(&A, &B, 100, 500) == 0, "a's own frames still flow both ways");
    tport_close(&A);
    tport_close(&B);
    return test_finish();
}
