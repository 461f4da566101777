/*
 * procfd.c - see procfd.h.
 */
#define _GNU_SOURCE
#include "procfd.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* /proc/PID/NAME, or /proc/self/NAME for pid 0. */
static void proc_path(char *buf, size_t len, pid_t pid, const char *name)
{
    if (pid)
        snprintf(buf, len, "/proc/%d/%s", (int)pid, name);
    else
        snprintf(buf, len, "/proc/self/%s", name);
}

long proc_fd_count(pid_t pid)
{
    char p[64];
    proc_path(p, sizeof(p), pid, "fd");
    DIR *d = opendir(p);
    if (!d)
        return -1;
    long n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return pid ? n : n - 1;   /* our own count: not the directory's fd */
}

long proc_maps_count(pid_t pid, const char *match)
{
    char p[64], line[512];
    proc_path(p, sizeof(p), pid, "maps");
    FILE *f = fopen(p, "r");
    if (!f)
        return -1;
    long n = 0;
    while (fgets(line, sizeof(line), f))
        n += !match || strstr(line, match);
    fclose(f);
    return n;
}

long proc_status_kb(pid_t pid, const char *key)
{
    char p[64], line[256];
    proc_path(p, sizeof(p), pid, "status");
    FILE *f = fopen(p, "r");
    if (!f)
        return -1;
    long v = -1;
    size_t kl = strlen(key);
    while (fgets(line, sizeof(line), f))
        if (!strncmp(line, key, kl) && line[kl] == ':') {
            v = strtol(line + kl + 1, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

double proc_cpu_s(pid_t pid)
{
    char p[64], buf[1024];
    proc_path(p, sizeof(p), pid, "stat");
    FILE *f = fopen(p, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    char *s = strrchr(buf, ')');
    if (!s)
        return -1;
    unsigned long ut = 0, st = 0;
    /* after ") ": state ppid pgrp session tty tpgid flags minflt cminflt
     * majflt cmajflt utime stime */
    if (sscanf(s + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

ssize_t send_fds(int sock, const struct iovec *iov, int niov, const int *fds, unsigned nfds,
                 int flags)
{
    union {
        char b[CMSG_SPACE(sizeof(int) * 64)];
        struct cmsghdr align;
    } cm;
    if (nfds > 64)
        return -1;
    memset(&cm, 0, sizeof(cm));
    struct msghdr mh = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)niov };
    if (nfds) {
        mh.msg_control = cm.b;
        mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
    }
    return sendmsg(sock, &mh, flags);
}
