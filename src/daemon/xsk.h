/*
 * xsk.h - an AF_XDP socket on one queue of a host interface, for the
 * uplink port's mode=xdp (uplink.c).
 *
 * Owns: the AF_XDP socket, its UMEM (an anonymous mapping cut into
 * XSK_FRAME_SIZE frames: the first half receives, the second half
 * transmits), the four rings the kernel shares with us (fill, RX, TX,
 * completion: mapped, indexes read and written with the barriers the
 * kernel's side pairs with), the XDP program (a hand-written eBPF
 * instruction array: redirect the queue's frames to the socket through an
 * XSKMAP, pass anything else to the host's stack), its map, and its
 * attachment through a BPF link, so that the program goes away with the
 * daemon's last file descriptor, crash included.  Every RX descriptor and
 * every completed address the kernel hands back is checked against the
 * UMEM before use.
 * Must not: touch the switch, struct port or frames (uplink.c turns bytes
 * into frames and back), replace another XDP program, or block: a full
 * ring drops and counts.
 *
 * Threads: xsk_open/xsk_close/xsk_get_stats are the control thread's.  The
 * receive side (xsk_rx_burst, xsk_rx_release) is one thread's at a time
 * (the port's worker).  The transmit side (xsk_tx_begin .. xsk_tx_end) may
 * be entered by any thread: it takes the socket's transmit lock.
 */
#ifndef LWV_XSK_H
#define LWV_XSK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/bpf.h>

/* UMEM geometry: 4096 frames of 2048 bytes (8 MiB, locked in memory by the
 * kernel), half for receiving, half for sending; each ring has as many
 * entries as its half has frames, so a ring never lacks room for a frame
 * the daemon owns. */
#define XSK_FRAME_SIZE 2048u
#define XSK_FRAMES 4096u
#define XSK_RX_FRAMES (XSK_FRAMES / 2)
#define XSK_TX_FRAMES (XSK_FRAMES - XSK_RX_FRAMES)
#define XSK_RING_SIZE 2048u
/* The kernel keeps XDP_PACKET_HEADROOM (256) bytes before a received
 * frame: the longest frame either way is what is left of a frame. */
#define XSK_HEADROOM 256u
#define XSK_MTU_FRAME (XSK_FRAME_SIZE - XSK_HEADROOM)

/* Instructions of the XDP program (xsk_prog_build). */
#define XSK_PROG_LEN 6u

struct xsk;

/* What to open. */
struct xsk_config {
    const char *ifname;   /* for messages */
    unsigned ifindex;
    unsigned queue;       /* the interface's receive queue */
    bool native;          /* may attach the program in the driver (XDP_FLAGS_DRV_MODE) */
    bool generic;         /* may attach it in the stack (XDP_FLAGS_SKB_MODE); tried after native */
};

/* What was obtained. */
struct xsk_info {
    bool native;          /* the program runs in the driver (else generic, skb mode) */
    bool zerocopy;        /* the socket is bound zero-copy (else copy mode) */
    unsigned queue;
    char zc_refused[64];  /* why zero-copy was refused, when tried and refused */
};

/* Counters: ours, and the kernel's (XDP_STATISTICS). */
struct xsk_stats {
    uint64_t rx_bad_ring;       /* RX descriptors or ring indexes out of bounds */
    uint64_t tx_ring_full;      /* no free transmit frame (or ring room): frame dropped */
    uint64_t tx_bad_ring;       /* completed addresses out of bounds, completion index insane */
    uint64_t tx_kick_errors;    /* the kernel refused to transmit (interface down...) */
    uint64_t tx_stalled;        /* kicks that left frames in the TX ring (sent on the next) */
    /* the kernel's */
    uint64_t rx_dropped, rx_ring_full, rx_fill_empty, rx_invalid_descs, tx_invalid_descs,
        tx_ring_empty;
};

/* One received frame, inside the UMEM; valid until xsk_rx_release. */
struct xsk_rx_frame {
    const uint8_t *data;
    uint32_t len;
};

/* Opens the socket, loads and attaches the program (native first when
 * cfg->native, then generic when cfg->generic), binds (zero-copy when
 * native, else or if refused copy mode) and starts receiving.  On failure
 * err says why and nothing is left open or attached. */
int xsk_open(struct xsk **out, const struct xsk_config *cfg, struct xsk_info *info, char *err,
             size_t errlen);
/* Detaches the program and frees everything (no thread may use x any more). */
void xsk_close(struct xsk *x);
/* The socket: pollable, POLLIN while the RX ring holds frames. */
int xsk_fd(const struct xsk *x);
void xsk_get_stats(struct xsk *x, struct xsk_stats *out);

/* Up to max frames from the RX ring into out; *taken counts the
 * descriptors walked (bad ones too: counted in rx_bad_ring and skipped),
 * *empty is set when the ring held fewer than max.  Nothing is handed back
 * to the kernel before xsk_rx_release. */
unsigned xsk_rx_burst(struct xsk *x, struct xsk_rx_frame *out, unsigned max, unsigned *taken,
                      bool *empty);
/* Gives the frames of the last burst back to the kernel (fill ring) and
 * frees their RX ring entries. */
void xsk_rx_release(struct xsk *x);

/* Transmit: xsk_tx_begin takes the lock and collects completed frames;
 * xsk_tx_alloc gives a free frame of XSK_MTU_FRAME bytes (NULL, counted in
 * tx_ring_full, when none is free), reused by the next xsk_tx_alloc unless
 * xsk_tx_put queues it with its length; xsk_tx_end publishes what was
 * queued, wakes the kernel if it asks for it, and lets go of the lock. */
void xsk_tx_begin(struct xsk *x);
uint8_t *xsk_tx_alloc(struct xsk *x);
void xsk_tx_put(struct xsk *x, uint32_t len);
void xsk_tx_end(struct xsk *x);

/* ---- the pure parts, exposed for tests/unit/test_xsk.c ------------------- */

/* Entries between an index ahead and one behind on a ring of size entries
 * (free-running 32-bit indexes, wrapping); UINT32_MAX when the distance
 * exceeds size: an index the kernel wrote is insane. */
uint32_t xsk_ring_used(uint32_t ahead, uint32_t behind, uint32_t size);

/* Where the frames of a UMEM are. */
struct xsk_layout {
    uint64_t umem_len;     /* bytes */
    uint32_t frame_size;   /* a power of two */
    uint32_t rx_frames;    /* frames [0, rx_frames) receive, the rest transmit */
};

/* Checks an RX descriptor the kernel wrote: len >= 14, addr and addr + len
 * inside the UMEM and inside one receive frame, no options.  Sets *frame
 * to the frame's start (to give it back) when addr lies in a receive frame,
 * else to UINT64_MAX.  True if the frame may be read. */
bool xsk_rx_desc_ok(const struct xsk_layout *l, uint64_t addr, uint32_t len, uint32_t options,
                    uint64_t *frame);
/* True for an address the completion ring gave back: the start of a
 * transmit frame. */
bool xsk_tx_addr_ok(const struct xsk_layout *l, uint64_t addr);

/* For tests/unit/test_xsk.c: an xsk with no socket, map or program, its
 * UMEM mapped as xsk_open maps it and its rings in ordinary memory, every
 * index starting at start (so that a test can make them wrap).  The test
 * plays the kernel's side through *view; the need_wakeup flags stay clear,
 * so nothing is ever kicked.  Receive frames are on the fill ring as
 * xsk_open leaves them.  NULL when out of memory. */
struct xsk_ring_view {
    uint32_t *producer, *consumer, *flags;
    void *desc;                      /* uint64_t (fill, completion) or struct xdp_desc */
};
struct xsk_view {
    uint8_t *umem;
    struct xsk_layout lay;
    struct xsk_ring_view fill, rx, tx, comp;
};
struct xsk *xsk_open_memory(uint32_t start, struct xsk_view *view);

/* Writes the XDP program into insn (XSK_PROG_LEN instructions): the
 * frame's rx_queue_index looked up in the XSKMAP map_fd, redirected there,
 * XDP_PASS when the queue has no socket. */
void xsk_prog_build(struct bpf_insn insn[XSK_PROG_LEN], int map_fd);

#endif
