/*
 * tap.h - the host tap port: frames between the switch and the host stack.
 *
 * Owns: opening the tap (IFF_TAP|IFF_NO_PI|IFF_VNET_HDR, created if absent),
 * writing frames to it without blocking, and reading frames from it into
 * the switch.
 * Must not: touch guest rings directly (the switch delivers).
 */
#ifndef LWV_TAP_H
#define LWV_TAP_H

#include <stdbool.h>

struct port;
struct frame;
struct fwd_ctx;

int tap_open(struct port *p, const char *ifname);
void tap_close(struct port *p);
/* Writes one frame to the host; drops and counts it if the tap is full. */
void tap_send(struct port *p, const struct frame *f);
/* Reads up to budget frames from the host into the switch. */
unsigned tap_rx_pass(struct fwd_ctx *ctx, struct port *p, unsigned budget, bool *more);

#endif
