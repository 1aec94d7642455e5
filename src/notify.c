/*
 * notify.c - systemd's notify protocol (Type=notify) spoken directly: one
 * datagram per message to the AF_UNIX socket $NOTIFY_SOCKET names (a
 * leading '@' is the abstract namespace), so the static binary needs no
 * libsystemd.  Without $NOTIFY_SOCKET every call does nothing.  The socket
 * is opened once; a message that cannot be sent is logged and dropped (the
 * service manager's problem must not stop the daemon).
 */
#define _GNU_SOURCE
#include "daemon.h"
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int notify_fd = -1;
static struct sockaddr_un notify_addr;
static socklen_t notify_len;

/* 1 when $NOTIFY_SOCKET names a usable socket address. */
static int notify_open(void)
{
	const char *p = getenv("NOTIFY_SOCKET");
	size_t n = p ? strlen(p) : 0;
	if (notify_fd >= 0) return 1;
	if (n < 2 || n >= sizeof notify_addr.sun_path || (p[0] != '/' && p[0] != '@')) return 0;
	memset(&notify_addr, 0, sizeof notify_addr);
	notify_addr.sun_family = AF_UNIX;
	memcpy(notify_addr.sun_path, p, n);
	if (p[0] == '@') notify_addr.sun_path[0] = 0; /* abstract: no terminating NUL counts */
	notify_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (p[0] == '@' ? 0 : 1));
	notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (notify_fd < 0) log_warn(NULL, NULL, "notify.socket", "cannot make a socket for $NOTIFY_SOCKET");
	return notify_fd >= 0;
}

void notify_send(const char *msg)
{
	if (!notify_open()) return;
	if (sendto(notify_fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&notify_addr, notify_len) < 0)
		log_warn(NULL, NULL, "notify.send", "cannot tell the service manager '%.40s' over $NOTIFY_SOCKET", msg);
}

/* STATUS= only when the line changed, so an idle daemon sends nothing. */
void notify_status(int running, int queued, int held)
{
	static char last[128];
	char msg[128];
	if (!notify_open()) return;
	snprintf(msg, sizeof msg, "STATUS=%d running, %d queued, %d held", running, queued, held);
	if (!strcmp(msg, last)) return;
	snprintf(last, sizeof last, "%s", msg);
	notify_send(msg);
}
