/*
 * rstate.c - see rstate.h.
 */
#include "rstate.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "device.h"
#include "log.h"

#define RSTATE_MAGIC 0x6c777672u   /* "rvwl" */

/* One ring; the file is LWV_MAX_VQS of them. */
struct rstate_slot {
    uint32_t magic;     /* RSTATE_MAGIC while the rest is valid */
    uint32_t num;
    uint64_t desc_uva;
    uint32_t start;     /* the base the frontend gave when the ring started */
    uint32_t reserved[3];
    struct vq_journal j;
};

#define FILE_SIZE (LWV_MAX_VQS * sizeof(struct rstate_slot))

static char state_dir[256];

void rstate_set_dir(const char *dir)
{
    snprintf(state_dir, sizeof(state_dir), "%s", dir ? dir : "");
}

const char *rstate_dir(void)
{
    return state_dir;
}

/* Maps STATE_DIR/PORT.rings, creating it; logs and leaves slot NULL on
 * failure (the rings then run from the frontend's bases). */
static void open_file(struct rstate *rs, const char *port)
{
    char path[400];
    rs->tried = true;
    if (!state_dir[0])
        return;
    snprintf(path, sizeof(path), "%s/%s.rings", state_dir, port);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
        ((size_t)st.st_size < FILE_SIZE && ftruncate(fd, FILE_SIZE) < 0)) {
        log_warn("port %s: cannot use %s (%s): its packed rings will resume where the frontend "
                 "says after a restart", port, path, strerror(errno ? errno : EINVAL));
        if (fd >= 0)
            close(fd);
        return;
    }
    void *m = mmap(NULL, FILE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (m == MAP_FAILED) {
        log_warn("port %s: cannot map %s: %s", port, path, strerror(errno));
        return;
    }
    rs->slot = m;
}

bool rstate_ring_start(struct rstate *rs, const char *port, unsigned ring, uint64_t desc_uva,
                       uint32_t num, uint32_t base, struct vq_journal **j)
{
    *j = NULL;
    if (!rs->tried)
        open_file(rs, port);
    if (!rs->slot || ring >= LWV_MAX_VQS)
        return false;
    struct rstate_slot *s = &rs->slot[ring];
    *j = &s->j;
    /* The file is only as trustworthy as its directory: both positions it
     * names are checked against the ring size like any base (and each
     * entry of a batch by vq_pk_resume). */
    uint32_t w = __atomic_load_n(&s->j.word, __ATOMIC_RELAXED);
    if (s->magic == RSTATE_MAGIC && s->desc_uva == desc_uva && s->num == num &&
        s->start == base && (w & 0x7fff) < num && ((w >> 16) & 0x7fff) < num)
        return true;
    s->magic = 0;
    s->desc_uva = desc_uva;
    s->num = num;
    s->start = base;
    s->j.count = 0;
    __atomic_store_n(&s->j.word, (base & 0xffff) * 0x10001u, __ATOMIC_RELAXED);
    s->magic = RSTATE_MAGIC;
    return false;
}

void rstate_ring_forget(struct rstate *rs, unsigned ring)
{
    if (rs->slot && ring < LWV_MAX_VQS)
        rs->slot[ring].magic = 0;
}

void rstate_close(struct rstate *rs)
{
    if (rs->slot)
        munmap(rs->slot, FILE_SIZE);
    rs->slot = NULL;
    rs->tried = false;
}
