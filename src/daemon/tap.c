/*
 * tap.c - see tap.h.
 *
 * The tap speaks the 12-byte virtio-net header (TUNSETVNETHDRSZ) with
 * checksum and TSO offloads on (TUNSETOFFLOAD), so the kernel may hand us
 * partial checksums and TCP segments up to 64 KiB; net.c completes or
 * segments them for guests that did not negotiate those offloads.  Frames
 * we send carry the offload requests guests made, which the kernel accepts
 * from a tap.
 */
#include "tap.h"

#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include "iov.h"
#include "log.h"
#include "net.h"
#include "offload.h"
#include "port.h"
#include "sysc.h"

int tap_open(struct port *p, const char *ifname)
{
    int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        log_error("tap %s: cannot open /dev/net/tun: %s", ifname, strerror(errno));
        return -1;
    }
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
        log_error("tap %s: TUNSETIFF failed: %s", ifname, strerror(errno));
        goto fail;
    }
    int hdr = VIRTIO_NET_HDR_LEN;
    if (ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0) {
        log_error("tap %s: TUNSETVNETHDRSZ failed: %s", ifname, strerror(errno));
        goto fail;
    }
    /* Let the host hand us partial checksums and TCP segments up to 64 KiB:
     * guests that negotiated them get them as they are, others get them
     * completed and segmented in software. */
    if (ioctl(fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6) < 0) {
        log_warn("tap %s: TUNSETOFFLOAD failed: %s; no offloads", ifname, strerror(errno));
        ioctl(fd, TUNSETOFFLOAD, 0);
    }
    p->tap_fd = fd;
    log_info("tap %s: attached (vnet header 12 bytes, checksum and TSO offloads)", ifr.ifr_name);
    return 0;
fail:
    close(fd);
    return -1;
}

void tap_close(struct port *p)
{
    if (p->tap_fd >= 0)
        close(p->tap_fd);
    p->tap_fd = -1;
}

#define TAP_IOV_MAX 64

void tap_send(struct port *p, const struct frame *f)
{
    /* The kernel accepts checksum and segmentation requests from us. */
    struct virtio_net_hdr h = f->hdr;
    h.num_buffers = 0;
    struct iovec iov[TAP_IOV_MAX + 1];
    iov[0].iov_base = &h;
    iov[0].iov_len = VIRTIO_NET_HDR_LEN;
    int n = iov_slice(f->iov, f->niov, f->skip, f->len, &iov[1], TAP_IOV_MAX);
    if (n >= 0)
        sysc_note();
    if (n < 0 || writev(p->tap_fd, iov, n + 1) < 0) {
        stat_add_shared(&p->tap.tx_drops, 1);
        return;
    }
    stat_add_shared(&p->tap.tx_packets, 1);
    stat_add_shared(&p->tap.tx_bytes, f->len);
}

unsigned tap_recv_burst(struct port *p, uint8_t *buf, size_t slot, struct frame *f,
                        struct iovec *iov, unsigned max, unsigned *nread, bool *empty)
{
    static const struct offload_caps all = { true, true, true };
    unsigned n = 0;
    uint64_t packets = 0, bytes = 0, drops = 0;
    *nread = 0;
    *empty = false;
    while (*nread < max) {
        uint8_t *b = buf + (size_t)n * slot;
        sysc_note();
        ssize_t r = read(p->tap_fd, b, slot);
        if (r < 0) {
            if (errno != EAGAIN && errno != EINTR)
                log_debug("tap %s: read: %s", p->name, strerror(errno));
            *empty = true;
            break;
        }
        (*nread)++;
        if ((size_t)r < VIRTIO_NET_HDR_LEN + ETH_HLEN_MIN) {
            drops++;
            continue;
        }
        struct virtio_net_hdr h;
        memcpy(&h, b, VIRTIO_NET_HDR_LEN);
        size_t len = (size_t)r - VIRTIO_NET_HDR_LEN;
        if (!offload_hdr_valid(&h, len, &all)) {
            drops++;
            continue;
        }
        net_frame_flat(&f[n], &iov[n], b + VIRTIO_NET_HDR_LEN, len, &h);
        packets++;
        bytes += len;
        n++;
    }
    stat_add(&p->tap.rx_packets, packets);
    stat_add(&p->tap.rx_bytes, bytes);
    stat_add(&p->tap.rx_drops, drops);
    return n;
}
