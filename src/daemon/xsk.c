/*
 * xsk.c - see xsk.h.
 *
 * The rings (Documentation/networking/af_xdp.rst): each is a power-of-two
 * array of descriptors with a producer and a consumer index that run
 * freely and wrap at 2^32.  We produce on the fill ring (frames the kernel
 * may receive into) and the TX ring (frames to send); the kernel produces
 * on the RX ring (frames received) and the completion ring (frames sent).
 * The kernel's xsk_queue.h pairs the accesses so:
 *
 *   producer: (A) load consumer   consumer: (C) load-acquire producer
 *             write descriptors             read descriptors
 *             (B) store-release producer    (D) store-release consumer
 *
 * (A) pairs with (D): the producer overwrites an entry only after the
 * consumer is done with it; (B) pairs with (C): the consumer reads
 * descriptors only after they were written.  The kernel makes (A) a plain
 * load ordered by a control dependency; C11 has no such thing, so ours is
 * a load-acquire.  Every index the kernel wrote is checked for sanity (it
 * can be at most the ring's size away from ours) and every descriptor is
 * read once into a local copy and checked against the UMEM before use.
 *
 * Frames: receive frames are the first half of the UMEM; each is on the
 * fill ring, in the RX ring, or lent to the switch for one burst, and goes
 * back to the fill ring at xsk_rx_release.  Transmit frames are the second
 * half: free (a stack under the transmit lock), queued on the TX ring, or
 * sent and waiting on the completion ring.  Each ring has as many entries
 * as its half has frames.
 *
 * Transmitting in copy mode happens in the kernel during sendto(): the
 * kernel sends at most 32 frames a call (-EAGAIN: call again), so a kick
 * repeats while the kernel makes progress and stops when it makes none
 * (its socket buffer is full, the device is busy); frames left on the
 * ring go with the next kick.  In zero-copy mode a kick only wakes the
 * driver.
 */
#define _GNU_SOURCE
#include "xsk.h"

#include <dirent.h>
#include <errno.h>
#include <linux/if_link.h>
#include <linux/if_xdp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
#include "sysc.h"

#ifndef AF_XDP
#define AF_XDP 44
#endif
#ifndef SOL_XDP
#define SOL_XDP 283
#endif

#define XSK_RX_BURST_MAX 64u
#define XSK_KICK_MAX 80u          /* 2048 entries at 32 a call, and some */
#define BPF_LOG_SIZE 65536u
#define XSK_BIND_WAIT_MS 2000u
#define ETH_MIN 14u

/* A ring shared with the kernel. */
struct xsk_ring {
    uint32_t *producer, *consumer, *flags;
    void *desc;
    uint32_t size, mask;
    uint32_t local;     /* our index: the next entry we produce, or consume */
    uint32_t cached;    /* the kernel's index as we last read it */
    void *map;
    size_t map_len;
    bool in_memory;     /* xsk_open_memory's: freed, not unmapped */
};

struct xsk {
    int fd, map_fd, prog_fd, link_fd;
    uint8_t *umem;
    struct xsk_layout lay;
    bool zerocopy;
    struct xsk_ring fill, rx, tx, comp;
    /* receive side: the last burst */
    uint32_t rx_taken;                    /* RX entries walked */
    unsigned rx_ngive;
    uint64_t rx_give[XSK_RX_BURST_MAX];   /* their frames, to go back on the fill ring */
    /* transmit side, under tx_lock */
    pthread_mutex_t tx_lock;
    bool tx_cur_valid;
    uint64_t tx_cur;                      /* the frame xsk_tx_alloc handed out */
    uint32_t tx_queued;                   /* entries written since xsk_tx_begin */
    unsigned tx_nfree;
    uint64_t tx_free[XSK_TX_FRAMES];
    struct xsk_stats st;                  /* ours; the kernel's are read on demand */
};

/* ---- counters (read by the control thread while workers write) ------------ */

/* Adds n to a counter only one thread writes at a time. */
static void cnt_add(uint64_t *c, uint64_t n)
{
    __atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
}

/* Reads a counter. */
static uint64_t cnt_get(const uint64_t *c)
{
    return __atomic_load_n(c, __ATOMIC_RELAXED);
}

/* ---- the pure parts --------------------------------------------------------- */

uint32_t xsk_ring_used(uint32_t ahead, uint32_t behind, uint32_t size)
{
    uint32_t d = ahead - behind;   /* unsigned: correct across the wrap */
    return d > size ? UINT32_MAX : d;
}

bool xsk_rx_desc_ok(const struct xsk_layout *l, uint64_t addr, uint32_t len, uint32_t options,
                    uint64_t *frame)
{
    uint64_t fs = l->frame_size;
    uint64_t rx_end = (uint64_t)l->rx_frames * fs;
    *frame = UINT64_MAX;
    if (addr >= l->umem_len)
        return false;
    uint64_t start = addr & ~(fs - 1);
    if (start < rx_end)
        *frame = start;           /* one of ours: it can go back, whatever else is wrong */
    if (start >= rx_end || options != 0 || len < ETH_MIN)
        return false;
    /* Within the UMEM and within its frame: addr - start < fs, so no overflow. */
    return len <= l->umem_len - addr && len <= fs - (addr - start);
}

bool xsk_tx_addr_ok(const struct xsk_layout *l, uint64_t addr)
{
    uint64_t fs = l->frame_size;
    uint64_t rx_end = (uint64_t)l->rx_frames * fs;
    return addr >= rx_end && addr < l->umem_len && (addr & (fs - 1)) == 0;
}

/* One instruction. */
static struct bpf_insn insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm)
{
    struct bpf_insn i;
    memset(&i, 0, sizeof(i));
    i.code = code;
    i.dst_reg = dst & 0xf;
    i.src_reg = src & 0xf;
    i.off = off;
    i.imm = imm;
    return i;
}

void xsk_prog_build(struct bpf_insn p[XSK_PROG_LEN], int map_fd)
{
    /* r2 = ((struct xdp_md *)r1)->rx_queue_index: the key, a u32 */
    p[0] = insn(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_2, BPF_REG_1,
                (int16_t)offsetof(struct xdp_md, rx_queue_index), 0);
    /* r1 = the XSKMAP (a 64-bit immediate over two slots: the loader
     * replaces the map's fd with the map) */
    p[1] = insn(BPF_LD | BPF_DW | BPF_IMM, BPF_REG_1, BPF_PSEUDO_MAP_FD, 0, map_fd);
    /* ... the upper 32 bits of the immediate: zero */
    p[2] = insn(0, 0, 0, 0, 0);
    /* r3 = XDP_PASS: the flags' low bits are the action when the key has no socket (5.3+) */
    p[3] = insn(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_3, 0, 0, XDP_PASS);
    /* r0 = bpf_redirect_map(r1, r2, r3): XDP_REDIRECT to the socket, or XDP_PASS */
    p[4] = insn(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_redirect_map);
    /* return r0 */
    p[5] = insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
}

/* ---- rings -------------------------------------------------------------------- */

/* Entries the kernel produced that we have not consumed, at most want
 * (refreshing its index only when the cached one shows fewer); *insane is
 * set when its index is impossible (nothing is then consumed). */
static uint32_t cons_peek(struct xsk_ring *r, uint32_t want, bool *insane)
{
    uint32_t n = xsk_ring_used(r->cached, r->local, r->size);
    if (n == UINT32_MAX || n < want) {
        /* (C): pairs with the kernel's store-release of the producer (B):
         * the descriptors it wrote before are visible. */
        r->cached = __atomic_load_n(r->producer, __ATOMIC_ACQUIRE);
        n = xsk_ring_used(r->cached, r->local, r->size);
    }
    *insane = n == UINT32_MAX;
    if (*insane)
        return 0;
    return n < want ? n : want;
}

/* Hands n consumed entries back to the kernel. */
static void cons_release(struct xsk_ring *r, uint32_t n)
{
    r->local += n;
    /* (D): pairs with the kernel's load of the consumer (A): our reads of
     * the entries (and of the frames they point to) come first. */
    __atomic_store_n(r->consumer, r->local, __ATOMIC_RELEASE);
}

/* Free entries on a ring we produce on (refreshing the kernel's consumer
 * index when fewer than want are known free); 0 when its index is insane. */
static uint32_t prod_room(struct xsk_ring *r, uint32_t want, bool *insane)
{
    uint32_t used = xsk_ring_used(r->local, r->cached, r->size);
    if (used == UINT32_MAX || r->size - used < want) {
        /* (A): pairs with the kernel's store-release of the consumer (D):
         * it is done with the entries it released before we overwrite them. */
        r->cached = __atomic_load_n(r->consumer, __ATOMIC_ACQUIRE);
        used = xsk_ring_used(r->local, r->cached, r->size);
    }
    *insane = used == UINT32_MAX;
    return *insane ? 0 : r->size - used;
}

/* Publishes the entries written up to r->local. */
static void prod_submit(struct xsk_ring *r)
{
    /* (B): pairs with the kernel's load-acquire of the producer (C): the
     * entries (and the frames they point to) are written first. */
    __atomic_store_n(r->producer, r->local, __ATOMIC_RELEASE);
}

/* True when the kernel asks to be woken for ring r (XDP_RING_NEED_WAKEUP). */
static bool needs_wakeup(const struct xsk_ring *r)
{
    /* Our producer store and the load of the flag must not be reordered,
     * or we could miss a flag the kernel set just after it last looked at
     * the producer (it sets the flag, then looks again). */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    return (__atomic_load_n(r->flags, __ATOMIC_RELAXED) & XDP_RING_NEED_WAKEUP) != 0;
}

/* ---- receive --------------------------------------------------------------- */

unsigned xsk_rx_burst(struct xsk *x, struct xsk_rx_frame *out, unsigned max, unsigned *taken,
                      bool *empty)
{
    bool insane;
    if (max > XSK_RX_BURST_MAX)
        max = XSK_RX_BURST_MAX;
    uint32_t avail = cons_peek(&x->rx, max, &insane);
    if (insane)
        cnt_add(&x->st.rx_bad_ring, 1);
    *empty = avail < max;
    unsigned n = 0;
    const struct xdp_desc *ring = x->rx.desc;
    for (uint32_t i = 0; i < avail; i++) {
        struct xdp_desc d;
        memcpy(&d, &ring[(x->rx.local + i) & x->rx.mask], sizeof(d));   /* read once */
        uint64_t frame;
        bool ok = xsk_rx_desc_ok(&x->lay, d.addr, d.len, d.options, &frame);
        if (frame != UINT64_MAX)
            x->rx_give[x->rx_ngive++] = frame;
        if (!ok) {
            cnt_add(&x->st.rx_bad_ring, 1);
            continue;
        }
        out[n].data = x->umem + d.addr;
        out[n].len = d.len;
        n++;
    }
    x->rx_taken = avail;
    *taken = avail;
    return n;
}

void xsk_rx_release(struct xsk *x)
{
    bool insane;
    if (x->rx_taken == 0)
        return;
    uint32_t room = prod_room(&x->fill, x->rx_ngive, &insane);
    uint64_t *fr = x->fill.desc;
    unsigned k;
    for (k = 0; k < x->rx_ngive && k < room; k++)
        fr[(x->fill.local++) & x->fill.mask] = x->rx_give[k];
    if (k < x->rx_ngive)
        cnt_add(&x->st.rx_bad_ring, 1);   /* more frames than the ring holds: lost */
    prod_submit(&x->fill);
    cons_release(&x->rx, x->rx_taken);
    x->rx_taken = 0;
    x->rx_ngive = 0;
    if (x->zerocopy && needs_wakeup(&x->fill)) {
        sysc_note();
        recvfrom(x->fd, NULL, 0, MSG_DONTWAIT, NULL, NULL);   /* the driver waits for frames */
    }
}

/* Puts every receive frame on the fill ring (at start). */
static void fill_all(struct xsk *x)
{
    uint64_t *fr = x->fill.desc;
    for (uint32_t i = 0; i < x->lay.rx_frames && i < x->fill.size; i++)
        fr[(x->fill.local++) & x->fill.mask] = (uint64_t)i * x->lay.frame_size;
    prod_submit(&x->fill);
    if (x->fd >= 0 && needs_wakeup(&x->fill)) {
        sysc_note();
        recvfrom(x->fd, NULL, 0, MSG_DONTWAIT, NULL, NULL);
    }
}

/* ---- transmit -------------------------------------------------------------- */

/* Takes the frames the kernel has sent back from the completion ring. */
static void tx_reap(struct xsk *x)
{
    bool insane;
    uint32_t n = cons_peek(&x->comp, x->comp.size, &insane);
    if (insane)
        cnt_add(&x->st.tx_bad_ring, 1);
    const uint64_t *ring = x->comp.desc;
    for (uint32_t i = 0; i < n; i++) {
        /* Ordered after the kernel's writes by cons_peek's load-acquire (C). */
        uint64_t a = __atomic_load_n(&ring[(x->comp.local + i) & x->comp.mask], __ATOMIC_RELAXED);
        if (xsk_tx_addr_ok(&x->lay, a) && x->tx_nfree < XSK_TX_FRAMES)
            x->tx_free[x->tx_nfree++] = a;
        else
            cnt_add(&x->st.tx_bad_ring, 1);
    }
    if (n)
        cons_release(&x->comp, n);
}

void xsk_tx_begin(struct xsk *x)
{
    pthread_mutex_lock(&x->tx_lock);
    x->tx_queued = 0;
    tx_reap(x);
}

uint8_t *xsk_tx_alloc(struct xsk *x)
{
    bool insane;
    if (!x->tx_cur_valid) {
        if (x->tx_nfree == 0 || prod_room(&x->tx, 1, &insane) == 0) {
            cnt_add(&x->st.tx_ring_full, 1);
            return NULL;
        }
        x->tx_cur = x->tx_free[--x->tx_nfree];
        x->tx_cur_valid = true;
    }
    return x->umem + x->tx_cur;
}

void xsk_tx_put(struct xsk *x, uint32_t len)
{
    if (!x->tx_cur_valid || len == 0 || len > XSK_MTU_FRAME)
        return;   /* the caller's mistake: the frame stays ours */
    struct xdp_desc *d = &((struct xdp_desc *)x->tx.desc)[x->tx.local & x->tx.mask];
    d->addr = x->tx_cur;
    d->len = len;
    d->options = 0;
    x->tx.local++;
    x->tx_cur_valid = false;
    x->tx_queued++;
}

/* Has the kernel send what is on the TX ring (see the top of the file). */
static void tx_kick(struct xsk *x)
{
    /* The TX consumer loads below pair with the kernel's store-release of
     * it (D), like prod_room's (A): only progress is read from them. */
    uint32_t last = __atomic_load_n(x->tx.consumer, __ATOMIC_ACQUIRE);
    for (unsigned i = 0; i < XSK_KICK_MAX; i++) {
        if (!needs_wakeup(&x->tx))
            return;   /* a zero-copy driver that is running anyway */
        sysc_note();
        ssize_t r = sendto(x->fd, NULL, 0, MSG_DONTWAIT, NULL, 0);
        int e = errno;
        bool transient = r >= 0 || e == EAGAIN || e == EBUSY;   /* EBUSY: one frame dropped */
        if (!transient) {
            cnt_add(&x->st.tx_kick_errors, 1);
            return;
        }
        if (x->zerocopy)
            return;   /* the driver was woken: it sends on its own */
        uint32_t now = __atomic_load_n(x->tx.consumer, __ATOMIC_ACQUIRE);
        if (now == x->tx.local)
            return;   /* the kernel took every frame */
        if (now == last)
            break;    /* no progress: the socket buffer or the device is full */
        last = now;
    }
    cnt_add(&x->st.tx_stalled, 1);
}

void xsk_tx_end(struct xsk *x)
{
    if (x->tx_queued)
        prod_submit(&x->tx);
    /* Frames an earlier kick left on the ring (the interface was down, the
     * socket's buffer full) are kicked again even when nothing new came:
     * else a ring filled by them would never move again. */
    /* (A): the consumer's load pairs with the kernel's store-release (D). */
    if (x->tx_queued || __atomic_load_n(x->tx.consumer, __ATOMIC_ACQUIRE) != x->tx.local)
        tx_kick(x);
    x->tx_queued = 0;
    pthread_mutex_unlock(&x->tx_lock);
}

/* ---- the XDP program ----------------------------------------------------- */

/* bpf(2); errno is kept on failure. */
static int sys_bpf(int cmd, union bpf_attr *attr)
{
    return (int)syscall(SYS_bpf, cmd, attr, sizeof(*attr));
}

/* Appends the hint for a bpf(2) failure with errno e. */
static const char *bpf_hint(int e)
{
    return e == EPERM ? " (needs CAP_BPF and CAP_NET_ADMIN, or CAP_SYS_ADMIN)"
           : e == ENOSYS ? " (a kernel without bpf(2))"
                         : "";
}

/* Creates the XSKMAP with room for queues [0, queue]; its fd, or -1. */
static int map_create(unsigned queue, char *err, size_t errlen)
{
    union bpf_attr a;
    memset(&a, 0, sizeof(a));
    a.map_type = BPF_MAP_TYPE_XSKMAP;
    a.key_size = sizeof(uint32_t);
    a.value_size = sizeof(uint32_t);
    a.max_entries = queue + 1;
    snprintf(a.map_name, sizeof(a.map_name), "lwvhost_xsks");
    int fd = sys_bpf(BPF_MAP_CREATE, &a);
    if (fd < 0)
        snprintf(err, errlen, "bpf(BPF_MAP_CREATE) of an XSKMAP: %s%s", strerror(errno),
                 bpf_hint(errno));
    return fd;
}

/* Logs the verifier's log, line by line. */
static void log_verifier(const char *ifname, char *text)
{
    char *save = NULL;
    for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
        log_error("xdp on %s: verifier: %s", ifname, l);
}

/* Loads the program for map_fd; its fd, or -1 (the verifier's log is
 * logged). */
static int prog_load(int map_fd, const char *ifname, char *err, size_t errlen)
{
    struct bpf_insn prog[XSK_PROG_LEN];
    static const char license[] = "Dual BSD/GPL";
    char *vlog = calloc(1, BPF_LOG_SIZE);
    union bpf_attr a;
    xsk_prog_build(prog, map_fd);
    memset(&a, 0, sizeof(a));
    a.prog_type = BPF_PROG_TYPE_XDP;
    a.expected_attach_type = BPF_XDP;
    a.insn_cnt = XSK_PROG_LEN;
    a.insns = (uint64_t)(uintptr_t)prog;
    a.license = (uint64_t)(uintptr_t)license;
    if (vlog) {
        a.log_level = 1;
        a.log_size = BPF_LOG_SIZE;
        a.log_buf = (uint64_t)(uintptr_t)vlog;
    }
    snprintf(a.prog_name, sizeof(a.prog_name), "lwvhost_xsk");
    int fd = sys_bpf(BPF_PROG_LOAD, &a);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "bpf(BPF_PROG_LOAD) of the XDP program: %s%s%s", strerror(e),
                 bpf_hint(e),
                 vlog && vlog[0] ? " (the verifier's log is in the daemon's log)" : "");
        if (vlog && vlog[0])
            log_verifier(ifname, vlog);
    }
    free(vlog);
    return fd;
}

/* Attaches prog_fd to ifindex with a BPF link in mode flags; the link's fd,
 * or -errno. */
static int link_create(int prog_fd, unsigned ifindex, uint32_t flags)
{
    union bpf_attr a;
    memset(&a, 0, sizeof(a));
    a.link_create.prog_fd = (uint32_t)prog_fd;
    a.link_create.target_ifindex = ifindex;
    a.link_create.attach_type = BPF_XDP;
    a.link_create.flags = flags;
    int fd = sys_bpf(BPF_LINK_CREATE, &a);
    return fd < 0 ? -errno : fd;
}

/* Attaches the program natively, then generically, as cfg allows; sets
 * info->native.  0, or -1 with err set. */
static int attach(struct xsk *x, const struct xsk_config *cfg, struct xsk_info *info, char *err,
                  size_t errlen)
{
    int r = -EINVAL, native_err = 0;
    if (cfg->native) {
        r = link_create(x->prog_fd, cfg->ifindex, XDP_FLAGS_DRV_MODE);
        info->native = r >= 0;
        native_err = r < 0 ? -r : 0;
    }
    /* Another program (in either mode) is never replaced, nor worked around. */
    if (r < 0 && r != -EBUSY && r != -EEXIST && r != -EPERM && cfg->generic)
        r = link_create(x->prog_fd, cfg->ifindex, XDP_FLAGS_SKB_MODE);
    if (r >= 0) {
        x->link_fd = r;
        if (cfg->native && !info->native)
            log_info("xdp on %s: native attach refused (%s): generic (skb) mode", cfg->ifname,
                     strerror(native_err));
        return 0;
    }
    if (r == -EBUSY || r == -EEXIST)
        snprintf(err, errlen, "the interface has an XDP program attached already (see 'ip link "
                 "show %s'): lwvhostd does not replace another program", cfg->ifname);
    else if (cfg->native && !cfg->generic)
        snprintf(err, errlen, "attaching the XDP program in native (driver) mode: %s%s",
                 strerror(-r), r == -EOPNOTSUPP || r == -EINVAL
                                   ? " (the driver has no native XDP: try xdp_mode=generic)"
                                   : bpf_hint(-r));
    else
        snprintf(err, errlen, "attaching the XDP program (bpf(BPF_LINK_CREATE), Linux 5.9 or "
                 "later): %s%s", strerror(-r), bpf_hint(-r));
    return -1;
}

/* Map, program and attachment.  0, or -1 with err set. */
static int bpf_setup(struct xsk *x, const struct xsk_config *cfg, struct xsk_info *info,
                     char *err, size_t errlen)
{
    x->map_fd = map_create(cfg->queue, err, errlen);
    if (x->map_fd < 0)
        return -1;
    x->prog_fd = prog_load(x->map_fd, cfg->ifname, err, errlen);
    if (x->prog_fd < 0)
        return -1;
    return attach(x, cfg, info, err, errlen);
}

/* Puts the bound socket in the map at its queue: frames start arriving. */
static int map_insert(struct xsk *x, unsigned queue, char *err, size_t errlen)
{
    uint32_t key = queue, val = (uint32_t)x->fd;
    union bpf_attr a;
    memset(&a, 0, sizeof(a));
    a.map_fd = (uint32_t)x->map_fd;
    a.key = (uint64_t)(uintptr_t)&key;
    a.value = (uint64_t)(uintptr_t)&val;
    a.flags = BPF_ANY;
    if (sys_bpf(BPF_MAP_UPDATE_ELEM, &a) < 0) {
        snprintf(err, errlen, "bpf(BPF_MAP_UPDATE_ELEM): the socket into the XSKMAP: %s",
                 strerror(errno));
        return -1;
    }
    return 0;
}

/* ---- the socket and its memory ---------------------------------------------- */

/* setsockopt(SOL_XDP) of a ring size or the UMEM; errno kept. */
static int set_xdp(int fd, int opt, const void *val, socklen_t len)
{
    return setsockopt(fd, SOL_XDP, opt, val, len);
}

/* The anonymous UMEM, registered.  0, or -1 with err set. */
static int umem_setup(struct xsk *x, char *err, size_t errlen)
{
    size_t len = (size_t)XSK_FRAMES * XSK_FRAME_SIZE;
    void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
        snprintf(err, errlen, "mapping the %zu MiB UMEM: %s", len >> 20, strerror(errno));
        return -1;
    }
    x->umem = m;
    x->lay.umem_len = len;
    x->lay.frame_size = XSK_FRAME_SIZE;
    x->lay.rx_frames = XSK_RX_FRAMES;
    struct xdp_umem_reg reg;
    memset(&reg, 0, sizeof(reg));
    reg.addr = (uint64_t)(uintptr_t)m;
    reg.len = len;
    reg.chunk_size = XSK_FRAME_SIZE;
    reg.headroom = 0;
    if (set_xdp(x->fd, XDP_UMEM_REG, &reg, sizeof(reg)) < 0) {
        int e = errno;
        snprintf(err, errlen, "registering the %zu MiB UMEM: %s%s", len >> 20, strerror(e),
                 e == ENOBUFS || e == ENOMEM || e == EPERM
                     ? " (it is locked in memory: needs CAP_IPC_LOCK or RLIMIT_MEMLOCK room)" : "");
        return -1;
    }
    return 0;
}

/* Maps one ring whose entries are esize bytes; produce: we produce on it. */
static int map_ring(struct xsk *x, struct xsk_ring *r, const struct xdp_ring_offset *o,
                    off_t pgoff, size_t esize, bool produce)
{
    r->size = XSK_RING_SIZE;
    r->mask = XSK_RING_SIZE - 1;
    r->map_len = (size_t)o->desc + (size_t)XSK_RING_SIZE * esize;
    void *m = mmap(NULL, r->map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, x->fd,
                   pgoff);
    if (m == MAP_FAILED)
        return -1;
    r->map = m;
    r->producer = (uint32_t *)((uint8_t *)m + o->producer);
    r->consumer = (uint32_t *)((uint8_t *)m + o->consumer);
    r->flags = (uint32_t *)((uint8_t *)m + o->flags);
    r->desc = (uint8_t *)m + o->desc;
    /* The kernel starts both indexes at 0; take them as they are. */
    r->local = __atomic_load_n(produce ? r->producer : r->consumer, __ATOMIC_ACQUIRE);
    r->cached = __atomic_load_n(produce ? r->consumer : r->producer, __ATOMIC_ACQUIRE);
    return 0;
}

/* The four rings: sizes, offsets, mappings.  0, or -1 with err set. */
static int rings_setup(struct xsk *x, char *err, size_t errlen)
{
    int n = XSK_RING_SIZE;
    struct xdp_mmap_offsets off;
    socklen_t ol = sizeof(off);
    if (set_xdp(x->fd, XDP_UMEM_FILL_RING, &n, sizeof(n)) < 0 ||
        set_xdp(x->fd, XDP_UMEM_COMPLETION_RING, &n, sizeof(n)) < 0 ||
        set_xdp(x->fd, XDP_RX_RING, &n, sizeof(n)) < 0 ||
        set_xdp(x->fd, XDP_TX_RING, &n, sizeof(n)) < 0) {
        snprintf(err, errlen, "sizing the rings: %s", strerror(errno));
        return -1;
    }
    memset(&off, 0, sizeof(off));
    if (getsockopt(x->fd, SOL_XDP, XDP_MMAP_OFFSETS, &off, &ol) < 0 || ol < sizeof(off)) {
        snprintf(err, errlen, "XDP_MMAP_OFFSETS: %s", ol < sizeof(off) ? "a kernel older than "
                 "5.4 (no need_wakeup flags)" : strerror(errno));
        return -1;
    }
    if (map_ring(x, &x->fill, &off.fr, (off_t)XDP_UMEM_PGOFF_FILL_RING, sizeof(uint64_t),
                 true) < 0 ||
        map_ring(x, &x->comp, &off.cr, (off_t)XDP_UMEM_PGOFF_COMPLETION_RING, sizeof(uint64_t),
                 false) < 0 ||
        map_ring(x, &x->rx, &off.rx, XDP_PGOFF_RX_RING, sizeof(struct xdp_desc), false) < 0 ||
        map_ring(x, &x->tx, &off.tx, XDP_PGOFF_TX_RING, sizeof(struct xdp_desc), true) < 0) {
        snprintf(err, errlen, "mapping the rings: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* Binds with flags; 0 or -errno. */
static int bind_flags(struct xsk *x, const struct xsk_config *cfg, uint16_t flags)
{
    struct sockaddr_xdp sa;
    memset(&sa, 0, sizeof(sa));
    sa.sxdp_family = AF_XDP;
    sa.sxdp_flags = flags | XDP_USE_NEED_WAKEUP;
    sa.sxdp_ifindex = cfg->ifindex;
    sa.sxdp_queue_id = cfg->queue;
    return bind(x->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ? -errno : 0;
}

/* One attempt at binding: zero-copy first when native, copy mode when
 * zero-copy is refused; 0 or -errno. */
static int bind_once(struct xsk *x, const struct xsk_config *cfg, struct xsk_info *info)
{
    int r = -EOPNOTSUPP;
    if (info->native) {
        r = bind_flags(x, cfg, XDP_ZEROCOPY);
        if (r < 0 && r != -EBUSY)
            snprintf(info->zc_refused, sizeof(info->zc_refused), "%s", strerror(-r));
    }
    if (r < 0 && r != -EBUSY)
        r = bind_flags(x, cfg, XDP_COPY);
    return r;
}

/* Binds zero-copy when the program runs natively, else (or when the
 * driver refuses) in copy mode; sets info->zerocopy.  A queue a closed
 * socket still holds (the kernel lets go of it in a work item, after the
 * socket's last reference) is waited for, up to XSK_BIND_WAIT_MS.  0, or
 * -1 with err. */
static int bind_socket(struct xsk *x, const struct xsk_config *cfg, struct xsk_info *info,
                       char *err, size_t errlen)
{
    int r = bind_once(x, cfg, info);
    for (unsigned ms = 0; r == -EBUSY && ms < XSK_BIND_WAIT_MS; ms += 10) {
        usleep(10000);
        r = bind_once(x, cfg, info);
    }
    if (r < 0) {
        snprintf(err, errlen, "binding the AF_XDP socket to queue %u: %s%s", cfg->queue,
                 strerror(-r), r == -EBUSY ? " (another AF_XDP socket has that queue)" : "");
        return -1;
    }
    struct xdp_options o;
    socklen_t ol = sizeof(o);
    memset(&o, 0, sizeof(o));
    if (getsockopt(x->fd, SOL_XDP, XDP_OPTIONS, &o, &ol) == 0)
        info->zerocopy = (o.flags & XDP_OPTIONS_ZEROCOPY) != 0;
    x->zerocopy = info->zerocopy;
    return 0;
}

/* The interface's receive queues (the rx-N entries in sysfs), or 0 if
 * unknown. */
static unsigned rx_queues(const char *ifname)
{
    char path[96];
    snprintf(path, sizeof(path), "/sys/class/net/%s/queues", ifname);
    DIR *d = opendir(path);
    unsigned n = 0;
    if (!d)
        return 0;
    for (struct dirent *e; (e = readdir(d));)
        n += strncmp(e->d_name, "rx-", 3) == 0;
    closedir(d);
    return n;
}

/* Everything xsk_open built (any part may be missing). */
static void release(struct xsk *x)
{
    if (!x)
        return;
    if (x->link_fd >= 0)
        close(x->link_fd);   /* detaches the program */
    if (x->prog_fd >= 0)
        close(x->prog_fd);
    if (x->map_fd >= 0)
        close(x->map_fd);
    struct xsk_ring *rings[] = { &x->fill, &x->comp, &x->rx, &x->tx };
    for (unsigned i = 0; i < 4; i++) {
        if (rings[i]->map && rings[i]->in_memory)
            free(rings[i]->map);
        else if (rings[i]->map)
            munmap(rings[i]->map, rings[i]->map_len);
    }
    if (x->fd >= 0)
        close(x->fd);
    if (x->umem)
        munmap(x->umem, x->lay.umem_len);
    pthread_mutex_destroy(&x->tx_lock);
    free(x);
}

/* A new xsk with nothing open, or NULL. */
static struct xsk *xsk_new(void)
{
    struct xsk *x = calloc(1, sizeof(*x));
    if (!x)
        return NULL;
    x->fd = x->map_fd = x->prog_fd = x->link_fd = -1;
    pthread_mutex_init(&x->tx_lock, NULL);
    for (uint32_t i = 0; i < XSK_TX_FRAMES; i++)
        x->tx_free[x->tx_nfree++] = (uint64_t)(XSK_RX_FRAMES + i) * XSK_FRAME_SIZE;
    return x;
}

int xsk_open(struct xsk **out, const struct xsk_config *cfg, struct xsk_info *info, char *err,
             size_t errlen)
{
    memset(info, 0, sizeof(*info));
    info->queue = cfg->queue;
    unsigned nq = rx_queues(cfg->ifname);
    if (nq && cfg->queue >= nq) {
        snprintf(err, errlen, "queue=%u: the interface has %u receive queue%s", cfg->queue, nq,
                 nq == 1 ? " (queue=0)" : "s");
        return -1;
    }
    struct xsk *x = xsk_new();
    if (!x) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    x->fd = socket(AF_XDP, SOCK_RAW | SOCK_CLOEXEC, 0);
    if (x->fd < 0) {
        int e = errno;
        snprintf(err, errlen, "AF_XDP socket: %s%s", strerror(e),
                 e == EPERM ? " (needs CAP_NET_RAW)"
                 : e == EAFNOSUPPORT ? " (a kernel without AF_XDP: CONFIG_XDP_SOCKETS)" : "");
        goto fail;
    }
    if (umem_setup(x, err, errlen) < 0 || rings_setup(x, err, errlen) < 0 ||
        bpf_setup(x, cfg, info, err, errlen) < 0 || bind_socket(x, cfg, info, err, errlen) < 0)
        goto fail;
    fill_all(x);
    if (map_insert(x, cfg->queue, err, errlen) < 0)
        goto fail;
    *out = x;
    return 0;
fail:
    release(x);
    return -1;
}

/* One ring in ordinary memory, its indexes at start; the view in v. */
static int memory_ring(struct xsk_ring *r, size_t esize, uint32_t start,
                       struct xsk_ring_view *v)
{
    /* The kernel's layout, roughly: indexes on cache lines of their own. */
    struct xdp_ring_offset o = { .producer = 0, .consumer = 64, .flags = 128, .desc = 192 };
    r->size = XSK_RING_SIZE;
    r->mask = XSK_RING_SIZE - 1;
    r->map_len = (size_t)o.desc + (size_t)XSK_RING_SIZE * esize;
    r->map = calloc(1, r->map_len);
    if (!r->map)
        return -1;
    r->in_memory = true;
    r->producer = (uint32_t *)((uint8_t *)r->map + o.producer);
    r->consumer = (uint32_t *)((uint8_t *)r->map + o.consumer);
    r->flags = (uint32_t *)((uint8_t *)r->map + o.flags);
    r->desc = (uint8_t *)r->map + o.desc;
    *r->producer = *r->consumer = r->local = r->cached = start;
    *v = (struct xsk_ring_view){ r->producer, r->consumer, r->flags, r->desc };
    return 0;
}

struct xsk *xsk_open_memory(uint32_t start, struct xsk_view *view)
{
    struct xsk *x = xsk_new();
    if (!x)
        return NULL;
    size_t len = (size_t)XSK_FRAMES * XSK_FRAME_SIZE;
    void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        goto fail;
    x->umem = m;
    x->lay = (struct xsk_layout){ len, XSK_FRAME_SIZE, XSK_RX_FRAMES };
    if (memory_ring(&x->fill, sizeof(uint64_t), start, &view->fill) < 0 ||
        memory_ring(&x->comp, sizeof(uint64_t), start, &view->comp) < 0 ||
        memory_ring(&x->rx, sizeof(struct xdp_desc), start, &view->rx) < 0 ||
        memory_ring(&x->tx, sizeof(struct xdp_desc), start, &view->tx) < 0)
        goto fail;
    view->umem = x->umem;
    view->lay = x->lay;
    fill_all(x);
    return x;
fail:
    release(x);
    return NULL;
}

void xsk_close(struct xsk *x)
{
    release(x);
}

int xsk_fd(const struct xsk *x)
{
    return x->fd;
}

void xsk_get_stats(struct xsk *x, struct xsk_stats *out)
{
    struct xdp_statistics k;
    socklen_t l = sizeof(k);
    memset(out, 0, sizeof(*out));
    out->rx_bad_ring = cnt_get(&x->st.rx_bad_ring);
    out->tx_ring_full = cnt_get(&x->st.tx_ring_full);
    out->tx_bad_ring = cnt_get(&x->st.tx_bad_ring);
    out->tx_kick_errors = cnt_get(&x->st.tx_kick_errors);
    out->tx_stalled = cnt_get(&x->st.tx_stalled);
    memset(&k, 0, sizeof(k));
    if (getsockopt(x->fd, SOL_XDP, XDP_STATISTICS, &k, &l) == 0) {
        out->rx_dropped = k.rx_dropped;
        out->rx_ring_full = k.rx_ring_full;
        out->rx_fill_empty = k.rx_fill_ring_empty_descs;
        out->rx_invalid_descs = k.rx_invalid_descs;
        out->tx_invalid_descs = k.tx_invalid_descs;
        out->tx_ring_empty = k.tx_ring_empty_descs;
    }
}
