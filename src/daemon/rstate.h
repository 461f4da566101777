/*
 * rstate.h - where a packed ring was, kept in a file so that a daemon
 * restarted after a crash (or a restart: the socket closes the same way)
 * resumes each ring where the last one stopped.
 *
 * A frontend cannot tell us: a split ring's used index lives in guest
 * memory and QEMU restores a ring from it, but a packed ring has no index
 * there, and QEMU then sends the base it last learnt (at the ring's start,
 * or its last GET_VRING_BASE).  So each port with a packed ring has a small
 * file, STATE_DIR/PORT.rings, mapped shared: per ring the address and size
 * it had, the base the frontend gave at its start, and our position (the
 * used position with its wrap counter; nothing is in flight between
 * passes, so that is also where the next chain starts).  The virtqueue
 * layer keeps it in a struct vq_journal as it writes used descriptors:
 * each batch is saved there before it goes into the ring, so a daemon
 * killed half-way through one is followed by one that writes the batch
 * again and goes on after it (vq_pk_resume).
 *
 * Owns: the files and the rule for when a saved position is taken: the
 * ring has the same address and size and the frontend gives the same base
 * as when the saved position's ring started (QEMU resending what it had,
 * not a new ring).  GET_VRING_BASE forgets a ring: the frontend then knows.
 * Must not: touch the rings themselves.  Control thread only, except for
 * the position word, written by whoever serves the ring.
 */
#ifndef LWV_RSTATE_H
#define LWV_RSTATE_H

#include <stdbool.h>
#include <stdint.h>

struct rstate_slot;
struct vq_journal;

struct rstate {
    struct rstate_slot *slot;   /* NULL: no file (none configured or failed) */
    bool tried;                 /* opened once already (or failed: logged) */
};

/* The directory for the files ("" or NULL: none, packed rings then resume
 * where the frontend says).  Called once at start. */
void rstate_set_dir(const char *dir);
const char *rstate_dir(void);

/* A packed ring of port starts (SET_VRING_KICK): true if the ring is the
 * one a previous daemon saved and the frontend only resends the base it
 * gave that daemon (resume from *j, vq_pk_resume); else false (the ring
 * runs from base, and *j is reset to it).  *j: the ring's journal, NULL
 * without a file. */
bool rstate_ring_start(struct rstate *rs, const char *port, unsigned ring, uint64_t desc_uva,
                       uint32_t num, uint32_t base, struct vq_journal **j);
/* GET_VRING_BASE: the frontend knows the ring's state now. */
void rstate_ring_forget(struct rstate *rs, unsigned ring);
/* Unmaps the file (kept on disk for the next daemon). */
void rstate_close(struct rstate *rs);

#endif
