/*
 * netns.c - see netns.h.
 */
#define _GNU_SOURCE
#include "netns.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pkt.h"
#include "systest.h"

int sh(const char *fmt, ...)
{
    char cmd[512], full[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    snprintf(full, sizeof full, "%s >/dev/null 2>&1", cmd);
    int st = system(full);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Deletes the namespaces prefix<pid>... whose pid is gone. */
static void remove_stale(const char *prefix)
{
    DIR *d = opendir("/run/netns");
    struct dirent *e;
    size_t n = strlen(prefix);
    while (d && (e = readdir(d))) {
        int pid;
        if (strncmp(e->d_name, prefix, n) == 0 && sscanf(e->d_name + n, "%d", &pid) == 1 &&
            kill(pid, 0) < 0 && errno == ESRCH)
            sh("ip netns del %s", e->d_name);
    }
    if (d)
        closedir(d);
}

const char *netns_veth(char *ns, char *root, const char *peer)
{
    if (sh("ip netns add %s", ns) != 0) {
        ns[0] = 0;
        root[0] = 0;
        return "cannot create a network namespace";
    }
    if (sh("ip link add %s type veth peer name %s netns %s", root, peer, ns) != 0) {
        root[0] = 0;
        return "no veth support";
    }
    sh("sysctl -qw net.ipv6.conf.%s.disable_ipv6=1", root);
    sh("ip netns exec %s sysctl -qw net.ipv6.conf.all.disable_ipv6=1", ns);
    sh("ip netns exec %s sysctl -qw net.ipv6.conf.default.disable_ipv6=1", ns);
    sh("ip netns exec %s sysctl -qw net.ipv6.conf.%s.disable_ipv6=1", ns, peer);
    if (sh("ip link set %s up", root) || sh("ip -n %s link set lo up", ns) ||
        sh("ip -n %s link set %s up", ns, peer))
        return "cannot configure the veth pair";
    return NULL;
}

void netns_veth_remove(char *ns, char *root)
{
    if (ns[0])
        sh("ip netns del %s", ns);
    ns[0] = 0;
    if (root[0])
        sh("ip link del %s", root);
    root[0] = 0;
}

const char *netns_for_test(const char *prefix, const char *tag, char ns[32], char root[IFNAMSIZ],
                           char peer[IFNAMSIZ], void (*cleanup)(void))
{
    int pid = (int)getpid();
    remove_stale(prefix);
    snprintf(ns, 32, "%s%d", prefix, pid);
    snprintf(root, IFNAMSIZ, "%s%da", tag, pid % 1000000);
    snprintf(peer, IFNAMSIZ, "%s%db", tag, pid % 1000000);
    atexit(cleanup);
    return netns_veth(ns, root, peer);
}

int netns_socket(const char *ns, int domain, int type, int proto)
{
    char path[128];
    snprintf(path, sizeof path, "/run/netns/%s", ns);
    int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    int nsfd = open(path, O_RDONLY | O_CLOEXEC);
    int s = -1;
    if (self >= 0 && nsfd >= 0 && setns(nsfd, CLONE_NEWNET) == 0) {
        s = socket(domain, type | SOCK_CLOEXEC, proto);
        if (setns(self, CLONE_NEWNET) < 0) {
            printf("FAIL - cannot return to the test's network namespace\n");
            exit(1);
        }
    }
    if (self >= 0)
        close(self);
    if (nsfd >= 0)
        close(nsfd);
    return s;
}

int netns_packet_socket(const char *ns, const char *ifname, uint16_t proto, int *ifindex)
{
    int s = netns_socket(ns, AF_PACKET, SOCK_RAW, htons(proto));
    if (s < 0)
        return -1;
    /* The index is the namespace's: asked through the socket, which is there. */
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", ifname);
    if (ioctl(s, SIOCGIFINDEX, &ifr) < 0) {
        close(s);
        return -1;
    }
    struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(proto),
                               .sll_ifindex = ifr.ifr_ifindex };
    if (bind(s, (struct sockaddr *)&sll, sizeof sll) < 0) {
        close(s);
        return -1;
    }
    if (ifindex)
        *ifindex = sll.sll_ifindex;
    return s;
}

ssize_t recv_until(int s, void *buf, size_t cap, double end)
{
    while (t_now() < end) {
        struct pollfd p = { .fd = s, .events = POLLIN };
        if (poll(&p, 1, (int)((end - t_now()) * 1000) + 1) <= 0)
            continue;
        ssize_t len = recv(s, buf, cap, MSG_DONTWAIT);
        if (len >= 0)
            return len;
    }
    return -1;
}

void capture_l4(int s, int ms, uint8_t proto, const uint8_t sip[4], uint16_t dport,
                struct l4_seen *seen)
{
    static uint8_t buf[65536];
    double end = t_now() + ms / 1000.0;
    ssize_t len;
    memset(seen, 0, sizeof *seen);
    while ((len = recv_until(s, buf, sizeof buf, end)) >= 0) {
        if (!is_l4_to(buf, (size_t)len, proto, sip, dport))
            continue;
        seen->n++;
        seen->payload += l4_payload(buf);
        if ((size_t)len > seen->longest)
            seen->longest = (size_t)len;
        seen->bad += !l4_sums_ok(buf + 14, (size_t)len - 14);
    }
}
