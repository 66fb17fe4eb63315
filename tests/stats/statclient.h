/*
 * statclient.h — what the stats service tests do to a running
 * shmbus-stats from outside: ask it over nng (REQ), and read a process's
 * own resident memory from /proc (RssAnon + RssFile: VmRSS without the
 * shared segment's pages, which /proc counts as RssShmem).
 */
#ifndef SHMBUS_TEST_STATCLIENT_H
#define SHMBUS_TEST_STATCLIENT_H

#include <jansson.h>
#include <stddef.h>
#include <sys/types.h>

/* Sends req to the REP socket at url (5 s timeouts); returns the parsed
 * reply (caller decrefs) or NULL (no reply, or not JSON: printed). */
json_t *statclient_ask(const char *url, const void *req, size_t len);

/* Own resident kB of pid (RssAnon + RssFile); -1 when unreadable. */
long statclient_own_rss_kb(pid_t pid);

#endif
