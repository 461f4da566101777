/*
 * test_config.c - option and config-file parsing: valid forms, and the
 * clear refusals a user gets for bad ones.
 */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "config.h"
#include "log.h"
#include "vxlan.h"

static struct config c;
static char err[512];

static int args(const char *a0, ...)
{
    char *argv[32];
    int argc = 0;
    va_list ap;
    va_start(ap, a0);
    argv[argc++] = (char *)"lwvhostd";
    for (const char *a = a0; a && argc < 31; a = va_arg(ap, const char *))
        argv[argc++] = (char *)a;
    va_end(ap);
    argv[argc] = NULL;
    config_defaults(&c);
    err[0] = 0;
    return config_parse_args(&c, argc, argv, err, sizeof(err));
}

/* True when a (a VXLAN address, 16-byte form) is the text address t. */
static bool ip_is(const struct in6_addr *a, const char *t)
{
    char buf[INET6_ADDRSTRLEN];
    return strcmp(vxlan_ip_str(a, buf, sizeof(buf)), t) == 0;
}

static void expect_error(int rc, const char *needle, const char *what)
{
    CHECK(rc == CONFIG_ERROR && strstr(err, needle), "%s: error mentioning '%s' (rc %d, '%s')",
          what, needle, rc, err);
}

/* --uplink NAME,ifname=IF[,mode=packet|xdp][,qdisc_bypass=on][,queue=N]
 * [,xdp_mode=M]: good and bad forms, the config file key, the
 * running-configuration line. */
static void uplink_cases(void)
{
    CHECK(args("--uplink", "up0,ifname=eth0", NULL) == CONFIG_OK && c.nports == 1 &&
              c.ports[0].type == PORT_UPLINK && strcmp(c.ports[0].name, "up0") == 0 &&
              strcmp(c.ports[0].ifname, "eth0") == 0 && !c.ports[0].qdisc_bypass,
          "--uplink up0,ifname=eth0: %s", err);
    CHECK(args("--uplink", "up0,mode=packet,ifname=enp1s0f1,qdisc_bypass=on", "--port",
               "vm1,path=/a", NULL) == CONFIG_OK && c.nports == 2 && c.ports[0].qdisc_bypass &&
              strcmp(c.ports[0].ifname, "enp1s0f1") == 0 && c.ports[1].type == PORT_VHOST,
          "mode=packet and qdisc_bypass=on, beside a vhost port: %s", err);
    expect_error(args("--uplink", "up0", NULL), "ifname=IF is required", "uplink without ifname");
    expect_error(args("--uplink", "up0,mode=packet", NULL), "ifname=IF is required",
                 "uplink with a mode but no ifname");
    CHECK(args("--uplink", "up0,ifname=eth0,mode=xdp", NULL) == CONFIG_OK && c.ports[0].xdp &&
              c.ports[0].xdp_queue == 0 && c.ports[0].xdp_mode == UPLINK_XDP_AUTO,
          "mode=xdp: queue 0, xdp_mode auto: %s", err);
    CHECK(args("--uplink", "up0,xdp_mode=generic,queue=3,ifname=eth0,mode=xdp", NULL) ==
                  CONFIG_OK && c.ports[0].xdp && c.ports[0].xdp_queue == 3 &&
              c.ports[0].xdp_mode == UPLINK_XDP_GENERIC,
          "xdp keys before mode=xdp: %s", err);
    CHECK(args("--uplink", "up0,ifname=eth0,mode=xdp,xdp_mode=native", NULL) == CONFIG_OK &&
              c.ports[0].xdp_mode == UPLINK_XDP_NATIVE,
          "xdp_mode=native: %s", err);
    CHECK(args("--uplink", "up0,ifname=eth0,mode=xdp,mode=packet", NULL) == CONFIG_OK &&
              !c.ports[0].xdp, "the last mode= counts: %s", err);
    expect_error(args("--uplink", "up0,ifname=eth0,queue=1", NULL), "queue= needs mode=xdp",
                 "queue= with mode=packet");
    expect_error(args("--uplink", "up0,ifname=eth0,xdp_mode=native", NULL),
                 "xdp_mode= needs mode=xdp", "xdp_mode= with mode=packet");
    expect_error(args("--uplink", "up0,ifname=eth0,mode=xdp,qdisc_bypass=on", NULL),
                 "qdisc_bypass= is for mode=packet", "qdisc_bypass= with mode=xdp");
    expect_error(args("--uplink", "up0,ifname=eth0,mode=xdp,xdp_mode=hw", NULL),
                 "xdp_mode=hw is not auto, native or generic", "xdp_mode=hw");
    expect_error(args("--uplink", "up0,ifname=eth0,mode=xdp,queue=65536", NULL),
                 "queue=65536", "queue out of range");
    expect_error(args("--uplink", "up0,ifname=eth0,mode=xdp,queue=-1", NULL), "queue=-1",
                 "negative queue");
    expect_error(args("--uplink", "up0,ifname=eth0,mode=dpdk", NULL), "mode=dpdk",
                 "unknown mode");
    expect_error(args("--uplink", "up0,ifname=eth0,path=/x", NULL), "unknown key 'path'",
                 "a --port key on an uplink");
    expect_error(args("--uplink", "up0,ifname=eth0,speed", NULL), "not key=value",
                 "a key without a value");
    expect_error(args("--uplink", "up0,ifname=", NULL), "bad interface name", "empty ifname");
    expect_error(args("--uplink", "up0,ifname=this-name-is-too-long", NULL),
                 "bad interface name", "ifname longer than IFNAMSIZ - 1");
    expect_error(args("--uplink", "up0,ifname=eth 0", NULL), "bad interface name",
                 "space in ifname");
    expect_error(args("--uplink", "ifname=eth0", NULL), "expected NAME", "no name");
    expect_error(args("--uplink", "up/0,ifname=eth0", NULL), "bad name", "slash in the name");
    expect_error(args("--uplink", "up0,ifname=eth0,qdisc_bypass=maybe", NULL),
                 "qdisc_bypass=maybe", "qdisc_bypass value");
    expect_error(args("--uplink", "", NULL), "--uplink", "empty value");
    expect_error(args("--uplink", "a,ifname=eth0", "--uplink", "b,ifname=eth0", NULL),
                 "same interface eth0", "two uplinks on one interface");
    expect_error(args("--uplink", "a,ifname=eth0", "--port", "a,path=/x", NULL),
                 "two ports are named 'a'", "an uplink and a port with one name");
    expect_error(args("--uplink", NULL), "needs a value", "--uplink without a value");

    /* The config file key, and the line the running configuration writes. */
    config_defaults(&c);
    CHECK(config_parse_text(&c, "uplink up0,ifname=eth1,qdisc_bypass=on  # the NIC\n", err,
                            sizeof(err)) == 0 && c.nports == 1 && c.ports[0].type == PORT_UPLINK,
          "config file key 'uplink': %s", err);
    char line[256];
    config_format_port(&c.ports[0], NULL, line, sizeof(line));
    CHECK(strcmp(line, "uplink up0,ifname=eth1,qdisc_bypass=on") == 0, "written back as '%s'",
          line);
    config_defaults(&c);
    CHECK(config_parse_text(&c, "uplink up0,ifname=eth1,mode=xdp,queue=2,xdp_mode=generic\n",
                            err, sizeof(err)) == 0 && c.nports == 1 && c.ports[0].xdp,
          "mode=xdp in a file: %s", err);
    config_format_port(&c.ports[0], NULL, line, sizeof(line));
    CHECK(strcmp(line, "uplink up0,ifname=eth1,mode=xdp,queue=2,xdp_mode=generic") == 0,
          "written back as '%s'", line);
    config_defaults(&c);
    CHECK(config_parse_text(&c, "uplink up0,ifname=eth1,mode=xdp\n", err, sizeof(err)) == 0,
          "mode=xdp alone in a file: %s", err);
    config_format_port(&c.ports[0], NULL, line, sizeof(line));
    CHECK(strcmp(line, "uplink up0,ifname=eth1,mode=xdp") == 0,
          "written back without the defaults as '%s'", line);
    config_defaults(&c);
    CHECK(config_parse_text(&c, "uplink up0,ifname=eth1,mode=xdp,qdisc_bypass=on\n", err,
                            sizeof(err)) < 0 && strstr(err, "config:1") &&
              strstr(err, "mode=packet"),
          "a refused uplink in a file names the line: %s", err);
    struct port_cfg pc;
    CHECK(config_parse_port("uplink", "up9,ifname=veth9", &pc, err, sizeof(err)) == 0 &&
              pc.type == PORT_UPLINK && strcmp(pc.ifname, "veth9") == 0,
          "'uplink add' specs parse as --uplink: %s", err);
    CHECK(config_parse_port("uplink", "up9", &pc, err, sizeof(err)) < 0 &&
              strstr(err, "ifname=IF is required"),
          "'uplink add' without ifname refused: %s", err);
}

/* --vxlan NAME,local=IP,remote=IP[,...],vni=N[,dstport=P][,learn=on][,mtu=N]:
 * good forms with their defaults, every refusal, the config file key and
 * the line written back (with 64 remotes: longer than the old 511-byte
 * limit of a config-file value). */
static void vxlan_cases(void)
{
    CHECK(args("--vxlan", "vx0,local=192.0.2.1,remote=192.0.2.2,vni=42", NULL) == CONFIG_OK &&
              c.nports == 1 && c.ports[0].type == PORT_VXLAN && c.ports[0].vx.vni == 42 &&
              c.ports[0].vx.dstport == 4789 && c.ports[0].vx.mtu == 1450 &&
              !c.ports[0].vx.learn && c.ports[0].vx.nremotes == 1 &&
              c.ports[0].vx.family == AF_INET && ip_is(&c.ports[0].vx.local, "192.0.2.1") &&
              ip_is(&c.ports[0].vx.remote[0], "192.0.2.2"),
          "--vxlan with defaults (dstport 4789, mtu 1450, learn off): %s", err);
    CHECK(args("--vxlan", "vx0,local=10.0.0.1,remote=10.0.0.2,remote=10.0.0.3,vni=16777215,"
               "dstport=8472,learn=on,mtu=8950", NULL) == CONFIG_OK &&
              c.ports[0].vx.nremotes == 2 && c.ports[0].vx.vni == 16777215 &&
              c.ports[0].vx.dstport == 8472 && c.ports[0].vx.learn && c.ports[0].vx.mtu == 8950,
          "--vxlan with every key: %s", err);
    CHECK(args("--vxlan", "vx0,local=10.0.0.1,vni=0,learn=on", NULL) == CONFIG_OK &&
              c.ports[0].vx.nremotes == 0 && c.ports[0].vx.vni == 0,
          "vni=0 and no remote with learn=on: %s", err);
    expect_error(args("--vxlan", "vx0,local=10.0.0.1,vni=1", NULL), "no remote=IP and learn=off",
                 "no remote and learn off");
    CHECK(args("--vxlan", "vx0,local=10.0.0.1,remote=10.0.0.2,vni=1,learn=off", NULL) ==
              CONFIG_OK && !c.ports[0].vx.learn,
          "learn=off spelled out, with a remote: %s", err);
    expect_error(args("--vxlan", "vx0,local=10.0.0.1,remote=10.0.0.2,vni=16777216", NULL),
                 "vni=16777216 is not 0..16777215", "vni out of range");
    expect_error(args("--vxlan", "vx0,local=10.0.0.1,remote=10.0.0.2,vni=-1", NULL),
                 "vni=-1 is not", "negative vni");
    expect_error(args("--vxlan", "vx0,local=10.0.0.1,remote=10.0.0.2,vni=x", NULL),
                 "vni=x is not", "vni not a number");
    expect_error(args("--vxlan", "vx0,local=10.0.0.1,remote=10.0.0.2", NULL), "vni=N is required",
                 "no vni");
    expect_error(args("--vxlan", "vx0,remote=10.0.0.2,vni=1", NULL), "local=IP is required",
                 "no local");
    expect_error(args("--vxlan", "vx0,local=10.0.0.300,remote=10.0.0.2,vni=1", NULL),
                 "local=10.0.0.300 is not an IPv4 or IPv6 address", "bad local address");
    expect_error(args("--vxlan", "vx0,local=10.0.0.1,remote=host.example,vni=1", NULL),
                 "remote=host.example is not an IPv4 or IPv6 address", "a host name as remote");

    /* IPv6: the default MTU is 70 bytes less than the underlay's 1500. */
    CHECK(args("--vxlan", "vx6,local=2001:db8::1,remote=2001:db8::2,remote=fd00:1::7,vni=42",
               NULL) == CONFIG_OK &&
              c.ports[0].vx.family == AF_INET6 && c.ports[0].vx.mtu == 1430 &&
              c.ports[0].vx.nremotes == 2 && ip_is(&c.ports[0].vx.local, "2001:db8::1") &&
              ip_is(&c.ports[0].vx.remote[0], "2001:db8::2") &&
              ip_is(&c.ports[0].vx.remote[1], "fd00:1::7"),
          "--vxlan over IPv6 (a global and a unique local remote): mtu 1430: %s", err);
    CHECK(args("--vxlan", "vx6,local=2001:DB8:0:0::1,remote=2001:db8::2,vni=42,mtu=1450",
               NULL) == CONFIG_OK && c.ports[0].vx.mtu == 1450 &&
              ip_is(&c.ports[0].vx.local, "2001:db8::1"),
          "an IPv6 address in another spelling, mtu=1450 given: %s", err);
    CHECK(args("--vxlan", "vx6,local=::1,learn=on,vni=42", NULL) == CONFIG_OK &&
              c.ports[0].vx.family == AF_INET6 && c.ports[0].vx.nremotes == 0,
          "local=::1 with learn=on and no remote: %s", err);
    expect_error(args("--vxlan", "vx0,local=10.0.0.1,remote=2001:db8::2,vni=1", NULL),
                 "remote=2001:db8::2 is IPv6 but local=10.0.0.1 is IPv4",
                 "an IPv6 remote on an IPv4 port");
    expect_error(args("--vxlan", "vx0,remote=10.0.0.2,local=2001:db8::1,vni=1", NULL),
                 "remote=10.0.0.2 is IPv4 but local=2001:db8::1 is IPv6",
                 "an IPv4 remote (given first) on an IPv6 port");
    expect_error(args("--vxlan", "vx0,local=2001:db8::1,remote=2001:db8::2,remote=10.0.0.2,"
                      "vni=1", NULL),
                 "all IPv4 or all IPv6", "a mix of remotes");
    /* ::ffff:a.b.c.d is the IPv4 host a.b.c.d. */
    CHECK(args("--vxlan", "vx0,local=::ffff:10.0.0.1,remote=10.0.0.2,remote=::ffff:10.0.0.3,"
               "vni=1", NULL) == CONFIG_OK &&
              c.ports[0].vx.family == AF_INET && c.ports[0].vx.mtu == 1450 &&
              ip_is(&c.ports[0].vx.local, "10.0.0.1") &&
              ip_is(&c.ports[0].vx.remote[1], "10.0.0.3"),
          "v4-mapped addresses are the IPv4 ones they map: an IPv4 port: %s", err);
    expect_error(args("--vxlan", "vx0,local=10.0.0.1,remote=::ffff:10.0.0.1,vni=1", NULL),
                 "its own local address", "a v4-mapped remote equal to local");
    expect_error(args("--vxlan", "vx0,local=2001:db8::1,remote=::ffff:10.0.0.2,vni=1", NULL),
                 "is IPv4 but local=2001:db8::1 is IPv6", "a v4-mapped remote on an IPv6 port");
    expect_error(args("--vxlan", "vx0,local=2001:db8::1,remote=2001:db8::2,remote=2001:db8:0::2,"
                      "vni=1", NULL),
                 "is given twice", "one IPv6 remote in two spellings");
    expect_error(args("--vxlan", "vx0,local=2001:db8::1,remote=ff02::1,vni=1", NULL),
                 "multicast groups are not supported", "an IPv6 multicast remote");
    expect_error(args("--vxlan", "vx0,local=::,remote=2001:db8::2,vni=1", NULL),
                 "not a unicast address", "local ::");
    expect_error(args("--vxlan", "vx0,local=fe80::1,remote=fe80::2,vni=1", NULL),
                 "link-local addresses are not supported", "link-local addresses");
    expect_error(args("--vxlan", "vx0,local=2001:db8::1,remote=2001:db8::1,vni=1", NULL),
                 "its own local address", "an IPv6 remote equal to local");
    expect_error(args("--vxlan", "vx0,local=2001:db8::1::2,remote=2001:db8::3,vni=1", NULL),
                 "local=2001:db8::1::2 is not an IPv4 or IPv6 address", "a bad IPv6 address");
    expect_error(args("--vxlan", "a,local=2001:db8::1,remote=2001:db8::2,vni=1", "--vxlan",
                      "b,local=2001:db8::1,remote=2001:db8::3,vni=2", NULL),
                 "listen on the same address and port", "two IPv6 ports on one address:port");
    CHECK(args("--vxlan", "a,local=10.0.0.1,remote=10.0.0.2,vni=1", "--vxlan",
               "b,local=2001:db8::1,remote=2001:db8::3,vni=2", NULL) == CONFIG_OK,
          "an IPv4 and an IPv6 port on one UDP port: %s", err);
    expect_error(args("--vxlan", "vx0,local=10.0.0.1,remote=239.1.1.1,vni=1", NULL),
                 "multicast groups are not supported", "multicast remote");
    expect_error(args("--vxlan", "vx0,local=0.0.0.0,remote=10.0.0.2,vni=1", NULL),
                 "not a unicast address", "local 0.0.0.0");
    expect_error(args("--vxlan", "vx0,local=10.0.0.1,remote=255.255.255.255,vni=1", NULL),
                 "not a unicast address", "broadcast remote");
    expect_error(args("--vxlan", "vx0,local=10.0.0.1,remote=10.0.0.2,remote=10.0.0.2,vni=1",
                      NULL),
                 "remote=10.0.0.2 is given twice", "duplicate remote");
    expect_error(args("--vxlan", "vx0,local=10.0.0.1,remote=10.0.0.1,vni=1", NULL),
                 "its own local address", "remote equal to local");
    expect_error(args("--vxlan", "vx0,local=10.0.0.1,remote=10.0.0.2,vni=1,dstport=0", NULL),
                 "dstport=0 is not 1..65535", "dstport 0");
    expect_error(args("--vxlan", "vx0,local=10.0.0.1,remote=10.0.0.2,vni=1,dstport=65536", NULL),
                 "dstport=65536 is not 1..65535", "dstport too large");
    expect_error(args("--vxlan", "vx0,local=10.0.0.1,remote=10.0.0.2,vni=1,mtu=67", NULL),
                 "mtu=67 is not 68..9000", "mtu too small");
    expect_error(args("--vxlan", "vx0,local=10.0.0.1,remote=10.0.0.2,vni=1,mtu=9001", NULL),
                 "mtu=9001 is not 68..9000", "mtu too large");
    expect_error(args("--vxlan", "vx0,local=10.0.0.1,remote=10.0.0.2,vni=1,learn=maybe", NULL),
                 "learn=maybe is not on or off", "learn not a switch");
    expect_error(args("--vxlan", "vx0,local=10.0.0.1,remote=10.0.0.2,vni=1,ifname=eth0", NULL),
                 "unknown key 'ifname'", "an uplink key on a vxlan port");
    expect_error(args("--vxlan", "vx0,local=10.0.0.1,remote,vni=1", NULL), "not key=value",
                 "a key without a value");
    expect_error(args("--vxlan", "local=10.0.0.1,remote=10.0.0.2,vni=1", NULL), "expected NAME",
                 "no name");
    expect_error(args("--vxlan", "a,local=10.0.0.1,remote=10.0.0.2,vni=1", "--vxlan",
                      "b,local=10.0.0.1,remote=10.0.0.3,vni=2", NULL),
                 "listen on the same address and port", "two vxlan ports on one address:port");
    CHECK(args("--vxlan", "a,local=10.0.0.1,remote=10.0.0.2,vni=1", "--vxlan",
               "b,local=10.0.0.1,remote=10.0.0.3,vni=2,dstport=4790", NULL) == CONFIG_OK,
          "two vxlan ports on one address, different ports: %s", err);

    /* The remote cap: 64 accepted, the 65th refused. */
    static char spec[CONFIG_VALUE_MAX];
    size_t n = (size_t)snprintf(spec, sizeof(spec), "vx0,local=10.0.0.1,vni=7");
    for (unsigned i = 0; i < VXLAN_MAX_REMOTES; i++)
        n += (size_t)snprintf(spec + n, sizeof(spec) - n, ",remote=10.1.%u.%u", i / 200, 1 + i % 200);
    CHECK(args("--vxlan", spec, NULL) == CONFIG_OK && c.ports[0].vx.nremotes == VXLAN_MAX_REMOTES,
          "%d remotes accepted (%zu-byte value): %s", VXLAN_MAX_REMOTES, n, err);
    char line[CONFIG_VALUE_MAX + 64];
    config_format_port(&c.ports[0], NULL, line, sizeof(line));
    config_defaults(&c);
    char text[CONFIG_VALUE_MAX + 80];
    snprintf(text, sizeof(text), "%s\n", line);
    CHECK(config_parse_text(&c, text, err, sizeof(err)) == 0 && c.nports == 1 &&
              c.ports[0].vx.nremotes == VXLAN_MAX_REMOTES &&
              ip_is(&c.ports[0].vx.remote[63], "10.1.0.64"),
          "the %zu-byte line written for it reads back: %s", strlen(line), err);
    snprintf(spec + n, sizeof(spec) - n, ",remote=10.9.9.9");
    expect_error(args("--vxlan", spec, NULL), "more than 64 remotes", "a 65th remote");
    /* 64 IPv6 remotes in their longest spelling. */
    n = (size_t)snprintf(spec, sizeof(spec), "vx6,local=2001:db8::1,vni=7,dstport=65535,"
                         "learn=on,mtu=9000");
    for (unsigned i = 0; i < VXLAN_MAX_REMOTES; i++)
        n += (size_t)snprintf(spec + n, sizeof(spec) - n,
                              ",remote=2001:0db8:0000:0000:0000:0000:%04x:%04x", 0x2001u + i,
                              0xffffu - i);
    CHECK(args("--vxlan", spec, NULL) == CONFIG_OK && c.ports[0].vx.nremotes == VXLAN_MAX_REMOTES,
          "%d IPv6 remotes of 39 characters accepted (%zu-byte value): %s", VXLAN_MAX_REMOTES,
          n, err);
    config_format_port(&c.ports[0], NULL, line, sizeof(line));
    config_defaults(&c);
    snprintf(text, sizeof(text), "%s\n", line);
    CHECK(config_parse_text(&c, text, err, sizeof(err)) == 0 && c.nports == 1 &&
              c.ports[0].vx.nremotes == VXLAN_MAX_REMOTES &&
              ip_is(&c.ports[0].vx.remote[63], "2001:db8::2040:ffc0"),
          "... and the %zu-byte line written for it reads back: %s", strlen(line), err);

    /* The config file key, and the line written back (defaults left out). */
    config_defaults(&c);
    CHECK(config_parse_text(&c, "vxlan vx1,local=10.0.0.1,remote=10.0.0.2,vni=42,learn=on,"
                            "dstport=4790,mtu=1400  # to host b\n", err, sizeof(err)) == 0 &&
              c.nports == 1 && c.ports[0].type == PORT_VXLAN,
          "config file key 'vxlan': %s", err);
    config_format_port(&c.ports[0], NULL, line, sizeof(line));
    CHECK(strcmp(line, "vxlan vx1,local=10.0.0.1,remote=10.0.0.2,vni=42,dstport=4790,learn=on,"
                       "mtu=1400") == 0, "written back as '%s'", line);
    config_defaults(&c);
    CHECK(config_parse_text(&c, "vxlan vx1,local=10.0.0.1,remote=10.0.0.2,vni=42\n", err,
                            sizeof(err)) == 0, "%s", err);
    config_format_port(&c.ports[0], NULL, line, sizeof(line));
    CHECK(strcmp(line, "vxlan vx1,local=10.0.0.1,remote=10.0.0.2,vni=42") == 0,
          "defaults left out: '%s'", line);
    config_defaults(&c);
    CHECK(config_parse_text(&c, "vxlan vx6,local=2001:db8:0::1,remote=::ffff:0:0:2,vni=42\n"
                            "vxlan vx7,local=2001:db8::1,remote=2001:db8::2,vni=43,mtu=1450\n",
                            err, sizeof(err)) == 0 && c.nports == 2, "%s", err);
    config_format_port(&c.ports[0], NULL, line, sizeof(line));
    CHECK(strcmp(line, "vxlan vx6,local=2001:db8::1,remote=::ffff:0:0:2,vni=42") == 0,
          "IPv6 written back in its short form, the IPv6 default MTU 1430 left out: '%s'", line);
    config_format_port(&c.ports[1], NULL, line, sizeof(line));
    CHECK(strcmp(line, "vxlan vx7,local=2001:db8::1,remote=2001:db8::2,vni=43,mtu=1450") == 0,
          "an IPv6 port's mtu=1450 is not its default: written: '%s'", line);
    config_defaults(&c);
    CHECK(config_parse_text(&c, "vxlan vx1,local=10.0.0.1,remote=10.0.0.2,vni=99999999\n", err,
                            sizeof(err)) < 0 && strstr(err, "config:1") && strstr(err, "vni="),
          "a bad vni in a file names the line: %s", err);
    struct port_cfg pc;
    CHECK(config_parse_port("vxlan", "vx9,local=10.0.0.1,learn=on,vni=5", &pc, err,
                            sizeof(err)) == 0 && pc.type == PORT_VXLAN && pc.vx.vni == 5,
          "'vxlan add' specs parse as --vxlan: %s", err);
    CHECK(config_parse_port("vxlan", "vx9,local=10.0.0.1,vni=5", &pc, err, sizeof(err)) < 0 &&
              strstr(err, "no remote"),
          "'vxlan add' without a remote refused: %s", err);
}

int main(void)
{
    CHECK(args("--port", "vm1,path=/tmp/a.sock,queues=4,client=on,mac=52:54:00:12:34:56",
               "--tap", "lwv0", "--workers", "3", "--ctl", "/tmp/c", NULL) == CONFIG_OK,
          "full valid command line: %s", err);
    CHECK(c.nports == 2 && c.ports[0].queues == 4 && c.ports[0].client && c.ports[0].mac_set &&
          c.ports[0].mac[5] == 0x56 && c.ports[1].type == PORT_TAP && c.workers == 3,
          "values parsed");
    expect_error(args(NULL), "nothing to serve", "no ports and no control socket");
    CHECK(args("--ctl", "/tmp/c", NULL) == CONFIG_OK && c.nports == 0,
          "no ports but a control socket: ports come at run time (%s)", err);
    {
        char f1[] = "/tmp/lwvt-conf1.XXXXXX", f2[] = "/tmp/lwvt-conf2.XXXXXX";
        int fd1 = mkstemp(f1), fd2 = mkstemp(f2);
        if (fd2 >= 0 && write(fd2, "port b,path=/b\n", 15) != 15)
            perror("write");
        CHECK(fd1 >= 0 && fd2 >= 0 &&
                  args("--port", "a,path=/a", "--config", f1, "--config", f2, NULL) == CONFIG_OK &&
                  strcmp(c.config_path, f1) == 0 && c.nports == 2 && c.ports[0].cmdline &&
                  !c.ports[1].cmdline,
              "the first --config is the one to reload and save; only --port ports are from "
              "the command line (%s)", err);
        close(fd1);
        close(fd2);
        unlink(f1);
        unlink(f2);
    }
    expect_error(args("--port", "vm1", NULL), "path=SOCK is required", "port without path");
    expect_error(args("--port", "vm1,path=/a,queues=0", NULL), "queues=0", "zero queues");
    expect_error(args("--port", "vm1,path=/a,queues=17", NULL), "queues=17", "too many queues");
    expect_error(args("--port", "vm1,path=/a,queues=2x", NULL), "queues=2x", "junk number");
    expect_error(args("--port", "vm1,path=/a,speed=9", NULL), "unknown key 'speed'", "bad key");
    expect_error(args("--port", "vm1,path=/a,mac=01:00:5e:00:00:01", NULL), "unicast",
                 "multicast MAC");
    expect_error(args("--port", "vm1,path=/a,mac=52:54:00:00:00", NULL), "mac=", "short MAC");
    expect_error(args("--port", "bad name,path=/a", NULL), "bad name", "space in name");
    expect_error(args("--port", "vm1,path=/a,antispoof=on", NULL), "needs mac",
                 "antispoof without mac");
    expect_error(args("--port", "vm1,path=/a,mac=52:54:00:00:00:01,antispoof=maybe", NULL),
                 "antispoof=maybe", "antispoof value");
    CHECK(args("--port", "vm1,path=/a,mode=0640,owner=0,group=root", "--ctl", "/c", "--ctl-mode",
               "0660", "--ctl-group", "0", NULL) == CONFIG_OK &&
          c.ports[0].sock_mode == 0640 && c.ports[0].sock_uid == 0 && c.ports[0].sock_gid == 0 &&
          c.ctl_mode == 0660 && c.ctl_gid == 0, "socket permissions: %s", err);
    expect_error(args("--port", "vm1,path=/a,mode=0999", NULL), "mode=0999", "bad mode");
    expect_error(args("--port", "vm1,path=/a,mode=01777", NULL), "mode=01777", "mode too wide");
    expect_error(args("--port", "vm1,path=/a,group=no-such-group-xyz", NULL), "no such group",
                 "unknown group");
    expect_error(args("--port", "vm1,path=/a,owner=no-such-user-xyz", NULL), "no such user",
                 "unknown user");
    expect_error(args("--port", "vm1,path=/a,client=on,mode=0600", NULL), "client=on",
                 "mode with client=on");
    CHECK(args("--port", "vm1,path=/a,mac=52:54:00:00:00:01,antispoof=on", NULL) == CONFIG_OK &&
          c.ports[0].antispoof, "antispoof=on with mac");
    expect_error(args("--port", "a,path=/x", "--port", "a,path=/y", NULL), "two ports",
                 "duplicate name");
    expect_error(args("--port", "a,path=/x", "--port", "b,path=/x", NULL), "same socket",
                 "duplicate path");
    expect_error(args("--port", "a,path=/x", "--workers", "0", NULL), "--workers", "0 workers");
    expect_error(args("--port", "a,path=/x", "--bogus", NULL), "unknown option", "bad option");
    expect_error(args("--port", NULL), "needs a value", "missing value");
    /* A parse that stopped inside a cluster of short options must not leave
     * getopt in that cluster for the next parse (seen with fuzz_config). */
    expect_error(args("-xx", NULL), "unknown option", "unknown short option in a cluster");
    CHECK(args("--port", "a,path=/x", NULL) == CONFIG_OK, "next parse starts afresh: %s", err);
    expect_error(args("--port", "a,path=/x", "--log-level", "loud", NULL), "log-level",
                 "bad level");
    expect_error(args("--tap", "this-name-is-far-too-long-for-ifnamsiz", NULL), "--tap", "long tap");
    char longpath[300];
    memset(longpath, 'x', sizeof(longpath));
    memcpy(longpath, "a,path=", 7);
    longpath[sizeof(longpath) - 1] = 0;
    expect_error(args("--port", longpath, NULL), "too long", "socket path too long");

    config_defaults(&c);
    CHECK(config_parse_text(&c, "# two ports\nport vm1,path=/tmp/1\n\n  tap lwv1  # host\n"
                            "workers 2\nlog-level debug\n", err, sizeof(err)) == 0,
          "config text: %s", err);
    CHECK(c.nports == 2 && c.workers == 2 && c.log_level == LOG_DEBUG, "config text values");
    config_defaults(&c);
    CHECK(config_parse_text(&c, "port vm1,path=/a\nworkers\n", err, sizeof(err)) < 0 &&
          strstr(err, "config:2"), "error names the line: %s", err);
    config_defaults(&c);
    CHECK(config_parse_text(&c, "port a,path=/a extra\n", err, sizeof(err)) < 0,
          "trailing junk refused");
    config_defaults(&c);
    CHECK(config_parse_text(&c, "config /nonexistent/file\n", err, sizeof(err)) < 0 &&
          strstr(err, "cannot read"), "missing include: %s", err);
    uplink_cases();
    vxlan_cases();
    /* Many ports: the table limit is enforced, not overrun. */
    config_defaults(&c);
    int rc = 0;
    char spec[64];
    for (int i = 0; i < LWV_MAX_PORTS + 2 && rc == 0; i++) {
        snprintf(spec, sizeof(spec), "p%d,path=/tmp/p%d", i, i);
        rc = config_add_port(&c, spec, err, sizeof(err));
    }
    CHECK(rc < 0 && c.nports == LWV_MAX_PORTS && strstr(err, "too many"), "port limit: %s", err);
    return check_done("test_config");
}
