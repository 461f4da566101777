/*
 * fwd-micro - the forwarding path in one thread, without sockets or
 * threads: two guests in memfds joined by the switch, the way
 * tests/unit/test_net.c builds them.  Before each pass guest A posts N
 * frames on its TX ring (one descriptor each, header and frame together, as
 * DPDK's virtio-user sends them) and guest B N receive buffers of 2 KiB;
 * then fwd_tx_pass moves them and fwd_flush signals, as a worker does.
 *
 * What it is for: a deterministic count of the instructions the datapath
 * spends per frame, by stage, under valgrind --tool=callgrind
 * (docs/performance.md).  Its own ns/frame is single-core with warm
 * caches, so it says nothing about the cross-core cache misses that
 * dominate a real run: measure those with tests/integration/dpdk_compare.sh.
 *
 *   fwd-micro [-n FRAMES] [-i PASSES] [-s SIZE] [-o] [-M] [-p] [-l]
 *   -n  frames per pass (default 32, at most 256)
 *   -i  passes (default 100000)
 *   -s  frame size in bytes (default 64)
 *   -o  negotiate VIRTIO_F_IN_ORDER
 *   -M  no mergeable RX buffers
 *   -p  packed virtqueues (VIRTIO_F_RING_PACKED) instead of split
 *   -l  dirty logging on in both guests (live migration: LOG_ALL and a log)
 * Exit status 0 only if every frame arrived in every pass.
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "netguest.h"

#define RXBUF 2048u

static struct guest ga, gb;
static const uint8_t mac_a[6] = { 0x52, 0x54, 0, 0, 0, 0xaa };
static const uint8_t mac_b[6] = { 0x52, 0x54, 0, 0, 0, 0xbb };

static void die(const char *what)
{
    fprintf(stderr, "fwd-micro: %s\n", what);
    exit(1);
}

/* A packed ring's driver side: where the next descriptor goes. */
struct pdriver {
    uint16_t pos;
    bool wrap;
};
static struct pdriver ptx, prx;

/* Makes n one-descriptor buffers available on a packed ring, IDs 0..n-1,
 * with the addresses and lengths of descs[0..n-1]; each descriptor's flags
 * are stored last, with release, as a driver does. */
static void post_packed(struct vq *vq, struct pdriver *d, const struct virtq_desc *descs,
                        unsigned n)
{
    for (unsigned k = 0; k < n; k++) {
        struct virtq_pdesc *p = &vq->pdesc[d->pos];
        p->addr = descs[k].addr;
        p->len = descs[k].len;
        p->id = (uint16_t)k;
        uint16_t fl = (uint16_t)(descs[k].flags & VIRTQ_DESC_F_WRITE) |
                      (d->wrap ? VIRTQ_DESC_F_AVAIL : VIRTQ_DESC_F_USED);
        __atomic_store_n(&p->flags, fl, __ATOMIC_RELEASE);
        if (++d->pos == RING) {
            d->pos = 0;
            d->wrap = !d->wrap;
        }
    }
}

/* Makes n chains available on a ring, descriptors 0..n-1 in order. */
static void post(struct vq *vq, unsigned n)
{
    uint16_t idx = vq->avail->idx;
    for (unsigned k = 0; k < n; k++)
        vq->avail->ring[(uint16_t)(idx + k) % RING] = (uint16_t)k;
    __atomic_store_n(&vq->avail->idx, (uint16_t)(idx + n), __ATOMIC_RELEASE);
}

int main(int argc, char **argv)
{
    unsigned n = 32, size = 64;
    unsigned long passes = 100000;
    bool in_order = false, mrg = true, packed = false, logging = false;
    int c;
    while ((c = getopt(argc, argv, "n:i:s:oMpl")) != -1) {
        switch (c) {
        case 'n': n = (unsigned)atoi(optarg); break;
        case 'i': passes = strtoul(optarg, NULL, 10); break;
        case 's': size = (unsigned)atoi(optarg); break;
        case 'o': in_order = true; break;
        case 'M': mrg = false; break;
        case 'p': packed = true; break;
        case 'l': logging = true; break;
        default:
            fprintf(stderr, "usage: fwd-micro [-n FRAMES] [-i PASSES] [-s SIZE] [-o] [-M] [-p] [-l]\n");
            return 2;
        }
    }
    if (n == 0 || n > RING || size < 60 || size + VIRTIO_NET_HDR_LEN > RXBUF)
        die("need 1 <= FRAMES <= 256 and 60 <= SIZE <= 2036");
    uint64_t f = 1ull << VIRTIO_F_VERSION_1 | (mrg ? 1ull << VIRTIO_NET_F_MRG_RXBUF : 0) |
                 (in_order ? 1ull << VIRTIO_F_IN_ORDER : 0) |
                 (packed ? 1ull << VIRTIO_F_RING_PACKED : 0);
    switch_init(&sw, &ports);
    guest_init(&ga, 0, "A", f);
    guest_init(&gb, 1, "B", f);
    if (check_failed())
        die("cannot set up the guests");
    switch_learn(&sw, mac_b, 1);
    for (unsigned g = 0; logging && g < 2; g++) {
        struct guest_mem *m = &(g ? &gb : &ga)->port.dev.mem;
        int fd = memfd_create("log", 0);
        char err[160] = "";
        if (fd < 0 || ftruncate(fd, 4096) < 0 || mem_log_map(m, fd, 4096, 0, err, sizeof(err)) < 0)
            die("cannot map a dirty log");
        close(fd);
        m->log_all = true;
    }
    struct vq *tx = &ga.port.dev.q[1].vq, *rx = &gb.port.dev.q[0].vq;
    /* Both wrap counters start at 1 (virtio 1.2 2.8.1), as QEMU sends. */
    static struct virtq_desc tx_descs[RING], rx_descs[RING];
    if (packed) {
        for (unsigned g = 0; g < 2; g++)
            for (unsigned i = 0; i < 2; i++)
                vq_set_base(&(g ? &gb : &ga)->port.dev.q[i].vq, virtq_packed_state(0, 1, 0, 1));
        ptx.wrap = prx.wrap = true;
    }
    for (unsigned k = 0; k < n; k++) {
        uint64_t b = galloc(&ga, VIRTIO_NET_HDR_LEN + size);
        uint8_t *p = gptr(&ga, b);
        memset(p, 0, VIRTIO_NET_HDR_LEN);
        memcpy(p + VIRTIO_NET_HDR_LEN, mac_b, 6);
        memcpy(p + VIRTIO_NET_HDR_LEN + 6, mac_a, 6);
        p[VIRTIO_NET_HDR_LEN + 12] = 0x08;
        for (unsigned i = 14; i < size; i++)
            p[VIRTIO_NET_HDR_LEN + i] = (uint8_t)(i * 7 + k);
        tx_descs[k] = (struct virtq_desc){ b, VIRTIO_NET_HDR_LEN + size, 0, 0 };
        rx_descs[k] = (struct virtq_desc){ galloc(&gb, RXBUF), RXBUF, VIRTQ_DESC_F_WRITE, 0 };
        if (!packed) {
            tx->desc[k] = tx_descs[k];
            rx->desc[k] = rx_descs[k];
        }
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    unsigned long bad = 0;
    for (unsigned long i = 0; i < passes; i++) {
        bool more;
        if (packed) {
            /* The device's used positions must move by n on both rings. */
            uint16_t rx_used = rx->used_idx, tx_used = tx->used_idx;
            post_packed(rx, &prx, rx_descs, n);
            post_packed(tx, &ptx, tx_descs, n);
            fwd_tx_pass(&ctx, &ga.port.dev.q[1], n, false, &more);
            fwd_flush(&ctx);
            if ((rx->used_idx + RING - rx_used) % RING != n % RING ||
                (tx->used_idx + RING - tx_used) % RING != n % RING || vq_broken(rx) || vq_broken(tx))
                bad++;
            continue;
        }
        uint16_t rx_used = rx->used->idx, tx_used = tx->used->idx;
        post(rx, n);
        post(tx, n);
        fwd_tx_pass(&ctx, &ga.port.dev.q[1], n, false, &more);
        fwd_flush(&ctx);
        if ((uint16_t)(rx->used->idx - rx_used) != n || (uint16_t)(tx->used->idx - tx_used) != n)
            bad++;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ns = (double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec);
    printf("fwd-micro: %lu passes of %u frames of %u bytes%s%s%s%s: %.1f ns/frame (one core, warm "
           "caches)%s\n", passes, n, size, packed ? ", packed" : "", logging ? ", dirty log on" : "", in_order ? ", in order" : "",
           mrg ? ", mergeable" : "", ns / ((double)passes * n), bad ? "; FRAMES LOST" : "");
    mem_clear(&ga.port.dev.mem);
    mem_clear(&gb.port.dev.mem);
    fwd_ctx_fini(&ctx);
    return bad ? 1 : 0;
}
