/*
 * netns.h - network namespaces for system tests that need a real kernel at
 * the other end: shell commands (ip(8), sysctl, ethtool), a namespace
 * joined by a veth pair, sockets made inside a namespace, and reading
 * frames at such sockets until a deadline.
 *
 * Owns: the namespaces and veth pairs a test names (made and removed
 * here, through ip(8)), and reading the sockets a test gives it.
 * Must not: decide what a test skips on (callers do, with the reasons
 * returned), or keep any state of its own.
 *
 * Needs root; namespaces are the named ones of ip-netns(8) (/run/netns).
 */
#ifndef LWV_TEST_NETNS_H
#define LWV_TEST_NETNS_H

#include <net/if.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Runs the shell command printf-formatted from fmt, output discarded; its exit status (or -1). */
int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Makes namespace ns and a veth pair, root here and peer in ns, all up with
 * IPv6 off (no router solicitations or DAD among test frames), ns's loopback
 * up; NULL, or why not.  ns or root is emptied when it was not made. */
const char *netns_veth(char *ns, char *root, const char *peer);
/* Deletes namespace ns and veth root (each if named) and empties both names. */
void netns_veth_remove(char *ns, char *root);
/* A test's own namespace: deletes those prefix<pid>... of earlier runs
 * (their pid gone: an alarm's _exit skips atexit), names ns prefix<pid>
 * and the veth pair tag<pid % 10^6>a (root, here) and ...b (peer, in ns),
 * registers cleanup with atexit, then makes them (netns_veth); NULL, or why not. */
const char *netns_for_test(const char *prefix, const char *tag, char ns[32], char root[IFNAMSIZ],
                           char peer[IFNAMSIZ], void (*cleanup)(void));

/* A socket (SOCK_CLOEXEC) made in namespace ns (it stays there); -1 on failure. */
int netns_socket(const char *ns, int domain, int type, int proto);
/* A packet socket in ns bound to its interface ifname for protocol proto
 * (host order; ETH_P_ALL: what it sends too; 0: for sending only); the
 * interface's index in *ifindex (may be NULL).  -1 on failure. */
int netns_packet_socket(const char *ns, const char *ifname, uint16_t proto, int *ifindex);

/* The next frame at socket s into buf, waiting until t_now() reaches end; its length, or -1. */
ssize_t recv_until(int s, void *buf, size_t cap, double end);

/* What capture_l4() saw: frames, those with wrong sums, the L4 payload bytes
 * they carried, the longest frame. */
struct l4_seen {
    unsigned n, bad;
    size_t payload, longest;
};
/* Reads packet socket s for ms, counting in *seen (zeroed first) the IPv4
 * frames of protocol proto (6 TCP, 17 UDP) from sip to port dport, their
 * sums checked. */
void capture_l4(int s, int ms, uint8_t proto, const uint8_t sip[4], uint16_t dport,
                struct l4_seen *seen);

#endif
