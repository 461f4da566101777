/*
 * tap.h - the host tap port: frames between the switch and the host stack.
 *
 * Owns: opening the tap (IFF_TAP|IFF_NO_PI|IFF_VNET_HDR, created if absent,
 * checksum and TSO offloads on), writing frames to it without blocking, and
 * reading a burst of frames from it with their headers checked.
 * Must not: touch guest rings or choose destinations (fwd.c and the switch
 * do, with the frames read here).
 */
#ifndef LWV_TAP_H
#define LWV_TAP_H

#include <stdbool.h>

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct port;
struct frame;

int tap_open(struct port *p, const char *ifname);
void tap_close(struct port *p);
/* Writes one frame to the host; drops and counts it if the tap is full. */
void tap_send(struct port *p, const struct frame *f);
/* Reads up to max frames from the host, frame i into buf + i * slot (slot
 * holds a header and the largest frame), and describes the valid ones in f
 * (with iov as their storage).  Returns the valid frames; *nread counts
 * every frame read (the others were dropped and counted); *empty is set
 * when the tap ran dry. */
unsigned tap_recv_burst(struct port *p, uint8_t *buf, size_t slot, struct frame *f,
                        struct iovec *iov, unsigned max, unsigned *nread, bool *empty);

#endif
