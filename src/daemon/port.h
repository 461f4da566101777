/*
 * port.h - ports: vhost-user ports (a guest NIC each), the tap port, the
 * uplink port (a host interface through a packet or AF_XDP socket, uplink.h) and the
 * VXLAN port (a tunnel to remote VTEPs over UDP, vxlan.h).
 *
 * Owns: struct port, the port table, adding and removing ports at any time
 * (from the configuration, the control socket or a reload), their listening
 * sockets, client-mode connects and the frontend connections' place in the
 * event loop; it has tap.c, uplink.c and vxlan.c open and close the host
 * ports.
 * The table's slots are read by workers without a lock: a port is
 * published fully built (release store, acquire load: port_at) and freed
 * only after its slot is cleared and a grace period has passed
 * (workers_commit), so a pointer a worker loaded stays valid for the rest
 * of its pass.  Everything else here is the control thread's.
 * Must not: parse vhost-user messages (vu_ctrl.c) or move frames
 * (fwd.c, switch.c, net.c).
 */
#ifndef LWV_PORT_H
#define LWV_PORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/un.h>

#include "device.h"
#include "vhost_user.h"

#define LWV_MAX_PORTS 64
#define PORT_NAME_MAX 32

enum port_type { PORT_VHOST, PORT_TAP, PORT_UPLINK, PORT_VXLAN };

/* Remote VTEPs one VXLAN port sends to: configured and learned together. */
#define VXLAN_MAX_REMOTES 64

/* A VXLAN port's options (--vxlan).  Addresses are 16 bytes, network
 * order: an IPv6 address, or an IPv4 one in its v4-mapped form
 * (::ffff:a.b.c.d); a port's are all of one family. */
struct vxlan_cfg {
    int family;                            /* AF_INET or AF_INET6: the underlay's */
    struct in6_addr local;                 /* bound, and the source of every datagram */
    struct in6_addr remote[VXLAN_MAX_REMOTES];
    unsigned nremotes;
    uint32_t vni;                          /* 0..2^24-1 */
    uint16_t dstport;                      /* UDP port we listen on and send to */
    bool learn;                            /* accept (and add) remotes not configured */
    uint32_t mtu;                          /* inner MTU: the frames it carries */
};

/* Where an uplink's XDP program attaches (mode=xdp, xdp_mode=). */
enum uplink_xdp_mode {
    UPLINK_XDP_AUTO,       /* native, else generic */
    UPLINK_XDP_NATIVE,     /* in the driver only */
    UPLINK_XDP_GENERIC,    /* in the stack (skb mode) only */
};

/* A port's options as --port / --tap / --uplink / --vxlan / "port add" give them. */
struct port_cfg {
    char name[PORT_NAME_MAX];
    enum port_type type;
    char path[108];
    bool client;
    unsigned queues;
    uint8_t mac[6];
    bool mac_set;
    bool antispoof;            /* drop frames whose source MAC is not mac */
    int sock_mode;             /* listening socket permissions, -1: default 0660 */
    long sock_uid, sock_gid;   /* owner and group, -1: unchanged */
    bool policy_set;
    struct policy policy;
    bool cmdline;              /* given on lwvhostd's command line, not in a file */
    char ifname[IFNAMSIZ];     /* uplink: the interface it is attached to */
    bool qdisc_bypass;         /* uplink: frames sent skip the interface's qdisc */
    bool xdp;                  /* uplink: mode=xdp (AF_XDP), else mode=packet (AF_PACKET) */
    uint8_t xdp_mode;          /* uplink, mode=xdp: enum uplink_xdp_mode */
    unsigned xdp_queue;        /* uplink, mode=xdp: the interface's receive queue */
    struct vxlan_cfg vx;       /* vxlan */
};

/* A partially received vhost-user message. */
struct vu_conn {
    int fd;
    uint32_t have;
    struct vhost_user_msg msg;
    int fds[VHOST_USER_MAX_FDS];
    unsigned nfds;
};

/* A tap's, an uplink's or a VXLAN port's counters. */
struct tap_stats {
    uint64_t rx_packets, rx_bytes, rx_drops;   /* from the host into the switch */
    uint64_t tx_packets, tx_bytes, tx_drops;   /* from the switch to the host */
};

struct lswitch;

struct loop_watch;
struct uplink;
struct vxlan;

struct port {
    unsigned index;              /* its slot in the table */
    enum port_type type;
    struct lswitch *sw;          /* the switch this port is a port of */
    char name[PORT_NAME_MAX];
    struct port_cfg cfg;         /* as added (path, client, socket mode...) */
    bool from_config;            /* comes from the configuration (a reload may change it) */
    unsigned queues;             /* max queue pairs */
    uint8_t mac[6];
    bool mac_set;
    bool antispoof;
    /* vhost-user: control thread only */
    int listen_fd;
    bool bound;                  /* we created the socket file (removed with the port) */
    struct loop_watch *listen_watch, *conn_watch;
    struct vu_conn conn;
    uint64_t next_connect_ms;    /* client mode: when to retry */
    unsigned backoff_ms;
    uint64_t connects;           /* connections accepted or made */
    uint64_t policy;             /* packed struct policy; atomic */
    struct vdev dev;
    /* tap, uplink and vxlan: the fd its worker polls (the tap, the packet
     * or AF_XDP socket, the VXLAN port's receiving UDP socket) */
    int tap_fd;
    struct worker *tap_worker;
    bool tap_pending;            /* its worker only: frames may be waiting */
    bool tap_error;              /* its worker only: the fd reported an error */
    struct tap_stats tap;
    struct uplink *uplink;       /* uplink: the socket's ring and state (uplink.c) */
    struct vxlan *vxlan;         /* vxlan: its sockets, remotes and tables (vxlan.c) */
};

/* The word lwvhostctl and the logs use for a port's type. */
static inline const char *port_type_name(enum port_type t)
{
    return t == PORT_VHOST    ? "vhost"
           : t == PORT_TAP    ? "tap"
           : t == PORT_UPLINK ? "uplink"
                              : "vxlan";
}

/* True for the ports a worker reads from a host fd: a tap, an uplink or a
 * VXLAN port. */
static inline bool port_is_host(const struct port *p)
{
    return p->type == PORT_TAP || p->type == PORT_UPLINK || p->type == PORT_VXLAN;
}

struct port_table {
    unsigned n;
    struct port *p[LWV_MAX_PORTS];
};

extern struct port_table ports;

/* The port in slot i (< ports_bound()), or NULL: a free slot. */
static inline struct port *port_at(unsigned i)
{
    return __atomic_load_n(&ports.p[i], __ATOMIC_ACQUIRE);
}

/* One past the highest slot ever used: loops over the table stop here. */
static inline unsigned ports_bound(void)
{
    return __atomic_load_n(&ports.n, __ATOMIC_ACQUIRE);
}

const char *mac_str(const uint8_t mac[6], char buf[18]);
int mac_parse(const char *s, uint8_t mac[6]);

/* The rest: control thread only. */
void ports_init(struct lswitch *sw);
/* The switch every port belongs to. */
struct lswitch *ports_switch(void);
/* Adds a port (a listening socket, a client that connects, or a tap) with
 * policy dflt unless pc has its own.  On failure err says why and nothing
 * changed. */
int port_add(const struct port_cfg *pc, const struct policy *dflt, char *err, size_t errlen);
/* Disconnects p's frontend (why goes to the log), removes its socket or
 * tap, forgets its MAC entries and frees it, once no worker can reach it. */
void port_del(struct port *p, const char *why);
void ports_remove_all(const char *why);
struct port *port_find(const char *name);
/* Warns (the log) about every connected guest whose MTU is larger than a
 * VXLAN port's: frames over that port's MTU are dropped there. */
void ports_check_mtu(void);
/* The same for guest port g alone (its MTU was just set: NET_SET_MTU). */
void port_check_mtu(const struct port *g);
/* Client-mode connects due by now; returns ms until the next (-1: none). */
int64_t ports_tick(uint64_t now);
/* Removes the socket file at path left by a process that died (nothing
 * accepts on it), so it can be bound again; refuses, with a reason in err
 * naming what, when a live process serves it or the file is not a socket. */
int socket_clear_stale(const char *what, const char *path, char *err, size_t errlen);
/* Gives a socket we created its permissions and owner (-1: unchanged). */
int socket_set_perms(const char *path, int mode, long uid, long gid, char *err, size_t errlen);

#endif
