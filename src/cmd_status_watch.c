/*
 * cmd_status_watch.c - `status --watch`: the report, drawn again whenever a
 * ticket moves or the database commits.  Every spool folder is watched with
 * inotify (a ticket's move is a rename into its new folder, done after the
 * database committed the change), and so is the root for writes to
 * acog.db-wal (a commit that moves no ticket, such as a stage starting).
 * The process blocks in read() until the kernel has an event: no timer, no
 * system call while nothing changes.  A burst of events is drained before
 * one redraw; other files in the root (a log) do not redraw.
 */
#include "daemon.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#define WATCH_MASK (IN_MOVED_TO | IN_MOVED_FROM | IN_CLOSE_WRITE | IN_DELETE)

static int watch_dir(int fd, const char *root, const char *dir)
{
	char *p = spool_path(root, dir, NULL);
	int rc = inotify_add_watch(fd, p, WATCH_MASK) < 0 ? err_set_errno("cannot watch %s", p) : 0;
	free(p);
	return rc;
}

/* The stage folders and the others (incoming, held, failed, published...). */
static int watch_spool(int fd, const char *root)
{
	for (size_t i = 0; i < stage_count; i++)
		if (watch_dir(fd, root, stage_table[i].name) < 0) return -1;
	for (size_t i = 0; spool_other_dirs[i]; i++)
		if (watch_dir(fd, root, spool_other_dirs[i]) < 0) return -1;
	return 0;
}

/* 1 when the events in buf say something the report shows may have changed. */
static int relevant(const char *buf, ssize_t n, int root_wd)
{
	for (const char *p = buf; p < buf + n;) {
		const struct inotify_event *ev = (const struct inotify_event *)p;
		p += sizeof *ev + ev->len;
		if (ev->wd != root_wd || (ev->mask & IN_Q_OVERFLOW)) return 1;
		if (ev->len && (!strcmp(ev->name, "acog.db-wal") || !strcmp(ev->name, "acog.db"))) return 1;
	}
	return 0;
}

/* Blocks until something changed, taking what else is already queued. */
static int wait_change(int fd, int root_wd)
{
	char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t n;
	do n = read(fd, buf, sizeof buf);
	while ((n < 0 && errno == EINTR) || (n > 0 && !relevant(buf, n, root_wd)));
	return n > 0 ? 0 : err_set_errno("cannot read the spool's inotify events");
}

int status_watch(sqlite3 *db, const struct cli *a)
{
	int fd = inotify_init1(IN_CLOEXEC), rc = -1, root_wd;
	if (fd < 0) return err_set_errno("inotify_init1");
	if (watch_spool(fd, a->root) < 0) goto out;
	if ((root_wd = inotify_add_watch(fd, a->root, IN_MODIFY | IN_CREATE | IN_MOVED_TO)) < 0) {
		err_set_errno("cannot watch %s", a->root);
		goto out;
	}
	for (;;) {
		printf("\033[H\033[2J"); /* home and clear: each drawing starts on a clean screen */
		if (status_print(db, a->root, a) < 0 || wait_change(fd, root_wd) < 0) break;
	}
out:
	close(fd);
	return rc;
}
