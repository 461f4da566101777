/*
 * fuzz_config.c - libFuzzer target: lwvhostd's text parsers.
 *   config_parse_text + config_validate   (the --config file format)
 *   config_parse_args + config_validate   (the command line)
 *   ctl_execute                           (a control-socket command line)
 * The first input byte picks one (modulo 3); the rest is the text.  For
 * the command line, the text is split at newlines into arguments.
 *
 * ctl_execute renders a port table of three ports (a connected vhost-user
 * port with a ring set up, a disconnected one, a tap) served by one
 * worker that is never started.  "config FILE" is honoured for relative
 * names only: inputs run in a private directory holding a few config
 * files (one including another, one including itself, one over the 1 MiB
 * limit); an input naming a path with '/' is skipped, so no input can make
 * the parser read a device or a FIFO and block.
 * Per input: the result of ctl_execute is freed, and no fd may stay open.
 */
#include "fuzz_common.h"

#include <assert.h>
#include <ctype.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "ctl.h"
#include "device.h"
#include "port.h"
#include "switch.h"
#include "worker.h"

static struct lswitch sw;

#define MAX_TEXT 8192
#define MAX_ARGS 32

static struct port p_vm1, p_vm2, p_tap;
static struct config cfg;
static char dir[64];
static int home_fd = -1;   /* the directory libFuzzer runs in */

static void write_file(const char *name, const char *text, size_t len)
{
    FILE *f = fopen(name, "w");
    if (!f || fwrite(text, 1, len, f) != len)
        abort();
    fclose(f);
}

static void remove_dir(void)
{
    static const char *const names[] = { "inc.conf", "loop.conf", "big.conf" };
    for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char path[128];
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
}

static void setup_dir(void)
{
    snprintf(dir, sizeof(dir), "/tmp/lwv-fuzz-config.XXXXXX");
    if (!mkdtemp(dir))
        abort();
    home_fd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (home_fd < 0 || chdir(dir) < 0)
        abort();
    atexit(remove_dir);
    static const char inc[] = "workers 2\nport inc,path=inc.sock,queues=2\npolicy interval:50\n";
    write_file("inc.conf", inc, sizeof(inc) - 1);
    static const char loop[] = "# includes itself\nconfig loop.conf\n";
    write_file("loop.conf", loop, sizeof(loop) - 1);
    size_t big = (1u << 20) + 16;
    char *b = malloc(big);
    if (!b)
        abort();
    memset(b, '#', big);
    write_file("big.conf", b, big);
    free(b);
    if (fchdir(home_fd) < 0)
        abort();
}

static void port_setup(struct port *p, unsigned index, const char *name, enum port_type type)
{
    p->index = index;
    p->type = type;
    snprintf(p->name, sizeof(p->name), "%s", name);
    snprintf(p->cfg.path, sizeof(p->cfg.path), "/nonexistent/%s.sock", name);
    p->conn.fd = p->listen_fd = p->tap_fd = -1;
    p->queues = type == PORT_VHOST ? 2 : 1;
    dev_init(&p->dev, p, p->queues);
    if (type == PORT_VHOST)
        for (unsigned qp = 0; qp < p->queues; qp++)
            worker_assign_queue(&p->dev.q[2 * qp + 1]);
    p->sw = &sw;
    ports.p[index] = p;
}

/* vm1 looks connected: features, memory and one ring. */
static void vm1_state(void)
{
    struct vdev *d = &p_vm1.dev;
    d->connected = true;
    dev_set_features(d, 1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_NET_F_MRG_RXBUF);
    d->features_set = true;
    static uint8_t mem[1 << 16] __attribute__((aligned(4096)));
    d->mem.r[0] = (struct mem_region){ .gpa = 0, .size = sizeof(mem), .uva = 0x10000,
                                       .host = mem, .page = 4096 };
    d->mem.n = 1;
    struct vqueue *q = &d->q[1];
    q->vq.num = 256;
    q->vq.desc_uva = 0x10000;
    q->vq.avail_uva = 0x11000;
    q->vq.used_uva = 0x12000;
    q->vq.addr_set = true;
    q->kick_set = true;
    q->enable = 1;
    if (!vq_map(&q->vq, &d->mem))
        abort();
    uint8_t mac[6] = { 0x52, 0x54, 0, 0x12, 0x34, 0x56 };
    switch_learn(&sw, mac, 0);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_log_init();
    setup_dir();
    if (workers_init(1) < 0)
        abort();
    switch_init(&sw, &ports);
    ports_init(&sw);
    port_setup(&p_vm1, 0, "vm1", PORT_VHOST);
    port_setup(&p_vm2, 1, "vm2", PORT_VHOST);
    port_setup(&p_tap, 2, "tap0", PORT_TAP);
    ports.n = 3;
    vm1_state();
    return 0;
}

/* True if some "config" is followed by a value naming a path with '/'. */
static bool names_a_path(const char *t)
{
    for (const char *s = strstr(t, "config"); s; s = strstr(s + 1, "config")) {
        const char *v = s + 6;
        while (*v && (isspace((unsigned char)*v) || *v == '='))
            v++;
        for (; *v && !isspace((unsigned char)*v); v++)
            if (*v == '/')
                return true;
    }
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > MAX_TEXT)
        return 0;
    /* A heap copy per input, so a parser that keeps a pointer into an
     * earlier input is caught by ASan. */
    char *text = malloc(size);
    if (!text)
        return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = 0;
    long fds_before = proc_fd_count(0);
    char err[512];
    /* Relative "config" names resolve in the private directory (only
     * while the input runs: libFuzzer's own paths stay relative to where
     * it was started). */
    if (chdir(dir) < 0)
        abort();
    switch (data[0] % 3) {
    case 0:
        if (names_a_path(text))
            break;
        config_defaults(&cfg);
        if (config_parse_text(&cfg, text, err, sizeof(err)) == 0)
            config_validate(&cfg, err, sizeof(err));
        break;
    case 1: {
        /* A NUL ends the text, as for the split below: only newlines
         * separate arguments. */
        if (names_a_path(text))
            break;
        char *argv[MAX_ARGS + 2];
        int argc = 0;
        argv[argc++] = (char *)"lwvhostd";
        for (char *s = text, *nl; s && argc < MAX_ARGS + 1; s = nl) {
            nl = strchr(s, '\n');
            if (nl)
                *nl++ = 0;
            argv[argc++] = s;
        }
        argv[argc] = NULL;
        config_defaults(&cfg);
        config_parse_args(&cfg, argc, argv, err, sizeof(err));
        break;
    }
    default: {
        char *out = ctl_execute(text);
        assert(out);
        free(out);
        break;
    }
    }
    free(text);
    if (fchdir(home_fd) < 0)
        abort();
    long fds_after = proc_fd_count(0);
    assert(fds_before >= 0 && fds_after == fds_before);
    return 0;
}
