/*
 * vuf.c - vhost-user frontend library (see vuf.h for the contract).
 *
 * Owns: one device's guest memory (memfd, one MAP_SHARED mapping), its
 * vhost-user socket, kick/call eventfds, the driver side of its split or
 * packed virtqueues and the packet buffers.  Written from the vhost-user
 * spec (QEMU docs/interop/vhost-user.rst) and virtio 1.2 sections 2.7
 * (split) and 2.8 (packed).
 * Must not: call exit(), print, install signal handlers, keep global state,
 * or trust anything the backend writes into shared memory or the socket.
 *
 * Guest memory layout (file offsets in the memfd):
 *   region "meta": a guard page, then per ring desc/avail/used (packed:
 *                  the descriptor ring, the driver and the device event
 *                  suppression structures), the indirect tables of the TX
 *                  rings, then the scratch area;
 *   region "data": per queue pair the TX buffers then the RX buffers.
 * With one region both lie in region 0 (GPA 0).  With two, meta is region
 * 0 at GPA 0 and data is region 1 at GPA 4 GiB (mmap_offset = meta size),
 * so rings and buffers always sit in different regions.
 *
 * Buffer ids: TX slot s is id s (split CHAIN2: head 2s), RX buffer i is id
 * i, so one byte per id (inflight[]) says who holds it.  Packed rings add
 * per id the number of ring descriptors its chain occupies (the driver's
 * used position skips that many when the device returns the id), a list
 * of heads whose flags are not written yet (enqueued, not published), and
 * with IN_ORDER the ids in the order they were made available.
 */
#define _GNU_SOURCE
#include "vuf.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define PAGE               4096ull
#define REGION1_GPA        0x100000000ull
#define DEF_RING           256u
#define DEF_BUF            2048u
#define DEF_SCRATCH        (256u * 1024u)
#define DEF_TIMEOUT_MS     3000
#define MAX_BUF            65536u
#define HDR_LEN            VIRTIO_NET_HDR_LEN

/* inflight[] states */
#define IF_FREE   0   /* the driver's */
#define IF_DEV    1   /* handed to the device */
#define IF_MARK   2   /* being consumed (catches an id used twice in a frame) */
#define IF_HAND   3   /* packed: pushed by vuf_packed_avail_push */
#define IF_PEND   4   /* packed: written, head flags not yet (unpublished) */

struct vuf_ring {
    int       setup;
    int       is_tx;
    int       packed;
    uint16_t  num;
    int       broken;
    /* shared memory */
    struct virtq_desc  *desc;
    struct virtq_avail *avail;
    struct virtq_used  *used;
    uint64_t  desc_off, avail_off, used_off;
    /* driver state */
    uint16_t  avail_idx;      /* next avail index we will write */
    uint16_t  published;      /* avail->idx as last published */
    uint16_t  last_used;      /* next used entry to consume */
    unsigned  ninflight;      /* heads handed to the device, not yet used */
    uint8_t  *inflight;       /* per descriptor id: 1 if handed out */
    int       kick_fd, call_fd;
    /* buffers */
    uint64_t  buf_off;        /* file offset of buffer 0 */
    unsigned  buf_size;
    /* TX only */
    unsigned  nslots;
    uint16_t *free_stack;
    unsigned  nfree;
    uint64_t  ind_off;        /* indirect tables: 2 descriptors per slot */
    /* RX only: scratch for one frame's used elements */
    uint16_t *tmp_ids;
    uint32_t *tmp_lens;
    /* packed only (desc/avail/used above stay NULL) */
    struct virtq_pdesc  *pdesc;
    struct virtq_pevent *drv_ev;   /* ours: interrupt requests */
    struct virtq_pevent *dev_ev;   /* the device's: kick requests */
    uint16_t  avail_pos, used_pos, pub_pos;   /* pub: avail pos at last publish */
    uint8_t   avail_wrap, used_wrap, pub_wrap;
    uint16_t  drv_flags;      /* last flags written to drv_ev */
    unsigned  ndesc_held;     /* ring descriptors held by buffers in flight */
    uint16_t *ndesc;          /* per id: descriptors its chain occupies */
    uint16_t *pend_pos, *pend_flags, *pend_id;   /* heads without flags yet */
    unsigned  npend;
    uint16_t *fifo;           /* IN_ORDER: ids in flight, oldest first */
    unsigned  fifo_head, fifo_n;
};

struct vuf {
    struct vuf_opts o;
    int       sock;
    int       memfd;
    uint8_t  *mem;
    uint64_t  mem_size;
    unsigned  nregions;
    struct vhost_user_mem_region region[2];
    uint64_t  scratch_off, scratch_size, scratch_used;
    uint64_t  dev_features, features, dev_protocol, protocol, queue_num;
    int       negotiated;
    int       in_order;       /* packed with VIRTIO_F_IN_ORDER acked */
    unsigned  nrings;
    enum vuf_tx_mode tx_mode;
    struct vuf_ring ring[VUF_MAX_RINGS];
    struct vuf_stats st;
    char      err[256];
};

/* ------------------------------------------------------------------ */

static void seterr(struct vuf *v, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void seterr(struct vuf *v, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->err, sizeof v->err, fmt, ap);
    va_end(ap);
}

/* Message of the last failed vuf_open/vuf_connect in this thread. */
static __thread char open_err[256];

const char *vuf_last_error(const struct vuf *v)
{
    return v ? v->err : open_err;
}

static uint64_t align_up(uint64_t x, uint64_t a)
{
    return (x + a - 1) & ~(a - 1);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int remaining_ms(int64_t deadline)
{
    int64_t r = deadline - now_ms();
    if (r < 0)
        return 0;
    return r > INT_MAX ? INT_MAX : (int)r;
}

static int is_pow2(unsigned x)
{
    return x && !(x & (x - 1));
}

static void *off_ptr(struct vuf *v, uint64_t off)
{
    return v->mem + off;
}

/* Guest physical address of a file offset. */
static uint64_t off_gpa(const struct vuf *v, uint64_t off)
{
    for (unsigned i = 0; i < v->nregions; i++) {
        const struct vhost_user_mem_region *r = &v->region[i];
        if (off >= r->mmap_offset && off - r->mmap_offset < r->memory_size)
            return r->guest_phys_addr + (off - r->mmap_offset);
    }
    return ~0ull;
}

static uint64_t off_uaddr(const struct vuf *v, uint64_t off)
{
    return (uint64_t)(uintptr_t)(v->mem + off);
}

/* ------------------------------------------------------------------ */
/* socket I/O                                                          */

static int send_all(struct vuf *v, const void *buf, size_t len,
                    const int *fds, unsigned nfds)
{
    const uint8_t *p = buf;
    size_t done = 0;
    int first = 1;

    if (nfds > 253)
        return -EINVAL;
    do {
        struct iovec iov = { .iov_base = (void *)(p + done), .iov_len = len - done };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
        union {
            char buf[CMSG_SPACE(253 * sizeof(int))];
            struct cmsghdr align;
        } cm;
        if (first && nfds) {
            memset(&cm, 0, sizeof cm);
            mh.msg_control = cm.buf;
            mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
            struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
            c->cmsg_level = SOL_SOCKET;
            c->cmsg_type = SCM_RIGHTS;
            c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
            memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
        }
        if (len == 0 && !(first && nfds))
            return 0;
        ssize_t n = sendmsg(v->sock, &mh, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            seterr(v, "sendmsg: %s", strerror(e));
            return -e;
        }
        first = 0;
        done += (size_t)n;
    } while (done < len);
    return 0;
}

/* Read exactly len bytes before deadline; fds that arrive are closed. */
static int recv_all(struct vuf *v, void *buf, size_t len, int64_t deadline)
{
    uint8_t *p = buf;
    size_t done = 0;

    while (done < len) {
        struct pollfd pfd = { .fd = v->sock, .events = POLLIN };
        int pr = poll(&pfd, 1, remaining_ms(deadline));
        if (pr < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (pr == 0)
            return -ETIMEDOUT;
        struct iovec iov = { .iov_base = p + done, .iov_len = len - done };
        union {
            char buf[CMSG_SPACE(16 * sizeof(int))];
            struct cmsghdr align;
        } cm;
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
                             .msg_control = cm.buf, .msg_controllen = sizeof cm.buf };
        ssize_t n = recvmsg(v->sock, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            return -errno;
        }
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
                size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                for (size_t i = 0; i < k; i++) {
                    int fd;
                    memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
                    close(fd);
                }
            }
        }
        if (n == 0)
            return -ECONNRESET;
        done += (size_t)n;
    }
    return 0;
}

int vuf_sock(const struct vuf *v)
{
    return v->sock;
}

int vuf_msg_send(struct vuf *v, uint32_t request, uint32_t flags,
                 const void *payload, uint32_t size, const int *fds, unsigned nfds)
{
    struct vhost_user_hdr h = { .request = request, .flags = flags, .size = size };
    size_t plen = payload ? size : 0;
    uint8_t *buf = malloc(sizeof h + plen);
    if (!buf)
        return -ENOMEM;
    memcpy(buf, &h, sizeof h);
    if (plen)
        memcpy(buf + sizeof h, payload, plen);
    int r = send_all(v, buf, sizeof h + plen, fds, nfds);
    free(buf);
    return r;
}

int vuf_write_raw(struct vuf *v, const void *bytes, size_t len,
                  const int *fds, unsigned nfds)
{
    return send_all(v, bytes, len, fds, nfds);
}

int vuf_msg_recv(struct vuf *v, struct vhost_user_msg *m, int timeout_ms)
{
    int64_t deadline = now_ms() + (timeout_ms < 0 ? 0 : timeout_ms);
    memset(m, 0, sizeof *m);
    int r = recv_all(v, &m->hdr, sizeof m->hdr, deadline);
    if (r)
        return r;
    if (m->hdr.size > VHOST_USER_PAYLOAD_MAX) {
        seterr(v, "reply to request %u claims %u payload bytes",
               m->hdr.request, m->hdr.size);
        return -EPROTO;
    }
    if (m->hdr.size) {
        r = recv_all(v, &m->payload, m->hdr.size, deadline);
        if (r == -ETIMEDOUT)
            seterr(v, "reply to request %u: payload truncated", m->hdr.request);
        if (r)
            return r == -ETIMEDOUT ? -EPROTO : r;
    }
    return 0;
}

int vuf_peer_closed(struct vuf *v, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        struct pollfd pfd = { .fd = v->sock, .events = POLLIN };
        int pr = poll(&pfd, 1, remaining_ms(deadline));
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            return 0;
        if (pfd.revents & (POLLHUP | POLLERR))
            return 1;
        char c[256];
        ssize_t n = recv(v->sock, c, sizeof c, MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            return 1;
        /* discard stray bytes (late replies) and keep watching */
    }
}

/* Read replies until one answers `request`; others are stale and dropped. */
static int recv_reply(struct vuf *v, uint32_t request, struct vhost_user_msg *m)
{
    int64_t deadline = now_ms() + v->o.timeout_ms;
    for (int tries = 0; tries < 64; tries++) {
        int r = vuf_msg_recv(v, m, remaining_ms(deadline));
        if (r) {
            if (r == -ETIMEDOUT)
                seterr(v, "no reply to request %u within %d ms", request, v->o.timeout_ms);
            else if (r == -ECONNRESET)
                seterr(v, "backend closed the connection (request %u)", request);
            return r;
        }
        if (m->hdr.request == request) {
            if (!(m->hdr.flags & VHOST_USER_REPLY_MASK) ||
                (m->hdr.flags & VHOST_USER_VERSION_MASK) != VHOST_USER_VERSION) {
                seterr(v, "reply to %u has bad flags 0x%x", request, m->hdr.flags);
                return -EPROTO;
            }
            return 0;
        }
    }
    seterr(v, "too many stray messages waiting for reply to %u", request);
    return -EPROTO;
}

int vuf_request(struct vuf *v, uint32_t request, const void *payload, uint32_t size,
                const int *fds, unsigned nfds, struct vhost_user_msg *reply)
{
    int r = vuf_msg_send(v, request, VHOST_USER_VERSION | VHOST_USER_NEED_REPLY_MASK,
                         payload, size, fds, nfds);
    if (r)
        return r;
    return recv_reply(v, request, reply);
}

/* Receives the reply to request, which must carry one u64 (a GET's value
 * or a REPLY_ACK status). */
static int recv_u64_reply(struct vuf *v, uint32_t request, uint64_t *val)
{
    struct vhost_user_msg m;
    int r = recv_reply(v, request, &m);
    if (r)
        return r;
    if (m.hdr.size != sizeof(uint64_t)) {
        seterr(v, "reply to %u has size %u, want 8", request, m.hdr.size);
        return -EPROTO;
    }
    *val = m.payload.u64;
    return 0;
}

/* A GET-type request whose reply is one u64. */
static int get_u64(struct vuf *v, uint32_t request, uint64_t *val)
{
    int r = vuf_msg_send(v, request, VHOST_USER_VERSION, NULL, 0, NULL, 0);
    if (r)
        return r;
    return recv_u64_reply(v, request, val);
}

/* A SET-type request; with REPLY_ACK it asks for, and checks, the ack. */
static int set_msg(struct vuf *v, uint32_t request, const void *payload, uint32_t size,
                   const int *fds, unsigned nfds)
{
    int ack = !!(v->protocol & (1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK));
    uint32_t flags = VHOST_USER_VERSION | (ack ? VHOST_USER_NEED_REPLY_MASK : 0);
    int r = vuf_msg_send(v, request, flags, payload, size, fds, nfds);
    if (r || !ack)
        return r;
    uint64_t status;
    r = recv_u64_reply(v, request, &status);
    if (r)
        return r;
    if (status != 0) {
        seterr(v, "backend refused request %u (ack %llu)", request,
               (unsigned long long)status);
        return -EREMOTEIO;
    }
    return 0;
}

static int set_u64(struct vuf *v, uint32_t request, uint64_t val, int fd)
{
    return set_msg(v, request, &val, sizeof val, fd >= 0 ? &fd : NULL, fd >= 0 ? 1 : 0);
}

static int set_state(struct vuf *v, uint32_t request, uint32_t index, uint32_t num)
{
    struct vhost_user_vring_state s = { .index = index, .num = num };
    return set_msg(v, request, &s, sizeof s, NULL, 0);
}

/* ------------------------------------------------------------------ */
/* lifecycle                                                           */

static int connect_sock(struct vuf *v)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(v->o.path) >= sizeof sa.sun_path) {
        seterr(v, "socket path too long");
        return -ENAMETOOLONG;
    }
    strcpy(sa.sun_path, v->o.path);
    int64_t deadline = now_ms() + v->o.timeout_ms;

    if (v->o.server) {
        int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (l < 0)
            return -errno;
        unlink(v->o.path);
        if (bind(l, (struct sockaddr *)&sa, sizeof sa) || listen(l, 1)) {
            int e = errno;
            seterr(v, "bind/listen %s: %s", v->o.path, strerror(e));
            close(l);
            return -e;
        }
        struct pollfd pfd = { .fd = l, .events = POLLIN };
        int pr;
        do
            pr = poll(&pfd, 1, remaining_ms(deadline));
        while (pr < 0 && errno == EINTR);
        if (pr <= 0) {
            seterr(v, "no backend connected to %s", v->o.path);
            close(l);
            unlink(v->o.path);
            return -ETIMEDOUT;
        }
        v->sock = accept4(l, NULL, NULL, SOCK_CLOEXEC);
        int e = errno;
        close(l);
        unlink(v->o.path);
        if (v->sock < 0) {
            seterr(v, "accept: %s", strerror(e));
            return -e;
        }
        return 0;
    }

    for (;;) {
        int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s < 0)
            return -errno;
        if (connect(s, (struct sockaddr *)&sa, sizeof sa) == 0) {
            v->sock = s;
            return 0;
        }
        int e = errno;
        close(s);
        if ((e != ENOENT && e != ECONNREFUSED && e != EAGAIN) || now_ms() >= deadline) {
            seterr(v, "connect %s: %s", v->o.path, strerror(e));
            return -e;
        }
        usleep(10000);
    }
}

static int layout(struct vuf *v)
{
    unsigned num = v->o.ring_size;
    uint64_t off = PAGE;              /* guard page at GPA 0 */

    for (unsigned r = 0; r < v->nrings; r++) {
        struct vuf_ring *q = &v->ring[r];
        q->num = (uint16_t)num;
        q->is_tx = r & 1;
        q->packed = v->o.packed;
        off = align_up(off, PAGE);
        q->desc_off = off;
        if (q->packed) {
            /* the two event structures on cache lines of their own: the
             * device reads ours and writes its own */
            off += virtq_pdesc_size(num);
            off = align_up(off, 64);
            q->avail_off = off;
            off += sizeof(struct virtq_pevent);
            off = align_up(off, 64);
            q->used_off = off;
            off += sizeof(struct virtq_pevent);
            continue;
        }
        off += virtq_desc_size(num);
        off = align_up(off, 64);
        q->avail_off = off;
        off += virtq_avail_size(num);
        off = align_up(off, PAGE);
        q->used_off = off;
        off += virtq_used_size(num);
    }
    for (unsigned r = 1; r < v->nrings; r += 2) {
        struct vuf_ring *q = &v->ring[r];
        unsigned usable = num > v->o.tx_reserve ? num - v->o.tx_reserve : 0;
        q->nslots = v->tx_mode == VUF_TX_CHAIN2 ? usable / 2 : usable;
        if (q->nslots == 0) {
            seterr(v, "tx_reserve leaves no TX descriptors");
            return -EINVAL;
        }
        off = align_up(off, 64);
        q->ind_off = off;
        /* split and packed table entries are both 16 bytes */
        off += (uint64_t)q->nslots * 2 * sizeof(struct virtq_desc);
    }
    off = align_up(off, PAGE);
    v->scratch_off = off;
    v->scratch_size = v->o.scratch_size;
    off = align_up(off + v->scratch_size, PAGE);
    uint64_t meta = off;

    for (unsigned r = 0; r < v->nrings; r++) {
        struct vuf_ring *q = &v->ring[r];
        q->buf_size = q->is_tx ? v->o.tx_buf_size : v->o.rx_buf_size;
        off = align_up(off, 64);
        q->buf_off = off;
        off += (uint64_t)num * q->buf_size;
    }
    off = align_up(off, PAGE);
    v->mem_size = off;

    v->region[0].guest_phys_addr = 0;
    v->region[0].mmap_offset = 0;
    if (v->nregions == 2) {
        v->region[0].memory_size = meta;
        v->region[1].guest_phys_addr = REGION1_GPA;
        v->region[1].mmap_offset = meta;
        v->region[1].memory_size = off - meta;
    } else {
        v->region[0].memory_size = off;
    }
    return 0;
}

int vuf_open(struct vuf **out, const struct vuf_opts *o)
{
    *out = NULL;
    if (!o || !o->path)
        return -EINVAL;
    struct vuf *v = calloc(1, sizeof *v);
    if (!v)
        return -ENOMEM;
    v->sock = -1;
    v->memfd = -1;
    for (unsigned r = 0; r < VUF_MAX_RINGS; r++)
        v->ring[r].kick_fd = v->ring[r].call_fd = -1;
    v->o = *o;
    if (!v->o.queue_pairs) v->o.queue_pairs = 1;
    if (!v->o.ring_size) v->o.ring_size = DEF_RING;
    if (!v->o.nregions) v->o.nregions = 1;
    if (!v->o.rx_buf_size) v->o.rx_buf_size = DEF_BUF;
    if (!v->o.tx_buf_size) v->o.tx_buf_size = DEF_BUF;
    if (!v->o.timeout_ms) v->o.timeout_ms = DEF_TIMEOUT_MS;
    if (!v->o.scratch_size) v->o.scratch_size = DEF_SCRATCH;
    if (!v->o.protocol) v->o.protocol = VUF_DEFAULT_PROTOCOL;
    if (!v->o.features)
        v->o.features = VUF_DEFAULT_FEATURES |
            (v->o.queue_pairs > 1 ? 1ull << VIRTIO_NET_F_MQ : 0);

    int r = -EINVAL;
    /* a packed ring may have any size; a split one is a power of two */
    if (v->o.queue_pairs > VUF_MAX_QP || (!v->o.packed && !is_pow2(v->o.ring_size)) ||
        v->o.ring_size > VIRTQ_MAX_SIZE || v->o.nregions > 2 ||
        v->o.rx_buf_size < HDR_LEN + 1 || v->o.rx_buf_size > MAX_BUF ||
        v->o.tx_buf_size < HDR_LEN + 1 || v->o.tx_buf_size > MAX_BUF ||
        v->o.tx_mode > VUF_TX_INDIRECT) {
        seterr(v, "invalid options");
        goto fail;
    }
    v->nregions = v->o.nregions;
    v->nrings = 2 * v->o.queue_pairs;
    v->tx_mode = v->o.tx_mode;
    if ((r = layout(v)))
        goto fail;

    v->memfd = memfd_create("vuf-guest", MFD_CLOEXEC);
    if (v->memfd < 0 || ftruncate(v->memfd, (off_t)v->mem_size)) {
        r = -errno;
        seterr(v, "memfd: %s", strerror(errno));
        goto fail;
    }
    v->mem = mmap(NULL, v->mem_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->memfd, 0);
    if (v->mem == MAP_FAILED) {
        v->mem = NULL;
        r = -errno;
        seterr(v, "mmap: %s", strerror(errno));
        goto fail;
    }
    for (unsigned i = 0; i < v->nregions; i++)
        v->region[i].userspace_addr = off_uaddr(v, v->region[i].mmap_offset);

    for (unsigned i = 0; i < v->nrings; i++) {
        struct vuf_ring *q = &v->ring[i];
        if (q->packed) {
            q->pdesc = off_ptr(v, q->desc_off);
            q->drv_ev = off_ptr(v, q->avail_off);
            q->dev_ev = off_ptr(v, q->used_off);
            q->ndesc = calloc(q->num, sizeof(uint16_t));
            q->pend_pos = calloc(q->num, sizeof(uint16_t));
            q->pend_flags = calloc(q->num, sizeof(uint16_t));
            q->pend_id = calloc(q->num, sizeof(uint16_t));
            q->fifo = calloc(q->num, sizeof(uint16_t));
            if (!q->ndesc || !q->pend_pos || !q->pend_flags || !q->pend_id || !q->fifo) {
                r = -ENOMEM;
                goto fail;
            }
        } else {
            q->desc = off_ptr(v, q->desc_off);
            q->avail = off_ptr(v, q->avail_off);
            q->used = off_ptr(v, q->used_off);
        }
        q->inflight = calloc(q->num, 1);
        if (q->is_tx) {
            q->free_stack = calloc(q->nslots, sizeof(uint16_t));
        } else {
            q->tmp_ids = calloc(q->num, sizeof(uint16_t));
            q->tmp_lens = calloc(q->num, sizeof(uint32_t));
        }
        if (!q->inflight || (q->is_tx && !q->free_stack) ||
            (!q->is_tx && (!q->tmp_ids || !q->tmp_lens))) {
            r = -ENOMEM;
            goto fail;
        }
    }
    if ((r = connect_sock(v)))
        goto fail;
    *out = v;
    return 0;
fail:
    snprintf(open_err, sizeof open_err, "%s", v->err[0] ? v->err : strerror(-r));
    vuf_close(v);
    return r;
}

int vuf_negotiate(struct vuf *v)
{
    int r;
    uint64_t f;

    if ((r = get_u64(v, VHOST_USER_GET_FEATURES, &f)))
        return r;
    v->dev_features = f;
    if (!(f & (1ull << VIRTIO_F_VERSION_1))) {
        seterr(v, "backend does not offer VIRTIO_F_VERSION_1 (features 0x%llx)",
               (unsigned long long)f);
        return -ENOTSUP;
    }
    if (v->o.packed && !(f & (1ull << VIRTIO_F_RING_PACKED))) {
        seterr(v, "packed rings wanted but the backend does not offer VIRTIO_F_RING_PACKED "
               "(features 0x%llx)", (unsigned long long)f);
        return -ENOTSUP;
    }
    if ((r = set_msg(v, VHOST_USER_SET_OWNER, NULL, 0, NULL, 0)))
        return r;

    v->protocol = 0;
    int want_proto = !(v->o.protocol & VUF_PROTOCOL_NONE);
    if (want_proto && (f & (1ull << VHOST_USER_F_PROTOCOL_FEATURES))) {
        uint64_t pf;
        if ((r = get_u64(v, VHOST_USER_GET_PROTOCOL_FEATURES, &pf)))
            return r;
        v->dev_protocol = pf;
        uint64_t acked = pf & v->o.protocol;
        if ((r = set_u64(v, VHOST_USER_SET_PROTOCOL_FEATURES, acked, -1)))
            return r;
        v->protocol = acked;   /* REPLY_ACK applies from the next message */
        if (acked & (1ull << VHOST_USER_PROTOCOL_F_MQ)) {
            if ((r = get_u64(v, VHOST_USER_GET_QUEUE_NUM, &v->queue_num)))
                return r;
            if (v->o.queue_pairs > v->queue_num) {
                seterr(v, "backend supports %llu queue pairs, %u wanted",
                       (unsigned long long)v->queue_num, v->o.queue_pairs);
                return -ENOTSUP;
            }
        }
    }
    if (v->o.queue_pairs > 1 && !(v->protocol & (1ull << VHOST_USER_PROTOCOL_F_MQ))) {
        seterr(v, "multiqueue wanted but VHOST_USER_PROTOCOL_F_MQ not negotiated");
        return -ENOTSUP;
    }

    v->features = f & v->o.features;
    v->features |= 1ull << VIRTIO_F_VERSION_1;
    /* The layout is opts.packed's alone.  IN_ORDER only with packed rings:
     * the split driver does not implement its batched used entries. */
    if (v->o.packed)
        v->features |= 1ull << VIRTIO_F_RING_PACKED;
    else
        v->features &= ~(1ull << VIRTIO_F_RING_PACKED | 1ull << VIRTIO_F_IN_ORDER);
    v->in_order = !!(v->features & (1ull << VIRTIO_F_IN_ORDER));
    if (v->protocol || (want_proto && (f & (1ull << VHOST_USER_F_PROTOCOL_FEATURES))))
        v->features |= 1ull << VHOST_USER_F_PROTOCOL_FEATURES;
    if (v->tx_mode == VUF_TX_INDIRECT &&
        !(v->features & (1ull << VIRTIO_RING_F_INDIRECT_DESC)))
        v->tx_mode = VUF_TX_DIRECT;
    if ((r = set_u64(v, VHOST_USER_SET_FEATURES, v->features, -1)))
        return r;
    v->negotiated = 1;
    return 0;
}

int vuf_set_mem_table(struct vuf *v)
{
    struct vhost_user_memory m;
    int fds[2] = { v->memfd, v->memfd };
    memset(&m, 0, sizeof m);
    m.nregions = v->nregions;
    for (unsigned i = 0; i < v->nregions; i++)
        m.regions[i] = v->region[i];
    return set_msg(v, VHOST_USER_SET_MEM_TABLE, &m,
                   (uint32_t)(8 + v->nregions * sizeof(struct vhost_user_mem_region)),
                   fds, v->nregions);
}

/* ---- packed ring helpers (virtio 1.2, 2.8) ---- */

/* Moves a ring position n (<= num) descriptors on, flipping the wrap
 * counter when it passes the end. */
static void padvance(uint16_t *pos, uint8_t *wrap, unsigned n, uint16_t num)
{
    unsigned p = *pos + n;
    if (p >= num) {
        p -= num;
        *wrap ^= 1;
    }
    *pos = (uint16_t)p;
}

/* A descriptor's flags made available under wrap counter w: AVAIL = w,
 * USED = !w. */
static uint16_t pavail_flags(uint16_t flags, int w)
{
    flags &= (uint16_t)~(VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_USED);
    return (uint16_t)(flags | (w ? VIRTQ_DESC_F_AVAIL : VIRTQ_DESC_F_USED));
}

/* Writes one descriptor at the avail position and advances.  A chain's
 * head keeps its flags in the pending list until the next publish, so an
 * enqueued buffer stays invisible (as an unpublished split avail entry). */
static void pdesc_put(struct vuf_ring *q, uint64_t addr, uint32_t len, uint16_t id,
                      uint16_t flags, int head)
{
    struct virtq_pdesc *d = &q->pdesc[q->avail_pos];
    uint16_t f = pavail_flags(flags, q->avail_wrap);
    d->addr = addr;
    d->len = len;
    d->id = id;
    if (head) {
        q->pend_pos[q->npend] = q->avail_pos;
        q->pend_flags[q->npend] = f;
        q->pend_id[q->npend] = id;
        q->npend++;
    } else {
        __atomic_store_n(&d->flags, f, __ATOMIC_RELAXED);
    }
    padvance(&q->avail_pos, &q->avail_wrap, 1, q->num);
}

/* Makes the pending heads available: the last one first and the first
 * one last, each a release store, so the whole batch appears at once to a
 * device that stops at the first descriptor not yet available. */
static void pflush(struct vuf_ring *q)
{
    for (unsigned k = 0; k < q->npend; k++)
        if (q->inflight[q->pend_id[k]] == IF_PEND)
            q->inflight[q->pend_id[k]] = IF_DEV;
    for (unsigned k = q->npend; k-- > 0;)
        __atomic_store_n(&q->pdesc[q->pend_pos[k]].flags, q->pend_flags[k], __ATOMIC_RELEASE);
    q->npend = 0;
}

/* Records buffer id (ndesc descriptors) as in flight in state st. */
static void ptrack(struct vuf *v, struct vuf_ring *q, uint16_t id, unsigned ndesc, uint8_t st)
{
    q->inflight[id] = st;
    q->ndesc[id] = (uint16_t)ndesc;
    q->ninflight++;
    q->ndesc_held += ndesc;
    if (v->in_order)
        q->fifo[(q->fifo_head + q->fifo_n++) % q->num] = id;
}

/* 1 if the device has marked the descriptor at pos used under wrap
 * counter w (AVAIL == USED == w), with its id and len read after the flags
 * (acquire); 0 if not yet. */
static int pused_at(const struct vuf_ring *q, uint16_t pos, int w, uint16_t *id, uint32_t *len)
{
    struct virtq_pdesc *d = &q->pdesc[pos];
    uint16_t f = __atomic_load_n(&d->flags, __ATOMIC_ACQUIRE);
    if (!(f & VIRTQ_DESC_F_AVAIL) != !w || !(f & VIRTQ_DESC_F_USED) != !w)
        return 0;
    *id = __atomic_load_n(&d->id, __ATOMIC_RELAXED);
    *len = __atomic_load_n(&d->len, __ATOMIC_RELAXED);
    return 1;
}

static int pused_ready(const struct vuf_ring *q)
{
    uint16_t id;
    uint32_t len;
    return pused_at(q, q->used_pos, q->used_wrap, &id, &len);
}

/* Position p under wrap counter w as one index in [0, 2 num): it grows
 * by one per descriptor, modulo 2 num. */
static uint32_t plinear(uint16_t p, int w, uint16_t num)
{
    return p + (w ? 0u : num);
}

/* After descriptors [old, avail) were made available: does the device's
 * event suppression structure ask for a kick? */
static int pwants_kick(const struct vuf *v, const struct vuf_ring *q, uint16_t old_pos,
                       int old_wrap)
{
    uint16_t flags = __atomic_load_n(&q->dev_ev->flags, __ATOMIC_ACQUIRE);
    if (flags == VIRTQ_EVENT_F_DISABLE)
        return 0;
    /* ENABLE, and whatever we cannot interpret: a spare kick is harmless */
    if (flags != VIRTQ_EVENT_F_DESC || !(v->features & (1ull << VIRTIO_RING_F_EVENT_IDX)))
        return 1;
    uint16_t ow = __atomic_load_n(&q->dev_ev->off_wrap, __ATOMIC_RELAXED);
    uint16_t off = ow & 0x7fff;
    if (off >= q->num)
        return 1;
    uint32_t n2 = 2u * q->num, lold = plinear(old_pos, old_wrap, q->num);
    uint32_t added = (plinear(q->avail_pos, q->avail_wrap, q->num) + n2 - lold) % n2;
    uint32_t ev = plinear(off, ow >> 15, q->num);
    return (ev + n2 - lold) % n2 < added;
}

static void ring_arm(struct vuf *v, struct vuf_ring *q, int want)
{
    if (q->packed) {
        uint16_t flags = VIRTQ_EVENT_F_DISABLE;
        if (want && (v->features & (1ull << VIRTIO_RING_F_EVENT_IDX))) {
            /* an interrupt when the device uses the descriptor we read next */
            __atomic_store_n(&q->drv_ev->off_wrap,
                             (uint16_t)(q->used_pos | (unsigned)q->used_wrap << 15),
                             __ATOMIC_RELAXED);
            flags = VIRTQ_EVENT_F_DESC;
        } else if (want) {
            flags = VIRTQ_EVENT_F_ENABLE;
        }
        /* unchanged ENABLE/DISABLE are not rewritten: the device reads
         * this line on every completion */
        if (flags != q->drv_flags || flags == VIRTQ_EVENT_F_DESC)
            __atomic_store_n(&q->drv_ev->flags, flags, __ATOMIC_RELEASE);
        q->drv_flags = flags;
        return;
    }
    uint16_t *used_event = &q->avail->ring[q->num];
    if (v->features & (1ull << VIRTIO_RING_F_EVENT_IDX)) {
        __atomic_store_n(used_event, want ? q->last_used : (uint16_t)(q->last_used - 1),
                         __ATOMIC_RELEASE);
    } else {
        __atomic_store_n(&q->avail->flags, want ? 0 : VIRTQ_AVAIL_F_NO_INTERRUPT,
                         __ATOMIC_RELEASE);
    }
}

static int ring_wants_irq(const struct vuf *v, const struct vuf_ring *q)
{
    return q->is_tx ? v->o.tx_irq : !v->o.rx_no_irq;
}

static void rx_post(struct vuf *v, struct vuf_ring *q, uint16_t id)
{
    uint64_t off = q->buf_off + (uint64_t)id * q->buf_size;
    if (q->packed) {
        pdesc_put(q, off_gpa(v, off), q->buf_size, id, VIRTQ_DESC_F_WRITE, 1);
        ptrack(v, q, id, 1, IF_PEND);
        return;
    }
    q->desc[id].addr = off_gpa(v, off);
    q->desc[id].len = q->buf_size;
    q->desc[id].flags = VIRTQ_DESC_F_WRITE;
    q->desc[id].next = 0;
    q->avail->ring[q->avail_idx & (q->num - 1)] = id;
    q->avail_idx++;
    q->inflight[id] = 1;
    q->ninflight++;
}

int vuf_setup_ring(struct vuf *v, unsigned ring)
{
    if (ring >= v->nrings)
        return -EINVAL;
    struct vuf_ring *q = &v->ring[ring];
    int r;

    memset(q->inflight, 0, q->num);
    q->avail_idx = q->published = q->last_used = 0;
    q->ninflight = 0;
    q->broken = 0;
    if (q->packed) {
        memset(q->pdesc, 0, virtq_pdesc_size(q->num));
        memset(q->drv_ev, 0, sizeof *q->drv_ev);
        memset(q->dev_ev, 0, sizeof *q->dev_ev);
        /* both wrap counters start at 1 (virtio 1.2, 2.8.1) */
        q->avail_pos = q->used_pos = q->pub_pos = 0;
        q->avail_wrap = q->used_wrap = q->pub_wrap = 1;
        q->drv_flags = 0xffff;   /* forces the first write */
        q->ndesc_held = 0;
        q->npend = 0;
        q->fifo_head = q->fifo_n = 0;
    } else {
        memset(q->desc, 0, virtq_desc_size(q->num));
        memset(q->avail, 0, virtq_avail_size(q->num));
        memset(q->used, 0, virtq_used_size(q->num));
    }
    if (q->is_tx) {
        q->nfree = q->nslots;
        for (unsigned i = 0; i < q->nslots; i++)
            q->free_stack[i] = (uint16_t)(q->nslots - 1 - i);  /* pop 0 first */
    } else {
        for (unsigned i = 0; i < q->num; i++)
            rx_post(v, q, (uint16_t)i);
        if (q->packed) {
            pflush(q);
            q->pub_pos = q->avail_pos;
            q->pub_wrap = q->avail_wrap;
        } else {
            __atomic_store_n(&q->avail->idx, q->avail_idx, __ATOMIC_RELEASE);
            q->published = q->avail_idx;
        }
    }
    ring_arm(v, q, ring_wants_irq(v, q));

    if (q->kick_fd < 0)
        q->kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (q->call_fd < 0)
        q->call_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (q->kick_fd < 0 || q->call_fd < 0)
        return -errno;

    if ((r = set_state(v, VHOST_USER_SET_VRING_NUM, ring, q->num)))
        return r;
    /* packed: next avail 0 and next used 0, both wrap counters 1
     * (0x80008000, what QEMU sends) */
    uint32_t base = q->packed ? virtq_packed_state(0, 1, 0, 1) : 0;
    if ((r = set_state(v, VHOST_USER_SET_VRING_BASE, ring, base)))
        return r;
    struct vhost_user_vring_addr a = {
        .index = ring, .flags = 0,
        .desc_user_addr = off_uaddr(v, q->desc_off),
        .used_user_addr = off_uaddr(v, q->used_off),
        .avail_user_addr = off_uaddr(v, q->avail_off),
        .log_guest_addr = 0,
    };
    if ((r = set_msg(v, VHOST_USER_SET_VRING_ADDR, &a, sizeof a, NULL, 0)))
        return r;
    if ((r = set_u64(v, VHOST_USER_SET_VRING_KICK, ring, q->kick_fd)))
        return r;
    if ((r = set_u64(v, VHOST_USER_SET_VRING_CALL, ring, q->call_fd)))
        return r;
    q->setup = 1;
    return 0;
}

int vuf_resume_ring(struct vuf *v, unsigned ring, uint32_t base)
{
    if (ring >= v->nrings)
        return -EINVAL;
    struct vuf_ring *q = &v->ring[ring];
    int r;
    if ((r = set_state(v, VHOST_USER_SET_VRING_BASE, ring, base)))
        return r;
    if ((r = set_u64(v, VHOST_USER_SET_VRING_KICK, ring, q->kick_fd)))
        return r;
    q->setup = 1;
    return 0;
}

int vuf_enable_ring(struct vuf *v, unsigned ring, int enable)
{
    if (ring >= v->nrings)
        return -EINVAL;
    if (!(v->features & (1ull << VHOST_USER_F_PROTOCOL_FEATURES)))
        return 0;   /* rings start enabled */
    return set_state(v, VHOST_USER_SET_VRING_ENABLE, ring, enable ? 1 : 0);
}

static int set_status(struct vuf *v, uint8_t status)
{
    if (!(v->protocol & (1ull << VHOST_USER_PROTOCOL_F_STATUS)))
        return 0;
    return set_u64(v, VHOST_USER_SET_STATUS, status, -1);
}

int vuf_start(struct vuf *v)
{
    int r;
    const uint8_t base = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
                         VIRTIO_STATUS_FEATURES_OK;
    if ((r = vuf_negotiate(v)))
        return r;
    if ((r = set_status(v, base)))
        return r;
    if ((r = vuf_set_mem_table(v)))
        return r;
    for (unsigned i = 0; i < v->nrings; i++)
        if ((r = vuf_setup_ring(v, i)))
            return r;
    for (unsigned i = 0; i < v->nrings; i++)
        if ((r = vuf_enable_ring(v, i, 1)))
            return r;
    if ((r = set_status(v, base | VIRTIO_STATUS_DRIVER_OK)))
        return r;
    /* a kick starts each ring (spec: "Ring states") */
    for (unsigned i = 0; i < v->nrings; i++)
        vuf_kick(v, i);
    return 0;
}

int vuf_connect(struct vuf **out, const struct vuf_opts *o)
{
    struct vuf *v;
    int r = vuf_open(&v, o);
    if (r)
        return r;
    if ((r = vuf_start(v))) {
        snprintf(open_err, sizeof open_err, "%s", v->err[0] ? v->err : strerror(-r));
        vuf_close(v);
        return r;
    }
    *out = v;
    return 0;
}

int vuf_get_vring_base(struct vuf *v, unsigned ring, uint32_t *base)
{
    struct vhost_user_vring_state s = { .index = ring, .num = 0 };
    struct vhost_user_msg m;
    int r = vuf_msg_send(v, VHOST_USER_GET_VRING_BASE, VHOST_USER_VERSION,
                         &s, sizeof s, NULL, 0);
    if (r || (r = recv_reply(v, VHOST_USER_GET_VRING_BASE, &m)))
        return r;
    if (m.hdr.size != sizeof s) {
        seterr(v, "GET_VRING_BASE reply has size %u", m.hdr.size);
        return -EPROTO;
    }
    *base = m.payload.state.num;
    if (ring < v->nrings)
        v->ring[ring].setup = 0;
    return 0;
}

int vuf_get_status(struct vuf *v, uint8_t *status)
{
    uint64_t s;
    if (!(v->protocol & (1ull << VHOST_USER_PROTOCOL_F_STATUS)))
        return -ENOTSUP;
    int r = get_u64(v, VHOST_USER_GET_STATUS, &s);
    if (!r)
        *status = (uint8_t)s;
    return r;
}

void vuf_close(struct vuf *v)
{
    if (!v)
        return;
    if (v->sock >= 0)
        close(v->sock);
    for (unsigned i = 0; i < VUF_MAX_RINGS; i++) {
        struct vuf_ring *q = &v->ring[i];
        if (q->kick_fd >= 0)
            close(q->kick_fd);
        if (q->call_fd >= 0)
            close(q->call_fd);
        free(q->inflight);
        free(q->free_stack);
        free(q->tmp_ids);
        free(q->tmp_lens);
        free(q->ndesc);
        free(q->pend_pos);
        free(q->pend_flags);
        free(q->pend_id);
        free(q->fifo);
    }
    if (v->mem)
        munmap(v->mem, v->mem_size);
    if (v->memfd >= 0)
        close(v->memfd);
    free(v);
}

/* ------------------------------------------------------------------ */
/* info                                                                */

uint64_t vuf_device_features(const struct vuf *v) { return v->dev_features; }
uint64_t vuf_features(const struct vuf *v) { return v->features; }
uint64_t vuf_device_protocol(const struct vuf *v) { return v->dev_protocol; }
uint64_t vuf_protocol(const struct vuf *v) { return v->protocol; }
uint64_t vuf_backend_queue_num(const struct vuf *v) { return v->queue_num; }
unsigned vuf_queue_pairs(const struct vuf *v) { return v->o.queue_pairs; }
unsigned vuf_ring_size(const struct vuf *v) { return v->o.ring_size; }
int vuf_is_packed(const struct vuf *v) { return !!v->o.packed; }
int vuf_has_feature(const struct vuf *v, unsigned bit)
{
    return bit < 64 && (v->features >> bit) & 1;
}
int vuf_has_protocol(const struct vuf *v, unsigned bit)
{
    return bit < 64 && (v->protocol >> bit) & 1;
}
void vuf_get_stats(const struct vuf *v, struct vuf_stats *s) { *s = v->st; }
int vuf_ring_broken(const struct vuf *v, unsigned ring)
{
    return ring < v->nrings && v->ring[ring].broken;
}

/* ------------------------------------------------------------------ */
/* datapath                                                            */

static struct vuf_ring *get_ring(struct vuf *v, unsigned ring, int *err)
{
    if (ring >= v->nrings) {
        *err = -EINVAL;
        return NULL;
    }
    struct vuf_ring *q = &v->ring[ring];
    if (!q->setup) {
        *err = -ENOTCONN;
        return NULL;
    }
    if (q->broken) {
        *err = -EPROTO;
        return NULL;
    }
    return q;
}

static int ring_broken(struct vuf *v, struct vuf_ring *q, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int ring_broken(struct vuf *v, struct vuf_ring *q, const char *fmt, ...)
{
    va_list ap;
    int n = snprintf(v->err, sizeof v->err, "ring %u: ", (unsigned)(q - v->ring));
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof v->err)
        vsnprintf(v->err + n, sizeof v->err - (size_t)n, fmt, ap);
    va_end(ap);
    q->broken = 1;
    return -EPROTO;
}

/* How many used entries the backend has published since we last looked,
 * into *n (acquire: their contents are visible).  A count beyond the
 * buffers we have in flight breaks the ring. */
static int used_new(struct vuf *v, struct vuf_ring *q, uint16_t *n)
{
    uint16_t uidx = __atomic_load_n(&q->used->idx, __ATOMIC_ACQUIRE);
    *n = (uint16_t)(uidx - q->last_used);
    if (*n > q->ninflight)
        return ring_broken(v, q, "used->idx moved %u->%u with %u buffers in flight",
                           q->last_used, uidx, q->ninflight);
    return 0;
}

static int do_kick(struct vuf *v, struct vuf_ring *q)
{
    uint64_t one = 1;
    if (write(q->kick_fd, &one, sizeof one) != sizeof one)
        return -errno;
    v->st.kicks++;
    return 1;
}

int vuf_kick(struct vuf *v, unsigned ring)
{
    if (ring >= v->nrings || v->ring[ring].kick_fd < 0)
        return -EINVAL;
    int r = do_kick(v, &v->ring[ring]);
    return r < 0 ? r : 0;
}

/* Packed: make the pending heads available; kick if the device asks. */
static int ring_publish_packed(struct vuf *v, struct vuf_ring *q)
{
    if (q->npend == 0)
        return 0;
    uint16_t old_pos = q->pub_pos;
    int old_wrap = q->pub_wrap;
    pflush(q);
    q->pub_pos = q->avail_pos;
    q->pub_wrap = q->avail_wrap;
    /* our flags before the device's event structure (as for split) */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (!pwants_kick(v, q, old_pos, old_wrap)) {
        v->st.kicks_suppressed++;
        return 0;
    }
    return do_kick(v, q);
}

/* Publish avail->idx; kick when the device asked for it. */
static int ring_publish(struct vuf *v, struct vuf_ring *q)
{
    if (q->packed)
        return ring_publish_packed(v, q);
    uint16_t old = q->published, now = q->avail_idx;
    if (old == now)
        return 0;
    __atomic_store_n(&q->avail->idx, now, __ATOMIC_RELEASE);
    q->published = now;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    int kick;
    if (v->features & (1ull << VIRTIO_RING_F_EVENT_IDX)) {
        uint16_t ev = __atomic_load_n((uint16_t *)&q->used->ring[q->num], __ATOMIC_ACQUIRE);
        kick = virtq_need_event(ev, now, old);
    } else {
        kick = !(__atomic_load_n(&q->used->flags, __ATOMIC_ACQUIRE) & VIRTQ_USED_F_NO_NOTIFY);
    }
    if (!kick) {
        v->st.kicks_suppressed++;
        return 0;
    }
    return do_kick(v, q);
}

/* Packed: retires buffer id (in flight): the used position skips the
 * descriptors its chain occupied. */
static void pretire(struct vuf *v, struct vuf_ring *q, uint16_t id)
{
    padvance(&q->used_pos, &q->used_wrap, q->ndesc[id], q->num);
    q->ndesc_held -= q->ndesc[id];
    q->ninflight--;
    if (q->is_tx && q->inflight[id] == IF_DEV) {
        q->free_stack[q->nfree++] = id;
        v->st.tx_done++;
    }
    q->inflight[id] = IF_FREE;
}

static int tx_reclaim_packed(struct vuf *v, struct vuf_ring *q)
{
    int n = 0;
    uint16_t id;
    uint32_t len;
    while (pused_at(q, q->used_pos, q->used_wrap, &id, &len)) {
        if (q->ninflight == 0)
            return ring_broken(v, q, "used descriptor at %u with nothing in flight", q->used_pos);
        if (id >= q->num || (q->inflight[id] != IF_DEV && q->inflight[id] != IF_HAND))
            return ring_broken(v, q, "used id %u not in flight", id);
        if (len > q->buf_size)
            return ring_broken(v, q, "used len %u > buffer %u", len, q->buf_size);
        if (v->in_order) {
            /* one used descriptor may stand for every earlier buffer */
            uint16_t first;
            do {
                first = q->fifo[q->fifo_head];
                q->fifo_head = (q->fifo_head + 1) % q->num;
                q->fifo_n--;
                pretire(v, q, first);
                n++;
            } while (first != id);
        } else {
            pretire(v, q, id);
            n++;
        }
    }
    return n;
}

int vuf_tx_reclaim(struct vuf *v, unsigned qp)
{
    int err;
    struct vuf_ring *q = get_ring(v, 2 * qp + 1, &err);
    if (!q)
        return err;
    if (q->packed) {
        int n = tx_reclaim_packed(v, q);
        if (n >= 0)
            ring_arm(v, q, ring_wants_irq(v, q));
        return n;
    }
    uint16_t n;
    if (used_new(v, q, &n) < 0)
        return -EPROTO;
    for (uint16_t k = 0; k < n; k++) {
        struct virtq_used_elem e;
        memcpy(&e, (const void *)&q->used->ring[q->last_used & (q->num - 1)], sizeof e);
        unsigned slot;
        if (v->tx_mode == VUF_TX_CHAIN2) {
            if (e.id & 1)
                return ring_broken(v, q, "used id %u is not a chain head", e.id);
            slot = e.id / 2;
        } else {
            slot = e.id;
        }
        if (e.id >= q->num || slot >= q->nslots || !q->inflight[e.id])
            return ring_broken(v, q, "used id %u not in flight", e.id);
        if (e.len > q->buf_size)
            return ring_broken(v, q, "used len %u > buffer %u", e.len, q->buf_size);
        q->inflight[e.id] = 0;
        q->ninflight--;
        q->free_stack[q->nfree++] = (uint16_t)slot;
        q->last_used++;
        v->st.tx_done++;
    }
    ring_arm(v, q, ring_wants_irq(v, q));
    return n;
}

unsigned vuf_tx_inflight(const struct vuf *v, unsigned qp)
{
    unsigned r = 2 * qp + 1;
    return r < v->nrings ? v->ring[r].ninflight : 0;
}

int vuf_tx_enqueue(struct vuf *v, unsigned qp, const void *frame, size_t len,
                   const struct virtio_net_hdr *hdr)
{
    int err;
    struct vuf_ring *q = get_ring(v, 2 * qp + 1, &err);
    if (!q)
        return err;
    if (len == 0 || len > q->buf_size - HDR_LEN)
        return -EMSGSIZE;
    /* packed: hand-pushed chains may hold ring space beyond the slots */
    unsigned need = v->tx_mode == VUF_TX_CHAIN2 ? 2 : 1;
    if (q->nfree == 0 || (q->packed && q->ndesc_held + need > q->num)) {
        int r = vuf_tx_reclaim(v, qp);
        if (r < 0)
            return r;
        if (q->nfree == 0 || (q->packed && q->ndesc_held + need > q->num)) {
            v->st.tx_full++;
            return -EAGAIN;
        }
    }
    unsigned slot = q->free_stack[--q->nfree];
    uint64_t off = q->buf_off + (uint64_t)slot * q->buf_size;
    uint8_t *buf = off_ptr(v, off);
    uint64_t gpa = off_gpa(v, off);
    struct virtio_net_hdr h;
    if (hdr)
        h = *hdr;
    else
        memset(&h, 0, sizeof h);
    memcpy(buf, &h, HDR_LEN);
    memcpy(buf + HDR_LEN, frame, len);

    if (q->packed) {
        /* id = slot in every descriptor of the chain */
        uint16_t id = (uint16_t)slot;
        switch (v->tx_mode) {
        case VUF_TX_CHAIN2:
            pdesc_put(q, gpa, HDR_LEN, id, VIRTQ_DESC_F_NEXT, 1);
            pdesc_put(q, gpa + HDR_LEN, (uint32_t)len, id, 0, 0);
            break;
        case VUF_TX_INDIRECT: {
            /* a packed indirect table is read in sequence: no NEXT */
            uint64_t toff = q->ind_off + (uint64_t)slot * 2 * sizeof(struct virtq_pdesc);
            struct virtq_pdesc *t = off_ptr(v, toff);
            t[0] = (struct virtq_pdesc){ gpa, HDR_LEN, 0, 0 };
            t[1] = (struct virtq_pdesc){ gpa + HDR_LEN, (uint32_t)len, 0, 0 };
            pdesc_put(q, off_gpa(v, toff), 2 * sizeof(struct virtq_pdesc), id,
                      VIRTQ_DESC_F_INDIRECT, 1);
            break;
        }
        default:
            pdesc_put(q, gpa, (uint32_t)(HDR_LEN + len), id, 0, 1);
            break;
        }
        ptrack(v, q, id, need, IF_PEND);
        v->st.tx_frames++;
        v->st.tx_bytes += len;
        return 0;
    }

    uint16_t head;
    switch (v->tx_mode) {
    case VUF_TX_CHAIN2:
        head = (uint16_t)(2 * slot);
        q->desc[head] = (struct virtq_desc){ gpa, HDR_LEN, VIRTQ_DESC_F_NEXT, (uint16_t)(head + 1) };
        q->desc[head + 1] = (struct virtq_desc){ gpa + HDR_LEN, (uint32_t)len, 0, 0 };
        break;
    case VUF_TX_INDIRECT: {
        head = (uint16_t)slot;
        uint64_t toff = q->ind_off + (uint64_t)slot * 2 * sizeof(struct virtq_desc);
        struct virtq_desc *t = off_ptr(v, toff);
        t[0] = (struct virtq_desc){ gpa, HDR_LEN, VIRTQ_DESC_F_NEXT, 1 };
        t[1] = (struct virtq_desc){ gpa + HDR_LEN, (uint32_t)len, 0, 0 };
        q->desc[head] = (struct virtq_desc){ off_gpa(v, toff), 2 * sizeof(struct virtq_desc),
                                             VIRTQ_DESC_F_INDIRECT, 0 };
        break;
    }
    default:
        head = (uint16_t)slot;
        q->desc[head] = (struct virtq_desc){ gpa, (uint32_t)(HDR_LEN + len), 0, 0 };
        break;
    }
    q->avail->ring[q->avail_idx & (q->num - 1)] = head;
    q->avail_idx++;
    q->inflight[head] = 1;
    q->ninflight++;
    v->st.tx_frames++;
    v->st.tx_bytes += len;
    return 0;
}

int vuf_tx_flush(struct vuf *v, unsigned qp)
{
    int err;
    struct vuf_ring *q = get_ring(v, 2 * qp + 1, &err);
    if (!q)
        return err;
    return ring_publish(v, q);
}

int vuf_send(struct vuf *v, unsigned qp, const void *frame, size_t len)
{
    int r = vuf_tx_enqueue(v, qp, frame, len, NULL);
    if (r)
        return r;
    r = vuf_tx_flush(v, qp);
    return r < 0 ? r : 0;
}

/* Undoes the IF_MARK marks of the first k collected buffers. */
static void rx_unmark(struct vuf_ring *q, unsigned k)
{
    for (unsigned j = 0; j < k; j++)
        q->inflight[q->tmp_ids[j]] = IF_DEV;
}

/* Split: the used elements of the next complete frame into q->tmp_ids and
 * q->tmp_lens, each marked IF_MARK; *nbp buffers, *hp the first one's
 * header, *totalp the frame's bytes.  0, -EAGAIN or -EPROTO. */
static int rx_collect_split(struct vuf *v, struct vuf_ring *q, unsigned *nbp,
                            struct virtio_net_hdr *hp, uint64_t *totalp)
{
    uint16_t avail;
    if (used_new(v, q, &avail) < 0)
        return -EPROTO;
    if (avail == 0)
        return -EAGAIN;

    uint16_t mask = (uint16_t)(q->num - 1);
    struct virtq_used_elem e;
    memcpy(&e, (const void *)&q->used->ring[q->last_used & mask], sizeof e);
    if (e.id >= q->num || !q->inflight[e.id])
        return ring_broken(v, q, "used id %u not posted", e.id);
    if (e.len > q->buf_size || e.len < HDR_LEN)
        return ring_broken(v, q, "used len %u outside [%u, %u]", e.len, HDR_LEN, q->buf_size);
    memcpy(hp, off_ptr(v, q->buf_off + (uint64_t)e.id * q->buf_size), HDR_LEN);
    unsigned nb = (v->features & (1ull << VIRTIO_NET_F_MRG_RXBUF)) ? hp->num_buffers : 1;
    if (nb == 0 || nb > q->ninflight)
        return ring_broken(v, q, "num_buffers %u with %u buffers posted", nb, q->ninflight);
    if (nb > avail)
        return -EAGAIN;   /* rest of the frame not published yet */

    /* validate every element before consuming any */
    uint64_t total = 0;
    for (unsigned k = 0; k < nb; k++) {
        memcpy(&e, (const void *)&q->used->ring[(uint16_t)(q->last_used + k) & mask], sizeof e);
        if (e.id >= q->num || q->inflight[e.id] != IF_DEV) {
            rx_unmark(q, k);
            return ring_broken(v, q, "used id %u (buffer %u of %u) not posted", e.id, k, nb);
        }
        if (e.len > q->buf_size || (k == 0 && e.len < HDR_LEN)) {
            rx_unmark(q, k);
            return ring_broken(v, q, "used len %u > buffer %u", e.len, q->buf_size);
        }
        q->inflight[e.id] = IF_MARK;   /* catches duplicate ids */
        q->tmp_ids[k] = (uint16_t)e.id;
        q->tmp_lens[k] = e.len;
        total += e.len - (k == 0 ? HDR_LEN : 0);
    }
    *nbp = nb;
    *totalp = total;
    return 0;
}

/* Packed: as rx_collect_split, reading used descriptors from the used
 * position on (an RX buffer is one descriptor).  With IN_ORDER each buffer
 * must still have a descriptor of its own: the driver needs every RX
 * buffer's length, so a batch naming a later buffer breaks the ring. */
static int rx_collect_packed(struct vuf *v, struct vuf_ring *q, unsigned *nbp,
                             struct virtio_net_hdr *hp, uint64_t *totalp)
{
    uint16_t pos = q->used_pos, id;
    uint8_t w = q->used_wrap;
    uint32_t len;
    unsigned nb = 1;
    uint64_t total = 0;

    for (unsigned k = 0; k < nb; k++) {
        if (!pused_at(q, pos, w, &id, &len)) {
            rx_unmark(q, k);
            return -EAGAIN;   /* nothing yet, or the rest of the frame */
        }
        if (q->ninflight == 0)
            return ring_broken(v, q, "used descriptor at %u with nothing posted", pos);
        if (id >= q->num || q->inflight[id] != IF_DEV) {
            rx_unmark(q, k);
            return ring_broken(v, q, "used id %u (buffer %u of %u) not posted", id, k, nb);
        }
        if (v->in_order && id != q->fifo[(q->fifo_head + k) % q->num]) {
            rx_unmark(q, k);
            return ring_broken(v, q, "IN_ORDER: used id %u, buffer %u expected", id,
                               q->fifo[(q->fifo_head + k) % q->num]);
        }
        if (len > q->buf_size || (k == 0 && len < HDR_LEN)) {
            rx_unmark(q, k);
            return ring_broken(v, q, "used len %u outside [%u, %u]", len, k ? 0 : HDR_LEN,
                               q->buf_size);
        }
        if (k == 0) {
            memcpy(hp, off_ptr(v, q->buf_off + (uint64_t)id * q->buf_size), HDR_LEN);
            nb = (v->features & (1ull << VIRTIO_NET_F_MRG_RXBUF)) ? hp->num_buffers : 1;
            if (nb == 0 || nb > q->ninflight)
                return ring_broken(v, q, "num_buffers %u with %u buffers posted", nb,
                                   q->ninflight);
        }
        q->inflight[id] = IF_MARK;   /* catches duplicate ids */
        q->tmp_ids[k] = id;
        q->tmp_lens[k] = len;
        total += len - (k == 0 ? HDR_LEN : 0);
        padvance(&pos, &w, 1, q->num);
    }
    *nbp = nb;
    *totalp = total;
    return 0;
}

int vuf_recv_ex(struct vuf *v, unsigned qp, void *out, size_t cap,
                struct virtio_net_hdr *hdr_out, unsigned *nbufs)
{
    int err;
    struct vuf_ring *q = get_ring(v, 2 * qp, &err);
    if (!q)
        return err;
    unsigned nb = 0;
    uint64_t total = 0;
    struct virtio_net_hdr h;
    int r = q->packed ? rx_collect_packed(v, q, &nb, &h, &total)
                      : rx_collect_split(v, q, &nb, &h, &total);
    if (r)
        return r;
    uint16_t *ids = q->tmp_ids;
    uint32_t *lens = q->tmp_lens;
    if (total > INT_MAX) {
        rx_unmark(q, nb);
        return ring_broken(v, q, "frame of %llu bytes", (unsigned long long)total);
    }

    size_t pos = 0;
    for (unsigned k = 0; k < nb; k++) {
        uint64_t skip = k == 0 ? HDR_LEN : 0;
        const uint8_t *src = off_ptr(v, q->buf_off + (uint64_t)ids[k] * q->buf_size + skip);
        size_t dlen = lens[k] - skip;
        if (pos < cap) {
            size_t c = cap - pos < dlen ? cap - pos : dlen;
            memcpy((uint8_t *)out + pos, src, c);
        }
        pos += dlen;
    }
    /* consume and repost */
    if (q->packed) {
        padvance(&q->used_pos, &q->used_wrap, nb, q->num);
        q->ndesc_held -= nb;
        if (v->in_order) {
            q->fifo_head = (q->fifo_head + nb) % q->num;
            q->fifo_n -= nb;
        }
    } else {
        q->last_used = (uint16_t)(q->last_used + nb);
    }
    for (unsigned k = 0; k < nb; k++) {
        q->inflight[ids[k]] = IF_FREE;
        q->ninflight--;
        rx_post(v, q, ids[k]);
    }
    v->st.rx_frames++;
    v->st.rx_bytes += total;
    v->st.rx_bufs += nb;
    if (hdr_out)
        *hdr_out = h;
    if (nbufs)
        *nbufs = nb;
    ring_arm(v, q, ring_wants_irq(v, q));
    if (!v->o.rx_batch) {
        r = ring_publish(v, q);
        if (r < 0)
            return r;
    }
    return (int)total;
}

int vuf_recv(struct vuf *v, unsigned qp, void *buf, size_t cap)
{
    return vuf_recv_ex(v, qp, buf, cap, NULL, NULL);
}

int vuf_rx_flush(struct vuf *v, unsigned qp)
{
    int err;
    struct vuf_ring *q = get_ring(v, 2 * qp, &err);
    if (!q)
        return err;
    return ring_publish(v, q);
}

/* Drain a call eventfd; returns 1 if it had been signalled. */
static int drain_call(struct vuf *v, struct vuf_ring *q)
{
    uint64_t val;
    if (q->call_fd < 0)
        return 0;
    if (read(q->call_fd, &val, sizeof val) == sizeof val) {
        v->st.interrupts += val;
        return 1;
    }
    return 0;
}

static int wait_rings(struct vuf *v, const unsigned *rings, unsigned n, int timeout_ms)
{
    struct pollfd pfd[VUF_MAX_RINGS];
    unsigned np = 0;
    int pending = 0;

    for (unsigned i = 0; i < n; i++) {
        struct vuf_ring *q = &v->ring[rings[i]];
        if (!q->setup || q->call_fd < 0)
            continue;
        if (drain_call(v, q))
            pending = 1;
        ring_arm(v, q, 1);
    }
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    for (unsigned i = 0; i < n; i++) {
        struct vuf_ring *q = &v->ring[rings[i]];
        if (!q->setup || q->call_fd < 0)
            continue;
        if (q->packed ? pused_ready(q)
                      : __atomic_load_n(&q->used->idx, __ATOMIC_ACQUIRE) != q->last_used)
            pending = 1;
        pfd[np].fd = q->call_fd;
        pfd[np].events = POLLIN;
        np++;
    }
    if (pending)
        return 1;
    if (np == 0)
        return -ENOTCONN;
    int64_t deadline = now_ms() + (timeout_ms < 0 ? 0 : timeout_ms);
    for (;;) {
        int pr = poll(pfd, np, remaining_ms(deadline));
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr < 0)
            return -errno;
        if (pr == 0)
            return 0;
        break;
    }
    int got = 0;
    for (unsigned i = 0; i < n; i++) {
        struct vuf_ring *q = &v->ring[rings[i]];
        if (q->setup && drain_call(v, q))
            got = 1;
    }
    return got;
}

int vuf_wait(struct vuf *v, int timeout_ms)
{
    unsigned rings[VUF_MAX_RINGS], n = 0;
    for (unsigned i = 0; i < v->nrings; i++)
        if (!v->ring[i].is_tx || v->o.tx_irq)
            rings[n++] = i;
    return wait_rings(v, rings, n, timeout_ms);
}

int vuf_wait_ring(struct vuf *v, unsigned ring, int timeout_ms)
{
    if (ring >= v->nrings)
        return -EINVAL;
    return wait_rings(v, &ring, 1, timeout_ms);
}

int vuf_recv_wait(struct vuf *v, unsigned qp, void *buf, size_t cap, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        int r = vuf_recv(v, qp, buf, cap);
        if (r != -EAGAIN)
            return r;
        int left = remaining_ms(deadline);
        if (left == 0)
            return -ETIMEDOUT;
        r = vuf_wait_ring(v, 2 * qp, left);
        if (r < 0)
            return r;
    }
}

/* ------------------------------------------------------------------ */
/* raw access                                                          */

int vuf_ring_view(struct vuf *v, unsigned ring, struct vuf_ring_view *out)
{
    if (ring >= v->nrings)
        return -EINVAL;
    struct vuf_ring *q = &v->ring[ring];
    memset(out, 0, sizeof *out);
    if (q->packed) {
        out->packed = 1;
        out->pdesc = q->pdesc;
        out->driver_event = q->drv_ev;
        out->device_event = q->dev_ev;
        out->avail_pos = q->avail_pos;
        out->avail_wrap = q->avail_wrap;
        out->used_pos = q->used_pos;
        out->used_wrap = q->used_wrap;
    } else {
        out->desc = q->desc;
        out->avail = q->avail;
        out->used = q->used;
        out->used_event = &q->avail->ring[q->num];
        out->avail_event = (uint16_t *)&q->used->ring[q->num];
    }
    out->num = q->num;
    out->desc_gpa = off_gpa(v, q->desc_off);
    out->avail_gpa = off_gpa(v, q->avail_off);
    out->used_gpa = off_gpa(v, q->used_off);
    out->kick_fd = q->kick_fd;
    out->call_fd = q->call_fd;
    return 0;
}

/* Publishes avail->idx = idx (release: the ring entries before it are
 * visible first). */
int vuf_avail_set_idx(struct vuf *v, unsigned ring, uint16_t idx)
{
    if (ring >= v->nrings || v->ring[ring].packed)
        return -EINVAL;
    struct vuf_ring *q = &v->ring[ring];
    q->avail_idx = idx;
    __atomic_store_n(&q->avail->idx, idx, __ATOMIC_RELEASE);
    q->published = idx;
    return 0;
}

int vuf_avail_push(struct vuf *v, unsigned ring, uint16_t head)
{
    if (ring >= v->nrings || v->ring[ring].packed)
        return -EINVAL;
    struct vuf_ring *q = &v->ring[ring];
    q->avail->ring[q->avail_idx & (q->num - 1)] = head;
    return vuf_avail_set_idx(v, ring, (uint16_t)(q->avail_idx + 1));
}

int vuf_packed_avail_push(struct vuf *v, unsigned ring, const struct virtq_pdesc *descs,
                          unsigned n)
{
    if (ring >= v->nrings || !v->ring[ring].packed || (n && !descs))
        return -EINVAL;
    struct vuf_ring *q = &v->ring[ring];
    if (n > q->num - q->ndesc_held)
        return -ENOSPC;
    if (n == 0)
        return 0;
    /* the library's own unpublished buffers go first, keeping ring order */
    pflush(q);
    uint16_t head_pos = q->avail_pos;
    uint16_t head_flags = pavail_flags(descs[0].flags, q->avail_wrap);
    unsigned start = 0;
    for (unsigned i = 0; i < n; i++) {
        struct virtq_pdesc *d = &q->pdesc[q->avail_pos];
        d->addr = descs[i].addr;
        d->len = descs[i].len;
        d->id = descs[i].id;
        if (i)
            __atomic_store_n(&d->flags, pavail_flags(descs[i].flags, q->avail_wrap),
                             __ATOMIC_RELAXED);
        padvance(&q->avail_pos, &q->avail_wrap, 1, q->num);
        /* a chain ends at a descriptor without NEXT; its id (there) is
         * tracked if the library does not own it (a TX id from nslots on,
         * free), so the used side can skip the chain when it comes back */
        if (!(descs[i].flags & VIRTQ_DESC_F_NEXT)) {
            uint16_t id = descs[i].id;
            if (q->is_tx && id >= q->nslots && id < q->num && q->inflight[id] == IF_FREE)
                ptrack(v, q, id, i - start + 1, IF_HAND);
            start = i + 1;
        }
    }
    __atomic_store_n(&q->pdesc[head_pos].flags, head_flags, __ATOMIC_RELEASE);
    q->pub_pos = q->avail_pos;
    q->pub_wrap = q->avail_wrap;
    return 0;
}

int vuf_packed_avail_pos(const struct vuf *v, unsigned ring, uint16_t *pos, int *wrap)
{
    if (ring >= v->nrings || !v->ring[ring].packed)
        return -EINVAL;
    if (pos)
        *pos = v->ring[ring].avail_pos;
    if (wrap)
        *wrap = v->ring[ring].avail_wrap;
    return 0;
}

unsigned vuf_nregions(const struct vuf *v)
{
    return v->nregions;
}

int vuf_region(const struct vuf *v, unsigned i, struct vhost_user_mem_region *r, int *fd)
{
    if (i >= v->nregions)
        return -EINVAL;
    if (r)
        *r = v->region[i];
    if (fd)
        *fd = v->memfd;
    return 0;
}

int vuf_mem_fd(const struct vuf *v)
{
    return v->memfd;
}

void *vuf_gpa_to_ptr(struct vuf *v, uint64_t gpa, size_t len)
{
    for (unsigned i = 0; i < v->nregions; i++) {
        const struct vhost_user_mem_region *r = &v->region[i];
        if (gpa >= r->guest_phys_addr && gpa - r->guest_phys_addr < r->memory_size &&
            len <= r->memory_size - (gpa - r->guest_phys_addr))
            return v->mem + r->mmap_offset + (gpa - r->guest_phys_addr);
    }
    return NULL;
}

int vuf_ptr_to_gpa(const struct vuf *v, const void *p, uint64_t *gpa)
{
    uintptr_t a = (uintptr_t)p, b = (uintptr_t)v->mem;
    if (a < b || a - b >= v->mem_size)
        return -EINVAL;
    uint64_t g = off_gpa(v, a - b);
    if (g == ~0ull)
        return -EINVAL;
    *gpa = g;
    return 0;
}

void *vuf_scratch_alloc(struct vuf *v, size_t size, size_t align, uint64_t *gpa)
{
    if (align == 0 || (align & (align - 1)))
        align = 8;
    uint64_t at = align_up(v->scratch_used, align);
    if (at > v->scratch_size || size > v->scratch_size - at)
        return NULL;
    v->scratch_used = at + size;
    uint64_t off = v->scratch_off + at;
    void *p = off_ptr(v, off);
    memset(p, 0, size);
    if (gpa)
        *gpa = off_gpa(v, off);
    return p;
}

/* ------------------------------------------------------------------ */
/* test frames                                                         */

static uint8_t pattern_byte(uint32_t seq, size_t i)
{
    return (uint8_t)(seq * 131u + i * 7u + (i >> 8));
}

void vuf_frame_fill(void *buf, size_t len, const uint8_t dst[6], const uint8_t src[6],
                    uint32_t seq, uint32_t flow)
{
    uint8_t *p = buf;
    if (len < VUF_FRAME_MIN)
        return;
    memcpy(p, dst, 6);
    memcpy(p + 6, src, 6);
    p[12] = VUF_ETHERTYPE_TEST >> 8;
    p[13] = VUF_ETHERTYPE_TEST & 0xff;
    memcpy(p + 14, "VUF1", 4);
    uint32_t l = (uint32_t)len;
    memcpy(p + 18, &seq, 4);
    memcpy(p + 22, &l, 4);
    memcpy(p + 26, &flow, 4);
    for (size_t i = VUF_FRAME_MIN; i < len; i++)
        p[i] = pattern_byte(seq, i);
}

int vuf_frame_check(const void *buf, size_t len, uint32_t *seq, uint32_t *flow)
{
    const uint8_t *p = buf;
    uint32_t s, l, f;
    if (len < VUF_FRAME_MIN || p[12] != (VUF_ETHERTYPE_TEST >> 8) ||
        p[13] != (VUF_ETHERTYPE_TEST & 0xff) || memcmp(p + 14, "VUF1", 4))
        return -1;
    memcpy(&s, p + 18, 4);
    memcpy(&l, p + 22, 4);
    memcpy(&f, p + 26, 4);
    if (l != len)
        return -1;
    for (size_t i = VUF_FRAME_MIN; i < len; i++)
        if (p[i] != pattern_byte(s, i))
            return -1;
    if (seq)
        *seq = s;
    if (flow)
        *flow = f;
    return 0;
}
