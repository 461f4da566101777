/*
 * test_config.c - option and config-file parsing: valid forms, and the
 * clear refusals a user gets for bad ones.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "config.h"
#include "log.h"

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

static void expect_error(int rc, const char *needle, const char *what)
{
    CHECK(rc == CONFIG_ERROR && strstr(err, needle), "%s: error mentioning '%s' (rc %d, '%s')",
          what, needle, rc, err);
}

/* --uplink NAME,ifname=IF[,mode=packet|xdp][,qdisc_bypass=on]: good and
 * bad forms, the config file key, the running-configuration line. */
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
    expect_error(args("--uplink", "up0,ifname=eth0,mode=xdp", NULL), "not implemented yet",
                 "mode=xdp");
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
    CHECK(config_parse_text(&c, "uplink up0,ifname=eth1,mode=xdp\n", err, sizeof(err)) < 0 &&
              strstr(err, "config:1") && strstr(err, "not implemented"),
          "mode=xdp in a file names the line: %s", err);
    struct port_cfg pc;
    CHECK(config_parse_port("uplink", "up9,ifname=veth9", &pc, err, sizeof(err)) == 0 &&
              pc.type == PORT_UPLINK && strcmp(pc.ifname, "veth9") == 0,
          "'uplink add' specs parse as --uplink: %s", err);
    CHECK(config_parse_port("uplink", "up9", &pc, err, sizeof(err)) < 0 &&
              strstr(err, "ifname=IF is required"),
          "'uplink add' without ifname refused: %s", err);
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
