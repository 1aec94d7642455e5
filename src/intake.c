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
 * (another owner, no CAP_LEASE) the file is read as before. */
static int being_written(const char *path)
{
	int busy, fd = open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) return 0;
	busy = fcntl(fd, F_SETLEASE, F_RDLCK) < 0 && errno == EAGAIN;
	if (!busy) (void)!fcntl(fd, F_SETLEASE, F_UNLCK);
	close(fd);
	return busy;
}

char *intake_read(const char *path, size_t *len, int *gone)
{
	struct stat st;
	return intake_read_st(path, len, gone, &st);
}

char *intake_read_st(const char *path, size_t *len, int *gone, struct stat *read_st)
{
	struct stat st;
	*gone = 0;
	if (lstat(path, &st) < 0) {
		*gone = errno == ENOENT;
		return err_set_errno("cannot be read"), NULL;
	}
	if (S_ISLNK(st.st_mode)) return err_set("is a symbolic link; drop the file itself"), NULL;
	if (!S_ISREG(st.st_mode)) return err_set("is not a regular file; drop JSON files only"), NULL;
	if (being_written(path)) {
		log_info(NULL, NULL, "intake.deferred", "%s is still open for writing; read when it is closed", path);
		*gone = 1;
		return NULL;
	}
	if (st.st_size > IDEA_MAX_BYTES)
		return err_set("is %lld bytes; a file dropped here may be at most 1 MiB (1048576 bytes)",
			       (long long)st.st_size),
		       NULL;
	char *text = fsio_read_st(path, IDEA_MAX_BYTES, len, read_st);
	if (!text) {
		char *why = xstrdup(err_msg());
		err_set("cannot be read: %s", why);
		free(why);
	}
	return text;
}
