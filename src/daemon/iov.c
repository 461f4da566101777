/*
 * iov.c - see iov.h.
 */
#include "iov.h"

#include <string.h>

/* Index of the iovec holding byte *skip of the list, with *skip turned
 * into an offset inside it; n if the list is shorter. */
static unsigned iov_seek(const struct iovec *iov, unsigned n, size_t *skip)
{
    unsigned i = 0;
    while (i < n && *skip >= iov[i].iov_len)
        *skip -= iov[i++].iov_len;
    return i;
}

/* Copies between iovecs (after skip bytes) and a flat buffer. */
static size_t iov_flat(const struct iovec *iov, unsigned n, size_t skip, uint8_t *buf, size_t len,
                       int to_iov)
{
    size_t done = 0;
    for (unsigned i = iov_seek(iov, n, &skip); i < n && done < len; i++, skip = 0) {
        size_t chunk = iov[i].iov_len - skip;
        if (chunk > len - done)
            chunk = len - done;
        uint8_t *p = (uint8_t *)iov[i].iov_base + skip;
        if (to_iov)
            memcpy(p, buf + done, chunk);
        else
            memcpy(buf + done, p, chunk);
        done += chunk;
    }
    return done;
}

size_t iov_to_buf(const struct iovec *iov, unsigned n, size_t skip, void *buf, size_t len)
{
    return iov_flat(iov, n, skip, buf, len, 0);
}

size_t buf_to_iov(const struct iovec *iov, unsigned n, size_t skip, const void *buf, size_t len)
{
    return iov_flat(iov, n, skip, (uint8_t *)buf, len, 1);
}

size_t iov_copy(const struct iovec *dst, unsigned dn, size_t dskip, const struct iovec *src,
                unsigned sn, size_t sskip, size_t len)
{
    unsigned di = iov_seek(dst, dn, &dskip), si = iov_seek(src, sn, &sskip);
    size_t done = 0;
    while (done < len && di < dn && si < sn) {
        size_t dl = dst[di].iov_len - dskip, sl = src[si].iov_len - sskip;
        size_t chunk = dl < sl ? dl : sl;
        if (chunk > len - done)
            chunk = len - done;
        memcpy((uint8_t *)dst[di].iov_base + dskip, (const uint8_t *)src[si].iov_base + sskip,
               chunk);
        done += chunk;
        dskip += chunk;
        sskip += chunk;
        if (dskip == dst[di].iov_len) {
            di++;
            dskip = 0;
        }
        if (sskip == src[si].iov_len) {
            si++;
            sskip = 0;
        }
    }
    return done;
}

size_t iov_walk(const struct iovec *iov, unsigned n, size_t skip, size_t len,
                int (*fn)(void *arg, const uint8_t *p, size_t len), void *arg)
{
    size_t done = 0;
    for (unsigned i = iov_seek(iov, n, &skip); i < n && done < len; i++, skip = 0) {
        size_t chunk = iov[i].iov_len - skip;
        if (chunk > len - done)
            chunk = len - done;
        done += chunk;
        if (!fn(arg, (const uint8_t *)iov[i].iov_base + skip, chunk))
            break;
    }
    return done;
}

int iov_slice(const struct iovec *iov, unsigned n, size_t skip, size_t len, struct iovec *out,
              unsigned max)
{
    unsigned k = 0;
    for (unsigned i = iov_seek(iov, n, &skip); i < n && len > 0; i++, skip = 0) {
        if (k == max)
            return -1;
        size_t chunk = iov[i].iov_len - skip;
        if (chunk > len)
            chunk = len;
        out[k].iov_base = (uint8_t *)iov[i].iov_base + skip;
        out[k].iov_len = chunk;
        k++;
        len -= chunk;
    }
    return len ? -1 : (int)k;
}
