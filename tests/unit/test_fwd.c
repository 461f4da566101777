/*
 * test_fwd.c - the forwarding loop (fwd.c) over fake guests, and the
 * threading contract it keeps with the control plane:
 *  - a burst that mixes good chains with a hostile one delivers the good
 *    ones before it exactly once, completes them, and stops only that
 *    device;
 *  - frames for a destination another worker is filling are given back to
 *    the ring and delivered on a later pass, exactly once and in order;
 *  - with VIRTIO_F_IN_ORDER a pass writes one used entry for its burst;
 *  - a real worker keeps forwarding for one port while another port on
 *    the same worker is held by the control plane's write lock, and
 *    serves that one as soon as it is released.
 */
#define _GNU_SOURCE
#include <unistd.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <time.h>

#include "netguest.h"
#include "procfd.h"
#include "vu_ctrl.h"
#include "worker.h"

static struct guest ga, gb, gc;

static const uint8_t MAC_B[6] = { 0x52, 0x54, 0, 0, 0, 0xbb };
static const uint8_t MAC_C[6] = { 0x52, 0x54, 0, 0, 0, 0xcc };

static void setup(uint64_t features)
{
    switch_init(&sw, &ports);
    guest_init(&ga, 0, "A", features);
    guest_init(&gb, 1, "B", features);
    guest_init(&gc, 2, "C", features);
    ports.n = 3;
    switch_learn(&sw, MAC_B, 1);
    switch_learn(&sw, MAC_C, 2);
    for (int i = 0; i < 64; i++) {
        post_rx(&gb, 2048);
        post_rx(&gc, 2048);
    }
}

static void teardown(void)
{
    mem_clear(&ga.port.dev.mem);
    mem_clear(&gb.port.dev.mem);
    mem_clear(&gc.port.dev.mem);
}

/* Queues a frame of len bytes from src to dst (last MAC bytes) on g's TX
 * ring, header and frame in one descriptor. */
static void send_one(struct guest *g, uint8_t dst, uint8_t src, uint8_t seed, size_t len)
{
    uint8_t f[2048];
    make_frame(f, len, dst, src, seed);
    struct vq *vq = &g->port.dev.q[1].vq;
    uint16_t i = g->tx_desc_next++ % RING;
    uint64_t a = galloc(g, VIRTIO_NET_HDR_LEN + len);
    memset(gptr(g, a), 0, VIRTIO_NET_HDR_LEN);
    memcpy((uint8_t *)gptr(g, a) + VIRTIO_NET_HDR_LEN, f, len);
    vq->desc[i] = (struct virtq_desc){ a, (uint32_t)(VIRTIO_NET_HDR_LEN + len), 0, 0 };
    vq->avail->ring[vq->avail->idx % RING] = i;
    __atomic_store_n(&vq->avail->idx, (uint16_t)(vq->avail->idx + 1), __ATOMIC_RELEASE);
}

/* Checks that g received exactly the frames with these seeds, in order. */
static bool received(struct guest *g, uint16_t *seen, const uint8_t *seeds, unsigned n,
                     uint8_t src, size_t len)
{
    uint8_t f[2048], got[2048];
    uint16_t nb;
    for (unsigned i = 0; i < n; i++) {
        make_frame(f, len, (uint8_t)(g == &gb ? 0xbb : 0xcc), src, seeds[i]);
        if (read_rx(g, seen, got, sizeof(got), &nb) != (int)len || memcmp(got, f, len) != 0)
            return false;
    }
    return read_rx(g, seen, got, sizeof(got), &nb) < 0;   /* and nothing more */
}

static unsigned pass(struct guest *g, bool *more)
{
    unsigned n = fwd_tx_pass(&ctx, &g->port.dev.q[1], 256, false, more);
    fwd_release(&ctx);
    fwd_flush(&ctx);
    return n;
}

static void test_mixed_burst(void)
{
    setup(feats(true));
    send_one(&ga, 0xbb, 0xaa, 1, 100);
    send_one(&ga, 0xbb, 0xaa, 2, 100);
    /* Third chain: a descriptor whose next points at itself. */
    struct vq *tx = &ga.port.dev.q[1].vq;
    uint16_t i = ga.tx_desc_next++ % RING;
    tx->desc[i] = (struct virtq_desc){ GPA + 0x40000, 64, VIRTQ_DESC_F_NEXT, i };
    tx->avail->ring[tx->avail->idx % RING] = i;
    tx->avail->idx++;
    send_one(&ga, 0xbb, 0xaa, 4, 100);
    bool more;
    unsigned n = pass(&ga, &more);
    uint16_t seen = 0;
    CHECK(n == 2, "the two chains before the bad one taken (%u)", n);
    CHECK(received(&gb, &seen, (uint8_t[]){ 1, 2 }, 2, 0xaa, 100),
          "the good frames delivered exactly once, in order");
    CHECK(tx->used->idx == 2, "and completed (used idx %u)", tx->used->idx);
    CHECK(dev_is_broken(&ga.port.dev) && !dev_is_broken(&gb.port.dev),
          "the sender is stopped, the receiver is not");
    CHECK(pass(&ga, &more) == 0 && received(&gb, &seen, NULL, 0, 0xaa, 100),
          "nothing more from the broken ring");
    teardown();
}

static void test_deferred(void)
{
    setup(feats(true));
    struct holder h;
    holder_start(&h, &gb.port.dev.q[0].rx_lock);
    send_one(&ga, 0xcc, 0xaa, 1, 80);   /* to C: free */
    send_one(&ga, 0xbb, 0xaa, 2, 80);   /* to B: another "worker" fills it */
    send_one(&ga, 0xbb, 0xaa, 3, 80);
    send_one(&ga, 0xcc, 0xaa, 4, 80);
    bool more;
    struct vq *tx = &ga.port.dev.q[1].vq;
    unsigned n = pass(&ga, &more);
    uint16_t seen_b = 0, seen_c = 0;
    CHECK(n == 1 && more, "one frame taken, the rest deferred (%u, more %d)", n, more);
    CHECK(tx->used->idx == 1 && tx->last_avail == 1, "one chain completed, three given back "
          "(used %u, last_avail %u)", tx->used->idx, tx->last_avail);
    CHECK(received(&gc, &seen_c, (uint8_t[]){ 1 }, 1, 0xaa, 80), "C got the first frame");
    CHECK(gb.port.dev.q[0].vq.used->idx == 0, "B got nothing yet");
    holder_stop(&h);
    n = pass(&ga, &more);
    CHECK(n == 3 && !more && tx->used->idx == 4, "the rest taken on the next pass (%u)", n);
    CHECK(received(&gb, &seen_b, (uint8_t[]){ 2, 3 }, 2, 0xaa, 80) &&
          received(&gc, &seen_c, (uint8_t[]){ 4 }, 1, 0xaa, 80),
          "every frame delivered exactly once, in order per destination");
    teardown();
}

static void test_in_order(void)
{
    setup(feats(true) | 1ull << VIRTIO_F_IN_ORDER);
    struct vq *tx = &ga.port.dev.q[1].vq, *rx = &gb.port.dev.q[0].vq;
    memset(tx->used->ring, 0xee, 8 * sizeof(tx->used->ring[0]));
    for (uint8_t s = 0; s < 5; s++)
        send_one(&ga, 0xbb, 0xaa, s, 64);
    bool more;
    CHECK(pass(&ga, &more) == 5 && tx->used->idx == 5, "5 frames, used idx 5");
    CHECK(tx->used->ring[0].id == 4 && tx->used->ring[1].id == 0xeeeeeeeeu,
          "one used entry, in the batch's first slot, names the last chain (%x, %x)",
          tx->used->ring[0].id, tx->used->ring[1].id);
    uint16_t seen = 0;
    CHECK(received(&gb, &seen, (uint8_t[]){ 0, 1, 2, 3, 4 }, 5, 0xaa, 64),
          "all delivered in order");
    CHECK(rx->used->idx == 5 && rx->used->ring[4].id == 4 && rx->used->ring[4].len == 76,
          "RX keeps an entry per buffer: the guest needs every length");
    teardown();
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Waits up to secs for g's RX used index to reach want. */
static bool wait_used(struct guest *g, uint16_t want, double secs)
{
    for (double t = now_s(); now_s() - t < secs;) {
        if (__atomic_load_n(&g->port.dev.q[0].vq.used->idx, __ATOMIC_ACQUIRE) == want)
            return true;
        usleep(200);
    }
    return false;
}

static void kick(struct guest *g)
{
    uint64_t one = 1;
    if (write(g->port.dev.q[1].kickfd, &one, 8) != 8)
        perror("kick");
}

static void test_worker_skips_locked_device(void)
{
    setup(feats(true));
    if (workers_init(1) < 0) {
        CHECK(0, "worker set up");
        return;
    }
    struct guest *src[2] = { &ga, &gc };
    for (int i = 0; i < 2; i++) {
        struct vqueue *q = &src[i]->port.dev.q[1];
        worker_assign_queue(q);
        vu_dev_lock(&src[i]->port.dev);
        q->kickfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        worker_watch_queue(q);
        vu_dev_unlock(&src[i]->port.dev);
    }
    workers_commit();
    workers_start();
    /* C is held by the control plane (a long SET_MEM_TABLE, say) with a
     * frame waiting; A keeps sending to B on the same worker. */
    vu_dev_lock(&gc.port.dev);
    send_one(&gc, 0xbb, 0xcc, 100, 90);
    kick(&gc);
    bool flowing = true;
    for (uint16_t k = 1; k <= 20; k++) {
        send_one(&ga, 0xbb, 0xaa, (uint8_t)k, 90);
        kick(&ga);
        flowing &= wait_used(&gb, k, 2);
    }
    CHECK(flowing, "A's 20 frames reached B one by one while C was held (B used %u)",
          gb.port.dev.q[0].vq.used->idx);
    uint16_t seen = 0;
    uint8_t seeds[20];
    for (int k = 0; k < 20; k++)
        seeds[k] = (uint8_t)(k + 1);
    CHECK(received(&gb, &seen, seeds, 20, 0xaa, 90), "only A's frames, in order");
    CHECK(gc.port.dev.q[1].vq.used->idx == 0, "C not served while held");
    vu_dev_unlock(&gc.port.dev);
    CHECK(wait_used(&gb, 21, 2), "C served once released (its kick was not lost)");
    CHECK(received(&gb, &seen, (uint8_t[]){ 100 }, 1, 0xcc, 90), "C's frame, exactly once");
    workers_stop();
    for (int i = 0; i < 2; i++) {
        struct vqueue *q = &src[i]->port.dev.q[1];
        close(q->kickfd);
        q->kickfd = -1;
        q->worker = NULL;
    }
    teardown();
}

/* workers_init that runs out of fds half-way gives back what it made. */
static void test_workers_init_failure(void)
{
    struct rlimit old, low;
    getrlimit(RLIMIT_NOFILE, &old);
    unsigned before = (unsigned)proc_fd_count(0);
    /* Room for a few workers' fds, not for 64 workers' 192. */
    low = old;
    low.rlim_cur = before + 10;
    CHECK(setrlimit(RLIMIT_NOFILE, &low) == 0, "lower the fd limit");
    int r = workers_init(64);
    setrlimit(RLIMIT_NOFILE, &old);
    unsigned after = (unsigned)proc_fd_count(0);
    CHECK(r < 0 && workers_count() == 0, "workers_init fails when fds run out (%d)", r);
    CHECK(after == before, "and leaves no fd behind (%u before, %u after)", before, after);
    CHECK(workers_init(2) == 0 && workers_count() == 2, "a second try succeeds");
    workers_stop();
    CHECK((unsigned)proc_fd_count(0) == before, "stopped workers leave no fd behind");
}

int main(void)
{
    test_mixed_burst();
    test_deferred();
    test_in_order();
    test_worker_skips_locked_device();
    test_workers_init_failure();
    return check_done("test_fwd");
}
