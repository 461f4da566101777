/*
 * bench.h - lwvhost-bench: shared types of the benchmark.
 *
 * One process plays many VMs: each VM is one vuf frontend (src/frontend)
 * connected to one port of the backend under test (lwvhostd, or DPDK's
 * testpmd with net_vhost ports).  One thread drives every VM, busy-polling:
 * it sends paced or unlimited frames, receives, answers (tcp acks, rr
 * responses) and measures.
 *
 *   main.c     command line (run, sweep), exit codes
 *   engine.c   the workloads (stream, tcp, rr) and the measured run
 *   backend.c  starting/stopping lwvhostd or testpmd, their counters and CPU
 *   sysstat.c  /proc readers, the control-socket client
 *   report.c   a run's figures as text, JSON and CSV
 *   sweep.c    policies x loads x configurations, results.{csv,json,md}
 *   svg.c      hand-written SVG line plots
 *   hist.c     log-bucketed latency histogram
 *   json.c     JSON reader for lwvhostd's stats
 */
#ifndef LWV_BENCH_H
#define LWV_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "hist.h"

#define BENCH_MAX_VMS      64
#define BENCH_MAX_WORKERS  64
#define BENCH_MIN_SIZE     60u      /* Ethernet minimum without FCS */
#define BENCH_MAX_SIZE     9000u

/* Exit codes. */
#define EXIT_OK     0
#define EXIT_FAIL   1
#define EXIT_USAGE  2

enum workload { WL_STREAM, WL_TCP, WL_RR };
enum topology { TOPO_PAIRS, TOPO_M2O, TOPO_SINK, TOPO_OUT };

/* sink and out: frames end in the backend or leave it through a port that
 * is not a VM; what the backend took from the TX rings is what counts. */
static inline int topo_one_way(enum topology t) { return t == TOPO_SINK || t == TOPO_OUT; }

/* out: the destination of every frame, a MAC no VM has (locally
 * administered), which lwvhostd floods out of its other ports. */
#define BENCH_OUT_MAC { 0x02, 0x00, 0x00, 0x00, 0xff, 0xfe }
enum backend_kind { BK_LWVHOSTD, BK_DPDK };

struct bench_cfg {
    enum workload wl;
    unsigned size;              /* frame bytes (Ethernet header..payload) */
    unsigned vms;               /* VMs attached to the backend */
    unsigned streams;           /* queue pairs (flows) per sending VM */
    double rate;                /* total offered data frames/s; 0 = max */
    double seconds;             /* measured interval */
    double warmup;              /* seconds before the interval */
    enum topology topo;
    enum backend_kind backend;
    char policy[64];            /* lwvhostd notification policy, "" = default */
    unsigned window;            /* tcp: data frames in flight per flow */
    unsigned inflight;          /* rr: transactions in flight per flow */
    unsigned ring;              /* virtqueue size */
    int packed;                 /* 1: packed virtqueues, 0: split */
    unsigned workers;           /* lwvhostd --workers (0: its default) */
    int backend_cpu, bench_cpu; /* CPUs to pin to; -1: no pinning */
    const char *attach_ctl;     /* --attach: running lwvhostd's control socket */
    const char *sock_dir;       /* --sock-dir: where vmI.sock are */
    const char *lwvhostd;       /* binary paths */
    const char *testpmd;
    const char *keep_dir;       /* --keep-dir: work directory kept */
    double quiet_wait;          /* wait up to this many seconds for an idle machine */
    int nice;                   /* niceness of the backend and the bench (0: unchanged) */
    int rx_irq_off;             /* VMs never ask for RX interrupts (polling driver) */
    int verbose;
    int quiet;                  /* no warnings on stderr (sweep prints them) */
};

/* Every figure of one run; NaN where not available. */
struct bench_result {
    /* what was run (for reports) */
    char workload[8], topology[16], backend[16], policy[64];
    char kind[8];               /* "run"; sweep: "peak" (max rate) or "load" */
    char rx_irq[4];             /* "on": VMs arm RX interrupts when drained, "off" */
    char ring[8];               /* virtqueue layout: "split" or "packed" */
    unsigned ring_size;         /* virtqueue size */
    unsigned size, vms, streams, flows;
    double offered_pps;         /* NaN: max */
    double load_pct;            /* sweep: offered load in % of peak, NaN in run */

    /* measured interval */
    double interval_s;
    double sent_pps;            /* data frames (stream/tcp) or requests (rr) sent */
    double rx_pps;              /* every frame received by the VMs (data, acks,
                                   requests, responses); sink: taken by the backend */
    double rx_gbps;             /* those frames' bytes, Ethernet header on */
    double data_pps;            /* data frames received (rr: transactions) */
    double data_gbps;
    double tps;                 /* rr: transactions/s */

    /* accounting after the drain, all frames since the traffic started */
    double tx_frames, rx_frames;       /* every frame sent / received by the VMs */
    double data_sent, data_received;
    double lost;                       /* data_sent - data_received */
    double loss_pct;
    double seq_gaps, reordered, bad_frames, reply_drops, timeouts;
    double backend_tx_packets;         /* taken from the VMs by the backend */
    double backend_rx_packets;         /* delivered to the VMs by the backend */
    double backend_drops;              /* counted by the backend */
    double unaccounted;                /* tx - rx - backend drops (sink: tx - taken) */

    /* latency (stream/tcp: one-way send->receive; rr: round trip), us */
    double lat_samples, lat_p50, lat_p99, lat_p999, lat_mean, lat_max;

    /* CPU over the interval, % of one core */
    double backend_cpu;        /* the workers' CPU (lwvhostd: its cpu_ns stat if present,
                                  else /proc); dpdk: the whole testpmd process */
    double backend_cpu_stat;   /* lwvhostd workers per its own stats (cpu_ns) */
    double backend_cpu_proc;   /* workers per /proc/PID/task/TID/schedstat */
    double backend_cpu_user, backend_cpu_sys;  /* % of a core (stat or /proc) */
    double backend_proc_cpu;   /* whole backend process per /proc */
    double ctx_vol_per_s, ctx_invol_per_s;
    double cpu_us_per_pkt;     /* backend_cpu time / rx frames */
    double kicks_per_pkt, calls_per_pkt, wakeups_per_pkt;
    /* What one worker wake-up cost (lwvhostd): system calls, backend CPU
     * (us) and frames handled, each per wake-up. */
    double syscalls_per_wakeup, cpu_us_per_wakeup, frames_per_wakeup;
    double bench_cpu;          /* this process (getrusage) */
    double bench_busy;         /* % of loop time spent doing work */
    double tx_blocked_pct;     /* % of send attempts stopped by a full TX ring */
    double other_cpu;          /* rest of the machine, % of a core */
    int bench_limited;         /* 1: the bench was the bottleneck */
    int cpu_mismatch;          /* stats and /proc disagree */
    char warnings[512];
};

/* ---- engine.c ---- */
struct backend;
/* Runs one measured run against a started backend.  0, or -1 with a
 * message in err. */
int engine_run(const struct bench_cfg *c, struct backend *b, struct bench_result *r,
               char *err, size_t errlen);
/* Fills the descriptive fields of r from c. */
void result_init(struct bench_result *r, const struct bench_cfg *c);
const char *workload_name(enum workload w);
const char *topology_name(enum topology t);
const char *backend_name(enum backend_kind k);

/* ---- backend.c ---- */
struct backend_snap {
    int have_ports;            /* backend counters present */
    uint64_t tx_packets, rx_packets, drops, kicks, calls;
    unsigned nworkers;
    int worker_tid[BENCH_MAX_WORKERS];
    int have_wakeups;
    uint64_t wakeups;
    int have_syscalls;
    uint64_t syscalls;         /* system calls of the workers */
    int have_cpu_ns;           /* lwvhostd reports per-worker cpu_ns */
    uint64_t cpu_ns, cpu_user_ns, cpu_sys_ns;
    int have_user_sys;
    int have_ctx;
    uint64_t ctx_vol, ctx_invol;
    /* /proc */
    int have_proc;
    uint64_t proc_workers_ns;  /* sum of the worker threads' runtime */
    uint64_t proc_total_ns;    /* every thread of the process */
    uint64_t proc_user_ticks, proc_sys_ticks;          /* whole process */
    int have_proc_workers;
    uint64_t proc_wk_user_ticks, proc_wk_sys_ticks;    /* worker threads */
};

struct backend {
    enum backend_kind kind;
    pid_t pid;                  /* the backend process (ours or attached) */
    int spawned;
    char dir[256];              /* work directory (sockets, logs) */
    int own_dir;
    char ctl[300];              /* lwvhostd control socket */
    char log[300];
    int stdin_fd;               /* testpmd: write end of its stdin pipe */
    char prefix[64];            /* testpmd --file-prefix */
    char hugedir[256];
    unsigned vms;
    int policy_supported;       /* lwvhostd --help mentions --policy */
};

int backend_start(struct backend *b, const struct bench_cfg *c, char *err, size_t errlen);
void backend_stop(struct backend *b);
/* Socket path of VM i. */
void backend_sock_path(const struct backend *b, unsigned i, char *out, size_t len);
/* Counters and CPU now.  0 or -1 (err). */
int backend_snap(struct backend *b, struct backend_snap *s, char *err, size_t errlen);
/* Sets the policy at run time (attached lwvhostd): "policy all MODE". */
int backend_set_policy(struct backend *b, const char *policy, char *err, size_t errlen);
/* 1 if `lwvhostd --help` mentions --policy. */
int lwvhostd_has_policy(const char *lwvhostd);
/* Default binary paths next to /proc/self/exe, or from $LWVHOSTD etc. */
void bench_default_paths(struct bench_cfg *c);
/* Asks the process to stop (SIGINT/SIGTERM handler). */
extern volatile int bench_stop_requested;

/* ---- sysstat.c ---- */
int64_t now_ns(void);
/* Sends one line to a unix stream socket and reads the answer until EOF.
 * Returns a malloc'ed NUL-terminated string or NULL (err).  *peer_pid gets
 * the server's pid (SO_PEERCRED) when not NULL. */
char *ctl_request(const char *path, const char *line, int timeout_ms, pid_t *peer_pid,
                  char *err, size_t errlen);
/* ns of CPU a thread/process has run (schedstat), or -1. */
int64_t proc_task_runtime_ns(pid_t pid, pid_t tid);
/* Sum over every thread of pid; -1 if pid is gone. */
int64_t proc_runtime_ns(pid_t pid);
/* utime and stime in clock ticks of a process (tid 0) or one thread. */
int proc_stat_times(pid_t pid, pid_t tid, uint64_t *utime, uint64_t *stime);
/* Busy and total jiffies of the whole machine (/proc/stat "cpu" line). */
int proc_cpu_jiffies(uint64_t *busy, uint64_t *total);
long clock_ticks(void);
int online_cpus(void);

/* ---- report.c ---- */
void report_text(FILE *f, const struct bench_result *r);
void report_json(FILE *f, const struct bench_result *r, int indent);
void report_csv_header(FILE *f);
void report_csv_row(FILE *f, const struct bench_result *r);
/* Appends a row to path, writing the header first when the file is new or
 * empty.  0 or -1. */
int report_csv_append(const char *path, const struct bench_result *r);
/* Formatting helpers: "n/a" for NaN. */
const char *fmt_num(char *buf, size_t len, double v, int prec);
const char *fmt_rate(char *buf, size_t len, double pps);
/* v in M or k from 1e6 or 1e3 in magnitude on: the scaled value and prefix. */
double si_prefix(double v, const char **prefix);

/* ---- sweep.c ---- */
int sweep_main(int argc, char **argv);

/* ---- svg.c ---- */
struct svg_series {
    const char *name;
    unsigned n;
    const double *x, *y;        /* NaN points are skipped */
};
/* A line plot with markers; flags: SVG_XLOG, SVG_YLOG for logarithmic
 * axes.  0 or -1 (errno). */
#define SVG_YLOG 1
#define SVG_XLOG 2
int svg_plot(const char *path, const char *title, const char *xlabel, const char *ylabel,
             const struct svg_series *s, unsigned ns, int flags);

/* ---- main.c ---- */
/* Parses a workload/topology/backend name; -1 if unknown. */
int parse_workload(const char *s);
int parse_topology(const char *s);
int parse_backend(const char *s);
/* Checks a policy string MODE[:ARG]; 0 ok, -1 bad. */
int check_policy(const char *s);
/* Validates a configuration; 0 or -1 with err. */
int cfg_check(const struct bench_cfg *c, char *err, size_t errlen);
void cfg_defaults(struct bench_cfg *c);
/* The whole run: start backend, engine, stop.  0 ok, -1 (err). */
int bench_run_once(const struct bench_cfg *c, struct bench_result *r, char *err, size_t errlen);
void bench_install_signals(void);

#endif
