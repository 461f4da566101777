/*
 * vxlan.c - see vxlan.h.
 *
 * Receive: recvmmsg into the port's own buffers (vxlan.h says how many and
 * how big); each buffer is split into the datagrams it carries (one, or
 * with UDP GRO those the kernel coalesced: the UDP_GRO control message
 * gives their size), and each datagram, however it came, goes through
 * vxlan_rx_check on its own: a coalesced datagram is checked exactly as a
 * lone one.  Without GRO a buffer is one byte larger than the largest
 * datagram the port takes, so that a longer one (cut by the kernel) still
 * shows as too long; with GRO it holds any UDP payload whole.  A burst
 * takes at most max datagrams; the rest of what was read waits in the
 * port (struct vxlan_rxq) and the next call hands it out before reading
 * again, so the buffers are never overwritten while frames point into
 * them.  The inner frames go to the switch straight from those buffers
 * with a plain virtio-net header: the kernel checked the outer UDP
 * checksum when the sender set one (before coalescing: GRO takes only
 * datagrams with a checksum), and the inner frame's own checksums are the
 * sender's business, as on a wire.
 *
 * Transmit: each frame's offload requests are resolved first (a partial
 * checksum is completed and spliced in as two bytes of our own between
 * slices of the frame's buffers; a GSO frame is segmented in software into
 * per-thread storage), then the frame (or each segment) becomes one
 * datagram per target remote, all sharing one iovec list that starts with
 * the port's VXLAN header and goes on with the frame's buffers (guest
 * memory, no copy).  A batch is sent with one sendmmsg per sending socket,
 * its datagrams grouped by socket in batch order, so a flow's datagrams
 * keep their order.
 *
 * Decisions:
 * - A remote is an address: the sender's UDP source port is not checked,
 *   since RFC 7348 section 5 has a VTEP derive it from the inner flow.
 *   Datagrams go to a remote at the port's dstport.
 * - Checks run in the order length, I flag, VNI, inner length, sender: a
 *   remote is learned (learn=on) only from a datagram that passed the
 *   rest, and a datagram refused for its content is counted for that, not
 *   for its sender.
 * - Outer source port: the kernel picks the sending sockets' ports (bound
 *   to port 0: distinct ports from its ip_local_port_range, not the
 *   49152-65535 RFC 7348 suggests), and a hash of the inner flow picks the
 *   socket, so one flow keeps one outer 5-tuple and the underlay can spread
 *   different ones (RFC 7348 section 5).
 * - Fragmentation: the sending sockets use IP_PMTUDISC_PROBE (over IPv6
 *   IPV6_PMTUDISC_PROBE): the DF bit is set (IPv6 routers never fragment),
 *   and a datagram larger than the route's MTU is refused by our own
 *   kernel (EMSGSIZE: dropped, counted in tx_too_big) instead of going out
 *   in fragments; RFC 7348 section 4.3 says a VTEP MUST NOT fragment.
 *   IP_PMTUDISC_DONT would let the local kernel fragment silently.  PROBE
 *   rather than DO: a forged ICMP "fragmentation needed" (ICMPv6 "packet
 *   too big") cannot lower what the port sends; the inner MTU (mtu=) is
 *   what sizes the frames.
 * - Outer UDP checksum: left to the kernel, which computes one (the socket
 *   default), over IPv4 and IPv6.  RFC 7348 says it SHOULD be zero over
 *   IPv4 but allows a correct one, which every receiver must accept; over
 *   IPv6 a zero one is the exception (RFC 6935/6936), so a correct one is
 *   what any IPv6 VTEP takes.  It covers the inner frame across the
 *   underlay for the cost of a sum the kernel folds into its copy.  On
 *   receipt both are accepted (UDP_NO_CHECK6_RX over IPv6).
 * - IPv6: sockets with IPV6_V6ONLY, so an IPv6 port never hears IPv4
 *   traffic in v4-mapped form; link-local addresses are refused (config.c)
 *   since they would need an interface, which a remote does not name.
 * - The MAC table ages lazily, after the switch's --fdb-age (as its own
 *   MAC table; a reload that changes it applies at once): an older entry
 *   counts as absent for lookups and may be overwritten by learning; nothing
 *   sweeps it.  Learned remotes stay until the port is removed (bounded by
 *   VXLAN_MAX_REMOTES).
 */
#define _GNU_SOURCE
#include "vxlan.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <netinet/udp.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "fdb.h"
#include "iov.h"
#include "log.h"
#include "net.h"
#include "offload.h"
#include "switch.h"
#include "sysc.h"

#define TX_FRAMES 32u          /* frames (or segments) of one batch */
#define TX_MSGS 64u            /* datagrams of one batch: frames times their remotes */
#define TX_IOV_MAX 32u         /* buffer pieces of one frame */
#define TX_ARENA (64u * 1024u) /* segments of GSO frames waiting in a batch */
#define HASH_BYTES 64u         /* frame bytes the flow hash looks at: Ethernet, VLAN, IPv6, ports */
#define SOCK_BUF (1 << 20)     /* socket buffers asked for (the kernel caps them) */
#define ETH_ADDRS_LEN 12u
/* UDP GSO (UDP_SEGMENT): most datagrams one send may carry, and their
 * total payload (an IPv4 datagram's, less its IP and UDP headers; IPv6
 * would allow 20 bytes more: the IPv4 bound serves both). */
#define GSO_SEGS_MAX 64u
#define GSO_BYTES_MAX (65535u - 20u - 8u)

struct vxlan {
    struct vxlan_core core;
    union vxlan_sockaddr local;               /* local:dstport */
    int tx_fd[VXLAN_TX_SOCKS];
    uint16_t tx_port[VXLAN_TX_SOCKS];         /* their ports, host order */
    unsigned ntx;
    /* Runs of same-sized datagrams to one remote go out as one UDP GSO
     * send; cleared (for good) the first time the kernel refuses one
     * (atomic, relaxed: any worker may send). */
    bool gso;
    /* receive: the port's worker's */
    bool gro;                                 /* UDP_GRO is on: big buffers, split */
    unsigned rx_nslots;                       /* buffers: at most VXLAN_RX_BURST */
    uint8_t *rx_buf;
    size_t rx_slot;                           /* bytes of each */
    struct mmsghdr rx_msg[VXLAN_RX_BURST];
    struct iovec rx_iov[VXLAN_RX_BURST];
    union vxlan_sockaddr rx_from[VXLAN_RX_BURST];
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } rx_cmsg[VXLAN_RX_BURST];
    struct vxlan_rxbuf rx_got[VXLAN_RX_BURST];   /* what the last read returned */
    struct vxlan_rxq rxq;                     /* ... and what of it is not handled yet */
    bool rx_drained;                          /* that read emptied the socket */
    struct iovec frame_iov[VXLAN_RX_BURST];
};

/* ---- the pure part ----------------------------------------------------------- */

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

void vxlan_header(uint8_t hdr[VXLAN_HLEN], uint32_t vni)
{
    memset(hdr, 0, VXLAN_HLEN);
    hdr[0] = VXLAN_FLAG_I;
    hdr[4] = (uint8_t)(vni >> 16);
    hdr[5] = (uint8_t)(vni >> 8);
    hdr[6] = (uint8_t)vni;
}

bool vxlan_ip_is_v4(const struct in6_addr *a)
{
    return IN6_IS_ADDR_V4MAPPED(a);
}

/* The IPv4 address (network order) of v4-mapped address a. */
static uint32_t v4_of(const struct in6_addr *a)
{
    uint32_t ip;
    memcpy(&ip, &a->s6_addr[12], sizeof(ip));
    return ip;
}

/* The v4-mapped form of IPv4 address ip (network order). */
static void v4_mapped(struct in6_addr *a, uint32_t ip)
{
    memset(a, 0, sizeof(*a));
    a->s6_addr[10] = a->s6_addr[11] = 0xff;
    memcpy(&a->s6_addr[12], &ip, sizeof(ip));
}

int vxlan_ip_parse(const char *s, struct in6_addr *out)
{
    uint32_t ip;
    if (inet_pton(AF_INET, s, &ip) == 1) {
        v4_mapped(out, ip);
        return AF_INET;
    }
    if (inet_pton(AF_INET6, s, out) != 1)
        return -1;
    /* ::ffff:a.b.c.d names an IPv4 host: that is how it is reached. */
    return vxlan_ip_is_v4(out) ? AF_INET : AF_INET6;
}

bool vxlan_ip_unicast(const struct in6_addr *a)
{
    if (vxlan_ip_is_v4(a)) {
        uint32_t h = ntohl(v4_of(a));
        return h != 0 && h != 0xffffffffu && (h >> 28) != 0xe;
    }
    return !IN6_IS_ADDR_UNSPECIFIED(a) && !IN6_IS_ADDR_MULTICAST(a) &&
           !IN6_IS_ADDR_LINKLOCAL(a);
}

const char *vxlan_ip_str(const struct in6_addr *a, char *buf, size_t len)
{
    const char *r;
    if (vxlan_ip_is_v4(a)) {
        uint32_t ip = v4_of(a);
        r = inet_ntop(AF_INET, &ip, buf, (socklen_t)len);
    } else {
        r = inet_ntop(AF_INET6, a, buf, (socklen_t)len);
    }
    if (!r && len)
        snprintf(buf, len, "?");
    return buf;
}

void vxlan_sockaddr_set(union vxlan_sockaddr *sa, int family, const struct in6_addr *a,
                        uint16_t port)
{
    memset(sa, 0, sizeof(*sa));
    if (family == AF_INET6) {
        sa->in6.sin6_family = AF_INET6;
        sa->in6.sin6_port = htons(port);
        sa->in6.sin6_addr = *a;
    } else {
        sa->in.sin_family = AF_INET;
        sa->in.sin_port = htons(port);
        sa->in.sin_addr.s_addr = v4_of(a);
    }
}

bool vxlan_sockaddr_ip(const union vxlan_sockaddr *sa, struct in6_addr *out)
{
    if (sa->sa.sa_family == AF_INET6) {
        *out = sa->in6.sin6_addr;
        return true;
    }
    if (sa->sa.sa_family == AF_INET) {
        v4_mapped(out, sa->in.sin_addr.s_addr);
        return true;
    }
    return false;
}

/* Sets remote slot i of c to address a, sent to at the port's dstport. */
static void set_remote(struct vxlan_core *c, unsigned i, const struct in6_addr *a)
{
    vxlan_sockaddr_set(&c->remote[i], c->family, a, c->dstport);
    c->rip[i] = *a;
}

void vxlan_core_init(struct vxlan_core *c, const struct vxlan_cfg *cfg, uint64_t seed)
{
    memset(c, 0, sizeof(*c));
    c->family = cfg->family == AF_INET6 ? AF_INET6 : AF_INET;
    c->salen = c->family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    c->vni = cfg->vni & VXLAN_VNI_MAX;
    c->max_frame = VXLAN_MAX_FRAME(cfg->mtu);
    c->learn = cfg->learn;
    c->dstport = cfg->dstport;
    vxlan_header(c->hdr, c->vni);
    unsigned n = cfg->nremotes < VXLAN_MAX_REMOTES ? cfg->nremotes : VXLAN_MAX_REMOTES;
    for (unsigned i = 0; i < n; i++)
        set_remote(c, i, &cfg->remote[i]);
    c->nconf = c->nremotes = n;
    c->vtep_seed = seed;
}

enum vxlan_rx_rc vxlan_decap(const struct vxlan_core *c, const uint8_t *d, size_t len,
                             size_t *inner_len)
{
    if (len < VXLAN_HLEN + ETH_HLEN_MIN)
        return VXLAN_RX_SHORT;
    /* Only the I flag matters: RFC 7348 section 5 has the reserved bits
     * (of the flags and elsewhere) ignored on receipt. */
    if (!(d[0] & VXLAN_FLAG_I))
        return VXLAN_RX_BAD_FLAGS;
    uint32_t vni = (uint32_t)d[4] << 16 | (uint32_t)d[5] << 8 | d[6];
    if (vni != c->vni)
        return VXLAN_RX_UNKNOWN_VNI;
    if (len - VXLAN_HLEN > c->max_frame)
        return VXLAN_RX_TOO_LONG;
    *inner_len = len - VXLAN_HLEN;
    return VXLAN_RX_OK;
}

int vxlan_remote_find(const struct vxlan_core *c, const struct in6_addr *ip)
{
    unsigned n = __atomic_load_n(&c->nremotes, __ATOMIC_ACQUIRE);
    for (unsigned i = 0; i < n; i++)
        if (memcmp(&c->rip[i], ip, sizeof(*ip)) == 0)
            return (int)i;
    return -1;
}

int vxlan_remote_learn(struct vxlan_core *c, const struct in6_addr *ip)
{
    /* Only the receive worker writes: a plain read of the count is its own. */
    unsigned n = __atomic_load_n(&c->nremotes, __ATOMIC_RELAXED);
    if (n >= VXLAN_MAX_REMOTES) {
        stat_add(&c->st.remotes_full, 1);
        return -1;
    }
    set_remote(c, n, ip);
    /* Published whole: senders read remote[i] only for i below the count. */
    __atomic_store_n(&c->nremotes, n + 1, __ATOMIC_RELEASE);
    stat_add(&c->st.remotes_learned, 1);
    char a[INET6_ADDRSTRLEN];
    log_info("vxlan: learned remote VTEP %s (%u of %u)", vxlan_ip_str(ip, a, sizeof(a)), n + 1,
             VXLAN_MAX_REMOTES);
    return (int)n;
}

/* First slot of the bucket of MAC key (keyed: a sender cannot aim its
 * addresses at one bucket without knowing the seed). */
static unsigned vtep_bucket(const struct vxlan_core *c, uint64_t key)
{
    uint64_t h = (key ^ c->vtep_seed) * 0x9e3779b97f4a7c15ull;
    h ^= h >> 29;
    return (unsigned)(h % (VXLAN_VTEP_SLOTS / VXLAN_VTEP_WAYS)) * VXLAN_VTEP_WAYS;
}

/* True when slot i was learned at most the core's age ago. */
static bool vtep_fresh(const struct vxlan_core *c, unsigned i, uint32_t now_s)
{
    uint32_t age = c->age_s ? __atomic_load_n(c->age_s, __ATOMIC_RELAXED) : VXLAN_VTEP_AGE_S;
    return now_s - __atomic_load_n(&c->vtep_seen[i], __ATOMIC_RELAXED) <= age;
}

/* True for a MAC that stands for one station: not a group address, not zero. */
static bool station_key(uint64_t key)
{
    return key != 0 && !((key >> 40) & 1);
}

/* Writes slot i (the time first: a sender that sees the new word with the
 * old time takes it for aged, and floods once). */
static void vtep_store(struct vxlan_core *c, unsigned i, uint64_t word, uint32_t now_s)
{
    __atomic_store_n(&c->vtep_seen[i], now_s, __ATOMIC_RELAXED);
    __atomic_store_n(&c->vtep[i], word, __ATOMIC_RELEASE);
}

void vxlan_vtep_learn(struct vxlan_core *c, const uint8_t mac[6], unsigned r, uint32_t now_s)
{
    uint64_t key = fdb_key(mac);
    if (!station_key(key) || r >= VXLAN_MAX_REMOTES)
        return;
    uint64_t want = key << 16 | (r + 1);
    unsigned b = vtep_bucket(c, key);
    int free_at = -1, aged_at = -1;
    for (unsigned w = 0; w < VXLAN_VTEP_WAYS; w++) {
        unsigned i = b + w;
        uint64_t word = __atomic_load_n(&c->vtep[i], __ATOMIC_RELAXED);
        if (word && word >> 16 == key) {
            if (word != want)
                stat_add(&c->st.vtep_moved, 1);   /* the MAC is behind another VTEP now */
            vtep_store(c, i, want, now_s);
            return;
        }
        if (!word && free_at < 0)
            free_at = (int)i;
        else if (word && aged_at < 0 && !vtep_fresh(c, i, now_s))
            aged_at = (int)i;
    }
    int at = free_at >= 0 ? free_at : aged_at;
    if (at < 0) {
        stat_add(&c->st.vtep_full, 1);   /* frames to it are replicated to every remote */
        return;
    }
    vtep_store(c, (unsigned)at, want, now_s);
}

int vxlan_vtep_lookup(const struct vxlan_core *c, const uint8_t mac[6], uint32_t now_s)
{
    uint64_t key = fdb_key(mac);
    if (!station_key(key))
        return -1;
    unsigned b = vtep_bucket(c, key);
    for (unsigned w = 0; w < VXLAN_VTEP_WAYS; w++) {
        uint64_t word = __atomic_load_n(&c->vtep[b + w], __ATOMIC_ACQUIRE);
        if (!word || word >> 16 != key)
            continue;
        if (!vtep_fresh(c, b + w, now_s))
            return -1;
        unsigned r = (unsigned)(word & 0xffff) - 1;
        return r < __atomic_load_n(&c->nremotes, __ATOMIC_ACQUIRE) ? (int)r : -1;
    }
    return -1;
}

unsigned vxlan_targets(const struct vxlan_core *c, const uint8_t dst[6], uint32_t now_s,
                       uint8_t *out)
{
    int r = vxlan_vtep_lookup(c, dst, now_s);
    if (r >= 0) {
        out[0] = (uint8_t)r;
        return 1;
    }
    /* Broadcast, multicast, unknown unicast: head-end replication. */
    unsigned n = __atomic_load_n(&c->nremotes, __ATOMIC_ACQUIRE);
    for (unsigned i = 0; i < n; i++)
        out[i] = (uint8_t)i;
    return n;
}

/* Counts a refused datagram by its reason. */
static void count_refusal(struct vxlan_stats *st, enum vxlan_rx_rc rc)
{
    switch (rc) {
    case VXLAN_RX_SHORT:
        stat_add(&st->rx_short, 1);
        break;
    case VXLAN_RX_BAD_FLAGS:
        stat_add(&st->rx_bad_flags, 1);
        break;
    case VXLAN_RX_UNKNOWN_VNI:
        stat_add(&st->rx_unknown_vni, 1);
        break;
    case VXLAN_RX_TOO_LONG:
        stat_add(&st->rx_too_long, 1);
        break;
    case VXLAN_RX_UNKNOWN_REMOTE:
        stat_add(&st->rx_unknown_remote, 1);
        break;
    case VXLAN_RX_OK:
        break;
    }
}

/* The remote index of the datagram's sender, learned if the port may
 * (learn=on, a unicast address of the port's family, room in the list);
 * -1 if refused. */
static int sender_remote(struct vxlan_core *c, const union vxlan_sockaddr *from)
{
    struct in6_addr ip;
    if (from->sa.sa_family != c->family || !vxlan_sockaddr_ip(from, &ip))
        return -1;
    /* An IPv6 socket hands up no IPv4 sender (V6ONLY); a v4-mapped one
     * would be an IPv4 host on an IPv6 port. */
    if (vxlan_ip_is_v4(&ip) != (c->family == AF_INET))
        return -1;
    int r = vxlan_remote_find(c, &ip);
    if (r >= 0 || !c->learn || !vxlan_ip_unicast(&ip))
        return r;
    return vxlan_remote_learn(c, &ip);
}

enum vxlan_rx_rc vxlan_rx_check(struct vxlan_core *c, const union vxlan_sockaddr *from,
                                const uint8_t *d, size_t len, uint32_t now_s, size_t *inner_len)
{
    enum vxlan_rx_rc rc = vxlan_decap(c, d, len, inner_len);
    if (rc == VXLAN_RX_OK) {
        int r = sender_remote(c, from);
        if (r < 0)
            rc = VXLAN_RX_UNKNOWN_REMOTE;
        else
            vxlan_vtep_learn(c, d + VXLAN_HLEN + 6, (unsigned)r, now_s);
    }
    count_refusal(&c->st, rc);
    return rc;
}

void vxlan_split_init(struct vxlan_split *s, const uint8_t *d, size_t len, int gso, bool cut)
{
    s->d = d;
    s->len = len;
    /* A size the kernel would not give (none, 0, negative, past the end)
     * means the buffer is one datagram. */
    s->seg = gso > 0 && (size_t)gso <= len ? (size_t)gso : len;
    s->off = 0;
    s->cut = cut;
    s->done = false;
}

bool vxlan_split_next(struct vxlan_split *s, const uint8_t **dg, size_t *dlen, bool *whole)
{
    if (s->done)
        return false;
    size_t left = s->len - s->off;
    size_t n = left < s->seg ? left : s->seg;
    *dg = s->d + s->off;
    *dlen = n;
    s->off += n;
    s->done = s->off >= s->len;   /* seg is 0 only for an empty buffer: done at once */
    *whole = !(s->cut && s->done);
    return true;
}

size_t vxlan_split_count(const struct vxlan_split *s)
{
    return s->seg ? (s->len + s->seg - 1) / s->seg : 1;
}

/* Makes buffer i of q the one being split; counts it when the kernel had
 * coalesced several datagrams into it. */
static void rxq_open(struct vxlan_core *c, struct vxlan_rxq *q, unsigned i)
{
    const struct vxlan_rxbuf *b = &q->buf[i];
    q->at = i;
    vxlan_split_init(&q->split, b->d, b->len, b->gso, b->cut);
    size_t n = vxlan_split_count(&q->split);
    if (n > 1) {
        stat_add(&c->st.rx_gro_buffers, 1);
        stat_add(&c->st.rx_gro_segments, n);
    }
}

void vxlan_rxq_start(struct vxlan_core *c, struct vxlan_rxq *q, const struct vxlan_rxbuf *buf,
                     unsigned n)
{
    memset(q, 0, sizeof(*q));
    q->buf = buf;
    q->nbuf = n;
    if (n)
        rxq_open(c, q, 0);
}

bool vxlan_rxq_pending(const struct vxlan_rxq *q)
{
    /* Every buffer has at least one datagram: one not opened yet is some. */
    return q->at < q->nbuf && (!q->split.done || q->at + 1 < q->nbuf);
}

/* The next datagram of q (opening the next buffer when one is done);
 * false when none is left. */
static bool rxq_next(struct vxlan_core *c, struct vxlan_rxq *q, const uint8_t **dg, size_t *len,
                     bool *whole, const union vxlan_sockaddr **from)
{
    while (q->at < q->nbuf) {
        if (vxlan_split_next(&q->split, dg, len, whole)) {
            *from = q->buf[q->at].from;
            return true;
        }
        if (q->at + 1 >= q->nbuf)
            break;
        rxq_open(c, q, q->at + 1);
    }
    return false;
}

unsigned vxlan_rxq_take(struct vxlan_core *c, struct vxlan_rxq *q, struct frame *f,
                        struct iovec *fiov, unsigned max, uint32_t now_s, unsigned *handled,
                        uint64_t *bytes)
{
    static const struct virtio_net_hdr plain;
    unsigned n = 0, k = 0;
    const uint8_t *d;
    size_t len, inner = 0;
    bool whole;
    const union vxlan_sockaddr *from;
    *bytes = 0;
    while (k < max && rxq_next(c, q, &d, &len, &whole, &from)) {
        k++;
        if (!whole) {
            count_refusal(&c->st, VXLAN_RX_TOO_LONG);   /* as a cut lone datagram is */
            continue;
        }
        if (vxlan_rx_check(c, from, d, len, now_s, &inner) != VXLAN_RX_OK)
            continue;
        net_frame_flat(&f[n], &fiov[n], d + VXLAN_HLEN, inner, &plain);
        *bytes += inner;
        n++;
    }
    *handled = k;
    return n;
}

/* FNV-1a over n bytes, on from h. */
static uint32_t hash_bytes(uint32_t h, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 16777619u;
    }
    return h;
}

/* Spreads the bits of h over the whole word (FNV alone leaves the low
 * bits, which pick the socket, weak). */
static uint32_t hash_finish(uint32_t h)
{
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}

uint32_t vxlan_flow_hash(const uint8_t *f, size_t len)
{
    uint32_t h = 2166136261u;
    if (len < ETH_HLEN_MIN)
        return hash_finish(hash_bytes(h, f, len));
    h = hash_bytes(h, f, ETH_ADDRS_LEN);
    size_t l3 = ETH_HLEN_MIN;
    uint16_t type = get16(f + 12);
    if ((type == 0x8100 || type == 0x88a8) && len >= ETH_HLEN_MIN + 4) {
        type = get16(f + 16);   /* one VLAN tag */
        l3 += 4;
    }
    const uint8_t *ip = f + l3;
    size_t left = len - l3, l4 = 0;
    bool with_ports = false;
    uint8_t proto = 0;
    if (type == 0x0800 && left >= 20 && ip[0] >> 4 == 4) {
        h = hash_bytes(h, ip + 12, 8);
        proto = ip[9];
        l4 = (size_t)(ip[0] & 0x0f) * 4;
        /* A fragment (more to come, or an offset) has no ports, or only
         * its first has: none of them hashes ports, so they stay together. */
        with_ports = (get16(ip + 6) & 0x3fff) == 0 && l4 >= 20;
    } else if (type == 0x86dd && left >= 40 && ip[0] >> 4 == 6) {
        h = hash_bytes(h, ip + 8, 32);
        proto = ip[6];   /* extension headers: hashed without ports */
        l4 = 40;
        with_ports = true;
    }
    h = hash_bytes(h, &proto, 1);
    if (with_ports && (proto == 6 || proto == 17) && left >= l4 + 4)
        h = hash_bytes(h, ip + l4, 4);
    return hash_finish(h);
}

uint32_t vxlan_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint32_t)ts.tv_sec;
}

/* ---- opening and closing ---------------------------------------------------- */

/* "a.b.c.d:port" or "[v6]:port" of sa into buf (ADDR_STR_LEN bytes). */
#define ADDR_STR_LEN (INET6_ADDRSTRLEN + 8)
static const char *addr_str(const union vxlan_sockaddr *sa, char *buf, size_t len)
{
    char a[INET6_ADDRSTRLEN];
    struct in6_addr ip;
    if (!vxlan_sockaddr_ip(sa, &ip)) {
        snprintf(buf, len, "?");
        return buf;
    }
    vxlan_ip_str(&ip, a, sizeof(a));
    bool v6 = sa->sa.sa_family == AF_INET6;
    snprintf(buf, len, "%s%s%s:%u", v6 ? "[" : "", a, v6 ? "]" : "",
             ntohs(v6 ? sa->in6.sin6_port : sa->in.sin_port));
    return buf;
}

/* A UDP socket of the port's family; for IPv6, IPv6 alone (no IPv4
 * traffic through v4-mapped addresses).  -1 with why set on failure. */
static int udp_socket(const struct vxlan *v, char *why, size_t len)
{
    int fd = socket(v->core.family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP);
    if (fd < 0) {
        snprintf(why, len, "UDP socket: %s", strerror(errno));
        return -1;
    }
    int one = 1;
    if (v->core.family == AF_INET6 &&
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) {
        snprintf(why, len, "IPV6_V6ONLY: %s", strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* Over IPv6, accepts datagrams with a zero UDP checksum, as over IPv4
 * (RFC 6935/6936 allow it for tunnels; Linux's vxlan sends them with
 * udp6zerocsumtx).  Best effort: without it they are dropped by the
 * kernel, and counted there. */
static void accept_zero_csum6(const struct vxlan *v, int fd)
{
    int one = 1;
    if (v->core.family == AF_INET6 &&
        setsockopt(fd, SOL_UDP, UDP_NO_CHECK6_RX, &one, sizeof(one)) < 0)
        log_warn("vxlan: UDP_NO_CHECK6_RX refused (%s): datagrams with a zero UDP checksum "
                 "will be dropped by the kernel", strerror(errno));
}

/* The socket that receives: bound to local:dstport. */
static int open_rx(const struct vxlan *v, char *why, size_t len)
{
    char a[ADDR_STR_LEN];
    int fd = udp_socket(v, why, len);
    if (fd < 0)
        return -1;
    /* A deeper queue rides out a worker busy with other ports; best
     * effort (the kernel caps it at net.core.rmem_max). */
    int big = SOCK_BUF;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
    accept_zero_csum6(v, fd);
    if (bind(fd, &v->local.sa, v->core.salen) < 0) {
        int e = errno;
        snprintf(why, len, "bind %s: %s%s", addr_str(&v->local, a, sizeof(a)), strerror(e),
                 e == EADDRNOTAVAIL ? " (local= must be an address of this host)"
                 : e == EADDRINUSE  ? " (another socket has it: a kernel vxlan device "
                                      "or another VXLAN port?)"
                                    : "");
        close(fd);
        return -1;
    }
    return fd;
}

/* Sets fd to send with DF and never fragment locally: IP_PMTUDISC_PROBE,
 * or IPV6_PMTUDISC_PROBE (see the file's header). */
static int no_fragments(const struct vxlan *v, int fd)
{
    if (v->core.family == AF_INET6) {
        int pmtu = IPV6_PMTUDISC_PROBE;
        return setsockopt(fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER, &pmtu, sizeof(pmtu));
    }
    int pmtu = IP_PMTUDISC_PROBE;
    return setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &pmtu, sizeof(pmtu));
}

/* One sending socket, bound to local:0 (a port of the kernel's choice),
 * with no local fragmentation (see the file's header); its port in *port.
 * -1 with why set on failure. */
static int open_tx_one(const struct vxlan *v, uint16_t *port, char *why, size_t len)
{
    union vxlan_sockaddr sa = v->local;
    socklen_t sl = sizeof(sa);
    int big = SOCK_BUF, small = 0;
    if (sa.sa.sa_family == AF_INET6)
        sa.in6.sin6_port = 0;
    else
        sa.in.sin_port = 0;
    int fd = udp_socket(v, why, len);
    if (fd < 0)
        return -1;
    if (no_fragments(v, fd) < 0 || bind(fd, &sa.sa, v->core.salen) < 0 ||
        getsockname(fd, &sa.sa, &sl) < 0) {
        snprintf(why, len, "sending socket: %s", strerror(errno));
        close(fd);
        return -1;
    }
    /* Best effort: room for a replicated burst; and nothing is ever read
     * from these sockets, so what strays to them may take little memory. */
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    *port = ntohs(sa.sa.sa_family == AF_INET6 ? sa.in6.sin6_port : sa.in.sin_port);
    return fd;
}

/* Asks for UDP GRO on the receiving socket fd: true when the kernel took
 * it (an older kernel refuses: ENOPROTOOPT). */
static bool enable_gro(const struct port *p, int fd)
{
    int one = 1;
    if (setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof(one)) == 0)
        return true;
    log_warn("vxlan %s: the kernel refused UDP GRO (%s): datagrams are read one by one",
             p->name, strerror(errno));
    return false;
}

/* Sizes and allocates the receive buffers for the socket's mode (GRO or
 * not) and points the receive messages at them, their address slots and
 * control buffers.  False when out of memory. */
static bool setup_rx(struct vxlan *v)
{
    v->rx_nslots = v->gro ? VXLAN_RX_GRO_SLOTS : VXLAN_RX_BURST;
    /* Without GRO: one byte more than the largest datagram taken, so that a
     * longer one shows. */
    v->rx_slot = v->gro ? VXLAN_RX_GRO_SLOT : VXLAN_HLEN + v->core.max_frame + 1;
    v->rx_buf = malloc(v->rx_nslots * v->rx_slot);
    if (!v->rx_buf)
        return false;
    for (unsigned i = 0; i < v->rx_nslots; i++) {
        v->rx_iov[i] = (struct iovec){ v->rx_buf + i * v->rx_slot, v->rx_slot };
        memset(&v->rx_msg[i], 0, sizeof(v->rx_msg[i]));
        v->rx_msg[i].msg_hdr.msg_iov = &v->rx_iov[i];
        v->rx_msg[i].msg_hdr.msg_iovlen = 1;
        v->rx_msg[i].msg_hdr.msg_name = &v->rx_from[i];
    }
    return true;
}

/* Undoes vxlan_open's work on v and the receiving socket rx (either may
 * be unset). */
static void release(struct vxlan *v, int rx)
{
    if (rx >= 0)
        close(rx);
    if (!v)
        return;
    for (unsigned i = 0; i < v->ntx; i++)
        close(v->tx_fd[i]);
    free(v->rx_buf);
    free(v);
}

/* A seed for the MAC table's hash. */
static uint64_t random_seed(const void *salt)
{
    uint64_t s;
    if (getrandom(&s, sizeof(s), GRND_NONBLOCK) == (ssize_t)sizeof(s))
        return s;
    return (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ull ^ (uint64_t)(uintptr_t)salt;
}

int vxlan_open(struct port *p, const struct vxlan_cfg *cfg, char *err, size_t errlen)
{
    char why[200], a[ADDR_STR_LEN];
    int rx = -1;
    struct vxlan *v = calloc(1, sizeof(*v));
    if (!v) {
        snprintf(err, errlen, "vxlan %s: out of memory", p->name);
        goto fail;
    }
    vxlan_core_init(&v->core, cfg, random_seed(v));
    if (p->sw)
        v->core.age_s = &p->sw->fdb.age_s;
    vxlan_sockaddr_set(&v->local, v->core.family, &cfg->local, cfg->dstport);
    v->gso = true;   /* until the kernel refuses a merged send */
    rx = open_rx(v, why, sizeof(why));
    if (rx < 0) {
        snprintf(err, errlen, "vxlan %s: %s", p->name, why);
        goto fail;
    }
    v->gro = enable_gro(p, rx);
    v->core.st.rx_gro_off = !v->gro;
    if (!setup_rx(v)) {
        snprintf(err, errlen, "vxlan %s: out of memory", p->name);
        goto fail;
    }
    for (; v->ntx < VXLAN_TX_SOCKS; v->ntx++) {
        int fd = open_tx_one(v, &v->tx_port[v->ntx], why, sizeof(why));
        if (fd < 0) {
            snprintf(err, errlen, "vxlan %s: %s", p->name, why);
            goto fail;
        }
        v->tx_fd[v->ntx] = fd;
    }
    p->vxlan = v;
    p->tap_fd = rx;
    log_info("vxlan %s: VNI %u on %s, %u remote%s%s, inner MTU %u, %u sending sockets, "
             "UDP GRO %s", p->name, v->core.vni, addr_str(&v->local, a, sizeof(a)),
             v->core.nconf, v->core.nconf == 1 ? "" : "s", v->core.learn ? " (learning more)" : "",
             cfg->mtu, v->ntx, v->gro ? "on" : "off");
    return 0;
fail:
    release(v, rx);
    return -1;
}

void vxlan_close(struct port *p)
{
    release(p->vxlan, p->tap_fd);
    p->vxlan = NULL;
    p->tap_fd = -1;
}

void vxlan_clear_error(struct port *p)
{
    int e = 0;
    socklen_t l = sizeof(e);
    sysc_note();
    if (getsockopt(p->tap_fd, SOL_SOCKET, SO_ERROR, &e, &l) == 0 && e)
        log_warn("vxlan %s: %s", p->name, strerror(e));
}

void vxlan_get_stats(const struct port *p, struct vxlan_stats *out, struct vxlan_info *info)
{
    const struct vxlan *v = p->vxlan;
    const struct vxlan_stats *s = &v->core.st;
    const uint64_t *from = (const uint64_t *)s;
    uint64_t *to = (uint64_t *)out;
    /* Every field is a uint64_t counter, read one at a time. */
    _Static_assert(sizeof(*s) % sizeof(uint64_t) == 0, "vxlan_stats: uint64_t counters only");
    for (size_t i = 0; i < sizeof(*s) / sizeof(uint64_t); i++)
        to[i] = stat_get(&from[i]);
    uint32_t now = vxlan_now_s();
    info->nconf = v->core.nconf;
    info->nremotes = __atomic_load_n(&v->core.nremotes, __ATOMIC_ACQUIRE);
    info->vtep_entries = 0;
    for (unsigned i = 0; i < VXLAN_VTEP_SLOTS; i++)
        if (__atomic_load_n(&v->core.vtep[i], __ATOMIC_RELAXED) && vtep_fresh(&v->core, i, now))
            info->vtep_entries++;
    info->src_port_lo = info->src_port_hi = v->tx_port[0];
    for (unsigned i = 1; i < v->ntx; i++) {
        if (v->tx_port[i] < info->src_port_lo)
            info->src_port_lo = v->tx_port[i];
        if (v->tx_port[i] > info->src_port_hi)
            info->src_port_hi = v->tx_port[i];
    }
}

bool vxlan_remote_addr(const struct port *p, unsigned i, struct in6_addr *out)
{
    const struct vxlan_core *c = &p->vxlan->core;
    if (i >= __atomic_load_n(&c->nremotes, __ATOMIC_ACQUIRE))
        return false;
    *out = c->rip[i];
    return true;
}

/* ---- receive ------------------------------------------------------------------ */

/* The UDP_GRO size in message m's control data: 0 when there is none, or
 * when the kernel cut the control data (one datagram then). */
static int gro_size(struct msghdr *m)
{
    if (m->msg_flags & MSG_CTRUNC)
        return 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c)) {
        if (c->cmsg_level != SOL_UDP || c->cmsg_type != UDP_GRO ||
            c->cmsg_len < CMSG_LEN(sizeof(int)))
            continue;
        int g;
        memcpy(&g, CMSG_DATA(c), sizeof(g));
        return g;
    }
    return 0;
}

/* Reads up to want buffers into the port's and starts handing out their
 * datagrams; the number read (0: none, or an error, counted). */
static unsigned rx_read(struct vxlan *v, int fd, unsigned want)
{
    if (want > v->rx_nslots)
        want = v->rx_nslots;
    for (unsigned i = 0; i < want; i++) {
        struct msghdr *m = &v->rx_msg[i].msg_hdr;
        m->msg_namelen = sizeof(v->rx_from[i]);
        v->rx_from[i].sa.sa_family = AF_UNSPEC;   /* refused unless the kernel fills it */
        m->msg_control = v->gro ? v->rx_cmsg[i].buf : NULL;
        m->msg_controllen = v->gro ? sizeof(v->rx_cmsg[i].buf) : 0;
        m->msg_flags = 0;
    }
    sysc_note();
    int r = recvmmsg(fd, v->rx_msg, want, MSG_DONTWAIT, NULL);
    if (r <= 0) {
        if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            stat_add(&v->core.st.rx_errors, 1);
        v->rx_drained = true;
        return 0;
    }
    for (unsigned i = 0; i < (unsigned)r; i++) {
        struct msghdr *m = &v->rx_msg[i].msg_hdr;
        struct vxlan_rxbuf *b = &v->rx_got[i];
        b->d = v->rx_iov[i].iov_base;
        /* The kernel says how much it copied; never past the buffer. */
        b->len = v->rx_msg[i].msg_len < v->rx_slot ? v->rx_msg[i].msg_len : v->rx_slot;
        b->gso = v->gro ? gro_size(m) : 0;
        b->cut = (m->msg_flags & MSG_TRUNC) != 0;
        b->from = &v->rx_from[i];
    }
    v->rx_drained = (unsigned)r < want;   /* no second call to find out */
    vxlan_rxq_start(&v->core, &v->rxq, v->rx_got, (unsigned)r);
    return (unsigned)r;
}

unsigned vxlan_recv_burst(struct port *p, struct frame *f, unsigned max, unsigned *nread,
                          bool *empty)
{
    struct vxlan *v = p->vxlan;
    *nread = 0;
    if (max > VXLAN_RX_BURST)
        max = VXLAN_RX_BURST;
    /* What an earlier read left comes first, and alone: reading now would
     * overwrite the buffers that this call's frames point into. */
    if (!vxlan_rxq_pending(&v->rxq) && max && rx_read(v, p->tap_fd, max) == 0) {
        *empty = true;
        return 0;
    }
    unsigned handled = 0;
    uint64_t bytes = 0;
    unsigned n = vxlan_rxq_take(&v->core, &v->rxq, f, v->frame_iov, max, vxlan_now_s(), &handled,
                                &bytes);
    *nread = handled;
    *empty = v->rx_drained && !vxlan_rxq_pending(&v->rxq);
    stat_add(&p->tap.rx_packets, n);
    stat_add(&p->tap.rx_bytes, bytes);
    if (handled > n)
        stat_add(&p->tap.rx_drops, handled - n);
    return n;
}

/* ---- transmit ------------------------------------------------------------------ */

/* One frame (or one segment of a GSO frame) as the payload of its
 * datagrams. */
struct tx_frame {
    struct iovec iov[TX_IOV_MAX + 2];   /* the VXLAN header, the frame's pieces (and the
                                         * checksum spliced in between two of them) */
    unsigned niov;
    uint8_t csum[2];                    /* a checksum completed here, big-endian */
    uint32_t len;                       /* the inner frame's */
};

/* The datagrams built by one vxlan_send call, not yet sent. */
struct tx_batch {
    struct tx_frame fr[TX_FRAMES];
    unsigned nfr;
    struct mmsghdr msg[TX_MSGS];
    uint8_t sock[TX_MSGS];              /* the sending socket of each */
    uint32_t len[TX_MSGS];
    unsigned nmsg;
    struct mmsghdr out[TX_MSGS];        /* msg grouped by socket, for sendmmsg */
    uint32_t out_len[TX_MSGS];
    /* UDP GSO: runs of out[] merged into one message each */
    struct mmsghdr gso[TX_MSGS];
    unsigned gso_first[TX_MSGS], gso_n[TX_MSGS];   /* the run of out[] each carries */
    struct iovec gso_iov[TX_MSGS * (TX_IOV_MAX + 3)];
    union {
        char buf[CMSG_SPACE(sizeof(uint16_t))];
        struct cmsghdr align;
    } gso_cmsg[TX_MSGS];
    size_t arena_used;
    uint8_t arena[TX_ARENA];            /* the segments of GSO frames in fr */
};

/* Per thread: any worker may send to the port. */
static __thread struct tx_batch tx_tls;
static __thread uint8_t gso_linear[FRAME_MAX], gso_seg[FRAME_MAX];

/* One vxlan_send call. */
struct tx_ctx {
    struct port *p;
    struct vxlan *v;
    struct tx_batch *b;
    uint8_t targets[VXLAN_MAX_REMOTES];   /* of the frame being added */
    unsigned ntargets;
    unsigned sock;                        /* ... and its sending socket */
    uint64_t sent, bytes, drops;
};

/* True for a sendmmsg error that concerns the first datagram only (it is
 * dropped, the rest go on): too big for the route, no route to that
 * remote, refused by a firewall. */
static bool drops_one(int e)
{
    return e == EMSGSIZE || e == EINVAL || e == ENETUNREACH || e == EHOSTUNREACH ||
           e == EPERM || e == EACCES || e == EADDRNOTAVAIL;
}

/* Sends out[i, end) on socket fd, without waiting; counts what went and
 * what did not.  No room (EAGAIN, ENOBUFS) drops the rest. */
static void send_group(struct tx_ctx *t, int fd, unsigned i, unsigned end)
{
    struct tx_batch *b = t->b;
    struct vxlan_stats *st = &t->v->core.st;
    while (i < end) {
        sysc_note();
        int r = sendmmsg(fd, &b->out[i], end - i, MSG_DONTWAIT);
        if (r > 0) {
            for (unsigned k = i; k < i + (unsigned)r; k++)
                t->bytes += b->out_len[k];
            t->sent += (unsigned)r;
            i += (unsigned)r;
            continue;
        }
        if (r < 0 && drops_one(errno)) {
            stat_add_shared(errno == EMSGSIZE ? &st->tx_too_big : &st->tx_send_errors, 1);
            t->drops++;
            i++;
            continue;
        }
        stat_add_shared(&st->tx_no_room, end - i);
        t->drops += end - i;
        break;
    }
}

/* The length of the run of out[i, end) that can go as one UDP GSO send:
 * datagrams to the same remote, all as long as the first but the last
 * (which may be shorter), within the kernel's limits. */
static unsigned gso_run(const struct tx_batch *b, unsigned i, unsigned end, uint32_t max_frame)
{
    const struct msghdr *h = &b->out[i].msg_hdr;
    uint32_t seg = b->out_len[i] + VXLAN_HLEN, total = seg;
    size_t niov = h->msg_iovlen;
    unsigned n = 1;
    /* A frame with a VLAN tag at the full MTU may be too big for the
     * route: it goes alone, so that its refusal drops only itself. */
    if (b->out_len[i] + 4 > max_frame)
        return 1;
    while (i + n < end && n < GSO_SEGS_MAX) {
        const struct msghdr *x = &b->out[i + n].msg_hdr;
        uint32_t len = b->out_len[i + n] + VXLAN_HLEN;
        if (x->msg_name != h->msg_name || len > seg || total + len > GSO_BYTES_MAX ||
            niov + x->msg_iovlen > IOV_MAX)
            break;
        total += len;
        niov += x->msg_iovlen;
        n++;
        if (len < seg)
            break;   /* a shorter one ends the run */
    }
    return n;
}

/* Builds in b->gso[m] one message carrying out[i, i + n) back to back,
 * with UDP_SEGMENT set to the first one's length; iov is where its pieces
 * go (room for n * (TX_IOV_MAX + 2)). */
static void gso_build(struct tx_batch *b, unsigned m, unsigned i, unsigned n, struct iovec *iov)
{
    size_t k = 0;
    for (unsigned j = i; j < i + n; j++) {
        const struct msghdr *h = &b->out[j].msg_hdr;
        memcpy(&iov[k], h->msg_iov, h->msg_iovlen * sizeof(*iov));
        k += h->msg_iovlen;
    }
    struct msghdr *g = &b->gso[m].msg_hdr;
    memset(&b->gso[m], 0, sizeof(b->gso[m]));
    g->msg_name = b->out[i].msg_hdr.msg_name;
    g->msg_namelen = b->out[i].msg_hdr.msg_namelen;
    g->msg_iov = iov;
    g->msg_iovlen = k;
    b->gso_first[m] = i;
    b->gso_n[m] = n;
    if (n == 1)
        return;   /* a datagram alone: sent as it is */
    g->msg_control = b->gso_cmsg[m].buf;
    g->msg_controllen = sizeof(b->gso_cmsg[m].buf);
    struct cmsghdr *c = CMSG_FIRSTHDR(g);
    c->cmsg_level = SOL_UDP;
    c->cmsg_type = UDP_SEGMENT;
    c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
    uint16_t seg = (uint16_t)(b->out_len[i] + VXLAN_HLEN);
    memcpy(CMSG_DATA(c), &seg, sizeof(seg));
}

/* True for a send error that may mean the kernel cannot do UDP GSO here
 * (rather than one datagram's problem: no route, a firewall). */
static bool gso_refused(int e)
{
    return e == EIO || e == EINVAL || e == EOPNOTSUPP || e == ENOPROTOOPT;
}

/* Sends out[i, end) on socket fd with UDP GSO: each run of datagrams to
 * one remote as one send.  Counts what went; returns where plain sending
 * must take over: end when all went or were dropped for want of room, or
 * the first datagram of a merged send the kernel refused (GSO is then off
 * for the port: the kernel or the route cannot do it). */
static unsigned send_group_gso(struct tx_ctx *t, int fd, unsigned i, unsigned end)
{
    struct tx_batch *b = t->b;
    unsigned nm = 0;
    struct iovec *iov = b->gso_iov;
    for (unsigned j = i; j < end; nm++) {
        unsigned n = gso_run(b, j, end, t->v->core.max_frame);
        gso_build(b, nm, j, n, iov);
        iov += b->gso[nm].msg_hdr.msg_iovlen;
        j += n;
    }
    unsigned m = 0;
    while (m < nm) {
        sysc_note();
        int r = sendmmsg(fd, &b->gso[m], nm - m, MSG_DONTWAIT);
        if (r > 0) {
            for (unsigned k = m; k < m + (unsigned)r; k++) {
                for (unsigned d = 0; d < b->gso_n[k]; d++)
                    t->bytes += b->out_len[b->gso_first[k] + d];
                t->sent += b->gso_n[k];
                if (b->gso_n[k] > 1) {
                    stat_add_shared(&t->v->core.st.tx_gso_sends, 1);
                    stat_add_shared(&t->v->core.st.tx_gso_datagrams, b->gso_n[k]);
                }
            }
            m += (unsigned)r;
            continue;
        }
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)) {
            unsigned rest = end - b->gso_first[m];
            stat_add_shared(&t->v->core.st.tx_no_room, rest);
            t->drops += rest;
            return end;
        }
        /* Refused: a datagram sent alone (too big, no route), or a merged
         * send: maybe GSO itself (EIO, EINVAL: a kernel or route that
         * cannot), maybe one of its datagrams.  Plain sending sorts the
         * rest out, one by one; GSO stays off if it may be the cause. */
        if (b->gso_n[m] > 1 && gso_refused(errno) &&
            __atomic_exchange_n(&t->v->gso, false, __ATOMIC_RELAXED)) {
            stat_add_shared(&t->v->core.st.tx_gso_off, 1);
            log_warn("vxlan %s: UDP GSO refused (%s): sending datagram by datagram from now on",
                     t->p->name, strerror(errno));
        }
        return b->gso_first[m];
    }
    return end;
}

/* Sends the batch, one sendmmsg per socket (its datagrams in batch order,
 * so a flow's stay in order), and empties it. */
static void batch_flush(struct tx_ctx *t)
{
    struct tx_batch *b = t->b;
    unsigned k = 0;
    for (unsigned s = 0; s < t->v->ntx; s++) {
        unsigned start = k;
        for (unsigned i = 0; i < b->nmsg; i++) {
            if (b->sock[i] != s)
                continue;
            b->out[k] = b->msg[i];
            b->out_len[k] = b->len[i];
            k++;
        }
        if (k == start)
            continue;
        unsigned from = start;
        if (k - start > 1 && __atomic_load_n(&t->v->gso, __ATOMIC_RELAXED))
            from = send_group_gso(t, t->v->tx_fd[s], start, k);
        if (from < k)
            send_group(t, t->v->tx_fd[s], from, k);
    }
    b->nfr = b->nmsg = 0;
    b->arena_used = 0;
}

/* Makes room for one more frame to the current targets, with arena bytes
 * of storage: flushes when the batch lacks any of it. */
static void batch_room(struct tx_ctx *t, size_t arena)
{
    struct tx_batch *b = t->b;
    if (b->nfr == TX_FRAMES || b->nmsg + t->ntargets > TX_MSGS ||
        b->arena_used + arena > TX_ARENA)
        batch_flush(t);
}

/* The batch's next frame, its first piece the port's VXLAN header. */
static struct tx_frame *next_frame(struct tx_ctx *t)
{
    struct tx_frame *fr = &t->b->fr[t->b->nfr];
    fr->iov[0] = (struct iovec){ t->v->core.hdr, VXLAN_HLEN };
    fr->niov = 1;
    return fr;
}

/* Queues frame fr (the batch's next, filled) as one datagram per target. */
static void batch_queue(struct tx_ctx *t, struct tx_frame *fr)
{
    struct tx_batch *b = t->b;
    struct vxlan_core *c = &t->v->core;
    for (unsigned k = 0; k < t->ntargets; k++) {
        struct mmsghdr *m = &b->msg[b->nmsg];
        memset(m, 0, sizeof(*m));
        m->msg_hdr.msg_name = &c->remote[t->targets[k]];
        m->msg_hdr.msg_namelen = c->salen;
        m->msg_hdr.msg_iov = fr->iov;
        m->msg_hdr.msg_iovlen = fr->niov;
        b->sock[b->nmsg] = (uint8_t)t->sock;
        b->len[b->nmsg] = fr->len;
        b->nmsg++;
    }
    b->nfr++;
}

/* A frame with no offload left to resolve: its buffers as they are. */
static bool add_plain(struct tx_ctx *t, const struct frame *f)
{
    batch_room(t, 0);
    struct tx_frame *fr = next_frame(t);
    int n = iov_slice(f->iov, f->niov, f->skip, f->len, &fr->iov[1], TX_IOV_MAX);
    if (n < 0)
        return false;
    fr->niov += (unsigned)n;
    fr->len = (uint32_t)f->len;
    batch_queue(t, fr);
    return true;
}

/* A frame asking for its checksum (NEEDS_CSUM): completed here and sent as
 * the frame's buffers up to the checksum field, the two bytes of the sum,
 * the buffers after the field (the guest's buffers are not written). */
static bool add_csum(struct tx_ctx *t, const struct frame *f)
{
    size_t start = f->hdr.csum_start, at = start + f->hdr.csum_offset;
    /* offload_hdr_valid checked this on the way in; not taken on trust. */
    if (start >= f->len || at + 2 > f->len)
        return false;
    batch_room(t, 0);
    struct tx_frame *fr = next_frame(t);
    /* The sum from csum_start to the end, over the pseudo-header sum the
     * sender left in the field, is the checksum (virtio 1.2, 5.1.6.2). */
    uint16_t sum = (uint16_t)~csum_fold(csum_iov(f->iov, f->niov, f->skip + start, f->len - start));
    if (sum == 0)
        sum = 0xffff;   /* as the kernel does: 0 in a UDP checksum would mean "none" */
    fr->csum[0] = (uint8_t)(sum >> 8);
    fr->csum[1] = (uint8_t)sum;
    int a = iov_slice(f->iov, f->niov, f->skip, at, &fr->iov[1], TX_IOV_MAX);
    if (a < 0)
        return false;
    fr->iov[1 + a] = (struct iovec){ fr->csum, 2 };
    int b = iov_slice(f->iov, f->niov, f->skip + at + 2, f->len - at - 2, &fr->iov[2 + a],
                      TX_IOV_MAX - (unsigned)a);
    if (b < 0)
        return false;
    fr->niov = 2 + (unsigned)a + (unsigned)b;
    fr->len = (uint32_t)f->len;
    batch_queue(t, fr);
    return true;
}

/* What segmenting one GSO frame found. */
struct seg_arg {
    struct tx_ctx *t;
    bool too_big;
};

/* gso_segment's callback: queues one segment (copied: the segment buffer
 * is reused for the next); stops at one over the port's MTU. */
static bool emit_segment(void *arg, uint8_t *seg, size_t len)
{
    struct seg_arg *a = arg;
    struct tx_ctx *t = a->t;
    if (len > t->v->core.max_frame) {
        a->too_big = true;   /* the first segment is the largest: nothing went */
        return false;
    }
    batch_room(t, len);
    struct tx_batch *b = t->b;
    uint8_t *copy = b->arena + b->arena_used;
    memcpy(copy, seg, len);
    b->arena_used += len;
    struct tx_frame *fr = next_frame(t);
    fr->iov[1] = (struct iovec){ copy, len };
    fr->niov = 2;
    fr->len = (uint32_t)len;
    batch_queue(t, fr);
    return true;
}

/* A TSO frame: segmented in software, each segment with complete
 * checksums, each its own datagram(s). */
static void add_segmented(struct tx_ctx *t, const struct frame *f)
{
    struct vxlan_stats *st = &t->v->core.st;
    struct seg_arg a = { t, false };
    int segs = -1;
    if (f->len <= sizeof(gso_linear) &&
        iov_to_buf(f->iov, f->niov, f->skip, gso_linear, f->len) == f->len)
        segs = gso_segment(gso_linear, f->len, &f->hdr, gso_seg, sizeof(gso_seg), emit_segment,
                           &a);
    if (segs < 0) {
        stat_add_shared(&st->tx_bad_offload, 1);
        t->drops++;
    } else if (a.too_big) {
        stat_add_shared(&st->tx_too_big, 1);
        t->drops++;
    }
}

/* The sending socket of f's flow. */
static unsigned flow_socket(const struct vxlan *v, const struct frame *f)
{
    uint8_t h[HASH_BYTES];
    size_t len = f->len < sizeof(h) ? f->len : sizeof(h);
    const uint8_t *p = f->flat;
    if (!p) {
        len = iov_to_buf(f->iov, f->niov, f->skip, h, len);
        p = h;
    }
    return vxlan_flow_hash(p, len) % v->ntx;
}

/* Adds frame f to the batch: its targets, its socket, its offloads
 * resolved; drops and counts it when it cannot go. */
static void add_frame(struct tx_ctx *t, const struct frame *f, uint32_t now_s)
{
    const struct vxlan_core *c = &t->v->core;
    struct vxlan_stats *st = &t->v->core.st;
    t->ntargets = vxlan_targets(c, f->eth, now_s, t->targets);
    if (t->ntargets == 0) {
        stat_add_shared(&st->tx_no_remote, 1);
        t->drops++;
        return;
    }
    t->sock = flow_socket(t->v, f);
    if (f->hdr.gso_type != VIRTIO_NET_HDR_GSO_NONE) {
        add_segmented(t, f);
        return;
    }
    if (f->len > c->max_frame) {
        stat_add_shared(&st->tx_too_big, 1);
        t->drops++;
        return;
    }
    bool ok = (f->hdr.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) ? add_csum(t, f) : add_plain(t, f);
    if (!ok) {
        stat_add_shared(&st->tx_bad_offload, 1);
        t->drops++;
    }
}

void vxlan_send(struct port *p, const struct frame *f, unsigned n)
{
    struct tx_ctx t;
    memset(&t, 0, sizeof(t));
    t.p = p;
    t.v = p->vxlan;
    t.b = &tx_tls;
    t.b->nfr = t.b->nmsg = 0;
    t.b->arena_used = 0;
    uint32_t now = vxlan_now_s();
    for (unsigned i = 0; i < n; i++)
        add_frame(&t, &f[i], now);
    if (t.b->nmsg)
        batch_flush(&t);
    if (t.sent) {
        stat_add_shared(&p->tap.tx_packets, t.sent);
        stat_add_shared(&p->tap.tx_bytes, t.bytes);
    }
    if (t.drops)
        stat_add_shared(&p->tap.tx_drops, t.drops);
}
