/*
 * version.h - the version of lwvhost's programs (lwvhostd --version,
 * lwvhostctl version, the Debian package).
 */
#ifndef LWV_VERSION_H
#define LWV_VERSION_H

#define LWV_VERSION "0.1.0"

#endif
