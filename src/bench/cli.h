/*
 * cli.h - command-line pieces shared by `run` and `sweep` (main.c).
 */
#ifndef LWV_BENCH_CLI_H
#define LWV_BENCH_CLI_H

#include <getopt.h>
#include <stdio.h>

#include "bench.h"

enum {
    OPT_WORKLOAD = 256, OPT_TOPOLOGY, OPT_BACKEND, OPT_WARMUP, OPT_WINDOW, OPT_INFLIGHT,
    OPT_RING, OPT_WORKERS, OPT_BACKEND_CPU, OPT_BENCH_CPU, OPT_NO_PIN, OPT_ATTACH,
    OPT_SOCK_DIR, OPT_LWVHOSTD, OPT_TESTPMD, OPT_KEEP_DIR, OPT_QUIET_WAIT,
    OPT_NICE, OPT_RX_IRQ,
};

/* Options every command takes (handled by common_option). */
#define COMMON_LONG_OPTIONS                                              \
    { "workload", required_argument, NULL, OPT_WORKLOAD },               \
    { "topology", required_argument, NULL, OPT_TOPOLOGY },               \
    { "backend", required_argument, NULL, OPT_BACKEND },                 \
    { "warmup", required_argument, NULL, OPT_WARMUP },                   \
    { "window", required_argument, NULL, OPT_WINDOW },                   \
    { "inflight", required_argument, NULL, OPT_INFLIGHT },               \
    { "ring", required_argument, NULL, OPT_RING },                       \
    { "workers", required_argument, NULL, OPT_WORKERS },                 \
    { "backend-cpu", required_argument, NULL, OPT_BACKEND_CPU },         \
    { "bench-cpu", required_argument, NULL, OPT_BENCH_CPU },             \
    { "no-pin", no_argument, NULL, OPT_NO_PIN },                         \
    { "attach", required_argument, NULL, OPT_ATTACH },                   \
    { "sock-dir", required_argument, NULL, OPT_SOCK_DIR },               \
    { "lwvhostd", required_argument, NULL, OPT_LWVHOSTD },               \
    { "testpmd", required_argument, NULL, OPT_TESTPMD },                 \
    { "keep-dir", required_argument, NULL, OPT_KEEP_DIR },               \
    { "quiet-wait", required_argument, NULL, OPT_QUIET_WAIT },           \
    { "nice", required_argument, NULL, OPT_NICE },                       \
    { "rx-irq", required_argument, NULL, OPT_RX_IRQ },                   \
    { "verbose", no_argument, NULL, 'v' }

/* 0, or -1 with a message in err (a usage error). */
int common_option(int id, const char *arg, struct bench_cfg *c, char *err, size_t errlen);
int parse_uint(const char *s, unsigned min, unsigned max, unsigned *out);
int parse_double(const char *s, double min, double max, double *out);
int parse_rate(const char *s, double *out);
void sweep_usage(FILE *f);

#endif
