/*
 * test_vuf_ctrl_hostile - malformed and malicious vhost-user control
 * messages on port h.  After each one: the daemon must still run and ports
 * a and b (well-behaved frontends) must still forward both ways.
 *
 * Messages that are plainly invalid (wrong payload size, too many fds, bad
 * ring size or index, bad memory regions, unknown requests) are sent with
 * NEED_REPLY after REPLY_ACK was negotiated, and must be refused: a non-zero
 * ack or the connection closed; an ack of 0 fails the check.  Ring addresses
 * outside memory may be refused or accepted and never used: after an
 * accepted one the ring is kicked and the daemon must survive.  At the end
 * the daemon's fd count must be back near its baseline, it must be idle,
 * and a good frontend must work on h again.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "systest.h"

#include <sys/eventfd.h>
#include <sys/mman.h>

static struct tport A, B;

enum outcome { O_NACK, O_CLOSED, O_ACK, O_TIMEOUT, O_ODD };
static const char *oname(enum outcome o)
{
    switch (o) {
    case O_NACK: return "refused with a non-zero ack";
    case O_CLOSED: return "connection closed";
    case O_ACK: return "ACCEPTED with ack 0";
    case O_TIMEOUT: return "no reply";
    default: return "odd reply";
    }
}

static int fatal;   /* daemon died: skip the rest */

static void after(const char *what)
{
    if (pair_survives(what, &A, &B))
        fatal = 1;
}

/* Connect to h; negotiate (REPLY_ACK etc.) when asked. */
static struct vuf *hopen(int negotiate)
{
    struct vuf_opts o;
    struct vuf *v;
    tport_default_opts(&o, "h");
    o.timeout_ms = 2000;
    int r = vuf_open(&v, &o);
    if (r) {
        note("open h: %s (%s)", strerror(-r), vuf_last_error(NULL));
        return NULL;
    }
    if (negotiate && (r = vuf_negotiate(v))) {
        note("negotiate h: %s (%s)", strerror(-r), vuf_last_error(v));
        vuf_close(v);
        return NULL;
    }
    return v;
}

static enum outcome await(struct vuf *v, uint32_t req, int ms, uint64_t *val)
{
    struct vhost_user_msg m;
    double until = t_now() + ms / 1000.0;
    for (;;) {
        int left = (int)((until - t_now()) * 1000);
        if (left <= 0)
            return O_TIMEOUT;
        int r = vuf_msg_recv(v, &m, left);
        if (r == -ETIMEDOUT)
            return O_TIMEOUT;
        if (r)
            return O_CLOSED;
        if (m.hdr.request != req)
            continue;
        if (!(m.hdr.flags & VHOST_USER_REPLY_MASK) || m.hdr.size != 8)
            return O_ODD;
        if (val)
            *val = m.payload.u64;
        return m.payload.u64 ? O_NACK : O_ACK;
    }
}

static int send_nr(struct vuf *v, uint32_t req, const void *p, uint32_t size, const int *fds,
                   unsigned nfds)
{
    return vuf_msg_send(v, req, VHOST_USER_VERSION | VHOST_USER_NEED_REPLY_MASK, p, size, fds,
                        nfds);
}

/* Send req on a fresh negotiated connection; it must be refused. */
static void must_refuse(const char *what, uint32_t req, const void *p, uint32_t size,
                        const int *fds, unsigned nfds)
{
    if (fatal)
        return;
    struct vuf *v = hopen(1);
    if (!v) {
        CHECK(0, "%s: could not connect/negotiate on h", what);
        return;
    }
    send_nr(v, req, p, size, fds, nfds);
    enum outcome o = await(v, req, 1500, NULL);
    CHECK(o == O_NACK || o == O_CLOSED, "%s: %s", what, oname(o));
    vuf_close(v);
    after(what);
}

static int make_memfd(size_t size)
{
    int fd = memfd_create("hostile", MFD_CLOEXEC);
    if (fd >= 0 && ftruncate(fd, (off_t)size)) {
        close(fd);
        return -1;
    }
    return fd;
}

/* A memory table message with n regions. */
static uint32_t memtab(struct vhost_user_memory *m, unsigned n,
                       const struct vhost_user_mem_region *r)
{
    memset(m, 0, sizeof *m);
    m->nregions = n;
    for (unsigned i = 0; i < n && i < VHOST_MEMORY_BASELINE_NREGIONS; i++)
        m->regions[i] = r[i];
    return 8 + 32 * (n < VHOST_MEMORY_BASELINE_NREGIONS ? n : VHOST_MEMORY_BASELINE_NREGIONS);
}

/*
 * Bad memory table: must be refused.  If it is accepted anyway, a ring is
 * placed at ring_uaddr (inside the bad region) and kicked, and the daemon
 * must survive that too.
 */
static void bad_memtab(const char *what, unsigned n, const struct vhost_user_mem_region *r,
                       const int *fds, unsigned nfds, uint64_t ring_uaddr)
{
    if (fatal)
        return;
    struct vuf *v = hopen(1);
    if (!v) {
        CHECK(0, "%s: could not connect/negotiate on h", what);
        return;
    }
    struct vhost_user_memory m;
    uint32_t size = memtab(&m, n, r);
    send_nr(v, VHOST_USER_SET_MEM_TABLE, &m, size, fds, nfds);
    enum outcome o = await(v, VHOST_USER_SET_MEM_TABLE, 1500, NULL);
    CHECK(o == O_NACK || o == O_CLOSED, "%s: %s", what, oname(o));
    if (o == O_ACK && ring_uaddr) {
        /* try to make the daemon use it */
        struct vhost_user_vring_state st = { 1, 64 };
        struct vhost_user_vring_addr a = { .index = 1, .desc_user_addr = ring_uaddr,
                                           .avail_user_addr = ring_uaddr + 0x1000,
                                           .used_user_addr = ring_uaddr + 0x2000 };
        int kfd = eventfd(0, EFD_CLOEXEC), cfd = eventfd(0, EFD_CLOEXEC);
        uint64_t one = 1, idx = 1;
        vuf_msg_send(v, VHOST_USER_SET_VRING_NUM, VHOST_USER_VERSION, &st, sizeof st, NULL, 0);
        vuf_msg_send(v, VHOST_USER_SET_VRING_ADDR, VHOST_USER_VERSION, &a, sizeof a, NULL, 0);
        vuf_msg_send(v, VHOST_USER_SET_VRING_KICK, VHOST_USER_VERSION, &idx, 8, &kfd, 1);
        vuf_msg_send(v, VHOST_USER_SET_VRING_CALL, VHOST_USER_VERSION, &idx, 8, &cfd, 1);
        st.num = 1;
        vuf_msg_send(v, VHOST_USER_SET_VRING_ENABLE, VHOST_USER_VERSION, &st, sizeof st, NULL, 0);
        if (write(kfd, &one, 8) != 8)
            note("kick write failed");
        msleep(200);
        close(kfd);
        close(cfd);
    }
    vuf_close(v);
    after(what);
}

/* Ring addresses that are not (wholly) in memory: refused, or accepted and
 * then harmless when the ring is kicked. */
static void bad_ring_addr(const char *what, int which, int64_t delta_from_end, uint64_t abs)
{
    if (fatal)
        return;
    struct vuf_opts o;
    struct vuf *v;
    tport_default_opts(&o, "h");
    if (vuf_open(&v, &o)) {
        CHECK(0, "%s: open", what);
        return;
    }
    if (vuf_negotiate(v) || vuf_set_mem_table(v)) {
        CHECK(0, "%s: negotiate + mem table: %s", what, vuf_last_error(v));
        vuf_close(v);
        return;
    }
    struct vhost_user_mem_region r;
    vuf_region(v, 0, &r, NULL);
    struct vuf_ring_view rv;
    vuf_ring_view(v, 1, &rv);
    struct vhost_user_vring_state st = { 1, rv.num };
    vuf_msg_send(v, VHOST_USER_SET_VRING_NUM, VHOST_USER_VERSION, &st, sizeof st, NULL, 0);
    uint64_t bad = abs ? abs : r.userspace_addr + r.memory_size + (uint64_t)delta_from_end;
    struct vhost_user_vring_addr a = {
        .index = 1,
        .desc_user_addr = (uint64_t)(uintptr_t)rv.desc,
        .avail_user_addr = (uint64_t)(uintptr_t)rv.avail,
        .used_user_addr = (uint64_t)(uintptr_t)rv.used,
    };
    if (which == 0)
        a.desc_user_addr = bad;
    else if (which == 1)
        a.avail_user_addr = bad;
    else
        a.used_user_addr = bad;
    send_nr(v, VHOST_USER_SET_VRING_ADDR, &a, sizeof a, NULL, 0);
    enum outcome out = await(v, VHOST_USER_SET_VRING_ADDR, 1500, NULL);
    note("%s: %s", what, oname(out));
    CHECK(out != O_TIMEOUT && out != O_ODD, "%s: answered (%s)", what, oname(out));
    if (out == O_ACK) {
        /* accepted: start the ring and kick it */
        uint64_t idx = 1, one = 1;
        vuf_msg_send(v, VHOST_USER_SET_VRING_KICK, VHOST_USER_VERSION, &idx, 8, &rv.kick_fd, 1);
        vuf_msg_send(v, VHOST_USER_SET_VRING_CALL, VHOST_USER_VERSION, &idx, 8, &rv.call_fd, 1);
        st.num = 1;
        vuf_msg_send(v, VHOST_USER_SET_VRING_ENABLE, VHOST_USER_VERSION, &st, sizeof st, NULL, 0);
        /* a plausible frame in the ring, so the daemon has work */
        uint64_t gpa;
        uint8_t *buf = vuf_scratch_alloc(v, 128, 64, &gpa);
        if (buf) {
            memset(buf, 0xff, 12 + 64);
            rv.desc[0] = (struct virtq_desc){ gpa, 12 + 64, 0, 0 };
            vuf_avail_push(v, 1, 0);
        }
        if (write(rv.kick_fd, &one, 8) != 8)
            note("kick failed");
        msleep(200);
    }
    vuf_close(v);
    after(what);
}

/* 1 if the daemon's log holds s. */
static int log_has(const char *s)
{
    FILE *f = fopen(D.log, "r");
    char line[512];
    int found = 0;
    if (!f)
        return 0;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, s) != NULL;
    fclose(f);
    return found;
}

/* a's RX ring stopped (GET_VRING_BASE) and started again with the base
 * off by delta from the used index in its memory: what a migration
 * destination gets from a source backend that stopped with descriptors in
 * flight, or a frontend with a stale base.  Used entries written from the
 * base would overwrite or skip entries the driver owns; the daemon must
 * start from the used index (and say so), and frames to a arrive whole. */
static void stale_base(int delta)
{
    char what[80];
    snprintf(what, sizeof what, "RX ring of a restarted with base = used index %+d", delta);
    struct vuf_ring_view rv;
    uint32_t base;
    if (vuf_get_vring_base(A.v, 0, &base) < 0 || vuf_ring_view(A.v, 0, &rv) < 0) {
        CHECK(0, "%s: GET_VRING_BASE on a: %s", what, vuf_last_error(A.v));
        return;
    }
    uint16_t used = __atomic_load_n(&rv.used->idx, __ATOMIC_ACQUIRE);
    CHECK(base == used, "%s: a stopped ring's base %u is its used index %u", what, base, used);
    int r = vuf_resume_ring(A.v, 0, (uint16_t)(used + delta));
    CHECK(r == 0, "%s: SET_VRING_BASE and SET_VRING_KICK accepted: %s", what,
          r ? vuf_last_error(A.v) : "yes");
    struct xres x;
    int xr = xfer(&B, &A, A.mac, 600, 300, &x);
    CHECK(xr == 0, "%s: b -> a: %u of %u frames whole (bad %u, error %d)", what, x.received,
          x.sent, x.bad, x.err);
    CHECK(log_has("driver's used index is"), "%s: the daemon logged the mismatch", what);
    after(what);
}

int main(void)
{
    test_init("ctrl_hostile", 300);
    const char *ports[] = { "a", "b", "h", NULL };
    if (start_with_good_pair(ports, NULL, &A, &B))
        return test_finish();
    after("baseline");
    {
        struct vuf *v = hopen(1);
        CHECK(v && vuf_has_protocol(v, VHOST_USER_PROTOCOL_F_REPLY_ACK),
              "h offers REPLY_ACK (needed to see refusals)");
        if (v)
            vuf_close(v);
    }
    msleep(100);
    long fd0 = proc_fd_count(D.pid);
    note("daemon fd count at baseline: %ld", fd0);

    struct vhost_user_vring_state st;
    struct vhost_user_vring_addr va;
    uint64_t u;
    int efd = eventfd(0, EFD_CLOEXEC), efd2 = eventfd(0, EFD_CLOEXEC);
    int memfd = make_memfd(4 << 20);
    int fds20[20];
    for (int i = 0; i < 20; i++)
        fds20[i] = efd;

    /* ---- wrong payload sizes ---- */
    u = 1ull << VIRTIO_F_VERSION_1;
    must_refuse("SET_FEATURES with 4-byte payload", VHOST_USER_SET_FEATURES, &u, 4, NULL, 0);
    {
        uint8_t p16[16] = { 0 };
        memcpy(p16, &u, 8);
        must_refuse("SET_FEATURES with 16-byte payload", VHOST_USER_SET_FEATURES, p16, 16, NULL, 0);
    }
    st = (struct vhost_user_vring_state){ 0, 256 };
    must_refuse("SET_VRING_NUM with 4-byte payload", VHOST_USER_SET_VRING_NUM, &st, 4, NULL, 0);
    memset(&va, 0, sizeof va);
    must_refuse("SET_VRING_ADDR with 24-byte payload", VHOST_USER_SET_VRING_ADDR, &va, 24, NULL, 0);
    u = 0;
    must_refuse("SET_VRING_KICK with 0-byte payload + fd", VHOST_USER_SET_VRING_KICK, NULL, 0, &efd, 1);
    {
        struct vhost_user_memory m;
        struct vhost_user_mem_region reg = { 0, 1 << 20, 0x7f0000000000ull, 0 };
        uint32_t sz = memtab(&m, 1, &reg);
        must_refuse("SET_MEM_TABLE truncated by 8 bytes", VHOST_USER_SET_MEM_TABLE, &m, sz - 8,
                    &memfd, 1);
        struct vhost_user_mem_region two[2] = { reg, { 2 << 20, 1 << 20, 0x7f0000200000ull, 0 } };
        memtab(&m, 2, two);
        int f2[2] = { memfd, memfd };
        must_refuse("SET_MEM_TABLE nregions=2 but payload for 1", VHOST_USER_SET_MEM_TABLE, &m,
                    sz, f2, 2);
    }
    {
        static uint8_t big[70000];
        must_refuse("SET_FEATURES with 70000-byte payload", VHOST_USER_SET_FEATURES, big,
                    sizeof big, NULL, 0);
    }
    if (!fatal) {
        /* header claims 4 GiB - 1 of payload; nothing follows; the daemon
         * must neither block nor allocate it */
        struct vuf *v = hopen(0);
        if (v) {
            vuf_msg_send(v, VHOST_USER_SET_FEATURES, VHOST_USER_VERSION, NULL, 0xffffffffu,
                         NULL, 0);
            after("header claiming a 0xffffffff-byte payload (connection left open)");
            vuf_close(v);
        }
    }

    /* ---- too many fds ---- */
    {
        struct vhost_user_memory m;
        struct vhost_user_vring_state dummy = { 0, 0 };
        (void)dummy;
        struct vhost_user_mem_region reg = { 0, 1 << 20, 0x7f0000000000ull, 0 };
        uint32_t sz = memtab(&m, 1, &reg);
        int f9[9];
        for (int i = 0; i < 9; i++)
            f9[i] = memfd;
        must_refuse("SET_MEM_TABLE (1 region) with 9 fds", VHOST_USER_SET_MEM_TABLE, &m, sz, f9, 9);
        int f2[2] = { memfd, memfd };
        must_refuse("SET_MEM_TABLE (1 region) with 2 fds", VHOST_USER_SET_MEM_TABLE, &m, sz, f2, 2);
    }
    u = 0;
    {
        int f2[2] = { efd, efd2 };
        must_refuse("SET_VRING_KICK with 2 fds", VHOST_USER_SET_VRING_KICK, &u, 8, f2, 2);
    }
    must_refuse("SET_VRING_CALL with 20 fds", VHOST_USER_SET_VRING_CALL, &u, 8, fds20, 20);
    must_refuse("SET_MEM_TABLE (1 region) with no fd", VHOST_USER_SET_MEM_TABLE,
                &(struct vhost_user_memory){ .nregions = 1, .regions = { { 0, 1 << 20,
                  0x7f0000000000ull, 0 } } }, 40, NULL, 0);

    /* ---- fds on messages that take none: any answer, but no fd leak ---- */
    if (!fatal) {
        static const uint32_t reqs[] = { VHOST_USER_GET_FEATURES, VHOST_USER_SET_OWNER,
                                         VHOST_USER_GET_PROTOCOL_FEATURES,
                                         VHOST_USER_SET_VRING_NUM };
        unsigned closed = 0;
        for (int round = 0; round < 40 && !fatal; round++) {
            struct vuf *v = hopen(1);
            if (!v)
                break;
            uint32_t req = reqs[round % 4];
            st = (struct vhost_user_vring_state){ 0, 256 };
            u = 0;
            const void *p = req == VHOST_USER_SET_VRING_NUM ? (const void *)&st : NULL;
            uint32_t sz = req == VHOST_USER_SET_VRING_NUM ? 8 : 0;
            send_nr(v, req, p, sz, fds20, 3);
            if (await(v, req, 1000, NULL) == O_CLOSED)
                closed++;
            vuf_close(v);
        }
        note("fds on fd-less messages: %u of 40 connections closed by the daemon", closed);
        after("40 fd-less messages carrying 3 fds each");
    }

    /* ---- ring size and index ---- */
    st = (struct vhost_user_vring_state){ 0, 100 };
    must_refuse("SET_VRING_NUM 100 (not a power of two)", VHOST_USER_SET_VRING_NUM, &st, 8, NULL, 0);
    st = (struct vhost_user_vring_state){ 1, 0 };
    must_refuse("SET_VRING_NUM 0", VHOST_USER_SET_VRING_NUM, &st, 8, NULL, 0);
    st = (struct vhost_user_vring_state){ 0, 65536 };
    must_refuse("SET_VRING_NUM 65536 (> 32768)", VHOST_USER_SET_VRING_NUM, &st, 8, NULL, 0);
    st = (struct vhost_user_vring_state){ 0, 0x80000000u };
    must_refuse("SET_VRING_NUM 0x80000000", VHOST_USER_SET_VRING_NUM, &st, 8, NULL, 0);
    st = (struct vhost_user_vring_state){ 255, 256 };
    must_refuse("SET_VRING_NUM ring index 255", VHOST_USER_SET_VRING_NUM, &st, 8, NULL, 0);
    st = (struct vhost_user_vring_state){ 0x10000, 256 };
    must_refuse("SET_VRING_BASE ring index 0x10000", VHOST_USER_SET_VRING_BASE, &st, 8, NULL, 0);
    st = (struct vhost_user_vring_state){ 2, 1 };
    must_refuse("SET_VRING_ENABLE ring index 2 on a 1-pair port", VHOST_USER_SET_VRING_ENABLE,
                &st, 8, NULL, 0);
    memset(&va, 0, sizeof va);
    va.index = 1000;
    must_refuse("SET_VRING_ADDR ring index 1000", VHOST_USER_SET_VRING_ADDR, &va, sizeof va, NULL, 0);
    u = 0xfe;
    must_refuse("SET_VRING_KICK ring index 254", VHOST_USER_SET_VRING_KICK, &u, 8, &efd, 1);
    u = 3;
    must_refuse("SET_VRING_CALL ring index 3 on a 1-pair port",
                VHOST_USER_SET_VRING_CALL, &u, 8, &efd, 1);
    if (!fatal) {
        struct vuf *v = hopen(1);
        if (v) {
            st = (struct vhost_user_vring_state){ 77, 0 };
            vuf_msg_send(v, VHOST_USER_GET_VRING_BASE, VHOST_USER_VERSION, &st, 8, NULL, 0);
            enum outcome o = await(v, VHOST_USER_GET_VRING_BASE, 1000, NULL);
            note("GET_VRING_BASE ring 77: %s", oname(o));
            vuf_close(v);
            after("GET_VRING_BASE ring index 77");
        }
    }

    /* ---- feature bits not offered ---- */
    u = (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_F_RING_PACKED) | (1ull << 55);
    must_refuse("SET_FEATURES with bits not offered (RING_PACKED, 55)", VHOST_USER_SET_FEATURES,
                &u, 8, NULL, 0);

    /* ---- memory regions ---- */
    {
        uint64_t ua = 0x7f1000000000ull;
        struct vhost_user_mem_region ov[2] = { { 0, 2 << 20, ua, 0 },
                                               { 1 << 20, 2 << 20, ua + (4 << 20), 0 } };
        int f2[2] = { memfd, memfd };
        bad_memtab("mem regions overlapping in GPA", 2, ov, f2, 2, 0);
        struct vhost_user_mem_region ovu[2] = { { 0, 1 << 20, ua, 0 },
                                                { 16 << 20, 1 << 20, ua + (1 << 19), 1 << 20 } };
        bad_memtab("mem regions overlapping in user address", 2, ovu, f2, 2, 0);
        struct vhost_user_mem_region wr = { 0xfffffffffff00000ull, 2 << 20, ua, 0 };
        bad_memtab("mem region GPA wrapping past 2^64", 1, &wr, &memfd, 1, ua);
        struct vhost_user_mem_region wru = { 0, 2 << 20, 0xfffffffffff00000ull, 0 };
        bad_memtab("mem region user address wrapping past 2^64", 1, &wru, &memfd, 1, 0);
        struct vhost_user_mem_region wro = { 0, 2 << 20, ua, 0xfffffffffff00000ull };
        bad_memtab("mem region mmap_offset+size wrapping", 1, &wro, &memfd, 1, ua);
        struct vhost_user_mem_region z = { 0, 0, ua, 0 };
        bad_memtab("zero-sized mem region", 1, &z, &memfd, 1, 0);
        int small = make_memfd(64 << 10);
        struct vhost_user_mem_region sm = { 0, 1 << 20, ua, 0 };
        bad_memtab("mem fd of 64 KiB for a 1 MiB region", 1, &sm, &small, 1, ua + (512 << 10));
        struct vhost_user_mem_region smo = { 0, 64 << 10, ua, 32 << 10 };
        bad_memtab("mem fd of 64 KiB, region offset 32 KiB + 64 KiB", 1, &smo, &small, 1,
                   ua + (40 << 10));
        close(small);
        int p[2];
        if (pipe2(p, O_CLOEXEC) == 0) {
            struct vhost_user_mem_region pr = { 0, 1 << 20, ua, 0 };
            bad_memtab("mem region backed by a pipe", 1, &pr, &p[0], 1, 0);
            close(p[0]);
            close(p[1]);
        }
        struct vhost_user_mem_region nine[9];
        int f9[9];
        for (int i = 0; i < 9; i++) {
            nine[i] = (struct vhost_user_mem_region){ (uint64_t)i << 30, 64 << 10,
                                                      ua + ((uint64_t)i << 30), 0 };
            f9[i] = memfd;
        }
        bad_memtab("SET_MEM_TABLE nregions=9 (> 8)", 9, nine, f9, 8, 0);
    }

    /* ---- ring addresses outside memory ---- */
    bad_ring_addr("desc table wholly after the end of memory", 0, 0x100000, 0);
    bad_ring_addr("desc table straddling the end of memory", 0, -2048, 0);
    bad_ring_addr("avail ring straddling the end of memory", 1, -64, 0);
    bad_ring_addr("used ring wholly after the end of memory", 2, 4096, 0);
    bad_ring_addr("used ring at user address 0", 2, 0, 8);
    bad_ring_addr("desc table at user address 2^64-16", 0, 0, 0xfffffffffffffff0ull);

    /* ---- notification fds that are not eventfds ---- */
    if (!fatal) {
        struct vuf_opts o;
        struct vuf *v;
        tport_default_opts(&o, "h");
        int p[2];
        if (vuf_connect(&v, &o) == 0 && pipe2(p, O_CLOEXEC) == 0) {
            u = 1;   /* TX ring */
            send_nr(v, VHOST_USER_SET_VRING_KICK, &u, 8, &p[0], 1);
            enum outcome out = await(v, VHOST_USER_SET_VRING_KICK, 1500, NULL);
            note("kick fd = read end of a pipe: %s", oname(out));
            if (write(p[1], "x", 1) != 1)
                note("pipe write failed");
            msleep(50);
            close(p[1]);   /* read end now reports HUP forever */
            close(p[0]);
            msleep(100);
            double cpu = daemon_cpu_over(1000);
            CHECK(cpu < 0.3, "kick fd is a pipe whose writer closed: daemon CPU %.2f s in 1 s", cpu);
            vuf_close(v);
            after("kick fd = pipe (written, then writer closed)");
        } else {
            CHECK(0, "connect h for the pipe kick test");
        }
    }
    if (!fatal) {
        struct vuf_opts o;
        struct vuf *v;
        tport_default_opts(&o, "h");
        int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (vuf_connect(&v, &o) == 0) {
            u = 1;
            send_nr(v, VHOST_USER_SET_VRING_KICK, &u, 8, &nul, 1);
            enum outcome out = await(v, VHOST_USER_SET_VRING_KICK, 1500, NULL);
            note("kick fd = /dev/null: %s", oname(out));
            u = 0;
            send_nr(v, VHOST_USER_SET_VRING_CALL, &u, 8, &nul, 1);
            out = await(v, VHOST_USER_SET_VRING_CALL, 1500, NULL);
            note("call fd = /dev/null: %s", oname(out));
            msleep(100);
            double cpu = daemon_cpu_over(500);
            CHECK(cpu < 0.15, "kick/call fd = /dev/null: daemon CPU %.2f s in 0.5 s", cpu);
            vuf_close(v);
            after("kick and call fd = /dev/null");
        } else {
            CHECK(0, "connect h for the /dev/null kick test");
        }
        close(nul);
    }

    /* ---- unknown requests with NEED_REPLY: error reply expected ---- */
    {
        static const uint32_t unk[] = { 0, 26, 33, 77, 1000, 0x7fffffffu, 0xffffffffu };
        for (unsigned i = 0; i < sizeof unk / sizeof unk[0] && !fatal; i++) {
            struct vuf *v = hopen(1);
            if (!v) {
                CHECK(0, "unknown request %u: connect", unk[i]);
                continue;
            }
            u = 0;
            send_nr(v, unk[i], &u, 8, NULL, 0);
            uint64_t val = 0;
            enum outcome o = await(v, unk[i], 1500, &val);
            CHECK(o == O_NACK, "unknown request %u with NEED_REPLY: %s", unk[i], oname(o));
            if (o == O_NACK) {
                uint64_t f;
                struct vhost_user_msg m;
                int rr = vuf_request(v, VHOST_USER_GET_FEATURES, NULL, 0, NULL, 0, &m);
                (void)f;
                CHECK(rr == 0 && m.hdr.size == 8,
                      "unknown request %u: connection still answers GET_FEATURES", unk[i]);
            }
            vuf_close(v);
            char what[80];
            snprintf(what, sizeof what, "unknown request %u", unk[i]);
            after(what);
        }
    }

    /* ---- EOF / stall in the middle of a message ---- */
    if (!fatal) {
        struct vuf *v = hopen(1);
        if (v) {
            struct vhost_user_hdr h = { VHOST_USER_SET_FEATURES, VHOST_USER_VERSION, 8 };
            vuf_write_raw(v, &h, 6, NULL, 0);
            vuf_close(v);
            after("EOF after 6 header bytes");
        }
    }
    if (!fatal) {
        struct vuf *v = hopen(1);
        if (v) {
            uint8_t buf[12 + 10] = { 0 };
            struct vhost_user_hdr h = { VHOST_USER_SET_MEM_TABLE, VHOST_USER_VERSION, 40 };
            memcpy(buf, &h, 12);
            vuf_write_raw(v, buf, sizeof buf, &memfd, 1);
            vuf_close(v);
            after("EOF after header + 10 of 40 payload bytes (with an fd)");
        }
    }
    if (!fatal) {
        struct vuf *v = hopen(1);
        if (v) {
            uint8_t buf[12 + 20] = { 0 };
            struct vhost_user_hdr h = { VHOST_USER_SET_VRING_ADDR, VHOST_USER_VERSION, 40 };
            memcpy(buf, &h, 12);
            vuf_write_raw(v, buf, sizeof buf, NULL, 0);
            after("half a SET_VRING_ADDR pending (connection left open)");
            vuf_close(v);
            after("EOF after half a SET_VRING_ADDR");
        }
    }

    /* ---- odd but not fatal ---- */
    if (!fatal) {
        struct vuf *v = hopen(0);
        if (v) {
            vuf_msg_send(v, VHOST_USER_GET_FEATURES, 0, NULL, 0, NULL, 0);
            vuf_msg_send(v, VHOST_USER_GET_FEATURES, 2 | VHOST_USER_REPLY_MASK, NULL, 0, NULL, 0);
            msleep(100);
            vuf_close(v);
            after("messages with version 0 / version 2 + REPLY flag");
        }
    }
    if (!fatal) {
        /* ring configured and kicked with no memory table at all */
        struct vuf *v = hopen(1);
        if (v) {
            struct vuf_ring_view rv;
            vuf_ring_view(v, 1, &rv);
            int kfd = eventfd(0, EFD_CLOEXEC), cfd = eventfd(0, EFD_CLOEXEC);
            st = (struct vhost_user_vring_state){ 1, 256 };
            vuf_msg_send(v, VHOST_USER_SET_VRING_NUM, VHOST_USER_VERSION, &st, 8, NULL, 0);
            va = (struct vhost_user_vring_addr){ .index = 1,
                .desc_user_addr = (uint64_t)(uintptr_t)rv.desc,
                .avail_user_addr = (uint64_t)(uintptr_t)rv.avail,
                .used_user_addr = (uint64_t)(uintptr_t)rv.used };
            vuf_msg_send(v, VHOST_USER_SET_VRING_ADDR, VHOST_USER_VERSION, &va, sizeof va, NULL, 0);
            u = 1;
            vuf_msg_send(v, VHOST_USER_SET_VRING_KICK, VHOST_USER_VERSION, &u, 8, &kfd, 1);
            vuf_msg_send(v, VHOST_USER_SET_VRING_CALL, VHOST_USER_VERSION, &u, 8, &cfd, 1);
            st.num = 1;
            vuf_msg_send(v, VHOST_USER_SET_VRING_ENABLE, VHOST_USER_VERSION, &st, 8, NULL, 0);
            rv.avail->idx = 5;
            uint64_t one = 1;
            if (write(kfd, &one, 8) != 8)
                note("kick failed");
            msleep(200);
            close(kfd);
            close(cfd);
            vuf_close(v);
            after("ring configured and kicked without a memory table");
        }
    }

    /* ---- a ring restarted with a base that is not the used index ---- */
    if (!fatal)
        stale_base(7);
    if (!fatal)
        stale_base(-3);

    /* ---- afterwards ---- */
    if (!fatal) {
        good_frontend_then_idle(&A, NULL, 100, 1500);
        long fd1 = proc_fd_count(D.pid);
        for (int i = 0; i < 20 && fd1 > fd0 + 2; i++) {
            msleep(100);
            fd1 = proc_fd_count(D.pid);
        }
        CHECK(fd1 >= 0 && fd1 <= fd0 + 2, "daemon fd count back near baseline: %ld -> %ld", fd0,
              fd1);
    }
    close(efd);
    close(efd2);
    close(memfd);
    tport_close(&A);
    tport_close(&B);
    return test_finish();
}
