/*
 * netguest.h - fake guests for the datapath's unit tests and fwd-micro: each a port
 * whose device has one queue pair laid out in a memfd mapped through the
 * daemon's own mem.c, and the switch (sw) and forwarding context (ctx)
 * that join them.  A test fills the rings by hand (post_rx, send_tx) and
 * reads what arrived (read_rx).
 */
#ifndef LWV_TEST_NETGUEST_H
#define LWV_TEST_NETGUEST_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "check.h"
#include "device.h"
#include "fwd.h"
#include "net.h"
#include "port.h"
#include "switch.h"

#define MEM_SIZE (4u << 20)
#define GPA 0x200000ull
#define UVA 0x7e0000000000ull
#define RING 256u

struct guest {
    struct port port;
    uint8_t *host;
    uint64_t next_gpa;     /* bump allocator for buffers */
    uint16_t rx_desc_next, tx_desc_next;
};

/* The switch and forwarding context joining the guests of a test. */
extern struct fwd_ctx ctx;
extern struct lswitch sw;

void *gptr(struct guest *g, uint64_t gpa);
uint64_t galloc(struct guest *g, uint64_t len);
/* Lays out ring i at fixed offsets and makes it ready. */
void setup_ring(struct guest *g, unsigned i);
/* A port of index (in the global port table and the test's switch) with a
 * 4 MiB memfd as guest memory and both rings ready. */
void guest_init(struct guest *g, unsigned index, const char *name, uint64_t features);
/* One RX buffer of len bytes. */
void post_rx(struct guest *g, uint32_t len);
/* Queues one frame (header + data) on g's TX ring in two descriptors. */
void send_tx_hdr(struct guest *g, const uint8_t *frame, uint32_t len, unsigned hlen,
                 const struct virtio_net_hdr *vh);
void send_tx(struct guest *g, const uint8_t *frame, uint32_t len, unsigned hlen);
/* An IPv4 frame from 52:54:00:00:00:src_last to ...:dst_last. */
void make_frame(uint8_t *f, size_t len, uint8_t dst_last, uint8_t src_last, uint8_t seed);
/* Reads g's next used RX entry back into a linear frame; returns the frame
 * length or -1.  The frame's virtio-net header is left in last_rx_hdr. */
extern struct virtio_net_hdr last_rx_hdr;
int read_rx(struct guest *g, uint16_t *used_seen, uint8_t *out, size_t cap, uint16_t *nbufs);
/* VERSION_1, with MRG_RXBUF or without. */
uint64_t feats(bool mrg);

/* Another thread holding a mutex (another worker filling an RX queue):
 * holder_start returns once it holds it, holder_stop lets go. */
struct holder {
    pthread_mutex_t *lock;
    int held, release;
    pthread_t thread;
};

void holder_start(struct holder *h, pthread_mutex_t *lock);
void holder_stop(struct holder *h);

#endif
