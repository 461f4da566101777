/*
 * vxlan.h - the VXLAN port (RFC 7348): frames between the switch and
 * remote VTEPs (other lwvhostd, a Linux vxlan device, Open vSwitch),
 * carried in UDP over IPv4 or IPv6.
 *
 * Owns: the port's UDP sockets (one bound to local:dstport that receives,
 * a small pool bound to local:0 that sends, so the outer source port can
 * follow the inner flow), the VXLAN header (building it, checking what
 * arrives: every refusal counted by reason), splitting what the kernel's
 * UDP GRO coalesced back into its datagrams, the list of remote VTEPs
 * (configured, and learned ones with learn=on, bounded), the table of
 * inner source MAC -> remote VTEP that decides where a frame goes (one
 * remote, or head-end replication to all), resolving a frame's offload
 * requests before it leaves (checksum completed, TCP segmentation in
 * software: offload.c) and batched transmission with sendmmsg that drops
 * and counts rather than waits.
 * Must not: touch guest rings or choose switch destinations (fwd.c and the
 * switch do, with the frames decapsulated here), or block: every socket is
 * non-blocking.
 *
 * Threads: vxlan_open/vxlan_close are the control thread's (close only once
 * no worker can reach the port: port.c's grace period).  The receive side
 * (vxlan_recv_burst, vxlan_clear_error) is the port's worker's alone, and
 * it is the only writer of the remote list and of the MAC table.  vxlan_send
 * may run on any worker at once: it reads those two without a lock (a
 * remote is written whole before the count that publishes it; a MAC table
 * entry is one 64-bit word) and shares only sockets and atomic counters.
 *
 * Receive buffers: with UDP GRO (UDP_GRO on the receiving socket, when the
 * kernel takes it) one read may return many datagrams of one flow
 * coalesced into one buffer of up to 64 KiB, so the port reads into
 * VXLAN_RX_GRO_SLOTS buffers of 64 KiB: 1 MiB per port (the uplink's
 * packet ring is as big), allocated once, touched only as far as traffic
 * fills it.  Without GRO,
 * VXLAN_RX_BURST buffers one byte longer than the largest datagram taken:
 * 46 KiB at the default MTU, 282 KiB at 9000.  The datagrams of buffers
 * read but not yet handled (a burst takes at most max of them) wait in the
 * port for the next call: none is dropped for want of room in a burst.
 *
 * The underlay is IPv4 or IPv6, one per port (config.c refuses a mix).
 * Addresses are kept as 16 bytes (struct in6_addr), IPv4 ones in their
 * v4-mapped form, so remotes are found and learned the same way in both;
 * the sockets are of the port's family (IPv6 ones IPV6_V6ONLY).  Over
 * IPv6 the outer headers take 70 bytes instead of 50 (Linux's
 * VXLAN6_HEADROOM), so the default inner MTU is 1430.  The outer UDP
 * checksum: sent (the kernel computes it) in both families; on receipt a
 * zero one is accepted in both (RFC 7348 has senders use zero over IPv4;
 * over IPv6 RFC 6935/6936 allow it for tunnels when the receiver agrees,
 * which the port does with UDP_NO_CHECK6_RX, as Linux's udp6zerocsumrx).
 */
#ifndef LWV_VXLAN_H
#define LWV_VXLAN_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "port.h"

struct frame;

#define VXLAN_HLEN 8u
/* What an outer header set costs: Ethernet 14, IPv4 20 (IPv6 40), UDP 8,
 * VXLAN 8. */
#define VXLAN_OVERHEAD_V4 50u
#define VXLAN_OVERHEAD_V6 70u
/* The default inner MTU: a 1500-byte underlay less the outer headers. */
#define VXLAN_DEFAULT_MTU (1500u - VXLAN_OVERHEAD_V4)
#define VXLAN_DEFAULT_MTU6 (1500u - VXLAN_OVERHEAD_V6)
#define VXLAN_DEFAULT_MTU_OF(family) \
    ((family) == AF_INET6 ? VXLAN_DEFAULT_MTU6 : VXLAN_DEFAULT_MTU)
#define VXLAN_MTU_MAX 9000u
#define VXLAN_DEFAULT_PORT 4789u
#define VXLAN_VNI_MAX 0xffffffu
#define VXLAN_FLAG_I 0x08u           /* "the VNI is valid": the one flag RFC 7348 defines */
/* Largest inner frame the port carries: its MTU, an Ethernet header and
 * one VLAN tag. */
#define VXLAN_MAX_FRAME(mtu) ((mtu) + 14u + 4u)

/* Datagrams one receive burst handles (at most VQ_BURST_MAX). */
#define VXLAN_RX_BURST 32u
/* With UDP GRO: buffers one read fills, and their size (a coalesced
 * buffer is at most 64 KiB: the kernel's limit for one IP packet; a plain
 * UDP payload is at most 65527 bytes). */
#define VXLAN_RX_GRO_SLOTS 16u
#define VXLAN_RX_GRO_SLOT 65536u
/* Sending sockets: outer UDP source ports a port spreads its flows over. */
#define VXLAN_TX_SOCKS 8u
/* The inner MAC -> remote VTEP table: buckets of VXLAN_VTEP_WAYS entries. */
#define VXLAN_VTEP_SLOTS 4096u
#define VXLAN_VTEP_WAYS 8u
/* A MAC not heard from for this long is unknown again, when the core has
 * no age_s of its own to follow (the switch's default --fdb-age). */
#define VXLAN_VTEP_AGE_S 300u

/* Counters only a VXLAN port has (besides the tap_stats of its port).  rx_*
 * are datagrams refused on receipt (all also in the port's rx_drops); tx_*
 * are frames refused on the way out (in tx_drops). */
struct vxlan_stats {
    uint64_t rx_short;          /* shorter than a VXLAN and an Ethernet header */
    uint64_t rx_bad_flags;      /* the I flag (0x08) is not set */
    uint64_t rx_unknown_vni;    /* a VNI not the port's */
    uint64_t rx_too_long;       /* inner frame over the port's MTU + 18 */
    uint64_t rx_unknown_remote; /* from an address that is not a remote (learn=off, or full) */
    uint64_t rx_errors;         /* recvmmsg failed (not "no more") */
    uint64_t remotes_learned;   /* remotes added by learn=on */
    uint64_t remotes_full;      /* ... and refused: the list was at VXLAN_MAX_REMOTES */
    uint64_t vtep_moved;        /* a MAC seen behind another remote than before */
    uint64_t vtep_full;         /* a MAC not learned: its bucket was full of live entries */
    uint64_t tx_too_big;        /* over the MTU after offloads were resolved */
    uint64_t tx_bad_offload;    /* a GSO frame that could not be segmented, or too scattered */
    uint64_t tx_no_remote;      /* no remote to send to (learn=on, none learned yet) */
    uint64_t tx_no_room;        /* datagrams a full socket would not take (EAGAIN, ENOBUFS) */
    uint64_t tx_send_errors;    /* datagrams the kernel refused: no route, a firewall */
    uint64_t tx_gso_sends;      /* UDP GSO sends: runs of datagrams to one remote sent as one */
    uint64_t tx_gso_datagrams;  /* ... and the datagrams they carried */
    uint64_t tx_gso_off;        /* 1 once the kernel refused a GSO send (GSO is then off) */
    uint64_t rx_gro_buffers;    /* received buffers the kernel had coalesced (UDP GRO) ... */
    uint64_t rx_gro_segments;   /* ... and the datagrams they carried */
    uint64_t rx_gro_off;        /* 1 when the kernel refused UDP_GRO on the socket */
};

/* A socket address of either family. */
union vxlan_sockaddr {
    struct sockaddr sa;
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
};

/* Everything of a VXLAN port but its sockets: what it accepts, its remotes
 * and its MAC table.  Kept apart so that tests and the fuzzer drive it
 * without sockets. */
struct vxlan_core {
    int family;                   /* the underlay's: AF_INET or AF_INET6 */
    socklen_t salen;              /* the size of its socket addresses */
    uint32_t vni;
    uint32_t max_frame;           /* VXLAN_MAX_FRAME(mtu) */
    bool learn;
    uint16_t dstport;             /* remotes are sent to at this port (host order) */
    uint8_t hdr[VXLAN_HLEN];      /* the header every datagram it sends starts with */
    unsigned nconf;               /* remote[0, nconf) were configured */
    unsigned nremotes;            /* remote[0, nremotes) are valid (atomic: release/acquire) */
    union vxlan_sockaddr remote[VXLAN_MAX_REMOTES];   /* address and dstport */
    struct in6_addr rip[VXLAN_MAX_REMOTES];         /* ... the address as 16 bytes */
    uint64_t vtep_seed;
    /* The age after which a MAC is unknown again: the switch's --fdb-age,
     * which a reload may change, read relaxed at each lookup (NULL:
     * VXLAN_VTEP_AGE_S; tests and the fuzzer). */
    const uint32_t *age_s;
    /* Each word: MAC << 16 | remote index + 1; 0 is free (atomic, relaxed). */
    uint64_t vtep[VXLAN_VTEP_SLOTS];
    uint32_t vtep_seen[VXLAN_VTEP_SLOTS];          /* seconds, when last learned */
    struct vxlan_stats st;
};

/* Why a datagram was refused (or not). */
enum vxlan_rx_rc {
    VXLAN_RX_OK,
    VXLAN_RX_SHORT,
    VXLAN_RX_BAD_FLAGS,
    VXLAN_RX_UNKNOWN_VNI,
    VXLAN_RX_TOO_LONG,
    VXLAN_RX_UNKNOWN_REMOTE,
};

/* ---- the pure part: tests/unit/test_vxlan.c and fuzz/fuzz_vxlan.c -------- */

/* Reads an address as --vxlan takes it: IPv4 dotted, or IPv6 (a v4-mapped
 * one, ::ffff:a.b.c.d, is the IPv4 address it maps).  Its family
 * (AF_INET, AF_INET6), the address in out (IPv4 v4-mapped); -1 if s is
 * neither. */
int vxlan_ip_parse(const char *s, struct in6_addr *out);
/* True for a v4-mapped address (an IPv4 one). */
bool vxlan_ip_is_v4(const struct in6_addr *a);
/* True for an address a VTEP may have: not unspecified, multicast,
 * broadcast (IPv4) or link-local (IPv6: it would need an interface). */
bool vxlan_ip_unicast(const struct in6_addr *a);
/* a as text: dotted for IPv4, else IPv6; buf of at least
 * INET6_ADDRSTRLEN bytes. */
const char *vxlan_ip_str(const struct in6_addr *a, char *buf, size_t len);
/* Sets sa to address a (16-byte form) and port (host order) in family. */
void vxlan_sockaddr_set(union vxlan_sockaddr *sa, int family, const struct in6_addr *a,
                        uint16_t port);
/* The address of sa in 16-byte form; false when sa is of neither family. */
bool vxlan_sockaddr_ip(const union vxlan_sockaddr *sa, struct in6_addr *out);

/* The 8 bytes that start a VXLAN datagram for vni: flags 0x08, 24
 * reserved bits, the VNI big-endian, 8 reserved bits. */
void vxlan_header(uint8_t hdr[VXLAN_HLEN], uint32_t vni);
/* Sets c up from cfg (its remotes at cfg->dstport); seed keys the MAC
 * table's hash. */
void vxlan_core_init(struct vxlan_core *c, const struct vxlan_cfg *cfg, uint64_t seed);
/* Checks a datagram of len bytes as the VXLAN header and the port's rules
 * say (length, I flag, VNI, inner length; the sender is not looked at).
 * On VXLAN_RX_OK the inner frame is d + VXLAN_HLEN, *inner_len bytes. */
enum vxlan_rx_rc vxlan_decap(const struct vxlan_core *c, const uint8_t *d, size_t len,
                             size_t *inner_len);
/* All the checks on a datagram from `from`: vxlan_decap, then the sender
 * must be a remote (of the port's family; learn=on adds it, while there is
 * room), then the inner source MAC is learned behind it (now_s: seconds,
 * any monotonic origin).  Counts the refusal in c->st.  The receive
 * worker's (it writes c). */
enum vxlan_rx_rc vxlan_rx_check(struct vxlan_core *c, const union vxlan_sockaddr *from,
                                const uint8_t *d, size_t len, uint32_t now_s, size_t *inner_len);
/* Index of the remote with address ip (16-byte form), or -1. */
int vxlan_remote_find(const struct vxlan_core *c, const struct in6_addr *ip);
/* Adds remote ip as learned; its index, or -1 when the list is full
 * (counted). */
int vxlan_remote_learn(struct vxlan_core *c, const struct in6_addr *ip);
/* Remembers that mac lives behind remote index r (a group or all-zero
 * address is not learned). */
void vxlan_vtep_learn(struct vxlan_core *c, const uint8_t mac[6], unsigned r, uint32_t now_s);
/* The remote index mac was last seen behind, if not longer ago than
 * VXLAN_VTEP_AGE_S; -1 if unknown. */
int vxlan_vtep_lookup(const struct vxlan_core *c, const uint8_t mac[6], uint32_t now_s);
/* Where a frame for dst goes: the one remote it is known behind, or every
 * remote (broadcast, multicast, unknown unicast: head-end replication).
 * The indexes in out (room for VXLAN_MAX_REMOTES); returns how many. */
unsigned vxlan_targets(const struct vxlan_core *c, const uint8_t dst[6], uint32_t now_s,
                       uint8_t *out);
/* A hash of a frame's flow from its first len bytes: the Ethernet
 * addresses, and for IPv4/IPv6 the addresses and, for TCP and UDP (not
 * fragments), the ports.  The same flow always gives the same value. */
uint32_t vxlan_flow_hash(const uint8_t *f, size_t len);

/* One buffer as a read returned it: the datagram, or the datagrams UDP GRO
 * coalesced into it (each gso bytes long but the last, which may be
 * shorter). */
struct vxlan_rxbuf {
    const uint8_t *d;
    size_t len;                   /* bytes received */
    int gso;                      /* the UDP_GRO size; 0 when none came */
    bool cut;                     /* MSG_TRUNC: the kernel cut it to fit */
    const union vxlan_sockaddr *from;
};

/* Walks one buffer's datagrams. */
struct vxlan_split {
    const uint8_t *d;
    size_t len, seg, off;         /* seg: each datagram's length (the last may be shorter) */
    bool cut, done;
};

/* Buffers read at once and how far handling them went: what one burst
 * leaves for the next. */
struct vxlan_rxq {
    const struct vxlan_rxbuf *buf;
    unsigned nbuf, at;            /* buffers; the one being split */
    struct vxlan_split split;     /* ... and where in it */
};

/* Starts walking the len bytes at d as a read returned them: gso the
 * UDP_GRO size (taken only when 0 < gso <= len: anything else means one
 * datagram of len bytes), cut for MSG_TRUNC (the last piece is not whole).
 * A buffer of 0 bytes is one datagram of 0 bytes. */
void vxlan_split_init(struct vxlan_split *s, const uint8_t *d, size_t len, int gso, bool cut);
/* The next datagram of s (*whole false for the piece a cut buffer ends
 * with); false when none is left. */
bool vxlan_split_next(struct vxlan_split *s, const uint8_t **dg, size_t *dlen, bool *whole);
/* How many datagrams s yields in all. */
size_t vxlan_split_count(const struct vxlan_split *s);
/* Starts handing out the datagrams of the n buffers at buf (which must
 * stay as they are until vxlan_rxq_pending says false); counts the
 * coalesced ones in c->st. */
void vxlan_rxq_start(struct vxlan_core *c, struct vxlan_rxq *q, const struct vxlan_rxbuf *buf,
                     unsigned n);
/* Takes up to max datagrams from q, in order, each through vxlan_rx_check
 * (a piece of a cut buffer is refused as too long); those that pass become
 * frames in f (over fiov, room for max each), pointing into the buffers.
 * Returns the frames; *handled is the datagrams taken (passed or refused),
 * *bytes the frames' total length. */
unsigned vxlan_rxq_take(struct vxlan_core *c, struct vxlan_rxq *q, struct frame *f,
                        struct iovec *fiov, unsigned max, uint32_t now_s, unsigned *handled,
                        uint64_t *bytes);
/* True while q has datagrams not yet taken. */
bool vxlan_rxq_pending(const struct vxlan_rxq *q);

/* ---- the port ---------------------------------------------------------------- */

/* Opens VXLAN port p as cfg says and sets p->tap_fd to the receiving
 * socket its worker polls.  On failure err says why; nothing is left open. */
int vxlan_open(struct port *p, const struct vxlan_cfg *cfg, char *err, size_t errlen);
/* Closes the sockets (no worker may use p any more). */
void vxlan_close(struct port *p);
/* Encapsulates n frames and sends them to their remotes, as few system
 * calls as the batch allows; drops and counts what cannot go. */
void vxlan_send(struct port *p, const struct frame *f, unsigned n);
/* Handles up to max (<= VXLAN_RX_BURST) datagrams and describes the inner
 * frames that pass the checks in f; they stay valid until the next call.
 * Datagrams of buffers read earlier come first (and alone: the call then
 * does not read); otherwise it reads.  *nread counts every datagram
 * handled (refused ones too); *empty is set when the socket had no more
 * and nothing is left waiting. */
unsigned vxlan_recv_burst(struct port *p, struct frame *f, unsigned max, unsigned *nread,
                          bool *empty);
/* Reads and clears the receiving socket's pending error, so that it stops
 * waking the worker; logs it. */
void vxlan_clear_error(struct port *p);

/* What lwvhostctl shows of a VXLAN port besides its counters. */
struct vxlan_info {
    unsigned nconf, nremotes;     /* configured remotes, configured + learned */
    unsigned vtep_entries;        /* MAC table entries not aged out */
    uint16_t src_port_lo, src_port_hi;   /* the sending sockets' ports */
};
/* The port's counters and state (control thread). */
void vxlan_get_stats(const struct port *p, struct vxlan_stats *out, struct vxlan_info *info);
/* Remote i's address (16-byte form) in *out; false when i >= the count. */
bool vxlan_remote_addr(const struct port *p, unsigned i, struct in6_addr *out);
/* Seconds on the clock vxlan.c ages its MAC table by. */
uint32_t vxlan_now_s(void);

#endif
