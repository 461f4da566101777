/*
 * virtio.h - virtio 1.x split- and packed-ring and virtio-net wire formats.
 *
 * Owns: the byte layouts shared by the backend (lwvhostd) and the frontend
 * library (tests, lwvhost-bench).  Pure definitions: no code, no state.
 * Must not: include anything from src/daemon or src/frontend.
 * All fields are little-endian; lwvhost only builds for little-endian hosts.
 */
#ifndef LWV_VIRTIO_H
#define LWV_VIRTIO_H

#include <stdint.h>

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "lwvhost supports little-endian hosts only (virtio 1.x rings are little-endian)"
#endif

/* Device-independent feature bits (virtio 1.2, section 6). */
#define VIRTIO_F_NOTIFY_ON_EMPTY      24
#define VIRTIO_F_ANY_LAYOUT           27
#define VIRTIO_RING_F_INDIRECT_DESC   28
#define VIRTIO_RING_F_EVENT_IDX       29
#define VIRTIO_F_VERSION_1            32
#define VIRTIO_F_ACCESS_PLATFORM      33
#define VIRTIO_F_RING_PACKED          34
#define VIRTIO_F_IN_ORDER             35

/* virtio-net feature bits (virtio 1.2, section 5.1.3). */
#define VIRTIO_NET_F_CSUM             0
#define VIRTIO_NET_F_GUEST_CSUM       1
#define VIRTIO_NET_F_MTU              3
#define VIRTIO_NET_F_MAC              5
#define VIRTIO_NET_F_GUEST_TSO4       7
#define VIRTIO_NET_F_GUEST_TSO6       8
#define VIRTIO_NET_F_HOST_TSO4        11
#define VIRTIO_NET_F_HOST_TSO6        12
#define VIRTIO_NET_F_MRG_RXBUF        15
#define VIRTIO_NET_F_STATUS           16
#define VIRTIO_NET_F_CTRL_VQ          17
#define VIRTIO_NET_F_GUEST_ANNOUNCE   21
#define VIRTIO_NET_F_MQ               22

/* Device status bits (virtio 1.2, section 2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE     0x01
#define VIRTIO_STATUS_DRIVER          0x02
#define VIRTIO_STATUS_DRIVER_OK       0x04
#define VIRTIO_STATUS_FEATURES_OK     0x08
#define VIRTIO_STATUS_NEEDS_RESET     0x40
#define VIRTIO_STATUS_FAILED          0x80

#define VIRTQ_MAX_SIZE                32768u

/* Split virtqueue descriptor (virtio 1.2, 2.7.5). */
#define VIRTQ_DESC_F_NEXT             1
#define VIRTQ_DESC_F_WRITE            2
#define VIRTQ_DESC_F_INDIRECT         4

struct virtq_desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};

/* Driver area: flags, idx, ring[num], used_event. */
#define VIRTQ_AVAIL_F_NO_INTERRUPT    1
struct virtq_avail {
    uint16_t flags;
    uint16_t idx;
    uint16_t ring[];
};

/* Device area: flags, idx, ring[num], avail_event. */
#define VIRTQ_USED_F_NO_NOTIFY        1
struct virtq_used_elem {
    uint32_t id;
    uint32_t len;
};
struct virtq_used {
    uint16_t flags;
    uint16_t idx;
    struct virtq_used_elem ring[];
};

/* Sizes in bytes of the three ring parts for a ring of num entries,
 * including the event-index words. */
static inline uint64_t virtq_desc_size(uint32_t num)  { return 16ull * num; }
static inline uint64_t virtq_avail_size(uint32_t num) { return 6ull + 2ull * num; }
static inline uint64_t virtq_used_size(uint32_t num)  { return 6ull + 8ull * num; }

/* True when an event index says the other side wants a notification:
 * the event lies in the window (old, new] of indexes just published. */
static inline int virtq_need_event(uint16_t event, uint16_t new_idx, uint16_t old_idx)
{
    return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old_idx);
}

/* Packed virtqueue (virtio 1.2, 2.8): one ring of 16-byte descriptors that
 * the driver makes available and the device marks used, each side with
 * its own wrap counter, and two event-suppression structures (the driver
 * area holds the driver's, the device area the device's).  The queue size
 * need not be a power of two. */
#define VIRTQ_DESC_F_AVAIL            (1u << 7)
#define VIRTQ_DESC_F_USED             (1u << 15)

struct virtq_pdesc {
    uint64_t addr;
    uint32_t len;
    uint16_t id;
    uint16_t flags;
};

#define VIRTQ_EVENT_F_ENABLE          0
#define VIRTQ_EVENT_F_DISABLE         1
#define VIRTQ_EVENT_F_DESC            2
/* off_wrap: bits 0-14 a descriptor offset, bit 15 its wrap counter. */
struct virtq_pevent {
    uint16_t off_wrap;
    uint16_t flags;
};

static inline uint64_t virtq_pdesc_size(uint32_t num) { return 16ull * num; }

/* vhost-user's ring state for a packed ring (SET/GET_VRING_BASE): bits
 * 0-14 the next avail index, 15 its wrap counter, 16-30 the used index,
 * 31 its wrap counter. */
static inline uint32_t virtq_packed_state(uint16_t avail, int avail_wrap, uint16_t used,
                                          int used_wrap)
{
    return (uint32_t)(avail & 0x7fff) | (uint32_t)!!avail_wrap << 15 |
           (uint32_t)(used & 0x7fff) << 16 | (uint32_t)!!used_wrap << 31;
}

/* virtio-net header (virtio 1.2, 5.1.6). 12 bytes with VERSION_1 or
 * MRG_RXBUF, else the legacy 10 bytes without num_buffers. */
#define VIRTIO_NET_HDR_F_NEEDS_CSUM   1
#define VIRTIO_NET_HDR_F_DATA_VALID   2
#define VIRTIO_NET_HDR_GSO_NONE       0
struct virtio_net_hdr {
    uint8_t  flags;
    uint8_t  gso_type;
    uint16_t hdr_len;
    uint16_t gso_size;
    uint16_t csum_start;
    uint16_t csum_offset;
    uint16_t num_buffers;
};
#define VIRTIO_NET_HDR_LEN            12u
#define VIRTIO_NET_HDR_LEN_LEGACY     10u

#endif
