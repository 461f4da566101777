/*
 * uplink.c - see uplink.h.
 *
 * Receive: a TPACKET_V3 ring of UPLINK_BLOCKS blocks of UPLINK_BLOCK_SIZE
 * bytes.  The kernel fills a block with frames of any size and hands it
 * over (TP_STATUS_USER) when it is full or UPLINK_RETIRE_MS after its first
 * frame; the worker walks it, passes its frames to the switch straight from
 * the ring (no copy: the switch copies them into guests or sends them on
 * before uplink_recv_done gives the block back) and never reads outside
 * the block, whatever the descriptors say.  A block is 128 KiB so that a
 * 64 KiB TSO frame fits whole; a frame the kernel had to cut (snaplen <
 * len: a BIG TCP frame) is dropped.  The socket wakes the worker when a
 * block is handed over, so an idle uplink costs nothing; the price of V3
 * is that a lone frame waits for the retire timer (1 ms, rounded up to a
 * jiffy).
 *
 * Transmit: sendmmsg on the same socket, UPLINK_TX_BATCH frames a call,
 * each a 10-byte virtio-net header and the frame's own iovecs (guest
 * memory, no copy).  Chosen over a TX ring (PACKET_TX_RING): a ring would
 * need a copy of every frame into it, a lock shared by every worker that
 * sends to this port (any worker may), and its own completion tracking;
 * sendmmsg takes the guest's buffers as they are, the kernel serialises
 * concurrent senders, and a run of frames for the port (switch_deliver
 * hands them over a run at a time) still costs one system call.
 *
 * mode=xdp: xsk.c owns the AF_XDP socket and its rings; here, a receive
 * burst describes the UMEM frames xsk_rx_burst hands over as plain frames
 * (the switch copies or sends them before uplink_recv_done gives them
 * back), and transmission copies each frame into a UMEM frame under the
 * socket's transmit lock: a partial checksum completed in the copy, a TSO
 * frame linearised and segmented (offload.c) into one UMEM frame per
 * segment.  A frame longer than a UMEM frame (2048 bytes less the 256 the
 * kernel keeps in front of received frames) is dropped and counted.
 */
#define _GNU_SOURCE
#include "uplink.h"

#include <errno.h>
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "iov.h"
#include "log.h"
#include "net.h"
#include "offload.h"
#include "port.h"
#include "sysc.h"
#include "xsk.h"

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif

#define UPLINK_BLOCK_SIZE (128u * 1024u)
#define UPLINK_BLOCKS 8u
#define UPLINK_FRAME_SIZE 2048u      /* the kernel's frame accounting only */
#define UPLINK_RETIRE_MS 1u
#define UPLINK_TX_BATCH 16u
#define UPLINK_IOV_MAX 32u
#define VLAN_TAG_LEN 4u
#define VIRTIO_NET_HDR_GSO_UDP_L4 5u
#define ETH_ADDRS_LEN 12u

struct uplink {
    uint8_t *ring;
    size_t ring_len;
    unsigned cur;                 /* the block being walked, or waited for */
    bool in_block;                /* cur was handed to us and is being walked */
    bool finished;                /* ... and its walk is over: give it back */
    struct uplink_blk_iter it;
    struct iovec iov[UPLINK_RX_BURST][3];
    uint8_t tag[UPLINK_RX_BURST][VLAN_TAG_LEN];
    struct uplink_stats st;       /* rx_*: its worker; rx_kernel_drops: control thread;
                                   * tx_*: under the AF_XDP socket's transmit lock */
    char ifname[IFNAMSIZ];
    /* mode=xdp */
    struct xsk *xsk;
    struct xsk_info xinfo;
    uint8_t *tx_linear, *tx_seg;  /* FRAME_MAX each: TSO frames segmented (transmit lock) */
};

/* ---- the block walk -------------------------------------------------------- */

/* True when [off, off + len) lies inside a buffer of size bytes. */
static bool in_bounds(size_t off, size_t len, size_t size)
{
    return off <= size && len <= size - off;
}

bool uplink_blk_begin(struct uplink_blk_iter *it, const uint8_t *blk, size_t size,
                      size_t vnet_len)
{
    struct tpacket_block_desc d;
    memset(it, 0, sizeof(*it));
    if (size < sizeof(d))
        return false;
    memcpy(&d, blk, sizeof(d));   /* read once */
    it->blk = blk;
    it->size = size;
    it->vnet_len = vnet_len;
    it->left = d.hdr.bh1.num_pkts;
    it->off = d.hdr.bh1.offset_to_first_pkt;
    if (it->left == 0)
        return true;
    return it->off >= sizeof(d) && in_bounds(it->off, sizeof(struct tpacket3_hdr), size);
}

/* Checks a virtio-net header the kernel wrote for a frame of len bytes as
 * the switch will pass it on: the tap's rules (offload.c: flags, checksum
 * offsets inside the frame, TCP segmentation with a checksum request and a
 * segment size, hdr_len inside the frame), and a checksum that starts past
 * the Ethernet header.  GSO kinds the switch cannot carry (UDP, ECN) are
 * told apart: the kernel makes them from good traffic. */
static enum uplink_pkt_rc hdr_check(const struct virtio_net_hdr *h, size_t len)
{
    static const struct offload_caps all = { true, true, true };
    uint8_t gso = h->gso_type;
    if ((gso & VIRTIO_NET_HDR_GSO_ECN) || gso == VIRTIO_NET_HDR_GSO_UDP ||
        gso == VIRTIO_NET_HDR_GSO_UDP_L4)
        return UPLINK_PKT_GSO_UNSUPPORTED;
    if (!offload_hdr_valid(h, len, &all))
        return UPLINK_PKT_BAD_HDR;
    if ((h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) && h->csum_start < ETH_HLEN_MIN)
        return UPLINK_PKT_BAD_HDR;
    return UPLINK_PKT_OK;
}

/* Fills pkt's header for the frame as it will leave: with a VLAN tag the
 * kernel took off put back, the offsets move by its length.  Returns
 * hdr_check's verdict. */
static enum uplink_pkt_rc pkt_header(struct uplink_pkt *pkt, const uint8_t *vnet,
                                     size_t vnet_len)
{
    memset(&pkt->hdr, 0, sizeof(pkt->hdr));
    memcpy(&pkt->hdr, vnet, vnet_len < VIRTIO_NET_HDR_LEN_LEGACY ? vnet_len
                                                                 : VIRTIO_NET_HDR_LEN_LEGACY);
    size_t out_len = pkt->len + (pkt->vlan ? VLAN_TAG_LEN : 0);
    if (pkt->vlan && (pkt->hdr.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM))
        pkt->hdr.csum_start = (uint16_t)(pkt->hdr.csum_start + VLAN_TAG_LEN);
    if (pkt->vlan && pkt->hdr.gso_type != VIRTIO_NET_HDR_GSO_NONE)
        pkt->hdr.hdr_len = (uint16_t)(pkt->hdr.hdr_len + VLAN_TAG_LEN);
    return hdr_check(&pkt->hdr, out_len);
}

enum uplink_pkt_rc uplink_blk_next(struct uplink_blk_iter *it, struct uplink_pkt *pkt)
{
    struct tpacket3_hdr h;
    if (it->left == 0)
        return UPLINK_PKT_END;
    if (!in_bounds(it->off, sizeof(h), it->size))
        goto bad_ring;
    memcpy(&h, it->blk + it->off, sizeof(h));   /* read once */
    size_t here = it->off;
    it->left--;
    if (it->left) {
        /* The next header must lie further on: no loop, no overlap. */
        if (h.tp_next_offset < sizeof(h) || !in_bounds(here + h.tp_next_offset, sizeof(h), it->size))
            goto bad_ring;
        it->off = here + h.tp_next_offset;
    }
    if (h.tp_mac < sizeof(h) + it->vnet_len || !in_bounds(here + h.tp_mac, h.tp_snaplen, it->size))
        goto bad_ring;
    pkt->data = it->blk + here + h.tp_mac;
    pkt->len = h.tp_snaplen;
    pkt->vlan = (h.tp_status & TP_STATUS_VLAN_VALID) != 0;
    pkt->vlan_tci = h.hv1.tp_vlan_tci;
    pkt->vlan_tpid = (h.tp_status & TP_STATUS_VLAN_TPID_VALID) ? h.hv1.tp_vlan_tpid : 0x8100;
    size_t out_len = pkt->len + (pkt->vlan ? VLAN_TAG_LEN : 0);
    if (h.tp_snaplen != h.tp_len || pkt->len < ETH_HLEN_MIN || out_len > FRAME_MAX)
        return UPLINK_PKT_TRUNCATED;
    return pkt_header(pkt, it->blk + here + h.tp_mac - it->vnet_len, it->vnet_len);
bad_ring:
    it->left = 0;
    return UPLINK_PKT_BAD_RING;
}

/* ---- opening and closing -------------------------------------------------- */

/* setsockopt for an int option; errno is kept on failure. */
static int set_int(int fd, int level, int opt, int val)
{
    return setsockopt(fd, level, opt, &val, sizeof(val));
}

/* Sets up and maps the receive ring (after PACKET_VNET_HDR, which the
 * kernel refuses once a ring exists). */
static int map_ring(struct uplink *u, int fd, char *err, size_t errlen)
{
    struct tpacket_req3 req;
    memset(&req, 0, sizeof(req));
    req.tp_block_size = UPLINK_BLOCK_SIZE;
    req.tp_block_nr = UPLINK_BLOCKS;
    req.tp_frame_size = UPLINK_FRAME_SIZE;
    req.tp_frame_nr = UPLINK_BLOCKS * (UPLINK_BLOCK_SIZE / UPLINK_FRAME_SIZE);
    req.tp_retire_blk_tov = UPLINK_RETIRE_MS;
    if (set_int(fd, SOL_PACKET, PACKET_VERSION, TPACKET_V3) < 0 ||
        setsockopt(fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof(req)) < 0) {
        snprintf(err, errlen, "TPACKET_V3 receive ring: %s", strerror(errno));
        return -1;
    }
    u->ring_len = (size_t)UPLINK_BLOCK_SIZE * UPLINK_BLOCKS;
    void *m = mmap(NULL, u->ring_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) {
        snprintf(err, errlen, "mapping the receive ring: %s", strerror(errno));
        return -1;
    }
    u->ring = m;
    return 0;
}

/* The socket options, in the order the kernel accepts them. */
static int configure(struct uplink *u, int fd, int ifindex, bool qdisc_bypass, char *err,
                     size_t errlen)
{
    if (set_int(fd, SOL_PACKET, PACKET_VNET_HDR, 1) < 0) {
        snprintf(err, errlen, "PACKET_VNET_HDR: %s", strerror(errno));
        return -1;
    }
    if (map_ring(u, fd, err, errlen) < 0)
        return -1;
    if (set_int(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, 1) < 0) {
        snprintf(err, errlen, "PACKET_IGNORE_OUTGOING (Linux 4.20 or later): %s",
                 strerror(errno));
        return -1;
    }
    if (qdisc_bypass && set_int(fd, SOL_PACKET, PACKET_QDISC_BYPASS, 1) < 0) {
        snprintf(err, errlen, "PACKET_QDISC_BYPASS: %s", strerror(errno));
        return -1;
    }
    struct packet_mreq mr;
    memset(&mr, 0, sizeof(mr));
    mr.mr_ifindex = ifindex;
    mr.mr_type = PACKET_MR_PROMISC;
    if (setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof(mr)) < 0) {
        snprintf(err, errlen, "promiscuous mode: %s", strerror(errno));
        return -1;
    }
    /* Bound last: frames arrive only once everything above holds. */
    struct sockaddr_ll sll;
    memset(&sll, 0, sizeof(sll));
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons(ETH_P_ALL);
    sll.sll_ifindex = ifindex;
    if (bind(fd, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
        snprintf(err, errlen, "bind: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* Logs a warning when the interface is down (frames flow once it is up).
 * Asked through a socket of its own: an AF_XDP socket answers no
 * interface ioctls. */
static void warn_if_down(const char *ifname, const char *port)
{
    struct ifreq ifr;
    int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return;
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
    if (ioctl(s, SIOCGIFFLAGS, &ifr) == 0 && !(ifr.ifr_flags & IFF_UP))
        log_warn("uplink %s: interface %s is down: 'ip link set %s up'", port, ifname, ifname);
    close(s);
}

/* Undoes uplink_open's work on u and fd (either may be unset). */
static void release(struct uplink *u, int fd)
{
    if (u && u->ring)
        munmap(u->ring, u->ring_len);
    if (u && u->xsk)
        xsk_close(u->xsk);   /* closes its socket, detaches the program */
    else if (fd >= 0)
        close(fd);
    if (u) {
        free(u->tx_linear);
        free(u->tx_seg);
    }
    free(u);
}

/* mode=packet: the packet socket on ifindex into u; its fd, or -1 with err. */
static int open_packet(struct port *p, struct uplink *u, unsigned ifindex, char *err,
                       size_t errlen)
{
    char why[200];
    const char *ifname = p->cfg.ifname;
    /* Protocol 0: nothing is received before bind. */
    int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "uplink %s: packet socket: %s%s", p->name, strerror(errno),
                 errno == EPERM ? " (needs CAP_NET_RAW)" : "");
        return -1;
    }
    if (configure(u, fd, (int)ifindex, p->cfg.qdisc_bypass, why, sizeof(why)) < 0) {
        snprintf(err, errlen, "uplink %s on %s: %s", p->name, ifname, why);
        close(fd);
        return -1;
    }
    warn_if_down(ifname, p->name);
    log_info("uplink %s: attached to %s (AF_PACKET, TPACKET_V3 ring %u x %u KiB, vnet header, "
             "promiscuous%s)", p->name, ifname, UPLINK_BLOCKS, UPLINK_BLOCK_SIZE / 1024,
             p->cfg.qdisc_bypass ? ", qdisc bypass" : "");
    return fd;
}

/* mode=xdp: the AF_XDP socket and its program on ifindex into u; its fd,
 * or -1 with err. */
static int open_xdp(struct port *p, struct uplink *u, unsigned ifindex, char *err,
                    size_t errlen)
{
    char why[300];
    const char *ifname = p->cfg.ifname;
    struct xsk_config xc = {
        .ifname = ifname,
        .ifindex = ifindex,
        .queue = p->cfg.xdp_queue,
        .native = p->cfg.xdp_mode != UPLINK_XDP_GENERIC,
        .generic = p->cfg.xdp_mode != UPLINK_XDP_NATIVE,
    };
    u->tx_linear = malloc(FRAME_MAX);
    u->tx_seg = malloc(FRAME_MAX);
    if (!u->tx_linear || !u->tx_seg) {
        snprintf(err, errlen, "uplink %s: out of memory", p->name);
        return -1;
    }
    if (xsk_open(&u->xsk, &xc, &u->xinfo, why, sizeof(why)) < 0) {
        snprintf(err, errlen, "uplink %s on %s (mode=xdp): %s", p->name, ifname, why);
        return -1;
    }
    int fd = xsk_fd(u->xsk);
    warn_if_down(ifname, p->name);
    log_info("uplink %s: attached to %s (AF_XDP on queue %u, XDP program %s, %s%s%s%s, UMEM "
             "%u x %u bytes)%s", p->name, ifname, xc.queue,
             u->xinfo.native ? "native (in the driver)" : "generic (skb mode)",
             u->xinfo.zerocopy ? "zero-copy" : "copy mode",
             u->xinfo.zc_refused[0] ? " (zero-copy refused: " : "", u->xinfo.zc_refused,
             u->xinfo.zc_refused[0] ? ")" : "", XSK_FRAMES, XSK_FRAME_SIZE,
             u->xinfo.native ? "" : "; generic XDP: frames over 1792 bytes (GRO, a local "
             "peer's TSO) are dropped by the kernel");
    return fd;
}

int uplink_open(struct port *p, char *err, size_t errlen)
{
    struct uplink *u = NULL;
    const char *ifname = p->cfg.ifname;
    unsigned ifindex = if_nametoindex(ifname);
    if (ifindex == 0) {
        snprintf(err, errlen, "uplink %s: no interface named %s", p->name, ifname);
        return -1;
    }
    u = calloc(1, sizeof(*u));
    if (!u) {
        snprintf(err, errlen, "uplink %s: out of memory", p->name);
        return -1;
    }
    snprintf(u->ifname, sizeof(u->ifname), "%s", ifname);
    int fd = p->cfg.xdp ? open_xdp(p, u, ifindex, err, errlen)
                        : open_packet(p, u, ifindex, err, errlen);
    if (fd < 0) {
        release(u, -1);
        return -1;
    }
    p->uplink = u;
    p->tap_fd = fd;
    return 0;
}

void uplink_close(struct port *p)
{
    release(p->uplink, p->tap_fd);
    p->uplink = NULL;
    p->tap_fd = -1;
}

void uplink_clear_error(struct port *p)
{
    int e = 0;
    socklen_t l = sizeof(e);
    sysc_note();
    if (getsockopt(p->tap_fd, SOL_SOCKET, SO_ERROR, &e, &l) == 0 && e)
        log_warn("uplink %s: %s: %s", p->name, p->uplink->ifname, strerror(e));
}

/* mode=xdp: the uplink's counters from the socket's. */
static void xdp_get_stats(struct uplink *u, struct uplink_stats *out)
{
    memset(out, 0, sizeof(*out));
    xsk_get_stats(u->xsk, &out->xsk);
    out->xdp = true;
    out->xdp_info = u->xinfo;
    out->rx_bad_ring = out->xsk.rx_bad_ring;
    out->rx_kernel_drops = out->xsk.rx_dropped + out->xsk.rx_ring_full;
    out->tx_too_big = stat_get(&u->st.tx_too_big);
    out->tx_bad_offload = stat_get(&u->st.tx_bad_offload);
}

void uplink_get_stats(const struct port *p, struct uplink_stats *out)
{
    struct uplink *u = p->uplink;
    struct tpacket_stats_v3 ks;
    if (u->xsk) {
        xdp_get_stats(u, out);
        return;
    }
    memset(out, 0, sizeof(*out));
    socklen_t l = sizeof(ks);
    /* The kernel's counters reset when read: accumulate them here (the
     * control thread is the only reader). */
    if (getsockopt(p->tap_fd, SOL_PACKET, PACKET_STATISTICS, &ks, &l) == 0)
        stat_add(&u->st.rx_kernel_drops, ks.tp_drops);
    out->rx_truncated = stat_get(&u->st.rx_truncated);
    out->rx_bad_hdr = stat_get(&u->st.rx_bad_hdr);
    out->rx_gso_unsupported = stat_get(&u->st.rx_gso_unsupported);
    out->rx_bad_ring = stat_get(&u->st.rx_bad_ring);
    out->rx_kernel_drops = stat_get(&u->st.rx_kernel_drops);
}

/* ---- receive ------------------------------------------------------------------ */

/* The descriptor at the start of ring block i. */
static struct tpacket_block_desc *block_at(const struct uplink *u, unsigned i)
{
    return (struct tpacket_block_desc *)(u->ring + (size_t)i * UPLINK_BLOCK_SIZE);
}

/* Hands block cur back to the kernel and moves on to the next. */
static void give_back(struct uplink *u)
{
    __atomic_store_n(&block_at(u, u->cur)->hdr.bh1.block_status, TP_STATUS_KERNEL,
                     __ATOMIC_RELEASE);
    u->cur = (u->cur + 1) % UPLINK_BLOCKS;
    u->in_block = u->finished = false;
}

/* Starts on block cur if the kernel has handed it over; false if not yet. */
static bool open_block(struct uplink *u)
{
    struct tpacket_block_desc *b = block_at(u, u->cur);
    if (!(__atomic_load_n(&b->hdr.bh1.block_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER))
        return false;
    u->in_block = true;
    u->finished = false;
    if (!uplink_blk_begin(&u->it, (const uint8_t *)b, UPLINK_BLOCK_SIZE, VIRTIO_NET_HDR_LEN_LEGACY)) {
        stat_add(&u->st.rx_bad_ring, 1);
        u->it.left = 0;
    }
    return true;
}

/* Describes pkt as frame f, with slot's storage for a VLAN tag put back. */
static void pkt_to_frame(struct uplink *u, unsigned slot, const struct uplink_pkt *pkt,
                         struct frame *f)
{
    struct iovec *v = u->iov[slot];
    if (!pkt->vlan) {
        net_frame_flat(f, v, pkt->data, pkt->len, &pkt->hdr);
        return;
    }
    uint8_t *t = u->tag[slot];
    t[0] = (uint8_t)(pkt->vlan_tpid >> 8);
    t[1] = (uint8_t)pkt->vlan_tpid;
    t[2] = (uint8_t)(pkt->vlan_tci >> 8);
    t[3] = (uint8_t)pkt->vlan_tci;
    v[0] = (struct iovec){ (void *)pkt->data, ETH_ADDRS_LEN };
    v[1] = (struct iovec){ t, VLAN_TAG_LEN };
    v[2] = (struct iovec){ (void *)(pkt->data + ETH_ADDRS_LEN), pkt->len - ETH_ADDRS_LEN };
    f->iov = v;
    f->niov = 3;
    f->skip = 0;
    f->len = pkt->len + VLAN_TAG_LEN;
    f->flat = NULL;
    f->hdr = pkt->hdr;
    memcpy(f->eth, pkt->data, ETH_ADDRS_LEN);
    memcpy(f->eth + ETH_ADDRS_LEN, t, ETH_HLEN_MIN - ETH_ADDRS_LEN);
}

/* Counts a dropped packet by its reason. */
static void count_drop(struct uplink *u, enum uplink_pkt_rc rc, uint64_t *drops)
{
    (*drops)++;
    if (rc == UPLINK_PKT_TRUNCATED)
        stat_add(&u->st.rx_truncated, 1);
    else if (rc == UPLINK_PKT_BAD_HDR)
        stat_add(&u->st.rx_bad_hdr, 1);
    else if (rc == UPLINK_PKT_GSO_UNSUPPORTED)
        stat_add(&u->st.rx_gso_unsupported, 1);
    else
        stat_add(&u->st.rx_bad_ring, 1);
}

/* Walks the open block for up to max frames into f; sets u->finished when
 * the block has no more. */
static unsigned walk_block(struct uplink *u, struct frame *f, unsigned max, unsigned *nread,
                           uint64_t *bytes, uint64_t *drops)
{
    unsigned n = 0;
    while (n < max) {
        struct uplink_pkt pkt;
        enum uplink_pkt_rc rc = uplink_blk_next(&u->it, &pkt);
        if (rc == UPLINK_PKT_END) {
            u->finished = true;
            break;
        }
        (*nread)++;
        if (rc != UPLINK_PKT_OK) {
            count_drop(u, rc, drops);
            continue;
        }
        pkt_to_frame(u, n, &pkt, &f[n]);
        *bytes += f[n].len;
        n++;
    }
    if (u->it.left == 0)
        u->finished = true;
    return n;
}

/* mode=xdp: up to max frames from the AF_XDP socket's RX ring, as plain
 * frames straight from the UMEM. */
static unsigned xdp_recv_burst(struct port *p, struct frame *f, unsigned max, unsigned *nread,
                               bool *empty)
{
    static const struct virtio_net_hdr plain;   /* the wire carries no offload metadata */
    struct uplink *u = p->uplink;
    struct xsk_rx_frame rf[UPLINK_RX_BURST];
    uint64_t bytes = 0;
    unsigned n = xsk_rx_burst(u->xsk, rf, max, nread, empty);
    for (unsigned i = 0; i < n; i++) {
        net_frame_flat(&f[i], &u->iov[i][0], rf[i].data, rf[i].len, &plain);
        bytes += rf[i].len;
    }
    stat_add(&p->tap.rx_packets, n);
    stat_add(&p->tap.rx_bytes, bytes);
    stat_add(&p->tap.rx_drops, *nread - n);   /* descriptors out of bounds (xsk.c counts) */
    return n;
}

unsigned uplink_recv_burst(struct port *p, struct frame *f, unsigned max, unsigned *nread,
                           bool *empty)
{
    struct uplink *u = p->uplink;
    uint64_t bytes = 0, drops = 0;
    unsigned n = 0;
    *nread = 0;
    *empty = false;
    if (max > UPLINK_RX_BURST)
        max = UPLINK_RX_BURST;
    if (u->xsk)
        return xdp_recv_burst(p, f, max, nread, empty);
    /* A burst stays within one block: the block goes back only after the
     * switch is done with the burst's frames (uplink_recv_done). */
    for (unsigned blocks = 0; blocks <= UPLINK_BLOCKS; blocks++) {
        if (u->in_block && u->finished)
            give_back(u);   /* nothing of it is in f */
        if (!u->in_block && !open_block(u)) {
            *empty = true;
            break;
        }
        n = walk_block(u, f, max, nread, &bytes, &drops);
        if (n > 0 || !u->finished)
            break;
    }
    stat_add(&p->tap.rx_packets, n);
    stat_add(&p->tap.rx_bytes, bytes);
    stat_add(&p->tap.rx_drops, drops);
    return n;
}

void uplink_recv_done(struct port *p)
{
    struct uplink *u = p->uplink;
    if (u->xsk)
        xsk_rx_release(u->xsk);
    else if (u->in_block && u->finished)
        give_back(u);
}

/* ---- transmit ------------------------------------------------------------------ */

/* One batch being built for sendmmsg. */
struct tx_batch {
    struct mmsghdr msg[UPLINK_TX_BATCH];
    struct iovec iov[UPLINK_TX_BATCH][UPLINK_IOV_MAX + 1];
    struct virtio_net_hdr hdr[UPLINK_TX_BATCH];
    size_t len[UPLINK_TX_BATCH];
    unsigned n;
};

/* Adds f to the batch; false if its buffers need more than UPLINK_IOV_MAX
 * pieces (it is dropped). */
static bool batch_add(struct tx_batch *b, const struct frame *f)
{
    unsigned k = b->n;
    /* The kernel takes checksum and segmentation requests from us, as the
     * tap does; num_buffers is not part of the 10-byte header. */
    b->hdr[k] = f->hdr;
    b->iov[k][0] = (struct iovec){ &b->hdr[k], VIRTIO_NET_HDR_LEN_LEGACY };
    int pieces = iov_slice(f->iov, f->niov, f->skip, f->len, &b->iov[k][1], UPLINK_IOV_MAX);
    if (pieces < 0)
        return false;
    memset(&b->msg[k], 0, sizeof(b->msg[k]));
    b->msg[k].msg_hdr.msg_iov = b->iov[k];
    b->msg[k].msg_hdr.msg_iovlen = (size_t)pieces + 1;
    b->len[k] = f->len;
    b->n++;
    return true;
}

/* Sends the batch without waiting; counts what went and what did not.  A
 * frame the kernel refuses (a bad header, too long for the MTU) is dropped
 * alone; no room (EAGAIN, ENOBUFS) or a link gone drops the rest. */
static void batch_flush(struct port *p, struct tx_batch *b, uint64_t *sent, uint64_t *bytes,
                        uint64_t *drops)
{
    unsigned i = 0;
    while (i < b->n) {
        sysc_note();
        int r = sendmmsg(p->tap_fd, &b->msg[i], b->n - i, MSG_DONTWAIT);
        if (r > 0) {
            for (unsigned k = i; k < i + (unsigned)r; k++)
                *bytes += b->len[k];
            *sent += (unsigned)r;
            i += (unsigned)r;
            continue;
        }
        if (r < 0 && (errno == EINVAL || errno == EMSGSIZE)) {
            (*drops)++;
            i++;
            continue;
        }
        *drops += b->n - i;
        break;
    }
    b->n = 0;
}

/* ---- transmit, mode=xdp ---------------------------------------------------------- */

/* One uplink_send call in mode=xdp (under the socket's transmit lock). */
struct xdp_tx {
    struct uplink *u;
    uint64_t sent, bytes, drops;
    bool failed;             /* a segment of the frame being segmented did not go */
};

/* Queues len bytes at data as one frame; false (counted) if it cannot go. */
static bool xdp_put_buf(struct xdp_tx *t, const uint8_t *data, size_t len)
{
    if (len > XSK_MTU_FRAME) {
        stat_add(&t->u->st.tx_too_big, 1);
        return false;
    }
    uint8_t *buf = xsk_tx_alloc(t->u->xsk);
    if (!buf)
        return false;   /* xsk.c counts tx_ring_full; the rest of the frame would find none */
    memcpy(buf, data, len);
    xsk_tx_put(t->u->xsk, (uint32_t)len);
    t->sent++;
    t->bytes += len;
    return true;
}

/* gso_segment's callback: each segment is a frame of its own. */
static bool xdp_emit_segment(void *arg, uint8_t *seg, size_t len)
{
    struct xdp_tx *t = arg;
    if (!xdp_put_buf(t, seg, len))
        t->failed = true;
    return !t->failed;
}

/* A TSO frame: linearised, segmented in software, each segment with
 * complete checksums (the wire gets no virtio-net header to ask for it). */
static void xdp_add_segmented(struct xdp_tx *t, const struct frame *f)
{
    struct uplink *u = t->u;
    t->failed = false;
    if (f->len > FRAME_MAX ||
        iov_to_buf(f->iov, f->niov, f->skip, u->tx_linear, f->len) != f->len ||
        gso_segment(u->tx_linear, f->len, &f->hdr, u->tx_seg, FRAME_MAX, xdp_emit_segment, t) < 0) {
        stat_add(&u->st.tx_bad_offload, 1);
        t->drops++;
    } else if (t->failed) {
        t->drops++;   /* the frame went in part, or not at all */
    }
}

/* Copies frame f into a UMEM frame and queues it, a partial checksum
 * completed in the copy; drops and counts it when it cannot go. */
static void xdp_add(struct xdp_tx *t, const struct frame *f)
{
    struct uplink *u = t->u;
    if (f->hdr.gso_type != VIRTIO_NET_HDR_GSO_NONE) {
        xdp_add_segmented(t, f);
        return;
    }
    if (f->len > XSK_MTU_FRAME) {
        stat_add(&u->st.tx_too_big, 1);
        t->drops++;
        return;
    }
    uint8_t *buf = xsk_tx_alloc(u->xsk);
    if (!buf) {
        t->drops++;
        return;
    }
    /* The buffer stays ours until xsk_tx_put: a refused frame leaves it for the next. */
    if (iov_to_buf(f->iov, f->niov, f->skip, buf, f->len) != f->len ||
        ((f->hdr.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) &&
         !offload_csum_complete(buf, f->len, &f->hdr))) {
        stat_add(&u->st.tx_bad_offload, 1);
        t->drops++;
        return;
    }
    xsk_tx_put(u->xsk, (uint32_t)f->len);
    t->sent++;
    t->bytes += f->len;
}

/* mode=xdp: the run of frames copied into the TX ring, then one kick. */
static void xdp_send(struct port *p, const struct frame *f, unsigned n)
{
    struct xdp_tx t = { p->uplink, 0, 0, 0, false };
    xsk_tx_begin(t.u->xsk);
    for (unsigned i = 0; i < n; i++)
        xdp_add(&t, &f[i]);
    xsk_tx_end(t.u->xsk);
    if (t.sent) {
        stat_add_shared(&p->tap.tx_packets, t.sent);
        stat_add_shared(&p->tap.tx_bytes, t.bytes);
    }
    if (t.drops)
        stat_add_shared(&p->tap.tx_drops, t.drops);
}

void uplink_send(struct port *p, const struct frame *f, unsigned n)
{
    struct tx_batch b;
    if (p->uplink->xsk) {
        xdp_send(p, f, n);
        return;
    }
    uint64_t sent = 0, bytes = 0, drops = 0;
    b.n = 0;
    for (unsigned i = 0; i < n; i++) {
        if (!batch_add(&b, &f[i]))
            drops++;
        if (b.n == UPLINK_TX_BATCH)
            batch_flush(p, &b, &sent, &bytes, &drops);
    }
    if (b.n)
        batch_flush(p, &b, &sent, &bytes, &drops);
    if (sent) {
        stat_add_shared(&p->tap.tx_packets, sent);
        stat_add_shared(&p->tap.tx_bytes, bytes);
    }
    if (drops)
        stat_add_shared(&p->tap.tx_drops, drops);
}
