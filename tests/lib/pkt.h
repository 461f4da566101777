/*
 * pkt.h - frame building and checking for tests: byte order helpers,
 * Internet checksums, ARP, ICMP echo, UDP and TCP frames over IPv4, and
 * predicates on received frames (to pass to tport_wait()).
 *
 * Owns: the bytes of frames in buffers the caller gives.
 * Must not: own sockets or frontends, or wait for anything (netns.h and
 * systest.h read sockets and frontends).
 *
 * Frames are Ethernet II without a VLAN tag; IPv4 headers are 20 bytes
 * (the L4 header at frame offset 34).
 */
#ifndef LWV_TEST_PKT_H
#define LWV_TEST_PKT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "virtio.h"

/* Stores v at p in network byte order. */
void put16(uint8_t *p, uint16_t v);
/* The 16-bit value in network byte order at p. */
uint16_t get16(const uint8_t *p);
/* The one's-complement sum of len bytes at p added to sum, not folded. */
uint32_t sum16(const uint8_t *p, size_t len, uint32_t sum);
/* sum folded to 16 bits (not inverted). */
uint16_t fold(uint32_t sum);
/* The Internet checksum of len bytes at p: 0 over bytes that hold a right one. */
uint16_t csum(const uint8_t *p, size_t len);
/* The IPv4 pseudo-header sum of the packet at ip with l4len bytes after its header. */
uint32_t pseudo(const uint8_t *ip, size_t l4len);
/* True when the IPv4 packet at ip (len bytes) has right IP and TCP/UDP sums. */
bool l4_sums_ok(const uint8_t *ip, size_t len);

/* A 20-byte IPv4 header at ip, src -> dst, for l4len bytes of protocol proto (TTL 64). */
void ip_hdr(uint8_t *ip, uint8_t proto, size_t l4len, uint16_t id, const uint8_t src[4],
            const uint8_t dst[4]);
/* An ARP frame of op (1 request, 2 reply) to dst from sha/spa for tha (NULL: zeros)/tpa; 60. */
size_t arp_frame(uint8_t *f, uint16_t op, const uint8_t dst[6], const uint8_t sha[6],
                 const uint8_t spa[4], const uint8_t tha[6], const uint8_t tpa[4]);
/* The identifier of icmp_echo()'s requests ("LW"), checked in the replies. */
#define PKT_ECHO_ID 0x4c57
/* An ICMP echo request sip -> dip (IP id and sequence seq, identifier
 * PKT_ECHO_ID) with payload bytes of pattern seq (byte i: seq * 7 + i); its length. */
size_t icmp_echo(uint8_t *f, const uint8_t dst[6], const uint8_t src[6], const uint8_t sip[4],
                 const uint8_t dip[4], uint16_t seq, size_t payload);
/* A UDP frame sip:40000 -> dip:dport (IP id 1) with payload bytes, its
 * checksum left partial as a guest leaves it, and the header asking for it
 * (NEEDS_CSUM) in h; its length. */
size_t udp_partial(uint8_t *f, const uint8_t dst[6], const uint8_t src[6], const uint8_t sip[4],
                   const uint8_t dip[4], uint16_t dport, size_t payload, struct virtio_net_hdr *h);
/* A TCP frame sip:40001 -> dip:dport (IP id 2, PSH ACK) with payload bytes
 * for segmentation at mss, its checksum partial, and the header asking for
 * both (NEEDS_CSUM, GSO TCPV4) in h; its length. */
size_t tcp_tso(uint8_t *f, const uint8_t dst[6], const uint8_t src[6], const uint8_t sip[4],
               const uint8_t dip[4], uint16_t dport, size_t payload, uint16_t mss,
               struct virtio_net_hdr *h);

/* An ARP reply to MAC to from address spa to address tpa; the sender's MAC lands in sha. */
struct arp_want {
    const uint8_t *to, *spa, *tpa;
    uint8_t sha[6];
};
/* True for the ARP reply want (a struct arp_want) describes; its sender's MAC in want->sha. */
bool match_arp_reply(const uint8_t *f, int len, void *want);

/* The echo reply sip -> dip to an icmp_echo() request of seq and payload bytes. */
struct echo_want {
    const uint8_t *sip, *dip;
    uint16_t seq;
    size_t payload;
};
/* True for the reply want (a struct echo_want) describes: addresses, checksums, payload. */
bool match_echo_reply(const uint8_t *f, int len, void *want);

/* An IPv4 frame of protocol proto (6 TCP, 17 UDP) from sip to port dport, of len bytes. */
bool is_l4_to(const uint8_t *f, size_t len, uint8_t proto, const uint8_t sip[4], uint16_t dport);
/* The L4 payload bytes of the TCP or UDP frame f (is_l4_to() accepted it). */
size_t l4_payload(const uint8_t *f);

#endif
