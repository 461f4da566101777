/*
 * lwvhostctl - asks a running lwvhostd about its ports and counters.
 *
 * Owns: the command line of the tool; sends one command line to the
 * daemon's control socket and prints the answer.  Must not interpret the
 * answer beyond spotting an "error:" reply (exit status 1).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define DEFAULT_SOCK "/run/lwvhost/ctl.sock"

static void usage(FILE *out)
{
    fprintf(out,
"Usage: lwvhostctl [-s SOCKET] COMMAND [--json]\n"
"Commands:\n"
"  ports          ports with their state: connected, negotiated features, queue\n"
"                 pairs in use, MTU, MAC addresses learned\n"
"  stats          per-port and per-queue-pair packet, byte and drop counters,\n"
"                 kicks and interrupts, and per-worker counters\n"
"Options:\n"
"  -s, --socket PATH   the daemon's control socket (lwvhostd --ctl), default\n"
"                      $LWVHOST_CTL or " DEFAULT_SOCK "\n"
"  -j, --json          machine-readable output\n"
"  -h, --help          this help\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "socket", required_argument, NULL, 's' },
        { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *sock = getenv("LWVHOST_CTL");
    if (!sock || !*sock)
        sock = DEFAULT_SOCK;
    int json = 0, o;
    while ((o = getopt_long(argc, argv, "s:jh", opts, NULL)) != -1) {
        switch (o) {
        case 's': sock = optarg; break;
        case 'j': json = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[optind++];
    /* Allow "--json" after the command too (getopt permutes, but be explicit). */
    for (; optind < argc; optind++) {
        if (strcmp(argv[optind], "--json") == 0 || strcmp(argv[optind], "-j") == 0)
            json = 1;
        else {
            fprintf(stderr, "lwvhostctl: unexpected argument '%s'\n", argv[optind]);
            return 2;
        }
    }
    if (strcmp(cmd, "ports") != 0 && strcmp(cmd, "stats") != 0) {
        fprintf(stderr, "lwvhostctl: unknown command '%s'\n", cmd);
        usage(stderr);
        return 2;
    }
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(sock) >= sizeof(sa.sun_path)) {
        fprintf(stderr, "lwvhostctl: socket path too long\n");
        return 2;
    }
    strcpy(sa.sun_path, sock);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        fprintf(stderr, "lwvhostctl: cannot reach lwvhostd at %s: %s\n", sock, strerror(errno));
        return 1;
    }
    char line[64];
    int n = snprintf(line, sizeof(line), "%s%s\n", cmd, json ? " json" : "");
    if (write(fd, line, (size_t)n) != n) {
        fprintf(stderr, "lwvhostctl: write: %s\n", strerror(errno));
        return 1;
    }
    char buf[8192];
    ssize_t r;
    int first = 1, status = 0;
    while ((r = read(fd, buf, sizeof(buf))) > 0) {
        if (first && r >= 6 && memcmp(buf, "error:", 6) == 0)
            status = 1;
        first = 0;
        fwrite(buf, 1, (size_t)r, status ? stderr : stdout);
    }
    close(fd);
    return status;
}
