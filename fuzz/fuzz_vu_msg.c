/*
 * fuzz_vu_msg.c - libFuzzer target: the vhost-user control plane
 * (src/daemon/vu_ctrl.c) fed a sequence of messages over a real unix
 * socket pair, with file descriptors attached where the input says.
 * It drives the daemon's own code in-process: a port set up as daemon.c
 * sets one up, and vu_conn_attach / vu_conn_readable / vu_conn_detach
 * called as the daemon's event loop calls them.  A second, well-behaved
 * port ("peer") receives what the fuzzed port's rings forward and sends
 * it broadcasts, so whatever state the messages build is also run
 * through the datapath.
 *
 * Input: a list of operations, each an op byte and its operands (little
 * endian; bytes missing at the end read as zero):
 *   op & 7 = 0 MSG   op & 8 ? u32 request, u32 size : u8 request, u16 size;
 *                    then u8 flags, u8 fdspec and min(size, 600) payload
 *                    bytes: one message, header and payload in one sendmsg
 *                    (a size larger than what follows leaves it unfinished)
 *            1 RAW   u8 len, u8 fdspec, len bytes sent as they are (a
 *                    message in pieces, or several at once)
 *            2 POKE  u32 offset, u8 len, len bytes written into guest
 *                    memory file 0 (offset modulo its size)
 *            3 DATA  serve the fuzzed port's TX rings once, then send it a
 *                    broadcast from the peer (op & 8: re-arm kicks)
 *            4 EOF   the frontend shuts down its sending side
 *            5 RECONNECT  detach, and attach a fresh connection
 *            6, 7    nothing
 * After MSG, RAW and EOF the daemon handles what is readable, as its event
 * loop would, and its replies are read and discarded.  A connection the
 * daemon drops is detached; the next MSG or RAW connects anew.
 * fdspec: count = fdspec & 15, kind = fdspec >> 4: 0 guest memory file 0
 * (a 1 MiB memfd), 1 an eventfd, 2 guest memory file 1 (256 KiB), 3 a new
 * 4 KiB memfd, 4 the read end of a pipe, 5 /dev/null, 6 eventfd and file 0
 * alternately, 7 a unix socket, 8-15 an eventfd.
 *
 * Per input, nothing may leak: the number of open fds is asserted equal
 * before and after, and LSan (libFuzzer's -detect_leaks) checks memory.
 * The peer must never be marked broken by what the fuzzed port does.
 */
#include "fuzz_common.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "device.h"
#include "fwd.h"
#include "net.h"
#include "port.h"
#include "switch.h"
#include "vu_ctrl.h"

#define MEM0_SIZE (1u << 20)
#define MEM1_SIZE (256u << 10)
#define MAX_SEND 600u
#define MAX_OPS 256u
#define MAX_FDS 15u

#define PEER_MEM (1u << 20)
#define PEER_GPA 0x100000ull
#define PEER_UVA 0x7e0000000000ull
#define PEER_RING 64u
#define PEER_BUF 2048u

static struct port fz, peer;
static struct fwd_ctx ctx;
static struct lswitch sw;

struct session {
    int fe;            /* our (frontend) end of the socket pair, -1: none */
    int mem[2];        /* guest memory files */
    uint8_t *mem0;     /* our mapping of file 0 */
};

/* ---- the peer: a fake guest with a valid RX ring ------------------------ */

static void peer_ring(unsigned i)
{
    struct vqueue *q = &peer.dev.q[i];
    uint64_t base = PEER_UVA + (uint64_t)i * 0x8000;
    memset(&q->vq, 0, sizeof(q->vq));
    q->vq.num = PEER_RING;
    q->vq.desc_uva = base;
    q->vq.avail_uva = base + virtq_desc_size(PEER_RING);
    q->vq.used_uva = base + 0x4000;
    q->vq.addr_set = true;
    q->kick_set = true;
    q->enable = 1;
    if (!vq_map(&q->vq, &peer.dev.mem))
        abort();
    memset(q->vq.desc, 0, virtq_desc_size(PEER_RING));
    memset(q->vq.avail, 0, virtq_avail_size(PEER_RING));
    memset(q->vq.used, 0, virtq_used_size(PEER_RING));
}

static void peer_init(void)
{
    peer.index = 1;
    peer.type = PORT_VHOST;
    snprintf(peer.name, sizeof(peer.name), "peer");
    peer.conn.fd = -1;
    dev_init(&peer.dev, &peer, 1);
    int fd = memfd_create("peer", MFD_CLOEXEC);
    if (fd < 0 || ftruncate(fd, PEER_MEM) < 0)
        abort();
    struct vhost_user_mem_region d = { PEER_GPA, PEER_MEM, PEER_UVA, 0 };
    struct mem_region r;
    char err[128];
    if (mem_region_map(&r, &d, fd, err, sizeof(err)) < 0)
        abort();
    close(fd);
    if (mem_add(&peer.dev.mem, &r, err, sizeof(err)) < 0)
        abort();
    peer.dev.connected = true;
    dev_set_features(&peer.dev, 1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_NET_F_MRG_RXBUF);
    peer.dev.features_set = true;
}

/* Fresh rings for every input: PEER_RING receive buffers posted. */
static void peer_reset(void)
{
    peer.dev.broken = false;
    peer.dev.status = 0;
    peer_ring(0);
    peer_ring(1);
    struct vq *rx = &peer.dev.q[0].vq;
    for (uint16_t i = 0; i < PEER_RING; i++) {
        rx->desc[i] = (struct virtq_desc){ PEER_GPA + 0x20000 + (uint64_t)i * PEER_BUF, PEER_BUF,
                                           VIRTQ_DESC_F_WRITE, 0 };
        rx->avail->ring[i] = i;
    }
    rx->avail->idx = PEER_RING;
}

/* ---- the connection ------------------------------------------------------ */

static void connect_fe(struct session *s)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        abort();
    s->fe = sv[0];
    vu_conn_attach(&fz, sv[1]);
}

static void disconnect(struct session *s, const char *why)
{
    vu_conn_detach(&fz, why);
    if (s->fe >= 0)
        close(s->fe);
    s->fe = -1;
}

/* Reads and drops the daemon's replies (closing any fd it might send). */
static void drain_replies(struct session *s)
{
    for (;;) {
        uint8_t buf[4096];
        union {
            char b[CMSG_SPACE(sizeof(int) * 16)];
            struct cmsghdr align;
        } cm;
        struct iovec iov = { buf, sizeof(buf) };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.b,
                             .msg_controllen = sizeof(cm.b) };
        ssize_t r = recvmsg(s->fe, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (r <= 0)
            return;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
            if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                continue;
            size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t i = 0; i < n; i++) {
                int fd;
                memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(fd));
                close(fd);
            }
        }
    }
}

/* What the daemon's event loop does when the connection is readable. */
static void pump(struct session *s)
{
    if (fz.conn.fd < 0)
        return;
    for (int i = 0; i < 16; i++) {
        if (vu_conn_readable(&fz) < 0) {
            disconnect(s, "fuzz: the daemon dropped the connection");
            return;
        }
        int pending = 0;
        if (ioctl(fz.conn.fd, FIONREAD, &pending) < 0 || pending <= 0)
            break;
    }
    drain_replies(s);
}

/* Builds the fds of fdspec into fds; the ones created for this message are
 * also listed in tmp (closed once sent).  Returns the fd count. */
static unsigned build_fds(struct session *s, uint8_t spec, int *fds, int *tmp, unsigned *ntmp)
{
    unsigned n = spec & 15u, kind = spec >> 4;
    for (unsigned i = 0; i < n; i++) {
        unsigned k = kind == 6 ? (i & 1 ? 0 : 1) : kind;
        int fd = -1, p[2];
        switch (k) {
        case 0:
            fd = s->mem[0];
            break;
        case 2:
            fd = s->mem[1];
            break;
        case 3:
            fd = memfd_create("tiny", MFD_CLOEXEC);
            if (fd >= 0 && ftruncate(fd, 4096) < 0)
                abort();
            tmp[(*ntmp)++] = fd;
            break;
        case 4:
            if (pipe2(p, O_CLOEXEC) < 0)
                abort();
            fd = p[0];
            tmp[(*ntmp)++] = p[0];
            tmp[(*ntmp)++] = p[1];
            break;
        case 5:
            fd = open("/dev/null", O_RDWR | O_CLOEXEC);
            tmp[(*ntmp)++] = fd;
            break;
        case 7:
            if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p) < 0)
                abort();
            fd = p[0];
            tmp[(*ntmp)++] = p[0];
            tmp[(*ntmp)++] = p[1];
            break;
        default:
            fd = eventfd(0, EFD_CLOEXEC);
            tmp[(*ntmp)++] = fd;
            break;
        }
        if (fd < 0)
            abort();
        fds[i] = fd;
    }
    return n;
}

static void send_pieces(struct session *s, struct iovec *iov, int niov, uint8_t fdspec)
{
    if (s->fe < 0)
        connect_fe(s);
    int fds[MAX_FDS], tmp[2 * MAX_FDS];
    unsigned ntmp = 0;
    unsigned nfds = build_fds(s, fdspec, fds, tmp, &ntmp);
    for (int attempt = 0; attempt < 2; attempt++) {
        ssize_t w = send_fds(s->fe, iov, niov, fds, nfds, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w >= 0 || errno != EAGAIN)
            break;
        pump(s);   /* the daemon has not read enough yet */
        if (s->fe < 0)
            break;
    }
    for (unsigned i = 0; i < ntmp; i++)
        close(tmp[i]);
    pump(s);
}

static void op_msg(struct session *s, struct cursor *c, uint8_t op)
{
    struct vhost_user_hdr h;
    if (op & 8) {
        h.request = cur_u32(c);
        h.size = cur_u32(c);
    } else {
        h.request = cur_u8(c);
        h.size = cur_u16(c);
    }
    h.flags = cur_u8(c);
    uint8_t spec = cur_u8(c);
    static uint8_t payload[MAX_SEND];
    size_t n = h.size < MAX_SEND ? h.size : MAX_SEND;
    cur_bytes(c, payload, n);
    struct iovec iov[2] = { { &h, sizeof(h) }, { payload, n } };
    send_pieces(s, iov, n ? 2 : 1, spec);
}

static void op_raw(struct session *s, struct cursor *c)
{
    uint8_t len = cur_u8(c), spec = cur_u8(c);
    uint8_t buf[256];
    cur_bytes(c, buf, len);
    struct iovec iov = { buf, len };
    if (len == 0 && (spec & 15) == 0)
        return;   /* nothing to send */
    if (len == 0) {
        /* fds need at least one byte to travel with */
        buf[0] = 0;
        iov.iov_len = 1;
    }
    send_pieces(s, &iov, 1, spec);
}

static void op_poke(struct session *s, struct cursor *c)
{
    uint32_t off = cur_u32(c) % MEM0_SIZE;
    uint8_t len = cur_u8(c);
    uint8_t buf[256];
    cur_bytes(c, buf, len);
    size_t n = len < MEM0_SIZE - off ? len : MEM0_SIZE - off;
    memcpy(s->mem0 + off, buf, n);
}

static void op_data(bool rearm)
{
    for (unsigned i = 1; i < 2 * fz.dev.max_qp; i += 2) {
        struct vqueue *q = &fz.dev.q[i];
        pthread_rwlock_rdlock(&fz.dev.lock);
        if (dev_queue_ready(&fz.dev, q)) {
            bool more;
            fwd_tx_pass(&ctx, q, 64, rearm, &more);
        }
        pthread_rwlock_unlock(&fz.dev.lock);
    }
    fwd_flush(&ctx);
    uint8_t f[64];
    memset(f, 0, sizeof(f));
    memset(f, 0xff, 6);
    memcpy(f + 6, (const uint8_t[]){ 0x52, 0x54, 0, 0, 0, 1 }, 6);
    f[12] = 0x08;
    fwd_inject(&ctx, &peer, f, sizeof(f));
    if (log_get_level() >= LOG_DEBUG)
        fprintf(stderr, "fuzz: fz tx %llu rx %llu (broken %d) | peer rx %llu\n",
                (unsigned long long)(fz.dev.q[1].st.packets + fz.dev.q[3].st.packets),
                (unsigned long long)(fz.dev.q[0].st.packets + fz.dev.q[2].st.packets),
                fz.dev.broken, (unsigned long long)peer.dev.q[0].st.packets);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_log_init();
    signal(SIGPIPE, SIG_IGN);
    fz.index = 0;
    fz.type = PORT_VHOST;
    snprintf(fz.name, sizeof(fz.name), "fz");
    fz.queues = 2;
    fz.conn.fd = -1;
    fz.listen_fd = -1;
    fz.tap_fd = -1;
    dev_init(&fz.dev, &fz, fz.queues);
    peer_init();
    fz.sw = peer.sw = &sw;
    ports.p[0] = &fz;
    ports.p[1] = &peer;
    ports.n = 2;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    long fds_before = proc_fd_count(0);
    struct session s = { .fe = -1 };
    s.mem[0] = memfd_create("guest0", MFD_CLOEXEC);
    s.mem[1] = memfd_create("guest1", MFD_CLOEXEC);
    if (s.mem[0] < 0 || s.mem[1] < 0 || ftruncate(s.mem[0], MEM0_SIZE) < 0 ||
        ftruncate(s.mem[1], MEM1_SIZE) < 0)
        abort();
    s.mem0 = mmap(NULL, MEM0_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, s.mem[0], 0);
    if (s.mem0 == MAP_FAILED)
        abort();
    switch_init(&sw, &ports);
    ports_init(&sw);
    peer_reset();

    struct cursor c = { data, size };
    for (unsigned ops = 0; cur_left(&c) && ops < MAX_OPS; ops++) {
        uint8_t op = cur_u8(&c);
        switch (op & 7) {
        case 0:
            op_msg(&s, &c, op);
            break;
        case 1:
            op_raw(&s, &c);
            break;
        case 2:
            op_poke(&s, &c);
            break;
        case 3:
            op_data(op & 8);
            break;
        case 4:
            if (s.fe >= 0) {
                shutdown(s.fe, SHUT_WR);
                pump(&s);
            }
            break;
        case 5:
            if (s.fe >= 0)
                disconnect(&s, "fuzz: reconnect");
            connect_fe(&s);
            break;
        default:
            break;
        }
    }
    if (s.fe >= 0)
        disconnect(&s, "fuzz: end of input");

    /* Detached: the device holds nothing of the connection. */
    assert(fz.conn.fd < 0 && fz.conn.nfds == 0);
    assert(fz.dev.mem.n == 0 && !fz.dev.connected);
    for (unsigned i = 0; i < LWV_MAX_VQS; i++)
        assert(fz.dev.q[i].kickfd < 0 && fz.dev.q[i].callfd < 0 && fz.dev.q[i].errfd < 0);
    /* The well-behaved port was never harmed, and its RX ring is whole:
     * every chain taken was completed exactly once. */
    assert(!peer.dev.broken);
    assert(peer.dev.q[0].vq.last_avail == peer.dev.q[0].vq.used_idx);

    munmap(s.mem0, MEM0_SIZE);
    close(s.mem[0]);
    close(s.mem[1]);
    long fds_after = proc_fd_count(0);
    assert(fds_before >= 0 && fds_after == fds_before);
    return 0;
}
