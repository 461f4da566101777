/*
 * backend.c - the backend under test: starting lwvhostd or DPDK's testpmd
 * (net_vhost ports) pinned to their CPU, or attaching to a running
 * lwvhostd; reading its counters and CPU; stopping it.
 *
 * Owns: the processes it started (killed with the bench: PR_SET_PDEATHSIG),
 * its work directory.  Must not: signal anything it did not start.
 */
#define _GNU_SOURCE
#include "bench.h"
#include "json.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_ARGS (16 + 4 * BENCH_MAX_VMS)

volatile int bench_stop_requested;

static void sleep_ms(int ms)
{
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };
    nanosleep(&ts, NULL);
}

static int exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

/* ---------------------------------------------------------------- paths */

static char exe_dir[PATH_MAX];
static char def_lwvhostd[PATH_MAX + 16];

void bench_default_paths(struct bench_cfg *c)
{
    const char *e;
    if (!exe_dir[0]) {
        ssize_t n = readlink("/proc/self/exe", exe_dir, sizeof exe_dir - 1);
        if (n > 0) {
            exe_dir[n] = '\0';
            char *slash = strrchr(exe_dir, '/');
            if (slash)
                *slash = '\0';
        } else {
            strcpy(exe_dir, ".");
        }
        snprintf(def_lwvhostd, sizeof def_lwvhostd, "%s/lwvhostd", exe_dir);
    }
    c->lwvhostd = (e = getenv("LWVHOSTD")) && *e ? e : def_lwvhostd;
    c->testpmd = (e = getenv("DPDK_TESTPMD")) && *e ? e : "dpdk-testpmd";
}

/* Runs argv, returns its stdout+stderr (malloc'ed) or NULL. */
static char *run_capture(char *const argv[])
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return NULL;
    pid_t pid = fork();
    if (pid < 0) {
        close(p[0]);
        close(p[1]);
        return NULL;
    }
    if (pid == 0) {
        dup2(p[1], 1);
        dup2(p[1], 2);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, 0);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(p[1]);
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (buf && len + 1 >= cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
            } else {
                buf = nb;
                cap *= 2;
            }
        }
        char tmp[1];
        ssize_t n = buf ? read(p[0], buf + len, cap - 1 - len) : read(p[0], tmp, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (buf)
            len += (size_t)n;
    }
    close(p[0]);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (buf)
        buf[len] = '\0';
    return buf;
}

int lwvhostd_has_policy(const char *lwvhostd)
{
    static char cached_for[PATH_MAX];
    static int cached = -1;
    if (cached >= 0 && strcmp(cached_for, lwvhostd) == 0)
        return cached;
    char *argv[] = { (char *)lwvhostd, (char *)"--help", NULL };
    char *out = run_capture(argv);
    cached = out && strstr(out, "--policy") != NULL;
    free(out);
    snprintf(cached_for, sizeof cached_for, "%s", lwvhostd);
    return cached;
}

void backend_sock_path(const struct backend *b, unsigned i, char *out, size_t len)
{
    snprintf(out, len, "%s/vm%u.sock", b->dir, i);
}

/* ---------------------------------------------------------------- process */

static void pin_self(int cpu)
{
    if (cpu < 0)
        return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    sched_setaffinity(0, sizeof set, &set);
}

/* fork + exec with stdout/stderr to log, stdin from stdin_fd (or
 * /dev/null), pinned to cpu, killed when we die. */
static pid_t spawn(char *const argv[], const char *log, int stdin_fd, int cpu, int niceness,
                   char *err, size_t errlen)
{
    int lfd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (lfd < 0) {
        snprintf(err, errlen, "%s: %s", log, strerror(errno));
        return -1;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(err, errlen, "fork: %s", strerror(errno));
        close(lfd);
        return -1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(127);
        /* undo the bench's own signal handling and pinning */
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGPIPE, SIG_DFL);
        if (cpu >= 0) {
            pin_self(cpu);
        } else {
            cpu_set_t all;
            CPU_ZERO(&all);
            for (int i = 0; i < online_cpus() && i < CPU_SETSIZE; i++)
                CPU_SET(i, &all);
            sched_setaffinity(0, sizeof all, &all);
        }
        if (niceness && setpriority(PRIO_PROCESS, 0, niceness) < 0)
            fprintf(stderr, "lwvhost-bench: --nice %d: %s\n", niceness, strerror(errno));
        int in = stdin_fd >= 0 ? stdin_fd : open("/dev/null", O_RDONLY);
        if (in >= 0)
            dup2(in, 0);
        dup2(lfd, 1);
        dup2(lfd, 2);
        execvp(argv[0], argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(lfd);
    return pid;
}

/* 1 if the child is still running; reaps it otherwise. */
static int child_alive(pid_t pid, int *status)
{
    int st;
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == 0)
        return 1;
    if (status)
        *status = r == pid ? st : 0;
    return 0;
}

static void log_tail(const char *log, char *out, size_t len)
{
    out[0] = '\0';
    int fd = open(log, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    off_t size = lseek(fd, 0, SEEK_END);
    off_t start = size > 600 ? size - 600 : 0;
    char buf[601];
    ssize_t n = pread(fd, buf, sizeof buf - 1, start);
    close(fd);
    if (n <= 0)
        return;
    buf[n] = '\0';
    for (char *p = buf; *p; p++)
        if (*p == '\n')
            *p = ' ';
    snprintf(out, len, "%s", buf);
}

static void stop_child(pid_t pid, int sig, int grace_ms)
{
    if (pid <= 0)
        return;
    if (sig)
        kill(pid, sig);
    for (int waited = 0; waited < grace_ms; waited += 10) {
        if (!child_alive(pid, NULL))
            return;
        sleep_ms(10);
    }
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
}

static void rm_dir_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char p[PATH_MAX];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static int make_dir(struct backend *b, const struct bench_cfg *c, char *err, size_t errlen)
{
    if (c->keep_dir) {
        snprintf(b->dir, sizeof b->dir, "%s", c->keep_dir);
        if (mkdir(b->dir, 0700) < 0 && errno != EEXIST) {
            snprintf(err, errlen, "%s: %s", b->dir, strerror(errno));
            return -1;
        }
        b->own_dir = 0;
        return 0;
    }
    snprintf(b->dir, sizeof b->dir, "/tmp/lwvbench.XXXXXX");
    if (!mkdtemp(b->dir)) {
        snprintf(err, errlen, "mkdtemp: %s", strerror(errno));
        return -1;
    }
    b->own_dir = 1;
    return 0;
}

static void vm_mac_str(unsigned i, char *out, size_t len)
{
    snprintf(out, len, "02:4c:57:00:%02x:%02x", (i >> 8) & 0xff, i & 0xff);
}

/* ---------------------------------------------------------------- lwvhostd */

/* Waits up to timeout_ms for ready() while the backend it started lives;
 * -1 with err set (with the log's last lines if it died). */
static int wait_ready(struct backend *b, const struct bench_cfg *c, const char *name,
                      int (*ready)(struct backend *, const struct bench_cfg *), int timeout_ms,
                      const char *waiting_for, char *err, size_t errlen)
{
    char tail[640];
    for (int waited = 0;; waited += 20) {
        if (!child_alive(b->pid, NULL)) {
            b->pid = 0;
            log_tail(b->log, tail, sizeof tail);
            snprintf(err, errlen, "%s exited at start: %s", name, tail);
            return -1;
        }
        if (ready(b, c))
            return 0;
        if (waited > timeout_ms) {
            snprintf(err, errlen, "%s did not %s within %d s (log %s)", name, waiting_for,
                     timeout_ms / 1000, b->log);
            return -1;
        }
        sleep_ms(20);
    }
}

/* lwvhostd is ready when its control socket answers. */
static int lwvhostd_ready(struct backend *b, const struct bench_cfg *c)
{
    (void)c;
    char e2[128];
    if (!exists(b->ctl))
        return 0;
    char *ans = ctl_request(b->ctl, "stats json\n", 1000, NULL, e2, sizeof e2);
    int answered = ans != NULL;
    free(ans);
    return answered;
}

/* testpmd is ready when every VM's vhost socket exists. */
static int testpmd_ready(struct backend *b, const struct bench_cfg *c)
{
    for (unsigned i = 0; i < c->vms; i++) {
        char sock[300];
        backend_sock_path(b, i, sock, sizeof sock);
        if (!exists(sock))
            return 0;
    }
    return 1;
}

static int start_lwvhostd(struct backend *b, const struct bench_cfg *c, char *err, size_t errlen)
{
    if (access(c->lwvhostd, X_OK) < 0) {
        snprintf(err, errlen, "%s: %s (build it with make, or set LWVHOSTD)", c->lwvhostd,
                 strerror(errno));
        return -1;
    }
    static char args[BENCH_MAX_VMS][400];
    char *argv[MAX_ARGS];
    char workers[16], ctlopt[16] = "--ctl";
    unsigned n = 0;
    argv[n++] = (char *)c->lwvhostd;
    for (unsigned i = 0; i < c->vms; i++) {
        char sock[300], mac[32];
        backend_sock_path(b, i, sock, sizeof sock);
        vm_mac_str(i, mac, sizeof mac);
        snprintf(args[i], sizeof args[i], "vm%u,path=%s,queues=%u,mac=%s", i, sock, c->streams,
                 mac);
        argv[n++] = (char *)"--port";
        argv[n++] = args[i];
    }
    snprintf(b->ctl, sizeof b->ctl, "%s/ctl.sock", b->dir);
    argv[n++] = ctlopt;
    argv[n++] = b->ctl;
    if (c->workers) {
        snprintf(workers, sizeof workers, "%u", c->workers);
        argv[n++] = (char *)"--workers";
        argv[n++] = workers;
    }
    if (c->policy[0]) {
        argv[n++] = (char *)"--policy";
        argv[n++] = (char *)c->policy;
    }
    argv[n++] = (char *)"--log-level";
    argv[n++] = (char *)"warn";
    argv[n] = NULL;
    snprintf(b->log, sizeof b->log, "%s/lwvhostd.log", b->dir);
    if (c->verbose) {
        fprintf(stderr, "lwvhost-bench: starting");
        for (unsigned i = 0; i < n; i++)
            fprintf(stderr, " %s", argv[i]);
        fprintf(stderr, "\n");
    }
    b->pid = spawn(argv, b->log, -1, c->backend_cpu, c->nice, err, errlen);
    if (b->pid < 0)
        return -1;
    b->spawned = 1;
    /* ready when the control socket answers */
    return wait_ready(b, c, "lwvhostd", lwvhostd_ready, 5000, "answer on its control socket",
                      err, errlen);
}

static int attach_lwvhostd(struct backend *b, const struct bench_cfg *c, char *err, size_t errlen)
{
    snprintf(b->ctl, sizeof b->ctl, "%s", c->attach_ctl);
    snprintf(b->dir, sizeof b->dir, "%s", c->sock_dir);
    b->own_dir = 0;
    char e2[200];
    pid_t pid = 0;
    char *ans = ctl_request(b->ctl, "stats json\n", 2000, &pid, e2, sizeof e2);
    if (!ans) {
        snprintf(err, errlen, "--attach: %s", e2);
        return -1;
    }
    free(ans);
    b->pid = pid;
    for (unsigned i = 0; i < c->vms; i++) {
        char sock[300];
        backend_sock_path(b, i, sock, sizeof sock);
        if (!exists(sock)) {
            snprintf(err, errlen, "--attach: %s does not exist (the running lwvhostd needs "
                     "ports vm0..vm%u in --sock-dir)", sock, c->vms - 1);
            return -1;
        }
    }
    if (c->policy[0] && backend_set_policy(b, c->policy, err, errlen))
        return -1;
    return 0;
}

int backend_set_policy(struct backend *b, const char *policy, char *err, size_t errlen)
{
    char line[128], e2[200];
    snprintf(line, sizeof line, "policy all %s\n", policy);
    char *ans = ctl_request(b->ctl, line, 2000, NULL, e2, sizeof e2);
    if (!ans) {
        snprintf(err, errlen, "setting policy: %s", e2);
        return -1;
    }
    int bad = strncmp(ans, "error", 5) == 0;
    if (bad) {
        ans[strcspn(ans, "\n")] = '\0';
        snprintf(err, errlen, "lwvhostd refused 'policy all %s': %s", policy, ans);
    }
    free(ans);
    return bad ? -1 : 0;
}

/* ---------------------------------------------------------------- testpmd */

static int find_hugedir(char *out, size_t len)
{
    FILE *f = fopen("/proc/mounts", "re");
    if (!f)
        return -1;
    char dev[256], mnt[256], type[64], opts[512];
    int found = -1;
    while (fscanf(f, "%255s %255s %63s %511s %*d %*d", dev, mnt, type, opts) == 4) {
        if (strcmp(type, "hugetlbfs") == 0 && !strstr(opts, "pagesize=1G")) {
            snprintf(out, len, "%s", mnt);
            found = 0;
            break;
        }
    }
    fclose(f);
    return found;
}

static long meminfo(const char *key)
{
    FILE *f = fopen("/proc/meminfo", "re");
    if (!f)
        return -1;
    char line[256];
    long v = -1;
    size_t kl = strlen(key);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
            v = strtol(line + kl + 1, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

/* Make sure `pages` free 2 MiB hugepages exist (raises nr_hugepages). */
static int ensure_hugepages(long pages, char *err, size_t errlen)
{
    long size = meminfo("Hugepagesize");
    if (size != 2048) {
        snprintf(err, errlen, "default hugepage size is %ld kB, testpmd here needs 2048 kB", size);
        return -1;
    }
    long free_p = meminfo("HugePages_Free"), total = meminfo("HugePages_Total");
    if (free_p < pages) {
        FILE *f = fopen("/proc/sys/vm/nr_hugepages", "we");
        if (f) {
            fprintf(f, "%ld\n", total + pages - free_p);
            fclose(f);
        }
        free_p = meminfo("HugePages_Free");
    }
    if (free_p < pages) {
        snprintf(err, errlen, "testpmd needs %ld free 2 MiB hugepages, %ld free (echo N > "
                 "/proc/sys/vm/nr_hugepages as root)", pages, free_p);
        return -1;
    }
    return 0;
}

static int start_testpmd(struct backend *b, const struct bench_cfg *c, char *err, size_t errlen)
{
    if (c->topo == TOPO_M2O) {
        snprintf(err, errlen, "--backend dpdk: testpmd io forwarding pairs ports; use "
                 "--topology pairs or sink");
        return -1;
    }
    if (find_hugedir(b->hugedir, sizeof b->hugedir)) {
        snprintf(err, errlen, "no hugetlbfs mounted (mount -t hugetlbfs none /dev/hugepages)");
        return -1;
    }
    if (ensure_hugepages(256, err, errlen))
        return -1;
    snprintf(b->prefix, sizeof b->prefix, "lwvbench_%d", (int)getpid());
    static char vdev[BENCH_MAX_VMS][400];
    char lcores[64], prefix[96], huge[300], rxq[32], txq[32], fwd[48];
    char *argv[MAX_ARGS];
    unsigned n = 0;
    int cpu = c->backend_cpu >= 0 ? c->backend_cpu : 0;
    snprintf(lcores, sizeof lcores, "--lcores=0@%d,1@%d", cpu, cpu);
    snprintf(prefix, sizeof prefix, "--file-prefix=%s", b->prefix);
    snprintf(huge, sizeof huge, "--huge-dir=%s", b->hugedir);
    argv[n++] = (char *)c->testpmd;
    argv[n++] = lcores;
    argv[n++] = (char *)"--no-pci";
    argv[n++] = prefix;
    argv[n++] = huge;
    argv[n++] = (char *)"--huge-unlink";
    argv[n++] = (char *)"-m";
    argv[n++] = (char *)"512";
    for (unsigned i = 0; i < c->vms; i++) {
        char sock[300];
        backend_sock_path(b, i, sock, sizeof sock);
        snprintf(vdev[i], sizeof vdev[i], "net_vhost%u,iface=%s,queues=%u", i, sock, c->streams);
        argv[n++] = (char *)"--vdev";
        argv[n++] = vdev[i];
    }
    argv[n++] = (char *)"--";
    snprintf(fwd, sizeof fwd, "--forward-mode=%s", c->topo == TOPO_SINK ? "rxonly" : "io");
    argv[n++] = fwd;
    argv[n++] = (char *)"--nb-cores=1";
    snprintf(rxq, sizeof rxq, "--rxq=%u", c->streams);
    snprintf(txq, sizeof txq, "--txq=%u", c->streams);
    argv[n++] = rxq;
    argv[n++] = txq;
    argv[n++] = (char *)"--total-num-mbufs=16384";
    argv[n] = NULL;
    if (c->verbose) {
        fprintf(stderr, "lwvhost-bench: starting");
        for (unsigned i = 0; i < n; i++)
            fprintf(stderr, " %s", argv[i]);
        fprintf(stderr, "\n");
    }
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        return -1;
    }
    snprintf(b->log, sizeof b->log, "%s/testpmd.log", b->dir);
    /* stdin: a pipe we keep open; a newline asks testpmd to exit */
    b->pid = spawn(argv, b->log, p[0], -1, c->nice, err, errlen);
    close(p[0]);
    if (b->pid < 0) {
        close(p[1]);
        return -1;
    }
    b->stdin_fd = p[1];
    b->spawned = 1;
    return wait_ready(b, c, "testpmd", testpmd_ready, 30000, "create its vhost sockets", err,
                      errlen);
}

/* ---------------------------------------------------------------- common */

int backend_start(struct backend *b, const struct bench_cfg *c, char *err, size_t errlen)
{
    memset(b, 0, sizeof *b);
    b->kind = c->backend;
    b->vms = c->vms;
    b->stdin_fd = -1;
    if (c->attach_ctl)
        return attach_lwvhostd(b, c, err, errlen);
    if (make_dir(b, c, err, errlen))
        return -1;
    int r = c->backend == BK_DPDK ? start_testpmd(b, c, err, errlen)
                                   : start_lwvhostd(b, c, err, errlen);
    if (r)
        backend_stop(b);
    return r;
}

void backend_stop(struct backend *b)
{
    if (b->spawned && b->pid > 0) {
        if (b->kind == BK_DPDK) {
            /* "Press enter to exit" */
            if (b->stdin_fd >= 0 && write(b->stdin_fd, "\n", 1) < 0)
                kill(b->pid, SIGTERM);
            stop_child(b->pid, 0, 5000);
        } else {
            stop_child(b->pid, SIGTERM, 5000);
        }
        b->pid = 0;
    }
    if (b->stdin_fd >= 0) {
        close(b->stdin_fd);
        b->stdin_fd = -1;
    }
    if (b->prefix[0]) {
        char p[PATH_MAX];
        snprintf(p, sizeof p, "/var/run/dpdk/%s", b->prefix);
        rm_dir_files(p);
        b->prefix[0] = '\0';
    }
    if (b->own_dir) {
        rm_dir_files(b->dir);
        b->own_dir = 0;
    }
    b->spawned = 0;
}

static void sum_u64(const struct json *o, const char *key, uint64_t *acc, int *have)
{
    uint64_t v;
    if (json_u64(json_get(o, key), &v)) {
        *acc += v;
        if (have)
            *have = 1;
    }
}

/* Adds key's value to *acc; clears *all if the key is missing (a figure
 * summed over workers is known only if every worker has it). */
static void sum_each(const struct json *o, const char *key, uint64_t *acc, int *all)
{
    uint64_t v;
    if (json_u64(json_get(o, key), &v))
        *acc += v;
    else
        *all = 0;
}

int backend_snap(struct backend *b, struct backend_snap *s, char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    if (b->kind == BK_LWVHOSTD) {
        char e2[200];
        char *ans = ctl_request(b->ctl, "stats json\n", 2000, NULL, e2, sizeof e2);
        if (!ans) {
            snprintf(err, errlen, "lwvhostd stats: %s", e2);
            return -1;
        }
        struct json *j = json_parse(ans, e2, sizeof e2);
        free(ans);
        if (!j) {
            snprintf(err, errlen, "lwvhostd stats: %s", e2);
            return -1;
        }
        const struct json *ports = json_get(j, "ports");
        for (const struct json *p = ports ? ports->child : NULL; p; p = p->next) {
            const char *type = json_str(json_get(p, "type"));
            if (type && strcmp(type, "vhost") != 0)
                continue;
            sum_u64(p, "tx_packets", &s->tx_packets, &s->have_ports);
            sum_u64(p, "rx_packets", &s->rx_packets, NULL);
            sum_u64(p, "rx_drops", &s->drops, NULL);
            sum_u64(p, "tx_drops", &s->drops, NULL);
            sum_u64(p, "kicks", &s->kicks, NULL);
            sum_u64(p, "calls", &s->calls, NULL);
        }
        const struct json *ws = json_get(j, "workers");
        int have_cpu = 1, have_us = 1, have_ctx = 1;
        for (const struct json *w = ws ? ws->child : NULL; w; w = w->next) {
            uint64_t tid = 0;
            if (s->nworkers < BENCH_MAX_WORKERS && json_u64(json_get(w, "tid"), &tid))
                s->worker_tid[s->nworkers++] = (int)tid;
            sum_u64(w, "wakeups", &s->wakeups, &s->have_wakeups);
            sum_u64(w, "syscalls", &s->syscalls, &s->have_syscalls);
            sum_each(w, "cpu_ns", &s->cpu_ns, &have_cpu);
            sum_each(w, "cpu_user_ns", &s->cpu_user_ns, &have_us);
            sum_each(w, "cpu_sys_ns", &s->cpu_sys_ns, &have_us);
            sum_each(w, "ctx_voluntary", &s->ctx_vol, &have_ctx);
            sum_each(w, "ctx_involuntary", &s->ctx_invol, &have_ctx);
        }
        s->have_cpu_ns = s->nworkers && have_cpu;
        s->have_user_sys = s->nworkers && have_us;
        s->have_ctx = s->nworkers && have_ctx;
        json_free(j);
    }
    if (b->pid > 0) {
        int64_t tot = proc_runtime_ns(b->pid);
        if (tot >= 0 && proc_stat_times(b->pid, 0, &s->proc_user_ticks, &s->proc_sys_ticks) == 0) {
            s->have_proc = 1;
            s->proc_total_ns = (uint64_t)tot;
        }
        if (s->nworkers) {
            s->have_proc_workers = 1;
            for (unsigned i = 0; i < s->nworkers; i++) {
                int64_t v = proc_task_runtime_ns(b->pid, s->worker_tid[i]);
                uint64_t u = 0, st = 0;
                if (v < 0 || proc_stat_times(b->pid, s->worker_tid[i], &u, &st)) {
                    s->have_proc_workers = 0;
                    break;
                }
                s->proc_workers_ns += (uint64_t)v;
                s->proc_wk_user_ticks += u;
                s->proc_wk_sys_ticks += st;
            }
        }
    }
    return 0;
}
