/*
 * ctl.c - see ctl.h: the socket.  Protocol: the client sends one line
 * ("stats json\n"), the daemon answers with text and closes.  An answer that
 * starts with "error:" reports a bad command.  The commands are in
 * ctl_cmd.c, what they show in ctl_view.c.
 */
#define _GNU_SOURCE
#include "ctl.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"
#include "port.h"
#include "loop.h"

#define CTL_CLIENTS_MAX 16

/* ---- socket ------------------------------------------------------------ */

struct ctl_client {
    int fd;
    struct loop_watch *watch;
    char in[CTL_LINE_MAX];
    size_t inlen;
    char *out;
    size_t outlen, outoff;
};

static int listen_fd = -1;
static struct loop_watch *listen_watch;
static char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
static unsigned nclients;

static void client_close(struct ctl_client *c)
{
    loop_del(c->watch);
    close(c->fd);
    free(c->out);
    free(c);
    nclients--;
}

static void client_write(struct ctl_client *c)
{
    while (c->outoff < c->outlen) {
        ssize_t w = send(c->fd, c->out + c->outoff, c->outlen - c->outoff,
                         MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EAGAIN) {
                loop_mod(c->watch, EPOLLOUT);
                return;
            }
            break;
        }
        c->outoff += (size_t)w;
    }
    client_close(c);
}

static void client_event(void *arg, uint32_t events)
{
    struct ctl_client *c = arg;
    if (c->out) {
        client_write(c);
        return;
    }
    ssize_t r = recv(c->fd, c->in + c->inlen, sizeof(c->in) - 1 - c->inlen, MSG_DONTWAIT);
    if (r < 0 && errno == EAGAIN)
        return;
    if (r <= 0) {
        client_close(c);
        return;
    }
    c->inlen += (size_t)r;
    c->in[c->inlen] = 0;
    char *nl = strchr(c->in, '\n');
    if (!nl && c->inlen < sizeof(c->in) - 1)
        return;
    if (nl)
        *nl = 0;
    c->out = ctl_execute(c->in);
    if (!c->out) {
        client_close(c);
        return;
    }
    c->outlen = strlen(c->out);
    client_write(c);
}

static void accept_event(void *arg, uint32_t events)
{
    int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return;
    if (nclients >= CTL_CLIENTS_MAX) {
        close(fd);
        return;
    }
    struct ctl_client *c = calloc(1, sizeof(*c));
    if (!c) {
        close(fd);
        return;
    }
    c->fd = fd;
    c->watch = loop_add(fd, EPOLLIN, client_event, c);
    if (!c->watch) {
        close(fd);
        free(c);
        return;
    }
    nclients++;
}

int ctl_open(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof(sa.sun_path)) {
        log_error("control socket path too long: %s", path);
        return -1;
    }
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    /* Never take over the socket of another running daemon. */
    char err[256];
    if (socket_clear_stale("control socket", path, err, sizeof(err)) < 0) {
        log_error("%s", err);
        return -1;
    }
    listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (listen_fd < 0)
        return -1;
    mode_t old = umask(0177);   /* created 0600 from the start: no window */
    int rc = bind(listen_fd, (struct sockaddr *)&sa, sizeof(sa));
    umask(old);
    if (rc < 0 || listen(listen_fd, 8) < 0) {
        log_error("control socket %s: %s", path, strerror(errno));
        close(listen_fd);
        listen_fd = -1;
        return -1;
    }
    snprintf(sock_path, sizeof(sock_path), "%s", path);
    listen_watch = loop_add(listen_fd, EPOLLIN, accept_event, NULL);
    return listen_watch ? 0 : -1;
}

void ctl_close(void)
{
    if (listen_fd < 0)
        return;
    loop_del(listen_watch);
    close(listen_fd);
    unlink(sock_path);
    listen_fd = -1;
}
