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
#include "port.h"

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
};

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
};

enum config_result { CONFIG_OK = 0, CONFIG_EXIT = 1, CONFIG_ERROR = -1 };

void config_defaults(struct config *c);
/* Parses argv (may read --config files). CONFIG_EXIT: --help/--version was
 * printed. On error, err holds a one-line reason. */
enum config_result config_parse_args(struct config *c, int argc, char **argv, char *err,
                                     size_t errlen);
/* One "--port" value: NAME,path=SOCK[,queues=N][,client=on|off][,mac=MAC][,antispoof=on]
 * [,policy=P] */
int config_add_port(struct config *c, const char *spec, char *err, size_t errlen);
int config_add_tap(struct config *c, const char *ifname, char *err, size_t errlen);
/* Parses config text: one "key value" per line, keys as the long options. */
int config_parse_text(struct config *c, const char *text, char *err, size_t errlen);
int config_validate(struct config *c, char *err, size_t errlen);
void config_usage(FILE *out);

#endif
