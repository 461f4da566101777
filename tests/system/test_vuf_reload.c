/*
 * test_vuf_reload - configuration that survives restarts: --config FILE,
 * "save" (the daemon rewrites FILE) and "config" (what lwvhostctl save FILE
 * writes), SIGHUP (re-read, apply only the difference) and the systemd
 * readiness messages the daemon sends to $NOTIFY_SOCKET.
 *
 * The daemon starts with --config FILE (ports a, b, c) and --port z on the
 * command line; d is added at run time.  Then FILE changes: c goes, e
 * comes, b's policy changes, a stays.  After SIGHUP:
 *  - a's and b's frontends are still connected (their connections were
 *    never touched: same connect count, no EOF), a<->b forward, b runs
 *    under its new policy;
 *  - c is gone (its frontend saw EOF, its socket removed), e listens;
 *  - d (run time) and z (command line) are untouched.
 * A change of a's queues re-creates a (its frontend sees EOF).  A broken
 * FILE changes nothing.  "save" writes FILE with every port but z (the
 * command line gives it again) and without the --ctl the command line
 * gives; the daemon restarted with the same command line has the same
 * ports.  systemd hears READY=1 at start, RELOADING=1 and READY=1 around
 * each reload, STOPPING=1 at the end.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "systest.h"

static struct tport A, B, C;
static char conf[256];
static int notify_fd = -1;

static void write_conf(const char *text)
{
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s.new", conf);
    FILE *f = fopen(tmp, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
    rename(tmp, conf);
}

/* The config text for ports named in specs ("NAME[,opts]"), with paths in
 * the test's directory. */
static const char *conf_text(const char *const *specs)
{
    static char text[4096];
    size_t n = (size_t)snprintf(text, sizeof text, "# test config\nfdb-age 120\n");
    for (unsigned i = 0; specs[i]; i++) {
        const char *comma = strchr(specs[i], ',');
        int nl = comma ? (int)(comma - specs[i]) : (int)strlen(specs[i]);
        n += (size_t)snprintf(text + n, sizeof text - n, "port %.*s,path=%s/%.*s.sock%s\n", nl,
                              specs[i], D.dir, nl, specs[i], comma ? comma : "");
    }
    return text;
}

static unsigned long long port_num(const char *port, const char *key)
{
    static char buf[1 << 16];
    char pat[96];
    daemon_ctl("ports json\n", buf, sizeof buf);
    snprintf(pat, sizeof pat, "{\"name\":\"%s\"", port);
    const char *p = strstr(buf, pat);
    snprintf(pat, sizeof pat, "\"%s\":", key);
    p = p ? strstr(p, pat) : NULL;
    return p ? strtoull(p + strlen(pat), NULL, 10) : 0;
}

static int has_port(const char *name)
{
    static char buf[1 << 16];
    char pat[64];
    daemon_ctl("ports json\n", buf, sizeof buf);
    snprintf(pat, sizeof pat, "{\"name\":\"%s\"", name);
    return strstr(buf, pat) != NULL;
}

static int sock_exists(const char *name)
{
    char p[256];
    struct stat st;
    sock_path(p, sizeof p, name);
    return stat(p, &st) == 0 && S_ISSOCK(st.st_mode);
}

/* The next systemd message the daemon sent, waiting up to ms; "" if none. */
static const char *notify_next(int ms)
{
    static char msg[512];
    msg[0] = 0;
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
    setsockopt(notify_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ssize_t n = recv(notify_fd, msg, sizeof msg - 1, 0);
    msg[n > 0 ? n : 0] = 0;
    return msg;
}

/* SIGHUP, then the daemon's READY=1 after its RELOADING=1. */
static int reload(void)
{
    kill(D.pid, SIGHUP);
    const char *m = notify_next(5000);
    int reloading = strstr(m, "RELOADING=1") != NULL;
    m = notify_next(5000);
    return reloading && strstr(m, "READY=1") ? 0 : -1;
}

static void open_notify(void)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof sa.sun_path, "%.90s/notify", D.dir);
    notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (notify_fd < 0 || bind(notify_fd, (struct sockaddr *)&sa, sizeof sa) < 0)
        note("notify socket: %s", strerror(errno));
    setenv("NOTIFY_SOCKET", sa.sun_path, 1);
}

int main(void)
{
    test_init("reload", 120);
    open_notify();
    snprintf(conf, sizeof conf, "%s/lwvhostd.conf", D.dir);
    const char *first[] = { "a,mac=02:00:00:00:00:01", "b,mac=02:00:00:00:00:02", "c", NULL };
    write_conf(conf_text(first));
    const char *cmdline[] = { "z", NULL };
    const char *extra[] = { "--config", conf, NULL };
    int ok = daemon_start(cmdline, extra) == 0;
    CHECK(ok, "daemon starts with --config and a --port on the command line");
    const char *m = notify_next(5000);
    CHECK(strstr(m, "READY=1") && strstr(m, "STATUS=4 ports"),
          "systemd hears READY=1 once the ports are up: '%s'", m);
    ok = ok && sock_exists("a") && sock_exists("b") && sock_exists("c") && sock_exists("z");
    CHECK(ok, "ports from the file and the command line listen");
    ok = ok && tport_connect(&A, "a", 1, NULL) == 0 && tport_connect(&B, "b", 2, NULL) == 0 &&
         tport_connect(&C, "c", 3, NULL) == 0;
    CHECK(ok, "frontends connect to a, b and c");
    CHECK(ok && pair_ok(&A, &B, 300, 64) == 0, "a<->b forward");
    static char ans[8192];
    char line[512], path[256];
    sock_path(path, sizeof path, "d");
    snprintf(line, sizeof line, "port add d,path=%s\n", path);
    daemon_ctl(line, ans, sizeof ans);
    CHECK(sock_exists("d"), "d added at run time: %s", ans);
    if (!ok)
        return test_finish();

    /* The file changes: c goes, e comes, b's policy changes, a stays. */
    unsigned long long a_conn = port_num("a", "connects"), b_conn = port_num("b", "connects");
    const char *second[] = { "a,mac=02:00:00:00:00:01", "b,mac=02:00:00:00:00:02,policy=poll", "e",
                             NULL };
    write_conf(conf_text(second));
    CHECK(reload() == 0, "SIGHUP: systemd hears RELOADING=1, then READY=1");
    CHECK(vuf_peer_closed(A.v, 0) == 0 && vuf_peer_closed(B.v, 0) == 0 &&
              port_num("a", "connects") == a_conn && port_num("b", "connects") == b_conn,
          "a and b stay connected, untouched (connects %llu/%llu)", port_num("a", "connects"),
          port_num("b", "connects"));
    CHECK(pair_ok(&A, &B, 300, 64) == 0, "a<->b forward right after the reload");
    daemon_ctl("policy\n", ans, sizeof ans);
    CHECK(strstr(ans, "\nb ") && strstr(strstr(ans, "\nb "), "poll"),
          "b runs under its new policy: %s", ans);
    CHECK(!has_port("c") && !sock_exists("c") && vuf_peer_closed(C.v, 2000) == 1,
          "c, gone from the file, is removed: socket gone, its frontend saw EOF");
    CHECK(has_port("e") && sock_exists("e"), "e, new in the file, listens");
    CHECK(has_port("d") && sock_exists("d"), "d, added at run time, stays");
    CHECK(has_port("z") && sock_exists("z"), "z, from the command line, stays");
    tport_close(&C);

    /* A change that needs the port re-created. */
    const char *third[] = { "a,mac=02:00:00:00:00:01,queues=2",
                            "b,mac=02:00:00:00:00:02,policy=poll", "e", NULL };
    write_conf(conf_text(third));
    CHECK(reload() == 0, "second reload");
    CHECK(vuf_peer_closed(A.v, 2000) == 1 && port_num("a", "max_queue_pairs") == 2,
          "a with queues=2 is re-created: its frontend saw EOF");
    CHECK(vuf_peer_closed(B.v, 0) == 0, "b is still untouched");
    tport_close(&A);
    CHECK(tport_connect(&A, "a", 1, NULL) == 0 && pair_ok(&A, &B, 300, 64) == 0,
          "a's frontend reconnects and forwards");

    /* A broken file changes nothing. */
    daemon_ctl("config\n", ans, sizeof ans);
    static char before[8192];
    snprintf(before, sizeof before, "%s", ans);
    write_conf("port broken-line-without-path\nworkers 0\n");
    CHECK(reload() == 0, "a broken file: the daemon still says READY=1");
    daemon_ctl("config\n", ans, sizeof ans);
    CHECK(strcmp(before, ans) == 0 && daemon_alive(), "a broken file changes nothing");

    /* save: the daemon rewrites the file. */
    CHECK(daemon_ctl("save\n", ans, sizeof ans) == 0 && strstr(ans, "saved to"), "save: %s",
          ans);
    FILE *f = fopen(conf, "r");
    static char saved[8192];
    size_t n = f ? fread(saved, 1, sizeof saved - 1, f) : 0;
    saved[n] = 0;
    if (f)
        fclose(f);
    CHECK(strstr(saved, "port a,") && strstr(saved, "queues=2") && strstr(saved, "port b,") &&
              strstr(saved, "policy=poll") && strstr(saved, "port d,") &&
              strstr(saved, "port e,") && strstr(saved, "fdb-age 120"),
          "the saved file has a, b (with its policy), d, e and the file's options");
    CHECK(!strstr(saved, "port z,") && !strstr(saved, "\nctl "),
          "but not z or ctl, which the command line gives");
    daemon_ctl("config\n", ans, sizeof ans);
    CHECK(strstr(ans, "port z,") && strstr(ans, "\nctl "),
          "\"config\" (lwvhostctl save FILE) has everything, z and ctl included");

    tport_close(&A);
    tport_close(&B);
    int stopped = daemon_stop() == 0;
    m = notify_next(2000);
    CHECK(stopped && strstr(m, "STOPPING=1"), "systemd hears STOPPING=1: '%s'", m);
    while (notify_next(10)[0])
        ;
    /* The same command line again: the same ports. */
    ok = daemon_start(cmdline, extra) == 0;
    m = notify_next(5000);
    CHECK(ok && strstr(m, "READY=1"), "restarted with the same command line");
    CHECK(has_port("a") && has_port("b") && has_port("d") && has_port("e") && has_port("z") &&
              !has_port("c") && port_num("a", "max_queue_pairs") == 2,
          "it has the saved ports: a (2 queue pairs), b, d, e, and z");
    return test_finish();
}
