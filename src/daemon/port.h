/*
 * port.h - ports: vhost-user ports (a guest NIC each) and the tap port.
 *
 * Owns: struct port, the static port table built from the configuration,
 * and per-port connection bookkeeping for the control plane.
 * Must not: parse vhost-user messages (vu_ctrl.c) or move frames
 * (fwd.c, switch.c, net.c).  Ports live for the whole run of the daemon, so
 * pointers to them (and to their queues) never dangle.
 */
#ifndef LWV_PORT_H
#define LWV_PORT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/un.h>

#include "device.h"
#include "vhost_user.h"

#define LWV_MAX_PORTS 64
#define PORT_NAME_MAX 32

enum port_type { PORT_VHOST, PORT_TAP };

/* A partially received vhost-user message. */
struct vu_conn {
    int fd;
    uint32_t have;
    struct vhost_user_msg msg;
    int fds[VHOST_USER_MAX_FDS];
    unsigned nfds;
};

struct tap_stats {
    uint64_t rx_packets, rx_bytes, rx_drops;   /* from the host into the switch */
    uint64_t tx_packets, tx_bytes, tx_drops;   /* from the switch to the host */
};

struct lswitch;

struct port {
    unsigned index;
    enum port_type type;
    struct lswitch *sw;          /* the switch this port is a port of */
    char name[PORT_NAME_MAX];
    /* vhost-user */
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    bool client;                 /* we connect to the frontend */
    unsigned queues;             /* max queue pairs */
    uint8_t mac[6];
    bool mac_set;
    bool antispoof;
    int sock_mode;               /* listening socket: permissions, owner, group */
    long sock_uid, sock_gid;     /* -1: unchanged */
    int listen_fd;
    struct vu_conn conn;
    uint64_t next_connect_ms;    /* client mode: when to retry */
    unsigned backoff_ms;
    uint64_t connects;           /* connections accepted or made */
    uint64_t policy;             /* packed struct policy; atomic */
    struct vdev dev;
    /* tap */
    int tap_fd;
    struct worker *tap_worker;
    struct tap_stats tap;
};

struct port_table {
    unsigned n;
    struct port *p[LWV_MAX_PORTS];
};

extern struct port_table ports;

const char *mac_str(const uint8_t mac[6], char buf[18]);
int mac_parse(const char *s, uint8_t mac[6]);

#endif
