/*
 * iov.h - walking scatter-gather lists (struct iovec arrays).
 *
 * Owns: the one iovec walker of the daemon: copies between iovecs and flat
 * buffers or other iovecs, and slicing a byte range out of an iovec array.
 * Every function starts skip bytes into its list and stops at whichever
 * ends first, the list or the length asked for; none reads or writes past
 * an iovec's iov_len.
 * Must not: know what the bytes are (rings, headers, frames): callers in
 * vq.c, net.c, offload.c and tap.c give it lists they have bounds-checked.
 */
#ifndef LWV_IOV_H
#define LWV_IOV_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/* Copies up to len bytes from (iov, skip) into buf; returns bytes copied. */
size_t iov_to_buf(const struct iovec *iov, unsigned n, size_t skip, void *buf, size_t len);
/* Copies up to len bytes from buf into (iov, skip); returns bytes copied. */
size_t buf_to_iov(const struct iovec *iov, unsigned n, size_t skip, const void *buf, size_t len);
/* Copies up to len bytes from (src, sskip) to (dst, dskip); returns bytes copied. */
size_t iov_copy(const struct iovec *dst, unsigned dn, size_t dskip, const struct iovec *src,
                unsigned sn, size_t sskip, size_t len);
/* Calls fn on each contiguous piece of bytes [skip, skip+len) of iov, in
 * order, until fn returns false; returns the bytes handed to fn. */
size_t iov_walk(const struct iovec *iov, unsigned n, size_t skip, size_t len,
                int (*fn)(void *arg, const uint8_t *p, size_t len), void *arg);
/* Describes bytes [skip, skip+len) of iov as at most max iovecs in out.
 * Returns how many, or -1 if the range needs more than max or runs past
 * the list. */
int iov_slice(const struct iovec *iov, unsigned n, size_t skip, size_t len, struct iovec *out,
              unsigned max);

#endif
