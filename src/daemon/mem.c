/*
 * mem.c - see mem.h.
 */
#include "mem.h"

#include <errno.h>
#include <signal.h>
#include <unistd.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

/* a + b without wrapping past 2^64; returns -1 on overflow. */
static int add_overflows(uint64_t a, uint64_t b, uint64_t *sum)
{
    return __builtin_add_overflow(a, b, sum) ? -1 : 0;
}

int mem_region_map(struct mem_region *out, const struct vhost_user_mem_region *d, int fd,
                   char *err, size_t errlen)
{
    uint64_t end;
    memset(out, 0, sizeof(*out));
    if (d->memory_size == 0) {
        snprintf(err, errlen, "zero-sized memory region");
        return -1;
    }
    if (add_overflows(d->guest_phys_addr, d->memory_size - 1, &end) ||
        add_overflows(d->userspace_addr, d->memory_size - 1, &end) ||
        add_overflows(d->mmap_offset, d->memory_size, &end)) {
        snprintf(err, errlen, "memory region wraps the address space (gpa 0x%llx uva 0x%llx "
                 "size 0x%llx offset 0x%llx)", (unsigned long long)d->guest_phys_addr,
                 (unsigned long long)d->userspace_addr, (unsigned long long)d->memory_size,
                 (unsigned long long)d->mmap_offset);
        return -1;
    }
    /* Ring and indirect-table alignment is checked on guest-physical and
     * frontend addresses; our pointers keep it only if the region's
     * addresses and file offset do too. */
    if ((d->guest_phys_addr | d->userspace_addr | d->mmap_offset) & 15) {
        snprintf(err, errlen, "memory region not 16-byte aligned (gpa 0x%llx uva 0x%llx "
                 "offset 0x%llx)", (unsigned long long)d->guest_phys_addr,
                 (unsigned long long)d->userspace_addr, (unsigned long long)d->mmap_offset);
        return -1;
    }
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        snprintf(err, errlen, "memory fd unusable: %s", strerror(errno));
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "memory fd is not a shared memory file (memfd or hugetlbfs)");
        return -1;
    }
    if ((uint64_t)st.st_size < end) {
        snprintf(err, errlen, "memory fd too small: %lld bytes for offset 0x%llx + size 0x%llx",
                 (long long)st.st_size, (unsigned long long)d->mmap_offset,
                 (unsigned long long)d->memory_size);
        return -1;
    }
    /* hugetlbfs wants offset and length aligned to its page size, which
     * st_blksize reports; memfd reports the normal page size. */
    uint64_t align = st.st_blksize > 0 ? (uint64_t)st.st_blksize : 4096;
    if (align & (align - 1))
        align = 4096;
    uint64_t map_off = d->mmap_offset & ~(align - 1);
    uint64_t map_len = (d->mmap_offset - map_off) + d->memory_size;
    map_len = (map_len + align - 1) & ~(align - 1);
    if (map_len > SIZE_MAX) {
        snprintf(err, errlen, "memory region too large");
        return -1;
    }
    void *p = mmap(NULL, (size_t)map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd,
                   (off_t)map_off);
    if (p == MAP_FAILED) {
        snprintf(err, errlen, "mmap of memory region failed: %s", strerror(errno));
        return -1;
    }
    out->gpa = d->guest_phys_addr;
    out->size = d->memory_size;
    out->uva = d->userspace_addr;
    out->mmap_offset = d->mmap_offset;
    out->map_base = p;
    out->map_len = (size_t)map_len;
    out->host = (uint8_t *)p + (d->mmap_offset - map_off);
    out->page = (size_t)align;
    return 0;
}

/* ---- SIGBUS guard ------------------------------------------------------
 * A lock-free registry of mapped guest memory, readable from a signal
 * handler: a slot is live while its base is non-zero. */
#define GUARD_SLOTS 4096

struct guard_slot {
    uintptr_t base;
    size_t len;
    size_t page;
    bool *flag;
};

static struct guard_slot guard[GUARD_SLOTS];

/* Returns -1 when the table is full: the region would be unguarded. */
static int guard_register(const struct mem_region *r, bool *flag)
{
    for (unsigned i = 0; i < GUARD_SLOTS; i++) {
        uintptr_t expect = 0;
        if (__atomic_load_n(&guard[i].base, __ATOMIC_RELAXED) != 0)
            continue;
        /* Claim with a sentinel, fill, then publish the real base. */
        if (!__atomic_compare_exchange_n(&guard[i].base, &expect, (uintptr_t)1, false,
                                         __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
            continue;
        guard[i].len = r->map_len;
        guard[i].page = r->page;
        guard[i].flag = flag;
        __atomic_store_n(&guard[i].base, (uintptr_t)r->map_base, __ATOMIC_RELEASE);
        return 0;
    }
    return -1;
}

static void guard_unregister(const struct mem_region *r)
{
    for (unsigned i = 0; i < GUARD_SLOTS; i++)
        if (__atomic_load_n(&guard[i].base, __ATOMIC_ACQUIRE) == (uintptr_t)r->map_base) {
            __atomic_store_n(&guard[i].base, 0, __ATOMIC_RELEASE);
            return;
        }
}

static void say(const char *s)
{
    ssize_t unused = write(2, s, strlen(s));
    (void)unused;
}

static void sigbus_handler(int sig, siginfo_t *si, void *uctx)
{
    uintptr_t a = (uintptr_t)si->si_addr;
    for (unsigned i = 0; i < GUARD_SLOTS; i++) {
        uintptr_t base = __atomic_load_n(&guard[i].base, __ATOMIC_ACQUIRE);
        if (base <= 1 || a < base || a - base >= guard[i].len)
            continue;
        uintptr_t page = a & ~(uintptr_t)(guard[i].page - 1);
        void *p = mmap((void *)page, guard[i].page, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
        if (p == MAP_FAILED)
            break;
        if (guard[i].flag)
            __atomic_store_n(guard[i].flag, true, __ATOMIC_RELAXED);
        say("lwvhostd error: guest memory or its dirty log vanished under us (the frontend shrank "
            "its file); that device is stopped\n");
        return;
    }
    /* Not guest memory: a real bug.  Die with the default action. */
    signal(SIGBUS, SIG_DFL);
}

int mem_guard_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = sigbus_handler;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    return sigaction(SIGBUS, &sa, NULL);
}

void mem_region_unmap(struct mem_region *r)
{
    if (r->map_base) {
        guard_unregister(r);
        munmap(r->map_base, r->map_len);
    }
    memset(r, 0, sizeof(*r));
}

static int ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
    /* Both ranges are known not to wrap. */
    return a <= b + (blen - 1) && b <= a + (alen - 1);
}

int mem_overlaps(const struct guest_mem *m, const struct mem_region *r)
{
    for (unsigned i = 0; i < m->n; i++) {
        const struct mem_region *o = &m->r[i];
        if (ranges_overlap(o->gpa, o->size, r->gpa, r->size) ||
            ranges_overlap(o->uva, o->size, r->uva, r->size))
            return 1;
    }
    return 0;
}

int mem_add(struct guest_mem *m, const struct mem_region *r, char *err, size_t errlen)
{
    if (m->n >= MEM_MAX_REGIONS) {
        snprintf(err, errlen, "more than %u memory regions", MEM_MAX_REGIONS);
        return -1;
    }
    /* Mapped memory the SIGBUS guard does not know would let a frontend
     * that shrinks its file kill the daemon: refuse it instead. */
    if (guard_register(r, m->fault_flag) < 0) {
        snprintf(err, errlen, "%u guest memory regions mapped in all, the most the SIGBUS "
                 "guard can watch", GUARD_SLOTS);
        return -1;
    }
    m->r[m->n++] = *r;
    return 0;
}

int mem_remove(struct guest_mem *m, const struct vhost_user_mem_region *d)
{
    for (unsigned i = 0; i < m->n; i++) {
        struct mem_region *r = &m->r[i];
        if (r->gpa == d->guest_phys_addr && r->size == d->memory_size &&
            r->uva == d->userspace_addr) {
            mem_region_unmap(r);
            m->r[i] = m->r[m->n - 1];
            memset(&m->r[m->n - 1], 0, sizeof(m->r[0]));
            m->n--;
            return 0;
        }
    }
    return -1;
}

void mem_clear(struct guest_mem *m)
{
    for (unsigned i = 0; i < m->n; i++)
        mem_region_unmap(&m->r[i]);
    m->n = 0;
}

/* Offset of [addr, addr+len) inside [base, base+size), or -1. */
static int64_t range_offset(uint64_t base, uint64_t size, uint64_t addr, uint64_t len)
{
    if (addr < base)
        return -1;
    uint64_t off = addr - base;
    if (off >= size || len > size - off)
        return -1;
    return (int64_t)off;
}

/* The region holding gpa, trying the last hit first; NULL if none. */
static const struct mem_region *gpa_region(const struct guest_mem *m, uint64_t gpa)
{
    unsigned h = __atomic_load_n(&m->hint, __ATOMIC_RELAXED);
    if (h < m->n && range_offset(m->r[h].gpa, m->r[h].size, gpa, 1) >= 0)
        return &m->r[h];
    for (unsigned i = 0; i < m->n; i++) {
        if (range_offset(m->r[i].gpa, m->r[i].size, gpa, 1) >= 0) {
            __atomic_store_n((unsigned *)&m->hint, i, __ATOMIC_RELAXED);
            return &m->r[i];
        }
    }
    return NULL;
}

void *mem_gpa_to_host(const struct guest_mem *m, uint64_t gpa, uint64_t len)
{
    const struct mem_region *r = gpa_region(m, gpa);
    if (!r)
        return NULL;
    int64_t off = range_offset(r->gpa, r->size, gpa, len);
    return off >= 0 ? r->host + off : NULL;
}

void *mem_uva_to_host(const struct guest_mem *m, uint64_t uva, uint64_t len)
{
    for (unsigned i = 0; i < m->n; i++) {
        int64_t off = range_offset(m->r[i].uva, m->r[i].size, uva, len);
        if (off >= 0)
            return m->r[i].host + off;
    }
    return NULL;
}

int mem_gpa_to_iov(const struct guest_mem *m, uint64_t gpa, uint64_t len, struct iovec *iov,
                   int max)
{
    int n = 0;
    while (len > 0) {
        const struct mem_region *hit = gpa_region(m, gpa);
        if (!hit || n >= max)
            return -1;
        uint64_t off = gpa - hit->gpa;
        uint64_t chunk = hit->size - off;
        if (chunk > len)
            chunk = len;
        iov[n].iov_base = hit->host + off;
        iov[n].iov_len = (size_t)chunk;
        n++;
        len -= chunk;
        if (len > 0 && gpa + chunk < gpa)
            return -1;  /* the region ends at the top of the address space */
        gpa += chunk;
    }
    return n;
}

/* ---- the dirty log ------------------------------------------------------- */

uint64_t mem_uva_to_gpa(const struct guest_mem *m, uint64_t uva, uint64_t len)
{
    for (unsigned i = 0; i < m->n; i++) {
        int64_t off = range_offset(m->r[i].uva, m->r[i].size, uva, len);
        if (off >= 0)
            return m->r[i].gpa + (uint64_t)off;
    }
    return UINT64_MAX;
}

int mem_log_map(struct guest_mem *m, int fd, uint64_t size, uint64_t offset, char *err,
                size_t errlen)
{
    struct stat st;
    long pg = sysconf(_SC_PAGESIZE);
    uint64_t lead = offset % (uint64_t)pg;
    if (size == 0 || size > (1ull << 40) || offset > UINT64_MAX - size) {
        snprintf(err, errlen, "log of %llu bytes at offset %llu: empty, too large or wrapping",
                 (unsigned long long)size, (unsigned long long)offset);
        return -1;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size < offset + size) {
        snprintf(err, errlen, "log fd is not a file of at least %llu bytes",
                 (unsigned long long)(offset + size));
        return -1;
    }
    /* Every page of guest memory must have its bit. */
    for (unsigned i = 0; i < m->n; i++) {
        uint64_t last = (m->r[i].gpa + m->r[i].size - 1) / LOG_PAGE;
        if (last / 8 >= size) {
            snprintf(err, errlen, "log of %llu bytes does not cover guest memory up to 0x%llx",
                     (unsigned long long)size,
                     (unsigned long long)(m->r[i].gpa + m->r[i].size));
            return -1;
        }
    }
    size_t len = (size_t)(size + lead);
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)(offset - lead));
    if (p == MAP_FAILED) {
        snprintf(err, errlen, "cannot map the log: %s", strerror(errno));
        return -1;
    }
    /* A frontend may shrink the log's file too: the SIGBUS guard watches
     * it as it watches guest memory. */
    struct mem_region gr = { .map_base = p, .map_len = len, .page = (size_t)pg };
    if (guard_register(&gr, m->fault_flag) < 0) {
        munmap(p, len);
        snprintf(err, errlen, "the SIGBUS guard has no slot left for the log");
        return -1;
    }
    mem_log_unmap(m);
    m->log.map_base = p;
    m->log.map_len = len;
    m->log.bits = (uint8_t *)p + lead;
    m->log.size = size;
    return 0;
}

void mem_log_unmap(struct guest_mem *m)
{
    if (m->log.map_base) {
        struct mem_region gr = { .map_base = m->log.map_base, .map_len = m->log.map_len };
        guard_unregister(&gr);
        munmap(m->log.map_base, m->log.map_len);
    }
    memset(&m->log, 0, sizeof(m->log));
}

static inline void log_or(const struct dirty_log *l, uint64_t byte, uint8_t mask)
{
    if (byte < l->size)
        __atomic_fetch_or(&l->bits[byte], mask, __ATOMIC_RELAXED);
}

void mem_log_flush(const struct guest_mem *m, struct log_batch *b)
{
    if (b->mask && m->log.bits)
        log_or(&m->log, b->byte, b->mask);
    b->mask = 0;
}

void mem_log_gpa(const struct guest_mem *m, uint64_t gpa, uint64_t len, struct log_batch *b)
{
    if (!m->log.bits || len == 0 || gpa > UINT64_MAX - len)
        return;
    uint64_t first = gpa / LOG_PAGE, last = (gpa + len - 1) / LOG_PAGE;
    for (uint64_t pg = first; pg <= last; pg++) {
        uint64_t byte = pg / 8;
        uint8_t bit = (uint8_t)(1u << (pg % 8));
        if (!b) {
            log_or(&m->log, byte, bit);
            continue;
        }
        if (b->mask && b->byte != byte)
            mem_log_flush(m, b);
        b->byte = byte;
        b->mask |= bit;
    }
}

void mem_log_host(const struct guest_mem *m, const void *p, uint64_t len, struct log_batch *b)
{
    const uint8_t *h = p;
    for (unsigned i = 0; i < m->n; i++) {
        const struct mem_region *r = &m->r[i];
        if (h >= r->host && (uint64_t)(h - r->host) < r->size) {
            uint64_t off = (uint64_t)(h - r->host);
            mem_log_gpa(m, r->gpa + off, len < r->size - off ? len : r->size - off, b);
            return;
        }
    }
}
