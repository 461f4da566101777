/*
 * vuf.h - a vhost-user FRONTEND (the guest/driver side) for one virtio-net
 * device, run in a plain process: no VM.  Used by the integration tests, the
 * probe tool and the benchmark to drive lwvhostd (or any other vhost-user
 * backend, e.g. DPDK's net_vhost).
 *
 * Owns: the "guest memory" (a memfd mapped MAP_SHARED, one or two regions),
 * the vhost-user socket of one device, its eventfds, its virtqueues (driver
 * side), split (descriptor table, avail ring, reading the used ring) or
 * packed (VIRTIO_F_RING_PACKED: descriptor ring, driver event suppression,
 * reading used descriptors and the device's event suppression), and the
 * packet buffers inside guest memory.
 * Must not: touch backend (src/daemon) state, call exit() or print; it
 * reports errors as negative errno values (detail in vuf_last_error()).
 * Never trusts the backend: whatever it writes (used->idx, used ids and
 * lengths, packed used descriptors, num_buffers, reply sizes) is
 * bounds-checked, and a ring whose device misbehaves is marked broken
 * (-EPROTO) instead of being followed.
 *
 * Packed rings (opts.packed): every datapath call keeps its meaning.  The
 * device's event structure decides kicks (DISABLE, ENABLE, or with
 * EVENT_IDX DESC: the descriptor at off_wrap made available); ours asks
 * for interrupts (DISABLE, ENABLE, or with EVENT_IDX DESC at the next used
 * position).  VIRTIO_F_IN_ORDER is acked with packed rings only, and only
 * if opts.features has it: a TX used descriptor then retires every earlier
 * buffer too; on RX every buffer still needs its own used descriptor (its
 * length is needed), so a batch there breaks the ring.
 *
 * Threading: one struct vuf is used by one thread at a time; separate
 * devices are independent (the library has no global state).
 *
 * Queue numbering: queue pair q has RX ring 2q and TX ring 2q+1.
 */
#ifndef LWV_VUF_H
#define LWV_VUF_H

#include <stddef.h>
#include <stdint.h>

#include "virtio.h"
#include "vhost_user.h"

#define VUF_MAX_QP     16   /* as many as lwvhostd serves (LWV_MAX_QUEUE_PAIRS) */
#define VUF_MAX_RINGS  (2 * VUF_MAX_QP)

/* How TX frames are laid out in the descriptor table. */
enum vuf_tx_mode {
    VUF_TX_DIRECT = 0,   /* one descriptor: 12-byte header + frame */
    VUF_TX_CHAIN2,       /* two chained descriptors: header, then frame */
    VUF_TX_INDIRECT,     /* one INDIRECT descriptor -> table {header, frame};
                            falls back to VUF_TX_DIRECT without INDIRECT_DESC */
};

/* Default virtio feature bits the frontend accepts (if offered). */
#define VUF_DEFAULT_FEATURES                       \
    ((1ull << VIRTIO_F_VERSION_1) |                \
     (1ull << VIRTIO_NET_F_MRG_RXBUF) |            \
     (1ull << VIRTIO_RING_F_EVENT_IDX) |           \
     (1ull << VIRTIO_RING_F_INDIRECT_DESC))
/* Default protocol feature bits the frontend accepts (if offered). */
#define VUF_DEFAULT_PROTOCOL                       \
    ((1ull << VHOST_USER_PROTOCOL_F_MQ) |          \
     (1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK) |   \
     (1ull << VHOST_USER_PROTOCOL_F_STATUS))

/* Options; zero means "default" for every field. */
struct vuf_opts {
    const char *path;          /* unix socket path (required) */
    int server;                /* 1: listen on path, accept the backend */
    unsigned queue_pairs;      /* default 1, max VUF_MAX_QP */
    unsigned ring_size;        /* default 256; <= 32768; split: a power of two,
                                  packed: any size */
    unsigned nregions;         /* 1 (default) or 2 guest memory regions */
    unsigned rx_buf_size;      /* bytes per posted RX buffer, default 2048 */
    unsigned tx_buf_size;      /* bytes per TX buffer incl. header, default 2048 */
    enum vuf_tx_mode tx_mode;  /* default VUF_TX_DIRECT */
    unsigned tx_reserve;       /* top descriptors of each TX table left unused
                                  by the library (for hand-made chains);
                                  packed: the library keeps ids from
                                  nslots on free and at most num-tx_reserve
                                  ring descriptors (CHAIN2: ids < (num -
                                  tx_reserve)/2) */
    int tx_irq;                /* 1: also ask for interrupts on TX rings */
    int rx_no_irq;             /* 1: RX rings ask for interrupts only while
                                  waiting in vuf_wait*() (a polling driver) */
    int rx_batch;              /* 1: vuf_recv*() do not hand the consumed
                                  buffers back; vuf_rx_flush() does (once
                                  per batch, as drivers refill) */
    uint64_t features;         /* accepted device features, default
                                  VUF_DEFAULT_FEATURES (+MQ if queue_pairs>1) */
    uint64_t protocol;         /* accepted protocol features, default
                                  VUF_DEFAULT_PROTOCOL; VUF_PROTOCOL_NONE
                                  for none */
    int timeout_ms;            /* connect/accept/reply timeout, default 3000 */
    size_t scratch_size;       /* spare guest memory, default 256 KiB */
    int packed;                /* 1: packed rings; vuf_negotiate fails
                                  (-ENOTSUP) if VIRTIO_F_RING_PACKED is not
                                  offered.  0: split rings, RING_PACKED
                                  (and IN_ORDER) never acked */
};
#define VUF_PROTOCOL_NONE  (1ull << 63)

struct vuf_stats {
    uint64_t tx_frames, tx_bytes;   /* frames handed to the backend */
    uint64_t tx_done;               /* TX buffers reclaimed */
    uint64_t rx_frames, rx_bytes;   /* frames received (bytes w/o header) */
    uint64_t rx_bufs;               /* RX buffers consumed (>= rx_frames) */
    uint64_t kicks;                 /* kick eventfd writes */
    uint64_t kicks_suppressed;      /* publishes where the backend asked
                                       for no kick */
    uint64_t interrupts;            /* sum of call eventfd counters read */
    uint64_t tx_full;               /* sends refused: TX ring full */
};

/* A view of one ring, for tests that write descriptors by hand. */
struct vuf_ring_view {
    /* split rings (NULL on packed ones) */
    struct virtq_desc *desc;
    struct virtq_avail *avail;
    struct virtq_used *used;
    uint16_t *used_event;        /* &avail->ring[num] */
    uint16_t *avail_event;       /* &used->ring[num] (as u16) */
    uint16_t num;
    /* packed: descriptor ring, driver area, device area */
    uint64_t desc_gpa, avail_gpa, used_gpa;
    int kick_fd, call_fd;
    /* packed rings (NULL / 0 on split ones) */
    int packed;
    struct virtq_pdesc *pdesc;           /* the descriptor ring */
    struct virtq_pevent *driver_event;   /* ours: interrupt requests */
    struct virtq_pevent *device_event;   /* the device's: kick requests */
    uint16_t avail_pos, used_pos;        /* driver's next avail / used position */
    int avail_wrap, used_wrap;           /* and their wrap counters (when viewed) */
};

struct vuf;

/* ---- lifecycle ---- */
/* Create guest memory and connect (or accept); no message is sent. */
int  vuf_open(struct vuf **out, const struct vuf_opts *o);
/* GET_FEATURES, SET_OWNER, GET/SET_PROTOCOL_FEATURES, GET_QUEUE_NUM,
 * SET_FEATURES. */
int  vuf_negotiate(struct vuf *v);
int  vuf_set_mem_table(struct vuf *v);
/* SET_VRING_NUM/BASE/ADDR/KICK/CALL for one ring; posts RX buffers. */
int  vuf_setup_ring(struct vuf *v, unsigned ring);
int  vuf_enable_ring(struct vuf *v, unsigned ring, int enable);
/* negotiate + mem table + every ring + enable (+SET_STATUS DRIVER_OK). */
int  vuf_start(struct vuf *v);
/* vuf_open + vuf_start. */
int  vuf_connect(struct vuf **out, const struct vuf_opts *o);
/* GET_VRING_BASE (stops the ring in the backend); the raw 32-bit value
 * (packed: avail index | wrap << 15 | used index << 16 | wrap << 31). */
int  vuf_get_vring_base(struct vuf *v, unsigned ring, uint32_t *base);
/* A ring stopped by vuf_get_vring_base started again as QEMU restarts one:
 * SET_VRING_BASE base (any value: tests give stale ones) and SET_VRING_KICK,
 * with the ring's memory, buffers and addresses as they are. */
int  vuf_resume_ring(struct vuf *v, unsigned ring, uint32_t base);
/* GET_STATUS (needs the STATUS protocol feature). */
int  vuf_get_status(struct vuf *v, uint8_t *status);
/* Abrupt close: socket, eventfds and memory released, nothing sent. */
void vuf_close(struct vuf *v);
/* Detail of the last error; vuf_last_error(NULL): last failed vuf_open or
 * vuf_connect in this thread. */
const char *vuf_last_error(const struct vuf *v);

/* ---- what was negotiated ---- */
uint64_t vuf_device_features(const struct vuf *v);   /* offered */
uint64_t vuf_features(const struct vuf *v);          /* acked */
uint64_t vuf_device_protocol(const struct vuf *v);   /* offered */
uint64_t vuf_protocol(const struct vuf *v);          /* acked */
uint64_t vuf_backend_queue_num(const struct vuf *v); /* GET_QUEUE_NUM, 0 if n/a */
unsigned vuf_queue_pairs(const struct vuf *v);
unsigned vuf_ring_size(const struct vuf *v);
/* 1 if the rings are packed (opts.packed; negotiation insists on it). */
int      vuf_is_packed(const struct vuf *v);
int      vuf_has_feature(const struct vuf *v, unsigned bit);
int      vuf_has_protocol(const struct vuf *v, unsigned bit);

/* ---- datapath (qp = queue pair index) ---- */
/* Copy header (NULL: all zero) + frame into a TX buffer; not yet visible. */
int vuf_tx_enqueue(struct vuf *v, unsigned qp, const void *frame, size_t len,
                   const struct virtio_net_hdr *hdr);
/* Publish enqueued frames; kick only if the backend asks for it.
 * Returns 1 if kicked, 0 if not, <0 on error. */
int vuf_tx_flush(struct vuf *v, unsigned qp);
/* enqueue + flush.  -EAGAIN: ring full even after reclaiming. */
int vuf_send(struct vuf *v, unsigned qp, const void *frame, size_t len);
/* Reclaim completed TX buffers; returns how many, or <0 (-EPROTO). */
int vuf_tx_reclaim(struct vuf *v, unsigned qp);
unsigned vuf_tx_inflight(const struct vuf *v, unsigned qp);
/* Receive one frame: returns its length (without the virtio-net header)
 * and copies min(len, cap) bytes; -EAGAIN if none is complete. */
int vuf_recv(struct vuf *v, unsigned qp, void *buf, size_t cap);
int vuf_recv_ex(struct vuf *v, unsigned qp, void *buf, size_t cap,
                struct virtio_net_hdr *hdr, unsigned *nbufs);
/* With rx_batch: publish the RX buffers consumed since the last call (kick
 * if the backend asks).  1 if kicked, 0 if not, <0 on error. */
int vuf_rx_flush(struct vuf *v, unsigned qp);
/* vuf_recv, waiting for an interrupt up to timeout_ms (-ETIMEDOUT). */
int vuf_recv_wait(struct vuf *v, unsigned qp, void *buf, size_t cap, int timeout_ms);
/* Arm interrupts on every RX ring (and TX rings with tx_irq) and wait for a
 * call eventfd.  1: interrupt or work already pending, 0: timeout, <0 err. */
int vuf_wait(struct vuf *v, int timeout_ms);
/* Same, one ring only. */
int vuf_wait_ring(struct vuf *v, unsigned ring, int timeout_ms);
void vuf_get_stats(const struct vuf *v, struct vuf_stats *s);
/* 1 if the library found the backend misbehaving on this ring. */
int vuf_ring_broken(const struct vuf *v, unsigned ring);

/* ---- raw access for hostile tests ---- */
int  vuf_sock(const struct vuf *v);
/* One message: header {request, flags, size} + size payload bytes (payload
 * may be NULL when size is 0), fds in SCM_RIGHTS.  size is not checked. */
int  vuf_msg_send(struct vuf *v, uint32_t request, uint32_t flags,
                  const void *payload, uint32_t size, const int *fds, unsigned nfds);
/* Arbitrary bytes (e.g. half a message), fds attached to the first byte. */
int  vuf_write_raw(struct vuf *v, const void *bytes, size_t len,
                   const int *fds, unsigned nfds);
/* Read one message.  0, -ETIMEDOUT, -ECONNRESET (EOF), -EPROTO (bad
 * header/size).  fds received with it are closed. */
int  vuf_msg_recv(struct vuf *v, struct vhost_user_msg *m, int timeout_ms);
/* Send with NEED_REPLY and read the reply to this request into *reply
 * (stale replies to other requests are skipped).  A REPLY_ACK is a reply
 * with an 8-byte payload: reply->payload.u64, 0 = success. */
int  vuf_request(struct vuf *v, uint32_t request, const void *payload, uint32_t size,
                 const int *fds, unsigned nfds, struct vhost_user_msg *reply);
/* 1 if the backend closed the socket (EOF) within timeout_ms, 0 if not. */
int  vuf_peer_closed(struct vuf *v, int timeout_ms);

int   vuf_ring_view(struct vuf *v, unsigned ring, struct vuf_ring_view *out);
/* Put head into the avail ring and publish avail->idx+1 (release); no kick.
 * Keeps the library's own avail index in step.  Split rings only (-EINVAL
 * on packed). */
int   vuf_avail_push(struct vuf *v, unsigned ring, uint16_t head);
/* Set the library's and the ring's avail idx to any value (e.g. a jump).
 * Split rings only. */
int   vuf_avail_set_idx(struct vuf *v, unsigned ring, uint16_t idx);
/* Packed rings: write n descriptors at the driver's avail position (addr,
 * len, id as given; AVAIL/USED bits of flags replaced from the wrap
 * counter, which flips at the end of the ring), the first one's flags last
 * with a release store, and advance; no kick.  The library's unpublished
 * buffers are published first.  A complete chain (up to a descriptor
 * without NEXT) whose id there is a free TX id >= the library's slots
 * (see tx_reserve) is tracked, so vuf_tx_reclaim skips it when the device
 * returns it; the device returning any other hand-pushed id breaks the
 * ring.  -ENOSPC if fewer than n descriptors are free, -EINVAL on split. */
int   vuf_packed_avail_push(struct vuf *v, unsigned ring, const struct virtq_pdesc *descs,
                            unsigned n);
/* Packed rings: the position and wrap counter the next descriptor made
 * available will have. */
int   vuf_packed_avail_pos(const struct vuf *v, unsigned ring, uint16_t *pos, int *wrap);
/* Unconditional kick. */
int   vuf_kick(struct vuf *v, unsigned ring);
unsigned vuf_nregions(const struct vuf *v);
/* Region i as sent in SET_MEM_TABLE, and its fd (the shared memfd). */
int   vuf_region(const struct vuf *v, unsigned i, struct vhost_user_mem_region *r, int *fd);
int   vuf_mem_fd(const struct vuf *v);
void *vuf_gpa_to_ptr(struct vuf *v, uint64_t gpa, size_t len);
/* 0 with *gpa set, or -EINVAL if p is not in guest memory. */
int   vuf_ptr_to_gpa(const struct vuf *v, const void *p, uint64_t *gpa);
/* Bump-allocate zeroed spare guest memory; NULL when exhausted. */
void *vuf_scratch_alloc(struct vuf *v, size_t size, size_t align, uint64_t *gpa);

/* ---- test frames ----
 * Ethernet frame: dst, src, ethertype 0x88b5 (local experimental), then
 * magic "VUF1", u32 seq, u32 total length, u32 flow, then a byte pattern
 * derived from seq.  len >= VUF_FRAME_MIN. */
#define VUF_FRAME_MIN       30u
#define VUF_ETHERTYPE_TEST  0x88b5
void vuf_frame_fill(void *buf, size_t len, const uint8_t dst[6], const uint8_t src[6],
                    uint32_t seq, uint32_t flow);
/* 0 if buf holds an intact test frame of exactly len bytes (seq and flow
 * returned), -1 if not. */
int  vuf_frame_check(const void *buf, size_t len, uint32_t *seq, uint32_t *flow);

#endif
