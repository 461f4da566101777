/*
 * config.c - see config.h.
 */
#include "config.h"

#include <errno.h>
#include <arpa/inet.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <limits.h>
#include <net/if.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fdb.h"
#include "log.h"
#include "vxlan.h"

static int fail(char *err, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
    return -1;
}

void config_defaults(struct config *c)
{
    memset(c, 0, sizeof(*c));
    c->workers = 1;
    c->log_level = LOG_INFO;
    c->policy.mode = POLICY_NOTIFY;
    c->ctl_mode = -1;
    c->ctl_gid = -1;
    c->idle_us = POLICY_DEFAULT_IDLE_US;
    c->fdb_age_s = FDB_DEFAULT_AGE_S;
    c->fdb_port_max = FDB_DEFAULT_PORT_MAX;
}

void config_usage(FILE *out)
{
    fprintf(out,
"Usage: lwvhostd [OPTIONS]\n"
"A vhost-user virtio-net backend: VM NICs (vhost-user ports) and host tap\n"
"interfaces joined by a learning L2 switch.\n"
"\n"
"Ports:\n"
"  --port NAME,path=SOCK[,queues=N][,client=on][,mac=MAC][,antispoof=on][,policy=P]\n"
"                 a vhost-user port. lwvhostd listens on SOCK (QEMU connects with\n"
"                 -chardev socket,path=SOCK); with client=on it connects to a\n"
"                 frontend listening on SOCK (QEMU: server=on) and reconnects with\n"
"                 backoff when it goes away. queues=N: up to N queue pairs (1-%d,\n"
"                 default 1). mac=MAC: the guest's MAC, known to the switch before\n"
"                 the guest sends anything. antispoof=on (with mac=): drop frames\n"
"                 the guest sends from any other source MAC. policy=P: this\n"
"                 port's policy. mode=0660, owner=USER, group=GROUP: the\n"
"                 socket's permissions (default 0660, our user and group), as\n"
"                 libvirt and QEMU expect (e.g. group=kvm).\n"
"  --tap IFNAME   a host tap port (created if absent, left down: bring it up with\n"
"                 'ip link set IFNAME up')\n"
"  --uplink NAME,ifname=IF[,mode=packet][,qdisc_bypass=on]\n"
"  --uplink NAME,ifname=IF,mode=xdp[,queue=N][,xdp_mode=auto|native|generic]\n"
"                 an uplink port: the switch attached to host interface IF (a\n"
"                 NIC, bond or veth) through a promiscuous AF_PACKET socket with\n"
"                 checksum/TSO metadata, or (mode=xdp) an AF_XDP socket on its\n"
"                 receive queue N (default 0) fed by an XDP program attached in\n"
"                 the driver (native) or the stack (generic; auto: native first)\n"
"  --vxlan NAME,local=IP,remote=IP[,remote=IP...],vni=N[,dstport=4789][,learn=on][,mtu=N]\n"
"                 a VXLAN port (RFC 7348): frames to and from remote VTEPs in UDP\n"
"                 over IPv4 or IPv6 (all of a port's addresses of one family),\n"
"                 received on local=IP:dstport. remote= up to %d times (frames\n"
"                 to unknown or group MACs go to every remote); learn=on: accept\n"
"                 and add remotes not listed. mtu=N: the inner MTU it carries\n"
"                 (default %u: the underlay's 1500 less 50; over IPv6 %u: less\n"
"                 70); give guests host_mtu=N on their QEMU NIC\n"
"Policies (when a worker serves a queue and when it sleeps):\n"
"  --policy P     default for every port (default notify), changeable at run\n"
"                 time with 'lwvhostctl policy PORT|all P':\n"
"                 notify          kick-driven, like vhost-net\n"
"                 poll            busy polling, like DPDK: lowest latency, a core\n"
"                 interval:USEC   passes every USEC with guest kicks off and one\n"
"                                 interrupt per pass; back to kicks when idle\n"
"                 adaptive[:USEC] picks notify, interval or poll from the measured\n"
"                                 load within a latency budget (default 50)\n"
"  --idle-us N    idle time before an interval queue returns to kicks (1000)\n"
"Switch (MAC table; 'lwvhostctl fdb' lists it):\n"
"  --fdb-age S    forget a learned MAC after S seconds without a frame from it\n"
"                 (default %u); a port's mac= is a static entry and never ages\n"
"  --fdb-max-per-port N  learned MACs per port (default %u); past it a port's\n"
"                 new addresses are not learned (frames to them are flooded)\n"
"Daemon:\n"
"  --ctl PATH     control socket for lwvhostctl (mode 0600; --ctl-mode MODE and\n"
"                 --ctl-group GROUP to share it)\n"
"  --workers N    worker threads serving queues (1-64, default 1)\n"
"  --state-dir DIR  keep packed rings' positions in DIR/PORT.rings, so a\n"
"                 restarted daemon resumes them where this one stopped (QEMU\n"
"                 cannot say: a packed ring has no index in guest memory);\n"
"                 the service uses /run/lwvhost\n"
"  --log-level L  error, warn, info (default) or debug\n"
"  --config FILE  read options from FILE: one per line, without the dashes\n"
"                 (e.g. 'port vm1,path=/run/vm1.sock'), '#' starts a comment\n"
"  -h, --help     show this help;  -V, --version  show the version\n"
"\n"
"With --ctl it may start with no port: 'lwvhostctl port add', 'tap add',\n"
"'uplink add' and 'vxlan add' add them at run time, 'lwvhostctl save' writes\n"
"them back to the --config file.\n"
"Runs in the foreground and logs to stderr; under systemd (Type=notify) it\n"
"reports readiness itself. SIGHUP re-reads the --config file and applies only\n"
"the difference. SIGTERM or SIGINT shuts it down: frontends are disconnected\n"
"and the sockets removed.\n"
"Example:\n"
"  lwvhostd --port vm1,path=/tmp/vm1.sock --port vm2,path=/tmp/vm2.sock \\\n"
"           --tap lwv0 --ctl /tmp/lwvhost.ctl\n", LWV_MAX_QUEUE_PAIRS, VXLAN_MAX_REMOTES,
            VXLAN_DEFAULT_MTU, VXLAN_DEFAULT_MTU6, FDB_DEFAULT_AGE_S, FDB_DEFAULT_PORT_MAX);
}

static int valid_name(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '_' || *s == '.'))
            return 0;
    return 1;
}

static int parse_uint(const char *s, unsigned lo, unsigned hi, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || *s == '-' || v < lo || v > hi)
        return -1;
    *out = (unsigned)v;
    return 0;
}

/* on/off, as QEMU spells switches; true/false and 1/0 as well. */
static int parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = { "on", "true", "1", "yes" };
    static const char *const no[] = { "off", "false", "0", "no" };
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

/* Octal permission bits, at most 0777. */
static int parse_mode(const char *s, int *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 8);
    if (errno || end == s || *end || *s == '-' || v > 0777)
        return -1;
    *out = (int)v;
    return 0;
}

/* A user or group by name or number. */
static int parse_id(const char *s, bool group, long *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (!errno && end != s && !*end && *s != '-' && v < 0x7fffffff) {
        *out = (long)v;
        return 0;
    }
    if (group) {
        struct group *g = getgrnam(s);
        if (!g)
            return -1;
        *out = (long)g->gr_gid;
    } else {
        struct passwd *pw = getpwnam(s);
        if (!pw)
            return -1;
        *out = (long)pw->pw_uid;
    }
    return 0;
}

static struct port_cfg *new_port(struct config *c, char *err, size_t len)
{
    if (c->nports >= LWV_MAX_PORTS) {
        fail(err, len, "too many ports (max %d)", LWV_MAX_PORTS);
        return NULL;
    }
    struct port_cfg *p = &c->ports[c->nports];
    memset(p, 0, sizeof(*p));
    p->sock_mode = -1;
    p->sock_uid = p->sock_gid = -1;
    return p;
}

/* The NAME that starts a port spec (--port, --uplink): spec is copied into
 * buf (bufsz bytes) for strtok_r (*save goes on with the keys after it) and
 * the checked name into p->name.  -1 with err set: too long, no name, or a
 * bad one; usage is the spec's shape for the message. */
static int take_port_name(struct port_cfg *p, char *buf, size_t bufsz, const char *spec,
                          const char *opt, const char *usage, char **save, char *err,
                          size_t len)
{
    if (strlen(spec) >= bufsz)
        return fail(err, len, "%s value too long", opt);
    strcpy(buf, spec);
    char *name = strtok_r(buf, ",", save);
    if (!name || strchr(name, '='))
        return fail(err, len, "%s '%s': expected %s", opt, spec, usage);
    if (strlen(name) >= sizeof(p->name) || !valid_name(name))
        return fail(err, len, "%s: bad name '%s' (letters, digits, '-', '_', '.'; "
                    "at most %zu characters)", opt, name, sizeof(p->name) - 1);
    strcpy(p->name, name);
    return 0;
}

int config_add_port(struct config *c, const char *spec, char *err, size_t len)
{
    struct port_cfg *p = new_port(c, err, len);
    if (!p)
        return -1;
    char buf[512];
    char *save = NULL;
    if (take_port_name(p, buf, sizeof(buf), spec, "--port", "NAME,path=SOCK[,...]", &save, err,
                       len) < 0)
        return -1;
    const char *name = p->name;
    p->type = PORT_VHOST;
    p->queues = 1;
    for (char *kv; (kv = strtok_r(NULL, ",", &save));) {
        char *eq = strchr(kv, '=');
        if (!eq)
            return fail(err, len, "--port %s: '%s' is not key=value", name, kv);
        *eq = 0;
        const char *v = eq + 1;
        if (strcmp(kv, "path") == 0) {
            if (!*v || strlen(v) >= sizeof(p->path))
                return fail(err, len, "--port %s: socket path empty or too long (max %zu)", name,
                            sizeof(p->path) - 1);
            strcpy(p->path, v);
        } else if (strcmp(kv, "queues") == 0) {
            if (parse_uint(v, 1, LWV_MAX_QUEUE_PAIRS, &p->queues) < 0)
                return fail(err, len, "--port %s: queues=%s is not 1..%d", name, v,
                            LWV_MAX_QUEUE_PAIRS);
        } else if (strcmp(kv, "client") == 0) {
            if (parse_bool(v, &p->client) < 0)
                return fail(err, len, "--port %s: client=%s is not on or off", name, v);
        } else if (strcmp(kv, "mode") == 0) {
            if (parse_mode(v, &p->sock_mode) < 0)
                return fail(err, len, "--port %s: mode=%s is not octal permissions (e.g. 0660)",
                            name, v);
        } else if (strcmp(kv, "owner") == 0) {
            if (parse_id(v, false, &p->sock_uid) < 0)
                return fail(err, len, "--port %s: owner=%s: no such user", name, v);
        } else if (strcmp(kv, "group") == 0) {
            if (parse_id(v, true, &p->sock_gid) < 0)
                return fail(err, len, "--port %s: group=%s: no such group", name, v);
        } else if (strcmp(kv, "antispoof") == 0) {
            if (parse_bool(v, &p->antispoof) < 0)
                return fail(err, len, "--port %s: antispoof=%s is not on or off", name, v);
        } else if (strcmp(kv, "policy") == 0) {
            char perr[160];
            if (policy_parse(v, &p->policy, perr, sizeof(perr)) < 0)
                return fail(err, len, "--port %s: %s", name, perr);
            p->policy_set = true;
        } else if (strcmp(kv, "mac") == 0) {
            if (mac_parse(v, p->mac) < 0 || (p->mac[0] & 1))
                return fail(err, len, "--port %s: mac=%s is not a unicast MAC address", name, v);
            p->mac_set = true;
        } else {
            return fail(err, len, "--port %s: unknown key '%s' (path, queues, client, mac, "
                        "antispoof, policy, mode, owner, group)",
                        name, kv);
        }
    }
    if (!p->path[0])
        return fail(err, len, "--port %s: path=SOCK is required", name);
    if (p->client && (p->sock_mode >= 0 || p->sock_uid >= 0 || p->sock_gid >= 0))
        return fail(err, len, "--port %s: mode/owner/group apply to sockets lwvhostd creates; "
                    "with client=on the frontend creates it", name);
    if (p->antispoof && !p->mac_set)
        return fail(err, len, "--port %s: antispoof=on needs mac=MAC (the guest's address)", name);
    c->nports++;
    return 0;
}

/* The xdp_mode= values, in enum uplink_xdp_mode's order. */
static const char *const xdp_modes[] = { "auto", "native", "generic" };

/* One key=value of an --uplink value into p; name is the port's.  *seen
 * collects the keys that only one mode takes (checked by uplink_check). */
static int uplink_key(struct port_cfg *p, const char *name, char *kv, unsigned *seen, char *err,
                      size_t len)
{
    char *eq = strchr(kv, '=');
    if (!eq)
        return fail(err, len, "--uplink %s: '%s' is not key=value", name, kv);
    *eq = 0;
    const char *v = eq + 1;
    if (strcmp(kv, "ifname") == 0) {
        if (!*v || strlen(v) >= IFNAMSIZ || !valid_name(v))
            return fail(err, len, "--uplink %s: bad interface name '%s' (at most %d characters)",
                        name, v, IFNAMSIZ - 1);
        strcpy(p->ifname, v);
    } else if (strcmp(kv, "mode") == 0) {
        if (strcmp(v, "packet") != 0 && strcmp(v, "xdp") != 0)
            return fail(err, len, "--uplink %s: mode=%s is not packet or xdp", name, v);
        p->xdp = strcmp(v, "xdp") == 0;
    } else if (strcmp(kv, "qdisc_bypass") == 0) {
        if (parse_bool(v, &p->qdisc_bypass) < 0)
            return fail(err, len, "--uplink %s: qdisc_bypass=%s is not on or off", name, v);
        *seen |= 1u;
    } else if (strcmp(kv, "queue") == 0) {
        uint32_t q;
        if (parse_uint(v, 0, 65535, &q) < 0)
            return fail(err, len, "--uplink %s: queue=%s is not a queue number 0..65535", name, v);
        p->xdp_queue = q;
        *seen |= 2u;
    } else if (strcmp(kv, "xdp_mode") == 0) {
        unsigned m = 0;
        while (m < 3 && strcmp(v, xdp_modes[m]) != 0)
            m++;
        if (m == 3)
            return fail(err, len, "--uplink %s: xdp_mode=%s is not auto, native or generic",
                        name, v);
        p->xdp_mode = (uint8_t)m;
        *seen |= 4u;
    } else {
        return fail(err, len, "--uplink %s: unknown key '%s' (ifname, mode, qdisc_bypass, queue, "
                    "xdp_mode)", name, kv);
    }
    return 0;
}

/* The keys of the other mode are refused, whatever their order. */
static int uplink_check(const struct port_cfg *p, unsigned seen, char *err, size_t len)
{
    if (p->xdp && (seen & 1u))
        return fail(err, len, "--uplink %s: qdisc_bypass= is for mode=packet (AF_XDP sends "
                    "without the queueing discipline anyway)", p->name);
    if (!p->xdp && (seen & 6u))
        return fail(err, len, "--uplink %s: %s= needs mode=xdp", p->name,
                    (seen & 2u) ? "queue" : "xdp_mode");
    return 0;
}

int config_add_uplink(struct config *c, const char *spec, char *err, size_t len)
{
    struct port_cfg *p = new_port(c, err, len);
    if (!p)
        return -1;
    char buf[256];
    char *save = NULL;
    unsigned seen = 0;
    if (take_port_name(p, buf, sizeof(buf), spec, "--uplink", "NAME,ifname=IF[,mode=packet|xdp]",
                       &save, err, len) < 0)
        return -1;
    const char *name = p->name;
    p->type = PORT_UPLINK;
    for (char *kv; (kv = strtok_r(NULL, ",", &save));)
        if (uplink_key(p, name, kv, &seen, err, len) < 0)
            return -1;
    if (!p->ifname[0])
        return fail(err, len, "--uplink %s: ifname=IF is required (the interface to attach to)",
                    name);
    if (uplink_check(p, seen, err, len) < 0)
        return -1;
    c->nports++;
    return 0;
}

/* True when address a (16-byte form) is a multicast group. */
static bool vxlan_ip_multicast(const struct in6_addr *a)
{
    return vxlan_ip_is_v4(a) ? a->s6_addr[12] >> 4 == 0xe : IN6_IS_ADDR_MULTICAST(a);
}

/* An address for key (local or remote) of --vxlan port name, IPv4 or
 * IPv6, in 16-byte form (IPv4 v4-mapped; ::ffff:a.b.c.d is IPv4): a
 * unicast one (not unspecified, broadcast, multicast or IPv6 link-local). */
static int vxlan_ip(const char *name, const char *key, const char *v, struct in6_addr *out,
                    char *err, size_t len)
{
    int family = vxlan_ip_parse(v, out);
    if (family < 0)
        return fail(err, len, "--vxlan %s: %s=%s is not an IPv4 or IPv6 address", name, key, v);
    if (vxlan_ip_multicast(out))
        return fail(err, len, "--vxlan %s: %s=%s: multicast groups are not supported (list "
                    "the remotes, or use learn=on)", name, key, v);
    if (family == AF_INET6 && IN6_IS_ADDR_LINKLOCAL(out))
        return fail(err, len, "--vxlan %s: %s=%s: link-local addresses are not supported "
                    "(they need an interface: give a global or unique local address)", name,
                    key, v);
    if (!vxlan_ip_unicast(out))
        return fail(err, len, "--vxlan %s: %s=%s is not a unicast address", name, key, v);
    return 0;
}

/* The family of address a (16-byte form). */
static int ip_family(const struct in6_addr *a)
{
    return vxlan_ip_is_v4(a) ? AF_INET : AF_INET6;
}

/* Adds remote ip to p, refusing a duplicate and one too many. */
static int vxlan_add_remote(struct port_cfg *p, const char *name, const char *v, char *err,
                            size_t len)
{
    struct in6_addr ip;
    if (vxlan_ip(name, "remote", v, &ip, err, len) < 0)
        return -1;
    for (unsigned i = 0; i < p->vx.nremotes; i++)
        if (memcmp(&p->vx.remote[i], &ip, sizeof(ip)) == 0)
            return fail(err, len, "--vxlan %s: remote=%s is given twice", name, v);
    if (p->vx.nremotes == VXLAN_MAX_REMOTES)
        return fail(err, len, "--vxlan %s: more than %d remotes", name, VXLAN_MAX_REMOTES);
    p->vx.remote[p->vx.nremotes++] = ip;
    return 0;
}

/* One key=value of a --vxlan value into p; name is the port's.  *seen
 * gets a bit for local (1) and vni (2), which are required. */
static int vxlan_key(struct port_cfg *p, const char *name, char *kv, unsigned *seen, char *err,
                     size_t len)
{
    char *eq = strchr(kv, '=');
    if (!eq)
        return fail(err, len, "--vxlan %s: '%s' is not key=value", name, kv);
    *eq = 0;
    const char *v = eq + 1;
    uint32_t n;
    if (strcmp(kv, "local") == 0) {
        *seen |= 1;
        if (vxlan_ip(name, "local", v, &p->vx.local, err, len) < 0)
            return -1;
        p->vx.family = ip_family(&p->vx.local);
        return 0;
    }
    if (strcmp(kv, "remote") == 0)
        return vxlan_add_remote(p, name, v, err, len);
    if (strcmp(kv, "vni") == 0) {
        if (parse_uint(v, 0, VXLAN_VNI_MAX, &p->vx.vni) < 0)
            return fail(err, len, "--vxlan %s: vni=%s is not 0..%u", name, v, VXLAN_VNI_MAX);
        *seen |= 2;
    } else if (strcmp(kv, "dstport") == 0) {
        if (parse_uint(v, 1, 65535, &n) < 0)
            return fail(err, len, "--vxlan %s: dstport=%s is not 1..65535", name, v);
        p->vx.dstport = (uint16_t)n;
    } else if (strcmp(kv, "learn") == 0) {
        if (parse_bool(v, &p->vx.learn) < 0)
            return fail(err, len, "--vxlan %s: learn=%s is not on or off", name, v);
    } else if (strcmp(kv, "mtu") == 0) {
        if (parse_uint(v, 68, VXLAN_MTU_MAX, &p->vx.mtu) < 0)
            return fail(err, len, "--vxlan %s: mtu=%s is not 68..%u", name, v, VXLAN_MTU_MAX);
    } else {
        return fail(err, len, "--vxlan %s: unknown key '%s' (local, remote, vni, dstport, learn, "
                    "mtu)", name, kv);
    }
    return 0;
}

int config_add_vxlan(struct config *c, const char *spec, char *err, size_t len)
{
    struct port_cfg *p = new_port(c, err, len);
    if (!p)
        return -1;
    char buf[CONFIG_VALUE_MAX];
    char *save = NULL;
    unsigned seen = 0;
    if (take_port_name(p, buf, sizeof(buf), spec, "--vxlan", "NAME,local=IP,remote=IP,vni=N",
                       &save, err, len) < 0)
        return -1;
    const char *name = p->name;
    p->type = PORT_VXLAN;
    p->vx.dstport = VXLAN_DEFAULT_PORT;
    p->vx.mtu = 0;   /* the default of local's family, once it is known */
    for (char *kv; (kv = strtok_r(NULL, ",", &save));)
        if (vxlan_key(p, name, kv, &seen, err, len) < 0)
            return -1;
    if (!(seen & 1))
        return fail(err, len, "--vxlan %s: local=IP is required (the address it sends from "
                    "and listens on)", name);
    if (!(seen & 2))
        return fail(err, len, "--vxlan %s: vni=N is required (0..%u)", name, VXLAN_VNI_MAX);
    if (p->vx.nremotes == 0 && !p->vx.learn)
        return fail(err, len, "--vxlan %s: no remote=IP and learn=off: it would never send "
                    "or accept anything", name);
    for (unsigned i = 0; i < p->vx.nremotes; i++) {
        char a[INET6_ADDRSTRLEN], l[INET6_ADDRSTRLEN];
        const struct in6_addr *r = &p->vx.remote[i];
        if (ip_family(r) != p->vx.family)
            return fail(err, len, "--vxlan %s: remote=%s is %s but local=%s is %s: a port's "
                        "addresses are all IPv4 or all IPv6", name, vxlan_ip_str(r, a, sizeof(a)),
                        p->vx.family == AF_INET ? "IPv6" : "IPv4",
                        vxlan_ip_str(&p->vx.local, l, sizeof(l)),
                        p->vx.family == AF_INET ? "IPv4" : "IPv6");
        if (memcmp(r, &p->vx.local, sizeof(*r)) == 0)
            return fail(err, len, "--vxlan %s: a remote is its own local address", name);
    }
    if (!p->vx.mtu)
        p->vx.mtu = VXLAN_DEFAULT_MTU_OF(p->vx.family);
    c->nports++;
    return 0;
}

int config_add_tap(struct config *c, const char *ifname, char *err, size_t len)
{
    struct port_cfg *p = new_port(c, err, len);
    if (!p)
        return -1;
    if (!*ifname || strlen(ifname) >= IFNAMSIZ || !valid_name(ifname))
        return fail(err, len, "--tap: bad interface name '%s'", ifname);
    strcpy(p->name, ifname);
    p->type = PORT_TAP;
    c->nports++;
    return 0;
}

static int set_option(struct config *c, const char *key, const char *val, char *err, size_t len,
                      int depth);
static int read_file(struct config *c, const char *path, char *err, size_t len, int depth);
static int global_index(const char *key);

/* Parses "key value" lines from a writable buffer; label names the source
 * in error messages. */
static int parse_lines(struct config *c, char *text, const char *label, char *err, size_t len,
                       int depth)
{
    char inner[256];
    unsigned lineno = 0;
    for (char *line = text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        lineno++;
        char *hash = strchr(line, '#');
        if (hash)
            *hash = 0;
        char key[64], val[CONFIG_VALUE_MAX], extra[2];
        int k = sscanf(line, "%63s %" CONFIG_VALUE_FMT "s %1s", key, val, extra);
        if (k <= 0)
            continue;
        if (k != 2)
            return fail(err, len, "%s:%u: expected 'key value'", label, lineno);
        if (set_option(c, key, val, inner, sizeof(inner), depth + 1) < 0)
            return fail(err, len, "%s:%u: %s", label, lineno, inner);
    }
    return 0;
}

#define CONFIG_FILE_MAX (1u << 20)

static int read_file(struct config *c, const char *path, char *err, size_t len, int depth)
{
    if (depth > 4)
        return fail(err, len, "--config files nest too deeply");
    FILE *f = fopen(path, "r");
    if (!f)
        return fail(err, len, "cannot read config file %s: %s", path, strerror(errno));
    char *text = malloc(CONFIG_FILE_MAX + 1);
    if (!text) {
        fclose(f);
        return fail(err, len, "out of memory reading %s", path);
    }
    size_t n = fread(text, 1, CONFIG_FILE_MAX + 1, f);
    fclose(f);
    int rc;
    if (n > CONFIG_FILE_MAX) {
        rc = fail(err, len, "config file %s is larger than 1 MiB", path);
    } else {
        text[n] = 0;
        rc = parse_lines(c, text, path, err, len, depth);
    }
    free(text);
    return rc;
}

/* The options that take a whole number in a range. */
struct number_opt {
    const char *key;
    uint32_t lo, hi;
    size_t field;       /* offsetof a uint32_t in struct config */
    const char *unit;   /* for the error message */
};

static const struct number_opt number_opts[] = {
    { "workers", 1, 64, offsetof(struct config, workers), "" },
    { "idle-us", 1, POLICY_MAX_ARG_US, offsetof(struct config, idle_us), " microseconds" },
    { "fdb-age", 1, 1000000, offsetof(struct config, fdb_age_s), " seconds" },
    { "fdb-max-per-port", 1, FDB_SLOTS, offsetof(struct config, fdb_port_max), " addresses" },
};

static int set_option(struct config *c, const char *key, const char *val, char *err, size_t len,
                      int depth)
{
    int g = global_index(key);
    if (g >= 0 && depth == 0)
        c->cmdline_keys |= 1u << g;
    if (strcmp(key, "port") == 0 || strcmp(key, "tap") == 0 || strcmp(key, "uplink") == 0 ||
        strcmp(key, "vxlan") == 0) {
        int rc = key[0] == 'p'   ? config_add_port(c, val, err, len)
                 : key[0] == 't' ? config_add_tap(c, val, err, len)
                 : key[0] == 'u' ? config_add_uplink(c, val, err, len)
                                 : config_add_vxlan(c, val, err, len);
        if (rc == 0)
            c->ports[c->nports - 1].cmdline = depth == 0;
        return rc;
    }
    for (size_t i = 0; i < sizeof(number_opts) / sizeof(number_opts[0]); i++) {
        const struct number_opt *o = &number_opts[i];
        if (strcmp(key, o->key) != 0)
            continue;
        if (parse_uint(val, o->lo, o->hi, (uint32_t *)((char *)c + o->field)) < 0)
            return fail(err, len, "--%s %s is not %u..%u%s", key, val, o->lo, o->hi, o->unit);
        return 0;
    }
    if (strcmp(key, "ctl") == 0) {
        if (!*val || strlen(val) >= sizeof(c->ctl_path))
            return fail(err, len, "--ctl path empty or too long");
        strcpy(c->ctl_path, val);
        return 0;
    }
    if (strcmp(key, "state-dir") == 0) {
        struct stat st;
        if (!*val || strlen(val) >= sizeof(c->state_dir) - 64)
            return fail(err, len, "--state-dir path empty or too long");
        if (stat(val, &st) < 0 || !S_ISDIR(st.st_mode))
            return fail(err, len, "--state-dir %s is not a directory", val);
        strcpy(c->state_dir, val);
        return 0;
    }
    if (strcmp(key, "ctl-mode") == 0) {
        if (parse_mode(val, &c->ctl_mode) < 0)
            return fail(err, len, "--ctl-mode %s is not octal permissions (e.g. 0660)", val);
        return 0;
    }
    if (strcmp(key, "ctl-group") == 0) {
        if (parse_id(val, true, &c->ctl_gid) < 0)
            return fail(err, len, "--ctl-group %s: no such group", val);
        return 0;
    }
    if (strcmp(key, "log-level") == 0) {
        int l = log_level_parse(val);
        if (l < 0)
            return fail(err, len, "--log-level %s is not error, warn, info or debug", val);
        c->log_level = l;
        return 0;
    }
    if (strcmp(key, "policy") == 0) {
        char perr[160];
        if (policy_parse(val, &c->policy, perr, sizeof(perr)) < 0)
            return fail(err, len, "--policy: %s", perr);
        return 0;
    }
    if (strcmp(key, "config") == 0) {
        /* The first file named on the command line is the one a reload
         * re-reads and "lwvhostctl save" rewrites. */
        if (depth == 0 && !c->config_path[0] && strlen(val) < sizeof(c->config_path))
            strcpy(c->config_path, val);
        return read_file(c, val, err, len, depth);
    }
    return fail(err, len, "unknown option '%s'", key);
}

int config_parse_text(struct config *c, const char *text, char *err, size_t len)
{
    char *copy = strdup(text);
    if (!copy)
        return fail(err, len, "out of memory");
    int rc = parse_lines(c, copy, "config", err, len, 0);
    free(copy);
    return rc;
}

int config_validate(struct config *c, char *err, size_t len)
{
    if (c->nports == 0 && !c->ctl_path[0])
        return fail(err, len, "nothing to serve: give a --port, --tap, --uplink or --vxlan, or a "
                    "--ctl socket to add ports at run time (see --help)");
    for (unsigned i = 0; i < c->nports; i++)
        for (unsigned j = i + 1; j < c->nports; j++) {
            if (strcmp(c->ports[i].name, c->ports[j].name) == 0)
                return fail(err, len, "two ports are named '%s'", c->ports[i].name);
            if (c->ports[i].type == PORT_VHOST && c->ports[j].type == PORT_VHOST &&
                strcmp(c->ports[i].path, c->ports[j].path) == 0)
                return fail(err, len, "ports '%s' and '%s' use the same socket %s",
                            c->ports[i].name, c->ports[j].name, c->ports[i].path);
            if (c->ports[i].type == PORT_UPLINK && c->ports[j].type == PORT_UPLINK &&
                strcmp(c->ports[i].ifname, c->ports[j].ifname) == 0)
                return fail(err, len, "uplinks '%s' and '%s' use the same interface %s",
                            c->ports[i].name, c->ports[j].name, c->ports[i].ifname);
            if (c->ports[i].type == PORT_VXLAN && c->ports[j].type == PORT_VXLAN &&
                memcmp(&c->ports[i].vx.local, &c->ports[j].vx.local,
                       sizeof(c->ports[i].vx.local)) == 0 &&
                c->ports[i].vx.dstport == c->ports[j].vx.dstport)
                return fail(err, len, "vxlan ports '%s' and '%s' listen on the same address and "
                            "port", c->ports[i].name, c->ports[j].name);
            if (c->ports[i].mac_set && c->ports[j].mac_set &&
                memcmp(c->ports[i].mac, c->ports[j].mac, 6) == 0)
                return fail(err, len, "ports '%s' and '%s' have the same mac=",
                            c->ports[i].name, c->ports[j].name);
        }
    return 0;
}

enum config_result config_parse_args(struct config *c, int argc, char **argv, char *err,
                                     size_t len)
{
    /* Every option with a value is also a config file key (set_option);
     * getopt_long only finds it (val 0: the key is opts[idx].name). */
    static const char *const keys[] = {
        "port", "tap", "uplink", "vxlan", "ctl", "ctl-mode", "ctl-group", "workers", "log-level",
        "config", "policy", "idle-us", "fdb-age", "fdb-max-per-port", "state-dir",
    };
    enum { NKEYS = sizeof(keys) / sizeof(keys[0]) };
    struct option opts[NKEYS + 3];
    for (unsigned k = 0; k < NKEYS; k++)
        opts[k] = (struct option){ keys[k], required_argument, NULL, 0 };
    opts[NKEYS] = (struct option){ "help", no_argument, NULL, 'h' };
    opts[NKEYS + 1] = (struct option){ "version", no_argument, NULL, 'V' };
    opts[NKEYS + 2] = (struct option){ NULL, 0, NULL, 0 };
    /* 0, not 1: glibc then also forgets a cluster of short options that
     * an earlier parse stopped in (it would resume inside that argv). */
    optind = 0;
    opterr = 0;
    int o, idx = 0;
    while ((o = getopt_long(argc, argv, ":hV", opts, &idx)) != -1) {
        switch (o) {
        case 'h':
            config_usage(stdout);
            return CONFIG_EXIT;
        case 'V':
            printf("lwvhostd %s\n", LWV_VERSION);
            return CONFIG_EXIT;
        case ':':
            fail(err, len, "option %s needs a value (see --help)", argv[optind - 1]);
            return CONFIG_ERROR;
        case '?':
            fail(err, len, "unknown option %s (see --help)", argv[optind - 1]);
            return CONFIG_ERROR;
        case 0:
            if (set_option(c, opts[idx].name, optarg, err, len, 0) < 0)
                return CONFIG_ERROR;
            break;
        default:
            fail(err, len, "option %s not understood", argv[optind - 1]);
            return CONFIG_ERROR;
        }
    }
    if (optind < argc) {
        fail(err, len, "unexpected argument '%s' (see --help)", argv[optind]);
        return CONFIG_ERROR;
    }
    return config_validate(c, err, len) < 0 ? CONFIG_ERROR : CONFIG_OK;
}

int config_parse_port(const char *key, const char *spec, struct port_cfg *out, char *err,
                      size_t errlen)
{
    static struct config scratch;   /* control thread only */
    config_defaults(&scratch);
    int rc = strcmp(key, "tap") == 0      ? config_add_tap(&scratch, spec, err, errlen)
             : strcmp(key, "uplink") == 0 ? config_add_uplink(&scratch, spec, err, errlen)
             : strcmp(key, "vxlan") == 0  ? config_add_vxlan(&scratch, spec, err, errlen)
                                          : config_add_port(&scratch, spec, err, errlen);
    if (rc == 0)
        *out = scratch.ports[0];
    return rc;
}

/* The config-file line of VXLAN port p (defaults left out). */
static void format_vxlan(const struct port_cfg *p, char *buf, size_t len)
{
    char a[INET6_ADDRSTRLEN];
    size_t n = (size_t)snprintf(buf, len, "vxlan %s,local=%s", p->name,
                                vxlan_ip_str(&p->vx.local, a, sizeof(a)));
    for (unsigned i = 0; i < p->vx.nremotes && n < len; i++)
        n += (size_t)snprintf(buf + n, len - n, ",remote=%s",
                              vxlan_ip_str(&p->vx.remote[i], a, sizeof(a)));
    if (n < len)
        n += (size_t)snprintf(buf + n, len - n, ",vni=%u", p->vx.vni);
    if (n < len && p->vx.dstport != VXLAN_DEFAULT_PORT)
        n += (size_t)snprintf(buf + n, len - n, ",dstport=%u", p->vx.dstport);
    if (n < len && p->vx.learn)
        n += (size_t)snprintf(buf + n, len - n, ",learn=on");
    if (n < len && p->vx.mtu != VXLAN_DEFAULT_MTU_OF(p->vx.family))
        snprintf(buf + n, len - n, ",mtu=%u", p->vx.mtu);
}

/* An uplink's config-file line: the keys that differ from the defaults. */
static void format_uplink(const struct port_cfg *p, char *buf, size_t len)
{
    size_t n = (size_t)snprintf(buf, len, "uplink %s,ifname=%s", p->name, p->ifname);
    if (n < len && p->qdisc_bypass)
        n += (size_t)snprintf(buf + n, len - n, ",qdisc_bypass=on");
    if (n < len && p->xdp)
        n += (size_t)snprintf(buf + n, len - n, ",mode=xdp");
    if (n < len && p->xdp && p->xdp_queue)
        n += (size_t)snprintf(buf + n, len - n, ",queue=%u", p->xdp_queue);
    if (n < len && p->xdp && p->xdp_mode != UPLINK_XDP_AUTO && p->xdp_mode < 3)
        snprintf(buf + n, len - n, ",xdp_mode=%s", xdp_modes[p->xdp_mode]);
}

void config_format_port(const struct port_cfg *p, const struct policy *live, char *buf,
                        size_t len)
{
    if (p->type == PORT_TAP) {
        snprintf(buf, len, "tap %s", p->name);
        return;
    }
    if (p->type == PORT_UPLINK) {   /* served like a tap: no policy of its own */
        format_uplink(p, buf, len);
        return;
    }
    if (p->type == PORT_VXLAN) {
        format_vxlan(p, buf, len);
        return;
    }
    size_t n = (size_t)snprintf(buf, len, "port %s,path=%s", p->name, p->path);
    char m[18], pol[64];
    if (n < len && p->queues > 1)
        n += (size_t)snprintf(buf + n, len - n, ",queues=%u", p->queues);
    if (n < len && p->client)
        n += (size_t)snprintf(buf + n, len - n, ",client=on");
    if (n < len && p->mac_set)
        n += (size_t)snprintf(buf + n, len - n, ",mac=%s", mac_str(p->mac, m));
    if (n < len && p->antispoof)
        n += (size_t)snprintf(buf + n, len - n, ",antispoof=on");
    if (n < len && live)
        n += (size_t)snprintf(buf + n, len - n, ",policy=%s", policy_str(live, pol, sizeof(pol)));
    if (n < len && p->sock_mode >= 0)
        n += (size_t)snprintf(buf + n, len - n, ",mode=%04o", p->sock_mode);
    if (n < len && p->sock_uid >= 0)
        n += (size_t)snprintf(buf + n, len - n, ",owner=%ld", p->sock_uid);
    if (n < len && p->sock_gid >= 0)
        snprintf(buf + n, len - n, ",group=%ld", p->sock_gid);
}

/* The daemon's own options, in the order a written file lists them. */
static const char *const global_keys[] = {
    "ctl", "ctl-mode", "ctl-group", "workers", "log-level", "policy", "idle-us", "fdb-age",
    "fdb-max-per-port", "state-dir",
};
#define NGLOBALS (sizeof(global_keys) / sizeof(global_keys[0]))

static int global_index(const char *key)
{
    for (unsigned i = 0; i < NGLOBALS; i++)
        if (strcmp(key, global_keys[i]) == 0)
            return (int)i;
    return -1;
}

/* The value of global option i as a config file writes it, or "" when it
 * has none (no control socket, say). */
static void global_value(const struct config *c, unsigned i, char *buf, size_t len)
{
    buf[0] = 0;
    switch (i) {
    case 0:
        snprintf(buf, len, "%s", c->ctl_path);
        break;
    case 1:
        if (c->ctl_mode >= 0)
            snprintf(buf, len, "%04o", c->ctl_mode);
        break;
    case 2:
        if (c->ctl_gid >= 0)
            snprintf(buf, len, "%ld", c->ctl_gid);
        break;
    case 3:
        snprintf(buf, len, "%u", c->workers);
        break;
    case 4:
        snprintf(buf, len, "%s", log_level_name(c->log_level));
        break;
    case 5:
        policy_str(&c->policy, buf, len);
        break;
    case 6:
        snprintf(buf, len, "%u", c->idle_us);
        break;
    case 7:
        snprintf(buf, len, "%u", c->fdb_age_s);
        break;
    case 8:
        snprintf(buf, len, "%u", c->fdb_port_max);
        break;
    case 9:
        snprintf(buf, len, "%s", c->state_dir);
        break;
    }
}

int config_write(FILE *f, const struct config *c, bool with_cmdline)
{
    char val[512], line[CONFIG_VALUE_MAX + 64];
    fprintf(f, "# lwvhostd.conf(5): one option per line, as lwvhostd's long options\n"
               "# without the dashes.  Written by lwvhostd %s (lwvhostctl save).\n", LWV_VERSION);
    for (unsigned i = 0; i < NGLOBALS; i++) {
        /* What the command line sets it sets again at the next start; in
         * the file it would override a later change to the command line. */
        if (!with_cmdline && (c->cmdline_keys & (1u << i)))
            continue;
        global_value(c, i, val, sizeof(val));
        if (val[0])
            fprintf(f, "%s %s\n", global_keys[i], val);
    }
    for (unsigned i = 0; i < c->nports; i++) {
        const struct port_cfg *p = &c->ports[i];
        if (p->cmdline && !with_cmdline)
            continue;
        config_format_port(p, p->policy_set ? &p->policy : NULL, line, sizeof(line));
        fprintf(f, "%s\n", line);
    }
    return ferror(f) ? -1 : 0;
}
