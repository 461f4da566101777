/*
 * vu_ctrl.c - see vu_ctrl.h.
 *
 * Message flow: recv header (12 bytes) -> recv payload (size bytes), fds
 * are collected from whichever recvmsg carried them.  One table has a row
 * per request: its name, payload size range, fd rule, whether it always
 * replies, its handler (run under the device's write lock) and what runs
 * once the lock is dropped.  A message that breaks its row is a framing
 * error and closes the connection; a well-formed message with bad values
 * fails: the frontend gets a failure ack if it asked for one (NEED_REPLY),
 * else the connection is closed, since it would otherwise go on believing
 * the state applied.
 */
#define _GNU_SOURCE
#include "vu_ctrl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "device.h"
#include "fwd.h"
#include "log.h"
#include "port.h"
#include "switch.h"
#include "virtio.h"
#include "vhost_user.h"
#include "worker.h"

enum fd_rule { FDS_NONE, FDS_ONE, FDS_VRING, FDS_MEM_TABLE, FDS_ZERO_OR_ONE };

#define U64 sizeof(uint64_t)
#define STATE sizeof(struct vhost_user_vring_state)

uint64_t vu_offered_features(unsigned max_qp)
{
    uint64_t f = 1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_RING_F_INDIRECT_DESC |
                 1ull << VIRTIO_RING_F_EVENT_IDX | 1ull << VIRTIO_F_ANY_LAYOUT |
                 1ull << VIRTIO_NET_F_MRG_RXBUF | 1ull << VIRTIO_NET_F_MTU |
                 1ull << VIRTIO_NET_F_CSUM | 1ull << VIRTIO_NET_F_GUEST_CSUM |
                 1ull << VIRTIO_NET_F_HOST_TSO4 | 1ull << VIRTIO_NET_F_HOST_TSO6 |
                 1ull << VIRTIO_NET_F_GUEST_TSO4 | 1ull << VIRTIO_NET_F_GUEST_TSO6 |
                 1ull << VIRTIO_NET_F_GUEST_ANNOUNCE | 1ull << VIRTIO_F_IN_ORDER |
                 1ull << VIRTIO_F_RING_PACKED | 1ull << VHOST_F_LOG_ALL |
                 1ull << VHOST_USER_F_PROTOCOL_FEATURES;
    if (max_qp > 1)
        f |= 1ull << VIRTIO_NET_F_MQ;
    return f;
}

uint64_t vu_offered_protocol_features(void)
{
    return 1ull << VHOST_USER_PROTOCOL_F_MQ | 1ull << VHOST_USER_PROTOCOL_F_RARP |
           1ull << VHOST_USER_PROTOCOL_F_LOG_SHMFD |
           1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK | 1ull << VHOST_USER_PROTOCOL_F_NET_MTU |
           1ull << VHOST_USER_PROTOCOL_F_RESET_DEVICE |
           1ull << VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS |
           1ull << VHOST_USER_PROTOCOL_F_STATUS;
}

/* ---- the device lock, control-plane side ------------------------------ */

void vu_dev_lock(struct vdev *d)
{
    pthread_rwlock_wrlock(&d->lock);
}

void vu_dev_unlock(struct vdev *d)
{
    /* Interrupts a worker could not decide because we held the lock: the
     * worker left signal_pending set and its RX queue to us. */
    for (unsigned i = 0; i < 2 * d->max_qp; i += 2) {
        struct vqueue *q = &d->q[i];
        if (!q->signal_pending)
            continue;
        q->signal_pending = false;
        if (dev_queue_ready(d, q) && vq_should_signal(&q->vq))
            dev_signal(q);
    }
    pthread_rwlock_unlock(&d->lock);
    /* Workers skip a device while we hold it: have them look again. */
    for (unsigned i = 1; i < 2 * d->max_qp; i += 2)
        worker_poke_queue(&d->q[i]);
}

/* dev_reset, after taking the kick fds away from the workers (write lock). */
static void reset_device(struct vdev *d)
{
    for (unsigned i = 0; i < 2 * d->max_qp; i++)
        if (d->q[i].kickfd >= 0)
            worker_unwatch_queue(&d->q[i]);
    dev_reset(d);
}

/* ---- connection I/O ---------------------------------------------------- */

static void close_conn_fds(struct vu_conn *c)
{
    for (unsigned i = 0; i < c->nfds; i++)
        if (c->fds[i] >= 0)
            close(c->fds[i]);
    c->nfds = 0;
}

void vu_conn_attach(struct port *p, int fd)
{
    struct vu_conn *c = &p->conn;
    memset(c, 0, sizeof(*c));
    c->fd = fd;
    vu_dev_lock(&p->dev);
    reset_device(&p->dev);
    p->dev.connected = true;
    vu_dev_unlock(&p->dev);
    p->connects++;
    log_info("port %s: frontend connected", p->name);
}

void vu_conn_detach(struct port *p, const char *why)
{
    struct vu_conn *c = &p->conn;
    if (c->fd < 0)
        return;
    close(c->fd);
    c->fd = -1;
    close_conn_fds(c);
    c->have = 0;
    vu_dev_lock(&p->dev);
    reset_device(&p->dev);
    p->dev.connected = false;
    vu_dev_unlock(&p->dev);
    switch_forget_port(p->sw, p->index);
    log_info("port %s: frontend disconnected (%s)", p->name, why);
}

/* Sends header + payload in one go; the socket is non-blocking and a
 * frontend that does not read its replies loses the connection. */
static int send_msg(struct port *p, uint32_t request, const void *payload, uint32_t size)
{
    struct vhost_user_hdr h = { request, VHOST_USER_VERSION | VHOST_USER_REPLY_MASK, size };
    struct iovec iov[2] = { { &h, sizeof(h) }, { (void *)payload, size } };
    struct msghdr mh = { .msg_iov = iov, .msg_iovlen = size ? 2 : 1 };
    ssize_t w = sendmsg(p->conn.fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (w != (ssize_t)(sizeof(h) + size)) {
        log_warn("port %s: cannot send reply to %u: %s", p->name, request,
                 w < 0 ? strerror(errno) : "short write");
        return -1;
    }
    return 0;
}

static int send_u64(struct port *p, uint32_t request, uint64_t v)
{
    return send_msg(p, request, &v, sizeof(v));
}

/* ---- helpers for handlers ---------------------------------------------- */

struct ctx {
    struct port *p;
    struct vdev *d;
    struct vhost_user_msg *m;
    int *fds;
    unsigned nfds;
    char err[256];
    /* reply for GET_* */
    union vhost_user_payload reply;
    uint32_t reply_size;
    const char *row_name;   /* the request's name, for messages */
    /* For a message about one ring (the row's ring rule): the ring, the
     * value it carries (checked), the fd for it (-1: none, or not yet
     * taken). */
    struct vqueue *q;
    uint32_t num;
    int fd;
};

static int fail(struct ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct ctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof(c->err), fmt, ap);
    va_end(ap);
    return -1;
}

/* Takes fd number i out of the message (the handler now owns it). */
static int take_fd(struct ctx *c, unsigned i)
{
    int fd = c->fds[i];
    c->fds[i] = -1;
    return fd;
}

/* The ring a message names, or NULL with the error set. */
static struct vqueue *named_ring(struct ctx *c, uint32_t index)
{
    if (index < 2 * c->d->max_qp)
        return &c->d->q[index];
    fail(c, "%s: ring %u does not exist", c->row_name, index);
    return NULL;
}

static int is_eventfd(int fd)
{
    char path[64], target[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(path, target, sizeof(target) - 1);
    if (n < 0)
        return 0;
    target[n] = 0;
    return strcmp(target, "anon_inode:[eventfd]") == 0;
}

/* ---- handlers ---------------------------------------------------------- */

static int h_get_features(struct ctx *c)
{
    c->reply.u64 = vu_offered_features(c->d->max_qp);
    c->reply_size = U64;
    return 0;
}

static int h_set_features(struct ctx *c)
{
    uint64_t f = c->m->payload.u64, offered = vu_offered_features(c->d->max_qp);
    if (f & ~offered)
        return fail(c, "SET_FEATURES 0x%llx has bits we did not offer (0x%llx)",
                    (unsigned long long)f, (unsigned long long)(f & ~offered));
    dev_set_features(c->d, f);
    c->d->features_set = true;
    log_debug("port %s: features 0x%llx", c->p->name, (unsigned long long)f);
    return 0;
}

static int h_get_protocol_features(struct ctx *c)
{
    c->reply.u64 = vu_offered_protocol_features();
    c->reply_size = U64;
    return 0;
}

static int h_set_protocol_features(struct ctx *c)
{
    uint64_t f = c->m->payload.u64;
    if (f & ~vu_offered_protocol_features())
        return fail(c, "SET_PROTOCOL_FEATURES 0x%llx has bits we did not offer",
                    (unsigned long long)f);
    c->d->protocol_features = f;
    return 0;
}

static int h_nothing(struct ctx *c)
{
    return 0;
}

static int h_reset(struct ctx *c)
{
    /* Tolerated: the device goes back to its freshly connected state. */
    reset_device(c->d);
    c->d->connected = true;
    switch_forget_port(c->p->sw, c->p->index);
    return 0;
}

static int map_into(struct ctx *c, struct guest_mem *mem, const struct vhost_user_mem_region *r,
                    int fd)
{
    struct mem_region mr;
    if (mem->n >= VU_MAX_MEM_SLOTS)
        return fail(c, "more than %u memory regions", VU_MAX_MEM_SLOTS);
    if (mem_region_map(&mr, r, fd, c->err, sizeof(c->err)) < 0)
        return -1;
    if (mem_overlaps(mem, &mr)) {
        mem_region_unmap(&mr);
        return fail(c, "memory region gpa 0x%llx size 0x%llx overlaps another",
                    (unsigned long long)r->guest_phys_addr, (unsigned long long)r->memory_size);
    }
    if (mem_add(mem, &mr, c->err, sizeof(c->err)) < 0) {
        mem_region_unmap(&mr);
        return -1;
    }
    return 0;
}

static int h_set_mem_table(struct ctx *c)
{
    const struct vhost_user_memory *mt = &c->m->payload.memory;
    /* Size and fd count were checked against nregions already. */
    struct guest_mem fresh;
    memset(&fresh, 0, sizeof(fresh));
    fresh.fault_flag = c->d->mem.fault_flag;
    for (unsigned i = 0; i < mt->nregions; i++) {
        if (map_into(c, &fresh, &mt->regions[i], c->fds[i]) < 0) {
            mem_clear(&fresh);
            return -1;
        }
    }
    mem_clear(&c->d->mem);
    c->d->mem = fresh;
    dev_remap_rings(c->d);
    log_debug("port %s: memory table with %u regions", c->p->name, mt->nregions);
    return 0;
}

static int h_get_max_mem_slots(struct ctx *c)
{
    c->reply.u64 = VU_MAX_MEM_SLOTS;
    c->reply_size = U64;
    return 0;
}

static int h_add_mem_reg(struct ctx *c)
{
    if (map_into(c, &c->d->mem, &c->m->payload.mem_reg.region, c->fds[0]) < 0)
        return -1;
    dev_remap_rings(c->d);
    return 0;
}

static int h_rem_mem_reg(struct ctx *c)
{
    if (mem_remove(&c->d->mem, &c->m->payload.mem_reg.region) < 0)
        return fail(c, "REM_MEM_REG: no region at gpa 0x%llx",
                    (unsigned long long)c->m->payload.mem_reg.region.guest_phys_addr);
    dev_remap_rings(c->d);
    return 0;
}

static int h_set_vring_num(struct ctx *c)
{
    struct vqueue *q = c->q;
    uint32_t num = c->num;
    /* A packed ring may have any size (virtio 1.2 2.8.10.1); a split one
     * is a power of two. */
    if (num == 0 || (!q->vq.packed && (num & (num - 1))))
        return fail(c, "SET_VRING_NUM: size %u is not a power of two up to %u", num,
                    VIRTQ_MAX_SIZE);
    if (q->vq.packed && !vq_base_fits(&q->vq, vq_get_base(&q->vq), num))
        return fail(c, "SET_VRING_NUM: size %u is below the packed ring's base positions", num);
    q->vq.num = num;
    if (q->vq.addr_set)
        vq_map(&q->vq, &c->d->mem);
    return 0;
}

static int h_set_vring_addr(struct ctx *c)
{
    const struct vhost_user_vring_addr *a = &c->m->payload.addr;
    struct vqueue *q = c->q;
    /* Packed rings' event structures (in the avail and used slots) are
     * 4-byte aligned (virtio 1.2 2.8.10). */
    uint64_t avail_align = q->vq.packed ? 3 : 1;
    if ((a->desc_user_addr & 15) || (a->avail_user_addr & avail_align) || (a->used_user_addr & 3))
        return fail(c, "SET_VRING_ADDR: ring %u addresses misaligned", a->index);
    /* VHOST_VRING_F_LOG: our writes to this ring go into the dirty log.
     * log_guest_addr must be guest memory (we log the ring's own guest
     * addresses, which the frontend gives it as). */
    bool log_ring = a->flags & (1u << VHOST_VRING_F_LOG);
    if (log_ring && c->d->mem.n > 0 &&
        !mem_gpa_to_host(&c->d->mem, a->log_guest_addr, q->vq.packed ? 4 : 6))
        return fail(c, "SET_VRING_ADDR: ring %u: log address 0x%llx is not guest memory",
                    a->index, (unsigned long long)a->log_guest_addr);
    q->vq.log_ring = log_ring;
    q->vq.desc_uva = a->desc_user_addr;
    q->vq.avail_uva = a->avail_user_addr;
    q->vq.used_uva = a->used_user_addr;
    q->vq.addr_set = true;
    /* Before the memory table arrives the check waits until it does. */
    if (c->d->mem.n > 0 && q->vq.num && !vq_map(&q->vq, &c->d->mem)) {
        q->vq.addr_set = false;
        return fail(c, "SET_VRING_ADDR: ring %u (desc 0x%llx avail 0x%llx used 0x%llx, size %u) "
                    "is not inside guest memory", a->index,
                    (unsigned long long)a->desc_user_addr, (unsigned long long)a->avail_user_addr,
                    (unsigned long long)a->used_user_addr, q->vq.num);
    }
    return 0;
}

static int h_set_vring_base(struct ctx *c)
{
    struct vqueue *q = c->q;
    if (!q->vq.packed && c->num > 0xffff)
        return fail(c, "SET_VRING_BASE: ring %u: index %u is beyond 65535", q->index, c->num);
    if (q->vq.num && !vq_base_fits(&q->vq, c->num, q->vq.num))
        return fail(c, "SET_VRING_BASE: ring %u: packed state 0x%x names an avail "
                    "position beyond the ring size %u", q->index, c->num, q->vq.num);
    pthread_mutex_lock(&q->rx_lock);
    q->base = c->num;
    vq_set_base(&q->vq, c->num);
    __atomic_store_n(&q->vq.broken_reason, NULL, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&q->rx_lock);
    return 0;
}

static int h_get_vring_base(struct ctx *c)
{
    struct vqueue *q = c->q;
    /* Stops the ring: no more service until a new kick fd arrives. */
    if (q->kickfd >= 0) {
        worker_unwatch_queue(q);
        close(q->kickfd);
        q->kickfd = -1;
    }
    q->kick_set = false;
    /* The frontend learns where the ring is: nothing saved is needed. */
    rstate_ring_forget(&c->d->rs, q->index);
    q->vq.journal = NULL;
    c->reply.state.index = q->index;
    c->reply.state.num = vq_get_base(&q->vq);
    c->reply_size = STATE;
    /* Every chain a pass took is completed before its locks go, so a
     * split ring stops with nothing in flight; say so if not. */
    if (!q->vq.packed && vq_mapped(&q->vq) && q->vq.last_avail != q->vq.used_idx)
        log_warn("port %s: ring %u stopped with %u descriptors in flight (next avail %u, "
                 "used %u)", c->p->name, q->index, (uint16_t)(q->vq.last_avail - q->vq.used_idx),
                 q->vq.last_avail, q->vq.used_idx);
    else
        log_debug("port %s: ring %u stopped at %u (driver: avail %u, used %u)", c->p->name,
                  q->index, c->reply.state.num, vq_guest_avail_idx(&q->vq),
                  vq_guest_used_idx(&q->vq));
    return 0;
}

/* The eventfd of SET_VRING_KICK/CALL/ERR (or -1 with the no-fd bit) into
 * c->fd, made non-blocking: we never block on an fd a frontend controls. */
static int take_vring_fd(struct ctx *c)
{
    c->fd = -1;
    if (c->m->payload.u64 & VHOST_USER_VRING_NOFD_MASK)
        return 0;
    int fd = take_fd(c, 0);
    if (!is_eventfd(fd)) {
        close(fd);
        return fail(c, "%s: the fd for ring %u is not an eventfd", c->row_name, c->q->index);
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        close(fd);
        return fail(c, "%s: cannot make the eventfd non-blocking", c->row_name);
    }
    c->fd = fd;
    return 0;
}

/* A packed ring starting: from where the last daemon left it if the
 * frontend only resends the base it gave that daemon (rstate.h). */
static void resume_packed(struct ctx *c, struct vqueue *q)
{
    struct vq_journal *j;
    bool found = rstate_ring_start(&c->d->rs, c->p->name, q->index, q->vq.desc_uva, q->vq.num,
                                   q->base, &j);
    pthread_mutex_lock(&q->rx_lock);
    uint32_t state = found ? vq_pk_resume(&q->vq, j) : q->base;
    if (found && (state & 0xffff) != (q->base & 0xffff)) {
        /* rstate checked both positions against the ring size. */
        vq_set_base(&q->vq, state);
        log_info("port %s: packed ring %u resumes at %u:%u, where the last daemon left it "
                 "(the frontend's base %u:%u is older)", c->p->name, q->index, state & 0x7fff,
                 (state >> 15) & 1, q->base & 0x7fff, (q->base >> 15) & 1);
    }
    q->vq.journal = j;
    pthread_mutex_unlock(&q->rx_lock);
}

/* A split ring starting: the base must be where the driver's used index
 * is.  A different base means the last backend stopped with descriptors in
 * flight (or the frontend sent a stale base): starting from the base would
 * complete used entries the driver has already consumed, or never complete
 * some.  Like DPDK's backend, we start from the used index instead: the
 * chains in between are taken again (TX frames sent twice, RX buffers
 * refilled), which loses nothing. */
static void check_split_base(struct ctx *c, struct vqueue *q)
{
    if (!vq_mapped(&q->vq))
        return;
    pthread_mutex_lock(&q->rx_lock);
    uint16_t used = vq_guest_used_idx(&q->vq);
    log_debug("port %s: ring %u starts at %u (driver: avail %u, used %u)", c->p->name, q->index,
              (uint16_t)q->base, vq_guest_avail_idx(&q->vq), used);
    if (used != (uint16_t)q->base) {
        log_warn("port %s: ring %u: base %u but the driver's used index is %u: "
                 "starting from %u", c->p->name, q->index, (uint16_t)q->base, used, used);
        vq_set_base(&q->vq, used);
    }
    pthread_mutex_unlock(&q->rx_lock);
}

static int h_set_vring_kick(struct ctx *c)
{
    struct vqueue *q = c->q;
    if (take_vring_fd(c) < 0)
        return -1;
    if (q->kickfd >= 0) {
        worker_unwatch_queue(q);
        close(q->kickfd);
    }
    q->kickfd = c->fd;
    q->kick_set = true;   /* the ring starts (spec: on kick; we serve at once) */
    if (q->index == 0 && !c->d->mtu)
        port_check_mtu(c->p);   /* no NET_SET_MTU came: the guest's 1500 against VXLAN ports */
    if (q->vq.packed)
        resume_packed(c, q);
    else
        check_split_base(c, q);
    worker_watch_queue(q);
    return 0;
}

static int h_set_vring_call(struct ctx *c)
{
    struct vqueue *q = c->q;
    if (take_vring_fd(c) < 0)
        return -1;
    pthread_mutex_lock(&q->rx_lock);
    if (q->callfd >= 0)
        close(q->callfd);
    q->callfd = c->fd;
    /* Interrupts may have been lost while the fd was being replaced. */
    q->vq.signalled_valid = false;
    pthread_mutex_unlock(&q->rx_lock);
    return 0;
}

static int h_set_vring_err(struct ctx *c)
{
    struct vqueue *q = c->q;
    if (take_vring_fd(c) < 0)
        return -1;
    if (q->errfd >= 0)
        close(q->errfd);
    q->errfd = c->fd;
    return 0;
}

static int h_set_vring_enable(struct ctx *c)
{
    c->q->enable = (int)c->num;
    return 0;
}

static int h_get_queue_num(struct ctx *c)
{
    c->reply.u64 = c->d->max_qp;
    c->reply_size = U64;
    return 0;
}

static int h_net_set_mtu(struct ctx *c)
{
    uint64_t mtu = c->m->payload.u64;
    if (mtu < 68 || mtu > 65535)
        return fail(c, "NET_SET_MTU: %llu out of range 68..65535", (unsigned long long)mtu);
    c->d->mtu = (uint32_t)mtu;
    log_info("port %s: MTU %u", c->p->name, c->d->mtu);
    port_check_mtu(c->p);   /* larger than a VXLAN port's: warned about */
    return 0;
}

static int h_set_status(struct ctx *c)
{
    uint64_t s = c->m->payload.u64;
    if (s > 0xff)
        return fail(c, "SET_STATUS: 0x%llx is not a status byte", (unsigned long long)s);
    __atomic_store_n(&c->d->status, (uint8_t)s, __ATOMIC_RELAXED);
    return 0;
}

static int h_get_status(struct ctx *c)
{
    uint8_t s = __atomic_load_n(&c->d->status, __ATOMIC_RELAXED);
    if (dev_is_broken(c->d))
        s |= VIRTIO_STATUS_NEEDS_RESET;
    c->reply.u64 = s;
    c->reply_size = U64;
    return 0;
}

/* The dirty log for live migration: the fd's [offset, offset + size),
 * checked against the file and guest memory, mapped in place of the old
 * one.  With LOG_SHMFD the frontend waits for a reply once it is mapped. */
static int h_set_log_base(struct ctx *c)
{
    const struct vhost_user_log *l = &c->m->payload.log;
    int fd = take_fd(c, 0);
    char why[160];
    int rc = mem_log_map(&c->d->mem, fd, l->mmap_size, l->mmap_offset, why, sizeof(why));
    close(fd);
    if (rc < 0)
        return fail(c, "SET_LOG_BASE: %s", why);
    log_info("port %s: dirty log of %llu bytes mapped (live migration)", c->p->name,
             (unsigned long long)l->mmap_size);
    c->reply_size = 0;
    return 0;
}

static int h_unsupported(struct ctx *c)
{
    return fail(c, "%s is not supported (not offered)", c->row_name);
}

/* Sent after the write lock is dropped: switch delivery takes other
 * devices' locks. */
static void send_rarp(struct port *p, const uint8_t mac[6])
{
    static struct fwd_ctx ctx;   /* control thread only */
    uint8_t f[60];
    memset(f, 0, sizeof(f));
    memset(f, 0xff, 6);
    memcpy(f + 6, mac, 6);
    f[12] = 0x80; f[13] = 0x35;                 /* RARP */
    f[14] = 0; f[15] = 1;                       /* Ethernet */
    f[16] = 0x08; f[17] = 0x00;                 /* IPv4 */
    f[18] = 6; f[19] = 4;
    f[20] = 0; f[21] = 3;                       /* reverse request */
    memcpy(f + 22, mac, 6);
    memcpy(f + 32, mac, 6);
    fwd_inject(&ctx, p, f, sizeof(f));
}

/* ---- the message table --------------------------------------------------- */

typedef int (*handler_fn)(struct ctx *);
/* Runs once the device's write lock is dropped, if the handler succeeded. */
typedef void (*after_fn)(struct port *p, const struct vhost_user_msg *m);

/* Where a message names a ring: nowhere, in a vring state (with a value
 * at most the row's max_num), in a vring address, or in the low bits of a
 * u64 (KICK/CALL/ERR). */
enum ring_rule { RING_NONE, RING_STATE, RING_ADDR, RING_U64 };

struct msg_row {
    const char *name;
    uint32_t min_size, max_size;   /* payload size range */
    enum fd_rule fds;              /* how many fds it must carry */
    bool replies;                  /* always answers with a payload (GET_*) */
    enum ring_rule ring;           /* the dispatcher finds and checks the ring */
    uint32_t max_num;              /* RING_STATE: the largest value */
    handler_fn handler;            /* under the device's write lock */
    after_fn after;                /* NULL: nothing to do afterwards */
};

static void after_send_rarp(struct port *p, const struct vhost_user_msg *m)
{
    uint8_t mac[6];
    memcpy(mac, &m->payload.u64, 6);
    /* A guest that migrated here announces itself: its MAC moves to this
     * port at once, away from the (paused) source's port. */
    if (switch_claim(p->sw, mac, p->index) == FDB_MOVED)
        log_info("port %s: %02x:%02x:%02x:%02x:%02x:%02x moved here (SEND_RARP)", p->name,
                 mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
    send_rarp(p, mac);
}

/* One row per request.  The handler is taken by address: a row whose
 * handler is not a function (NULL, 0) does not compile. */
#define MSG(req, min, max, fds, replies, ring, max_num, fn, after) \
    [VHOST_USER_##req] = { #req, min, max, fds, replies, ring, max_num, &fn, after }

static const struct msg_row table[] = {
    MSG(GET_FEATURES, 0, U64, FDS_NONE, true, RING_NONE, 0, h_get_features, NULL),
    MSG(SET_FEATURES, U64, U64, FDS_NONE, false, RING_NONE, 0, h_set_features, NULL),
    MSG(SET_OWNER, 0, U64, FDS_NONE, false, RING_NONE, 0, h_nothing, NULL),
    MSG(RESET_OWNER, 0, U64, FDS_NONE, false, RING_NONE, 0, h_reset, NULL),
    MSG(SET_MEM_TABLE, 8, sizeof(struct vhost_user_memory), FDS_MEM_TABLE, false, RING_NONE, 0,
        h_set_mem_table, NULL),
    MSG(SET_LOG_BASE, sizeof(struct vhost_user_log), sizeof(struct vhost_user_log), FDS_ONE,
        true, RING_NONE, 0, h_set_log_base, NULL),
    MSG(SET_LOG_FD, 0, U64, FDS_ONE, false, RING_NONE, 0, h_unsupported, NULL),
    MSG(SET_VRING_NUM, STATE, STATE, FDS_NONE, false, RING_STATE, VIRTQ_MAX_SIZE,
        h_set_vring_num, NULL),
    MSG(SET_VRING_ADDR, sizeof(struct vhost_user_vring_addr),
        sizeof(struct vhost_user_vring_addr), FDS_NONE, false, RING_ADDR, 0, h_set_vring_addr,
        NULL),
    MSG(SET_VRING_BASE, STATE, STATE, FDS_NONE, false, RING_STATE, UINT32_MAX, h_set_vring_base,
        NULL),
    MSG(GET_VRING_BASE, STATE, STATE, FDS_NONE, true, RING_STATE, UINT32_MAX,
        h_get_vring_base, NULL),
    MSG(SET_VRING_KICK, U64, U64, FDS_VRING, false, RING_U64, 0, h_set_vring_kick, NULL),
    MSG(SET_VRING_CALL, U64, U64, FDS_VRING, false, RING_U64, 0, h_set_vring_call, NULL),
    MSG(SET_VRING_ERR, U64, U64, FDS_VRING, false, RING_U64, 0, h_set_vring_err, NULL),
    MSG(GET_PROTOCOL_FEATURES, 0, U64, FDS_NONE, true, RING_NONE, 0, h_get_protocol_features,
        NULL),
    MSG(SET_PROTOCOL_FEATURES, U64, U64, FDS_NONE, false, RING_NONE, 0,
        h_set_protocol_features, NULL),
    MSG(GET_QUEUE_NUM, 0, U64, FDS_NONE, true, RING_NONE, 0, h_get_queue_num, NULL),
    MSG(SET_VRING_ENABLE, STATE, STATE, FDS_NONE, false, RING_STATE, 1, h_set_vring_enable,
        NULL),
    MSG(SEND_RARP, U64, U64, FDS_NONE, false, RING_NONE, 0, h_nothing, after_send_rarp),
    MSG(NET_SET_MTU, U64, U64, FDS_NONE, false, RING_NONE, 0, h_net_set_mtu, NULL),
    MSG(SET_BACKEND_REQ_FD, 0, U64, FDS_ONE, false, RING_NONE, 0, h_unsupported, NULL),
    MSG(RESET_DEVICE, 0, U64, FDS_NONE, false, RING_NONE, 0, h_reset, NULL),
    MSG(GET_MAX_MEM_SLOTS, 0, U64, FDS_NONE, true, RING_NONE, 0, h_get_max_mem_slots, NULL),
    MSG(ADD_MEM_REG, sizeof(struct vhost_user_mem_single), sizeof(struct vhost_user_mem_single),
        FDS_ONE, false, RING_NONE, 0, h_add_mem_reg, NULL),
    MSG(REM_MEM_REG, sizeof(struct vhost_user_mem_single), sizeof(struct vhost_user_mem_single),
        FDS_ZERO_OR_ONE, false, RING_NONE, 0, h_rem_mem_reg, NULL),
    MSG(SET_STATUS, U64, U64, FDS_NONE, false, RING_NONE, 0, h_set_status, NULL),
    MSG(GET_STATUS, 0, U64, FDS_NONE, true, RING_NONE, 0, h_get_status, NULL),
};
#define NROWS (sizeof(table) / sizeof(table[0]))

/* Finds the ring a message names (the row's ring rule) into c->q, and its
 * value into c->num, checked against the row; -1 with the error set. */
static int resolve_ring(struct ctx *c, const struct msg_row *r)
{
    const union vhost_user_payload *p = &c->m->payload;
    uint32_t index;
    switch (r->ring) {
    case RING_NONE:
        return 0;
    case RING_STATE:
        index = p->state.index;
        c->num = p->state.num;
        break;
    case RING_ADDR:
        index = p->addr.index;
        break;
    case RING_U64:
        if (p->u64 & ~(VHOST_USER_VRING_IDX_MASK | VHOST_USER_VRING_NOFD_MASK))
            return fail(c, "%s: reserved bits set in 0x%llx", r->name,
                        (unsigned long long)p->u64);
        index = (uint32_t)(p->u64 & VHOST_USER_VRING_IDX_MASK);
        break;
    default:
        return fail(c, "%s: no ring rule", r->name);
    }
    c->q = named_ring(c, index);
    if (!c->q)
        return -1;
    if (r->ring == RING_STATE && c->num > r->max_num)
        return fail(c, "%s: ring %u: value %u is beyond %u", r->name, index, c->num,
                    r->max_num);
    return 0;
}

/* Checks size and fd count against the request's spec; returns NULL if
 * fine, else why not. */
static const char *check_framing(const struct msg_row *s, const struct vhost_user_msg *m,
                                 unsigned nfds, char *buf, size_t len)
{
    uint32_t size = m->hdr.size;
    if (size < s->min_size || size > s->max_size) {
        snprintf(buf, len, "%s with payload size %u (expected %u..%u)", s->name, size,
                 s->min_size, s->max_size);
        return buf;
    }
    unsigned want = 0;
    switch (s->fds) {
    case FDS_NONE: want = 0; break;
    case FDS_ONE: want = 1; break;
    case FDS_VRING: want = (m->payload.u64 & VHOST_USER_VRING_NOFD_MASK) ? 0 : 1; break;
    case FDS_ZERO_OR_ONE: want = nfds > 1 ? 1 : nfds; break;
    case FDS_MEM_TABLE: {
        uint32_t n = m->payload.memory.nregions;
        if (n == 0 || n > VHOST_MEMORY_BASELINE_NREGIONS ||
            size < 8 + n * sizeof(struct vhost_user_mem_region)) {
            snprintf(buf, len, "SET_MEM_TABLE with %u regions in %u bytes", n, size);
            return buf;
        }
        want = n;
        break;
    }
    }
    if (nfds != want) {
        snprintf(buf, len, "%s with %u file descriptors (expected %u)", s->name, nfds, want);
        return buf;
    }
    return NULL;
}

/* Handles one complete message; returns -1 to close the connection. */
static int dispatch(struct port *p, struct vu_conn *conn)
{
    struct vhost_user_msg *m = &conn->msg;
    uint32_t req = m->hdr.request;
    int need_reply = (m->hdr.flags & VHOST_USER_NEED_REPLY_MASK) != 0;
    char why[256];
    int rc = 0;

    if ((m->hdr.flags & VHOST_USER_VERSION_MASK) != VHOST_USER_VERSION ||
        (m->hdr.flags & VHOST_USER_REPLY_MASK)) {
        log_error("port %s: message %u with bad flags 0x%x; closing", p->name, req,
                  m->hdr.flags);
        return -1;
    }
    if (req >= NROWS || !table[req].name) {
        log_warn("port %s: unknown vhost-user request %u (size %u, %u fds) ignored%s", p->name,
                 req, m->hdr.size, conn->nfds, need_reply ? ", failure reply sent" : "");
        return need_reply ? send_u64(p, req, 1) : 0;
    }
    const struct msg_row *s = &table[req];
    if (check_framing(s, m, conn->nfds, why, sizeof(why))) {
        log_error("port %s: malformed %s; closing the connection", p->name, why);
        return -1;
    }
    log_debug("port %s: %s", p->name, s->name);

    struct ctx c;
    memset(&c, 0, sizeof(c));
    c.p = p;
    c.d = &p->dev;
    c.m = m;
    c.fds = conn->fds;
    c.nfds = conn->nfds;
    c.row_name = s->name;
    c.fd = -1;
    vu_dev_lock(&p->dev);
    rc = resolve_ring(&c, s) < 0 ? -1 : s->handler(&c);
    vu_dev_unlock(&p->dev);
    if (rc == 0 && s->after)
        s->after(p, m);
    if (rc < 0)
        log_error("port %s: %s", p->name, c.err);
    if (s->replies) {
        if (rc < 0)
            return -1;
        return send_msg(p, req, &c.reply, c.reply_size);
    }
    if (need_reply)
        return send_u64(p, req, rc < 0 ? 1 : 0);
    if (rc < 0)
        log_error("port %s: frontend did not ask for an ack; closing the connection so it "
                  "does not go on with a state we refused", p->name);
    return rc;
}

/* Reads at most what the current message still needs, so the fds a
 * message carries are never attributed to its neighbour. */
static int read_piece(struct port *p, struct vu_conn *c)
{
    uint8_t *dst;
    size_t want;
    if (c->have < VHOST_USER_HDR_SIZE) {
        dst = (uint8_t *)&c->msg.hdr + c->have;
        want = VHOST_USER_HDR_SIZE - c->have;
    } else {
        uint32_t got = c->have - VHOST_USER_HDR_SIZE;
        dst = (uint8_t *)&c->msg.payload + got;
        want = c->msg.hdr.size - got;
    }
    union {
        char buf[CMSG_SPACE(sizeof(int) * VHOST_USER_MAX_FDS)];
        struct cmsghdr align;
    } cm;
    struct iovec iov = { dst, want };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf,
                         .msg_controllen = sizeof(cm.buf) };
    ssize_t r = recvmsg(c->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (r < 0)
        return (errno == EAGAIN || errno == EINTR) ? 0 : -1;
    int overflow = (mh.msg_flags & MSG_CTRUNC) != 0;
    for (struct cmsghdr *cmsg = CMSG_FIRSTHDR(&mh); cmsg; cmsg = CMSG_NXTHDR(&mh, cmsg)) {
        if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS)
            continue;
        size_t n = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        int fds[VHOST_USER_MAX_FDS];
        if (n > VHOST_USER_MAX_FDS)
            n = VHOST_USER_MAX_FDS;
        memcpy(fds, CMSG_DATA(cmsg), n * sizeof(int));
        for (size_t i = 0; i < n; i++) {
            if (c->nfds < VHOST_USER_MAX_FDS)
                c->fds[c->nfds++] = fds[i];
            else {
                close(fds[i]);
                overflow = 1;
            }
        }
    }
    if (overflow) {
        log_error("port %s: more than %u file descriptors on one message; closing", p->name,
                  VHOST_USER_MAX_FDS);
        return -1;
    }
    if (r == 0) {
        if (c->have > 0)
            log_warn("port %s: connection closed in the middle of a message", p->name);
        errno = 0;
        return -1;
    }
    c->have += (uint32_t)r;
    return 1;
}

int vu_conn_readable(struct port *p)
{
    struct vu_conn *c = &p->conn;
    /* Bounded: a frontend that floods us yields to other ports after a
     * batch of messages. */
    for (int budget = 64; budget > 0; budget--) {
        int r = read_piece(p, c);
        if (r <= 0)
            return r;
        if (c->have == VHOST_USER_HDR_SIZE && c->msg.hdr.size > VHOST_USER_PAYLOAD_MAX) {
            log_error("port %s: message %u announces %u payload bytes (max %u); closing",
                      p->name, c->msg.hdr.request, c->msg.hdr.size, VHOST_USER_PAYLOAD_MAX);
            return -1;
        }
        if (c->have < VHOST_USER_HDR_SIZE || c->have < VHOST_USER_HDR_SIZE + c->msg.hdr.size)
            continue;
        int rc = dispatch(p, c);
        close_conn_fds(c);
        c->have = 0;
        memset(&c->msg.hdr, 0, sizeof(c->msg.hdr));
        if (rc < 0)
            return -1;
    }
    return 0;
}
