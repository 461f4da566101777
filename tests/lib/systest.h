/*
 * systest.h - the harness of the system tests (tests/system): a real
 * lwvhostd in a temp dir, vuf frontends on its ports, and test frames
 * between them.
 *
 * Owns: starting lwvhostd and stopping it, asking its control socket
 * (its ports' counters too), connecting vuf frontends to its ports,
 * moving test frames and waiting for frames at a frontend.
 * Must not: touch daemon code or state other than through its sockets and
 * signals.
 *
 * A system test reports through check.h (a line per check); exit 0 =
 * pass, 1 = fail, 77 = skip.  The daemon is $LWVHOSTD, else
 * $BUILD/lwvhostd, else build/lwvhostd (run from the repository's root);
 * its stderr goes to DIR/daemon.log and is printed ("# ") when a check
 * failed.
 */
#ifndef LWV_TEST_SYSTEST_H
#define LWV_TEST_SYSTEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "check.h"
#include "procfd.h"
#include "vuf.h"

struct daemon_state {
    pid_t pid;
    char dir[128];
    char log[192];
    int exited;       /* reaped */
    int status;
};
extern struct daemon_state D;

double t_now(void);
void msleep(int ms);

/* $LWVHOSTD, else $BUILD/lwvhostd (tests/run.sh exports BUILD), else
 * build/lwvhostd. */
const char *daemon_bin(void);
void daemon_print_log(void);
/* Skips (exit 77) when the daemon binary is missing; arms a timeout; makes
 * the temp dir. */
void test_init(const char *name, unsigned timeout_s);
/* Prints "skip - why" and exits 77 (atexit handlers clean up). */
void test_skip(const char *why) __attribute__((noreturn));
/* DIR/PORT.sock */
void sock_path(char *buf, size_t n, const char *port);
/* 1 if the daemon process exists and has not exited. */
int daemon_alive(void);
/* Starts the daemon.  ports: NULL-terminated specs "NAME[,opt=val...]";
 * each becomes --port NAME,path=DIR/NAME.sock[,opts].  extra: more
 * arguments (NULL-terminated, or NULL).  Waits until every socket exists
 * (client=on ports excepted: there the test listens) and the control
 * socket DIR/ctl.sock too. */
int daemon_start(const char *const *ports, const char *const *extra);
/* SIGTERM, wait up to 5 s; 0 if it exited with status 0. */
int daemon_stop(void);
/* Stops the daemon, checks a clean exit, prints the log on failure,
 * removes the temp dir; returns the test's exit status. */
int test_finish(void);
/* One command line to the control socket at path; the answer
 * (NUL-terminated) in buf.  0, or -1 if the socket cannot be reached or
 * does not answer within 10 s. */
int ctl_at(const char *path, const char *line, char *buf, size_t cap);
/* ctl_at() on the test daemon's own control socket. */
int daemon_ctl(const char *line, char *buf, size_t cap);
/* CPU seconds the daemon used while the test slept ms. */
double daemon_cpu_over(int ms);
/* Field key of port in "stats json" from the control socket at ctl (NULL:
 * the test daemon's) as its JSON text (a string with its quotes) in out;
 * 0, or -1 (out "") when the port or the key is absent. */
int port_stat_text(const char *ctl, const char *port, const char *key, char *out, size_t cap);
/* A numeric field key of port in the test daemon's "stats json" (0 if absent). */
unsigned long long port_stat(const char *port, const char *key);

/* A frontend on one of the daemon's ports. */
struct tport {
    const char *name;
    struct vuf *v;
    uint8_t mac[6];
    unsigned nq;
};

extern const uint8_t MAC_BCAST[6];

void tport_default_opts(struct vuf_opts *o, const char *name);
/* Connects frontend `name` (MAC 02:00:00:00:00:id) with opts (NULL:
 * default). */
int tport_connect(struct tport *t, const char *name, uint8_t id, const struct vuf_opts *opts);
void tport_close(struct tport *t);
/* Receives and discards everything pending; returns the frames dropped. */
unsigned tport_drain(struct tport *t);
/* Receives at t (queue 0) for up to ms; true as soon as match (NULL: none)
 * accepts a frame (it may keep count and return false to see them all). */
bool tport_wait(struct tport *t, int ms, bool (*match)(const uint8_t *f, int len, void *arg),
                void *arg);

struct xres {
    unsigned sent, received, bad, reordered, foreign;
    unsigned per_rxq[VUF_MAX_QP];
    int err;
};

/* Sends n frames of `size` bytes from src (TX queues txq0.. round robin
 * over ntxq) to dst_mac and receives them at dst (all its RX queues), at
 * most 64 in flight.  0 when all n arrived intact and in order per TX
 * queue. */
int xfer_ex(struct tport *src, unsigned txq0, unsigned ntxq, struct tport *dst,
            const uint8_t dst_mac[6], unsigned n, unsigned size, int timeout_ms,
            struct xres *res);
int xfer(struct tport *src, struct tport *dst, const uint8_t dst_mac[6], unsigned n,
         unsigned size, struct xres *res);
/* Both ways, n frames each of size bytes: 0 if all intact and in order. */
int pair_ok(struct tport *a, struct tport *b, unsigned n, unsigned size);
/* A broadcast from each port, seen by every other; 0 if all were. */
int learn_all(struct tport **ports, unsigned np);
/* Starts the daemon, connects good frontends a and b to ports "a" and "b"
 * and has them learn each other; 0 when all that worked. */
int start_with_good_pair(const char *const *ports, const char *const *extra, struct tport *a,
                         struct tport *b);
/* After a hostile case: the daemon still runs and a<->b still forward.
 * -1 when the daemon died, else 0. */
int pair_survives(const char *what, struct tport *a, struct tport *b);
/* The end of a hostile test: a fresh good frontend on port "h" exchanges n
 * frames with a, then the daemon must idle (< 0.2 s of CPU in 1 s). */
void good_frontend_then_idle(struct tport *a, const struct vuf_opts *opts, unsigned n,
                             unsigned size);

#endif
