/*
 * config.h - lwvhostd's configuration: command-line options and the
 * equivalent --config file, validated into one struct.
 *
 * Owns: option syntax, defaults, validation and the --help text.
 * Must not: open sockets or devices (daemon.c does, from the result).
 */
#ifndef LWV_CONFIG_H
#define LWV_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <stdio.h>

#include "policy.h"
#include "version.h"
#include "port.h"

struct config {
    unsigned nports;
    struct port_cfg ports[LWV_MAX_PORTS];
    char ctl_path[108];
    int ctl_mode;              /* -1: 0600 */
    long ctl_gid;              /* -1: unchanged */
    uint32_t workers;
    int log_level;
    struct policy policy;      /* default for ports without their own */
    uint32_t idle_us;
    uint32_t fdb_age_s;        /* learned MACs forgotten after this long unused */
    uint32_t fdb_port_max;     /* learned MACs per port */
    char state_dir[256];       /* packed rings' saved positions (rstate.h), "" if none */
    char config_path[4096];    /* the first --config FILE on the command line, "" if none */
    uint32_t cmdline_keys;     /* the daemon's options given on the command line (a bit each,
                                * config.c's order): a saved file leaves them out */
};

enum config_result { CONFIG_OK = 0, CONFIG_EXIT = 1, CONFIG_ERROR = -1 };

/* Longest value of a config-file line (and of a port spec), with the
 * terminating NUL: a --vxlan value with every remote fits, IPv6 ones too
 * (64 of at most 45 characters each). */
#define CONFIG_VALUE_MAX 4096
#define CONFIG_VALUE_FMT "4095"

void config_defaults(struct config *c);
/* Parses argv (may read --config files). CONFIG_EXIT: --help/--version was
 * printed. On error, err holds a one-line reason. */
enum config_result config_parse_args(struct config *c, int argc, char **argv, char *err,
                                     size_t errlen);
/* One "--port" value: NAME,path=SOCK[,queues=N][,client=on|off][,mac=MAC][,antispoof=on]
 * [,policy=P] */
int config_add_port(struct config *c, const char *spec, char *err, size_t errlen);
int config_add_tap(struct config *c, const char *ifname, char *err, size_t errlen);
/* One "--uplink" value: NAME,ifname=IF[,mode=packet][,qdisc_bypass=on] or
 * NAME,ifname=IF,mode=xdp[,queue=N][,xdp_mode=auto|native|generic] (the
 * keys of one mode are refused with the other).  Whether IF exists, and
 * has queue N, is checked when the port is added (uplink.c), not here. */
int config_add_uplink(struct config *c, const char *spec, char *err, size_t errlen);
/* One "--vxlan" value: NAME,local=IP,remote=IP[,remote=IP...],vni=N
 * [,dstport=4789][,learn=on][,mtu=N] (all IPv4, or all IPv6).  Whether
 * local is an address of this host is checked when the port is added. */
int config_add_vxlan(struct config *c, const char *spec, char *err, size_t errlen);
/* Parses config text: one "key value" per line, keys as the long options. */
int config_parse_text(struct config *c, const char *text, char *err, size_t errlen);
int config_validate(struct config *c, char *err, size_t errlen);
/* One "port" (key "port": a --port value), "tap" (an interface name),
 * "uplink" (an --uplink value) or "vxlan" (a --vxlan value) into *out,
 * checked as on the command line. */
int config_parse_port(const char *key, const char *spec, struct port_cfg *out, char *err,
                      size_t errlen);
/* The config-file line that adds p ("port NAME,path=...", "tap NAME",
 * "uplink NAME,ifname=..." or "vxlan NAME,local=..."),
 * with policy=live when live is given. */
void config_format_port(const struct port_cfg *p, const struct policy *live, char *buf,
                        size_t len);
/* Writes c in the --config format (lwvhostd.conf(5)); ports and options
 * given on the command line only with with_cmdline (the next start gives
 * them again: a port would be there twice, an option in the file would
 * override a later change on the command line).  0, or -1 on a write
 * error. */
int config_write(FILE *f, const struct config *c, bool with_cmdline);
void config_usage(FILE *out);

#endif
