/*
 * systest.c - see systest.h.
 */
#define _GNU_SOURCE
#include "systest.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "procfd.h"

double t_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

void msleep(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) && errno == EINTR)
        ;
}

/* ------------------------------------------------------------------ */
/* the daemon                                                          */

struct daemon_state D = { .pid = -1 };

/* $LWVHOSTD, else $BUILD/lwvhostd (tests/run.sh exports BUILD), else
 * build/lwvhostd. */
const char *daemon_bin(void)
{
    static char path[512];
    const char *p = getenv("LWVHOSTD");
    if (p && *p)
        return p;
    const char *b = getenv("BUILD");
    snprintf(path, sizeof path, "%s/lwvhostd", b && *b ? b : "build");
    return path;
}

void daemon_print_log(void)
{
    FILE *f = fopen(D.log, "r");
    if (!f)
        return;
    char line[512];
    long n = 0;
    /* last 80 lines */
    long total = 0;
    while (fgets(line, sizeof line, f))
        total++;
    rewind(f);
    while (fgets(line, sizeof line, f)) {
        if (++n > total - 80)
            printf("# daemon: %s", line);
    }
    fclose(f);
    fflush(stdout);
}

static void on_alarm(int sig)
{
    (void)sig;
    static const char m[] = "FAIL - test timed out (alarm)\n";
    if (write(1, m, sizeof m - 1) < 0) {
        /* nothing to do */
    }
    if (D.pid > 0)
        kill(D.pid, SIGKILL);
    _exit(1);
}

/* Skip (exit 77) when the daemon binary is missing.  Arms a global timeout. */
void test_init(const char *name, unsigned timeout_s)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    if (access(daemon_bin(), X_OK) != 0) {
        printf("skip - %s: %s not built\n", name, daemon_bin());
        exit(77);
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    alarm(timeout_s);
    snprintf(D.dir, sizeof D.dir, "/tmp/lwvt-%s.XXXXXX", name);
    if (!mkdtemp(D.dir)) {
        printf("FAIL - mkdtemp: %s\n", strerror(errno));
        exit(1);
    }
    snprintf(D.log, sizeof D.log, "%s/daemon.log", D.dir);
}

void test_skip(const char *why)
{
    printf("skip - %s\n", why);
    exit(77);
}

void sock_path(char *buf, size_t n, const char *port)
{
    snprintf(buf, n, "%s/%s.sock", D.dir, port);
}

/* 1 if the daemon process exists and has not exited. */
int daemon_alive(void)
{
    if (D.pid <= 0 || D.exited)
        return 0;
    int st;
    pid_t r = waitpid(D.pid, &st, WNOHANG);
    if (r == D.pid) {
        D.exited = 1;
        D.status = st;
        if (WIFSIGNALED(st))
            note("daemon died of signal %d", WTERMSIG(st));
        else
            note("daemon exited with status %d", WEXITSTATUS(st));
        return 0;
    }
    return 1;
}

/*
 * Start the daemon.  ports: NULL-terminated specs "NAME[,opt=val...]"; each
 * becomes --port NAME,path=DIR/NAME.sock[,opts].  extra: NULL-terminated
 * extra arguments (may be NULL).  Waits until every socket exists (except
 * for client=on ports, where the test listens).
 */
int daemon_start(const char *const *ports, const char *const *extra)
{
    char *argv[64];
    int argc = 0;
    static char specs[16][256];
    static char ctl[192];
    unsigned np = 0;

    argv[argc++] = (char *)daemon_bin();
    for (; ports[np] && np < 16; np++) {
        const char *comma = strchr(ports[np], ',');
        size_t nl = comma ? (size_t)(comma - ports[np]) : strlen(ports[np]);
        snprintf(specs[np], sizeof specs[np], "%.*s,path=%s/%.*s.sock%s",
                 (int)nl, ports[np], D.dir, (int)nl, ports[np], comma ? comma : "");
        argv[argc++] = (char *)"--port";
        argv[argc++] = specs[np];
    }
    snprintf(ctl, sizeof ctl, "%s/ctl.sock", D.dir);
    argv[argc++] = (char *)"--ctl";
    argv[argc++] = ctl;
    for (unsigned i = 0; extra && extra[i] && argc < 62; i++)
        argv[argc++] = (char *)extra[i];
    argv[argc] = NULL;

    char cmd[1024] = "";
    for (int i = 0; i < argc; i++) {
        strncat(cmd, argv[i], sizeof cmd - strlen(cmd) - 2);
        strncat(cmd, " ", sizeof cmd - strlen(cmd) - 1);
    }
    note("starting: %s", cmd);

    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        int fd = open(D.log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 2);
            dup2(fd, 1);
            close(fd);
        }
        int nul = open("/dev/null", O_RDONLY);
        if (nul >= 0) {
            dup2(nul, 0);
            close(nul);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    D.pid = pid;
    D.exited = 0;
    double until = t_now() + 10;
    for (;;) {
        unsigned ok = 0;
        for (unsigned i = 0; i < np; i++) {
            char p[256], name[64];
            const char *comma = strchr(ports[i], ',');
            size_t nl = comma ? (size_t)(comma - ports[i]) : strlen(ports[i]);
            snprintf(name, sizeof name, "%.*s", (int)nl, ports[i]);
            sock_path(p, sizeof p, name);
            struct stat st;
            if (strstr(ports[i], "client=on"))
                ok++;   /* the daemon connects to us: nothing to wait for */
            else if (stat(p, &st) == 0 && S_ISSOCK(st.st_mode))
                ok++;
        }
        struct stat cst;
        if (ok == np && stat(ctl, &cst) == 0)
            return 0;
        if (!daemon_alive() || t_now() > until)
            return -1;
        msleep(20);
    }
}

/* SIGTERM, wait up to 5 s; returns 0 if it exited with status 0. */
int daemon_stop(void)
{
    if (D.pid <= 0)
        return -1;
    if (!D.exited) {
        kill(D.pid, SIGTERM);
        double until = t_now() + 5;
        while (t_now() < until) {
            int st;
            if (waitpid(D.pid, &st, WNOHANG) == D.pid) {
                D.exited = 1;
                D.status = st;
                break;
            }
            msleep(10);
        }
        if (!D.exited) {
            kill(D.pid, SIGKILL);
            waitpid(D.pid, &D.status, 0);
            D.exited = 1;
            note("daemon ignored SIGTERM for 5 s, killed");
            return -1;
        }
    }
    return WIFEXITED(D.status) && WEXITSTATUS(D.status) == 0 ? 0 : -1;
}

/* Stop the daemon, check a clean exit, print the log on failure, remove
 * the temp dir, and return the exit code of the test. */
int test_finish(void)
{
    if (D.pid > 0) {
        int was_alive = daemon_alive();
        int r = daemon_stop();
        if (was_alive)
            CHECK(r == 0, "daemon exits cleanly (status 0) on SIGTERM");
    }
    if (check_failed()) {
        daemon_print_log();
        printf("# %u checks failed, %u passed; temp dir kept: %s\n", check_failed(), check_passed(), D.dir);
        return 1;
    }
    DIR *d = opendir(D.dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.')
                continue;
            char p[512];
            snprintf(p, sizeof p, "%s/%s", D.dir, e->d_name);
            unlink(p);
        }
        closedir(d);
        rmdir(D.dir);
    }
    printf("# all %u checks passed\n", check_passed());
    return 0;
}

/* One command line to the daemon's control socket; the answer (NUL-
 * terminated) in buf.  0, or -1 if the socket cannot be reached. */
int ctl_at(const char *path, const char *line, char *buf, size_t cap)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    /* A daemon that stops answering fails the call instead of hanging the test. */
    struct timeval tmo = { .tv_sec = 10 };
    buf[0] = 0;
    if (strlen(path) >= sizeof sa.sun_path)
        return -1;
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tmo, sizeof tmo) < 0 ||
        connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
        write(fd, line, strlen(line)) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    size_t len = 0;
    ssize_t r = 0;
    while (len + 1 < cap && (r = read(fd, buf + len, cap - 1 - len)) > 0)
        len += (size_t)r;
    buf[len] = 0;
    close(fd);
    return r < 0 ? -1 : 0;   /* r < 0: the read timed out or failed */
}

int daemon_ctl(const char *line, char *buf, size_t cap)
{
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    snprintf(path, sizeof path, "%.80s/ctl.sock", D.dir);
    return ctl_at(path, line, buf, cap);
}

int port_stat_text(const char *ctl, const char *port, const char *key, char *out, size_t cap)
{
    static char buf[65536];
    char pat[96];
    out[0] = 0;
    if ((ctl ? ctl_at(ctl, "stats json\n", buf, sizeof buf)
             : daemon_ctl("stats json\n", buf, sizeof buf)) < 0)
        return -1;
    snprintf(pat, sizeof pat, "{\"name\":\"%s\"", port);
    const char *p = strstr(buf, pat);
    const char *end = p ? strchr(p + 1, '{') : NULL;   /* the next object */
    snprintf(pat, sizeof pat, "\"%s\":", key);
    p = p ? strstr(p, pat) : NULL;
    if (!p || (end && p > end))
        return -1;
    p += strlen(pat);
    snprintf(out, cap, "%.*s", (int)strcspn(p, ",}"), p);
    return 0;
}

unsigned long long port_stat(const char *port, const char *key)
{
    char v[32];
    return port_stat_text(NULL, port, key, v, sizeof v) == 0 ? strtoull(v, NULL, 10) : 0;
}

/* ------------------------------------------------------------------ */
/* frontends                                                           */

const uint8_t MAC_BCAST[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

void tport_default_opts(struct vuf_opts *o, const char *name)
{
    static char paths[8][256];
    static unsigned k;
    char *p = paths[k++ % 8];
    sock_path(p, 256, name);
    memset(o, 0, sizeof *o);
    o->path = p;
    o->timeout_ms = 3000;
}

/* Connect frontend `name` (MAC 02:00:00:00:00:id) with opts (NULL: default). */
int tport_connect(struct tport *t, const char *name, uint8_t id, const struct vuf_opts *opts)
{
    struct vuf_opts o;
    if (opts) {
        o = *opts;
    } else {
        tport_default_opts(&o, name);
    }
    char path[256];
    if (!o.path) {
        sock_path(path, sizeof path, name);
        o.path = path;
    }
    memset(t, 0, sizeof *t);
    t->name = name;
    t->mac[0] = 0x02;
    t->mac[5] = id;
    t->nq = o.queue_pairs ? o.queue_pairs : 1;
    int r = vuf_connect(&t->v, &o);
    if (r)
        note("connect %s: %s (%s)", name, strerror(-r), vuf_last_error(NULL));
    return r;
}

void tport_close(struct tport *t)
{
    if (t->v)
        vuf_close(t->v);
    t->v = NULL;
}

/* Receive and discard everything pending; returns frames dropped. */
unsigned tport_drain(struct tport *t)
{
    static uint8_t buf[65536];
    unsigned n = 0;
    for (unsigned q = 0; q < t->nq; q++)
        while (vuf_recv(t->v, q, buf, sizeof buf) >= 0)
            n++;
    for (unsigned q = 0; q < t->nq; q++)
        vuf_tx_reclaim(t->v, q);
    return n;
}

bool tport_wait(struct tport *t, int ms, bool (*match)(const uint8_t *f, int len, void *arg),
                void *arg)
{
    static uint8_t buf[65536];
    double end = t_now() + ms / 1000.0;
    while (t_now() < end) {
        int left = (int)((end - t_now()) * 1000) + 1;
        int len = vuf_recv_wait(t->v, 0, buf, sizeof buf, left);
        if (len >= 0 && match && match(buf, len, arg))
            return true;
    }
    return false;
}

static uint32_t next_flow = 1;

/*
 * Send n frames of `size` bytes from src (on TX queues txq0, txq0+1, ...
 * round-robin over ntxq queues) to dst_mac, and receive them at dst (all
 * its RX queues).  Keeps at most `window` frames in flight.  Frames of other
 * flows are counted as foreign; frames that fail the pattern as bad.
 * Order is checked per TX queue.  Returns 0 when all n arrived intact and
 * in order.
 */
int xfer_ex(struct tport *src, unsigned txq0, unsigned ntxq, struct tport *dst,
                   const uint8_t dst_mac[6], unsigned n, unsigned size, int timeout_ms,
                   struct xres *res)
{
    static uint8_t frame[65536], buf[65536];
    uint32_t flow0 = next_flow;
    uint32_t expect[VUF_MAX_QP] = { 0 };
    unsigned window = 64;
    next_flow += ntxq;
    memset(res, 0, sizeof *res);
    double deadline = t_now() + timeout_ms / 1000.0;

    while (t_now() < deadline && res->received < n) {
        int progress = 0;
        while (res->sent < n && res->sent - res->received < window) {
            unsigned k = res->sent % ntxq;
            vuf_frame_fill(frame, size, dst_mac, src->mac, res->sent / ntxq, flow0 + k);
            int r = vuf_tx_enqueue(src->v, txq0 + k, frame, size, NULL);
            if (r == -EAGAIN)
                break;
            if (r) {
                res->err = r;
                note("send on %s: %s (%s)", src->name, strerror(-r), vuf_last_error(src->v));
                return -1;
            }
            res->sent++;
            progress = 1;
        }
        for (unsigned k = 0; k < ntxq; k++) {
            vuf_tx_flush(src->v, txq0 + k);
            vuf_tx_reclaim(src->v, txq0 + k);
        }
        for (unsigned q = 0; q < dst->nq; q++) {
            for (;;) {
                int len = vuf_recv(dst->v, q, buf, sizeof buf);
                if (len == -EAGAIN)
                    break;
                if (len < 0) {
                    res->err = len;
                    note("recv on %s: %s (%s)", dst->name, strerror(-len),
                         vuf_last_error(dst->v));
                    return -1;
                }
                progress = 1;
                uint32_t seq, flow;
                if (vuf_frame_check(buf, (size_t)len, &seq, &flow)) {
                    /* a frame of ours with the wrong length/pattern is bad;
                     * anything else (e.g. not our ethertype) is foreign */
                    if (len >= (int)VUF_FRAME_MIN && !memcmp(buf + 14, "VUF1", 4) &&
                        !memcmp(buf + 6, src->mac, 6))
                        res->bad++;
                    else
                        res->foreign++;
                    continue;
                }
                if (flow < flow0 || flow >= flow0 + ntxq) {
                    res->foreign++;
                    continue;
                }
                if (memcmp(buf, dst_mac, 6) || memcmp(buf + 6, src->mac, 6)) {
                    res->bad++;
                    continue;
                }
                unsigned k = flow - flow0;
                if (seq != expect[k])
                    res->reordered++;
                expect[k] = seq + 1;
                res->received++;
                res->per_rxq[q]++;
            }
        }
        if (!progress && res->received < n) {
            int left = (int)((deadline - t_now()) * 1000);
            if (left > 20)
                left = 20;
            if (left > 0)
                vuf_wait(dst->v, left);
        }
    }
    for (unsigned k = 0; k < ntxq; k++)
        vuf_tx_reclaim(src->v, txq0 + k);
    return (res->received == n && !res->bad && !res->reordered) ? 0 : -1;
}

int xfer(struct tport *src, struct tport *dst, const uint8_t dst_mac[6],
                unsigned n, unsigned size, struct xres *res)
{
    return xfer_ex(src, 0, 1, dst, dst_mac, n, size, 3000, res);
}

/* Broadcast one frame from each port (so a learning switch knows every
 * MAC); waits until every other port saw each broadcast, up to 3 s.
 * Returns 0 if all broadcasts were seen everywhere. */
int learn_all(struct tport **ports, unsigned np)
{
    int all = 0;
    for (unsigned i = 0; i < np; i++) {
        struct xres r;
        /* n=1 broadcast; every other port must see it */
        for (unsigned j = 0; j < np; j++) {
            if (j == i)
                continue;
            if (xfer_ex(ports[i], 0, 1, ports[j], MAC_BCAST, 1, 64, 3000, &r) != 0) {
                note("broadcast %s -> %s: received %u", ports[i]->name, ports[j]->name,
                     r.received);
                all = -1;
            }
            /* the next j sees a new flow: resend */
        }
    }
    msleep(20);
    for (unsigned i = 0; i < np; i++)
        tport_drain(ports[i]);
    return all;
}

/* Starts the daemon (ports, extra as for daemon_start), connects good
 * frontends a and b to ports "a" and "b" and has them learn each other.
 * 0 when all that worked; each step is a check. */
int start_with_good_pair(const char *const *ports, const char *const *extra,
                                          struct tport *a, struct tport *b)
{
    if (daemon_start(ports, extra)) {
        CHECK(0, "daemon starts");
        return -1;
    }
    int r = tport_connect(a, "a", 0x0a, NULL);
    r |= tport_connect(b, "b", 0x0b, NULL);
    CHECK(r == 0, "good frontends a and b connect");
    if (r)
        return -1;
    struct tport *ab[] = { a, b };
    CHECK(learn_all(ab, 2) == 0, "a and b learn each other");
    return 0;
}

/* After a hostile case: the daemon still runs and a<->b still forward (16
 * frames each way).  -1 when the daemon died (the caller stops), else 0. */
int pair_survives(const char *what, struct tport *a, struct tport *b)
{
    int alive = daemon_alive();
    CHECK(alive, "%s: daemon still runs", what);
    if (!alive)
        return -1;
    struct xres x1, x2;
    int r1 = xfer(a, b, b->mac, 16, 64, &x1);
    int r2 = xfer(b, a, a->mac, 16, 64, &x2);
    CHECK(r1 == 0 && r2 == 0, "%s: %s<->%s still forward (%u/16, %u/16)", what, a->name,
          b->name, x1.received, x2.received);
    return 0;
}

/* CPU seconds the daemon used while the test slept ms. */
double daemon_cpu_over(int ms)
{
    double c0 = proc_cpu_s(D.pid);
    msleep(ms);
    return proc_cpu_s(D.pid) - c0;
}

/* The end of a hostile test: a fresh good frontend on port "h" (opts may be
 * NULL) connects, learns a's MAC and exchanges n frames with a each way
 * (64 bytes h->a, size bytes a->h); then the daemon must idle (< 0.2 s of
 * CPU in 1 s). */
void good_frontend_then_idle(struct tport *a, const struct vuf_opts *opts,
                                              unsigned n, unsigned size)
{
    struct tport h;
    int r = tport_connect(&h, "h", 0x0e, opts);
    CHECK(r == 0, "a good frontend connects to h afterwards");
    if (r == 0) {
        struct tport *ah[] = { a, &h };
        learn_all(ah, 2);
        struct xres x;
        r = xfer(&h, a, a->mac, n, 64, &x);
        CHECK(r == 0, "h->%s afterwards: %u/%u", a->name, x.received, n);
        r = xfer(a, &h, h.mac, n, size, &x);
        CHECK(r == 0, "%s->h afterwards: %u/%u", a->name, x.received, n);
        tport_close(&h);
    }
    double cpu = daemon_cpu_over(1000);
    CHECK(cpu < 0.2, "daemon idle afterwards: %.2f s CPU in 1 s", cpu);
}

/* Both ways, n frames each of size bytes: 0 if all intact and in order. */
int pair_ok(struct tport *a, struct tport *b, unsigned n, unsigned size)
{
    struct xres r1, r2;
    int x = xfer(a, b, b->mac, n, size, &r1);
    int y = xfer(b, a, a->mac, n, size, &r2);
    if (x || y)
        note("%s->%s %u/%u bad %u reord %u; %s->%s %u/%u bad %u reord %u",
             a->name, b->name, r1.received, n, r1.bad, r1.reordered,
             b->name, a->name, r2.received, n, r2.bad, r2.reordered);
    return x || y ? -1 : 0;
}

