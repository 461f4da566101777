/*
 * vhost_user.h - vhost-user wire protocol (QEMU docs/interop/vhost-user.rst).
 *
 * Owns: message numbers, flags, protocol feature bits and payload layouts,
 * shared by the backend and the frontend library.  Pure definitions.
 * Must not: hold any state or behaviour.
 */
#ifndef LWV_VHOST_USER_H
#define LWV_VHOST_USER_H

#include <stdint.h>

enum vhost_user_request {
    VHOST_USER_NONE = 0,
    VHOST_USER_GET_FEATURES = 1,
    VHOST_USER_SET_FEATURES = 2,
    VHOST_USER_SET_OWNER = 3,
    VHOST_USER_RESET_OWNER = 4,
    VHOST_USER_SET_MEM_TABLE = 5,
    VHOST_USER_SET_LOG_BASE = 6,
    VHOST_USER_SET_LOG_FD = 7,
    VHOST_USER_SET_VRING_NUM = 8,
    VHOST_USER_SET_VRING_ADDR = 9,
    VHOST_USER_SET_VRING_BASE = 10,
    VHOST_USER_GET_VRING_BASE = 11,
    VHOST_USER_SET_VRING_KICK = 12,
    VHOST_USER_SET_VRING_CALL = 13,
    VHOST_USER_SET_VRING_ERR = 14,
    VHOST_USER_GET_PROTOCOL_FEATURES = 15,
    VHOST_USER_SET_PROTOCOL_FEATURES = 16,
    VHOST_USER_GET_QUEUE_NUM = 17,
    VHOST_USER_SET_VRING_ENABLE = 18,
    VHOST_USER_SEND_RARP = 19,
    VHOST_USER_NET_SET_MTU = 20,
    VHOST_USER_SET_BACKEND_REQ_FD = 21,
    VHOST_USER_IOTLB_MSG = 22,
    VHOST_USER_SET_VRING_ENDIAN = 23,
    VHOST_USER_GET_CONFIG = 24,
    VHOST_USER_SET_CONFIG = 25,
    VHOST_USER_GET_INFLIGHT_FD = 31,
    VHOST_USER_SET_INFLIGHT_FD = 32,
    VHOST_USER_RESET_DEVICE = 34,
    VHOST_USER_VRING_KICK = 35,
    VHOST_USER_GET_MAX_MEM_SLOTS = 36,
    VHOST_USER_ADD_MEM_REG = 37,
    VHOST_USER_REM_MEM_REG = 38,
    VHOST_USER_SET_STATUS = 39,
    VHOST_USER_GET_STATUS = 40,
};

/* Header flags. */
#define VHOST_USER_VERSION            0x1u
#define VHOST_USER_VERSION_MASK       0x3u
#define VHOST_USER_REPLY_MASK         0x4u
#define VHOST_USER_NEED_REPLY_MASK    0x8u

/* Feature bit 30 of GET_FEATURES: protocol features are available. */
#define VHOST_USER_F_PROTOCOL_FEATURES 30
/* Device feature: log every write to guest memory (live migration). */
#define VHOST_F_LOG_ALL 26

/* Protocol feature bits. */
#define VHOST_USER_PROTOCOL_F_MQ                   0
#define VHOST_USER_PROTOCOL_F_LOG_SHMFD            1
#define VHOST_USER_PROTOCOL_F_RARP                 2
#define VHOST_USER_PROTOCOL_F_REPLY_ACK            3
#define VHOST_USER_PROTOCOL_F_NET_MTU              4
#define VHOST_USER_PROTOCOL_F_BACKEND_REQ          5
#define VHOST_USER_PROTOCOL_F_CONFIG               9
#define VHOST_USER_PROTOCOL_F_RESET_DEVICE         13
#define VHOST_USER_PROTOCOL_F_INBAND_NOTIFICATIONS 14
#define VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS  15
#define VHOST_USER_PROTOCOL_F_STATUS               16

/* SET_VRING_KICK/CALL/ERR u64 payload: ring index in bits 0-7, bit 8 set
 * when no file descriptor accompanies the message. */
#define VHOST_USER_VRING_IDX_MASK     0xffull
#define VHOST_USER_VRING_NOFD_MASK    0x100ull

#define VHOST_MEMORY_BASELINE_NREGIONS 8
#define VHOST_USER_MAX_FDS             8

struct vhost_user_mem_region {
    uint64_t guest_phys_addr;
    uint64_t memory_size;
    uint64_t userspace_addr;
    uint64_t mmap_offset;
};

struct vhost_user_memory {
    uint32_t nregions;
    uint32_t padding;
    struct vhost_user_mem_region regions[VHOST_MEMORY_BASELINE_NREGIONS];
};

struct vhost_user_mem_single {
    uint64_t padding;
    struct vhost_user_mem_region region;
};

struct vhost_user_vring_state {
    uint32_t index;
    uint32_t num;
};

#define VHOST_VRING_F_LOG             0
struct vhost_user_vring_addr {
    uint32_t index;
    uint32_t flags;
    uint64_t desc_user_addr;
    uint64_t used_user_addr;
    uint64_t avail_user_addr;
    uint64_t log_guest_addr;
};

struct vhost_user_log {
    uint64_t mmap_size;
    uint64_t mmap_offset;
};

struct vhost_user_hdr {
    uint32_t request;
    uint32_t flags;
    uint32_t size;
};

union vhost_user_payload {
    uint64_t u64;
    struct vhost_user_vring_state state;
    struct vhost_user_vring_addr addr;
    struct vhost_user_memory memory;
    struct vhost_user_mem_single mem_reg;
    struct vhost_user_log log;
    uint8_t bytes[512];
};

/* On the wire a message is the 12-byte header followed directly by `size`
 * payload bytes.  In this struct the payload is 8-byte aligned, so there
 * are 4 padding bytes after hdr: send and receive hdr and payload as two
 * pieces (two iovecs), never as one block of 12 + size bytes. */
struct vhost_user_msg {
    struct vhost_user_hdr hdr;
    union vhost_user_payload payload;
};

#define VHOST_USER_HDR_SIZE      ((uint32_t)sizeof(struct vhost_user_hdr))
#define VHOST_USER_PAYLOAD_MAX   ((uint32_t)sizeof(union vhost_user_payload))

#endif
