/*
 * tap.c - see tap.h.
 *
 * The tap speaks the 12-byte virtio-net header (TUNSETVNETHDRSZ) and has
 * no offloads enabled, so the kernel hands us complete frames; a frame it
 * still marks NEEDS_CSUM gets its checksum completed here.
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

#include "log.h"
#include "net.h"
#include "offload.h"
#include "port.h"
#include "switch.h"

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
    /* Slice the frame's iovecs after skip bytes. */
    unsigned n = 1;
    size_t skip = f->skip, left = f->len;
    for (unsigned i = 0; i < f->niov && left > 0; i++) {
        if (skip >= f->iov[i].iov_len) {
            skip -= f->iov[i].iov_len;
            continue;
        }
        if (n == TAP_IOV_MAX + 1) {
            stat_add_shared(&p->tap.tx_drops, 1);
            return;
        }
        size_t len = f->iov[i].iov_len - skip;
        if (len > left)
            len = left;
        iov[n].iov_base = (uint8_t *)f->iov[i].iov_base + skip;
        iov[n].iov_len = len;
        n++;
        left -= len;
        skip = 0;
    }
    ssize_t w = writev(p->tap_fd, iov, (int)n);
    if (w < 0) {
        stat_add_shared(&p->tap.tx_drops, 1);
        return;
    }
    stat_add_shared(&p->tap.tx_packets, 1);
    stat_add_shared(&p->tap.tx_bytes, f->len);
}

unsigned tap_rx_pass(struct fwd_ctx *ctx, struct port *p, unsigned budget, bool *more)
{
    static __thread uint8_t buf[VIRTIO_NET_HDR_LEN + FRAME_MAX];
    unsigned done = 0;
    *more = false;
    while (done < budget) {
        ssize_t r = read(p->tap_fd, buf, sizeof(buf));
        if (r < 0) {
            if (errno != EAGAIN && errno != EINTR)
                log_debug("tap %s: read: %s", p->name, strerror(errno));
            return done;
        }
        done++;
        if ((size_t)r < VIRTIO_NET_HDR_LEN + ETH_HLEN_MIN) {
            stat_add(&p->tap.rx_drops, 1);
            continue;
        }
        struct virtio_net_hdr h;
        memcpy(&h, buf, VIRTIO_NET_HDR_LEN);
        uint8_t *frame = buf + VIRTIO_NET_HDR_LEN;
        size_t len = (size_t)r - VIRTIO_NET_HDR_LEN;
        static const struct offload_caps all = { true, true, true };
        h.num_buffers = 0;
        if (!offload_hdr_valid(&h, len, &all)) {
            stat_add(&p->tap.rx_drops, 1);
            continue;
        }
        struct iovec iov = { .iov_base = frame, .iov_len = len };
        struct frame f = { .iov = &iov, .niov = 1, .skip = 0, .len = len, .hdr = h };
        memcpy(f.eth, frame, ETH_HLEN_MIN);
        stat_add(&p->tap.rx_packets, 1);
        stat_add(&p->tap.rx_bytes, len);
        switch_forward(ctx, p, 0, &f);
    }
    *more = true;
    return done;
}
