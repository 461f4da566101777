/* lwv-rr: a tiny TCP request/response benchmark (like netperf TCP_RR) for
 * lwvhost-lab. Built statically so it runs in the busybox guest as is.
 *
 *   lwv-rr -s [-p PORT]                          server: echo each request
 *   lwv-rr -c HOST [-p PORT] [-l SIZE] [-P CONNS] [-t SECONDS]
 *                                                client: one transaction =
 *                                                SIZE bytes out, SIZE back
 *
 * The client runs CONNS connections, one thread each, with one transaction
 * in flight per connection, for SECONDS, and prints one JSON line:
 *   {"transactions":N,"seconds":S,"tps":T,"mean_us":..,"p50_us":..,
 *    "p90_us":..,"p99_us":..,"max_us":..,"errors":E,"conns":C,"size":L}
 * Latencies go to a log-linear histogram (1 us buckets up to 1 ms, then 64
 * per power of two), so percentiles are within about 2%.
 * Exit status: 0 ok, 1 error (no transaction, or a connection failed).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define MAX_SIZE (1 << 20)
#define MAX_CONNS 64
#define HIST_LIN 1024                   /* 1 us buckets below 1024 us */
#define HIST_SUB 64                     /* buckets per power of two above */
#define HIST_N (HIST_LIN + 54 * HIST_SUB)

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static unsigned hist_index(uint64_t us)
{
    if (us < HIST_LIN)
        return (unsigned)us;
    unsigned e = 63u - (unsigned)__builtin_clzll(us);      /* >= 10 */
    unsigned sub = (unsigned)(us >> (e - 6)) & (HIST_SUB - 1);
    unsigned i = HIST_LIN + (e - 10) * HIST_SUB + sub;
    return i < HIST_N ? i : HIST_N - 1;
}

static double hist_value(unsigned i)        /* middle of bucket i, in us */
{
    if (i < HIST_LIN)
        return i + 0.5;
    unsigned e = (i - HIST_LIN) / HIST_SUB + 10, sub = (i - HIST_LIN) % HIST_SUB;
    double lo = (double)((uint64_t)(HIST_SUB + sub) << (e - 6));
    return lo + (double)(1ull << (e - 6)) / 2;
}

static int full_io(int fd, char *buf, size_t n, int out)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = out ? send(fd, buf + done, n - done, MSG_NOSIGNAL)
                        : recv(fd, buf + done, n - done, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        done += (size_t)r;
    }
    return 0;
}

/* ---- server ---------------------------------------------------------------- */

static void *serve_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    uint32_t hello[2];
    char *buf = NULL;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    /* Hello: magic, request size (network order). */
    if (full_io(fd, (char *)hello, sizeof(hello), 0) == 0 && ntohl(hello[0]) == 0x4c575252u) {
        uint32_t size = ntohl(hello[1]);
        if (size >= 1 && size <= MAX_SIZE && (buf = malloc(size)) != NULL) {
            while (full_io(fd, buf, size, 0) == 0 && full_io(fd, buf, size, 1) == 0)
                ;
        }
    }
    free(buf);
    close(fd);
    return NULL;
}

static int server(int port)
{
    int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    if (ls < 0) {
        perror("lwv-rr: socket");
        return 1;
    }
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(ls, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(ls, 128) < 0) {
        perror("lwv-rr: bind/listen");
        return 1;
    }
    fprintf(stderr, "lwv-rr: listening on port %d\n", port);
    for (;;) {
        int fd = accept(ls, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            perror("lwv-rr: accept");
            return 1;
        }
        pthread_t t;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&at, 64 * 1024);
        if (pthread_create(&t, &at, serve_conn, (void *)(intptr_t)fd) != 0)
            close(fd);
        pthread_attr_destroy(&at);
    }
}

/* ---- client ---------------------------------------------------------------- */

struct conn {
    pthread_t thr;
    struct sockaddr_in addr;
    uint32_t size;
    uint64_t deadline;
    uint64_t n, sum_ns, max_ns;
    int error;
    uint64_t hist[HIST_N];
};

static void *run_conn(void *arg)
{
    struct conn *c = arg;
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    char *buf = calloc(1, c->size);
    uint32_t hello[2] = { htonl(0x4c575252u), htonl(c->size) };
    if (fd < 0 || !buf) {
        c->error = 1;
        goto out;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    /* A stuck transaction (or connect) is an error, not a hang. */
    struct timeval tv = { .tv_sec = 10 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&c->addr, sizeof(c->addr)) < 0) {
        perror("lwv-rr: connect");
        c->error = 1;
        goto out;
    }
    if (full_io(fd, (char *)hello, sizeof(hello), 1) < 0) {
        c->error = 1;
        goto out;
    }
    for (;;) {
        uint64_t t0 = now_ns();
        if (t0 >= c->deadline)
            break;
        if (full_io(fd, buf, c->size, 1) < 0 || full_io(fd, buf, c->size, 0) < 0) {
            c->error = 1;
            break;
        }
        uint64_t d = now_ns() - t0;
        c->n++;
        c->sum_ns += d;
        if (d > c->max_ns)
            c->max_ns = d;
        c->hist[hist_index(d / 1000)]++;
    }
out:
    if (fd >= 0)
        close(fd);
    free(buf);
    return NULL;
}

static double percentile(const uint64_t *h, uint64_t n, double p)
{
    uint64_t want = (uint64_t)(p * (double)n), seen = 0;
    if (want >= n)
        want = n - 1;
    for (unsigned i = 0; i < HIST_N; i++) {
        seen += h[i];
        if (seen > want)
            return hist_value(i);
    }
    return 0;
}

static int client(const char *host, int port, unsigned size, unsigned conns, double secs)
{
    static struct conn cs[MAX_CONNS];
    static uint64_t hist[HIST_N];
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1) {
        fprintf(stderr, "lwv-rr: %s: not an IPv4 address\n", host);
        return 1;
    }
    uint64_t start = now_ns(), deadline = start + (uint64_t)(secs * 1e9);
    for (unsigned i = 0; i < conns; i++) {
        cs[i].addr = a;
        cs[i].size = size;
        cs[i].deadline = deadline;
        if (pthread_create(&cs[i].thr, NULL, run_conn, &cs[i]) != 0) {
            fprintf(stderr, "lwv-rr: pthread_create failed\n");
            return 1;
        }
    }
    uint64_t n = 0, sum = 0, max = 0;
    int errors = 0;
    for (unsigned i = 0; i < conns; i++) {
        pthread_join(cs[i].thr, NULL);
        n += cs[i].n;
        sum += cs[i].sum_ns;
        if (cs[i].max_ns > max)
            max = cs[i].max_ns;
        errors += cs[i].error;
        for (unsigned k = 0; k < HIST_N; k++)
            hist[k] += cs[i].hist[k];
    }
    double el = (double)(now_ns() - start) / 1e9;
    printf("{\"transactions\":%llu,\"seconds\":%.3f,\"tps\":%.1f,\"mean_us\":%.1f,"
           "\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,\"max_us\":%.1f,"
           "\"errors\":%d,\"conns\":%u,\"size\":%u}\n",
           (unsigned long long)n, el, el > 0 ? (double)n / el : 0.0,
           n ? (double)sum / (double)n / 1000 : 0.0, n ? percentile(hist, n, 0.50) : 0.0,
           n ? percentile(hist, n, 0.90) : 0.0, n ? percentile(hist, n, 0.99) : 0.0,
           (double)max / 1000, errors, conns, size);
    fflush(stdout);
    return n > 0 && errors == 0 ? 0 : 1;
}

static void usage(void)
{
    fprintf(stderr, "usage: lwv-rr -s [-p PORT]\n"
                    "       lwv-rr -c HOST [-p PORT] [-l SIZE] [-P CONNS] [-t SECONDS]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    int srv = 0, port = 6201, opt;
    const char *host = NULL;
    long size = 64, conns = 1;
    double secs = 10;
    while ((opt = getopt(argc, argv, "sc:p:l:P:t:h")) != -1) {
        switch (opt) {
        case 's': srv = 1; break;
        case 'c': host = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 'l': size = atol(optarg); break;
        case 'P': conns = atol(optarg); break;
        case 't': secs = atof(optarg); break;
        default: usage();
        }
    }
    if (optind != argc || srv == !!host || port <= 0 || port > 65535 || size < 1 ||
        size > MAX_SIZE || conns < 1 || conns > MAX_CONNS || !(secs > 0))
        usage();
    signal(SIGPIPE, SIG_IGN);
    return srv ? server(port) : client(host, port, (unsigned)size, (unsigned)conns, secs);
}
