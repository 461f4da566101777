/*
 * test_vuf_runtime - ports added and removed at run time through the
 * control socket ("port add", "port del"), as a management layer drives a
 * daemon started with no port at all.
 *
 * Checks:
 *  - a daemon with only --ctl starts; ports added later forward at once;
 *  - bad requests (a name or socket another port has, a socket path in use
 *    by another process, a file that is not a socket, a directory that
 *    does not exist, bad options, a MAC another port has, deleting what
 *    does not exist) get an error and change nothing: same configuration,
 *    no socket file created, the other process's socket untouched;
 *  - while a and b exchange frames (counted exactly: every frame arrives,
 *    intact and in order, and the daemon's counters agree), another
 *    thread adds and removes ports over and over, some with a frontend
 *    connected and a third port sending to them as they go: workers are
 *    mid-pass delivering to ports being removed;
 *  - removing a connected port: its frontend sees the connection close,
 *    its socket file and MAC table entries are gone; added again with the
 *    same name, socket and MAC, it forwards again.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "systest.h"

static struct tport A, B, E;

/* Flow ids of the background frames, far from the ones xfer() numbers
 * from 1 up (a and b see them as foreign, flooded while c is absent). */
#define FLOW_CHURN 0x7fff0001u
#define FLOW_E 0x7fff0002u

/* "port add NAME,path=DIR/NAME.sock<opts>" (opts: "" or ",k=v..."). */
static int port_add(const char *name, const char *opts, char *ans, size_t cap)
{
    char line[512], path[256];
    sock_path(path, sizeof path, name);
    snprintf(line, sizeof line, "port add %s,path=%s%s\n", name, path, opts);
    if (daemon_ctl(line, ans, cap) < 0)
        return -1;
    return strncmp(ans, "error:", 6) == 0 ? -1 : 0;
}

static int ctl_ok(const char *line, char *ans, size_t cap)
{
    if (daemon_ctl(line, ans, cap) < 0)
        return -1;
    return strncmp(ans, "error:", 6) == 0 ? -1 : 0;
}

static int exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* ---- bad requests ---------------------------------------------------------- */

static void bad_requests(void)
{
    static char before[8192], after[8192], ans[1024];
    char busy[100], file[256], path[256];
    daemon_ctl("config\n", before, sizeof before);

    /* Another process's listening socket, and a plain file. */
    sock_path(busy, sizeof busy, "busy");
    int ls = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", busy);
    int bound = ls >= 0 && bind(ls, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(ls, 1) == 0;
    CHECK(bound, "a socket of our own at %s", busy);
    snprintf(file, sizeof file, "%s/plain", D.dir);
    FILE *f = fopen(file, "w");
    if (f) {
        fputs("not a socket\n", f);
        fclose(f);
    }

    struct {
        const char *line, *why;
    } cases[] = {
        { "port add a,path=%s/other.sock", "a name another port has" },
        { "port add x,path=%s/a.sock", "the socket of another port" },
        { "port add x,path=%s/busy.sock", "a socket another process serves" },
        { "port add x,path=%s/plain", "a file that is not a socket" },
        { "port add x,path=%s/no/such/dir/x.sock", "a directory that does not exist" },
        { "port add x,path=%s/x.sock,queues=99", "too many queue pairs" },
        { "port add x,path=%s/x.sock,speed=9", "an unknown option" },
        { "port add x,path=%s/x.sock,mac=02:00:00:00:00:01", "the MAC of port a" },
        { "port add bad/name,path=%s/y.sock", "a bad name" },
        { "port del nosuch", "deleting a port that does not exist" },
        { "tap del a", "deleting a vhost-user port as a tap" },
        { "port frob x", "an unknown verb" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char line[512];
        snprintf(line, sizeof line, cases[i].line, D.dir);
        strcat(line, "\n");
        int rc = ctl_ok(line, ans, sizeof ans);
        CHECK(rc < 0 && strlen(ans) > 8, "refused: %s: %.*s", cases[i].why,
              (int)strcspn(ans, "\n"), ans);
    }
    daemon_ctl("config\n", after, sizeof after);
    CHECK(strcmp(before, after) == 0, "the configuration is unchanged after the refusals");
    sock_path(path, sizeof path, "x");
    CHECK(!exists(path), "no socket file left behind for a refused port");
    struct stat st;
    CHECK(stat(busy, &st) == 0 && S_ISSOCK(st.st_mode), "the other process's socket is untouched");
    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK(c >= 0 && connect(c, (struct sockaddr *)&sa, sizeof sa) == 0,
          "and it still reaches its owner");
    if (c >= 0)
        close(c);
    CHECK(stat(file, &st) == 0 && S_ISREG(st.st_mode), "the plain file is untouched");
    if (ls >= 0)
        close(ls);
    unlink(busy);
    unlink(file);
}

/* ---- churn while traffic flows ------------------------------------------------- */

struct churn {
    int cycles;
    int failures;
    int frontends;       /* cycles that connected a frontend */
    int closed_seen;     /* of those, the frontend saw its port go */
    int station;         /* atomic: a port with c's MAC is there (E may send) */
    char first_error[1200];
};

static void *churn_thread(void *arg)
{
    struct churn *c = arg;
    static char ans[1024];
    for (int i = 0; i < c->cycles; i++) {
        char name[16], opts[64], line[64];
        snprintf(name, sizeof name, "c%d", i % 7);
        /* c's MAC is 02:00:00:00:00:cc: port E sends to it all along. */
        snprintf(opts, sizeof opts, "%s", i % 2 ? ",mac=02:00:00:00:00:cc" : "");
        if (port_add(name, opts, ans, sizeof ans) < 0) {
            if (!c->failures++)
                snprintf(c->first_error, sizeof c->first_error, "add %s: %s", name, ans);
            continue;
        }
        struct vuf *v = NULL;
        if (i % 3 == 0) {
            struct vuf_opts o;
            char path[256];
            sock_path(path, sizeof path, name);
            memset(&o, 0, sizeof o);
            o.path = path;
            o.timeout_ms = 3000;
            if (vuf_connect(&v, &o) == 0) {
                c->frontends++;
                /* Be a station: a broadcast from c's MAC, so E's frames
                 * to it are switched to this port. */
                uint8_t f[64], mac[6] = { 2, 0, 0, 0, 0, 0xcc };
                vuf_frame_fill(f, 64, MAC_BCAST, mac, 0, FLOW_CHURN);
                vuf_send(v, 0, f, 64);
                msleep(2);
                __atomic_store_n(&c->station, 1, __ATOMIC_RELEASE);
                msleep(3);
            }
        }
        /* E stops sending once it sees the flag go, so its frames race
         * with the removal but few are flooded to a and b afterwards. */
        __atomic_store_n(&c->station, 0, __ATOMIC_RELEASE);
        snprintf(line, sizeof line, "port del %s\n", name);
        if (ctl_ok(line, ans, sizeof ans) < 0 && !c->failures++)
            snprintf(c->first_error, sizeof c->first_error, "del %s: %s", name, ans);
        if (v) {
            c->closed_seen += vuf_peer_closed(v, 2000) == 1;
            vuf_close(v);
        }
    }
    return NULL;
}

/* Port E sends unicast to c's MAC while a c port is there, until told to
 * stop. */
struct sender {
    int stop;                  /* atomic */
    const int *station;        /* atomic: churn.station */
    unsigned long sent;
};

static void *sender_thread(void *arg)
{
    struct sender *s = arg;
    uint8_t f[128], buf[2048], to[6] = { 2, 0, 0, 0, 0, 0xcc };
    while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
        if (!__atomic_load_n(s->station, __ATOMIC_ACQUIRE)) {
            msleep(1);
            continue;
        }
        vuf_frame_fill(f, sizeof f, to, E.mac, (uint32_t)s->sent, FLOW_E);
        if (vuf_send(E.v, 0, f, sizeof f) == 0)
            s->sent++;
        vuf_tx_reclaim(E.v, 0);
        while (vuf_recv(E.v, 0, buf, sizeof buf) >= 0)
            ;
        /* A few thousand frames a second: those flooded to a and b after
         * c went must not fill the RX rings of the frames counted here. */
        if (s->sent % 8 == 0)
            msleep(1);
    }
    return NULL;
}

static unsigned long long port_counter(const char *port, const char *key)
{
    static char buf[1 << 16];
    char pat[96];
    daemon_ctl("stats json\n", buf, sizeof buf);
    snprintf(pat, sizeof pat, "{\"name\":\"%s\"", port);
    const char *p = strstr(buf, pat);
    snprintf(pat, sizeof pat, "\"%s\":", key);
    p = p ? strstr(p, pat) : NULL;
    return p ? strtoull(p + strlen(pat), NULL, 10) : 0;
}

static void churn_under_traffic(void)
{
    struct churn c = { .cycles = 300 };
    struct sender s = { .station = &c.station };
    const char *env = getenv("LWV_RUNTIME_CYCLES");
    if (env && atoi(env) > 0)
        c.cycles = atoi(env);
    unsigned long long a_tx0 = port_counter("a", "tx_packets");
    unsigned long long b_rx0 = port_counter("b", "rx_packets");
    pthread_t tc, ts;
    pthread_create(&ts, NULL, sender_thread, &s);
    pthread_create(&tc, NULL, churn_thread, &c);
    /* a -> b and back in rounds until the churn is over. */
    unsigned rounds = 0, sent = 0, lost = 0, bad = 0;
    void *done = NULL;
    for (;;) {
        struct xres x1, x2;
        xfer(&A, &B, B.mac, 2000, 200, &x1);
        xfer(&B, &A, A.mac, 500, 64, &x2);
        rounds++;
        sent += x1.sent;
        lost += (x1.sent - x1.received) + (x2.sent - x2.received);
        bad += x1.bad + x1.reordered + x2.bad + x2.reordered;
        if (pthread_tryjoin_np(tc, &done) == 0)
            break;
    }
    __atomic_store_n(&s.stop, 1, __ATOMIC_RELEASE);
    pthread_join(ts, NULL);
    note("%d add/del cycles (%d with a frontend) during %u rounds of a<->b; E sent %lu frames "
         "to ports as they came and went", c.cycles, c.frontends, rounds, s.sent);
    CHECK(c.failures == 0, "every add and del succeeded (%d failed; first: %s)", c.failures,
          c.first_error);
    CHECK(c.frontends > 0 && c.closed_seen == c.frontends,
          "a connected frontend sees its port go (%d of %d)", c.closed_seen, c.frontends);
    CHECK(lost == 0 && bad == 0, "a<->b: nothing lost, damaged or reordered (%u lost, %u bad; "
          "RX ring full: a %llu, b %llu)", lost, bad, port_counter("a", "rx_drops"),
          port_counter("b", "rx_drops"));
    msleep(100);
    unsigned long long a_tx = port_counter("a", "tx_packets") - a_tx0;
    unsigned long long b_rx = port_counter("b", "rx_packets") - b_rx0;
    CHECK(a_tx == sent && b_rx >= sent,
          "the daemon counted %llu frames from a (sent %u) and %llu to b", a_tx, sent, b_rx);
    CHECK(daemon_alive(), "daemon alive");
}

/* ---- removing a connected port ------------------------------------------------- */

static void del_connected(void)
{
    static char ans[8192];
    char path[256];
    sock_path(path, sizeof path, "b");
    CHECK(ctl_ok("port del b\n", ans, sizeof ans) == 0, "port del b: %s", ans);
    CHECK(vuf_peer_closed(B.v, 2000) == 1, "b's frontend sees the connection close");
    CHECK(!exists(path), "b's socket file is gone");
    daemon_ctl("fdb\n", ans, sizeof ans);
    CHECK(!strstr(ans, "02:00:00:00:00:02"), "b's MAC is out of the MAC table");
    daemon_ctl("ports\n", ans, sizeof ans);
    CHECK(!strstr(ans, "\nb "), "b is not listed");
    tport_close(&B);
    CHECK(port_add("b", ",mac=02:00:00:00:00:02", ans, sizeof ans) == 0,
          "b added again with the same socket and MAC: %s", ans);
    CHECK(tport_connect(&B, "b", 2, NULL) == 0, "b's frontend connects again");
    CHECK(pair_ok(&A, &B, 500, 64) == 0, "a<->b forward again");
}

int main(void)
{
    test_init("runtime", 240);
    const char *none[] = { NULL };
    static char ans[4096];
    int ok = daemon_start(none, NULL) == 0;
    CHECK(ok, "a daemon with no port, only a control socket, starts");
    daemon_ctl("ports\n", ans, sizeof ans);
    CHECK(ok && strchr(ans, '\n') == strrchr(ans, '\n'), "it lists no port");
    ok = ok && port_add("a", ",mac=02:00:00:00:00:01", ans, sizeof ans) == 0;
    ok = ok && port_add("b", ",mac=02:00:00:00:00:02", ans, sizeof ans) == 0;
    ok = ok && port_add("e", "", ans, sizeof ans) == 0;
    CHECK(ok, "ports a, b and e added at run time (%s)", ans);
    ok = ok && tport_connect(&A, "a", 1, NULL) == 0 && tport_connect(&B, "b", 2, NULL) == 0 &&
         tport_connect(&E, "e", 5, NULL) == 0;
    CHECK(ok, "frontends connect to them");
    CHECK(ok && pair_ok(&A, &B, 1000, 64) == 0, "a<->b forward at once");
    if (!ok)
        return test_finish();
    bad_requests();
    churn_under_traffic();
    del_connected();
    tport_close(&A);
    tport_close(&B);
    tport_close(&E);
    return test_finish();
}
