/*
 * test_vuf_lib - self-test of the vuf frontend library against a scripted
 * fake backend (a thread in this process that only answers the handshake).
 * The test itself plays the device by writing into the shared rings, to
 * check descriptor layout, kick suppression, mergeable RX, interrupts, and
 * that the library refuses whatever a misbehaving device writes (used->idx
 * jumping, used id out of range or not in flight, len larger than the
 * buffer, bad num_buffers).  Needs no daemon.
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
    return test_finish();
}
