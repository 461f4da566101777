/*
 * vu_ctrl.h - the vhost-user control plane, backend side.
 *
 * Owns: reading messages (header, payload, attached fds) from a frontend
 * connection without ever blocking, validating each against its type
 * (size, fd count, values), applying it to the port's device under the
 * device write lock, and replying.  Written from QEMU's
 * docs/interop/vhost-user.rst.
 * Must not: move packets, or let anything a frontend sends affect another
 * port: a framing error closes that connection only.
 */
#ifndef LWV_VU_CTRL_H
#define LWV_VU_CTRL_H

#include <stdint.h>

struct port;
struct vdev;

/* The control plane's side of a device's lock: every change to a device
 * happens between these.  Unlocking also sends the RX interrupts that
 * workers could not decide meanwhile and pokes the device's TX queues,
 * which workers skip while the lock is held (docs/threading.md). */
void vu_dev_lock(struct vdev *d);
void vu_dev_unlock(struct vdev *d);

/* Features we offer (virtio and protocol) for a port with max_qp pairs. */
uint64_t vu_offered_features(unsigned max_qp);
uint64_t vu_offered_protocol_features(void);

/* Takes ownership of fd as p's frontend connection. */
void vu_conn_attach(struct port *p, int fd);
/* Handles what is readable; returns -1 when the connection must close. */
int vu_conn_readable(struct port *p);
/* Closes the connection and resets the device. */
void vu_conn_detach(struct port *p, const char *why);

#define VU_MAX_MEM_SLOTS 32

#endif
