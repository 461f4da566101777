/*
 * offload.h - virtio-net offloads (part of net): checksum and TCP
 * segmentation flags in the virtio-net header, checked against what was
 * negotiated, and the software fall-backs used when a destination cannot
 * take a frame as it is (it did not negotiate GUEST_CSUM or GUEST_TSO).
 *
 * Owns: header validation, one's-complement checksums over iovecs, and TCP
 * segmentation (IPv4 and IPv6, with or without one VLAN tag).
 * Must not: touch rings or choose destinations.
 */
#ifndef LWV_OFFLOAD_H
#define LWV_OFFLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "virtio.h"

#define VIRTIO_NET_HDR_GSO_TCPV4 1
#define VIRTIO_NET_HDR_GSO_UDP 3
#define VIRTIO_NET_HDR_GSO_TCPV6 4
#define VIRTIO_NET_HDR_GSO_ECN 0x80

/* Most segments one GSO frame may be split into in software (a 64 KiB
 * frame at the smallest IPv4 MSS, 536 bytes, needs 123). */
#define GSO_MAX_SEGS 128

/* What a sender may put in a header. */
struct offload_caps {
    bool csum;     /* NEEDS_CSUM */
    bool tso4;
    bool tso6;
};

/* True if h is acceptable for a frame of len bytes from a sender with
 * caps: partial checksum fields inside the frame, a known GSO type that
 * was negotiated, with a checksum request and a segment size. */
bool offload_hdr_valid(const struct virtio_net_hdr *h, size_t len, const struct offload_caps *caps);

/* One's-complement sum (not folded) of len bytes of iov after skip. */
uint32_t csum_iov(const struct iovec *iov, unsigned n, size_t skip, size_t len);
uint16_t csum_fold(uint32_t sum);

/* Completes the partial checksum h asks for (NEEDS_CSUM) in a linear
 * frame of len bytes, in place.  False, the frame untouched, when the
 * checksum's offsets do not lie inside the frame. */
bool offload_csum_complete(uint8_t *frame, size_t len, const struct virtio_net_hdr *h);

typedef bool (*gso_emit_fn)(void *arg, uint8_t *seg, size_t len);

/* Splits a linear TCP frame carrying a GSO header into frames of at most
 * gso_size payload bytes with complete IP and TCP checksums, building each
 * in seg_buf (at least the header size plus gso_size bytes) and passing it
 * to emit.  Returns the segments emitted, or -1 if the headers cannot be
 * parsed as Ethernet/IPv4-or-IPv6/TCP within len. */
int gso_segment(const uint8_t *frame, size_t len, const struct virtio_net_hdr *h,
                uint8_t *seg_buf, size_t seg_cap, gso_emit_fn emit, void *arg);

#endif
