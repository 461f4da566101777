/* main.c - lwvhostd entry point; everything happens in daemon.c. */
#include "daemon.h"

int main(int argc, char **argv)
{
    return daemon_main(argc, argv);
}
