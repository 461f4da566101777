/*
 * netguest.c - see netguest.h.
 */
#define _GNU_SOURCE
#include "netguest.h"

#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

struct virtio_net_hdr last_rx_hdr;
struct lswitch sw;
struct fwd_ctx ctx;
void *gptr(struct guest *g, uint64_t gpa)
{ return g->host + (gpa - GPA); }

uint64_t galloc(struct guest *g, uint64_t len)
{
    uint64_t a = g->next_gpa;
    g->next_gpa += (len + 63) & ~63ull;
    return a;
}

/* Lays out ring i at fixed offsets and makes it ready. */
void setup_ring(struct guest *g, unsigned i)
{
    struct vqueue *q = &g->port.dev.q[i];
    uint64_t base = UVA + (uint64_t)i * 0x10000;
    q->vq.num = RING;
    q->vq.desc_uva = base;
    q->vq.avail_uva = base + virtq_desc_size(RING);
    q->vq.used_uva = base + 0x8000;
    q->vq.addr_set = true;
    q->kick_set = true;
    q->enable = 1;
    CHECK(vq_map(&q->vq, &g->port.dev.mem), "ring %u maps", i);
}

void guest_init(struct guest *g, unsigned index, const char *name, uint64_t features)
{
    memset(g, 0, sizeof(*g));
    struct port *p = &g->port;
    p->index = index;
    p->type = PORT_VHOST;
    snprintf(p->name, sizeof(p->name), "%s", name);
    p->conn.fd = -1;
    dev_init(&p->dev, p, 1);
    int fd = memfd_create(name, 0);
    CHECK(fd >= 0 && ftruncate(fd, MEM_SIZE) == 0, "memfd");
    struct vhost_user_mem_region d = { GPA, MEM_SIZE, UVA, 0 };
    struct mem_region r;
    char err[128];
    CHECK(mem_region_map(&r, &d, fd, err, sizeof(err)) == 0, "map: %s", err);
    close(fd);
    CHECK(mem_add(&p->dev.mem, &r, err, sizeof(err)) == 0, "add: %s", err);
    g->host = r.host;
    g->next_gpa = GPA + 0x40000;
    p->dev.connected = true;
    dev_set_features(&p->dev, features);
    p->dev.features_set = true;
    setup_ring(g, 0);
    setup_ring(g, 1);
    p->sw = &sw;
    ports.p[index] = p;
    if (ports.n <= index)
        ports.n = index + 1;
}

void post_rx(struct guest *g, uint32_t len)
{
    struct vq *vq = &g->port.dev.q[0].vq;
    uint16_t i = g->rx_desc_next++ % RING;
    vq->desc[i] = (struct virtq_desc){ galloc(g, len), len, VIRTQ_DESC_F_WRITE, 0 };
    vq->avail->ring[vq->avail->idx % RING] = i;
    vq->avail->idx++;
}

/* Queues one frame (header + data) on A's TX ring in two descriptors. */
void send_tx_hdr(struct guest *g, const uint8_t *frame, uint32_t len, unsigned hlen,
                 const struct virtio_net_hdr *vh)
{
    struct vq *vq = &g->port.dev.q[1].vq;
    uint16_t h = g->tx_desc_next++ % RING, n = g->tx_desc_next++ % RING;
    uint64_t hdr = galloc(g, hlen), data = galloc(g, len);
    memset(gptr(g, hdr), 0, hlen);
    if (vh)
        memcpy(gptr(g, hdr), vh, hlen);
    memcpy(gptr(g, data), frame, len);
    vq->desc[h] = (struct virtq_desc){ hdr, hlen, VIRTQ_DESC_F_NEXT, n };
    vq->desc[n] = (struct virtq_desc){ data, len, 0, 0 };
    vq->avail->ring[vq->avail->idx % RING] = h;
    vq->avail->idx++;
}

void send_tx(struct guest *g, const uint8_t *frame, uint32_t len, unsigned hlen)
{
    send_tx_hdr(g, frame, len, hlen, NULL);
}

void make_frame(uint8_t *f, size_t len, uint8_t dst_last, uint8_t src_last, uint8_t seed)
{
    static const uint8_t base[6] = { 0x52, 0x54, 0, 0, 0, 0 };
    memcpy(f, base, 6);
    f[5] = dst_last;
    memcpy(f + 6, base, 6);
    f[11] = src_last;
    f[12] = 0x08; f[13] = 0x00;
    for (size_t i = 14; i < len; i++)
        f[i] = (uint8_t)(seed + i * 7);
}

int read_rx(struct guest *g, uint16_t *used_seen, uint8_t *out, size_t cap, uint16_t *nbufs)
{
    struct vq *vq = &g->port.dev.q[0].vq;
    *nbufs = 0;
    if (vq->used->idx == *used_seen)
        return -1;
    struct virtq_used_elem u = vq->used->ring[*used_seen % RING];
    struct virtq_desc d = vq->desc[u.id];
    struct virtio_net_hdr *h = gptr(g, d.addr);
    last_rx_hdr = *h;
    *nbufs = h->num_buffers;
    size_t hlen = VIRTIO_NET_HDR_LEN, total = 0;
    for (uint16_t b = 0; b < *nbufs; b++) {
        u = vq->used->ring[(*used_seen)++ % RING];
        d = vq->desc[u.id];
        size_t skip = b == 0 ? hlen : 0;
        if (u.len < skip || total + (u.len - skip) > cap)
            return -1;
        memcpy(out + total, (uint8_t *)gptr(g, d.addr) + skip, u.len - skip);
        total += u.len - skip;
    }
    return (int)total;
}

uint64_t feats(bool mrg)
{
    return 1ull << VIRTIO_F_VERSION_1 | (mrg ? 1ull << VIRTIO_NET_F_MRG_RXBUF : 0);
}

static void *holder_main(void *arg)
{
    struct holder *h = arg;
    pthread_mutex_lock(h->lock);
    __atomic_store_n(&h->held, 1, __ATOMIC_RELEASE);
    while (!__atomic_load_n(&h->release, __ATOMIC_ACQUIRE))
        usleep(100);
    pthread_mutex_unlock(h->lock);
    return NULL;
}

void holder_start(struct holder *h, pthread_mutex_t *lock)
{
    h->lock = lock;
    h->held = h->release = 0;
    pthread_create(&h->thread, NULL, holder_main, h);
    while (!__atomic_load_n(&h->held, __ATOMIC_ACQUIRE))
        usleep(100);
}

void holder_stop(struct holder *h)
{
    __atomic_store_n(&h->release, 1, __ATOMIC_RELEASE);
    pthread_join(h->thread, NULL);
}

