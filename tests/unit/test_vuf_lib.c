/*
 * test_vuf_lib - self-test of the vuf frontend library against a scripted
 * fake backend (a thread in this process that only answers the handshake).
 * The test itself plays the device by writing into the shared rings, to
 * check descriptor layout, kick suppression, mergeable RX, interrupts, and
 * that the library refuses whatever a misbehaving device writes (used->idx
 * jumping, used id out of range or not in flight, len larger than the
 * buffer, bad num_buffers).  Needs no daemon.
 * The same for packed rings (VIRTIO_F_RING_PACKED): the test plays a
 * packed device (reads available descriptors with its own wrap counter,
 * writes used descriptors), across ring wraps, with out-of-order and
 * IN_ORDER completions, event suppression both ways, hand-pushed chains.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "systest.h"

#include <pthread.h>
#include <sys/socket.h>
#include <sys/un.h>

struct fake {
    char path[100];
    int lfd;
    uint64_t features, protocol;
    int bad_reply_size;        /* answer GET_FEATURES with a 4-byte payload */
    pthread_t th;
    /* what the frontend sent, per ring (read after the handshake) */
    uint32_t base[8];
    struct vhost_user_vring_addr addr[8];
    uint64_t acked;            /* SET_FEATURES */
};

static int read_full(int fd, void *buf, size_t len)
{
    size_t done = 0;
    while (done < len) {
        union {
            char b[CMSG_SPACE(32 * sizeof(int))];
            struct cmsghdr al;
        } cm;
        struct iovec iov = { (char *)buf + done, len - done };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.b,
                             .msg_controllen = sizeof cm.b };
        ssize_t n = recvmsg(fd, &mh, 0);
        if (n <= 0)
            return -1;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
            if (c->cmsg_type == SCM_RIGHTS) {
                size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                for (size_t i = 0; i < k; i++) {
                    int f;
                    memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof f);
                    close(f);
                }
            }
        done += (size_t)n;
    }
    return 0;
}

static void reply(int fd, uint32_t req, const void *p, uint32_t size)
{
    /* header and payload are not contiguous in struct vhost_user_msg */
    uint8_t buf[12 + 64];
    struct vhost_user_hdr h = { req, VHOST_USER_VERSION | VHOST_USER_REPLY_MASK, size };
    memcpy(buf, &h, 12);
    memcpy(buf + 12, p, size);
    if (write(fd, buf, 12 + size) < 0)
        return;
}

static void *fake_main(void *arg)
{
    struct fake *f = arg;
    int fd = accept(f->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    int ack = 0;
    for (;;) {
        struct vhost_user_msg m;
        if (read_full(fd, &m.hdr, 12) || m.hdr.size > sizeof m.payload ||
            read_full(fd, &m.payload, m.hdr.size))
            break;
        uint64_t u;
        switch (m.hdr.request) {
        case VHOST_USER_GET_FEATURES:
            u = f->features;
            reply(fd, m.hdr.request, &u, f->bad_reply_size ? 4 : 8);
            continue;
        case VHOST_USER_GET_PROTOCOL_FEATURES:
            u = f->protocol;
            reply(fd, m.hdr.request, &u, 8);
            continue;
        case VHOST_USER_GET_QUEUE_NUM:
            u = 4;
            reply(fd, m.hdr.request, &u, 8);
            continue;
        case VHOST_USER_GET_VRING_BASE:
            m.payload.state.num = 1000 + m.payload.state.index;
            reply(fd, m.hdr.request, &m.payload.state, 8);
            continue;
        case VHOST_USER_GET_STATUS:
            u = 0x0f;
            reply(fd, m.hdr.request, &u, 8);
            continue;
        case VHOST_USER_SET_PROTOCOL_FEATURES:
            ack = !!(m.payload.u64 & (1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK));
            break;
        case VHOST_USER_SET_FEATURES:
            f->acked = m.payload.u64;
            break;
        case VHOST_USER_SET_VRING_BASE:
            if (m.payload.state.index < 8)
                f->base[m.payload.state.index] = m.payload.state.num;
            break;
        case VHOST_USER_SET_VRING_ADDR:
            if (m.payload.addr.index < 8)
                f->addr[m.payload.addr.index] = m.payload.addr;
            break;
        default:
            break;
        }
        if (ack && (m.hdr.flags & VHOST_USER_NEED_REPLY_MASK)) {
            u = m.hdr.request == 99 ? 1 : 0;
            reply(fd, m.hdr.request, &u, 8);
        }
    }
    close(fd);
    return NULL;
}

static int fake_start_ex(struct fake *f, uint64_t features, uint64_t protocol, int bad_size)
{
    static int n;
    memset(f, 0, sizeof *f);
    f->bad_reply_size = bad_size;
    snprintf(f->path, sizeof f->path, "%.80s/fake%d.sock", D.dir, n++ % 1000);
    f->features = features;
    f->protocol = protocol;
    f->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", f->path);
    if (bind(f->lfd, (struct sockaddr *)&sa, sizeof sa) || listen(f->lfd, 1))
        return -1;
    return pthread_create(&f->th, NULL, fake_main, f);
}

static int fake_start(struct fake *f, uint64_t features, uint64_t protocol)
{
    return fake_start_ex(f, features, protocol, 0);
}

static void fake_stop(struct fake *f)
{
    pthread_join(f->th, NULL);
    close(f->lfd);
    unlink(f->path);
}

#define F_BASE ((1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_NET_F_MRG_RXBUF) | \
                (1ull << VIRTIO_RING_F_INDIRECT_DESC) | (1ull << VHOST_USER_F_PROTOCOL_FEATURES))
#define P_BASE ((1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK) | (1ull << VHOST_USER_PROTOCOL_F_MQ) | \
                (1ull << VHOST_USER_PROTOCOL_F_STATUS))

static struct vuf *open_fake(struct fake *f, uint64_t features, enum vuf_tx_mode mode,
                             unsigned rxbuf)
{
    struct vuf_opts o;
    struct vuf *v;
    if (fake_start(f, features, P_BASE))
        return NULL;
    memset(&o, 0, sizeof o);
    o.path = f->path;
    o.ring_size = 8;
    o.tx_mode = mode;
    o.rx_buf_size = rxbuf;
    o.nregions = mode == VUF_TX_INDIRECT ? 2 : 1;
    int r = vuf_connect(&v, &o);
    if (r) {
        note("connect to fake: %s", vuf_last_error(NULL));
        return NULL;
    }
    return v;
}

static uint64_t kicks_pending(int kick_fd)
{
    uint64_t val = 0;
    if (read(kick_fd, &val, 8) != 8)
        return 0;
    return val;
}

/* Device side: complete TX head id (used ring) and publish. */
static void dev_used(struct vuf_ring_view *rv, uint16_t *uidx, uint32_t id, uint32_t len)
{
    rv->used->ring[*uidx % rv->num] = (struct virtq_used_elem){ id, len };
    (*uidx)++;
    __atomic_store_n(&rv->used->idx, *uidx, __ATOMIC_RELEASE);
}

static void test_tx_layout(enum vuf_tx_mode mode, const char *name)
{
    struct fake f;
    struct vuf *v = open_fake(&f, F_BASE, mode, 0);
    CHECK(v != NULL, "%s: handshake with the fake backend", name);
    if (!v)
        return;
    struct vuf_ring_view tx;
    vuf_ring_view(v, 1, &tx);
    uint8_t frame[100];
    for (unsigned i = 0; i < sizeof frame; i++)
        frame[i] = (uint8_t)(i * 3);
    int r = vuf_send(v, 0, frame, sizeof frame);
    uint16_t head = tx.avail->ring[0];
    struct virtq_desc d = tx.desc[head];
    int ok = r == 0 && tx.avail->idx == 1;
    uint8_t got[112];
    size_t have = 0;
    /* gather the chain like a device would */
    struct virtq_desc *tbl = tx.desc;
    unsigned tn = tx.num;
    if (d.flags & VIRTQ_DESC_F_INDIRECT) {
        tbl = vuf_gpa_to_ptr(v, d.addr, d.len);
        tn = d.len / 16;
        d = tbl[0];
        ok &= mode == VUF_TX_INDIRECT;
    } else {
        ok &= mode != VUF_TX_INDIRECT;
    }
    for (unsigned k = 0; k < tn && ok; k++) {
        uint8_t *p = vuf_gpa_to_ptr(v, d.addr, d.len);
        if (!p || have + d.len > sizeof got || (d.flags & VIRTQ_DESC_F_WRITE)) {
            ok = 0;
            break;
        }
        memcpy(got + have, p, d.len);
        have += d.len;
        if (!(d.flags & VIRTQ_DESC_F_NEXT))
            break;
        d = tbl[d.next];
    }
    static const uint8_t zero[12];
    ok &= have == 112 && !memcmp(got, zero, 12) && !memcmp(got + 12, frame, sizeof frame);
    CHECK(ok, "%s: avail/desc hold a 12-byte zero header + the frame (%zu bytes)", name, have);

    /* completion */
    uint16_t uidx = 0;
    dev_used(&tx, &uidx, head, 0);
    r = vuf_tx_reclaim(v, 0);
    CHECK(r == 1 && vuf_tx_inflight(v, 0) == 0, "%s: reclaim takes the used entry (%d)", name, r);
    /* fill the ring: 8 slots (4 for chains) then -EAGAIN */
    unsigned slots = mode == VUF_TX_CHAIN2 ? 4 : 8, sent = 0;
    while (vuf_tx_enqueue(v, 0, frame, 60, NULL) == 0)
        sent++;
    CHECK(sent == slots, "%s: ring takes %u frames before -EAGAIN (%u)", name, slots, sent);
    vuf_close(v);
    fake_stop(&f);
}

static void test_kick_suppression(int event_idx)
{
    struct fake f;
    uint64_t feat = F_BASE | (event_idx ? 1ull << VIRTIO_RING_F_EVENT_IDX : 0);
    struct vuf *v = open_fake(&f, feat, VUF_TX_DIRECT, 0);
    const char *name = event_idx ? "EVENT_IDX" : "NO_NOTIFY";
    if (!v) {
        CHECK(0, "%s: connect", name);
        return;
    }
    struct vuf_ring_view tx;
    vuf_ring_view(v, 1, &tx);
    kicks_pending(tx.kick_fd);
    uint8_t frame[60] = { 0 };
    uint16_t uidx = 0;
    if (!event_idx) {
        tx.used->flags = VIRTQ_USED_F_NO_NOTIFY;
        vuf_send(v, 0, frame, 60);
        CHECK(kicks_pending(tx.kick_fd) == 0, "%s set: no kick", name);
        tx.used->flags = 0;
        vuf_send(v, 0, frame, 60);
        CHECK(kicks_pending(tx.kick_fd) == 1, "%s clear: kick", name);
    } else {
        /* device wants a kick when avail idx passes 3 (i.e. on entry 3) */
        *tx.avail_event = 3;
        vuf_send(v, 0, frame, 60);   /* idx 0->1 */
        vuf_send(v, 0, frame, 60);   /* 1->2 */
        vuf_send(v, 0, frame, 60);   /* 2->3 */
        CHECK(kicks_pending(tx.kick_fd) == 0, "%s: no kick before avail_event", name);
        vuf_send(v, 0, frame, 60);   /* 3->4: crosses */
        CHECK(kicks_pending(tx.kick_fd) == 1, "%s: kick when avail idx passes avail_event", name);
        vuf_send(v, 0, frame, 60);
        CHECK(kicks_pending(tx.kick_fd) == 0, "%s: no kick after it", name);
        /* batch that jumps over the event index: one kick */
        *tx.avail_event = 6;
        for (uint16_t id = 0; id < 5; id++)
            dev_used(&tx, &uidx, id, 0);
        vuf_tx_reclaim(v, 0);
        for (int i = 0; i < 4; i++)
            vuf_tx_enqueue(v, 0, frame, 60, NULL);
        int k = vuf_tx_flush(v, 0);
        CHECK(k == 1 && kicks_pending(tx.kick_fd) == 1,
              "%s: one kick for a batch crossing avail_event", name);
    }
    vuf_close(v);
    fake_stop(&f);
}

static void test_used_bounds(void)
{
    struct fake f;
    struct vuf *v = open_fake(&f, F_BASE, VUF_TX_DIRECT, 0);
    if (!v) {
        CHECK(0, "bounds: connect");
        return;
    }
    struct vuf_ring_view tx, rx;
    vuf_ring_view(v, 1, &tx);
    vuf_ring_view(v, 0, &rx);
    uint8_t frame[60] = { 0 };
    vuf_send(v, 0, frame, 60);
    vuf_send(v, 0, frame, 60);
    /* used->idx jumps by 5 with 2 in flight */
    __atomic_store_n(&tx.used->idx, 5, __ATOMIC_RELEASE);
    int r = vuf_tx_reclaim(v, 0);
    CHECK(r == -EPROTO && vuf_ring_broken(v, 1),
          "TX used->idx jumping past what is in flight: -EPROTO, ring broken (%d: %s)", r,
          vuf_last_error(v));
    CHECK(vuf_send(v, 0, frame, 60) == -EPROTO, "a broken ring refuses further sends");
    vuf_close(v);
    fake_stop(&f);

    struct { uint32_t id, len; const char *what; } tc[] = {
        { 7, 0, "TX used id 7 never handed out" },
        { 300, 0, "TX used id 300 >= ring size" },
        { 0, 100000, "TX used len 100000 > buffer" },
    };
    for (unsigned i = 0; i < 3; i++) {
        v = open_fake(&f, F_BASE, VUF_TX_DIRECT, 0);
        if (!v)
            continue;
        vuf_ring_view(v, 1, &tx);
        vuf_send(v, 0, frame, 60);
        uint16_t u = 0;
        dev_used(&tx, &u, tc[i].id, tc[i].len);
        r = vuf_tx_reclaim(v, 0);
        CHECK(r == -EPROTO, "%s: -EPROTO (%d: %s)", tc[i].what, r, vuf_last_error(v));
        vuf_close(v);
        fake_stop(&f);
    }

    /* RX */
    struct { unsigned nb; uint32_t id0, len0, id1, len1; int nused; int expect; const char *what; }
    rc[] = {
        { 1, 3, 12 + 80, 0, 0, 1, 80, "RX one buffer" },
        { 2, 2, 512, 5, 100, 2, 500 + 100, "RX num_buffers=2 across two buffers" },
        { 2, 2, 512, 0, 0, 1, -EAGAIN, "RX num_buffers=2 with only one published: -EAGAIN" },
        { 1, 9, 100, 0, 0, 1, -EPROTO, "RX used id 9 >= ring size" },
        { 1, 2, 513, 0, 0, 1, -EPROTO, "RX used len 513 > 512-byte buffer" },
        { 1, 2, 5, 0, 0, 1, -EPROTO, "RX used len 5 < header" },
        { 0, 2, 100, 0, 0, 1, -EPROTO, "RX num_buffers 0" },
        { 9, 2, 100, 0, 0, 1, -EPROTO, "RX num_buffers 9 > buffers posted" },
        { 2, 2, 512, 2, 100, 2, -EPROTO, "RX same buffer id twice in one frame" },
    };
    for (unsigned i = 0; i < sizeof rc / sizeof rc[0]; i++) {
        v = open_fake(&f, F_BASE, VUF_TX_DIRECT, 512);
        if (!v)
            continue;
        vuf_ring_view(v, 0, &rx);
        uint16_t u = 0;
        uint8_t *b0 = vuf_gpa_to_ptr(v, rx.desc[rc[i].id0 % 8].addr, 512);
        struct virtio_net_hdr h = { .num_buffers = (uint16_t)rc[i].nb };
        memcpy(b0, &h, 12);
        for (unsigned k = 12; k < 512; k++)
            b0[k] = (uint8_t)k;
        if (rc[i].nused == 2) {
            uint8_t *b1 = vuf_gpa_to_ptr(v, rx.desc[rc[i].id1 % 8].addr, 512);
            for (unsigned k = 0; k < 512; k++)
                b1[k] = (uint8_t)(k + 500);
        }
        dev_used(&rx, &u, rc[i].id0, rc[i].len0);
        if (rc[i].nused == 2)
            dev_used(&rx, &u, rc[i].id1, rc[i].len1);
        static uint8_t out[4096];
        r = vuf_recv(v, 0, out, sizeof out);
        int data_ok = 1;
        if (r > 0) {
            for (int k = 0; k < r && data_ok; k++) {
                uint8_t want = k < 500 ? (uint8_t)(k + 12) : (uint8_t)(k - 500 + 500);
                data_ok = out[k] == want;
            }
        }
        CHECK(r == rc[i].expect && data_ok, "%s: %d (want %d)%s", rc[i].what, r, rc[i].expect,
              data_ok ? "" : ", DATA WRONG");
        if (rc[i].expect == -EAGAIN) {
            /* publish the second buffer now */
            uint8_t *b1 = vuf_gpa_to_ptr(v, rx.desc[3].addr, 512);
            memset(b1, 0xab, 40);
            dev_used(&rx, &u, 3, 40);
            r = vuf_recv(v, 0, out, sizeof out);
            CHECK(r == 500 + 40 && out[500] == 0xab, "RX second buffer published later: %d", r);
        }
        if (r > 0) {
            unsigned used = rc[i].expect == -EAGAIN ? 2 : (unsigned)rc[i].nused;
            CHECK(rx.avail->idx == 8 + used,
                  "%s: buffers reposted (avail idx %u)", rc[i].what, rx.avail->idx);
        }
        vuf_close(v);
        fake_stop(&f);
    }
}

static void test_wait_and_raw(void)
{
    struct fake f;
    struct vuf *v = open_fake(&f, F_BASE | (1ull << VIRTIO_RING_F_EVENT_IDX), VUF_TX_DIRECT, 0);
    if (!v) {
        CHECK(0, "wait: connect");
        return;
    }
    struct vuf_ring_view rx;
    vuf_ring_view(v, 0, &rx);
    double t0 = t_now();
    int w = vuf_wait(v, 100);
    double dt = t_now() - t0;
    CHECK(w == 0 && dt > 0.08 && dt < 1.0, "wait without interrupt times out (%d, %.3f s)", w, dt);
    uint64_t two = 2;
    if (write(rx.call_fd, &two, 8) != 8)
        note("call write failed");
    w = vuf_wait(v, 1000);
    struct vuf_stats s;
    vuf_get_stats(v, &s);
    CHECK(w == 1 && s.interrupts == 2, "wait sees the call eventfd (%d, %llu interrupts)", w,
          (unsigned long long)s.interrupts);
    CHECK(*rx.used_event == 0, "RX used_event armed at the next used index (%u)", *rx.used_event);
    uint16_t u = 0;
    struct virtio_net_hdr h = { .num_buffers = 1 };
    memcpy(vuf_gpa_to_ptr(v, rx.desc[0].addr, 12), &h, 12);
    dev_used(&rx, &u, 0, 12 + 60);
    w = vuf_wait(v, 1000);
    CHECK(w == 1, "wait returns at once when used entries are pending");
    static uint8_t out[2048];
    int r = vuf_recv_wait(v, 0, out, sizeof out, 100);
    CHECK(r == 60 && *rx.used_event == 1, "recv_wait gets it; used_event moves to 1 (%d, %u)",
          r, *rx.used_event);
    r = vuf_recv_wait(v, 0, out, sizeof out, 100);
    CHECK(r == -ETIMEDOUT, "recv_wait with nothing: -ETIMEDOUT (%d)", r);

    /* raw requests */
    struct vhost_user_msg m;
    r = vuf_request(v, VHOST_USER_GET_FEATURES, NULL, 0, NULL, 0, &m);
    CHECK(r == 0 && m.hdr.size == 8 && m.payload.u64 == (F_BASE | (1ull << VIRTIO_RING_F_EVENT_IDX)),
          "vuf_request GET_FEATURES: reply with the features");
    uint64_t z = 0;
    r = vuf_request(v, 99, &z, 8, NULL, 0, &m);
    CHECK(r == 0 && m.payload.u64 == 1, "vuf_request of request 99: nack 1 read back");
    uint8_t st = 0;
    r = vuf_get_status(v, &st);
    CHECK(r == 0 && st == 0x0f, "GET_STATUS: 0x%02x", st);
    uint32_t base = 99;
    r = vuf_get_vring_base(v, 1, &base);
    CHECK(r == 0 && base == 1001, "GET_VRING_BASE reply read back (%d, %u)", r, base);
    vuf_close(v);
    fake_stop(&f);

    /* a reply of the wrong size is an error, not garbage */
    if (fake_start_ex(&f, F_BASE, P_BASE, 1) == 0) {
        struct vuf_opts o;
        memset(&o, 0, sizeof o);
        o.path = f.path;
        r = vuf_connect(&v, &o);
        CHECK(r == -EPROTO, "GET_FEATURES reply of 4 bytes: connect fails with -EPROTO (%d: %s)",
              r, vuf_last_error(NULL));
        if (r == 0)
            vuf_close(v);
        fake_stop(&f);
    }
    /* nobody listening */
    {
        struct vuf_opts o;
        memset(&o, 0, sizeof o);
        char p[256];
        snprintf(p, sizeof p, "%s/nobody.sock", D.dir);
        o.path = p;
        o.timeout_ms = 100;
        r = vuf_connect(&v, &o);
        CHECK(r == -ENOENT, "connect to a missing socket: -ENOENT (%d)", r);
    }
}

/* ------------------------------------------------------------ packed rings */

#define F_PACKED (F_BASE | (1ull << VIRTIO_F_RING_PACKED))

struct popts {
    uint64_t offered;          /* device features */
    uint64_t accepted;         /* opts.features (0: default) */
    unsigned ring, rxbuf, tx_reserve;
    enum vuf_tx_mode mode;
    int rx_no_irq;
};

static struct vuf *open_packed(struct fake *f, const struct popts *p)
{
    struct vuf_opts o;
    struct vuf *v;
    if (fake_start(f, p->offered, P_BASE))
        return NULL;
    memset(&o, 0, sizeof o);
    o.path = f->path;
    o.packed = 1;
    o.ring_size = p->ring ? p->ring : 8;
    o.tx_mode = p->mode;
    o.rx_buf_size = p->rxbuf;
    o.tx_reserve = p->tx_reserve;
    o.rx_no_irq = p->rx_no_irq;
    o.features = p->accepted;
    o.nregions = p->mode == VUF_TX_INDIRECT ? 2 : 1;
    int r = vuf_connect(&v, &o);
    if (r) {
        note("packed connect to fake: %s", vuf_last_error(NULL));
        fake_stop(f);
        return NULL;
    }
    return v;
}

/* The device side of one packed ring: where it reads available
 * descriptors and where it writes used ones, each with its wrap counter. */
struct pdev {
    struct vuf *v;
    struct vuf_ring_view rv;
    uint16_t pos, upos;
    int wrap, uwrap;
};

static void pdev_init(struct pdev *d, struct vuf *v, unsigned ring)
{
    memset(d, 0, sizeof *d);
    d->v = v;
    vuf_ring_view(v, ring, &d->rv);
    d->wrap = d->uwrap = 1;
}

static void pstep(uint16_t *pos, int *wrap, uint16_t num)
{
    if (++*pos == num) {
        *pos = 0;
        *wrap ^= 1;
    }
}

/* Takes the next available chain: gathers its bytes (read-only
 * descriptors and indirect tables; writable ones only counted into
 * *wcap), returns the number of ring descriptors it occupies (0 if none
 * is available, -1 if malformed), its id from the last descriptor. */
static int pdev_take(struct pdev *d, uint8_t *out, size_t cap, size_t *got, uint16_t *id,
                     uint64_t *wgpa, uint32_t *wcap)
{
    struct virtq_pdesc *ring = d->rv.pdesc;
    uint16_t f = __atomic_load_n(&ring[d->pos].flags, __ATOMIC_ACQUIRE);
    if (!(f & VIRTQ_DESC_F_AVAIL) != !d->wrap || !(f & VIRTQ_DESC_F_USED) == !d->wrap)
        return 0;
    int n = 0;
    size_t have = 0;
    for (;;) {
        struct virtq_pdesc x = ring[d->pos];
        n++;
        pstep(&d->pos, &d->wrap, d->rv.num);
        *id = x.id;
        if (x.flags & VIRTQ_DESC_F_INDIRECT) {
            struct virtq_pdesc *t = vuf_gpa_to_ptr(d->v, x.addr, x.len);
            if (!t)
                return -1;
            for (unsigned k = 0; k < x.len / 16; k++) {
                uint8_t *p = vuf_gpa_to_ptr(d->v, t[k].addr, t[k].len);
                if (!p || have + t[k].len > cap || (t[k].flags & VIRTQ_DESC_F_NEXT))
                    return -1;
                memcpy(out + have, p, t[k].len);
                have += t[k].len;
            }
        } else if (x.flags & VIRTQ_DESC_F_WRITE) {
            if (wgpa)
                *wgpa = x.addr;
            if (wcap)
                *wcap = x.len;
        } else {
            uint8_t *p = vuf_gpa_to_ptr(d->v, x.addr, x.len);
            if (!p || have + x.len > cap)
                return -1;
            memcpy(out + have, p, x.len);
            have += x.len;
        }
        if (!(x.flags & VIRTQ_DESC_F_NEXT))
            break;
        if (n > d->rv.num)
            return -1;
    }
    if (got)
        *got = have;
    return n;
}

/* Writes a used descriptor at the device's used position (flags last,
 * release) and moves it on by skip descriptors. */
static void pdev_used(struct pdev *d, uint16_t id, uint32_t len, unsigned skip)
{
    struct virtq_pdesc *x = &d->rv.pdesc[d->upos];
    x->id = id;
    x->len = len;
    __atomic_store_n(&x->flags,
                     (uint16_t)(d->uwrap ? VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_USED : 0),
                     __ATOMIC_RELEASE);
    for (unsigned k = 0; k < skip; k++)
        pstep(&d->upos, &d->uwrap, d->rv.num);
}

/* RX: the device fills the next available buffer with a header
 * (num_buffers nb) + payload of len bytes (pattern from seed) and marks
 * it used; returns its id or -1. */
static int pdev_rx(struct pdev *d, unsigned nb, unsigned len, unsigned seed, int hdr)
{
    uint16_t id;
    uint64_t gpa = 0;
    uint32_t wcap = 0;
    uint8_t dummy[16];
    if (pdev_take(d, dummy, sizeof dummy, NULL, &id, &gpa, &wcap) != 1)
        return -1;
    unsigned h = hdr ? 12 : 0;
    if (h + len > wcap)
        return -1;
    uint8_t *p = vuf_gpa_to_ptr(d->v, gpa, wcap);
    struct virtio_net_hdr vh = { .num_buffers = (uint16_t)nb };
    if (hdr)
        memcpy(p, &vh, 12);
    for (unsigned k = 0; k < len; k++)
        p[h + k] = (uint8_t)(seed + k);
    pdev_used(d, id, h + len, 1);
    return id;
}

static void test_packed_negotiation(void)
{
    struct fake f;
    struct popts p = { .offered = F_BASE };
    struct vuf_opts o;
    struct vuf *v;
    /* not offered: a clear refusal */
    if (fake_start(&f, F_BASE, P_BASE) == 0) {
        memset(&o, 0, sizeof o);
        o.path = f.path;
        o.packed = 1;
        int r = vuf_connect(&v, &o);
        CHECK(r == -ENOTSUP && strstr(vuf_last_error(NULL), "RING_PACKED"),
              "packed wanted, not offered: -ENOTSUP (%d: %s)", r, vuf_last_error(NULL));
        if (r == 0)
            vuf_close(v);
        fake_stop(&f);
    }
    /* split never acks RING_PACKED or IN_ORDER, even when both sides have them */
    uint64_t all = F_PACKED | (1ull << VIRTIO_F_IN_ORDER);
    if (fake_start(&f, all, P_BASE) == 0) {
        memset(&o, 0, sizeof o);
        o.path = f.path;
        o.features = VUF_DEFAULT_FEATURES | (1ull << VIRTIO_F_RING_PACKED) |
                     (1ull << VIRTIO_F_IN_ORDER);
        int r = vuf_connect(&v, &o);
        CHECK(r == 0 && !(f.acked & (1ull << VIRTIO_F_RING_PACKED)) &&
                  !(f.acked & (1ull << VIRTIO_F_IN_ORDER)) && !vuf_is_packed(v) && f.base[0] == 0,
              "split: RING_PACKED and IN_ORDER not acked (acked 0x%llx), base 0",
              (unsigned long long)f.acked);
        if (r == 0)
            vuf_close(v);
        fake_stop(&f);
    }
    /* packed: features, base, addresses, odd ring size */
    p.offered = all;
    p.ring = 7;
    v = open_packed(&f, &p);
    CHECK(v != NULL, "packed: a ring of 7 (not a power of two) connects");
    if (!v)
        return;
    CHECK((f.acked & (1ull << VIRTIO_F_RING_PACKED)) && !(f.acked & (1ull << VIRTIO_F_IN_ORDER)) &&
              vuf_is_packed(v),
          "packed: RING_PACKED acked, IN_ORDER not (not in opts.features) (0x%llx)",
          (unsigned long long)f.acked);
    int ok = 1;
    for (unsigned r = 0; r < 2; r++) {
        struct vuf_ring_view rv;
        vuf_ring_view(v, r, &rv);
        ok &= rv.packed && rv.desc == NULL && rv.avail == NULL && rv.num == 7;
        ok &= f.base[r] == 0x80008000u;
        ok &= f.addr[r].desc_user_addr == (uint64_t)(uintptr_t)rv.pdesc &&
              f.addr[r].avail_user_addr == (uint64_t)(uintptr_t)rv.driver_event &&
              f.addr[r].used_user_addr == (uint64_t)(uintptr_t)rv.device_event;
        ok &= (f.addr[r].desc_user_addr & 15) == 0 && (f.addr[r].avail_user_addr & 3) == 0 &&
              (f.addr[r].used_user_addr & 3) == 0;
        ok &= (void *)rv.driver_event >= (void *)(rv.pdesc + 7) &&
              (void *)rv.device_event >= (void *)(rv.driver_event + 1);
    }
    CHECK(ok, "packed: SET_VRING_BASE 0x80008000 (got 0x%x), SET_VRING_ADDR = descriptor ring, "
              "driver event, device event", f.base[0]);
    vuf_close(v);
    fake_stop(&f);

    /* split still insists on a power of two */
    memset(&o, 0, sizeof o);
    o.path = "/nonexistent";
    o.ring_size = 7;
    CHECK(vuf_open(&v, &o) == -EINVAL, "split: a ring of 7 is refused");
}

static void test_packed_tx(enum vuf_tx_mode mode, const char *name)
{
    struct fake f;
    struct popts p = { .offered = F_PACKED, .ring = 5, .mode = mode };
    struct vuf *v = open_packed(&f, &p);
    CHECK(v != NULL, "packed %s: connect", name);
    if (!v)
        return;
    struct pdev d;
    pdev_init(&d, v, 1);
    unsigned per = mode == VUF_TX_CHAIN2 ? 2 : 1;
    unsigned slots = mode == VUF_TX_CHAIN2 ? 2 : 5;
    uint8_t frame[100], got[200];
    size_t have = 0;
    uint16_t id = 0;
    for (unsigned i = 0; i < sizeof frame; i++)
        frame[i] = (uint8_t)(i * 3);

    /* enqueued is not yet visible; flushed is */
    int r = vuf_tx_enqueue(v, 0, frame, sizeof frame, NULL);
    int n0 = pdev_take(&d, got, sizeof got, &have, &id, NULL, NULL);
    r |= vuf_tx_flush(v, 0) < 0;
    int n1 = pdev_take(&d, got, sizeof got, &have, &id, NULL, NULL);
    static const uint8_t zero[12];
    CHECK(r == 0 && n0 == 0 && n1 == (int)per && have == 112 && !memcmp(got, zero, 12) &&
              !memcmp(got + 12, frame, sizeof frame),
          "packed %s: invisible until flushed (%d), then %d descriptor(s) with header + "
          "frame (%zu bytes)", name, n0, n1, have);
    int ids_ok = 1;
    for (unsigned k = 0; k < per; k++)
        ids_ok &= d.rv.pdesc[k].id == id;
    CHECK(ids_ok, "packed %s: the buffer id (%u) in every descriptor of the chain", name, id);
    pdev_used(&d, id, 0, (unsigned)n1);
    r = vuf_tx_reclaim(v, 0);
    CHECK(r == 1 && vuf_tx_inflight(v, 0) == 0, "packed %s: reclaim takes the used descriptor "
          "(%d)", name, r);

    /* many frames through a ring of 5: wraps, batches completed out of order */
    unsigned sent = 0, taken = 0, bad = 0, rounds = 0;
    uint32_t seq = 1000;
    while (sent < 60 && rounds++ < 1000) {
        unsigned b = 0;
        uint8_t fr[80];
        for (;;) {
            vuf_frame_fill(fr, sizeof fr, (const uint8_t *)"\2\0\0\0\0\1",
                           (const uint8_t *)"\2\0\0\0\0\2", seq + sent + b, 7);
            if (vuf_tx_enqueue(v, 0, fr, sizeof fr, NULL) != 0)
                break;
            b++;
        }
        if (vuf_tx_flush(v, 0) < 0)
            bad++;
        uint16_t ids[8];
        int ns[8];
        unsigned k = 0;
        while (k < 8) {
            int nd = pdev_take(&d, got, sizeof got, &have, &ids[k], NULL, NULL);
            if (nd <= 0) {
                bad += nd < 0;
                break;
            }
            uint32_t s, fl;
            if (have != 12 + 80 || vuf_frame_check(got + 12, 80, &s, &fl) ||
                s != seq + taken)
                bad++;
            ns[k++] = nd;
            taken++;
        }
        /* complete in reverse order: the driver must skip by each id's chain */
        for (unsigned j = k; j-- > 0;)
            pdev_used(&d, ids[j], 0, (unsigned)ns[j]);
        r = vuf_tx_reclaim(v, 0);
        if (r != (int)k)
            bad++;
        sent += b;
    }
    CHECK(bad == 0 && sent >= 60 && taken == sent && vuf_tx_inflight(v, 0) == 0,
          "packed %s: %u frames through a ring of 5 (wraps, out-of-order completion), %u "
          "problems", name, sent, bad);
    /* the ring takes exactly `slots` frames */
    unsigned fill = 0;
    while (vuf_tx_enqueue(v, 0, frame, 60, NULL) == 0)
        fill++;
    CHECK(fill == slots, "packed %s: ring takes %u frames before -EAGAIN (%u)", name, slots, fill);
    vuf_close(v);
    fake_stop(&f);
}

static void test_packed_kicks(void)
{
    struct fake f;
    struct popts p = { .offered = F_PACKED, .ring = 6 };
    uint8_t frame[60] = { 0 }, got[128];
    size_t have;
    uint16_t id;
    struct vuf *v = open_packed(&f, &p);
    if (!v) {
        CHECK(0, "packed kicks: connect");
        return;
    }
    struct pdev d;
    pdev_init(&d, v, 1);
    kicks_pending(d.rv.kick_fd);
    d.rv.device_event->flags = VIRTQ_EVENT_F_DISABLE;
    vuf_send(v, 0, frame, 60);
    CHECK(kicks_pending(d.rv.kick_fd) == 0, "packed device event DISABLE: no kick");
    d.rv.device_event->flags = VIRTQ_EVENT_F_ENABLE;
    vuf_send(v, 0, frame, 60);
    CHECK(kicks_pending(d.rv.kick_fd) == 1, "packed device event ENABLE: kick");
    /* DESC without EVENT_IDX negotiated: not interpretable, kick */
    d.rv.device_event->flags = VIRTQ_EVENT_F_DESC;
    d.rv.device_event->off_wrap = 5 | 0x8000;
    vuf_send(v, 0, frame, 60);
    CHECK(kicks_pending(d.rv.kick_fd) == 1, "packed DESC without EVENT_IDX: kick anyway");
    struct vuf_ring_view rx;
    vuf_ring_view(v, 0, &rx);
    CHECK(rx.driver_event->flags == VIRTQ_EVENT_F_ENABLE,
          "packed RX without EVENT_IDX: driver event ENABLE (%u)", rx.driver_event->flags);
    vuf_close(v);
    fake_stop(&f);

    p.offered = F_PACKED | (1ull << VIRTIO_RING_F_EVENT_IDX);
    v = open_packed(&f, &p);
    if (!v) {
        CHECK(0, "packed EVENT_IDX: connect");
        return;
    }
    pdev_init(&d, v, 1);
    vuf_ring_view(v, 0, &rx);
    CHECK(rx.driver_event->flags == VIRTQ_EVENT_F_DESC && rx.driver_event->off_wrap == 0x8000,
          "packed RX with EVENT_IDX: driver event DESC at used position 0, wrap 1 (0x%x)",
          rx.driver_event->off_wrap);
    struct vuf_ring_view tx;
    vuf_ring_view(v, 1, &tx);
    CHECK(tx.driver_event->flags == VIRTQ_EVENT_F_DISABLE,
          "packed TX without tx_irq: driver event DISABLE");
    kicks_pending(d.rv.kick_fd);
    /* the device wants a kick when descriptor 3 (wrap 1) is made available */
    d.rv.device_event->off_wrap = 3 | 0x8000;
    d.rv.device_event->flags = VIRTQ_EVENT_F_DESC;
    unsigned k1 = 0;
    for (int i = 0; i < 3; i++) {
        vuf_send(v, 0, frame, 60);   /* 0, 1, 2 */
        k1 += (unsigned)kicks_pending(d.rv.kick_fd);
    }
    vuf_send(v, 0, frame, 60);       /* 3 */
    uint64_t k2 = kicks_pending(d.rv.kick_fd);
    vuf_send(v, 0, frame, 60);       /* 4 */
    uint64_t k3 = kicks_pending(d.rv.kick_fd);
    CHECK(k1 == 0 && k2 == 1 && k3 == 0,
          "packed DESC: no kick before descriptor 3, one at it, none after (%u %llu %llu)", k1,
          (unsigned long long)k2, (unsigned long long)k3);
    /* the device consumes all 5, completes them, asks for position 1 of
     * the next lap (wrap 0); a batch of 3 covers 5, 0, 1 (wrapping) */
    for (int i = 0; i < 5; i++) {
        int nd = pdev_take(&d, got, sizeof got, &have, &id, NULL, NULL);
        pdev_used(&d, id, 0, (unsigned)(nd > 0 ? nd : 1));
    }
    vuf_tx_reclaim(v, 0);
    d.rv.device_event->off_wrap = 1;
    for (int i = 0; i < 3; i++)
        vuf_tx_enqueue(v, 0, frame, 60, NULL);
    int k = vuf_tx_flush(v, 0);
    int u16 = vuf_packed_avail_pos(v, 1, &id, NULL);
    int wrap = -1;
    vuf_packed_avail_pos(v, 1, NULL, &wrap);
    CHECK(k == 1 && kicks_pending(d.rv.kick_fd) == 1 && u16 == 0 && id == 2 && wrap == 0,
          "packed DESC: one kick for a batch across the wrap reaching (1, wrap 0); avail now "
          "(%u, wrap %d)", id, wrap);
    /* event off_wrap behind the batch: no kick */
    for (int i = 0; i < 3; i++) {
        int nd = pdev_take(&d, got, sizeof got, &have, &id, NULL, NULL);
        pdev_used(&d, id, 0, (unsigned)(nd > 0 ? nd : 1));
    }
    vuf_tx_reclaim(v, 0);
    d.rv.device_event->off_wrap = 1;   /* (1, wrap 0) again: already passed */
    vuf_send(v, 0, frame, 60);
    CHECK(kicks_pending(d.rv.kick_fd) == 0, "packed DESC: no kick for an event already passed");
    vuf_close(v);
    fake_stop(&f);
}

static void test_packed_rx(void)
{
    struct fake f;
    struct popts p = { .offered = F_PACKED | (1ull << VIRTIO_RING_F_EVENT_IDX), .ring = 6,
                       .rxbuf = 512 };
    struct vuf *v = open_packed(&f, &p);
    if (!v) {
        CHECK(0, "packed RX: connect");
        return;
    }
    struct pdev d;
    pdev_init(&d, v, 0);
    static uint8_t out[4096];
    CHECK(vuf_recv(v, 0, out, sizeof out) == -EAGAIN, "packed RX: nothing used: -EAGAIN");
    /* frames of one and of two buffers, many laps of a ring of 6 */
    unsigned bad = 0, frames = 0;
    for (unsigned i = 0; i < 40; i++) {
        int two = i % 3 == 1;
        unsigned len = two ? 500 + 40 : 60 + i;
        if (pdev_rx(&d, two ? 2 : 1, two ? 500 : len, i, 1) < 0)
            bad++;
        if (two) {
            if (vuf_recv(v, 0, out, sizeof out) != -EAGAIN)
                bad++;   /* second buffer not used yet */
            if (pdev_rx(&d, 0, 40, i + 500, 0) < 0)
                bad++;
        }
        unsigned nb = 0;
        int r = vuf_recv_ex(v, 0, out, sizeof out, NULL, &nb);
        if (r != (int)len || nb != (two ? 2u : 1u))
            bad++;
        for (int k = 0; k < r && k < 500; k++)
            if (out[k] != (uint8_t)(i + (unsigned)k))
                bad++;
        if (two && r == 540 && out[500] != (uint8_t)(i + 500))
            bad++;
        frames++;
    }
    struct vuf_ring_view rx;
    vuf_ring_view(v, 0, &rx);
    CHECK(bad == 0 && frames == 40, "packed RX: 40 frames (every third in two buffers) through "
          "a ring of 6, %u problems", bad);
    CHECK(rx.driver_event->flags == VIRTQ_EVENT_F_DESC &&
              rx.driver_event->off_wrap == (uint16_t)(rx.used_pos | rx.used_wrap << 15),
          "packed RX: driver event DESC follows the used position (0x%x, used %u wrap %d)",
          rx.driver_event->off_wrap, rx.used_pos, rx.used_wrap);
    vuf_close(v);
    fake_stop(&f);

    /* rx_no_irq: DISABLE, armed only while waiting */
    p.rx_no_irq = 1;
    v = open_packed(&f, &p);
    if (!v) {
        CHECK(0, "packed rx_no_irq: connect");
        return;
    }
    pdev_init(&d, v, 0);
    int f0 = d.rv.driver_event->flags;
    int w = vuf_wait(v, 20);
    int f1 = d.rv.driver_event->flags;
    pdev_rx(&d, 1, 60, 1, 1);
    int w2 = vuf_wait(v, 1000);
    int r = vuf_recv(v, 0, out, sizeof out);
    int f2 = d.rv.driver_event->flags;
    CHECK(f0 == VIRTQ_EVENT_F_DISABLE && w == 0 && f1 == VIRTQ_EVENT_F_DESC && w2 == 1 &&
              r == 60 && f2 == VIRTQ_EVENT_F_DISABLE,
          "packed rx_no_irq: DISABLE, DESC while waiting, pending work seen, DISABLE after "
          "(%d %d %d %d %d %d)", f0, w, f1, w2, r, f2);
    vuf_close(v);
    fake_stop(&f);
}

/* A device that misbehaves on a packed ring. */
static void test_packed_hostile(void)
{
    struct fake f;
    struct popts p = { .offered = F_PACKED, .ring = 8, .rxbuf = 512 };
    uint8_t frame[60] = { 0 };
    static uint8_t out[4096];
    struct { uint16_t id; uint32_t len; int send; const char *what; } tc[] = {
        { 0, 0, 0, "TX used descriptor with nothing in flight" },
        { 8, 0, 1, "TX used id 8 >= ring size" },
        { 3, 0, 1, "TX used id 3 never handed out" },
        { 0, 100000, 1, "TX used len 100000 > buffer" },
    };
    for (unsigned i = 0; i < sizeof tc / sizeof tc[0]; i++) {
        struct vuf *v = open_packed(&f, &p);
        if (!v)
            continue;
        struct pdev d;
        pdev_init(&d, v, 1);
        if (tc[i].send)
            vuf_send(v, 0, frame, 60);
        pdev_used(&d, tc[i].id, tc[i].len, 1);
        int r = vuf_tx_reclaim(v, 0);
        CHECK(r == -EPROTO && vuf_ring_broken(v, 1), "packed %s: -EPROTO (%d: %s)", tc[i].what,
              r, vuf_last_error(v));
        vuf_close(v);
        fake_stop(&f);
    }
    /* an enqueued but unpublished buffer cannot be returned */
    struct vuf *v = open_packed(&f, &p);
    if (v) {
        struct pdev d;
        pdev_init(&d, v, 1);
        vuf_tx_enqueue(v, 0, frame, 60, NULL);
        pdev_used(&d, 0, 0, 1);
        int r = vuf_tx_reclaim(v, 0);
        CHECK(r == -EPROTO, "packed TX used id of a buffer not yet published: -EPROTO (%d)", r);
        vuf_close(v);
        fake_stop(&f);
    }
    struct { uint16_t id0; uint32_t len0; unsigned nb; uint16_t id1; int nused; const char *what; }
    rc[] = {
        { 9, 100, 1, 0, 1, "RX used id 9 >= ring size" },
        { 2, 513, 1, 0, 1, "RX used len 513 > 512-byte buffer" },
        { 2, 5, 1, 0, 1, "RX used len 5 < header" },
        { 2, 100, 0, 0, 1, "RX num_buffers 0" },
        { 2, 100, 9, 0, 1, "RX num_buffers 9 > buffers posted" },
        { 2, 512, 2, 2, 2, "RX same buffer id twice in one frame" },
    };
    for (unsigned i = 0; i < sizeof rc / sizeof rc[0]; i++) {
        v = open_packed(&f, &p);
        if (!v)
            continue;
        struct pdev d;
        pdev_init(&d, v, 0);
        struct virtio_net_hdr h = { .num_buffers = (uint16_t)rc[i].nb };
        memcpy(vuf_gpa_to_ptr(v, d.rv.pdesc[2].addr, 12), &h, 12);
        pdev_used(&d, rc[i].id0, rc[i].len0, 1);
        if (rc[i].nused == 2)
            pdev_used(&d, rc[i].id1, 100, 1);
        int r = vuf_recv(v, 0, out, sizeof out);
        CHECK(r == -EPROTO && vuf_ring_broken(v, 0), "packed %s: -EPROTO (%d: %s)", rc[i].what, r,
              vuf_last_error(v));
        vuf_close(v);
        fake_stop(&f);
    }
}

static void test_packed_in_order(void)
{
    struct fake f;
    uint64_t io = 1ull << VIRTIO_F_IN_ORDER;
    struct popts p = { .offered = F_PACKED | io, .accepted = VUF_DEFAULT_FEATURES | io,
                       .ring = 10, .mode = VUF_TX_CHAIN2 };
    uint8_t frame[60] = { 0 }, got[128];
    size_t have;
    uint16_t id, last = 0;
    struct vuf *v = open_packed(&f, &p);
    if (!v) {
        CHECK(0, "packed IN_ORDER: connect");
        return;
    }
    CHECK(vuf_has_feature(v, VIRTIO_F_IN_ORDER), "packed: IN_ORDER acked when opts.features "
          "has it");
    struct pdev d;
    pdev_init(&d, v, 1);
    unsigned bad = 0, done = 0;
    for (unsigned round = 0; round < 7; round++) {
        unsigned b = 0;
        while (vuf_tx_enqueue(v, 0, frame, 60, NULL) == 0)
            b++;
        vuf_tx_flush(v, 0);
        unsigned nd = 0, k = 0;
        int n;
        while ((n = pdev_take(&d, got, sizeof got, &have, &id, NULL, NULL)) > 0) {
            nd += (unsigned)n;
            last = id;
            k++;
        }
        if (k != b)
            bad++;
        /* one used descriptor for the whole batch, naming its last buffer */
        pdev_used(&d, last, 0, nd);
        int r = vuf_tx_reclaim(v, 0);
        if (r != (int)b || vuf_tx_inflight(v, 0) != 0)
            bad++;
        done += (unsigned)(r > 0 ? r : 0);
    }
    struct vuf_ring_view tx;
    vuf_ring_view(v, 1, &tx);
    CHECK(bad == 0 && done == 35 && tx.used_pos == d.upos && tx.used_wrap == d.uwrap,
          "packed IN_ORDER: 7 batches of 5 two-descriptor chains, one used descriptor each: "
          "all %u reclaimed, used position %u/%d as the device's", done, tx.used_pos,
          tx.used_wrap);
    /* RX: a used descriptor naming a later buffer (a batch) is refused */
    static uint8_t out[4096];
    struct pdev r0;
    pdev_init(&r0, v, 0);
    struct virtio_net_hdr h = { .num_buffers = 1 };
    memcpy(vuf_gpa_to_ptr(v, r0.rv.pdesc[1].addr, 12), &h, 12);
    pdev_used(&r0, 1, 60, 2);
    int r = vuf_recv(v, 0, out, sizeof out);
    CHECK(r == -EPROTO, "packed IN_ORDER RX: one used descriptor for two buffers: -EPROTO (%d: "
          "%s)", r, vuf_last_error(v));
    vuf_close(v);
    fake_stop(&f);
}

static void test_packed_hand_push(void)
{
    struct fake f;
    struct popts p = { .offered = F_PACKED, .ring = 6, .tx_reserve = 2 };
    uint8_t frame[60] = { 0 }, got[256];
    size_t have;
    uint16_t id;
    struct vuf *v = open_packed(&f, &p);
    if (!v) {
        CHECK(0, "packed hand push: connect");
        return;
    }
    struct pdev d;
    pdev_init(&d, v, 1);
    uint64_t gpa;
    uint8_t *buf = vuf_scratch_alloc(v, 12 + 64, 64, &gpa);
    memset(buf, 0, 12);
    memset(buf + 12, 0x5a, 64);
    /* library frames 0..2, then a hand-made chain of 2 with id 5, wrap */
    int ok = 1;
    for (int i = 0; i < 3; i++)
        ok &= vuf_send(v, 0, frame, 60) == 0;
    struct virtq_pdesc c[2] = {
        { gpa, 12, 5, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_USED },   /* stray USED bit replaced */
        { gpa + 12, 64, 5, 0 },
    };
    ok &= vuf_packed_avail_push(v, 1, c, 2) == 0;
    uint16_t pos;
    int wrap;
    vuf_packed_avail_pos(v, 1, &pos, &wrap);
    ok &= pos == 5 && wrap == 1;
    ok &= (d.rv.pdesc[3].flags & (VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_USED)) == VIRTQ_DESC_F_AVAIL;
    CHECK(ok, "packed hand push: 2 descriptors after 3 library frames, avail now (%u, %d)",
          pos, wrap);
    CHECK(vuf_packed_avail_push(v, 1, c, 2) == -ENOSPC, "packed hand push: -ENOSPC with one "
          "descriptor free");
    unsigned k = 0, hand = 0;
    int n;
    uint16_t ids[4];
    int ns[4];
    while (k < 4 && (n = pdev_take(&d, got, sizeof got, &have, &ids[k], NULL, NULL)) > 0) {
        if (ids[k] == 5)
            hand = have == 76 && got[20] == 0x5a && n == 2;
        ns[k++] = n;
    }
    CHECK(k == 4 && hand, "packed hand push: the device finds 3 frames and the hand-made chain");
    for (unsigned j = k; j-- > 0;)
        pdev_used(&d, ids[j], 0, (unsigned)ns[j]);
    int r = vuf_tx_reclaim(v, 0);
    CHECK(r == 4 && vuf_tx_inflight(v, 0) == 0 && !vuf_ring_broken(v, 1),
          "packed hand push: reclaim skips the returned hand-made chain (%d)", r);
    /* library frames go on after it, across the wrap */
    ok = vuf_send(v, 0, frame, 60) == 0 && vuf_send(v, 0, frame, 60) == 0;
    n = pdev_take(&d, got, sizeof got, &have, &id, NULL, NULL);
    int n2 = pdev_take(&d, got, sizeof got, &have, &id, NULL, NULL);
    CHECK(ok && n == 1 && n2 == 1 && d.pos == 1 && d.wrap == 0,
          "packed hand push: library frames follow it across the wrap");
    CHECK(vuf_avail_push(v, 1, 0) == -EINVAL, "vuf_avail_push on a packed ring: -EINVAL");
    vuf_close(v);
    fake_stop(&f);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    alarm(60);
    snprintf(D.dir, sizeof D.dir, "/tmp/lwvt-lib.XXXXXX");
    if (!mkdtemp(D.dir))
        return 1;
    snprintf(D.log, sizeof D.log, "%s/none.log", D.dir);
    test_tx_layout(VUF_TX_DIRECT, "direct");
    test_tx_layout(VUF_TX_CHAIN2, "chain2");
    test_tx_layout(VUF_TX_INDIRECT, "indirect (2 regions)");
    test_kick_suppression(0);
    test_kick_suppression(1);
    test_used_bounds();
    test_wait_and_raw();
    test_packed_negotiation();
    test_packed_tx(VUF_TX_DIRECT, "direct");
    test_packed_tx(VUF_TX_CHAIN2, "chain2");
    test_packed_tx(VUF_TX_INDIRECT, "indirect (2 regions)");
    test_packed_kicks();
    test_packed_rx();
    test_packed_hostile();
    test_packed_in_order();
    test_packed_hand_push();
    return test_finish();
}
