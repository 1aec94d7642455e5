/*
 * intake.c - reading a file a user dropped into a spool input folder
 * (incoming/ for ideas, pulse/ for trend events).  Every refusal says what
 * the file is and what to drop instead, because it ends up in
 * spool/rejected/<name>.error; a file that is gone already is not an error
 * (the inotify event was stale), nor one still being written (its close
 * brings another event).
 */
#define _GNU_SOURCE
#include "base.h"
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <stdlib.h>
#include <sys/stat.h>

/* A file some process still has open for writing (a producer writing
 * straight into incoming/, seen by a scan) must not be read half-way: a
 * read lease is refused with EAGAIN exactly then, and the writer's close
 * (IN_CLOSE_WRITE) brings it back.  Without the right to take a lease
 * (another owner, no CAP_LEASE) the file is read as before.  The lease is
 * let go at once: a writer opening the file while we held it would have
 * the kernel signal us (SIGIO). */
static int being_written(int fd)
{
	int busy = fcntl(fd, F_SETLEASE, F_RDLCK) < 0 && errno == EAGAIN;
	if (!busy) (void)!fcntl(fd, F_SETLEASE, F_UNLCK);
	return busy;
}

/* NULL, with the error just set prefixed as a reason. */
static char *cannot_read(void)
{
	char *why = xstrdup(err_msg());
	err_set("cannot be read: %s", why);
	free(why);
	return NULL;
}

char *intake_read(const char *path, size_t *len, int *gone)
{
	struct stat st;
	return intake_read_st(path, len, gone, &st);
}

/* The file's kind comes from lstat before it is opened, so that nothing
 * but a regular file (no FIFO, socket or device) is ever opened. */
char *intake_read_st(const char *path, size_t *len, int *gone, struct stat *read_st)
{
	struct stat st;
	int fd;
	char *text;
	*gone = 0;
	if (lstat(path, &st) < 0) {
		*gone = errno == ENOENT;
		return err_set_errno("cannot be read"), NULL;
	}
	if (S_ISLNK(st.st_mode)) return err_set("is a symbolic link; drop the file itself"), NULL;
	if (!S_ISREG(st.st_mode)) return err_set("is not a regular file; drop JSON files only"), NULL;
	fd = fsio_open_regular(path, read_st, "", "drop the file itself");
	if (fd < 0) {
		*gone = lstat(path, &st) < 0 && errno == ENOENT; /* removed since: a stale event */
		return *gone ? NULL : cannot_read();
	}
	if (being_written(fd)) {
		close(fd);
		log_info(NULL, NULL, "intake.deferred", "%s is still open for writing; read when it is closed", path);
		*gone = 1;
		return NULL;
	}
	if (read_st->st_size > IDEA_MAX_BYTES) {
		close(fd);
		return err_set("is %lld bytes; a file dropped here may be at most 1 MiB (1048576 bytes)",
			       (long long)read_st->st_size),
		       NULL;
	}
	text = fsio_read_fd(fd, read_st, path, IDEA_MAX_BYTES, len);
	return text ? text : cannot_read();
}
